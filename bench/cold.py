"""Cold start: spawn -> ``tools/list`` answered over stdio, easel-mcp against a bare MCPServer
(bench/bare_server.py), in interleaved pairs."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from bench.common import Context, Row, children, cpu_seconds, server_env, stdio_session

BARE_SERVER = Path(__file__).with_name("bare_server.py")


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
