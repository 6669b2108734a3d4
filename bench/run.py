"""easel-mcp benchmark: ``make bench`` (``make bench ARGS="--quick"``, ``ARGS="--runs 9"``).

Runs the real ``easel-mcp`` process (stdio, and streamable HTTP for one figure)
against the loopback Replicate fake from ``tests/fakes`` and prints a table:
median and spread (min-max over runs) of each figure next to its target. It
prints figures; it asserts nothing, and no test depends on it.

Figures:

* cold start        spawn -> ``tools/list`` answered, easel-mcp vs a bare MCPServer (bench/bare_server.py)
* overhead          generate_image with a provider that answers at once with a ~1 MiB JPEG, minus the
                    time the same create + download takes when called directly with httpx
* concurrency       8 concurrent generate_image calls / illustrate_content count 8 at 1 s provider
                    latency, wall time over one call; again over streamable HTTP with 8 clients
* requests/image    HTTP requests the fake saw per image when the model finishes inside the wait window
* memory            peak RSS growth of the server while 8 images of ~8 MiB are in flight
* storage at scale  resources/list and a resource read with 10,000 stored images
* catalog           rebuilding the catalog from 100,000 records; resources/list (first and a deep page)
                    and search_images (words + a filter) over 100,000 images

Options: ``--runs N`` (default 5), ``--quick`` (smoke run, under a minute), ``--latency S`` (provider
latency for the concurrency figures, default 1), ``--calls N`` (overhead sequence, default 50),
``--images N`` (store size, default 10000), ``--catalog-images N`` (catalog size, default 100000), ``--only cold,overhead,...``, ``--profile`` (where the
overhead goes: component timings and an in-process cProfile), ``--importtime`` (the slowest imports at
start-up), ``--json PATH`` (the rows as JSON).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import io
import itertools
import json
import logging
import math
import os
import platform
import pstats
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402
import httpx  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from PIL import Image  # noqa: E402

from tests.fakes.replicate_fake import FakeReplicate  # noqa: E402

TOKEN = "r8_bench_token_0123456789abcdef"
MIB = 1024 * 1024
FLUX = "black-forest-labs/flux-1.1-pro"
BARE_SERVER = Path(__file__).with_name("bare_server.py")
SECTIONS = ("cold", "overhead", "concurrency", "http", "memory", "storage", "catalog")
ARTICLE = """# The lighthouse keepers

## The island
A small rocky island sits at the mouth of the bay, battered by winter storms. The old stone
lighthouse has guided fishing boats home for two hundred years.

## The keeper
Martha, the last keeper, climbs the spiral staircase every evening to light the lamp. Her dog
follows her up the iron steps and watches the harbour from the gallery.

## The storm
One October night a storm breaks over the coast. Waves crash over the rocks, the wind howls and
a trawler struggles against the sea, its deck lights flickering in the rain.

## The rescue
Martha signals with the great lamp while the lifeboat crew launches from the harbour. The
trawler's crew is pulled aboard as dawn breaks over the grey water.

## The village
In the village the bakery opens early and the fishermen gather at the market, telling the story
of the night over coffee and warm bread.

## The museum
Years later the lighthouse becomes a museum. Children press their faces to the lens and visitors
read the keeper's logbooks in the lamp room.

## The garden
Behind the cottage Martha's garden of sea kale and wild roses still blooms every summer, tended
by volunteers from the village school.

