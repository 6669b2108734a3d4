"""Bounds on what one client can hold open over HTTP: connections, slow requests, sessions.

* Connections: uvicorn's ``limit_concurrency`` (``EASEL_MAX_CONNECTIONS``) answers 503 once
  that many connections (or requests) are open; idle keep-alive connections close after
  ``EASEL_KEEPALIVE_TIMEOUT``.
* Slow requests: uvicorn has no read deadline, so a client that opens a connection and
  sends nothing, or a header or body a byte at a time, kept it forever.
  :class:`GuardedH11Protocol` gives the request head ``EASEL_HEADER_TIMEOUT`` seconds
  (from the connection opening, or from the previous response) and the body
  ``EASEL_BODY_TIMEOUT`` seconds in all (total deadlines, so trickling bytes does not
  extend them). A late request gets ``408 Request Timeout``; a connection that sent
  nothing at all is just closed.
* Sessions: on streamable HTTP the SDK's session manager caps open sessions (503) and ends
  idle ones (their id then answers 404): ``EASEL_MAX_SESSIONS``,
  ``EASEL_SESSION_IDLE_TIMEOUT``. The SSE transport has neither, so :class:`SseSessions`
  does the same there: 503 beyond the cap, and a stream whose session has been idle (no
  message posted, no request being handled, nothing sent but pings) is ended.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import time
from typing import Any

import anyio
import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.drain import refusal

__all__ = ["GuardedH11Protocol", "SseSessions", "guarded_protocol"]

log = logging.getLogger("easel.http")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with total read deadlines for the request head and body."""

    header_timeout = 10.0
    body_timeout = 60.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._phase: str | None = None      # "head", "body" or None (nothing to wait for)
        self._partial = False               # bytes of a request head arrived in this phase
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        if self._phase == "head":
            self._partial = True
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Arm the deadline that fits what we are reading from the client, when that changes."""
        if self.transport.is_closing():
            self._cancel()
            return
        state = self.conn.their_state
        phase = "head" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
        if phase == self._phase:
            return
        self._cancel()
        self._phase, self._partial = phase, False
        if phase is not None:
            timeout = self.header_timeout if phase == "head" else self.body_timeout
            self._deadline = self.loop.call_later(timeout, self._expired, phase)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: str) -> None:
        self._deadline = None
        if self.transport.is_closing() or phase != self._phase:
            return
        if phase == "body" and self.flow.read_paused:   # the app is not reading: our slowness, not theirs
            self._deadline = self.loop.call_later(self.body_timeout, self._expired, phase)
            return
        peer = "%s:%d" % self.client if self.client else "a client"
        if phase == "head" and not self._partial:
            log.debug("closing an idle connection from %s", peer)
        else:
            what, limit = ("head", self.header_timeout) if phase == "head" else ("body", self.body_timeout)
            log.info("408 to %s: the request %s did not arrive within %gs", peer, what, limit)
            answered = phase == "body" and self.cycle is not None and self.cycle.response_started
            if not answered:   # (the app may have answered early, e.g. 413, while the body still trickles)
                self.transport.write(_timeout_response(what, limit))
        self.transport.close()


def _timeout_response(what: str, limit: float) -> bytes:
    body = f"Request timeout: the request {what} did not arrive within {limit:g} seconds.\n".encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def guarded_protocol(header_timeout: float, body_timeout: float) -> type[GuardedH11Protocol]:
    """The protocol class to hand uvicorn (``Config(http=...)``), with these deadlines."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"header_timeout": header_timeout, "body_timeout": body_timeout})


# ----------------------------------------------------------------------------- SSE sessions

class _Session:
    def __init__(self) -> None:
        self.id: str | None = None
        self.busy = 0                        # requests of this session being handled
        self.last = time.monotonic()         # last message posted, answer sent or request finished

    def touch(self) -> None:
        self.last = time.monotonic()


_current: contextvars.ContextVar[_Session | None] = contextvars.ContextVar("easel_sse_session", default=None)
_SESSION_ID = re.compile(rb"session_id=([0-9a-f]{32})")


class SseSessions:
    """ASGI middleware for the SSE transport: a cap on open /sse streams and an idle expiry."""

    def __init__(self, app: ASGIApp, *, max_sessions: int, idle_timeout: float,
                 sse_path: str = "/sse", message_path: str = "/messages/") -> None:
        self.app, self.max_sessions, self.idle_timeout = app, max_sessions, idle_timeout
        self.sse_path, self.message_path = sse_path, message_path
        self.streams = 0
        self.sessions: dict[str, _Session] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == self.sse_path:
            await self._stream(scope, receive, send)
            return
        session = None
        if scope["type"] == "http" and scope["path"].startswith(self.message_path):
            found = _SESSION_ID.search(scope.get("query_string", b""))
            session = self.sessions.get(found.group(1).decode()) if found else None
        if session is None:
            await self.app(scope, receive, send)
            return
        session.touch()
        token = _current.set(session)       # the SDK handles a posted message in the poster's context
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.streams >= self.max_sessions:
            log.warning("refusing a new SSE session: %d are open (EASEL_MAX_SESSIONS)", self.streams)
            await refusal(503, "Too many open sessions; try again later.", json_rpc=False,
                          headers={"Retry-After": "30"})(scope, receive, send)
            return
        session = _Session()

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.body":
                body = message.get("body", b"")
                if session.id is None and (found := _SESSION_ID.search(body)):
                    session.id = found.group(1).decode()
                    self.sessions[session.id] = session
                if body and not body.startswith(b":"):        # ":" starts an SSE comment: a keep-alive ping
                    session.touch()
            await send(message)

        self.streams += 1
        token = _current.set(session)
        expired = False
        try:
            async with anyio.create_task_group() as tg:
                async def expire_when_idle() -> None:
                    nonlocal expired
                    while True:
                        left = session.last + self.idle_timeout - time.monotonic()
                        if left <= 0 and not session.busy:
                            break
                        await anyio.sleep(left + 0.05 if left > 0 else min(1.0, self.idle_timeout))
                    expired = True
                    tg.cancel_scope.cancel()

                tg.start_soon(expire_when_idle)
                await self.app(scope, receive, watched)
                tg.cancel_scope.cancel()
        finally:
            _current.reset(token)
            self.streams -= 1
            if session.id is not None:
                self.sessions.pop(session.id, None)
        if expired:   # the stream is ended cleanly by server.drain.DrainGate, which wraps this
            log.info("SSE session %s idle for %gs: closed", session.id, self.idle_timeout)


async def track_sse_requests(ctx: Any, call_next: Any) -> Any:
    """SDK server middleware: an SSE session with a request being handled (a long tool call) is not idle."""
    session = _current.get()
    if session is None:
        return await call_next(ctx)
    session.busy += 1
    try:
        return await call_next(ctx)
    finally:
        session.busy -= 1
        session.touch()
