"""Storage at scale: resources/list (two pages) and resources/read over 10,000 stored images."""

from __future__ import annotations

import base64
import os
import statistics
import time
from pathlib import Path

from bench.common import FLUX, Context, Row, flux_payload, server_env, stdio_session
from bench.pictures import _encode, photo_like, tagged


def fill_store(root: Path, count: int) -> list[str]:
    """``count`` stored images written with LocalStorage.put_sync (fsync skipped: this is set-up)."""
    from server.storage.local import LocalStorage

    store = LocalStorage(root)
    store.check_writable()
    png = _encode(photo_like(32, 4), "PNG")
    real_fsync, ids = os.fsync, []
    os.fsync = lambda fd: None    # durability is not what is measured; 20k fsyncs would take minutes
    try:
        for i in range(count):
            data = tagged(png, "image/png", i)
            stored = store.put_sync(data, "image/png", {
                "width": 32, "height": 32, "prompt": f"stored image {i}: a lighthouse on a rocky island at dusk, "
                "photorealistic, long exposure, dramatic sky" * 2, "model": "Flux 1.1 Pro", "provider": "replicate",
                "provider_model": FLUX, "parameters": flux_payload(f"stored image {i}"), "seed": i,
                "prediction_id": f"bench{i:021d}", "tool": "generate_image", "user_prompt": "a lighthouse",
                "size": "square", "style": "any"})
            ids.append(stored.image_id)
    finally:
        os.fsync = real_fsync
    return ids


async def bench_storage(ctx: Context) -> None:
    root = ctx.tmp / "store-at-scale"
    started = time.perf_counter()
    ids = fill_store(root, ctx.args.images)
    os.sync()   # write the fill back now, not while listing is being timed
    fill = time.perf_counter() - started
    reps = 10
    lists, reads, pages = [], [], []
    async with stdio_session(ctx, server_env(ctx, root)) as client:
        first = await client.list_resources(cache_mode="bypass")
        assert len(first.resources) >= 1 and first.next_cursor
        uri = f"easel://images/{ids[len(ids) // 2]}"
        await client.read_resource(uri, cache_mode="bypass")
        for _ in range(ctx.args.runs):
            tl, tr, tp = [], [], []
            for _ in range(reps):
                started = time.perf_counter()
                listed = await client.list_resources(cache_mode="bypass")
                tl.append(time.perf_counter() - started)
                started = time.perf_counter()
                await client.list_resources(cursor=listed.next_cursor, cache_mode="bypass")
                tp.append(time.perf_counter() - started)
                started = time.perf_counter()
                blob = await client.read_resource(uri, cache_mode="bypass")
                tr.append(time.perf_counter() - started)
                assert base64.b64decode(blob.contents[0].blob).startswith(b"\x89PNG")
            lists.append(statistics.median(tl) * 1000)
            pages.append(statistics.median(tp) * 1000)
            reads.append(statistics.median(tr) * 1000)
    n = f"{ctx.args.images:,}"
    ctx.add(Row(f"resources/list, first page, {n} stored images", "ms", lists, "< 50 ms",
                statistics.median(lists) < 50,
                note=f"{len(first.resources)} per page, all {n} images in the current month's directory (the "
                     f"worst case: a list scans the newest month(s) it needs); store filled in {fill:.1f} s"))
    ctx.add(Row("resources/list, second page (cursor)", "ms", pages, "< 50 ms", statistics.median(pages) < 50))
    ctx.add(Row(f"resources/read of one image, {n} stored", "ms", reads, "< 50 ms", statistics.median(reads) < 50))
