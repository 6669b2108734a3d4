"""The first call after start, with and without the background warm-up (server/warmup.py).

Fresh servers, alternately with ``EASEL_WARMUP=on`` and ``off``: spawn, ``tools/list`` (its time from
spawn is the start-up the warm-up must not slow), then, after ``--idle`` seconds (a person typing
the first request; default 1 s), the first ``generate_image`` against a fake that answers at once
with the ~1 MiB JPEG, then a second one (the steady state both converge to). Figures: each server's
first-call time, minus the provider time the overhead figure measures the same way.
"""

from __future__ import annotations

import statistics
import time

import anyio

from bench.common import Context, Row, call, forget_outputs, server_env, set_fake, stdio_session
from bench.overhead import provider_baseline
from bench.pictures import Factory


async def first_call(ctx: Context, run: int, warmup: str, idle: float) -> tuple[float, float, float]:
    """(spawn -> tools/list ms, first call ms, second call ms) for a fresh server."""
    env = server_env(ctx, ctx.tmp / f"warmup-{warmup}-{run}", EASEL_WARMUP=warmup)
    started = time.perf_counter()
    async with stdio_session(ctx, env) as client:
        await client.list_tools(cache_mode="bypass")
        listed = time.perf_counter() - started
        await anyio.sleep(idle)
        started = time.perf_counter()
        await call(client, "generate_image", {"prompt": f"first {run}"})
        first = time.perf_counter() - started
        started = time.perf_counter()
        await call(client, "generate_image", {"prompt": f"second {run}"})
        second = time.perf_counter() - started
    forget_outputs(ctx)
    return listed * 1000, first * 1000, second * 1000


async def bench_warmup(ctx: Context) -> None:
    set_fake(ctx, latency=0.0, factory=Factory(*ctx.images["1m"]))
    idle = ctx.args.idle
    provider = statistics.median(await provider_baseline(ctx, 10)) * 1000
    rows: dict[str, tuple[list[float], list[float], list[float]]] = {"on": ([], [], []), "off": ([], [], [])}
    await first_call(ctx, -1, "off", idle)        # page cache, .pyc files: not part of the figure
    for run in range(2 * ctx.args.runs):
        for warmup in (("on", "off") if run % 2 == 0 else ("off", "on")):
            listed, first, second = await first_call(ctx, run, warmup, idle)
            rows[warmup][0].append(listed)
            rows[warmup][1].append(first - provider)
            rows[warmup][2].append(second - provider)
    on, off = rows["on"], rows["off"]
    ctx.add(Row(f"first generate_image after start + {idle:g} s idle, warm-up off (call - provider)", "ms", off[1],
                note=f"{2 * ctx.args.runs} fresh servers each way, interleaved; provider time {provider:.1f} ms"))
    ctx.add(Row(f"first generate_image after start + {idle:g} s idle, warm-up on", "ms", on[1]))
    ctx.add(Row("  the second call (steady state), warm-up on / off", "ms", on[2] + off[2]))
    ctx.add(Row("  spawn -> tools/list, warm-up on / off", "x",
                [a / b for a, b in zip(on[0], off[0], strict=True)],
                note="the warm-up starts once the server has been idle; the cold start ratio is the figure above; "f"medians {statistics.median(on[0]):.0f} ms on, {statistics.median(off[0]):.0f} ms off"))
