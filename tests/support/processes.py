"""The real easel-mcp process over HTTP: start it on a free loopback port, wait until it is
healthy, stop it, and check it never wrote to stdout. Every wait is bounded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2

EASEL = [sys.executable, "-m", "server"]
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "probe", "version": "0"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def http_client(token: str | None = None) -> httpx2.AsyncClient:
    """An MCP-capable HTTP client (the SDK's httpx2), with the bearer token when given."""
    return httpx2.AsyncClient(headers=bearer(token) if token else {},
                              timeout=httpx2.Timeout(30.0, read=120.0))


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


def stop(proc: subprocess.Popen[Any]) -> None:
    """Terminate a process and reap it, killing it if it ignores the signal (bounded)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextmanager
def easel(args: list[str], env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A healthy easel-mcp process on a free port, its stderr kept in ``log``: (process, base URL)."""
    port = free_port()
    with open(log, "wb") as err:
        proc = subprocess.Popen([*EASEL, *args, "--port", str(port)], env={**os.environ, **env},
                                stdout=subprocess.PIPE, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, log.read_text)
        yield proc, base
    finally:
        stop(proc)
        assert proc.stdout is not None and proc.stdout.read() == b"", "HTTP server wrote to stdout"


@contextmanager
def http_server(args: list[str], env: dict[str, str]) -> Iterator[str]:
    """Like ``easel``, when only the base URL matters (stderr goes to a temporary file)."""
    with tempfile.TemporaryDirectory() as tmp, easel(args, env, Path(tmp) / "stderr.log") as (_, base):
        yield base
