"""``--profile`` and ``--importtime``: where the per-call overhead and the start-up time go."""

from __future__ import annotations

import base64
import cProfile
import logging
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp import Client

from bench.common import ROOT, Context, base_environ, call, forget_outputs, server_env, set_fake
from bench.pictures import Factory, image_info, tagged


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
