"""Concurrency at a slow provider: 8 generate_image calls and illustrate_content count 8 on one stdio
connection, and 8 clients over streamable HTTP, each against one call; plus requests per image."""

from __future__ import annotations

import os
import statistics
import time
from contextlib import AsyncExitStack

from mcp import Client

from bench.common import (
    Context,
    Row,
    call,
    children,
    count_requests,
    cpu_seconds,
    forget_outputs,
    gather,
    http_server,
    n_requests,
    server_env,
    set_fake,
    stdio_session,
)
from bench.pictures import Factory

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
            results = await gather(*[lambda i=i, run=run: call(client, "generate_image", {"prompt": f"lighthouse {run}.{i}"})
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
                await gather(*[lambda c=c, i=i, run=run: call(c, "generate_image", {"prompt": f"lighthouse {run}.{i}"})
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


def requests_row(ctx: Context) -> None:
    if not ctx.generated:
        return
    per = ctx.requests_seen / ctx.generated
    ctx.add(Row("provider HTTP requests per image (done inside wait window)", "", [per], "2 (create + download)",
                per <= 2.0, note=f"{ctx.requests_seen} requests for {ctx.generated} images"))
