"""An image stored as it downloads (server/ingest.py): the bytes a CDN sends slowly, in pieces, are hashed,
written to a temporary file in the store and decoded for the preview as they arrive. What is stored and
shown must be what the whole-bytes path stores and shows; a download cut off part-way leaves nothing."""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from PIL import Image

from server import ingest
from server.app import build_server
from server.config import Settings
from server.images import HeaderProbe, InvalidImage, inspect_image, make_preview
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.results import files_in, text_of

pytestmark = pytest.mark.anyio


def photo(side: int = 1280, seed: int = 1) -> bytes:
    """A JPEG that compresses like a photo (fields and grain), big enough to arrive in many pieces and for
    its first half to reach the store's temporary file before the rest comes."""
    import random
    rng = random.Random(seed)
    fields = Image.frombytes("RGB", (8, 8), rng.randbytes(8 * 8 * 3)).resize((side, side), Image.BICUBIC)
    grain = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    Image.blend(fields, grain, 0.25).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def served(replicate_fake: FakeReplicate) -> bytes:
    """The fake serves this JPEG for every prediction, as a slow CDN: 16 KiB pieces at 8 MB/s."""
    body = photo()
    assert len(body) // 2 > ingest._FLUSH    # a download cut off half-way has written to its temporary file
    replicate_fake.image_factory = lambda _pred: (body, "image/jpeg")
    replicate_fake.download_rate = 8_000_000
    replicate_fake.download_chunk = 16 * 1024
    return body


def store_root(settings: Settings) -> Path:
    return Path(settings.storage.dir)


def stored_files(root: Path) -> list[Path]:
    """What the store holds: images, records and anything temporary (the month's .index is bookkeeping)."""
    return sorted(p for p in files_in(root) if p.name != ".index")


async def generate(settings: Settings) -> Any:
    async with Client(build_server(settings)) as client:
        return await client.call_tool("generate_image", {"prompt": "a harbour at dawn"})


async def test_a_slow_download_is_stored_byte_for_byte_with_the_whole_bytes_preview(
        settings: Settings, replicate_fake: FakeReplicate, served: bytes) -> None:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("generate_image", {"prompt": "a harbour at dawn"})
        assert not result.is_error, text_of(result)
        [image] = result.structured_content["images"]
        [read] = (await client.read_resource(image["uri"])).contents
    assert base64.b64decode(read.blob) == served
    record = next(p for p in stored_files(store_root(settings)) if p.suffix == ".json")
    assert record.with_suffix("").read_bytes() == served
    assert hashlib.sha256(served).hexdigest().startswith(image["uri"].split("-")[1][:32])
    assert (image["width"], image["height"]) == (1280, 1280)
    [preview] = [c for c in result.content if c.type == "image"]
    whole, _ = make_preview(served, max_px=settings.results.preview_max_px,
                            max_bytes=settings.results.preview_max_bytes)
    assert base64.b64decode(preview.data) == whole       # the same decoder, the same draft scale, same bytes
    assert len(replicate_fake.downloads) == 1


async def test_a_download_dropped_half_way_leaves_nothing_and_the_retry_stores_one_good_image(
        settings: Settings, replicate_fake: FakeReplicate, served: bytes) -> None:
    replicate_fake.drop_downloads = 1
    result = await generate(settings)
    assert not result.is_error, text_of(result)
    assert len(replicate_fake.downloads) == 2
    files = stored_files(store_root(settings))
    assert [p.suffix for p in files] == [".jpg", ".json"], files      # one image, its record, no .tmp-*
    assert files[0].read_bytes() == served
    assert [c for c in result.content if c.type == "image"], "the retry's preview is shown"


async def test_a_download_that_keeps_failing_stores_nothing_and_says_so(
        settings: Settings, replicate_fake: FakeReplicate, served: bytes) -> None:
    replicate_fake.drop_downloads = 10
    result = await generate(settings)
    assert result.is_error
    [link] = {f"{replicate_fake.url}{d.path}" for d in replicate_fake.downloads}
    assert text_of(result).strip() == ("The image was generated but replicate output download failed "
                                       "(RemoteProtocolError). It is still at the provider's temporary link for a "
                                       f"limited time; download it from there: {link}"), text_of(result)
    assert len(replicate_fake.downloads) == 3                          # the first try and EASEL_MAX_RETRIES=2
    assert stored_files(store_root(settings)) == []
    async with Client(build_server(settings)) as client:
        assert not [r for r in (await client.list_resources()).resources if r.uri.startswith("easel://images/")]


async def test_a_body_over_the_download_cap_is_refused_before_it_is_read(
        settings: Settings, replicate_fake: FakeReplicate, served: bytes) -> None:
    configs = {name: replace(cfg, max_download_bytes=len(served) - 1)
               for name, cfg in settings.providers.configs.items()}
    capped = replace(settings, providers=replace(settings.providers, configs=configs))
    result = await generate(capped)
    assert result.is_error and f"over the {len(served) - 1}-byte limit" in text_of(result), text_of(result)
    assert f"download it from there: {replicate_fake.url}/files/" in text_of(result)
    assert len(replicate_fake.downloads) == 1                          # a bigger file will not shrink: no retry
    assert stored_files(store_root(settings)) == []


