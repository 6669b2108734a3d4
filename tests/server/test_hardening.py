"""Faults and hostile input: every case ends in a clean ToolError, nothing half-stored, still serving."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from mcp import Client, MCPError, StdioServerParameters
from PIL import Image

from server.app import build_server
from server.config import Settings
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.results import files_in, text_of

pytestmark = pytest.mark.anyio



def assert_clean_error(result, *, contains: str = "") -> None:  # type: ignore[no-untyped-def]
    """An error the assistant can read: not the SDK's bare 'Error executing tool X' for a crash."""
    text = text_of(result)
    assert result.is_error
    assert text.rstrip() not in {f"Error executing tool {t}" for t in
                                 ("generate_image", "edit_image", "illustrate_content", "run_replicate_model")}
    assert contains in text


# ---------------------------------------------------------------------------------- faults

@pytest.mark.parametrize(("path_prefix", "expected"), [("/v1/models", "Could not reach Replicate"),
                                                       ("/files", "download failed")])
async def test_connection_resets_end_in_a_clean_error_and_the_server_keeps_serving(
        server, replicate_fake: FakeReplicate, settings: Settings, path_prefix: str, expected: str) -> None:
    replicate_fake.inject_reset(times=None, path_prefix=path_prefix)
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
        assert_clean_error(result, contains=expected)
        replicate_fake.clear_faults()
        assert not (await client.call_tool("generate_image", {"prompt": "a fox"})).is_error
    assert not [p for p in files_in(settings.storage.dir) if p.name.startswith(".tmp-")]


async def test_a_stalled_download_is_bounded_by_the_timeout(env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    replicate_fake.inject_delay(30, times=None, path_prefix="/files")
    server = build_server(Settings.from_env({**env, "EASEL_TIMEOUT": "1", "EASEL_MAX_RETRIES": "0"}))
    with anyio.fail_after(20):
        async with Client(server) as client:
            result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert_clean_error(result, contains="download failed")


async def test_a_transient_download_failure_is_retried(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.inject(503, times=1, path_prefix="/files")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert not result.is_error
    assert len(replicate_fake.downloads) == 2


async def test_503_on_create_is_retried_but_500_is_not(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.inject(503, times=1, method="POST")
    async with Client(server) as client:
        assert not (await client.call_tool("generate_image", {"prompt": "a fox"})).is_error
        replicate_fake.inject(500, times=1, method="POST")
        assert_clean_error(await client.call_tool("generate_image", {"prompt": "a fox"}), contains="HTTP 500")
    assert len(replicate_fake.creates) == 3  # 503 + retry, then one 500 (a POST that may have run is not repeated)


async def test_an_image_over_the_pixel_limit_is_refused_not_decoded(server, replicate_fake: FakeReplicate,
                                                                    settings: Settings) -> None:
    bomb = io.BytesIO()
    Image.new("1", (9000, 9000)).save(bomb, "PNG")  # ~10 KB on the wire, 81 megapixels
    replicate_fake.image_factory = lambda prediction: (bomb.getvalue(), "image/png")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert_clean_error(result, contains="pixels")
    assert not files_in(settings.storage.dir)


async def test_cancelling_during_a_rate_limit_wait_creates_nothing(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.inject(429, body={"detail": "throttled", "status": 429, "retry_after": 20}, times=None,
                          method="POST")
    async with Client(server) as client:
        with anyio.move_on_after(1):
            await client.call_tool("generate_image", {"prompt": "a fox"})
        replicate_fake.clear_faults()
        assert not (await client.call_tool("generate_image", {"prompt": "a fox"})).is_error
    assert [r.status for r in replicate_fake.creates][-1] == 201
    assert sum(1 for r in replicate_fake.creates if r.status == 201) == 1


async def test_cancelling_during_polling_cancels_and_stores_nothing(server, replicate_fake: FakeReplicate,
                                                                    settings: Settings) -> None:
    replicate_fake.hold = True
    async with Client(server) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "generate_image", {"prompt": "a fox", "count": 2})
            await replicate_fake.wait_until(
                lambda: sum(1 for r in replicate_fake.requests if r.method == "GET") >= 2, timeout=10)
            tg.cancel_scope.cancel()
        await replicate_fake.wait_until(lambda: len(replicate_fake.cancels) == 2, timeout=10)
    assert not files_in(settings.storage.dir)


DISK_FULL_LAUNCHER = (
    "import os, resource, signal, sys;"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])));"
    "os.execv(sys.executable, [sys.executable, '-m', 'server'])"
)


async def test_a_full_disk_is_a_clear_error_with_no_partial_file_or_orphan_metadata(
        env: dict[str, str], replicate_fake: FakeReplicate, settings: Settings) -> None:
    """RLIMIT_FSIZE makes every write past 64 KiB fail (EFBIG), as a full disk would (ENOSPC)."""
    big = io.BytesIO()
    Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3)).save(big, "PNG")  # ~270 KB
    small = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(small, "PNG")
    outputs = iter([big.getvalue(), small.getvalue()])
    replicate_fake.image_factory = lambda prediction: (next(outputs), "image/png")
    params = StdioServerParameters(command=sys.executable, args=["-c", DISK_FULL_LAUNCHER, str(64 * 1024)],
                                   env={**os.environ, **env, "EASEL_PREVIEW": "off"}, cwd=str(Path.cwd()))
    async with Client(params) as client:
        failed = await client.call_tool("generate_image", {"prompt": "a big fox"})
        assert_clean_error(failed, contains="could not be stored")
        # the call's job record (under state/) is deleted just after it answers: only the image's files count here
        images = [p for p in files_in(settings.storage.dir) if "state" not in p.relative_to(settings.storage.dir).parts]
        assert all(not p.name.startswith(".tmp-") and not p.name.endswith(".json") for p in images), images
        ok = await client.call_tool("generate_image", {"prompt": "a small fox"})
        assert not ok.is_error, text_of(ok)
    stored = [p for p in files_in(settings.storage.dir) if not p.name.startswith(".")]  # .index is bookkeeping
    assert sorted(p.suffix for p in stored) == [".json", ".png"]


