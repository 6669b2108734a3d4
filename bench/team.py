"""A team's load: two stateless replicas sharing one store, 100 concurrent generate_image calls,
beside the least an MCP server can do under the same load.

Two ``easel-mcp --transport http --stateless`` processes share one ``EASEL_STORAGE_DIR`` (as two
containers behind a load balancer share a volume). 20 clients, each its own MCP connection to one
replica (client i talks to replica i mod 2: round robin by client, as a balancer with sticky
connections spreads them), each sending 5 generate_image calls at once: 100 calls in flight, as
when every member of a team has an assistant illustrating something at the same moment. The fake
takes 2 s per prediction and serves a ~1 MiB photo-like JPEG (distinct bytes per image) at once.

The reference: two ``bench/reference_server.py --transport http --stateless`` replicas with
``REFERENCE_PREVIEW=1`` (create, download, return easel's kind of 512 px preview, store nothing),
their own 20 clients, the same fake, the same single call and burst. Every run measures both
teams, one after the other (easel first in even runs, the reference first in odd ones), so both
see the same machine.

Reported for each: the burst's wall time over one call's, each replica's CPU time per image it
made (/proc/<pid>/stat), and the share of the cores anything else kept busy meanwhile (/proc/stat,
so a shared machine shows); for easel-mcp its peak RSS growth (VmHWM after clear_refs) against 3x
the bytes it had in flight. Checked (the bench stops with an error otherwise): no call failed;
every easel image is readable, byte for byte, from both replicas; every reference answer is a
JPEG preview within 512 px.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from PIL import Image

from bench.common import (
    Context,
    Row,
    call,
    cpu_seconds,
    forget_outputs,
    gather,
    http_server,
    machine_cpu_seconds,
    proc_kib,
    reference_command,
    server_env,
    set_fake,
)
from bench.concurrency import own_cpu
from bench.pictures import MIB, Factory

CLIENTS, PER_CLIENT, LATENCY = 20, 5, 2.0
BOUND = 60.0             # seconds per run and team, start-up included: the section stops after that


@dataclass
class Team:
    """Two replicas, their clients (client i on replica i mod 2), and what each run measured."""
    tool: str
    replicas: list[tuple[str, int]]
    check: Callable[[list[Client], list[Any]], Awaitable[None]]   # the burst's answers
    clients: list[Client] = field(default_factory=list)
    singles: list[float] = field(default_factory=list)          # ms
    ratios: list[float] = field(default_factory=list)           # burst / single
    cpu_each: list[list[float]] = field(default_factory=list)   # per run: ms per image, per replica
    growth: list[float] = field(default_factory=list)           # MiB, the larger replica's
    bench_cpu: list[float] = field(default_factory=list)        # ms per image, the bench process
    others: list[float] = field(default_factory=list)           # share of the cores busy with anything else

    async def call(self, client: Client, prompt: str) -> Any:
        return await call(client, self.tool, {"prompt": prompt})

    async def connect(self, stack: AsyncExitStack, n: int) -> None:
        self.clients = [await stack.enter_async_context(Client(f"{self.replicas[i % 2][0]}/mcp"))
                        for i in range(n)]

    async def warm(self) -> None:
        await gather(*[lambda c=c, i=i: self.call(c, f"warm-up {i}") for i, c in enumerate(self.clients)])

    async def run(self, ctx: Context, run: int) -> None:
        """One call alone, then every client's PER_CLIENT calls at once; then the answers checked."""
        started = time.perf_counter()
        await self.call(self.clients[run % 2], f"one harbour {run}")
        single = time.perf_counter() - started

        pids = [pid for _, pid in self.replicas]
        rss0 = [proc_kib(pid, "VmRSS") for pid in pids]
        for pid in pids:
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")   # VmHWM := VmRSS now
        cpu0, own0, machine0 = [cpu_seconds(pid) for pid in pids], own_cpu(), machine_cpu_seconds()
        failures: list[str] = []
        started = time.perf_counter()
        results = await gather(*[
            lambda c=c, i=i, k=k: _noted(failures, self.call(c, f"harbour {run}.{i}.{k}"))
            for i, c in enumerate(self.clients) for k in range(PER_CLIENT)])
        burst = time.perf_counter() - started
        calls = len(results)
        own, used = own_cpu() - own0, [cpu_seconds(pid) - c0 for pid, c0 in zip(pids, cpu0, strict=True)]
        self.others.append((machine_cpu_seconds() - machine0 - own - sum(used)) / (burst * (os.cpu_count() or 1)))
        self.bench_cpu.append(own / calls * 1000)
        self.cpu_each.append([u / (calls / 2) * 1000 for u in used])
        self.growth.append(max((proc_kib(pid, "VmHWM") - r0) / 1024 for pid, r0 in zip(pids, rss0, strict=True)))
        if failures:
            raise RuntimeError(f"{self.tool}: {len(failures)} of {calls} calls failed, e.g. {failures[0]}")
        await self.check(self.clients[:2], results)
        forget_outputs(ctx)
        self.singles.append(single * 1000)
        self.ratios.append(burst / single)

    def cpu_per_image(self) -> list[float]:
        return [statistics.mean(each) for each in self.cpu_each]

    def cpu_note(self, what: str) -> str:
        a, b = (statistics.median(e[i] for e in self.cpu_each) for i in (0, 1))
        return (f"{what} A {a:.1f} ms, B {b:.1f} ms; the bench process (clients and the fake) spent "
                f"{statistics.median(self.bench_cpu):.0f} ms per image besides, on the same {os.cpu_count()} cores")


