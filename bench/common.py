"""What every figure shares: the result row, the run's context, the real easel-mcp process
(stdio and streamable HTTP) and the loopback Replicate fake it talks to."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from bench.pictures import Factory
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "r8_bench_token_0123456789abcdef"
FLUX = "black-forest-labs/flux-1.1-pro"


@dataclass
class Row:
    metric: str
    unit: str
    values: list[float]                  # one figure per run
    target: str = "-"
    ok: bool | None = None               # None: informational, no target
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan


@dataclass
class Context:
    args: argparse.Namespace
    fake: FakeReplicate
    tmp: Path
    log: Any                              # server stderr goes here
    rows: list[Row] = field(default_factory=list)
    images: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    generated: int = 0                    # images made by the fake through the servers
    requests_seen: int = 0                # fake requests during those generations

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))]


def fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:g}"


def easel_command() -> list[str]:
    script = Path(sys.executable).with_name("easel-mcp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "server"]


def reference_command() -> list[str]:
    """bench/reference_server.py: the least an MCP image server can do, the yardstick beside easel-mcp."""
    return [sys.executable, str(ROOT / "bench" / "reference_server.py")]


def server_env(ctx: Context, store: Path, **extra: str) -> dict[str, str]:
    return {"EASEL_STORAGE_DIR": str(store), "REPLICATE_API_TOKEN": TOKEN, "REPLICATE_BASE_URL": ctx.fake.url,
            "EASEL_WAIT_WINDOW": "20", "EASEL_POLL_INTERVAL": "0.05", "EASEL_POLL_MAX": "0.25",
            "EASEL_PROGRESS_INTERVAL": "5", **extra}


def base_environ() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME", "SYSTEMROOT")
    return {k: os.environ[k] for k in keep if k in os.environ}


@asynccontextmanager
async def stdio_session(ctx: Context, env: dict[str, str], command: list[str] | None = None
                        ) -> AsyncIterator[Client]:
    cmd = command or easel_command()
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=env, cwd=str(ROOT))
    async with Client(stdio_client(params, errlog=ctx.log)) as client:
        yield client


def children() -> set[int]:
    me, found = os.getpid(), set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(entry.path, "stat").read_text()
                if int(stat[stat.rindex(")") + 2:].split()[1]) == me:
                    found.add(int(entry.name))
    return found


def proc_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def cpu_seconds(pid: int) -> float:
    """user + system CPU time the process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy so far, all cores (/proc/stat: not idle, not iowait;
    steal counts, as time the VM's processes could not run)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def http_server(ctx: Context, env: dict[str, str], *options: str,
                command: list[str] | None = None) -> Iterator[tuple[str, int]]:
    """easel-mcp (or ``command``, which takes the same options) over HTTP on a free port, once /healthz answers."""
    cmd = command or easel_command()
    port = free_port()
    proc = subprocess.Popen([*cmd, "--transport", "http", "--port", str(port), *options],
                            env={**base_environ(), **env}, cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=ctx.log)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(trust_env=False) as http:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{base}/healthz").status_code == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(cmd)} --transport http did not start (see {ctx.log.name})")
                time.sleep(0.05)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result.content}")
    return result


async def gather(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    async def one(i: int) -> None:
        results[i] = await calls[i]()

    async with anyio.create_task_group() as tg:
        for i in range(len(calls)):
            tg.start_soon(one, i)
    return results


def set_fake(ctx: Context, *, latency: float, factory: Factory | None) -> None:
    with ctx.fake.cond:
        ctx.fake.latency = latency
        ctx.fake.image_factory = factory


def forget_outputs(ctx: Context) -> None:
    """The fake keeps every image it served; drop them so the bench process stays small."""
    with ctx.fake.cond:
        ctx.fake.outputs.clear()


def count_requests(ctx: Context, since: int, images: int) -> None:
    with ctx.fake.cond:
        ctx.requests_seen += len(ctx.fake.requests) - since
    ctx.generated += images


def n_requests(ctx: Context) -> int:
    with ctx.fake.cond:
        return len(ctx.fake.requests)


def flux_payload(prompt: str) -> dict[str, Any]:
    return {"prompt": prompt, "aspect_ratio": "custom", "width": 1024, "height": 1024,
            "output_format": "jpg", "output_quality": 90}
