"""A plain file host on loopback: answers every GET with a body naming the path, or a redirect.

It stands for what must not be read on someone else's say-so (a service on the server's own
machine) or for an operator's proxy, and records every request it saw (path and headers).
"""

from __future__ import annotations

from tests.fakes._server import LoopbackServer, Waitable

__all__ = ["FileHost"]


class FileHost(Waitable):
    """A loopback server that answers every GET with a body naming the path, and records what it saw."""

    def __init__(self, redirect_to: str | None = None) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.redirect_to = redirect_to
        self.server = LoopbackServer(self)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        with self.cond:
            self.seen.append((scope["path"], headers))
        if self.redirect_to and scope["path"] == "/start":
            await send({"type": "http.response.start", "status": 302,
                        "headers": [(b"location", self.redirect_to.encode())]})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": f"secret from {scope['path']}".encode()})

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port
