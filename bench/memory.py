"""Memory: peak RSS growth of a fresh server while 8 images of ~8 MiB are in flight (JPEG and PNG)."""

from __future__ import annotations

import contextlib
import statistics
import threading
from pathlib import Path

import anyio

from bench.common import (
    Context,
    Row,
    call,
    children,
    count_requests,
    forget_outputs,
    gather,
    n_requests,
    proc_kib,
    server_env,
    set_fake,
    stdio_session,
)
from bench.pictures import MIB, Factory, image_info


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