## The future
Solar panels now power an automatic beacon, but on clear evenings the old lamp is lit again for
the festival, and the whole bay turns out to watch.
"""


# ----------------------------------------------------------------------------- results
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


# ----------------------------------------------------------------------------- images
def photo_like(side: int, seed: int, grain: float = 0.3) -> Image.Image:
    """A stand-in for a generated picture: smooth colour fields, mid-scale structure and film grain
    (``grain`` 0..1). Compresses like a detailed photo, not like pure noise (the worst case for
    previews) nor like a flat test card (the best case)."""
    rng = random.Random(seed)
    fields = Image.frombytes("RGB", (16, 16), rng.randbytes(16 * 16 * 3)).resize((side, side), Image.BICUBIC)
    mid = Image.frombytes("RGB", (side // 8, side // 8), rng.randbytes((side // 8) ** 2 * 3))
    picture = Image.blend(fields, mid.resize((side, side), Image.BILINEAR), 0.3)
    grain_img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    return Image.blend(picture, grain_img, grain)


def _encode(img: Image.Image, fmt_: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt_ == "JPEG":
        img.save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def jpeg_of_about(target: int, side: int | None = None) -> bytes:
    """A photo-like JPEG of about ``target`` bytes: at ``side`` x ``side`` by choosing the quality,
    or at quality 90 by choosing the side."""
    if side is not None:
        img = photo_like(side, 1)
        lo, hi, best = 50, 98, b""
        while lo <= hi:
            q = (lo + hi) // 2
            data = _encode(img, "JPEG", q)
            if not best or abs(len(data) - target) < abs(len(best) - target):
                best = data
            lo, hi = (q + 1, hi) if len(data) < target else (lo, q - 1)
        return best
    guess = 1024
    data = _encode(photo_like(guess, 2), "JPEG", 90)
    side = int(guess * math.sqrt(target / len(data)))
    return _encode(photo_like(side, 2), "JPEG", 90)


def png_of_about(target: int) -> bytes:
    guess = 1024
    data = _encode(photo_like(guess, 3), "PNG")
    side = int(guess * math.sqrt(target / len(data)))
    return _encode(photo_like(side, 3), "PNG")


def tagged(data: bytes, mime: str, n: int) -> bytes:
    """The same picture with ``n`` written into a comment: distinct bytes (so distinct ids, no
    deduplication) at no encoding cost."""
    text = f"easel-bench {os.getpid()} {n}".encode()
    if mime == "image/jpeg":   # COM segment right after SOI
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]
    chunk = b"tEXt" + b"bench\x00" + text   # PNG: a tEXt chunk right after IHDR
    at = 8 + 25
    return data[:at] + struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[at:]


class Factory:
    """``FakeReplicate.image_factory``: a fixed picture, distinct bytes per prediction."""

    _counter = itertools.count(1)

    def __init__(self, data: bytes, mime: str) -> None:
        self.data, self.mime = data, mime

    def __call__(self, prediction: dict[str, Any]) -> tuple[bytes, str]:
        return tagged(self.data, self.mime, next(self._counter)), self.mime


def image_info(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as img:
        return f"{img.format} {img.width}x{img.height}, {len(data) / MIB:.2f} MiB"


# ----------------------------------------------------------------------------- processes
def easel_command() -> list[str]:
    script = Path(sys.executable).with_name("easel-mcp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "server"]


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def http_server(ctx: Context, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = subprocess.Popen([*easel_command(), "--transport", "http", "--port", str(port)],
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
                    raise RuntimeError(f"easel-mcp --transport http did not start (see {ctx.log.name})")
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


# ----------------------------------------------------------------------------- cold start
def cpu_seconds(pid: int) -> float:
    """user + system CPU time the process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_cold(ctx: Context) -> None:
    env = server_env(ctx, ctx.tmp / "cold-store")
    bare_cmd = [sys.executable, str(BARE_SERVER)]

    async def spawn_to_tools_list(cmd: list[str] | None) -> tuple[float, float]:
        """Wall time spawn -> tools/list answered, and the CPU time the child used up to then."""
        before = children()
        started = time.perf_counter()
        async with stdio_session(ctx, env, cmd) as client:
            tools = await client.list_tools(cache_mode="bypass")
            elapsed = time.perf_counter() - started
            [pid] = children() - before
            cpu = cpu_seconds(pid)
        assert tools.tools
        return elapsed, cpu

    await spawn_to_tools_list(None)          # page cache, .pyc files: not part of the figure
    await spawn_to_tools_list(bare_cmd)
    easel, bare, ratios, cpu_ratios = [], [], [], []
    for i in range(ctx.args.cold_runs):
        pair = {}
        for which in (("easel", "bare") if i % 2 == 0 else ("bare", "easel")):
            pair[which] = await spawn_to_tools_list(None if which == "easel" else bare_cmd)
        easel.append(pair["easel"][0] * 1000)
        bare.append(pair["bare"][0] * 1000)
        ratios.append(pair["easel"][0] / pair["bare"][0])
        cpu_ratios.append(pair["easel"][1] / pair["bare"][1])
    ratio = statistics.median(easel) / statistics.median(bare)
    ctx.add(Row("cold start: easel-mcp, spawn -> tools/list (stdio)", "ms", easel))
    ctx.add(Row("cold start: bare MCPServer, same way", "ms", bare))
    ctx.add(Row("cold start ratio easel / bare (wall)", "x", ratios, "<= 1.30", statistics.median(ratios) <= 1.3,
                note=f"median of {ctx.args.cold_runs} interleaved pairs' ratios; ratio of the medians {ratio:.2f}"))
    ctx.add(Row("  same, child CPU time (robust to a busy machine)", "x", cpu_ratios))


