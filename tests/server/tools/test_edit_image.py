"""edit_image: every kind of reference image, checked before anything is spent."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from mcp import Client
from PIL import Image

from server.app import build_server
from server.config import Settings
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.images import data_uri, png
from tests.support.results import text_of

pytestmark = pytest.mark.anyio



def noisy_png(side: int = 400) -> bytes:
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


async def test_stored_and_attached_images_are_sent_inline_and_the_result_is_stored(
        server, replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        first = await client.call_tool("generate_image", {"prompt": "a cat"})
        cat = first.structured_content["images"][0]["uri"]
        result = await client.call_tool("edit_image", {
            "prompt": "put the cat on the hat", "images": [cat, data_uri(png(9))], "output_format": "png"})
        assert not result.is_error, text_of(result)
        [image] = result.structured_content["images"]
        meta = json.loads((await client.read_resource(image["uri"] + "/metadata")).contents[0].text)
    sent = replicate_fake.creates[-1]
    assert sent.path == "/v1/models/google/nano-banana/predictions"
    assert [u[:22] for u in sent.json["input"]["image_input"]] == ["data:image/jpeg;base64", "data:image/png;base64,"]
    assert sent.json["input"]["output_format"] == "png" and image["mime_type"] == "image/png"
    assert meta["inputs"][0] == cat and meta["inputs"][1].startswith("data:image/png;base64")


async def test_large_inputs_go_through_the_files_api(server, replicate_fake: FakeReplicate) -> None:
    big = noisy_png()
    assert len(big) > 256 * 1024
    async with Client(server) as client:
        result = await client.call_tool("edit_image", {"prompt": "sharpen", "images": [data_uri(big)],
                                                       "model": "google/nano-banana-pro"})
    assert not result.is_error, text_of(result)
    [upload] = replicate_fake.files.values()
    assert upload.content == big
    [ref] = replicate_fake.creates[-1].json["input"]["image_input"]
    assert ref.endswith(f"/v1/files/{upload.id}")


async def test_no_images_means_plain_generation_at_one_to_one(server, replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        result = await client.call_tool("edit_image", {"prompt": "a banana"})
    assert not result.is_error
    assert replicate_fake.creates[0].json["input"]["aspect_ratio"] == "1:1"


async def test_local_paths_are_allowed_only_inside_the_configured_directories(
        env: dict[str, str], replicate_fake: FakeReplicate, tmp_path: Path) -> None:
    allowed = tmp_path / "inputs"
    allowed.mkdir()
    (allowed / "a.png").write_bytes(png(4))
    (tmp_path / "secret.png").write_bytes(png(5))
    server = build_server(Settings.from_env({**env, "EASEL_INPUT_DIRS": str(allowed)}))
    async with Client(server) as client:
        ok = await client.call_tool("edit_image", {"prompt": "x", "images": [str(allowed / "a.png")]})
        assert not ok.is_error, text_of(ok)
        for path in (tmp_path / "secret.png", allowed / ".." / "secret.png"):
            bad = await client.call_tool("edit_image", {"prompt": "x", "images": [str(path)]})
            assert bad.is_error and "EASEL_INPUT_DIRS" in text_of(bad)
    assert len(replicate_fake.creates) == 1


async def test_paths_are_refused_with_advice_when_no_directory_is_allowed(
        server, replicate_fake: FakeReplicate, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(1))
    async with Client(server) as client:
        result = await client.call_tool("edit_image", {"prompt": "x", "images": [str(tmp_path / "a.png")]})
    assert result.is_error and "EASEL_INPUT_DIRS" in text_of(result)
    assert replicate_fake.requests == []


@pytest.mark.parametrize(("image", "expected"), [
    (data_uri(b"this is not an image", "image/png"), "not a PNG, JPEG, WebP or GIF"),
    ("data:image/png;base64,@@@not-base64@@@", "malformed"),
    ("data:image/png,rawbytes", "base64"),
    ("file:///etc/passwd", "only https URLs"),
    ("ftp://example.com/a.png", "only https URLs"),
    ("gopher://example.com/a.png", "only https URLs"),
    ("http://127.0.0.1:9/a.png", "private, loopback"),
    ("http://169.254.169.254/latest/meta-data/", "private, loopback"),
    ("http://[::1]/a.png", "private, loopback"),
    ("http://10.0.0.8/a.png", "private, loopback"),
    ("http://localhost/a.png", "private, loopback"),
    ("easel://images/202611-" + "0" * 32 + ".png", "no such stored image"),
    ("easel://images/../../etc/passwd", "no such stored image"),
])
async def test_bad_references_are_refused_before_anything_is_spent(
        server, replicate_fake: FakeReplicate, image: str, expected: str) -> None:
    async with Client(server) as client:
        result = await client.call_tool("edit_image", {"prompt": "x", "images": [image]})
    assert result.is_error and expected in text_of(result) and "images[0]" in text_of(result)
    assert replicate_fake.requests == []


async def test_size_and_count_limits_are_stated_in_the_error(env: dict[str, str],
                                                             replicate_fake: FakeReplicate) -> None:
    server = build_server(Settings.from_env({**env, "EASEL_INPUT_MAX_BYTES": "2048"}))
    async with Client(server) as client:
        big = await client.call_tool("edit_image", {"prompt": "x", "images": [data_uri(noisy_png(64))]})
        many = await client.call_tool("edit_image", {"prompt": "x", "images": [data_uri(png(i)) for i in range(11)]})
        bomb = Image.new("1", (9000, 9000))
        out = io.BytesIO()
        bomb.save(out, "PNG")
    assert big.is_error and "2048 bytes" in text_of(big)
    assert many.is_error and "at most 10" in text_of(many)
    server = build_server(Settings.from_env(env))
    async with Client(server) as client:
        bombed = await client.call_tool("edit_image", {"prompt": "x", "images": [data_uri(out.getvalue())]})
    assert bombed.is_error and "pixels" in text_of(bombed)
    assert replicate_fake.requests == []


async def test_an_allowed_host_is_fetched_and_its_image_sent(env: dict[str, str],
                                                             replicate_fake: FakeReplicate) -> None:
    server = build_server(Settings.from_env({**env, "EASEL_ALLOWED_FETCH_HOSTS": "127.0.0.1"}))
    async with Client(server) as client:
        first = await client.call_tool("generate_image", {"prompt": "a cat"})
        url = replicate_fake.url + replicate_fake.downloads[0].path
        result = await client.call_tool("edit_image", {"prompt": "x", "images": [url]})
        assert not result.is_error, text_of(result)
    assert first.structured_content["images"][0]["sha256"]
    assert replicate_fake.creates[-1].json["input"]["image_input"][0].startswith("data:image/")