# ---------------------------------------------------------------------------- hostile input

TEXT = st.text(st.characters(codec="utf-8"), max_size=300) | st.text(max_size=5).map(lambda s: s * 1000)
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                       max_leaves=8)


@pytest.fixture
def keyless(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A server with no provider keys: validation runs, nothing can be spent."""
    return build_server(Settings.from_env({"EASEL_STORAGE_DIR": str(tmp_path / "store")}))


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tool=st.sampled_from(["generate_image", "edit_image", "illustrate_content", "run_replicate_model"]),
       args=st.dictionaries(st.sampled_from(["prompt", "content", "images", "model", "size", "style", "count",
                                             "seed", "negative_prompt", "purpose", "model_name", "model_inputs",
                                             "inputs_json", "version", "aspect_ratio", "output_format", "dry_run",
                                             "name"]),
                            JSONISH, max_size=6))
async def test_arbitrary_arguments_never_crash_a_tool(keyless, tool: str, args: dict) -> None:  # type: ignore[no-untyped-def]
    async with Client(keyless) as client:
        result = await client.call_tool(tool, args)
        if result.is_error:
            assert_clean_error(result)
        # and the server still answers
        assert (await client.list_tools()).tools


async def test_bad_arguments_name_each_field_what_is_allowed_and_a_clipped_copy_of_what_was_sent(
        keyless) -> None:  # type: ignore[no-untyped-def]
    async with Client(keyless) as client:
        result = await client.call_tool("generate_image", {"prompt": "p" * 10_000, "size": "huge", "count": 9})
    text = text_of(result)
    assert result.is_error and text.startswith("Invalid arguments for generate_image: ")
    assert "prompt: String should have at most" in text
    assert "size: Input should be 'square', 'landscape', 'portrait', 'wide' or 'tall' (got 'huge')" in text
    assert "count: Input should be less than or equal to 4 (got 9)" in text
    assert "p" * 100 not in text and "pydantic.dev" not in text and "type=" not in text


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=TEXT | st.sampled_from(["../../../etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/etc/passwd",
                                      "..\\..\\windows\\win.ini", "202611-" + "a" * 32 + ".png/../../x",
                                      "a" * 100_000, "\x00", "202611-" + "a" * 32 + ".png%00.txt"]))
async def test_hostile_resource_uris_are_not_found_and_read_nothing(keyless, suffix: str) -> None:  # type: ignore[no-untyped-def]
    async with Client(keyless) as client:
        try:
            await client.read_resource("easel://images/" + suffix)
        except MCPError as exc:
            assert exc.error.code == -32602
        else:
            raise AssertionError("a hostile URI was served")


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=TEXT)
async def test_any_prompt_text_is_either_accepted_or_refused_by_name(keyless, prompt: str) -> None:  # type: ignore[no-untyped-def]
    async with Client(keyless) as client:
        result = await client.call_tool("generate_image", {"prompt": prompt})
    text = text_of(result)
    assert result.is_error
    assert "prompt" in text or "REPLICATE_API_TOKEN" in text


def _tricky_host():  # type: ignore[no-untyped-def]
    """A loopback server with a truncated file and a redirect to the cloud metadata address."""
    from tests.fakes._server import LoopbackServer

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/files/"):  # declares 100 kB, sends 10 bytes, then closes
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"image/png"), (b"content-length", b"100000")]})
            await send({"type": "http.response.body", "body": b"\x89PNG\r\n\x1a\n\x00\x00", "more_body": True})
            raise RuntimeError("connection dropped mid-body")
        await send({"type": "http.response.start", "status": 302,
                    "headers": [(b"location", b"http://169.254.169.254/latest/meta-data/")]})
        await send({"type": "http.response.body", "body": b""})

    return LoopbackServer(app)


async def test_a_truncated_download_is_a_clean_error_and_nothing_is_stored(
        env: dict[str, str], replicate_fake: FakeReplicate, settings: Settings) -> None:
    with _tricky_host().running() as host:
        replicate_fake.file_base_url = host.url   # a file host of its own: allowed explicitly, by host and port
        server = build_server(Settings.from_env({**env, "EASEL_ALLOWED_FETCH_HOSTS": f"127.0.0.1:{host.port}"}))
        async with Client(server) as client:
            result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert_clean_error(result, contains="download failed")
    assert not files_in(settings.storage.dir)


async def test_a_redirect_to_a_private_address_is_not_followed(env: dict[str, str],
                                                               replicate_fake: FakeReplicate) -> None:
    server = build_server(Settings.from_env({**env, "EASEL_ALLOWED_FETCH_HOSTS": "127.0.0.1"}))
    with _tricky_host().running() as host:
        async with Client(server) as client:
            result = await client.call_tool("edit_image", {"prompt": "x", "images": [f"{host.url}/start"]})
    assert_clean_error(result, contains="169.254.169.254")
    assert "private, loopback" in text_of(result)
    assert replicate_fake.requests == []
