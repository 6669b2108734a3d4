"""Issue 14: the fetch guard for provider outputs and reference images (a real process for outputs,
rebinding with a local DNS answer), symlink swaps, bad inputs, link secrets and the store path."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from providers.base import ProviderConfig
from providers.errors import ConfigError
from server.app import build_server
from server.config import Settings
from server.inputs import InputError, InputLimits, resolve_images
from server.links import LinkSigner
from server.storage import StorageError
from server.storage.local import LocalStorage, LocalWriter
from tests.fakes.file_host import FileHost
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.images import png
from tests.support.results import files_in, text_of

pytestmark = pytest.mark.anyio
EASEL = [sys.executable, "-m", "server"]
PUBLIC = "93.184.215.14"   # a public address; tests can never reach it (tests/conftest.py keeps them on loopback)


@pytest.fixture
def secret() -> Iterator[FileHost]:
    """Something on loopback that is not the operator's: it must never be read on a model's say-so."""
    host = FileHost()
    with host.server.running():
        yield host


def one_clear_line(result: Any, *, contains: str) -> str:
    text = text_of(result)
    assert result.is_error
    assert "Traceback" not in text and "\n" not in text.strip()
    assert text.rstrip() not in {"Error executing tool edit_image", "Error executing tool run_replicate_model"}
    assert contains in text, text
    return text


# ------------------------------------------------------------------------ 1. provider outputs

async def test_a_model_that_names_a_loopback_url_cannot_make_the_real_server_fetch_it(
        env: dict[str, str], replicate_fake: FakeReplicate, secret: FileHost) -> None:
    """The real process over stdio: run_replicate_model's output URLs pass the guard; the operator can
    allow a host explicitly (EASEL_ALLOWED_FETCH_HOSTS, here host:port)."""
    version = replicate_fake.add_model("acme/leaky", output=lambda _: {"a": f"{secret.url}/secret", "n": 1})
    call = {"model_name": f"acme/leaky:{version}", "model_inputs": {"prompt": "x"}}
    params = StdioServerParameters(command=EASEL[0], args=EASEL[1:], env={**os.environ, **env})
    with anyio.fail_after(60):
        async with Client(params) as client:
            refused = await client.call_tool("run_replicate_model", call)
    assert not refused.is_error, text_of(refused)
    out = refused.structured_content["result"]
    assert out["n"] == 1 and out["a"]["stored"] is False and "private, loopback" in out["a"]["note"]
    assert secret.seen == []

    allowed = {**env, "EASEL_ALLOWED_FETCH_HOSTS": f"127.0.0.1:{secret.port}"}
    params = StdioServerParameters(command=EASEL[0], args=EASEL[1:], env={**os.environ, **allowed})
    with anyio.fail_after(60):
        async with Client(params) as client:
            fetched = await client.call_tool("run_replicate_model", call)
    assert fetched.structured_content["result"]["a"]["note"].startswith("not an image")
    assert [path for path, _ in secret.seen] == ["/secret"]


async def test_generated_images_from_an_unlisted_loopback_host_are_refused_without_retries(
        server, replicate_fake: FakeReplicate, settings: Settings, secret: FileHost) -> None:
    replicate_fake.file_base_url = secret.url
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert result.is_error and "output was not downloaded" in text_of(result) and "private, loopback" in text_of(result)
    assert secret.seen == [] and files_in(settings.storage.dir) == []


# ------------------------------------------------------------------------ 2. DNS rebinding

def with_dns(settings: Settings, answers: dict[str, list[str]]) -> Settings:
    """The same settings with a local DNS: the guard's resolver answers from ``answers``."""
    async def dns(name: str, port: int) -> list[str]:
        return answers[name]

    fetch = replace(settings.fetch, resolver=dns)
    configs = {n: replace(c, fetch=replace(c.fetch, resolver=dns)) for n, c in settings.providers.configs.items()}
    return replace(settings, fetch=fetch, providers=replace(settings.providers, configs=configs))


async def test_a_rebinding_name_never_reaches_loopback_for_references_or_outputs(
        settings: Settings, replicate_fake: FakeReplicate, secret: FileHost) -> None:
    """The guard's DNS says 'localhost' is public; connecting by name would reach 127.0.0.1 (the system's
    answer). The request goes to the checked address instead, so nothing on loopback is read."""
    server = build_server(with_dns(settings, {"localhost": [PUBLIC]}))
    replicate_fake.file_base_url = f"http://localhost:{secret.port}"
    async with Client(server) as client:
        reference = await client.call_tool("edit_image", {"prompt": "x",
                                                          "images": [f"http://localhost:{secret.port}/a.png"]})
        output = await client.call_tool("generate_image", {"prompt": "a fox"})
    one_clear_line(reference, contains="fetching it failed (ConnectError)")
    assert output.is_error and "download failed (ConnectError)" in text_of(output)
    assert secret.seen == []


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]",
                                  "[::ffff:a9fe:a9fe]"])
