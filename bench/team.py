"""A team's load: two stateless replicas sharing one store, 100 concurrent generate_image calls.

Two ``easel-mcp --transport http --stateless`` processes share one ``EASEL_STORAGE_DIR`` (as two
containers behind a load balancer share a volume). 20 clients, each its own MCP connection to one
replica (client i talks to replica i mod 2: round robin by client, as a balancer with sticky
connections spreads them), each sending 5 generate_image calls at once: 100 calls in flight, as
when every member of a team has an assistant illustrating something at the same moment. The fake
takes 2 s per prediction and serves a ~1 MiB photo-like JPEG (distinct bytes per image) at once.

Reported: the burst's wall time over one call's; each replica's CPU time per image it made
(/proc/<pid>/stat) and its peak RSS growth (VmHWM after clear_refs) against 3x the bytes it had in
flight. Checked (the bench stops with an error otherwise): no call failed, and every image is
readable, byte for byte, from both replicas.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import statistics
import time
from collections.abc import Awaitable
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from bench.common import (
    Context,
    Row,
    call,
    cpu_seconds,
    forget_outputs,
    gather,
    http_server,
    proc_kib,
    server_env,
    set_fake,
)
from bench.concurrency import own_cpu
from bench.pictures import MIB, Factory

CLIENTS, PER_CLIENT, LATENCY = 20, 5, 2.0
BOUND = 120.0            # seconds: the whole section, whatever happens


async def bench_team(ctx: Context) -> None:
    try:
        with anyio.fail_after(BOUND * max(1, ctx.args.runs) / 2):
            await _team(ctx)
    except BaseExceptionGroup as group:   # 20 clients' task groups nest it deeper than a traceback shows
        leaves = _leaves(group)
        raise RuntimeError(f"team: {len(leaves)} error(s), first: {leaves[0]!r}") from leaves[0]


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


async def _team(ctx: Context) -> None:
    clients_n = 4 if ctx.args.quick else CLIENTS
    image = ctx.images["1m"]
    factory = Factory(*image)
    env = server_env(ctx, ctx.tmp / "team-store", **ctx.args.team_env)
    singles, ratios, cpu_per_image, growth, bench_cpu = [], [], [], [], []
    failures: list[str] = []
    cpu_each: list[list[float]] = []
    with ExitStack() as stack:
        replicas = [stack.enter_context(http_server(ctx, env, "--stateless")) for _ in range(2)]
        async with AsyncExitStack() as astack:
            clients = [await astack.enter_async_context(Client(f"{replicas[i % 2][0]}/mcp"))
                       for i in range(clients_n)]
            set_fake(ctx, latency=0.0, factory=factory)
            await gather(*[lambda c=c, i=i: call(c, "generate_image", {"prompt": f"warm-up {i}"})
                           for i, c in enumerate(clients)])
            set_fake(ctx, latency=LATENCY, factory=factory)
            for run in range(ctx.args.runs):
                started = time.perf_counter()
                await call(clients[run % 2], "generate_image", {"prompt": f"one harbour {run}"})
                single = time.perf_counter() - started

                pids = [pid for _, pid in replicas]
                rss0 = [proc_kib(pid, "VmRSS") for pid in pids]
                for pid in pids:
                    with contextlib.suppress(OSError):
                        Path(f"/proc/{pid}/clear_refs").write_text("5")   # VmHWM := VmRSS now
                cpu0, own0 = [cpu_seconds(pid) for pid in pids], own_cpu()
                started = time.perf_counter()
                results = await gather(*[
                    lambda c=c, i=i, k=k, run=run: _noted(failures, call(c, "generate_image",
                                                                         {"prompt": f"harbour {run}.{i}.{k}"}))
                    for i, c in enumerate(clients) for k in range(PER_CLIENT)])
                burst = time.perf_counter() - started
                bench_cpu.append((own_cpu() - own0) / (clients_n * PER_CLIENT) * 1000)
                per_replica = clients_n * PER_CLIENT / 2
                each = [(cpu_seconds(pid) - c0) / per_replica * 1000 for pid, c0 in zip(pids, cpu0, strict=True)]
                cpu_per_image.append(statistics.mean(each))
                cpu_each.append(each)
                growth.append(max((proc_kib(pid, "VmHWM") - r0) / 1024 for pid, r0 in zip(pids, rss0, strict=True)))
                if failures:
                    raise RuntimeError(f"{len(failures)} of {len(results)} calls failed, e.g. {failures[0]}")
                uris = [r.structured_content["images"][0]["uri"] for r in results]
                assert len(set(uris)) == len(results), "every call stored its own image"
                await _readable_from_both(ctx, clients[:2], uris)
                forget_outputs(ctx)
                singles.append(single * 1000)
                ratios.append(burst / single)
    calls = clients_n * PER_CLIENT
    in_flight = calls / 2 * len(image[0]) / MIB
    ctx.add(Row(f"one generate_image at {LATENCY:g} s latency, a stateless replica", "ms", singles,
                note=f"{calls} calls: {clients_n} clients x {PER_CLIENT} at once, round robin over 2 replicas "
                     f"sharing one store; {', '.join(f'{k}={v}' for k, v in ctx.args.team_env.items()) or 'defaults'}"))
    ctx.add(Row(f"{calls} concurrent generate_image on 2 replicas / one", "x", ratios, "<= 1.50",
                statistics.median(ratios) <= 1.5, note="no call failed; every image read back from both replicas"))
    ctx.add(Row("  CPU time per image, per replica (mean of the two)", "ms", cpu_per_image,
                note=f"replica A {statistics.median(e[0] for e in cpu_each):.1f} ms, replica B "
                     f"{statistics.median(e[1] for e in cpu_each):.1f} ms; the bench process ({clients_n} clients "
                     f"and the fake) spent {statistics.median(bench_cpu):.0f} ms per image besides, on the same "
                     f"{os.cpu_count()} cores"))
    ctx.add(Row(f"peak RSS growth per replica, {calls // 2} x {len(image[0]) / MIB:.1f} MiB in flight", "MiB",
                growth, f"<= {3 * in_flight:.0f} MiB (3x)", statistics.median(growth) <= 3 * in_flight,
                note="the larger of the two replicas' VmHWM - VmRSS before the burst"))


async def _noted(failures: list[str], pending: Awaitable[Any]) -> Any:
    """The call's result, or None with its error noted (so one failure does not hide the others)."""
    try:
        return await pending
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}"[:500])
        return None


async def _readable_from_both(ctx: Context, clients: list[Client], uris: list[str]) -> None:
    """Every image, read from each replica, is the same bytes and hashes to its id."""
    failures: list[str] = []
    for client in clients:
        async def read(uri: str, client: Client = client) -> None:
            [content] = (await client.read_resource(uri)).contents
            blob = base64.b64decode(content.blob)   # type: ignore[union-attr]
            assert hashlib.sha256(blob).hexdigest()[:32] == uri.rsplit("-", 1)[1].split(".")[0], uri
        await gather(*[lambda u=u: _noted(failures, read(u)) for u in uris])
        if failures:
            raise RuntimeError(f"{len(failures)} of {len(uris)} images could not be read back, e.g. {failures[0]}")