# ----------------------------------------------------------------------------- overhead
def flux_payload(prompt: str) -> dict[str, Any]:
    return {"prompt": prompt, "aspect_ratio": "custom", "width": 1024, "height": 1024,
            "output_format": "jpg", "output_quality": 90}


async def provider_baseline(ctx: Context, calls: int) -> list[float]:
    """The same create (Prefer: wait) + download, straight to the fake with httpx: provider time."""
    times = []
    async with httpx.AsyncClient(base_url=ctx.fake.url, trust_env=False,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for i in range(calls + 3):
            started = time.perf_counter()
            created = await http.post(f"/v1/models/{FLUX}/predictions", headers={"Prefer": "wait=20"},
                                      json={"input": flux_payload(f"baseline {i}")})
            created.raise_for_status()
            body = created.json()
            assert body["status"] == "succeeded", body
            download = await http.get(body["output"])
            download.raise_for_status()
            assert len(download.content) > 1000
            if i >= 3:
                times.append(time.perf_counter() - started)
    forget_outputs(ctx)
    return times


async def overhead_run(ctx: Context, run: int, calls: int, **extra_env: str) -> tuple[list[float], float, float]:
    """One server, ``calls`` sequential generate_image calls: (per-call overhead ms, provider ms, first-call ms)."""
    baseline = statistics.median(await provider_baseline(ctx, calls))
    env = server_env(ctx, ctx.tmp / f"overhead-{run}-{len(extra_env)}", **extra_env)
    async with stdio_session(ctx, env) as client:
        started = time.perf_counter()
        await call(client, "generate_image", {"prompt": "warm-up 0"})
        first = (time.perf_counter() - started - baseline) * 1000
        for i in range(1, 3):
            await call(client, "generate_image", {"prompt": f"warm-up {i}"})
        since, times = n_requests(ctx), []
        for i in range(calls):
            started = time.perf_counter()
            result = await call(client, "generate_image", {"prompt": f"a lighthouse at dusk, take {i}"})
            times.append(time.perf_counter() - started)
            assert len(result.structured_content["images"]) == 1
        count_requests(ctx, since, calls)
    forget_outputs(ctx)
    return [(t - baseline) * 1000 for t in times], baseline * 1000, first


def preview_time(data: bytes, times: int = 20) -> float:
    """What the server's preview step costs for ``data`` on this machine now (ms, median)."""
    from server.images import make_preview

    spent = []
    for _ in range(times + 1):
        started = time.perf_counter()
        make_preview(data, max_px=512, max_bytes=100_000)
        spent.append((time.perf_counter() - started) * 1000)
    return statistics.median(spent[1:])


async def bench_overhead(ctx: Context) -> None:
    set_fake(ctx, latency=0.0, factory=Factory(*ctx.images["1m"]))
    calls = ctx.args.calls
    p50s, p99s, base_p50s, first, off_p50s, preview_alone = [], [], [], [], [], []
    for run in range(ctx.args.runs):
        over, baseline, first_call = await overhead_run(ctx, run, calls)
        p50s.append(pct(over, 50))
        p99s.append(pct(over, 99))
        base_p50s.append(baseline)
        first.append(first_call)
        over, _, _ = await overhead_run(ctx, run, max(10, calls // 2), EASEL_PREVIEW="off")
        off_p50s.append(pct(over, 50))
        preview_alone.append(preview_time(ctx.images["1m"][0]))
    size = image_info(ctx.images["1m"][0])
    ctx.add(Row("  provider time: same create+download via httpx (p50)", "ms", base_p50s,
                note=f"{size}; the fake answers the create at once (latency 0)"))
    ctx.add(Row("overhead per generate_image call, p50 (call - provider)", "ms", p50s, "<= 15 ms",
                statistics.median(p50s) <= 15, note=f"{calls} calls per run on one stdio connection"))
    ctx.add(Row("overhead per generate_image call, p99", "ms", p99s))
    ctx.add(Row("  overhead p50 with EASEL_PREVIEW=off", "ms", off_p50s))
    ctx.add(Row("  the preview alone: make_preview of that image, median", "ms", preview_alone,
                note="in the bench process, right after each run; libjpeg's entropy decode is most of it, "
                     "and it is on every call's critical path"))
    ctx.add(Row("  first call after start (lazy imports, clients)", "ms", first))


# ----------------------------------------------------------------------------- concurrency
def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


async def bench_concurrency(ctx: Context) -> None:
    latency = ctx.args.latency
    factory = Factory(*ctx.images["1m"])
    env = server_env(ctx, ctx.tmp / "concurrency")
    singles, r8, rill, server_cpu, bench_cpu = [], [], [], [], []
    before = children()
    async with stdio_session(ctx, env) as client:
        [pid] = children() - before
        set_fake(ctx, latency=0.0, factory=factory)
        await call(client, "generate_image", {"prompt": "warm-up"})
        await call(client, "illustrate_content", {"content": ARTICLE, "count": 2})
        set_fake(ctx, latency=latency, factory=factory)
        for run in range(ctx.args.runs):
            since = n_requests(ctx)
            started = time.perf_counter()
            await call(client, "generate_image", {"prompt": f"one lighthouse {run}"})
            single = time.perf_counter() - started

            cpu0, own0 = cpu_seconds(pid), own_cpu()
            started = time.perf_counter()
            results = await gather(*[lambda i=i: call(client, "generate_image", {"prompt": f"lighthouse {run}.{i}"})
                                     for i in range(8)])
            eight = time.perf_counter() - started
            server_cpu.append((cpu_seconds(pid) - cpu0) / 8 * 1000)
            bench_cpu.append((own_cpu() - own0) / 8 * 1000)
            assert sum(len(r.structured_content["images"]) for r in results) == 8

            started = time.perf_counter()
            result = await call(client, "illustrate_content", {"content": ARTICLE, "count": 8, "seed": run})
            illustrate = time.perf_counter() - started
            assert len(result.structured_content["images"]) == 8, result.structured_content["errors"]
            count_requests(ctx, since, 17)
            forget_outputs(ctx)
            singles.append(single * 1000)
            r8.append(eight / single)
            rill.append(illustrate / single)
    ctx.add(Row(f"one generate_image at {latency:g} s provider latency (stdio)", "ms", singles,
                note="1 MiB JPEG"))
    ctx.add(Row("8 concurrent generate_image, one stdio connection / one", "x", r8, "<= 1.20",
                statistics.median(r8) <= 1.2,
                note=f"CPU per image during the burst: server {statistics.median(server_cpu):.0f} ms, "
                     f"bench process (client + fake) {statistics.median(bench_cpu):.0f} ms, on "
                     f"{os.cpu_count()} cores"))
    ctx.add(Row("illustrate_content count 8 / one generate_image", "x", rill, "<= 1.20",
                statistics.median(rill) <= 1.2))


async def bench_http(ctx: Context) -> None:
    latency = ctx.args.latency
    factory = Factory(*ctx.images["1m"])
    env = server_env(ctx, ctx.tmp / "http")
    singles, r8, server_cpu = [], [], []
    with http_server(ctx, env) as (base, pid):
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(Client(f"{base}/mcp")) for _ in range(8)]
            set_fake(ctx, latency=0.0, factory=factory)
            await gather(*[lambda c=c: c.list_tools(cache_mode="bypass") for c in clients])
            await gather(*[lambda c=c, i=i: call(c, "generate_image", {"prompt": f"warm-up {i}"})
                           for i, c in enumerate(clients)])
            set_fake(ctx, latency=latency, factory=factory)
            for run in range(ctx.args.runs):
                since = n_requests(ctx)
                started = time.perf_counter()
                await call(clients[run % 8], "generate_image", {"prompt": f"one lighthouse {run}"})
                single = time.perf_counter() - started
                cpu0 = cpu_seconds(pid)
                started = time.perf_counter()
                await gather(*[lambda c=c, i=i: call(c, "generate_image", {"prompt": f"lighthouse {run}.{i}"})
                               for i, c in enumerate(clients)])
                eight = time.perf_counter() - started
                server_cpu.append((cpu_seconds(pid) - cpu0) / 8 * 1000)
                count_requests(ctx, since, 9)
                forget_outputs(ctx)
                singles.append(single * 1000)
                r8.append(eight / single)
    ctx.add(Row(f"one generate_image at {latency:g} s latency (streamable HTTP)", "ms", singles))
    ctx.add(Row("8 clients x 1 generate_image over streamable HTTP / one", "x", r8, "<= 1.20",
                statistics.median(r8) <= 1.2,
                note=f"server CPU per image during the burst {statistics.median(server_cpu):.0f} ms"))


# ----------------------------------------------------------------------------- memory
class RssSampler:
    """VmRSS of a process every few milliseconds, in a thread: a cross-check of VmHWM."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, KeyError):
                self.peak = max(self.peak, proc_kib(self.pid, "VmRSS"))
            self._stop.wait(0.003)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def memory_run(ctx: Context, key: str, run: int) -> tuple[float, float]:
    """Peak RSS growth (KiB, by VmHWM and by sampling) of a fresh server while 8 images are in flight."""
    env = server_env(ctx, ctx.tmp / f"memory-{key}-{run}")
    before = children()
    async with stdio_session(ctx, env) as client:
        [pid] = children() - before
        set_fake(ctx, latency=0.0, factory=None)            # warm-up with the fake's small default image:
        await call(client, "generate_image", {"prompt": "warm-up"})   # Pillow, replicate, httpx pools loaded
        await anyio.sleep(0.2)
        baseline = proc_kib(pid, "VmRSS")
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")   # reset VmHWM to the current RSS
        set_fake(ctx, latency=0.5, factory=Factory(*ctx.images[key]))  # all 8 created before any finishes
        since = n_requests(ctx)
        with RssSampler(pid) as sampler:
            results = await gather(*[lambda i=i: call(client, "generate_image", {"prompt": f"big {run}.{i}"})
                                     for i in range(8)])
            await anyio.sleep(0.05)
        hwm = proc_kib(pid, "VmHWM")
        count_requests(ctx, since, 8)
        assert sum(len(r.structured_content["images"]) for r in results) == 8
    forget_outputs(ctx)
    return (hwm - baseline) / 1024, (sampler.peak - baseline) / 1024


async def bench_memory(ctx: Context) -> None:
    for key, label in (("8m-jpeg", "JPEG"), ("8m-png", "PNG")):
        if key == "8m-png" and ctx.args.quick:
            continue
        data = ctx.images[key][0]
        in_flight = 8 * len(data) / MIB
        growth, sampled = [], []
        for run in range(ctx.args.memory_runs):
            g, s = await memory_run(ctx, key, run)
            growth.append(g)
            sampled.append(s)
        limit = 3 * in_flight
        ctx.add(Row(f"peak RSS growth, 8 x {len(data) / MIB:.1f} MiB {label} in flight", "MiB", growth,
                    f"<= {limit:.0f} MiB (3x)", statistics.median(growth) <= limit,
                    note=f"{image_info(data)}; growth/bytes in flight {statistics.median(growth) / in_flight:.2f}; "
                         f"sampled VmRSS peak {statistics.median(sampled):.0f} MiB"))


# ----------------------------------------------------------------------------- storage at scale
def fill_store(root: Path, count: int) -> list[str]:
    """``count`` stored images written with LocalStorage.put_sync (fsync skipped: this is set-up)."""
    from server.storage.local import LocalStorage

    store = LocalStorage(root)
    store.check_writable()
    png = _encode(photo_like(32, 4), "PNG")
    real_fsync, ids = os.fsync, []
    os.fsync = lambda fd: None    # durability is not what is measured; 20k fsyncs would take minutes
    try:
        for i in range(count):
            data = tagged(png, "image/png", i)
            stored = store.put_sync(data, "image/png", {
                "width": 32, "height": 32, "prompt": f"stored image {i}: a lighthouse on a rocky island at dusk, "
                "photorealistic, long exposure, dramatic sky" * 2, "model": "Flux 1.1 Pro", "provider": "replicate",
                "provider_model": FLUX, "parameters": flux_payload(f"stored image {i}"), "seed": i,
                "prediction_id": f"bench{i:021d}", "tool": "generate_image", "user_prompt": "a lighthouse",
                "size": "square", "style": "any"})
            ids.append(stored.image_id)
    finally:
        os.fsync = real_fsync
    return ids


async def bench_storage(ctx: Context) -> None:
    root = ctx.tmp / "store-at-scale"
    started = time.perf_counter()
    ids = fill_store(root, ctx.args.images)
    os.sync()   # write the fill back now, not while listing is being timed
    fill = time.perf_counter() - started
    reps = 10
    lists, reads, pages = [], [], []
    async with stdio_session(ctx, server_env(ctx, root)) as client:
        first = await client.list_resources(cache_mode="bypass")
        assert len(first.resources) >= 1 and first.next_cursor
        uri = f"easel://images/{ids[len(ids) // 2]}"
        await client.read_resource(uri, cache_mode="bypass")
        for run in range(ctx.args.runs):
            tl, tr, tp = [], [], []
            for _ in range(reps):
                started = time.perf_counter()
                listed = await client.list_resources(cache_mode="bypass")
                tl.append(time.perf_counter() - started)
                started = time.perf_counter()
                await client.list_resources(cursor=listed.next_cursor, cache_mode="bypass")
                tp.append(time.perf_counter() - started)
                started = time.perf_counter()
                blob = await client.read_resource(uri, cache_mode="bypass")
                tr.append(time.perf_counter() - started)
                assert base64.b64decode(blob.contents[0].blob).startswith(b"\x89PNG")
            lists.append(statistics.median(tl) * 1000)
            pages.append(statistics.median(tp) * 1000)
            reads.append(statistics.median(tr) * 1000)
    n = f"{ctx.args.images:,}"
    ctx.add(Row(f"resources/list, first page, {n} stored images", "ms", lists, "< 50 ms",
                statistics.median(lists) < 50,
                note=f"{len(first.resources)} per page, all {n} images in the current month's directory (the "
                     f"worst case: a list scans the newest month(s) it needs); store filled in {fill:.1f} s"))
    ctx.add(Row("resources/list, second page (cursor)", "ms", pages, "< 50 ms", statistics.median(pages) < 50))
    ctx.add(Row(f"resources/read of one image, {n} stored", "ms", reads, "< 50 ms", statistics.median(reads) < 50))


# ----------------------------------------------------------------------------- catalog at scale
def fill_records(root: Path, count: int) -> None:
    """``count`` metadata records in the store's layout, spread over 12 months (records are what the
    catalog is built from; the image bytes are not read, so none are written)."""
    words = ("lighthouse", "harbour", "fox", "forest", "city", "portrait", "灯塔", "山水", "robot", "garden")
    for i in range(count):
        month = f"2026{1 + i % 12:02d}"
        image_id = f"{month}-{i:032x}.png"
        directory = root / month
        if i < 12:
            directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{i:032x}.png.json").write_text(json.dumps({
            "id": image_id, "uri": f"easel://images/{image_id}", "mime_type": "image/png", "bytes": 1000,
            "width": 1024, "height": 1024 if i % 3 else 768, "prompt": f"image {i}: a {words[i % 10]} at dusk, "
            "photorealistic, long exposure, dramatic sky", "model": "Flux 1.1 Pro" if i % 2 else "Recraft v3",
            "provider": "replicate", "seed": i, "tool": "generate_image", "size": "square",
            "created": f"{month[:4]}-{month[4:]}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}.000Z",
        }, ensure_ascii=False))


async def bench_catalog(ctx: Context) -> None:
    root = ctx.tmp / "catalog-at-scale"
    count = ctx.args.catalog_images
    started = time.perf_counter()
    fill_records(root, count)
    os.sync()
    fill = time.perf_counter() - started
    reps = 10
    firsts, deeps, searches = [], [], []
    async with stdio_session(ctx, server_env(ctx, root)) as client:
        started = time.perf_counter()
        first = await client.list_resources(cache_mode="bypass")    # waits for the start-up rebuild
        rebuild = time.perf_counter() - started
        assert first.next_cursor and len(first.resources) >= 50
        cursor = first.next_cursor
        for _ in range(count // 100):                                # walk half-way down: a deep cursor
            cursor = (await client.list_resources(cursor=cursor, cache_mode="bypass")).next_cursor
        for _ in range(ctx.args.runs):
            tf, td, ts = [], [], []
            for _ in range(reps):
                t0 = time.perf_counter()
                await client.list_resources(cache_mode="bypass")
                tf.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                deep = await client.list_resources(cursor=cursor, cache_mode="bypass")
                td.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                found = await call(client, "search_images", {"query": "lighthouse dusk", "model": "Recraft v3",
                                                             "limit": 20, "previews": False})
                ts.append(time.perf_counter() - t0)
            assert deep.resources and found.structured_content["images"]
            firsts.append(statistics.median(tf) * 1000)
            deeps.append(statistics.median(td) * 1000)
            searches.append(statistics.median(ts) * 1000)
    n = f"{count:,}"
    ctx.add(Row(f"catalog rebuilt from {n} records at start-up", "s", [rebuild], note=f"records written in {fill:.1f} s"))
    ctx.add(Row(f"resources/list from the catalog, first page, {n} images", "ms", firsts, "< 50 ms",
                statistics.median(firsts) < 50))
    ctx.add(Row(f"resources/list, page {count // 100 + 2} (deep cursor)", "ms", deeps, "< 50 ms",
                statistics.median(deeps) < 50))
    ctx.add(Row(f"search_images, 2 words + model filter, {n} images", "ms", searches, "< 50 ms",
                statistics.median(searches) < 50, note="20 hits with total count; previews off"))


# ----------------------------------------------------------------------------- requests per image
def requests_row(ctx: Context) -> None:
    if not ctx.generated:
        return
    per = ctx.requests_seen / ctx.generated
    ctx.add(Row("provider HTTP requests per image (done inside wait window)", "", [per], "2 (create + download)",
                per <= 2.0, note=f"{ctx.requests_seen} requests for {ctx.generated} images"))


# ----------------------------------------------------------------------------- profile, imports
async def profile_overhead(ctx: Context) -> None:
    """Where the per-call overhead goes: each step on the 1 MiB image, then cProfile of the event loop."""
    import hashlib

    from server.app import build_server
    from server.config import Settings
    from server.images import inspect_image, make_preview
    from server.storage.local import LocalStorage

    data, mime = ctx.images["1m"]
    store = LocalStorage(ctx.tmp / "profile-steps")
    store.check_writable()
    preview = make_preview(data, max_px=512, max_bytes=100_000)[0]
    steps: dict[str, Callable[[int], Any]] = {
        "sha256": lambda i: hashlib.sha256(data).hexdigest(),
        "inspect_image (header only)": lambda i: inspect_image(data, max_pixels=64_000_000),
        "LocalStorage.put_sync (hash, 2 fsynced writes)": lambda i: store.put_sync(tagged(data, mime, 10_000 + i),
                                                                                    mime, {"prompt": "p"}),
        "make_preview (JPEG draft decode + encode)": lambda i: make_preview(data, max_px=512, max_bytes=100_000),
        f"base64 of the preview ({len(preview) // 1000} KB)": lambda i: base64.b64encode(preview),
    }
    print("\nWhere the time goes, per image (" + image_info(data) + "), median of 20, wall / CPU:")
    for name, step in steps.items():
        step(0)
        wall, cpu = [], []
        for i in range(1, 21):
            started, started_cpu = time.perf_counter(), time.thread_time()
            step(i)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - started_cpu) * 1000)
        print(f"  {name:<48} {statistics.median(wall):7.2f} ms / {statistics.median(cpu):6.2f} ms")

    set_fake(ctx, latency=0.0, factory=Factory(data, mime))
    settings = Settings.from_env(server_env(ctx, ctx.tmp / "profile-inproc"))
    logging.disable(logging.INFO)   # in-process: keep the server's log lines out of the report
    async with Client(build_server(settings)) as client:
        for i in range(3):
            await call(client, "generate_image", {"prompt": f"warm-up {i}"})
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for i in range(ctx.args.calls):
            await call(client, "generate_image", {"prompt": f"profiled {i}"})
        profiler.disable()
        per_call = (time.perf_counter() - started) / ctx.args.calls * 1000
    forget_outputs(ctx)
    print(f"\nIn-process (Client(build_server(settings)), profiler on): {per_call:.1f} ms per call. "
          "Event-loop thread only; worker-thread steps are timed above.")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(25)


def print_importtime(tmp: Path) -> None:
    """What easel-mcp's start-up imports cost (python -X importtime), by top-level package."""
    code = ("from server.cli import parse_args; from server.config import Settings; from server.app import "
            f"build_server; build_server(Settings.from_env({{'EASEL_STORAGE_DIR': {str(tmp / 'importtime')!r}, "
            "'REPLICATE_API_TOKEN': 'x'}))")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=base_environ(), timeout=60)
    by_package: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, _cumulative, name = line[len("import time:"):].split("|", 2)
        package = name.strip().split(".")[0]
        by_package[package] = by_package.get(package, 0) + int(self_us)
    total = sum(by_package.values())
    print(f"\nStart-up imports (python -X importtime), {total / 1000:.0f} ms in all; self time by package:")
    for package, us in sorted(by_package.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {us / 1000:8.1f} ms  {package}")
    heavy = sorted(p for p in by_package if p in ("PIL", "replicate", "jieba", "oss2", "numpy", "requests"))
    print("  heavy libraries imported at start-up: " + (", ".join(heavy) or "none (PIL, replicate, jieba, oss2 load "
                                                         "on first use)"))


# ----------------------------------------------------------------------------- table
def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import version

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, mcp {version('mcp')}, replicate {version('replicate')}")


def print_table(rows: list[Row]) -> None:
    header = ("metric", "median", "spread (min-max)", "target", "result")
    lines = []
    for r in rows:
        spread = (f"{fmt(min(r.values), r.unit)} - {fmt(max(r.values), r.unit)}" if len(r.values) > 1 else "")
        result = "" if r.ok is None else ("pass" if r.ok else "MISS")
        lines.append((r.metric, fmt(r.median, r.unit), spread, r.target, result))
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    sep = "  "
    print(sep.join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(sep.join("-" * w for w in widths))
    for line in lines:
        print(sep.join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    notes = [(r.metric, r.note) for r in rows if r.note]
    if notes:
        print()
        for metric, note in notes:
            print(f"  {metric.strip()}: {note}")


# ----------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description="easel-mcp benchmark (prints figures).")
    p.add_argument("--runs", type=int, default=None, help="runs per figure (default 5; 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="fast smoke run (under a minute)")
    p.add_argument("--latency", type=float, default=1.0, help="provider latency for concurrency, s (default 1)")
    p.add_argument("--calls", type=int, default=None, help="overhead calls per run (default 50; 20 with --quick)")
    p.add_argument("--images", type=int, default=None, help="images in the store-at-scale test (default 10000)")
    p.add_argument("--catalog-images", type=int, default=None, help="images in the catalog test (default 100000)")
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: " + ",".join(SECTIONS))
    p.add_argument("--profile", action="store_true", help="also show where the per-call overhead goes")
    p.add_argument("--importtime", action="store_true", help="also show the slowest start-up imports")
    p.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    args = p.parse_args(argv)
    args.runs = args.runs or (2 if args.quick else 5)
    args.calls = args.calls or (20 if args.quick else 50)
    args.images = args.images or 10_000
    args.catalog_images = args.catalog_images or (20_000 if args.quick else 100_000)
    args.memory_runs = 1 if args.quick else min(args.runs, 3)
    args.cold_runs = args.runs if args.quick else 2 * args.runs   # cheap and noisy: twice the pairs
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}")
    return args


async def amain(args: argparse.Namespace) -> list[Row]:
    started = time.perf_counter()
    print(f"easel-mcp benchmark: {machine()}")
    print(f"runs per figure: {args.runs}" + (" (quick)" if args.quick else ""), flush=True)
    with tempfile.TemporaryDirectory(prefix="easel-bench-") as tmp, \
            FakeReplicate(token=TOKEN).running() as fake, \
            open(Path(tmp) / "servers.log", "w+") as log:
        ctx = Context(args, fake, Path(tmp), log)
        needs = set(args.sections)
        if needs & {"overhead", "concurrency", "http"} or args.profile:
            ctx.images["1m"] = (jpeg_of_about(MIB, side=1024), "image/jpeg")
        if "memory" in needs:
            ctx.images["8m-jpeg"] = (jpeg_of_about(8 * MIB), "image/jpeg")
            if not args.quick:
                ctx.images["8m-png"] = (png_of_about(8 * MIB), "image/png")
        benches = {"cold": bench_cold, "overhead": bench_overhead, "concurrency": bench_concurrency,
                   "http": bench_http, "memory": bench_memory, "storage": bench_storage, "catalog": bench_catalog}
        try:
            for name in SECTIONS:
                if name in needs:
                    t0 = time.perf_counter()
                    print(f"  {name} ...", end=" ", flush=True)
                    await benches[name](ctx)
                    print(f"{time.perf_counter() - t0:.0f} s", flush=True)
            requests_row(ctx)
            print()
            print_table(ctx.rows)
            if args.profile:
                await profile_overhead(ctx)
            if args.importtime:
                print_importtime(ctx.tmp)
        except BaseException:
            log.flush()
            log.seek(0)
            tail = log.read()[-4000:]
            if tail:
                print("\n--- server stderr (tail) ---\n" + tail, file=sys.stderr)
            raise
    print(f"\nbench took {time.perf_counter() - started:.0f} s")
    return ctx.rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = anyio.run(amain, args)
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine(), "args": {k: v for k, v in vars(args).items() if k != "json"},
            "rows": [{**asdict(r), "median": r.median} for r in rows]}, indent=1, default=str))


if __name__ == "__main__":
    main()
