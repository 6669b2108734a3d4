"""easel-mcp benchmark: ``make bench`` (``make bench ARGS="--quick"``, ``ARGS="--runs 9"``; or ``python -m bench``).

Runs the real ``easel-mcp`` process (stdio, and streamable HTTP for one figure)
against the loopback Replicate fake from ``tests/fakes`` and prints a table:
median and spread (min-max over runs) of each figure next to its target. It
prints figures; it asserts nothing, and no test depends on it.

Figures, one module each (``bench/<module>.py``):

* cold start        (cold) spawn -> ``tools/list`` answered, easel-mcp vs a bare MCPServer (bare_server.py)
* first call        (warmup) the first generate_image after start and 1 s idle, EASEL_WARMUP on vs off
* overhead          (overhead) generate_image with a provider that answers at once with a ~1 MiB JPEG,
                    minus the time the same create + download takes when called directly with httpx
* time to image     (download) the ~1 MiB JPEG sent at 100 Mbit/s (and a small one at once): easel-mcp vs
                    bench/reference_server.py (create, download, return the image, store nothing)
* concurrency       (concurrency) 8 concurrent generate_image calls / illustrate_content count 8 at 1 s
                    provider latency, wall time over one call; again over streamable HTTP with 8 clients
* requests/image    (concurrency) HTTP requests the fake saw per image when the model finishes inside
                    the wait window
* a team's load    (team) 100 concurrent generate_image from 20 clients on two --stateless replicas
                    sharing one store at 2 s latency: wall time over one call, CPU and RSS per replica;
                    the same burst on two bench/reference_server.py replicas (previews, nothing stored)
* memory            (memory) peak RSS growth of the server while 8 images of ~8 MiB are in flight
* storage at scale  (storage) resources/list and a resource read with 10,000 stored images
* catalog           (catalog) rebuilding the catalog from 100,000 records; resources/list (first and a
                    deep page) and search_images (words + a filter) over 100,000 images

Shared: ``common`` (rows, context, the server process, the fake), ``pictures`` (the images the fake
serves), ``report`` (the table), ``profiling`` (``--profile``, ``--importtime``).

Options: ``--runs N`` (default 5), ``--quick`` (smoke run, under 2 minutes), ``--latency S`` (provider
latency for the concurrency figures, default 1), ``--calls N`` (overhead sequence, default 50),
``--images N`` (store size, default 10000), ``--catalog-images N`` (catalog size, default 100000),
``--only cold,overhead,...``, ``--idle S`` (the warm-up figure's pause), ``--team-env NAME=VALUE``
(a setting for the team figure's replicas), ``--profile`` (where the
overhead goes: component timings and an in-process cProfile), ``--importtime`` (the slowest imports at
start-up), ``--json PATH`` (the rows as JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import anyio

from bench.catalog import bench_catalog
from bench.cold import bench_cold
from bench.common import TOKEN, Context, Row
from bench.concurrency import bench_concurrency, bench_http, requests_row
from bench.download import bench_download
from bench.memory import bench_memory
from bench.overhead import bench_overhead
from bench.pictures import MIB, jpeg_of_about, png_of_about
from bench.profiling import print_importtime, profile_overhead
from bench.report import machine, print_table
from bench.storage import bench_storage
from bench.team import bench_team
from bench.warmup import bench_warmup
from tests.fakes.replicate_fake import FakeReplicate

SECTIONS = ("cold", "warmup", "overhead", "download", "concurrency", "http", "team", "memory", "storage",
            "catalog")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description="easel-mcp benchmark (prints figures).")
    p.add_argument("--runs", type=int, default=None, help="runs per figure (default 5; 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="fast smoke run (under 2 minutes)")
    p.add_argument("--latency", type=float, default=1.0, help="provider latency for concurrency, s (default 1)")
    p.add_argument("--calls", type=int, default=None, help="overhead calls per run (default 50; 20 with --quick)")
    p.add_argument("--images", type=int, default=None, help="images in the store-at-scale test (default 10000)")
    p.add_argument("--catalog-images", type=int, default=None, help="images in the catalog test (default 100000)")
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: " + ",".join(SECTIONS))
    p.add_argument("--profile", action="store_true", help="also show where the per-call overhead goes")
    p.add_argument("--importtime", action="store_true", help="also show the slowest start-up imports")
    p.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    p.add_argument("--idle", type=float, default=1.0, help="seconds between tools/list and the first call "
                   "in the warm-up figure (default 1)")
    p.add_argument("--team-env", action="append", default=[], metavar="NAME=VALUE",
                   help="an extra setting for the team figure's replicas (repeatable)")
    args = p.parse_args(argv)
    args.runs = args.runs or (2 if args.quick else 5)
    args.calls = args.calls or (20 if args.quick else 50)
    args.images = args.images or 10_000
    args.catalog_images = args.catalog_images or (20_000 if args.quick else 100_000)
    args.memory_runs = 1 if args.quick else min(args.runs, 3)
    args.cold_runs = args.runs if args.quick else 2 * args.runs   # cheap and noisy: twice the pairs
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    args.team_env = dict(item.split("=", 1) for item in args.team_env)
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
        if needs & {"warmup", "overhead", "download", "concurrency", "http", "team"} or args.profile:
            ctx.images["1m"] = (jpeg_of_about(MIB, side=1024), "image/jpeg")
        if "memory" in needs:
            ctx.images["8m-jpeg"] = (jpeg_of_about(8 * MIB), "image/jpeg")
            if not args.quick:
                ctx.images["8m-png"] = (png_of_about(8 * MIB), "image/png")
        benches = {"cold": bench_cold, "warmup": bench_warmup, "overhead": bench_overhead, "download": bench_download,
                   "concurrency": bench_concurrency, "http": bench_http, "team": bench_team, "memory": bench_memory,
                   "storage": bench_storage, "catalog": bench_catalog}
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