async def test_a_body_without_a_length_is_cut_off_at_the_download_cap(
        settings: Settings, replicate_fake: FakeReplicate, served: bytes) -> None:
    replicate_fake.download_length = False                             # chunked: the cap is met mid-body
    configs = {name: replace(cfg, max_download_bytes=len(served) // 2)
               for name, cfg in settings.providers.configs.items()}
    result = await generate(replace(settings, providers=replace(settings.providers, configs=configs)))
    assert result.is_error and f"output is over the {len(served) // 2}-byte limit" in text_of(result), text_of(result)
    assert len(replicate_fake.downloads) == 1
    assert stored_files(store_root(settings)) == []                    # its temporary file is gone too


async def test_an_image_over_the_pixel_cap_is_refused_from_its_header(
        settings: Settings, replicate_fake: FakeReplicate, served: bytes) -> None:
    capped = replace(settings, calls=replace(settings.calls, max_image_pixels=1280 * 1279))
    result = await generate(capped)
    assert result.is_error
    assert "not a usable image: the image is 1280x1280 = 1638400 pixels, over the limit of 1637120" in text_of(result)
    assert stored_files(store_root(settings)) == []


async def test_a_body_that_is_not_an_image_is_refused_and_nothing_is_kept(
        settings: Settings, replicate_fake: FakeReplicate, served: bytes) -> None:
    replicate_fake.image_factory = lambda _pred: (b"<html>" + b"x" * 200_000, "image/jpeg")
    result = await generate(settings)
    assert result.is_error and "not a usable image: not a PNG, JPEG, WebP or GIF image" in text_of(result)
    assert stored_files(store_root(settings)) == []


async def test_with_previews_off_the_image_is_still_stored_as_it_streams(
        settings: Settings, replicate_fake: FakeReplicate, served: bytes) -> None:
    result = await generate(replace(settings, results=replace(settings.results, preview=False)))
    assert not result.is_error, text_of(result)
    assert not [c for c in result.content if c.type == "image"]
    files = stored_files(store_root(settings))
    assert [p.suffix for p in files] == [".jpg", ".json"] and files[0].read_bytes() == served


def test_the_header_probe_answers_from_the_first_pieces_and_refuses_as_early() -> None:
    body = photo()
    probe = HeaderProbe(max_pixels=10**8)
    answers = [probe.feed(body[i:i + 1024]) for i in range(0, 8 * 1024, 1024)]
    assert answers[-1] == inspect_image(body, max_pixels=10**8)       # known within the first 8 KiB
    assert probe.finish() == answers[-1]
    small = HeaderProbe(max_pixels=1000)
    with pytest.raises(InvalidImage, match="over the limit of 1000"):
        for i in range(0, 8 * 1024, 1024):
            small.feed(body[i:i + 1024])
    with pytest.raises(InvalidImage, match="not a PNG"):
        HeaderProbe(max_pixels=1000).feed(b"GIF00a but not really an image")
    cut = HeaderProbe(max_pixels=10**8)
    cut.feed(body[:10])
    with pytest.raises(InvalidImage, match="could not be read"):
        cut.finish()


async def test_the_image_is_written_as_it_arrives_and_nothing_is_visible_before_the_last_byte(
        settings: Settings, replicate_fake: FakeReplicate, served: bytes) -> None:
    """The store's temporary file fills and the preview decoder runs while the download is still open (the
    fake holds the last piece); until that piece comes, no image file, record or resource exists."""
    import sys
    import threading

    import anyio

    def decoding_now() -> bool:
        """A thread is inside make_preview (waiting there for the bytes still to come)."""
        frames = sys._current_frames().values()
        return any(f.f_code.co_name == "make_preview" for top in frames for f in _stack(top))

    settings = replace(settings, calls=replace(settings.calls, warmup=False))   # its make_preview would count
    gate = threading.Event()
    replicate_fake.download_tail_gate = gate
    root = store_root(settings)
    held_back = replicate_fake.download_chunk + ingest._FLUSH     # the held piece and one unflushed block at most
    results: list[Any] = []
    try:
        async with Client(build_server(settings)) as client, anyio.create_task_group() as tg:
            async def call() -> None:
                results.append(await client.call_tool("generate_image", {"prompt": "a harbour at dawn"}))
            tg.start_soon(call)
            with anyio.fail_after(20):
                while not [p for p in root.rglob(".tmp-*") if p.stat().st_size >= len(served) - held_back]:
                    await anyio.sleep(0.01)
                while not decoding_now():                              # the preview decoder is at work too
                    await anyio.sleep(0.01)
            images = [p for p in files_in(root) if p.parent.name.isdigit() and p.suffix in (".jpg", ".json")]
            assert not images, images                                  # the month's directory: only .tmp-*
            assert not [r for r in (await client.list_resources()).resources if r.uri.startswith("easel://images/")]
            gate.set()
    finally:
        gate.set()
    [result] = results
    assert not result.is_error, text_of(result)
    files = stored_files(root)
    assert [p.suffix for p in files] == [".jpg", ".json"], files       # renamed into place, no .tmp-* left
    assert files[0].read_bytes() == served


def _stack(frame: Any) -> list[Any]:
    out = []
    while frame is not None:
        out.append(frame)
        frame = frame.f_back
    return out


async def test_temporary_files_a_killed_process_left_are_removed_and_a_live_one_is_kept(
        settings: Settings, replicate_fake: FakeReplicate, served: bytes) -> None:
    """A streamed image's .tmp file lives as long as its download: one left by a process killed mid-download
    (untouched for over an hour) is removed by the next process's first download; another replica's live one
    (just written) is not."""
    import os
    import time
    from datetime import UTC, datetime

    month = store_root(settings) / f"{datetime.now(UTC):%Y%m}"
    month.mkdir(parents=True)
    stale, live = month / ".tmp-killed", month / ".tmp-another-replica"
    stale.write_bytes(served[:300_000])
    live.write_bytes(served[:300_000])
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    result = await generate(settings)
    assert not result.is_error, text_of(result)
    assert not stale.exists() and live.exists()
