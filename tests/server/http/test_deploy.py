"""Team deployment over HTTP, against real easel-mcp processes: bearer auth, bind refusal,
DNS-rebinding checks, body limit, signed image links, readiness, JSON logs, graceful shutdown,
and stateless replicas sharing one OSS bucket."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from server.app import build_server
from server.config import Settings
from server.links import LinkSigner, link_secret
from server.storage import image_key
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.processes import EASEL, INITIALIZE, MCP_HEADERS, bearer, easel, free_port, http_client, http_server
from tests.support.replicate import TOKEN as REPLICATE_TOKEN

pytestmark = pytest.mark.anyio

AUTH = "easel-team-token-6f1d0c2b9a7e4453"
LINK_SECRET = "link-secret-for-tests-1b2c3d4e5f60"
LINK = re.compile(r"^http://127\.0\.0\.1:\d+/images/(?P<id>\d{6}-[0-9a-f]{32}\.\w+)\?exp=(?P<exp>\d+)&sig=[0-9a-f]{64}$")


async def generate(client: Client, prompt: str = "a lighthouse") -> dict:
    result = await client.call_tool("generate_image", {"prompt": prompt})
    assert not result.is_error, result.content
    [image] = result.structured_content["images"]
    return image


# ----------------------------------------------------------------------------- auth

@pytest.mark.parametrize("headers", [{}, bearer("wrong-token-0123456789abcdef")], ids=["no token", "wrong token"])
async def test_streamable_http_without_the_right_token_answers_401_with_www_authenticate(
        env: dict[str, str], headers: dict[str, str]) -> None:
    with http_server(["--transport", "http"], {**env, "EASEL_AUTH_TOKEN": AUTH}) as base:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{base}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer ") and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert AUTH not in r.text


@pytest.mark.parametrize("headers", [{}, bearer("wrong-token-0123456789abcdef")], ids=["no token", "wrong token"])
async def test_sse_without_the_right_token_answers_401_with_www_authenticate(
        env: dict[str, str], headers: dict[str, str]) -> None:
    with http_server(["--transport", "sse"], {**env, "EASEL_AUTH_TOKEN": AUTH}) as base:
        async with httpx.AsyncClient() as http:
            stream = await http.get(f"{base}/sse", headers=headers)
            post = await http.post(f"{base}/messages/?session_id=0123456789abcdef0123456789abcdef",
                                   json=INITIALIZE, headers=headers)
    for r in (stream, post):
        assert r.status_code == 401
        assert 'Bearer error="invalid_token"' in r.headers["www-authenticate"]


async def test_the_right_token_opens_streamable_http_and_sse(env: dict[str, str]) -> None:
    env = {**env, "EASEL_AUTH_TOKEN": AUTH}
    with http_server(["--transport", "http", "--stateless"], env) as base:
        async with http_client(AUTH) as http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as c:
            assert "generate_image" in {t.name for t in (await c.list_tools()).tools}
    with http_server(["--transport", "sse"], env) as base:
        async with Client(sse_client(f"{base}/sse", headers=bearer(AUTH))) as c:
            assert "generate_image" in {t.name for t in (await c.list_tools()).tools}


async def test_health_readiness_and_image_links_need_no_bearer_token(env: dict[str, str]) -> None:
    with http_server(["--transport", "http"], {**env, "EASEL_AUTH_TOKEN": AUTH}) as base:
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{base}/healthz")).status_code == 200
            assert (await http.get(f"{base}/readyz")).status_code == 200
            # the route is there (a bad link is refused by its signature, not by auth)
            assert (await http.get(f"{base}/images/202601-{'0' * 32}.png?exp=1&sig={'0' * 64}")).status_code == 403


# ----------------------------------------------------------------------------- binding

def test_binding_every_interface_without_a_token_is_refused_with_the_way_out(env: dict[str, str]) -> None:
    proc = subprocess.run([*EASEL, "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port())],
                          env={**os.environ, **env}, capture_output=True, timeout=30)
    assert proc.returncode == 2 and proc.stdout == b""
    err = proc.stderr.decode()
    assert "0.0.0.0" in err and "EASEL_AUTH_TOKEN" in err and "127.0.0.1" in err


async def test_binding_every_interface_with_a_token_serves_and_requires_it(env: dict[str, str]) -> None:
    with http_server(["--transport", "http", "--host", "0.0.0.0"], {**env, "EASEL_AUTH_TOKEN": AUTH}) as base:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert r.status_code == 401
        async with http_client(AUTH) as http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as c:
            assert (await c.list_tools()).tools


def test_a_short_token_is_a_clear_startup_error_that_does_not_echo_it(env: dict[str, str]) -> None:
    proc = subprocess.run([*EASEL, "--transport", "http", "--port", str(free_port())],
                          env={**os.environ, **env, "EASEL_AUTH_TOKEN": "hunter2"}, capture_output=True, timeout=30)
    assert proc.returncode == 2 and b"EASEL_AUTH_TOKEN" in proc.stderr and b"hunter2" not in proc.stderr


# ----------------------------------------------------------------------------- DNS rebinding, body limit

async def test_a_foreign_host_header_is_refused_unless_it_is_allowed(env: dict[str, str]) -> None:
    evil = {**MCP_HEADERS, "Host": "evil.example"}
    with http_server(["--transport", "http"], env) as base:
        async with httpx.AsyncClient() as http:
            assert (await http.post(f"{base}/mcp", json=INITIALIZE, headers=evil)).status_code == 421
            origin = {**MCP_HEADERS, "Origin": "https://evil.example"}
            assert (await http.post(f"{base}/mcp", json=INITIALIZE, headers=origin)).status_code == 403
    allowed = {**env, "EASEL_ALLOWED_HOSTS": "img.example.com, evil.example",
               "EASEL_ALLOWED_ORIGINS": "https://evil.example"}
    with http_server(["--transport", "http"], allowed) as base:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{base}/mcp", json=INITIALIZE, headers={**evil, "Origin": "https://evil.example"})
            assert r.status_code == 200, r.text
            # loopback names keep working next to the configured ones; others are still refused
            assert (await http.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)).status_code == 200
            other = {**MCP_HEADERS, "Host": "other.example"}
            assert (await http.post(f"{base}/mcp", json=INITIALIZE, headers=other)).status_code == 421


async def test_a_body_over_the_limit_gets_413_and_the_default_takes_base64_images(env: dict[str, str]) -> None:
    def padded(size: int) -> bytes:
        body = {**INITIALIZE, "params": {**INITIALIZE["params"], "_meta": {"pad": ""}}}
        raw = json.dumps(body).encode()
        return raw.replace(b'"pad": ""', b'"pad": "' + b"A" * (size - len(raw)) + b'"')

    with http_server(["--transport", "http"], {**env, "EASEL_MAX_BODY_BYTES": "4096"}) as base:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{base}/mcp", content=padded(5000), headers=MCP_HEADERS)
            assert r.status_code == 413 and "too large" in r.text.lower()
            assert (await http.post(f"{base}/mcp", content=padded(3000), headers=MCP_HEADERS)).status_code == 200
    with http_server(["--transport", "http"], env) as base:   # default 48 MiB: above the SDK's 4 MiB
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{base}/mcp", content=padded(6 * 1024 * 1024), headers=MCP_HEADERS)
            assert r.status_code == 200


# ----------------------------------------------------------------------------- signed links

async def test_results_over_http_carry_signed_links_that_serve_the_exact_bytes(env: dict[str, str]) -> None:
    env = {**env, "EASEL_LINK_SECRET": LINK_SECRET}
    with http_server(["--transport", "http"], env) as base:
        async with Client(f"{base}/mcp") as client:
            image = await generate(client)
            stored = base64.b64decode((await client.read_resource(image["uri"])).contents[0].blob)
        match = LINK.match(image["url"])
        assert match and match["id"] == image["uri"].rsplit("/", 1)[1] and image["stored_in"] == "local"
        async with httpx.AsyncClient() as http:
            r = await http.get(image["url"])
        assert r.status_code == 200 and r.content == stored
        assert r.headers["content-type"] == image["mime_type"]
        assert r.headers["x-content-type-options"] == "nosniff"


async def test_expired_tampered_foreign_and_traversal_links_are_refused(env: dict[str, str]) -> None:
    env = {**env, "EASEL_LINK_SECRET": LINK_SECRET}
    signer = LinkSigner(LINK_SECRET.encode())
    with http_server(["--transport", "http"], env) as base:
        async with Client(f"{base}/mcp") as client:
            image = await generate(client)
        image_id = LINK.match(image["url"])["id"]
        exp = int(LINK.match(image["url"])["exp"])
        other_id = f"{image_id[:7]}{'f' * 32}.png"
        sig = image["url"].rsplit("sig=", 1)[1]
        tampered = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        async with httpx.AsyncClient(base_url=base) as http:
            async def status(path: str) -> int:
                return (await http.get(path)).status_code

            assert await status(signer.path(image_id, exp)) == 200            # the test signs like the server
            assert await status(signer.path(image_id, int(time.time()) - 5)) == 403          # expired
            assert await status(f"/images/{image_id}?exp={exp}&sig={tampered}") == 403       # tampered
            assert await status(f"/images/{image_id}?exp={exp + 1}&sig={sig}") == 403        # exp changed
            assert await status(f"/images/{image_id}?exp={exp}&sig={signer.sign(other_id, exp)}") == 403  # other id's
            assert await status(f"/images/{image_id}") == 403                                # unsigned
            assert await status(signer.path(other_id, exp)) == 404                           # signed, unknown
            wrong_key = LinkSigner(b"not-the-server-secret").path(image_id, exp)
            assert await status(wrong_key) == 403
            key = image_key(image_id)
            for path in (f"/images/..%2F..%2F{key}", "/images/..%2F..%2F..%2Fetc%2Fpasswd", "/images/%2e%2e",
                         f"/images/{image_id}%00.png", f"/images/{image_id.upper()}"):
                for candidate in (path, f"{path}?exp={exp}&sig={signer.sign(path.rsplit('/', 1)[1], exp)}"):
                    assert await status(candidate) == 404, candidate


async def test_links_use_the_public_url_behind_a_proxy(env: dict[str, str]) -> None:
    env = {**env, "EASEL_PUBLIC_URL": "https://img.example.com/easel/", "EASEL_LINK_SECRET": LINK_SECRET}
    with http_server(["--transport", "http"], env) as base:
        async with Client(f"{base}/mcp") as client:
            image = await generate(client)
        url = urlsplit(image["url"])
        assert (url.scheme, url.netloc) == ("https", "img.example.com") and url.path.startswith("/easel/images/")
        async with httpx.AsyncClient() as http:   # the proxy strips /easel; the server answers the rest
            assert (await http.get(f"{base}{url.path.removeprefix('/easel')}?{url.query}")).status_code == 200


def test_the_link_secret_falls_back_to_one_derived_from_the_token_never_the_token_itself() -> None:
    with_token = Settings.from_env({"EASEL_AUTH_TOKEN": AUTH})
    assert link_secret(with_token.http) == link_secret(Settings.from_env({"EASEL_AUTH_TOKEN": AUTH}).http)
    assert AUTH.encode() not in link_secret(with_token.http) and len(link_secret(with_token.http)) == 32
    assert link_secret(Settings.from_env({"EASEL_AUTH_TOKEN": AUTH, "EASEL_LINK_SECRET": LINK_SECRET}).http) == \
        LINK_SECRET.encode()
    assert link_secret(Settings.from_env({}).http) != link_secret(Settings.from_env({}).http)   # random per process
    assert AUTH not in repr(with_token) and LINK_SECRET not in repr(Settings.from_env({"EASEL_LINK_SECRET": LINK_SECRET}))


async def test_stdio_and_in_memory_results_keep_file_urls(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        image = await generate(client)
    assert image["url"].startswith("file://")


# ----------------------------------------------------------------------------- readiness

async def test_readyz_lists_keyed_providers_and_storage_and_says_503_when_storage_breaks(
        env: dict[str, str], tmp_path: Path) -> None:
    storage_dir = tmp_path / "ready-images"
    env = {**env, "EASEL_AUTH_TOKEN": AUTH, "EASEL_STORAGE_DIR": str(storage_dir)}
    with http_server(["--transport", "http"], env) as base:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{base}/readyz")
            assert r.status_code == 200
            body = r.json()
            assert body["status"] == "ready" and body["providers_with_keys"] == ["replicate"]
            assert body["storage"] == {"kind": "local", "usable": True}
            shutil.rmtree(storage_dir)   # images and the catalog
            storage_dir.write_text("not a directory")     # storage can no longer be written
            broken = await http.get(f"{base}/readyz")
            assert broken.status_code == 503 and broken.json()["storage"]["usable"] is False
            assert (await http.get(f"{base}/healthz")).status_code == 200   # alive, just not ready
    for text in (r.text, broken.text):
        assert AUTH not in text and REPLICATE_TOKEN not in text and str(storage_dir) not in text


# ----------------------------------------------------------------------------- logs

async def test_json_logs_give_one_line_per_tool_call_without_secrets(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    long_prompt = "a lighthouse on a cliff at dusk, " * 20
    env = {**env, "EASEL_LOG_FORMAT": "json", "EASEL_AUTH_TOKEN": AUTH}
    with easel(["--transport", "http"], env, log) as (_, base):
        async with http_client(AUTH) as http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as c:
            image = await generate(c, long_prompt)
            bad = await c.call_tool("generate_image", {"prompt": "x", "model": "Flux 1.1 Pro", "count": 9})
            assert bad.is_error
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    calls = [line for line in lines if line.get("tool") == "generate_image"]
    assert len(calls) == 2
    ok, failed = calls
    assert ok["outcome"] == "ok" and ok["model"] == image["model"] and ok["provider"] == "replicate"
    assert isinstance(ok["duration_ms"], int) and ok["request_id"] and ok["images"] == 1
    assert len(ok["prompt"]) <= 200 and ok["prompt_chars"] == len(long_prompt)
    assert failed["outcome"] == "error:InvalidArguments" and failed["request_id"] != ok["request_id"]
    assert AUTH not in text and REPLICATE_TOKEN not in text and long_prompt not in text
    assert "iVBOR" not in text and "/9j/" not in text   # no base64 PNG or JPEG data


# ----------------------------------------------------------------------------- shutdown

async def test_new_calls_are_refused_while_draining(settings: Settings) -> None:
    server = build_server(settings)
    server.draining = True
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse"})
    assert result.is_error and "shutting down" in result.content[0].text


async def test_sigterm_cancels_a_slow_generation_at_the_provider_and_exits(
        env: dict[str, str], replicate_fake: FakeReplicate, tmp_path: Path) -> None:
    replicate_fake.hold = True
    outcome: dict[str, object] = {}
    with easel(["--transport", "http"], {**env, "EASEL_SHUTDOWN_GRACE": "1"}, tmp_path / "stderr.log") as (proc, base):
        async with Client(f"{base}/mcp") as client, anyio.create_task_group() as tg:
            async def call() -> None:
                outcome["result"] = await client.call_tool("generate_image", {"prompt": "a slow lighthouse"})

            tg.start_soon(call)
            await replicate_fake.wait_until(lambda: replicate_fake.predictions, timeout=15)
            proc.send_signal(signal.SIGTERM)
            await replicate_fake.wait_until(lambda: replicate_fake.cancels, timeout=15)
            assert await anyio.to_thread.run_sync(proc.wait, 15) is not None
    assert list(replicate_fake.cancels) == list(replicate_fake.predictions)
    result = outcome["result"]   # the caller hears why, before the connection closes
    assert result.is_error and "shutting down" in result.content[0].text  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- replicas

async def test_two_stateless_replicas_share_one_oss_bucket(env: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("server.storage.oss")
    from tests.fakes.oss_fake import FakeOSS

    bucket = "easel-team"
    with FakeOSS(access_key_id="LTAI-team", access_key_secret="oss-team-secret-0000", buckets=(bucket,)).running() as oss:
        shared = {**env, "EASEL_STORAGE": "oss", "OSS_ACCESS_KEY_ID": "LTAI-team",
                  "OSS_ACCESS_KEY_SECRET": "oss-team-secret-0000", "OSS_ENDPOINT": oss.endpoint,
                  "OSS_BUCKET": bucket, "EASEL_AUTH_TOKEN": AUTH}
        a_env = {**shared, "EASEL_STORAGE_DIR": str(tmp_path / "a")}
        b_env = {**shared, "EASEL_STORAGE_DIR": str(tmp_path / "b")}
        with http_server(["--transport", "http", "--stateless"], a_env) as a, \
                http_server(["--transport", "http", "--stateless"], b_env) as b:
            async with http_client(AUTH) as http:
                async with Client(streamable_http_client(f"{a}/mcp", http_client=http)) as client:
                    image = await generate(client)
                async with Client(streamable_http_client(f"{b}/mcp", http_client=http)) as client:
                    blob = base64.b64decode((await client.read_resource(image["uri"])).contents[0].blob)
                    listed = {r.uri for r in (await client.list_resources()).resources}
                async with httpx.AsyncClient() as plain:
                    ready = (await plain.get(f"{b}/readyz")).json()
    assert image["stored_in"] == "oss" and "/images/" not in urlsplit(image["url"]).path
    assert len(blob) == image["bytes"] and image["uri"] in listed
    assert ready["storage"]["kind"] == "oss"
