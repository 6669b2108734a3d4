"""Graceful stop of the HTTP transports: answer every call in flight before closing.

On the first SIGTERM (or Ctrl-C) the server *drains*, with its listener still up:

1. ``EaselServer.draining`` is set at once: ``/readyz`` answers 503 (a load balancer takes
   the replica out), new tool calls get a tool error saying the server is shutting down,
   and :class:`DrainGate` answers 503 to anything that would open a new session.
2. Calls in flight get ``EASEL_SHUTDOWN_GRACE`` seconds to finish; the rest are cancelled
   (their provider jobs with them) and answer so (``EaselServer.drain``).
3. Requests still writing their answers are given a moment (:meth:`DrainGate.settled`).
4. Only then does uvicorn's own exit run: the listener closes, open SSE streams end
   (sse-starlette's exit flag), connections close.

A second signal skips what is left of the grace. sse-starlette would end every SSE
stream at the first signal (it patches ``uvicorn.Server.handle_exit``), cutting off
answers the server is about to send; :class:`DrainingServer` defers that exit to step 4.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:   # only the type: the server is handed in, so this module imports nothing of the app
    from server.app import EaselServer

__all__ = ["DrainGate", "DrainingServer", "refusal"]

log = logging.getLogger("easel.http")

SETTLE_TIMEOUT = 5.0     # after the drain: longest wait for answers still being written
SETTLE_QUIET = 0.25      # ...and a short quiet spell for answers on long-lived SSE streams
RETRY_AFTER = "5"


def refusal(status: int, message: str, *, json_rpc: bool, headers: Mapping[str, str] | None = None) -> ASGIApp:
    """A small ASGI response: a JSON-RPC error body (id null, like the SDK's own refusals) or plain text."""
    if json_rpc:
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}).encode()
        kind = b"application/json"
    else:
        body, kind = (message + "\n").encode(), b"text/plain; charset=utf-8"
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", kind), (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})

    return app


def opens_session(scope: Scope, transport: str) -> bool:
    """Would this request start a new MCP session? GET /sse does; so does a POST /mcp without a
    session id on the initialize-handshake protocol. 2026-07-28 requests carry no session at all,
    and neither does stateless HTTP: there, only new tool calls are refused."""
    path, method = scope.get("path", ""), scope.get("method", "")
    if transport == "sse":
        return method == "GET" and path.rstrip("/") == "/sse"
    if transport != "http":
        return False
    if method != "POST" or path.rstrip("/") != "/mcp":
        return False
    headers = dict(scope.get("headers") or ())
    version = headers.get(b"mcp-protocol-version")
    legacy = version is None or version.decode("latin-1") in HANDSHAKE_PROTOCOL_VERSIONS
    return legacy and b"mcp-session-id" not in headers


class DrainGate:
    """ASGI middleware: while draining, refuse new sessions (503, ``Retry-After``); always count the
    POSTs being answered, so the shutdown can wait until their answers are out; and end event
    streams the way HTTP expects when they are stopped (see :func:`_ending_cleanly`).

    ``transport`` is ``sse``, ``http`` (stateful streamable HTTP) or ``stateless``."""

    def __init__(self, app: ASGIApp, easel: EaselServer, transport: str) -> None:
        self.app, self.easel, self.transport = app, easel, transport
        self.answering = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.easel.draining and opens_session(scope, self.transport):
            message = "easel-mcp is shutting down and opens no new sessions; connect again in a moment."
            await refusal(503, message, json_rpc=self.transport != "sse",
                          headers={"Retry-After": RETRY_AFTER, "Connection": "close"})(scope, receive, send)
            return
        if scope.get("method") == "GET":
            await _ending_cleanly(self.app, scope, receive, send)
            return
        if scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        self.answering += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.answering -= 1

    async def settled(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait (bounded) until no POST is still being answered, then a short quiet spell: a result
        leaves the tool before it reaches the wire (on SSE, on the session's long-lived stream)."""
        with anyio.move_on_after(timeout):
            while self.answering:
                await anyio.sleep(0.02)
        await anyio.sleep(SETTLE_QUIET)


async def _ending_cleanly(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app``, making sure a response it started and returned from is also ended. sse-starlette
    stops an event stream (at the end of a drain, or when a session expires) without its final chunk,
    and the SDK's SSE endpoint then sends a stray second response; the client would read "incomplete
    chunked read" instead of the end of the stream. Not done when the app fails: that stays visible."""
    started = ended = False

    async def once(message: Message) -> None:
        nonlocal started, ended
        if message["type"] == "http.response.start":
            if started:
                return
            started = True
        elif message["type"] == "http.response.body":
            if ended:
                return
            ended = not message.get("more_body", False)
        await send(message)

    await app(scope, receive, once)
    if started and not ended:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class DrainingServer(uvicorn.Server):
    """uvicorn, with the easel drain between the signal and uvicorn's own exit."""

    def __init__(self, config: uvicorn.Config, easel: EaselServer, gate: DrainGate, grace: float) -> None:
        super().__init__(config)
        self.easel, self.gate, self.grace = easel, gate, grace
        self._signal: int | None = None
        self._draining: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._signal is None:        # first signal: drain with the listener up (see the module docstring)
            self._signal = sig
            self.easel.draining = True  # at once: /readyz says 503, new calls and sessions are refused
            return
        super().handle_exit(sig, frame)  # a second one: stop now

    async def on_tick(self, counter: int) -> bool:
        if self._signal is not None and self._draining is None and not self.should_exit:
            self._draining = asyncio.create_task(self._drain_then_exit())
        return await super().on_tick(counter)

    async def _drain_then_exit(self) -> None:
        assert self._signal is not None
        running = len(self.easel.in_flight)
        log.warning("%s: shutting down; refusing new sessions and calls, %d call(s) in flight get up to %gs "
                    "(signal again to stop at once)", signal.Signals(self._signal).name, running, self.grace)
        await self.easel.drain(self.grace)
        await self.gate.settled()
        log.info("drained: closing the listener and the remaining connections")
        super().handle_exit(self._signal, None)   # uvicorn's exit (and sse-starlette's, which ends SSE streams)

    async def shutdown(self, sockets: Any = None) -> None:
        if self._draining is not None and not self._draining.done():   # stopped by a second signal
            self._draining.cancel()
        await self.easel.drain(0)   # whatever still runs is cancelled now (no-op after a full drain)
        await super().shutdown(sockets)
