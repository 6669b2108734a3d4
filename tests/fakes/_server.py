"""Run an ASGI app as a real HTTP server on 127.0.0.1, in a thread of its own.

Every vendor fake in this folder is a Starlette app served this way, so the code
under test talks to it over real sockets through the real SDKs. The server runs
on its own event loop in a daemon thread; tests on any loop (or none) can use it.

State that tests wait on lives behind a ``threading.Condition``: use
``await fake.wait_until(predicate, timeout)`` from async tests, never sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import uvicorn

__all__ = ["LoopbackServer", "Waitable"]


class Waitable:
    """Shared state guarded by a condition; tests block on predicates with a bound."""

    def __init__(self) -> None:
        self.cond = threading.Condition()

    def notify(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def wait_until_sync(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        with self.cond:
            ok = self.cond.wait_for(predicate, timeout=timeout)
        if not ok:
            raise TimeoutError(f"condition not met within {timeout}s")
        return ok

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        return await anyio.to_thread.run_sync(self.wait_until_sync, predicate, timeout)


class LoopbackServer:
    """Serve ``app`` on 127.0.0.1 at a free port until ``stop()``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        # IPPROTO_TCP explicitly: asyncio enables TCP_NODELAY only on sockets created that way,
        # and without it every response stalls ~40 ms on Nagle + delayed ACK.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # timeout_keep_alive: vendors' front ends keep an idle connection far longer than httpx's pool
        # (5 s), so the client always gives one up first. uvicorn's default of 5 s raced it: a create
        # sent on a connection the fake was closing failed with ReadError (bench/team.py, 2 in 100).
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=1, timeout_keep_alive=60)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name=f"fake-{self.port}", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> LoopbackServer:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            self.thread.join(0.01)
        raise RuntimeError("loopback server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        with contextlib.suppress(OSError):
            self.sock.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[LoopbackServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