async def bench_team(ctx: Context) -> None:
    try:
        with anyio.fail_after(BOUND * 2 * max(1, ctx.args.runs)):
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
    store = ctx.tmp / "team-store"
    easel_env = server_env(ctx, store, **ctx.args.team_env)
    reference_env = server_env(ctx, store, REFERENCE_PREVIEW="1")
    with ExitStack() as stack:
        easel = Team("generate_image", [stack.enter_context(http_server(ctx, easel_env, "--stateless"))
                                        for _ in range(2)], _readable_from_both)
        reference = Team("generate", [stack.enter_context(http_server(ctx, reference_env, "--stateless",
                                                                      command=reference_command()))
                                      for _ in range(2)], _previews)
        async with AsyncExitStack() as astack:
            set_fake(ctx, latency=0.0, factory=factory)
            for team in (easel, reference):
                await team.connect(astack, clients_n)
                await team.warm()
            set_fake(ctx, latency=LATENCY, factory=factory)
            for run in range(ctx.args.runs):
                for team in ((easel, reference) if run % 2 == 0 else (reference, easel)):
                    await team.run(ctx, run)
    calls = clients_n * PER_CLIENT
    in_flight = calls / 2 * len(image[0]) / MIB
    ctx.add(Row(f"one generate_image at {LATENCY:g} s latency, a stateless replica", "ms", easel.singles,
                note=f"{calls} calls: {clients_n} clients x {PER_CLIENT} at once, round robin over 2 replicas "
                     f"sharing one store; {', '.join(f'{k}={v}' for k, v in ctx.args.team_env.items()) or 'defaults'}"))
    ctx.add(Row(f"{calls} concurrent generate_image on 2 replicas / one", "x", easel.ratios, "<= 1.50",
                statistics.median(easel.ratios) <= 1.5, note="no call failed; every image read back from both replicas"))
    ctx.add(Row(f"{calls} concurrent calls on 2 reference replicas / one", "x", reference.ratios,
                note=f"bench/reference_server.py, REFERENCE_PREVIEW=1: create, download, the 512 px preview "
                     f"returned, nothing stored; one call {statistics.median(reference.singles):.0f} ms; "
                     f"as many clients, the same fake and burst; each run measures both teams, in turn"))
    ctx.add(Row("  easel-mcp - reference, burst / one", "x",
                [e - r for e, r in zip(easel.ratios, reference.ratios, strict=True)],
                note=f"the difference of the two ratios per run; anything else on the machine kept "
                     f"{statistics.median(easel.others):.0%} of its {os.cpu_count()} cores busy during easel's "
                     f"bursts, {statistics.median(reference.others):.0%} during the reference's"))
    ctx.add(Row("  CPU time per image, per replica (mean of the two)", "ms", easel.cpu_per_image(),
                note=easel.cpu_note("replica")))
    ctx.add(Row("  CPU time per image, per reference replica (mean of the two)", "ms", reference.cpu_per_image(),
                note=reference.cpu_note("reference")))
    ctx.add(Row(f"peak RSS growth per replica, {calls // 2} x {len(image[0]) / MIB:.1f} MiB in flight", "MiB",
                easel.growth, f"<= {3 * in_flight:.0f} MiB (3x)", statistics.median(easel.growth) <= 3 * in_flight,
                note=f"the larger of the two replicas' VmHWM - VmRSS before the burst; "
                     f"a reference replica's: {statistics.median(reference.growth):.0f} MiB"))


async def _noted(failures: list[str], pending: Awaitable[Any]) -> Any:
    """The call's result, or None with its error noted (so one failure does not hide the others)."""
    try:
        return await pending
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}"[:500])
        return None


async def _readable_from_both(clients: list[Client], results: list[Any]) -> None:
    """Every call stored its own image, and every image, read from each replica, is the same bytes
    and hashes to its id."""
    uris = [r.structured_content["images"][0]["uri"] for r in results]
    assert len(set(uris)) == len(results), "every call stored its own image"
    failures: list[str] = []
    for client in clients:
        async def read(uri: str, client: Client = client) -> None:
            [content] = (await client.read_resource(uri)).contents
            blob = base64.b64decode(content.blob)   # type: ignore[union-attr]
            assert hashlib.sha256(blob).hexdigest()[:32] == uri.rsplit("-", 1)[1].split(".")[0], uri
        await gather(*[lambda u=u: _noted(failures, read(u)) for u in uris])
        if failures:
            raise RuntimeError(f"{len(failures)} of {len(uris)} images could not be read back, e.g. {failures[0]}")


async def _previews(clients: list[Client], results: list[Any]) -> None:
    """Every reference answer is one JPEG preview within 512 px (so the reference did make it)."""
    for result in results:
        [block] = result.content
        with Image.open(io.BytesIO(base64.b64decode(block.data))) as img:
            assert block.mime_type == "image/jpeg" and img.format == "JPEG" and max(img.size) <= 512, \
                (block.mime_type, img.format, img.size)