async def test_ipv6_forms_of_private_ipv4_addresses_are_refused(server, replicate_fake: FakeReplicate,
                                                                 secret: FileHost, host: str) -> None:
    async with Client(server) as client:
        result = await client.call_tool("edit_image", {"prompt": "x", "images": [f"http://{host}:{secret.port}/a"]})
    one_clear_line(result, contains="private, loopback")
    assert replicate_fake.requests == [] and secret.seen == []


# ------------------------------------------------------------------------ 4. symlink swaps

SWAPPER = """
import os, sys, time
from pathlib import Path
allowed, outside, deadline = Path(sys.argv[1]), Path(sys.argv[2]), time.monotonic() + 30
inside = (allowed / "good.png").read_bytes()
i = 0
while time.monotonic() < deadline and not (allowed / ".stop").exists():
    tmp = allowed / f".swap-{i % 2}"
    if i % 2:
        tmp.symlink_to(outside / "secret.png")
    else:
        tmp.write_bytes(inside)
    os.replace(tmp, allowed / "img.png")
    i += 1
"""


async def test_a_symlink_swapped_in_after_the_check_is_not_followed(tmp_path: Path) -> None:
    """Another process swaps a file inside EASEL_INPUT_DIRS with a link to one outside, as fast as it
    can: every read returns the inside file or is refused; none returns the outside bytes. (Reading
    by name after the check leaked a few in every 150; bounded: 1000 reads, a 30 s swapper.)"""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    inside_bytes, outside_bytes = png(1), png(2)
    (outside / "secret.png").write_bytes(outside_bytes)
    (allowed / "good.png").write_bytes(inside_bytes)
    target = allowed / "img.png"
    target.write_bytes(inside_bytes)
    limits = InputLimits(input_dirs=(allowed,))
    results: list[bytes | str] = []
    async with await anyio.open_process([sys.executable, "-c", SWAPPER, str(allowed), str(outside)]) as swapper:
        try:
            for _ in range(1000):
                try:
                    [image] = await resolve_images([str(target)], storage=LocalStorage(tmp_path / "store"),
                                                   limits=limits, client=None)  # type: ignore[arg-type]
                    results.append(image.data)
                except InputError as exc:
                    results.append(str(exc))
        finally:
            (allowed / ".stop").touch()
            with anyio.fail_after(10):
                await swapper.wait()
    assert outside_bytes not in results
    refusals = ("outside the allowed", "changed while", "no such file", "cannot be resolved")
    assert all(r == inside_bytes or any(s in r for s in refusals) for r in results), \
        {r for r in results if isinstance(r, str)}


# ------------------------------------------------------------------------ 8. bad inputs, one line each

@pytest.fixture
def input_server(env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "in").mkdir()
    return build_server(Settings.from_env({**env, "EASEL_INPUT_DIRS": str(tmp_path / "in")}))


@pytest.mark.parametrize(("ref", "expected"), [
    ("http://example.com:99999/a.png", "port"),
    ("https://example.com:0/a.png", "port"),
    ("https://example.com:http/a.png", "port"),
    ("https://[::1/a.png", "not a valid URL"),
    ("https://exa mple.com/a.png", "could not be resolved"),
    ("https://xn--/a.png", "not a valid URL"),
    ("https://" + "a" * 70 + ".example.com/a.png", "could not be resolved"),
    ("https://example.com/" + "a" * 9000, "characters long"),
    ("/in/a\x00b.png", "NUL"),
    ("/" + "a" * 5000 + ".png", "characters long"),
])
async def test_bad_urls_and_paths_get_one_clear_line(input_server, replicate_fake: FakeReplicate,
                                                     ref: str, expected: str) -> None:
    async with Client(input_server) as client:
        result = await client.call_tool("edit_image", {"prompt": "x", "images": [ref]})
    assert "images[0]" in one_clear_line(result, contains=expected)
    assert replicate_fake.requests == []


async def test_odd_paths_inside_the_input_directory_get_one_clear_line(env: dict[str, str], tmp_path: Path,
                                                                       replicate_fake: FakeReplicate) -> None:
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    os.mkfifo(inputs / "pipe.png")
    (inputs / "loop.png").symlink_to(inputs / "loop.png")
    server = build_server(Settings.from_env({**env, "EASEL_INPUT_DIRS": str(inputs)}))
    cases = [(inputs / ("b" * 300 + ".png"), "cannot be read"), (inputs / "sub", "not a regular file"),
             (inputs / "pipe.png", "not a regular file"), (inputs / "nothing.png", "no such file"),
             (inputs / "loop.png", "")]
    async with Client(server) as client:
        for path, expected in cases:
            result = await client.call_tool("edit_image", {"prompt": "x", "images": [str(path)]})
            one_clear_line(result, contains=expected)
    assert replicate_fake.requests == []


# ------------------------------------------------------------------------ 7. link secrets

def test_a_short_link_secret_is_refused_at_start_up_by_name() -> None:
    with pytest.raises(ConfigError, match="EASEL_LINK_SECRET must be at least 32 bytes"):
        Settings.from_env({"EASEL_LINK_SECRET": "k9"})
    assert Settings.from_env({"EASEL_LINK_SECRET": "s" * 32}).http.link_secret == "s" * 32


