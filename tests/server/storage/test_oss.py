"""OSS storage, driven through the real oss2 client against FakeOSS on loopback.

Covers the seeds' layout, dedupe, links (custom domain or signed), listing,
retries, the local fallback with late uploads (also after a restart), the MCP
server end to end, two processes sharing one bucket, start-up errors and secrets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from providers.errors import ConfigError
from server.app import build_server
from server.config import Settings
from server.storage import Storage, StorageError, image_key
from server.storage.fallback import FallbackStorage
from server.storage.oss import make_oss_storage
from tests.fakes.oss_fake import FakeOSS
from tests.support.images import png
from tests.support.oss import AK, BUCKET, SECRET
from tests.support.processes import http_server

pytestmark = pytest.mark.anyio

BASE = "gallery/imgs"
REGION = "cn-hangzhou"
META = {"prompt": "a lighthouse at dusk", "model": "Flux 1.1 Pro", "provider": "replicate",
        "provider_model": "black-forest-labs/flux-1.1-pro", "seed": 42, "prediction_id": "pred-123",
        "parameters": {"aspect_ratio": "1:1"}, "width": 64, "height": 48}
SIGNATURES = pytest.mark.parametrize("region", [None, REGION], ids=["v1", "v4"])


@pytest.fixture
def fake() -> Iterator[FakeOSS]:
    with FakeOSS(access_key_id=AK, access_key_secret=SECRET, buckets=(BUCKET,), region=REGION).running() as f:
        yield f


@pytest.fixture
def oss_env(env: dict[str, str], fake: FakeOSS) -> dict[str, str]:
    return {**env, "EASEL_STORAGE": "oss", "OSS_ACCESS_KEY_ID": AK, "OSS_ACCESS_KEY_SECRET": SECRET,
            "OSS_ENDPOINT": fake.endpoint, "OSS_BUCKET": BUCKET, "OSS_BASE_PATH": BASE,
            "EASEL_OSS_BACKOFF": "0.01", "EASEL_OSS_TIMEOUT": "2", "EASEL_OSS_RETRY_INTERVAL": "0.05"}


def oss_store(settings: Settings) -> Storage:
    return make_oss_storage(settings.storage.oss, settings.storage.dir)


def storage_for(env: dict[str, str], **extra: str) -> FallbackStorage:
    store = oss_store(Settings.from_env({**env, **extra}))
    assert isinstance(store, FallbackStorage)
    return store


def key_of(image_id: str) -> str:
    return f"{BASE}/{image_key(image_id)}"


def marker(env: dict[str, str], image_id: str) -> Path:
    return Path(env["EASEL_STORAGE_DIR"]) / "pending" / image_id


async def until_nothing_pending(store: FallbackStorage) -> None:
    with anyio.fail_after(10):
        while store.pending_ids():
            await store.wait_for_round()


# --------------------------------------------------------------------------- layout and round trip


@SIGNATURES
async def test_an_image_and_its_record_round_trip_through_the_bucket(
        oss_env: dict[str, str], fake: FakeOSS, region: str | None) -> None:
    store = storage_for(oss_env, **({"OSS_REGION": region} if region else {}))
    data = png(1)
    stored = await store.put(data, "image/png", META)

    assert stored.stored_in == "oss" and stored.note is None and not stored.deduplicated
    sha = hashlib.sha256(data).hexdigest()
    month = time.strftime("%Y%m", time.gmtime())
    assert stored.image_id == f"{month}-{sha[:32]}.png"
    key = f"{BASE}/{month}/{sha[:32]}.png"
    obj = fake.get(key)
    assert obj is not None and obj.data == data and obj.content_type == "image/png"
    assert obj.meta == {"x-oss-meta-model": "Flux 1.1 Pro", "x-oss-meta-provider": "replicate",
                        "x-oss-meta-seed": "42", "x-oss-meta-prediction-id": "pred-123",
                        "x-oss-meta-sha256": sha}
    record = json.loads(fake.get(key + ".json").data)  # type: ignore[union-attr]
    assert record["prompt"] == META["prompt"] and record["uri"] == stored.uri and record["sha256"] == sha
    puts = [r.key for r in fake.requests_for("PUT")]
    assert puts == [key, key + ".json"]                      # the image first, then its record
    expected_auth = "v4" if region else "v1"
    assert {r.auth_kind for r in fake.requests} == {expected_auth}

    assert await store.get(stored.image_id) == (data, "image/png")
    assert (await store.metadata(stored.image_id))["seed"] == 42
    assert not any(Path(oss_env["EASEL_STORAGE_DIR"]).glob("*/*.png"))   # nothing kept locally


async def test_the_same_bytes_are_not_uploaded_twice(oss_env: dict[str, str], fake: FakeOSS) -> None:
    store = storage_for(oss_env)
    first = await store.put(png(2), "image/png", META)
    second = await store.put(png(2), "image/png", {**META, "prompt": "another prompt"})
    assert second.deduplicated and second.image_id == first.image_id
    assert second.metadata["prompt"] == META["prompt"]       # the stored record, unchanged
    assert len(fake.requests_for("PUT", key_of(first.image_id))) == 1
    assert len(fake.requests_for("PUT")) == 2                # one image, one record


async def test_a_half_finished_upload_gets_its_record_without_sending_the_image_again(
        oss_env: dict[str, str], fake: FakeOSS) -> None:
    store = storage_for(oss_env)
    stored = await store.put(png(3), "image/png", META)
    with fake.cond:
        del fake.objects[(BUCKET, key_of(stored.image_id) + ".json")]
    again = await store.put(png(3), "image/png", META)
    assert not again.deduplicated and fake.get(key_of(stored.image_id) + ".json") is not None
    assert len(fake.requests_for("PUT", key_of(stored.image_id))) == 1


async def test_an_unknown_or_malformed_id_is_not_found(oss_env: dict[str, str], fake: FakeOSS) -> None:
    from server.storage import ImageNotFound

    store = storage_for(oss_env)
    with pytest.raises(ImageNotFound):
        await store.get("202401-" + "0" * 32 + ".png")
    with pytest.raises(ImageNotFound):
        await store.metadata("202401-" + "0" * 32 + ".png")
    requests_before = len(fake.requests)
    with pytest.raises(ImageNotFound):
        await store.get("../../etc/passwd")
    assert len(fake.requests) == requests_before


# --------------------------------------------------------------------------- links


async def test_a_custom_domain_gives_plain_public_links(oss_env: dict[str, str], fake: FakeOSS) -> None:
    store = storage_for(oss_env, OSS_CUSTOM_DOMAIN="img.example.com")
    stored = await store.put(png(4), "image/png", META)
    assert stored.url == f"https://img.example.com/{key_of(stored.image_id)}"
    store = storage_for(oss_env, OSS_CUSTOM_DOMAIN="http://cdn.example.com/assets/")
    assert store.url_for(stored.image_id) == f"http://cdn.example.com/assets/{key_of(stored.image_id)}"


@SIGNATURES
async def test_without_a_custom_domain_the_link_is_signed_and_expires(
        oss_env: dict[str, str], fake: FakeOSS, region: str | None) -> None:
    store = storage_for(oss_env, EASEL_OSS_URL_EXPIRY="600", **({"OSS_REGION": region} if region else {}))
    data = png(5)
    stored = await store.put(data, "image/png", META)
    assert SECRET not in stored.url
    async with httpx.AsyncClient() as http:
        ok = await http.get(stored.url)
        assert ok.status_code == 200 and ok.content == data and ok.headers["content-type"] == "image/png"
        start = time.time()
        fake.clock = lambda: start + 500
        assert (await http.get(stored.url)).status_code == 200
        fake.clock = lambda: start + 700
        expired = await http.get(stored.url)
    assert expired.status_code == 403 and b"Request has expired" in expired.content
    assert {r.auth_kind for r in fake.requests_for("GET")} == {"v4-query" if region else "v1-query"}


# --------------------------------------------------------------------------- listing


async def test_recent_images_are_listed_from_the_bucket_newest_first_in_bounded_pages(
        oss_env: dict[str, str], fake: FakeOSS) -> None:
    store = storage_for(oss_env)
    now = time.time()
    current = []
    for i in range(3):                                     # three this month, one second apart
        fake.clock = lambda i=i: now + i
        current.append((await store.put(png(10 + i), "image/png", {**META, "prompt": f"new {i}"})).image_id)
    old = []
    for i in range(2):                                     # two in an older month, seeded directly
        image_id = f"202401-{i:032x}.png"
        fake.clock = lambda i=i: now - 1000 + i
        fake.put_object(key_of(image_id), png(20 + i), "image/png")
        record = {"id": image_id, "uri": f"easel://images/{image_id}", "prompt": f"old {i}"}
        fake.put_object(key_of(image_id) + ".json", json.dumps(record).encode())
        old.append(image_id)
    fake.put_object(f"{BASE}/notes.txt", b"not an image")
    fake.put_object(f"{BASE}/202401/readme.json", b"{}")
    fake.put_object(f"elsewhere/202402/{'f' * 32}.png.json", b"{}")
    fake.clock = time.time

    expected = [current[2], current[1], current[0], old[1], old[0]]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        gets_before = len(fake.requests_for("GET"))
        records, cursor = await store.list_recent(2, cursor)
        record_reads = [r for r in fake.requests_for("GET")[gets_before:] if r.key.endswith(".json")]
        assert len(records) <= 2 and len(record_reads) == len(records)   # bounded: only the page is read
        seen += [r["id"] for r in records]
        pages += 1
        if cursor is None:
            break
    assert seen == expected and pages == 3
    everything, cursor = await store.list_recent(50)
    assert [r["id"] for r in everything] == expected and cursor is None
    with pytest.raises(StorageError, match="Invalid cursor"):
        await store.list_recent(2, "bm9wZQ==")


async def test_resources_list_pages_through_the_bucket(oss_env: dict[str, str], fake: FakeOSS) -> None:
    settings = Settings.from_env({**oss_env, "EASEL_LIST_LIMIT": "2"})
    store = oss_store(settings)
    ids = [(await store.put(png(30 + i), "image/png", META)).image_id for i in range(3)]
    async with Client(build_server(settings, storage=store)) as client:
        first = await client.list_resources()
        second = await client.list_resources(cursor=first.next_cursor)
    listed = [str(r.uri) for r in [*first.resources, *second.resources] if str(r.uri).startswith("easel://")]
    assert sorted(listed) == sorted(f"easel://images/{i}" for i in ids)
    assert first.next_cursor and second.next_cursor is None


# --------------------------------------------------------------------------- retries


async def test_one_503_is_retried_and_the_image_lands_in_oss(oss_env: dict[str, str], fake: FakeOSS) -> None:
    store = storage_for(oss_env)
    fake.inject(503, method="PUT", times=1)
    stored = await store.put(png(40), "image/png", META)
    assert stored.stored_in == "oss"
    assert [r.status for r in fake.requests_for("PUT", key_of(stored.image_id))] == [503, 200]


async def test_a_dropped_connection_is_retried(oss_env: dict[str, str], fake: FakeOSS) -> None:
    store = storage_for(oss_env)
    fake.inject_reset(method="PUT", times=1)
    stored = await store.put(png(41), "image/png", META)
    assert stored.stored_in == "oss" and fake.get(key_of(stored.image_id)) is not None
    assert [r.status for r in fake.requests_for("PUT", key_of(stored.image_id))] == [None, 200]


async def test_a_request_that_hangs_times_out_and_is_retried(oss_env: dict[str, str], fake: FakeOSS) -> None:
    store = storage_for(oss_env, EASEL_OSS_TIMEOUT="0.3")
    fake.inject_delay(5, method="PUT", times=1)
    stored = await store.put(png(42), "image/png", META)
    assert stored.stored_in == "oss" and fake.get(key_of(stored.image_id)) is not None
    assert [r.status for r in fake.requests_for("PUT", key_of(stored.image_id))] == [None, 200]


async def test_reads_are_retried_too(oss_env: dict[str, str], fake: FakeOSS) -> None:
    store = storage_for(oss_env)
    stored = await store.put(png(43), "image/png", META)
    fake.inject(500, code="InternalError", method="GET", times=2)
    assert (await store.get(stored.image_id))[0] == png(43)


async def test_a_wrong_secret_is_not_retried_and_the_image_is_kept_locally(
        oss_env: dict[str, str], fake: FakeOSS, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-SECRET-7d1e0b"
    store = storage_for(oss_env, OSS_ACCESS_KEY_SECRET=wrong)
    stored = await store.put(png(44), "image/png", META)
    assert stored.stored_in == "local"
    assert "SignatureDoesNotMatch" in (stored.note or "") and "HTTP 403" in (stored.note or "")
    assert len(fake.requests) == 1 and fake.requests[0].status == 403      # one answer, no retry
    assert marker(oss_env, stored.image_id).is_file()
    for text in (stored.note or "", caplog.text, json.dumps(stored.metadata), repr(store)):
        assert wrong not in text and SECRET not in text


# --------------------------------------------------------------------------- fallback


async def test_when_oss_is_down_the_image_is_kept_locally_readable_and_uploaded_later(
        oss_env: dict[str, str], fake: FakeOSS) -> None:
    store = storage_for(oss_env)
    fake.down = True
    data = png(50)
    stored = await store.put(data, "image/png", META)
    assert stored.stored_in == "local" and stored.url.startswith("file://")
    assert stored.note is not None and stored.note.startswith("OSS upload failed (")
    assert stored.note.endswith("; stored locally, will upload when OSS answers")
    assert "503" in stored.note and "after 4 attempts" in stored.note
    assert marker(oss_env, stored.image_id).is_file()
    assert await store.get(stored.image_id) == (data, "image/png")          # readable while pending
    assert (await store.metadata(stored.image_id))["prompt"] == META["prompt"]
    key = key_of(stored.image_id)

    async with anyio.create_task_group() as tg:
        tg.start_soon(store.run_background)
        await store.wait_for_round()                  # a round while still down: nothing moves
        assert key not in {k for _, k in fake.objects} and store.pending_ids() == [stored.image_id]
        fake.down = False
        await fake.wait_until(lambda: (BUCKET, key + ".json") in fake.objects)
        await until_nothing_pending(store)
        tg.cancel_scope.cancel()
    assert fake.get(key).data == data and fake.get(key).content_type == "image/png"  # type: ignore[union-attr]
    assert json.loads(fake.get(key + ".json").data)["created"] == stored.metadata["created"]  # type: ignore[union-attr]
    assert not marker(oss_env, stored.image_id).exists()
    assert store.url_for(stored.image_id).startswith(fake.endpoint)          # a signed link again


async def test_pending_images_are_uploaded_after_a_restart(oss_env: dict[str, str], fake: FakeOSS) -> None:
    fake.down = True
    first_run = storage_for(oss_env)
    stored = await first_run.put(png(51), "image/png", META)
    assert stored.stored_in == "local"
    fake.down = False

    second_run = storage_for(oss_env)                 # a new process over the same local directory
    assert second_run.pending_ids() == [stored.image_id]
    async with anyio.create_task_group() as tg:
        tg.start_soon(second_run.run_background)
        await fake.wait_until(lambda: (BUCKET, key_of(stored.image_id) + ".json") in fake.objects)
        await until_nothing_pending(second_run)
        tg.cancel_scope.cancel()
    assert fake.get(key_of(stored.image_id)).data == png(51)  # type: ignore[union-attr]
    assert not marker(oss_env, stored.image_id).exists()


async def test_listing_falls_back_to_local_images_when_oss_is_down(oss_env: dict[str, str], fake: FakeOSS) -> None:
    store = storage_for(oss_env)
    fake.down = True
    stored = await store.put(png(52), "image/png", META)
    records, _ = await store.list_recent(10)
    assert [r["id"] for r in records] == [stored.image_id]


async def test_when_neither_store_has_the_image_the_oss_failure_is_reported(
        oss_env: dict[str, str], fake: FakeOSS) -> None:
    store = storage_for(oss_env)
    fake.down = True
    with pytest.raises(StorageError, match="HTTP 503 ServiceUnavailable") as info:
        await store.get("202401-" + "0" * 32 + ".png")
    assert SECRET not in str(info.value)


# --------------------------------------------------------------------------- the MCP server


def oss_key_of_uri(uri: str) -> str:
    return key_of(uri.removeprefix("easel://images/"))


async def test_generate_image_stores_in_oss_and_links_to_a_signed_url(
        oss_env: dict[str, str], fake: FakeOSS) -> None:
    async with Client(build_server(Settings.from_env(oss_env))) as client:
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse at dusk"})
        assert not result.is_error, result.content
        [image] = result.structured_content["images"]
        assert image["stored_in"] == "oss" and image["note"] is None
        assert image["url"].startswith(f"{fake.endpoint}/{BUCKET}/{BASE}/") and "Signature=" in image["url"]
        blob = base64.b64decode((await client.read_resource(image["uri"])).contents[0].blob)
        meta = json.loads((await client.read_resource(image["uri"] + "/metadata")).contents[0].text)
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
    obj = fake.get(oss_key_of_uri(image["uri"]))
    assert obj is not None and blob == obj.data and hashlib.sha256(blob).hexdigest() == image["sha256"]
    assert meta["prediction_id"] == image["prediction_id"] and image["uri"] in listed
    assert SECRET not in json.dumps(result.structured_content)
    async with httpx.AsyncClient() as http:
        assert (await http.get(image["url"])).content == blob


async def test_with_a_custom_domain_the_tool_links_to_it(oss_env: dict[str, str], fake: FakeOSS) -> None:
    settings = Settings.from_env({**oss_env, "OSS_CUSTOM_DOMAIN": "img.example.com", "OSS_REGION": REGION})
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    [image] = result.structured_content["images"]
    assert image["url"] == f"https://img.example.com/{oss_key_of_uri(image['uri'])}"


async def test_with_oss_down_the_tool_still_succeeds_and_the_server_uploads_later(
        oss_env: dict[str, str], fake: FakeOSS, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.down = True
    async with Client(build_server(Settings.from_env(oss_env))) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
        assert not result.is_error, result.content
        [image] = result.structured_content["images"]
        assert image["stored_in"] == "local"
        assert "OSS upload failed" in image["note"] and "will upload when OSS answers" in image["note"]
        blob = base64.b64decode((await client.read_resource(image["uri"])).contents[0].blob)
        assert hashlib.sha256(blob).hexdigest() == image["sha256"]
        fake.down = False                              # the server's lifespan runs the uploader
        key = oss_key_of_uri(image["uri"])
        await fake.wait_until(lambda: (BUCKET, key + ".json") in fake.objects)
    assert fake.get(key).data == blob  # type: ignore[union-attr]
    assert SECRET not in caplog.text and SECRET not in json.dumps(result.structured_content)
    assert "Authorization" not in caplog.text and f"OSS {AK}:" not in caplog.text


async def test_two_processes_share_the_bucket(oss_env: dict[str, str], fake: FakeOSS, tmp_path: Path) -> None:
    env_a = {**oss_env, "EASEL_STORAGE_DIR": str(tmp_path / "a")}
    env_b = {**oss_env, "EASEL_STORAGE_DIR": str(tmp_path / "b")}
    with http_server(["--transport", "http"], env_a) as base_a, http_server(["--transport", "http"], env_b) as base_b:
        async with Client(f"{base_a}/mcp") as a:
            result = await a.call_tool("generate_image", {"prompt": "a lighthouse"})
            assert not result.is_error, result.content
            [image] = result.structured_content["images"]
            assert image["stored_in"] == "oss"
        async with Client(f"{base_b}/mcp") as b:
            blob = base64.b64decode((await b.read_resource(image["uri"])).contents[0].blob)
            meta = json.loads((await b.read_resource(image["uri"] + "/metadata")).contents[0].text)
            listed = [str(r.uri) for r in (await b.list_resources()).resources]
    assert hashlib.sha256(blob).hexdigest() == image["sha256"] and meta["prompt"] == "a lighthouse"
    assert image["uri"] in listed
    assert not list((tmp_path / "b").glob("*/*.json"))       # b served it from OSS, not from a copy


# --------------------------------------------------------------------------- start-up and secrets


def test_missing_oss_settings_are_a_config_error_naming_each_variable(tmp_path: Path) -> None:
    settings = Settings.from_env({"EASEL_STORAGE": "oss", "EASEL_STORAGE_DIR": str(tmp_path),
                                  "OSS_BUCKET": "easel-test"})
    with pytest.raises(ConfigError) as info:
        build_server(settings)
    message = str(info.value)
    for name in ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_ENDPOINT"):
        assert name in message
    assert "OSS_BUCKET" not in message


@pytest.mark.parametrize(("variable", "value"), [
    ("OSS_BUCKET", "Bad_Bucket"), ("OSS_BUCKET", "ab"), ("OSS_ENDPOINT", "not a url"),
    ("OSS_ENDPOINT", "ftp://oss.example.com"), ("OSS_ENDPOINT", "https://oss.example.com/some/path"),
    ("OSS_CUSTOM_DOMAIN", "img example com"), ("OSS_REGION", "CN Hangzhou"), ("OSS_BASE_PATH", "a/../b"),
])
def test_an_invalid_oss_setting_is_a_config_error_naming_it(tmp_path: Path, variable: str, value: str) -> None:
    env = {"EASEL_STORAGE": "oss", "EASEL_STORAGE_DIR": str(tmp_path), "OSS_ACCESS_KEY_ID": AK,
           "OSS_ACCESS_KEY_SECRET": SECRET, "OSS_ENDPOINT": "oss-cn-hangzhou.aliyuncs.com",
           "OSS_BUCKET": BUCKET, variable: value}
    with pytest.raises(ConfigError, match=variable) as info:
        oss_store(Settings.from_env(env))
    assert SECRET not in str(info.value)


def test_a_bad_oss_number_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="EASEL_OSS_URL_EXPIRY"):
        Settings.from_env({"EASEL_OSS_URL_EXPIRY": "forever"})


def test_the_cli_exits_2_naming_the_missing_oss_variables(tmp_path: Path) -> None:
    env = {**os.environ, "EASEL_STORAGE": "oss", "EASEL_STORAGE_DIR": str(tmp_path),
           "OSS_ACCESS_KEY_SECRET": SECRET, "OSS_ENDPOINT": "oss-cn-hangzhou.aliyuncs.com"}
    proc = subprocess.run([sys.executable, "-m", "server"], env=env, input=b"", capture_output=True, timeout=30)
    assert proc.returncode == 2 and proc.stdout == b""
    err = proc.stderr.decode()
    assert "OSS_ACCESS_KEY_ID" in err and "OSS_BUCKET" in err and SECRET not in err


def test_the_secret_stays_out_of_settings_and_storage_reprs(oss_env: dict[str, str]) -> None:
    settings = Settings.from_env(oss_env)
    store = oss_store(settings)
    assert settings.storage.oss.access_key_secret == SECRET
    assert SECRET not in repr(settings) and SECRET not in repr(store)


def test_defaults_sign_v1_with_a_day_long_link_under_the_default_base_path(oss_env: dict[str, str]) -> None:
    env = {k: v for k, v in oss_env.items() if k not in ("OSS_BASE_PATH", "EASEL_OSS_RETRY_INTERVAL")}
    settings = Settings.from_env(env)
    assert (settings.storage.oss.base_path, settings.storage.oss.url_expiry, settings.storage.oss.retry_interval) == ("easel-mcp", 86400, 30.0)
    store = oss_store(settings)
    assert isinstance(store, FallbackStorage)
    primary: Any = store.primary
    assert primary.signature == "v1" and primary.key_of("202401-" + "a" * 32 + ".png").startswith("easel-mcp/202401/")
    root: Any = oss_store(Settings.from_env({**env, "OSS_BASE_PATH": ""})).primary  # type: ignore[attr-defined]
    assert root.key_of("202401-" + "a" * 32 + ".png") == "202401/" + "a" * 32 + ".png"
