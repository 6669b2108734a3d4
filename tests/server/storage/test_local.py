"""Local storage keeps its promises: content ids, atomic writes, dedupe, no way out of the root."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from server.storage import ImageNotFound, StorageError, image_key, parse_image_id
from server.storage.local import LocalStorage
from tests.support.images import png

pytestmark = pytest.mark.anyio


async def test_an_image_is_stored_under_its_content_hash_and_read_back_byte_for_byte(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    data = png(1)
    stored = await store.put(data, "image/png", {"prompt": "a red square"})
    assert parse_image_id(stored.image_id)["hash"] == hashlib.sha256(data).hexdigest()[:32]
    assert stored.uri == f"easel://images/{stored.image_id}"
    assert await store.get(stored.image_id) == (data, "image/png")
    meta = await store.metadata(stored.image_id)
    assert meta["prompt"] == "a red square" and meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored.url.startswith("file://") and Path(stored.url.removeprefix("file://")).read_bytes() == data


async def test_the_same_bytes_twice_are_stored_once_and_keep_the_first_metadata(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    first = await store.put(png(2), "image/png", {"prompt": "first"})
    second = await store.put(png(2), "image/png", {"prompt": "second"})
    assert second.image_id == first.image_id and second.deduplicated
    assert (await store.metadata(first.image_id))["prompt"] == "first"
    assert len(list(tmp_path.rglob("*.png"))) == 1


async def test_no_temporary_or_partial_files_remain_after_writes(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    for i in range(5):
        await store.put(png(i), "image/png", {})
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


async def test_a_failed_metadata_write_leaves_neither_image_nor_metadata(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    # metadata that cannot be serialised fails after the image was written: the image must go too
    with pytest.raises(TypeError):
        await store.put(png(3), "image/png", {"bad": object()})
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("bad_id", [
    "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "202611-" + "a" * 32,
    "202611-" + "a" * 32 + ".exe", "202611-" + "A" * 32 + ".png", "2026-" + "a" * 32 + ".png",
    "202611-" + "a" * 32 + ".png/../../x", "202611-" + "a" * 5000 + ".png", "", "\x00",
])
async def test_malformed_ids_are_not_found_and_never_touch_the_filesystem(tmp_path: Path, bad_id: str) -> None:
    store = LocalStorage(tmp_path / "store")
    (tmp_path / "secret.png").write_bytes(b"secret")
    with pytest.raises(ImageNotFound):
        await store.get(bad_id)
    with pytest.raises(ImageNotFound):
        await store.metadata(bad_id)


async def test_an_unknown_well_formed_id_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound):
        await LocalStorage(tmp_path).get("202611-" + "0" * 32 + ".png")


async def test_listing_returns_newest_first_in_pages(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    ids = []
    for i in range(7):
        stored = await store.put(png(i), "image/png", {"n": i})
        meta = Path(str(store.path_of(stored.image_id)) + ".json")
        os.utime(meta, ns=(i * 10**9, i * 10**9))  # distinct, ordered times without sleeping
        ids.append(stored.image_id)
    page, cursor = await store.list_recent(3)
    assert [r["id"] for r in page] == ids[::-1][:3]
    page2, cursor2 = await store.list_recent(3, cursor)
    page3, cursor3 = await store.list_recent(3, cursor2)
    assert [r["id"] for r in page2 + page3] == ids[::-1][3:]
    assert cursor3 is None
    with pytest.raises(StorageError):
        await store.list_recent(3, "not-a-cursor")


def test_keys_map_ids_to_month_folders_without_lookup() -> None:
    assert image_key("202611-" + "ab" * 16 + ".jpg") == "202611/" + "ab" * 16 + ".jpg"


def test_an_unwritable_storage_directory_is_a_clear_startup_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="EASEL_STORAGE_DIR"):
        LocalStorage(blocker / "images").check_writable()


async def test_listing_uses_the_index_and_falls_back_to_modification_times_without_it(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    ids = [(await store.put(png(i), "image/png", {"n": i})).image_id for i in range(4)]
    await store.put(png(0), "image/png", {"n": "again"})  # a duplicate is not indexed twice
    index = next(tmp_path.glob("*/.index"))
    assert index.read_text().split() == ids
    for i, image_id in enumerate(ids):  # mtimes that say the opposite order
        meta = Path(str(store.path_of(image_id)) + ".json")
        os.utime(meta, ns=((10 - i) * 10**9, (10 - i) * 10**9))
    assert [r["id"] for r in (await store.list_recent(10))[0]] == ids[::-1]
    index.unlink()  # a store written before the index existed
    assert [r["id"] for r in (await store.list_recent(10))[0]] == ids
