"""Overhead per call: sequential generate_image calls against a fake that answers at once with a
~1 MiB JPEG, minus the same create + download done directly with httpx."""

from __future__ import annotations

import statistics
import time

import httpx

from bench.common import (
    FLUX,
    TOKEN,
    Context,
    Row,
    call,
    count_requests,
    flux_payload,
    forget_outputs,
    n_requests,
    pct,
    server_env,
    set_fake,
    stdio_session,
)
from bench.pictures import Factory, image_info


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
