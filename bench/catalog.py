"""Catalog at scale: the catalog rebuilt from 100,000 metadata records at start-up, then
resources/list (the first page and a deep one) and search_images (words + a filter) over it."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from bench.common import Context, Row, call, server_env, stdio_session


def fill_records(root: Path, count: int) -> None:
    """``count`` metadata records in the store's layout, spread over 12 months (records are what the
    catalog is built from; the image bytes are not read, so none are written)."""
    words = ("lighthouse", "harbour", "fox", "forest", "city", "portrait", "灯塔", "山水", "robot", "garden")
    for i in range(count):
        month = f"2026{1 + i % 12:02d}"
        image_id = f"{month}-{i:032x}.png"
        directory = root / month
        if i < 12:
            directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{i:032x}.png.json").write_text(json.dumps({
            "id": image_id, "uri": f"easel://images/{image_id}", "mime_type": "image/png", "bytes": 1000,
            "width": 1024, "height": 1024 if i % 3 else 768, "prompt": f"image {i}: a {words[i % 10]} at dusk, "
            "photorealistic, long exposure, dramatic sky", "model": "Flux 1.1 Pro" if i % 2 else "Recraft v3",
            "provider": "replicate", "seed": i, "tool": "generate_image", "size": "square",
            "created": f"{month[:4]}-{month[4:]}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}.000Z",
        }, ensure_ascii=False))


async def bench_catalog(ctx: Context) -> None:
    root = ctx.tmp / "catalog-at-scale"
    count = ctx.args.catalog_images
    started = time.perf_counter()
    fill_records(root, count)
    os.sync()
    fill = time.perf_counter() - started
    reps = 10
    firsts, deeps, searches = [], [], []
    async with stdio_session(ctx, server_env(ctx, root)) as client:
        started = time.perf_counter()
        first = await client.list_resources(cache_mode="bypass")    # waits for the start-up rebuild
        rebuild = time.perf_counter() - started
        assert first.next_cursor and len(first.resources) >= 50
        cursor = first.next_cursor
        for _ in range(count // 100):                                # walk half-way down: a deep cursor
            cursor = (await client.list_resources(cursor=cursor, cache_mode="bypass")).next_cursor
        for _ in range(ctx.args.runs):
            tf, td, ts = [], [], []
            for _ in range(reps):
                t0 = time.perf_counter()
                await client.list_resources(cache_mode="bypass")
                tf.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                deep = await client.list_resources(cursor=cursor, cache_mode="bypass")
                td.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                found = await call(client, "search_images", {"query": "lighthouse dusk", "model": "Recraft v3",
                                                             "limit": 20, "previews": False})
                ts.append(time.perf_counter() - t0)
            assert deep.resources and found.structured_content["images"]
            firsts.append(statistics.median(tf) * 1000)
            deeps.append(statistics.median(td) * 1000)
            searches.append(statistics.median(ts) * 1000)
    n = f"{count:,}"
    ctx.add(Row(f"catalog rebuilt from {n} records at start-up", "s", [rebuild], note=f"records written in {fill:.1f} s"))
    ctx.add(Row(f"resources/list from the catalog, first page, {n} images", "ms", firsts, "< 50 ms",
                statistics.median(firsts) < 50))
    ctx.add(Row(f"resources/list, page {count // 100 + 2} (deep cursor)", "ms", deeps, "< 50 ms",
                statistics.median(deeps) < 50))
    ctx.add(Row(f"search_images, 2 words + model filter, {n} images", "ms", searches, "< 50 ms",
                statistics.median(searches) < 50, note="20 hits with total count; previews off"))
