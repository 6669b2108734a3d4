"""The real easel-mcp process, spoken to over stdio, SSE and streamable HTTP by the SDK client."""

from __future__ import annotations

import base64
import os
import subprocess

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client

from tests.support.processes import EASEL, http_server

pytestmark = pytest.mark.anyio


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
