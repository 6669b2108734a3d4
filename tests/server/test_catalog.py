"""The catalog and search_images: English and Chinese search, filters, paging at scale,
rebuilding from the store, deletes everywhere, and OSS replicas that keep in step."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import ImageContent, ResourceLink

from server.app import build_server, with_catalog
from server.catalog import FILE_NAME, Catalog, CatalogedStorage, Filters
from server.config import Settings
from server.storage import ImageNotFound
from server.storage.local import LocalStorage
from tests.support.images import png
from tests.support.results import text_of

pytestmark = pytest.mark.anyio

IMAGES = [  # (prompt as sent, user prompt, model, provider, tool, w, h, created)
    ("photorealistic of a lighthouse on a cliff at dusk", "a lighthouse on a cliff at dusk", "Flux 1.1 Pro",
     "replicate", "generate_image", 1024, 1024, "2026-11-20T10:00:00.000Z"),
    ("一座海边的灯塔，黄昏，油画风格", None, "Qwen Image", "modelscope", "illustrate_content", 1365, 1024,
     "2026-11-24T09:00:00.000Z"),
    ("a red fox in fresh snow", None, "Recraft v3", "replicate", "generate_image", 1024, 1365,
     "2026-11-25T08:00:00.000Z"),
    ("pixel art of a lighthouse keeper's cat", "a lighthouse keeper's cat", "Flux 1.1 Pro", "replicate",
     "edit_image", 1440, 810, "2026-11-28T12:00:00.000Z"),
]


def put_all(store: LocalStorage, images: list[tuple[Any, ...]] = IMAGES, start: int = 0) -> list[str]:
    ids = []
    for i, (prompt, user, model, provider, tool, w, h, created) in enumerate(images, start):
        meta = {"prompt": prompt, "model": model, "provider": provider, "tool": tool, "width": w, "height": h,
                "seed": 1000 + i, "created": created, **({"user_prompt": user} if user else {})}
        ids.append(store.put_sync(png(i), "image/png", meta).image_id)
    return ids


@pytest.fixture
def store(settings: Settings) -> LocalStorage:
    store = LocalStorage(settings.storage.dir)
    store.check_writable()
    return store


async def search(client: Client, **arguments: Any) -> tuple[list[str], Any]:
    result = await client.call_tool("search_images", arguments)
    assert not result.is_error, text_of(result)
    return [i["prompt"] for i in result.structured_content["images"]], result


async def test_search_finds_english_and_chinese_prompts_newest_first(settings: Settings, store: LocalStorage) -> None:
    ids = put_all(store)
    async with Client(build_server(settings)) as client:
        found, result = await search(client, query="lighthouse")
        assert found == [IMAGES[3][0], IMAGES[0][0]]                     # newest first
        assert result.structured_content["total"] == 2
        text = text_of(result)     # frameworks that pass on only text still get uri, url and prompt
        assert f"easel://images/{ids[3]}" in text and "file://" in text and IMAGES[0][0] in text
        links = [c for c in result.content if isinstance(c, ResourceLink)]
        assert [str(link.uri) for link in links] == [f"easel://images/{ids[3]}", f"easel://images/{ids[0]}"]
        assert len([c for c in result.content if isinstance(c, ImageContent)]) == 2

        assert (await search(client, query="灯塔"))[0] == [IMAGES[1][0]]          # jieba-segmented
        assert (await search(client, query="海边 黄昏"))[0] == [IMAGES[1][0]]
        assert (await search(client, query="light"))[0] == [IMAGES[3][0], IMAGES[0][0]]   # English prefixes
        assert (await search(client, query="keeper cat"))[0] == [IMAGES[3][0]]   # the user's prompt counts too
        assert (await search(client, query="lighthouse fox"))[0] == []         # every word must match
        nothing = (await search(client, query="submarine"))[1]
        assert "No stored images match" in text_of(nothing)


async def test_filters_by_model_provider_tool_date_and_size(settings: Settings, store: LocalStorage) -> None:
    put_all(store)
    async with Client(build_server(settings)) as client:
        assert (await search(client, model="flux 1.1 pro"))[0] == [IMAGES[3][0], IMAGES[0][0]]
        assert (await search(client, provider="modelscope"))[0] == [IMAGES[1][0]]
        assert (await search(client, tool="generate_image"))[0] == [IMAGES[2][0], IMAGES[0][0]]
        assert (await search(client, since="2026-11-24", until="2026-11-25"))[0] == [IMAGES[2][0], IMAGES[1][0]]
        assert (await search(client, size="portrait"))[0] == [IMAGES[2][0]]
        assert (await search(client, size="wide"))[0] == [IMAGES[3][0]]
        assert (await search(client, size="1024x1024"))[0] == [IMAGES[0][0]]
        assert (await search(client, query="lighthouse", model="Flux 1.1 Pro", size="square"))[0] == [IMAGES[0][0]]
        bad = await client.call_tool("search_images", {"size": "huge"})
        assert bad.is_error and "size" in text_of(bad) and "landscape" in text_of(bad)
        bad = await client.call_tool("search_images", {"since": "last week"})
        assert bad.is_error and "since" in text_of(bad) and "YYYY-MM-DD" in text_of(bad)
        bad = await client.call_tool("search_images", {"cursor": "bm90IGEgY3Vyc29y"})
        assert bad.is_error and "cursor" in text_of(bad)
        # a name no image carries: the assistant learns which names the catalog has, rather than "none"
        _, missed = await search(client, model="flux", tool="generate")
        assert "model 'flux'" in text_of(missed) and "Flux 1.1 Pro" in text_of(missed)
        assert "tool 'generate'" in text_of(missed) and "generate_image" in text_of(missed)


async def test_pages_through_thousands_without_gaps_and_previews_stay_off_for_big_pages(
        settings: Settings, store: LocalStorage) -> None:
    month = settings.storage.dir / "202611"      # records as the store keeps them (the catalog reads those)
    month.mkdir(parents=True)
    for i in range(3000):
        image_id = f"202611-{i:032x}.png"
        (month / f"{i:032x}.png.json").write_text(json.dumps({
            "id": image_id, "uri": f"easel://images/{image_id}", "mime_type": "image/png",
            "prompt": f"study number {i} of a harbour", "model": "Flux 1.1 Pro", "provider": "replicate",
            "created": f"2026-11-{1 + i // 200:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00.000Z"}))
    async with Client(build_server(settings)) as client:
        seen, cursor = [], None
        while True:
            args: dict[str, Any] = {"query": "harbour", "limit": 50}
            if cursor:
                args["cursor"] = cursor
            result = (await search(client, **args))[1]
            page = result.structured_content
            assert not any(isinstance(c, ImageContent) for c in result.content)   # 50 > a few: no previews
            seen += [i["uri"] for i in page["images"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 3000 and page["total"] == 3000
        first = await client.list_resources()
        assert len([r for r in first.resources if str(r.uri).startswith("easel://")]) == settings.results.list_limit
        assert first.next_cursor is not None


async def test_rebuilt_from_the_store_when_missing_or_stale(settings: Settings, store: LocalStorage) -> None:
    ids = put_all(store)
    async with Client(build_server(settings)) as client:
        assert len((await search(client))[0]) == 4
    catalog_file = settings.storage.dir / FILE_NAME
    catalog_file.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(catalog_file) + suffix).unlink(missing_ok=True)
    async with Client(build_server(settings)) as client:           # missing: rebuilt from the records
        assert (await search(client, query="灯塔"))[0] == [IMAGES[1][0]]
    # stale: another process (an older version, without the catalog) adds one image and removes another
    more = put_all(LocalStorage(settings.storage.dir), [IMAGES[0][:-1] + ("2026-11-29T00:00:00.000Z",)], start=9)
    meta = store.path_of(ids[2])
    os.unlink(meta.with_name(meta.name + ".json"))
    async with Client(build_server(settings)) as client:
        uris = [i["uri"] for i in (await search(client))[1].structured_content["images"]]
    assert uris[0] == f"easel://images/{more[0]}" and f"easel://images/{ids[2]}" not in uris and len(uris) == 4
    catalog_file.write_bytes(b"this is not a database" * 100)      # corrupt: moved aside, rebuilt
    async with Client(build_server(settings)) as client:
        assert len((await search(client))[0]) == 4


async def test_delete_removes_image_record_thumbnail_and_row(settings: Settings, store: LocalStorage) -> None:
    ids = put_all(store)
    cataloged = with_catalog(store, settings)
    assert isinstance(cataloged, CatalogedStorage)
    from server.thumbnails import THUMB_SUFFIX, thumbnail

    thumb = await thumbnail(cataloged, ids[0])
    assert thumb.startswith(b"\xff\xd8") and store.sidecar_path(ids[0], THUMB_SUFFIX).read_bytes() == thumb
    await cataloged.delete(ids[0])
    assert not list(store.path_of(ids[0]).parent.glob(store.path_of(ids[0]).name + "*"))
    assert (await cataloged.search(Filters(query="cliff"), 10)).records == []
    with pytest.raises(ImageNotFound):
        await cataloged.delete(ids[0])
    listed, _ = await cataloged.list_recent(10)
    assert [r["id"] for r in listed] == [ids[3], ids[2], ids[1]]
    for path in store.path_of(ids[1]).parent.glob(store.path_of(ids[1]).name + "*"):   # gone behind our back
        path.unlink()
    with pytest.raises(ImageNotFound):
        await cataloged.delete(ids[1])
    assert [r["id"] for r in (await cataloged.list_recent(10))[0]] == [ids[3], ids[2]]   # its row went too


async def test_retention_deletes_old_images(settings: Settings, store: LocalStorage) -> None:
    ids = put_all(store)
    cataloged = CatalogedStorage(store, Catalog.in_dir(settings.storage.dir), retention_days=6)
    await cataloged.ensure_synced()
    from datetime import datetime

    now = datetime.fromisoformat("2026-12-01T00:00:00+00:00").timestamp()
    assert await cataloged.expire(now=now) == 2              # made 20 and 24 November
    assert [r["id"] for r in (await cataloged.list_recent(10))[0]] == [ids[3], ids[2]]
    with pytest.raises(ImageNotFound):
        await store.metadata(ids[0])


async def test_catalog_off_keeps_listing_from_the_store(env: dict[str, str], store: LocalStorage) -> None:
    put_all(store)
    settings = Settings.from_env({**env, "EASEL_CATALOG": "off"})
    async with Client(build_server(settings)) as client:
        listed = [r for r in (await client.list_resources()).resources if str(r.uri).startswith("easel://")]
        assert len(listed) == 4
        result = await client.call_tool("search_images", {"query": "fox"})
        assert result.is_error and "EASEL_CATALOG" in text_of(result)
    assert not (settings.storage.dir / FILE_NAME).exists()


# ----------------------------------------------------------------------------- OSS replicas


async def test_oss_replicas_keep_their_catalogs_in_step_with_the_bucket(env: dict[str, str], tmp_path: Path) -> None:
    from tests.fakes.oss_fake import FakeOSS
    from tests.support.oss import AK, BUCKET, SECRET

    with FakeOSS(access_key_id=AK, access_key_secret=SECRET, buckets=(BUCKET,)).running() as fake:
        oss = {**env, "EASEL_STORAGE": "oss", "OSS_ACCESS_KEY_ID": AK, "OSS_ACCESS_KEY_SECRET": SECRET,
               "OSS_ENDPOINT": fake.endpoint, "OSS_BUCKET": BUCKET, "EASEL_OSS_BACKOFF": "0.01",
               "EASEL_CATALOG_SYNC": "0.05"}
        a = build_server(Settings.from_env({**oss, "EASEL_STORAGE_DIR": str(tmp_path / "a")}))
        b = build_server(Settings.from_env({**oss, "EASEL_STORAGE_DIR": str(tmp_path / "b")}))
        assert Settings.from_env(oss).gallery.catalog_sync == 0.05
        assert Settings.from_env({**oss, "EASEL_CATALOG_SYNC": ""}).gallery.catalog_sync == 15.0   # OSS default
        async with Client(a) as ca, Client(b) as cb:
            stored = await a.storage.put(png(1), "image/png", {"prompt": "a lighthouse in fog", "model": "m"})
            with anyio.fail_after(10):     # b's background sync finds what a stored
                while not (await search(cb, query="fog"))[0]:
                    await anyio.sleep(0.02)
            from server.thumbnails import thumbnail

            key = f"easel-mcp/{stored.image_id[:6]}/{stored.image_id[7:]}"
            thumb = await thumbnail(b.storage, stored.image_id)               # made by b, cached in the bucket
            assert fake.get(key + ".thumb.jpg").data == thumb  # type: ignore[union-attr]
            assert await thumbnail(a.storage, stored.image_id) == thumb        # a reads b's copy
            await a.storage.delete(stored.image_id)
            assert not [k for (_, k) in fake.objects if k.startswith(key)]    # image, record and thumbnail
            assert (await search(ca, query="fog"))[0] == []
            with anyio.fail_after(10):     # ... and drops what a deleted
                while (await search(cb, query="fog"))[0]:
                    await anyio.sleep(0.02)
        assert (tmp_path / "b" / FILE_NAME).exists()


# ----------------------------------------------------------------------------- the MCP App


async def test_browse_images_app_resource_is_listed_with_its_mime_type_and_csp(
        settings: Settings, store: LocalStorage) -> None:
    from mcp.server.apps import APP_MIME_TYPE

    from server.tools.browse import APP_URI

    ids = put_all(store)
    async with Client(build_server(settings)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["browse_images"].meta["ui"]["resourceUri"] == APP_URI
        assert tools["image_thumbnails"].meta["ui"]["visibility"] == ["app"]
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        assert listed[APP_URI].mime_type == APP_MIME_TYPE
        [content] = (await client.read_resource(APP_URI)).contents
        assert content.mime_type == APP_MIME_TYPE and "<script>" in content.text and "http" not in content.text
        csp = content.meta["ui"]["csp"] if content.meta else listed[APP_URI].meta["ui"]["csp"]
        assert csp == {"connectDomains": [], "resourceDomains": [], "frameDomains": [], "baseUriDomains": []}

        # a host without apps still gets a complete answer
        result = await client.call_tool("browse_images", {"query": "lighthouse"})
        assert not result.is_error and f"easel://images/{ids[3]}" in text_of(result)
        assert [i["uri"] for i in result.structured_content["images"]] == [f"easel://images/{ids[3]}",
                                                                          f"easel://images/{ids[0]}"]
        thumbs = await client.call_tool("image_thumbnails", {"ids": [ids[0], "../../etc/passwd"]})
        assert list(thumbs.structured_content["thumbnails"]) == [ids[0]]
        assert thumbs.structured_content["thumbnails"][ids[0]].startswith("data:image/jpeg;base64,/9j/")


async def test_odd_records_do_not_break_the_catalog(settings: Settings, store: LocalStorage) -> None:
    ids = put_all(store, [("a harbour", None, "m", "p", "generate_image", 10, 10, "9999-12-31T00:00:00Z")])
    ids += put_all(store, [("a harbour at night", None, "m", "p", "generate_image", 10, 10, "not a date")], start=5)
    month = settings.storage.dir / ids[0][:6]
    (month / f"{'e' * 32}.png.json").write_text("[1, 2, 3]")                     # not a record
    (month / f"{'f' * 32}.png.json").write_text("{not json")                     # cut short
    record = json.loads((month / f"{ids[0][7:]}.json").read_text())
    record["seed"] = 2 ** 64 - 1                                                 # bigger than SQLite's integers
    (month / f"{ids[0][7:]}.json").write_text(json.dumps(record))
    cataloged = with_catalog(store, settings)
    page = await cataloged.search(Filters(query="harbour"), 10)
    assert sorted(r["id"] for r in page.records) == sorted(ids)
    assert all(row["created"].startswith(ids[0][:4]) for row in page.rows)      # absurd dates: the id's month
