"""SIGTERM over HTTP, against a real easel-mcp process: the listener stays up answering /readyz
with 503, new sessions and calls are refused, and a call in flight finishes and reaches its
client (both handshakes, both HTTP transports) before the process exits."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from server.storage import image_key
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.processes import INITIALIZE, MCP_HEADERS, easel

pytestmark = pytest.mark.anyio

HANDSHAKES = [pytest.param(["--transport", "sse"], "legacy", id="sse-initialize-handshake"),
              pytest.param(["--transport", "http"], "auto", id="streamable-http-2026"),
              pytest.param(["--transport", "http"], "legacy", id="streamable-http-initialize-handshake"),
              pytest.param(["--transport", "http", "--stateless"], "legacy", id="stateless-http-initialize-handshake")]


def connect(base: str, transport: str, mode: str) -> Client:
    target: Any = sse_client(f"{base}/sse") if transport == "sse" else f"{base}/mcp"
    return Client(target, mode=mode)  # type: ignore[arg-type]


async def until_draining(http: httpx.AsyncClient, base: str) -> httpx.Response:
    """Poll /readyz until it says 503 (the signal is handled within a tick); bounded."""
    with anyio.fail_after(15):
        while (r := await http.get(f"{base}/readyz")).status_code == 200:
            await anyio.sleep(0.05)
    return r


async def opens_a_session(http: httpx.AsyncClient, base: str, transport: str) -> httpx.Response:
    if transport == "sse":
        async with http.stream("GET", f"{base}/sse") as r:
            if r.status_code != 200:      # a refusal has a short body; an open stream is left unread
                await r.aread()
            return r
    return await http.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)


@pytest.mark.parametrize(("args", "mode"), HANDSHAKES)
async def test_sigterm_delivers_the_stored_image_of_a_call_in_flight_while_readyz_says_503(
        env: dict[str, str], replicate_fake: FakeReplicate, tmp_path: Path, args: list[str], mode: str) -> None:
    replicate_fake.hold = True             # the prediction runs until the test lets it finish
    transport = args[1]
    outcome: dict[str, Any] = {}
    env = {**env, "EASEL_SHUTDOWN_GRACE": "60"}
    with easel(args, env, tmp_path / "stderr.log") as (proc, base):
        async with connect(base, transport, mode) as client, httpx.AsyncClient(timeout=10) as http:
            async with anyio.create_task_group() as tg:
                async def call() -> None:
                    outcome["result"] = await client.call_tool("generate_image", {"prompt": "a slow lighthouse"})

                tg.start_soon(call)
                await replicate_fake.wait_until(lambda: replicate_fake.predictions, timeout=15)
                proc.send_signal(signal.SIGTERM)

                ready = await until_draining(http, base)        # the listener is still up
                assert ready.status_code == 503 and ready.json()["status"] == "draining"
                assert (await http.get(f"{base}/healthz")).status_code == 200
                if "--stateless" not in args:     # stateless HTTP has no sessions to refuse
                    refused = await opens_a_session(http, base, transport)
                    assert refused.status_code == 503 and "shutting down" in refused.text
                    assert refused.headers["retry-after"]
                another = await client.call_tool("generate_image", {"prompt": "one more lighthouse"})
                assert another.is_error and "shutting down" in another.content[0].text
                assert len(replicate_fake.predictions) == 1       # the refused call spent nothing
                assert proc.poll() is None

                replicate_fake.release()      # the call in flight finishes during the grace
            # then the process exits, ending the client's streams cleanly (the client exits after it)
            assert await anyio.to_thread.run_sync(proc.wait, 20) is not None
    result = outcome["result"]
    assert not result.is_error, result.content
    [image] = result.structured_content["images"]
    stored = Path(env["EASEL_STORAGE_DIR"]) / image_key(image["uri"].rsplit("/", 1)[1])
    assert stored.stat().st_size == image["bytes"] > 0
    assert not replicate_fake.cancels


async def test_a_second_sigterm_stops_at_once_and_cancels_the_provider_job(
        env: dict[str, str], replicate_fake: FakeReplicate, tmp_path: Path) -> None:
    replicate_fake.hold = True
    log = tmp_path / "stderr.log"
    with easel(["--transport", "http"], {**env, "EASEL_SHUTDOWN_GRACE": "600"}, log) as (proc, base):
        async with Client(f"{base}/mcp") as client, httpx.AsyncClient(timeout=10) as http:
            async with anyio.create_task_group() as tg:
                async def call() -> None:
                    try:
                        await client.call_tool("generate_image", {"prompt": "a slow lighthouse"})
                    except Exception:   # the connection may close before the cancellation's answer
                        pass

                tg.start_soon(call)
                await replicate_fake.wait_until(lambda: replicate_fake.predictions, timeout=15)
                proc.send_signal(signal.SIGTERM)
                await until_draining(http, base)
                with anyio.fail_after(15):            # the drain has begun, and says how to cut it short
                    while "signal again to stop at once" not in log.read_text():
                        await anyio.sleep(0.05)
                proc.send_signal(signal.SIGTERM)      # the operator does not want to wait 600 s
                await replicate_fake.wait_until(lambda: replicate_fake.cancels, timeout=15)
                assert await anyio.to_thread.run_sync(proc.wait, 20) is not None
                tg.cancel_scope.cancel()
    assert list(replicate_fake.cancels) == list(replicate_fake.predictions)
