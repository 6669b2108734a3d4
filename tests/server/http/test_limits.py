"""Connections and sessions are bounded, against a real easel-mcp process over loopback: idle,
slow-header and slow-body connections are closed (slow requests get 408), idle keep-alive
connections close, connections over the limit get 503, and sessions are capped (503) and
expire when idle, on streamable HTTP and on SSE. Limits are made small; every wait is bounded."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from anyio.abc import SocketStream
from mcp import Client
from mcp.client.sse import sse_client

from tests.fakes.replicate_fake import FakeReplicate
from tests.support.processes import INITIALIZE, MCP_HEADERS, easel

pytestmark = pytest.mark.anyio

QUICK = {"EASEL_HEADER_TIMEOUT": "1", "EASEL_BODY_TIMEOUT": "1", "EASEL_KEEPALIVE_TIMEOUT": "1"}
HEAD = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@asynccontextmanager
async def tcp(base: str) -> AsyncIterator[SocketStream]:
    url = urlsplit(base)
    async with await anyio.connect_tcp(url.hostname or "127.0.0.1", url.port or 80) as stream:
        yield stream


async def until_closed(stream: SocketStream, trickle: bytes = b"", timeout: float = 20) -> bytes:
    """Everything the server sends until it closes the connection. With ``trickle``, keep sending one
    byte of it every 0.1 s meanwhile (a slow client): total deadlines must not be extended by that."""
    received = b""

    async def drip() -> None:
        for byte in trickle:
            await anyio.sleep(0.1)
            try:
                await stream.send(bytes([byte]))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return

    with anyio.fail_after(timeout):   # without a deadline on the server this fails here
        async with anyio.create_task_group() as tg:
            tg.start_soon(drip)
            while True:
                try:
                    received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    break
            tg.cancel_scope.cancel()
    return received


async def test_idle_slow_header_and_slow_body_connections_are_closed_and_slow_requests_get_408(
        env: dict[str, str], tmp_path: Path) -> None:
    outcomes: dict[str, list[bytes]] = {"idle": [], "slow head": [], "slow body": []}
    with easel(["--transport", "http"], {**env, **QUICK}, tmp_path / "stderr.log") as (_, base):
        async def one(kind: str) -> None:
            async with tcp(base) as s:
                if kind == "idle":
                    outcomes[kind].append(await until_closed(s))
                elif kind == "slow head":
                    await s.send(b"GET /healthz HTTP/1.1\r\n")
                    outcomes[kind].append(await until_closed(s, trickle=b"X-Slow: " + b"a" * 200))
                else:
                    await s.send(HEAD + b"Content-Length: 400\r\n\r\n{")
                    outcomes[kind].append(await until_closed(s, trickle=b" " * 200))

        async with anyio.create_task_group() as tg:
            for kind in outcomes:
                for _ in range(8):
                    tg.start_soon(one, kind)
        async with httpx.AsyncClient() as http:     # the server is still fine for everyone else
            assert (await http.get(f"{base}/healthz")).status_code == 200
    assert outcomes["idle"] == [b""] * 8            # nothing was asked, nothing is answered: just closed
    for kind, what in (("slow head", b"head"), ("slow body", b"body")):
        for answer in outcomes[kind]:
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:200]
            assert b"connection: close" in answer.lower() and b"request " + what + b" did not arrive" in answer


async def test_an_idle_keep_alive_connection_is_closed_after_its_response(env: dict[str, str], tmp_path: Path) -> None:
    with easel(["--transport", "http"], {**env, **QUICK}, tmp_path / "stderr.log") as (_, base):
        async with tcp(base) as s:
            await s.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = await until_closed(s)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"status":"ok"}')


async def test_connections_over_the_limit_get_503_and_room_comes_back(env: dict[str, str], tmp_path: Path) -> None:
    limits = {"EASEL_MAX_CONNECTIONS": "6", "EASEL_HEADER_TIMEOUT": "60"}
    with easel(["--transport", "http"], {**env, **limits}, tmp_path / "stderr.log") as (_, base):
        async def health() -> bytes:
            async with tcp(base) as s:
                await s.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return await until_closed(s)

        held: list[SocketStream] = []
        try:
            for _ in range(5):
                held.append(await anyio.connect_tcp("127.0.0.1", urlsplit(base).port or 80))
            assert (await health()).startswith(b"HTTP/1.1 200 ")      # the 6th connection is served
            held.append(await anyio.connect_tcp("127.0.0.1", urlsplit(base).port or 80))
            refused = await health()                                  # the 7th is not
            assert refused.startswith(b"HTTP/1.1 503 ") and b"connection: close" in refused.lower()
        finally:
            for s in held:
                await s.aclose()
        with anyio.fail_after(15):
            while not (await health()).startswith(b"HTTP/1.1 200 "):
                await anyio.sleep(0.05)


PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


def in_session(session_id: str) -> dict[str, str]:
    return {**MCP_HEADERS, "Mcp-Session-Id": session_id,
            "Mcp-Protocol-Version": INITIALIZE["params"]["protocolVersion"]}


async def test_streamable_http_sessions_are_capped_and_room_comes_back_when_one_ends(
        env: dict[str, str], tmp_path: Path) -> None:
    with easel(["--transport", "http"], {**env, "EASEL_MAX_SESSIONS": "3"}, tmp_path / "stderr.log") as (_, base):
        async with httpx.AsyncClient(timeout=10) as http:
            async def initialize() -> httpx.Response:
                return await http.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)

            sessions = [(await initialize()).headers["mcp-session-id"] for _ in range(3)]
            over = await initialize()
            assert over.status_code == 503 and over.json()["error"]["message"] == "Too many open sessions"
            assert (await http.post(f"{base}/mcp", json=PING, headers=in_session(sessions[0]))).status_code == 200
            assert (await http.delete(f"{base}/mcp", headers=in_session(sessions[0]))).status_code == 200
            assert (await initialize()).status_code == 200


async def test_an_idle_streamable_http_session_expires_and_its_id_answers_404(
        env: dict[str, str], tmp_path: Path) -> None:
    limits = {"EASEL_MAX_SESSIONS": "1", "EASEL_SESSION_IDLE_TIMEOUT": "1"}
    with easel(["--transport", "http"], {**env, **limits}, tmp_path / "stderr.log") as (_, base):
        async with httpx.AsyncClient(timeout=10) as http:
            async def initialize() -> httpx.Response:
                return await http.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS)

            first = (await initialize()).headers["mcp-session-id"]
            with anyio.fail_after(15):       # the only place frees up once the idle session is ended
                while (fresh := await initialize()).status_code == 503:
                    await anyio.sleep(0.1)
            assert fresh.status_code == 200
            expired = await http.post(f"{base}/mcp", json=PING, headers=in_session(first))
            assert expired.status_code == 404 and expired.json()["error"]["message"] == "Session not found"


async def test_sse_sessions_are_capped(env: dict[str, str], tmp_path: Path) -> None:
    with easel(["--transport", "sse"], {**env, "EASEL_MAX_SESSIONS": "2"}, tmp_path / "stderr.log") as (_, base):
        async with httpx.AsyncClient(timeout=10) as http:
            async with http.stream("GET", f"{base}/sse") as first, http.stream("GET", f"{base}/sse") as second:
                assert first.status_code == second.status_code == 200
                over = await http.get(f"{base}/sse")
                assert over.status_code == 503 and "Too many open sessions" in over.text
                assert over.headers["retry-after"]
            with anyio.fail_after(15):      # closed streams free their places
                while True:
                    async with http.stream("GET", f"{base}/sse") as again:
                        if again.status_code == 200:
                            break
                    await anyio.sleep(0.1)


async def test_an_idle_sse_session_ends_but_not_during_a_long_call(
        env: dict[str, str], replicate_fake: FakeReplicate, tmp_path: Path) -> None:
    replicate_fake.latency = 2.5        # the call outlasts the idle timeout, with nothing sent meanwhile
    with easel(["--transport", "sse"], {**env, "EASEL_SESSION_IDLE_TIMEOUT": "1"}, tmp_path / "stderr.log") as (_, base):
        async with Client(sse_client(f"{base}/sse"), mode="legacy") as client:
            result = await client.call_tool("generate_image", {"prompt": "a slow lighthouse"})
            assert not result.is_error, result.content
        async with httpx.AsyncClient(timeout=10) as http, http.stream("GET", f"{base}/sse") as idle:
            with anyio.fail_after(15):       # an idle stream is ended by the server, cleanly
                body = b"".join([chunk async for chunk in idle.aiter_bytes()])
        assert body.startswith(b"event: endpoint")
        session_id = re.search(rb"session_id=([0-9a-f]{32})", body).group(1).decode()  # type: ignore[union-attr]
        async with httpx.AsyncClient(timeout=10) as http:   # and its session is gone
            gone = await http.post(f"{base}/messages/?session_id={session_id}", json=PING)
        assert gone.status_code == 404


def test_limit_settings_have_defaults_and_bad_values_name_the_variable() -> None:
    from providers.errors import ConfigError
    from server.config import Settings

    s = Settings.from_env({})
    assert (s.limits.header_timeout, s.limits.body_timeout, s.limits.keepalive_timeout) == (10.0, 60.0, 30.0)
    assert (s.limits.max_connections, s.limits.max_sessions, s.limits.session_idle_timeout) == (512, 256, 600.0)
    for name, value in (("EASEL_MAX_SESSIONS", "0"), ("EASEL_HEADER_TIMEOUT", "soon"),
                        ("EASEL_MAX_CONNECTIONS", "1"), ("EASEL_SESSION_IDLE_TIMEOUT", "-5")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})