async def test_the_real_process_says_which_variable_is_weak(env: dict[str, str]) -> None:
    with anyio.fail_after(30):
        done = await anyio.run_process([*EASEL], env={**os.environ, **env, "EASEL_LINK_SECRET": "tiny-k9"},
                                       check=False)
    err = done.stderr.decode()
    assert done.returncode == 2 and "EASEL_LINK_SECRET" in err and len(err.strip().splitlines()) == 1
    assert "tiny-k9" not in err


def test_a_link_dated_beyond_the_ttl_is_refused_even_when_signed() -> None:
    signer = LinkSigner(b"x" * 32, ttl=3600, clock=lambda: 1_000_000.0)
    image = "202611-" + "a" * 32 + ".png"
    far = 1_000_000 + 10 * 3600
    assert signer.verify(image, far, signer.sign(image, far)) == "invalid"
    assert signer.verify(image, 1_000_000 + 3600, signer.sign(image, 1_000_000 + 3600)) is None
    assert signer.verify(image, 999_999, signer.sign(image, 999_999)) == "expired"


# ------------------------------------------------------------------------ 9. the store path

class FullDisk(LocalStorage):
    """A store whose disk is full: every write fails the way LocalStorage reports it, whole or streamed."""

    async def put(self, data: bytes, mime_type: str, metadata: dict[str, Any]) -> Any:
        raise StorageError(f"Could not store the image in {self.root}: No space left on device.")

    def open_writer(self) -> Any:
        full = self

        class FullWriter(LocalWriter):
            def write(self, chunk: bytes) -> None:
                raise StorageError(f"Could not store the image in {full.root}: No space left on device.")

        return FullWriter(self)


@pytest.mark.parametrize("tool", ["generate_image", "run_replicate_model"])
async def test_when_storing_fails_the_error_gives_the_providers_link(settings: Settings, tmp_path: Path,
                                                                      replicate_fake: FakeReplicate, tool: str) -> None:
    server = build_server(settings, storage=FullDisk(tmp_path / "full"))
    args = ({"prompt": "a fox"} if tool == "generate_image" else
            {"model_name": "black-forest-labs/flux-1.1-pro", "model_inputs": {"prompt": "a fox"}})
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    text = one_clear_line(result, contains="could not be stored: Could not store the image")
    [download] = replicate_fake.downloads
    assert f"{replicate_fake.url}{download.path}" in text and "No space left on device" in text


class FillsUp(LocalStorage):
    """A disk with room for one image (job records under state/ are not images)."""

    async def put(self, data: bytes, mime_type: str, metadata: dict[str, Any]) -> Any:
        if any("state" not in p.relative_to(self.root).parts for p in self.root.rglob("*.json")):
            raise StorageError(f"Could not store the image in {self.root}: No space left on device.")
        return await super().put(data, mime_type, metadata)


async def test_a_model_whose_outputs_fill_the_disk_names_every_file_not_stored(
        settings: Settings, tmp_path: Path, replicate_fake: FakeReplicate) -> None:
    """Three paid-for files, room for one: the error names the stored one and where the other two still are."""
    version = replicate_fake.add_model("acme/triptych", output="images", count=3)
    server = build_server(settings, storage=FillsUp(tmp_path / "small"))
    async with Client(server) as client:
        result = await client.call_tool("run_replicate_model", {"model_name": f"acme/triptych:{version}",
                                                                "model_inputs": {"prompt": "a fox"}})
        text = one_clear_line(result, contains="No space left on device")
        kept = re.search(r"Stored: (easel://images/\S+)\.$", text.strip())
        assert kept, text
        assert (await client.read_resource(kept[1])).contents[0].blob
    first, *rest = [f"{replicate_fake.url}{d.path}" for d in replicate_fake.downloads]
    assert len(rest) == 2 and all(link in text for link in rest) and first not in text, text


def test_one_wait_window_default_and_the_retry_and_speed_settings_reach_the_providers() -> None:
    assert Settings().providers.wait_window == ProviderConfig(api_key=None).wait_window == 20
    s = Settings.from_env({"EASEL_RETRY_BASE": "0.25", "EASEL_IDEOGRAM_RENDERING_SPEED": "turbo"})
    assert {c.retry_base for c in s.providers.configs.values()} == {0.25}
    assert s.providers.configs["ideogram"].extra["rendering_speed"] == "TURBO"
    with pytest.raises(ConfigError, match="EASEL_IDEOGRAM_RENDERING_SPEED must be one of"):
        Settings.from_env({"EASEL_IDEOGRAM_RENDERING_SPEED": "ludicrous"})


def test_the_example_id_in_errors_is_this_months_form() -> None:
    from datetime import UTC, datetime

    from server.storage import ImageNotFound, parse_image_id

    before = f"{datetime.now(UTC):%Y%m}"
    with pytest.raises(ImageNotFound) as caught:
        parse_image_id("not-an-id")
    months = {before, f"{datetime.now(UTC):%Y%m}"}   # the call may straddle a month's end
    assert any(f"ids look like {m}-<32 hex>.png" in str(caught.value) for m in months)
