"""The real easel-mcp process, spoken to over stdio, SSE and streamable HTTP by the SDK client."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client

pytestmark = pytest.mark.anyio
EASEL = [sys.executable, "-m", "server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base: str, proc: subprocess.Popen[bytes], stderr: Callable[[], str]) -> None:
    """Poll /healthz until the child answers; fail with its stderr if it exits first."""
    with httpx.Client() as http:
        for _ in range(300):
            try:
                if http.get(f"{base}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise AssertionError(stderr())
            time.sleep(0.05)  # waiting for a child process to listen: bounded, 15 s in all
    raise AssertionError("server did not become healthy")


@contextmanager
def http_server(args: list[str], env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([*EASEL, *args, "--port", str(port)], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, lambda: proc.stderr.read().decode() if proc.stderr else "")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        out = proc.stdout.read() if proc.stdout else b""
        assert out == b"", "HTTP server wrote to stdout"


async def generate_and_read(client: Client) -> None:
    result = await client.call_tool("generate_image", {"prompt": "a lighthouse"})
    assert not result.is_error, result.content
    [image] = result.structured_content["images"]
    blob = base64.b64decode((await client.read_resource(image["uri"])).contents[0].blob)
    assert len(blob) == image["bytes"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stdio(env: dict[str, str], mode: str) -> None:
    params = StdioServerParameters(command=EASEL[0], args=EASEL[1:], env={**os.environ, **env})
    async with Client(params, mode=mode) as client:
        await generate_and_read(client)


async def test_sse(env: dict[str, str]) -> None:
    with http_server(["--transport", "sse"], env) as base:
        async with Client(sse_client(f"{base}/sse")) as client:
            await generate_and_read(client)


@pytest.mark.parametrize("stateless", [False, True])
async def test_streamable_http(env: dict[str, str], stateless: bool) -> None:
    with http_server(["--transport", "http", *(["--stateless"] if stateless else [])], env) as base:
        async with Client(f"{base}/mcp") as client:
            await generate_and_read(client)


def test_the_banner_goes_to_stderr_and_says_where_images_go(env: dict[str, str]) -> None:
    proc = subprocess.run([*EASEL], env={**os.environ, **env}, input=b"", capture_output=True, timeout=30)
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert env["EASEL_STORAGE_DIR"] in err and "replicate" in err and env["REPLICATE_API_TOKEN"] not in err


def test_a_bad_setting_is_a_clear_startup_error(env: dict[str, str]) -> None:
    proc = subprocess.run([*EASEL], env={**os.environ, **env, "EASEL_TIMEOUT": "soon"}, input=b"",
                          capture_output=True, timeout=30)
    assert proc.returncode == 2 and b"EASEL_TIMEOUT" in proc.stderr and proc.stdout == b""
