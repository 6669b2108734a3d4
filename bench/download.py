"""Time to image over a realistic download: easel-mcp beside the least an MCP server can do.

The fake serves each output as a CDN would over a 100 Mbit/s link (``FakeReplicate.download_rate``,
16 KiB pieces), a ~1 MiB photo-like JPEG, and answers the create at once. Two servers run at the
same time over stdio: easel-mcp (previews on, every image stored and fsynced) and
``bench/reference_server.py`` (create with ``Prefer: wait``, download into memory, return the image,
store nothing). Their calls alternate, one at a time, so both see the same machine and the same
fake; per run the figure is the p50 of each and their difference. Again with small flat images
(the fake's default 64x64 JPEG) sent at once.
"""

from __future__ import annotations

import statistics
import time

from bench.common import Context, Row, call, forget_outputs, reference_command, server_env, set_fake, stdio_session
from bench.pictures import Factory, image_info

LINK = 100e6 / 8             # 100 Mbit/s in bytes per second


async def paired_run(ctx: Context, run: int, calls: int, label: str) -> tuple[float, float]:
    """One easel-mcp and one reference server; ``calls`` alternating calls each (after 3 warm-ups):
    (easel p50 ms, reference p50 ms)."""
    env = server_env(ctx, ctx.tmp / f"download-{label}-{run}")
    easel_times: list[float] = []
    ref_times: list[float] = []
    async with stdio_session(ctx, env) as easel, \
            stdio_session(ctx, env, reference_command()) as ref:
        async def easel_call(i: int) -> None:
            result = await call(easel, "generate_image", {"prompt": f"a harbour at dawn, take {i}"})
            assert result.structured_content["images"] and any(c.type == "image" for c in result.content)

        async def ref_call(i: int) -> None:
            result = await call(ref, "generate", {"prompt": f"a harbour at dawn, take {i}"})
            assert result.content[0].type == "image"

        for i in range(calls + 3):
            order = ((easel_call, easel_times), (ref_call, ref_times))
            for fn, times in (order if i % 2 == 0 else order[::-1]):
                started = time.perf_counter()
                await fn(i)
                if i >= 3:
                    times.append((time.perf_counter() - started) * 1000)
            if i % 10 == 9:
                forget_outputs(ctx)
    forget_outputs(ctx)
    return statistics.median(easel_times), statistics.median(ref_times)


async def bench_download(ctx: Context) -> None:
    calls = 10 if ctx.args.quick else max(30, ctx.args.calls)
    cases = (("1 MiB photo-like JPEG at 100 Mbit/s", "cdn", Factory(*ctx.images["1m"]), LINK),
             ("small flat JPEG sent at once", "small", None, 0.0))
    for title, label, factory, rate in cases:
        set_fake(ctx, latency=0.0, factory=factory)
        with ctx.fake.cond:
            ctx.fake.download_rate, ctx.fake.download_chunk = rate, 16 * 1024
        easel, ref, diff = [], [], []
        try:
            for run in range(ctx.args.runs):
                e, r = await paired_run(ctx, run, calls, label)
                easel.append(e)
                ref.append(r)
                diff.append(e - r)
        finally:
            with ctx.fake.cond:
                ctx.fake.download_rate = 0.0
        what = image_info(ctx.images["1m"][0]) if factory else "the fake's 64x64 JPEG"
        ctx.add(Row(f"time to image, {title}: reference server (p50)", "ms", ref,
                    note=f"{what}; create (Prefer: wait) + download into memory + the image returned; "
                         f"{calls} alternating calls per run"))
        ctx.add(Row(f"time to image, {title}: easel-mcp (p50)", "ms", easel))
        ctx.add(Row(f"  easel-mcp - reference, {title}", "ms", diff, "<= 5 ms", statistics.median(diff) <= 5,
                    note="previews on, every image stored with fsync; the difference of the p50s per run"))
