"""generate_image end to end: in-memory MCP client -> server -> real replicate SDK -> loopback fake."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
from itertools import pairwise
from pathlib import Path

import anyio
import pytest
from mcp import Client, MCPError
from mcp.types import ImageContent, ResourceLink
from PIL import Image

from server.app import build_server
from server.config import Settings
from tests.fakes.replicate_fake import INSUFFICIENT_CREDIT, FakeReplicate
from tests.support.replicate import TOKEN
from tests.support.results import text_of

pytestmark = pytest.mark.anyio
MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])



@MODES
async def test_one_image_is_generated_stored_and_readable_back(server, replicate_fake: FakeReplicate,
                                                               mode: str) -> None:
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse at dusk"})
        assert not result.is_error, text_of(result)
        [image] = result.structured_content["images"]
        assert image["uri"].startswith("easel://images/") and image["url"].startswith("file://")
        assert image["model"] == "Flux 1.1 Pro" and image["provider_model"] == "black-forest-labs/flux-1.1-pro"
        assert image["prompt"] == "a lighthouse at dusk" and image["mime_type"] == "image/jpeg"
        links = [c for c in result.content if isinstance(c, ResourceLink)]
        assert [link.uri for link in links] == [image["uri"]]

        read = await client.read_resource(image["uri"])
        blob = base64.b64decode(read.contents[0].blob)
        assert read.contents[0].mime_type == "image/jpeg"
        assert hashlib.sha256(blob).hexdigest() == image["sha256"] and len(blob) == image["bytes"]
        served = replicate_fake.downloads[0]
        assert served.path.endswith(".jpg")
        meta = json.loads((await client.read_resource(image["uri"] + "/metadata")).contents[0].text)
        assert meta["prediction_id"] == image["prediction_id"]
        assert meta["parameters"]["output_format"] == "jpg"
    # one create (sync wait) plus one download: nothing else
    assert [(r.method, r.path.split("/")[1]) for r in replicate_fake.requests] == [("POST", "v1"), ("GET", "files")]
    assert replicate_fake.creates[0].prefer == "wait=1"


async def test_the_preview_is_small_and_the_structured_content_matches_the_output_schema(server) -> None:
    async with Client(server) as client:
        tool = next(t for t in (await client.list_tools()).tools if t.name == "generate_image")
        assert set(tool.output_schema["properties"]) >= {"images", "errors"}
        assert "$ref" not in json.dumps(tool.input_schema)
        assert tool.annotations.open_world_hint is True and tool.annotations.read_only_hint is False
        result = await client.call_tool("generate_image", {"prompt": "a fox", "size": "wide"})
    [preview] = [c for c in result.content if isinstance(c, ImageContent)]
    data = base64.b64decode(preview.data)
    assert len(data) <= 100_000
    with Image.open(io.BytesIO(data)) as img:
        assert max(img.size) <= 512


async def test_previews_can_be_turned_off(env: dict[str, str]) -> None:
    server = build_server(Settings.from_env({**env, "EASEL_PREVIEW": "off"}))
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert not [c for c in result.content if isinstance(c, ImageContent)]


async def test_an_image_whose_body_cannot_be_decoded_is_stored_and_linked_without_a_preview(
        server, replicate_fake: FakeReplicate, caplog: pytest.LogCaptureFixture) -> None:
    whole = io.BytesIO()
    Image.frombytes("RGB", (640, 480), bytes(range(256)) * 3600).save(whole, "JPEG")
    cut = whole.getvalue()[:len(whole.getvalue()) // 3]   # the header is whole (type, size); the scan stops
    replicate_fake.image_factory = lambda prediction: (cut, "image/jpeg")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
        assert not result.is_error, text_of(result)
        [image] = result.structured_content["images"]
        assert (image["width"], image["height"], image["bytes"]) == (640, 480, len(cut))
        assert [c.uri for c in result.content if isinstance(c, ResourceLink)] == [image["uri"]]
        assert not [c for c in result.content if isinstance(c, ImageContent)]
        read = await client.read_resource(image["uri"])
        assert base64.b64decode(read.contents[0].blob) == cut
    assert "no preview: the image could not be decoded" in caplog.text


async def test_several_images_run_as_concurrent_predictions(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.hold = True
    async with Client(server) as client, anyio.create_task_group() as tg:
        results = []

        async def call() -> None:
            results.append(await client.call_tool("generate_image", {"prompt": "a fox", "count": 3, "seed": 5}))

        tg.start_soon(call)
        await replicate_fake.wait_until(lambda: replicate_fake.in_flight_now == 3, timeout=10)
        replicate_fake.release()
    [result] = results
    images = result.structured_content["images"]
    assert len(images) == 3 and len({i["sha256"] for i in images}) == 3
    assert sorted(c.json["input"]["seed"] for c in replicate_fake.creates) == [5, 6, 7]


async def test_style_becomes_a_prefix_except_for_recraft_which_gets_it_natively(
        server, replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        await client.call_tool("generate_image", {"prompt": "a fox", "style": "digital_illustration/pixel_art",
                                                  "model": "Stable Diffusion 3.5 Medium"})
        await client.call_tool("generate_image", {"prompt": "a fox", "style": "digital_illustration/pixel_art",
                                                  "model": "Recraft v3", "size": "tall"})
    sd, recraft = (c.json["input"] for c in replicate_fake.creates)
    assert sd["prompt"] == "pixel art of a fox"
    assert recraft == {"prompt": "a fox", "style": "digital_illustration/pixel_art", "size": "1024x1820"}


async def test_slow_models_are_polled_until_done_with_progress(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.hold = True
    messages: list[str] = []
    values: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")
        values.append(progress)

    async with Client(server) as client, anyio.create_task_group() as tg:
        results = []

        async def call() -> None:
            results.append(await client.call_tool("generate_image", {"prompt": "a fox"},
                                                  progress_callback=on_progress))

        tg.start_soon(call)
        await replicate_fake.wait_until(lambda: any(r.method == "GET" and "/predictions/" in r.path
                                                    for r in replicate_fake.requests), timeout=10)
        replicate_fake.release()
    assert not results[0].is_error
    assert any("processing" in m for m in messages)
    assert messages[-1].startswith("stored ")
    assert len(values) >= 3 and all(a < b for a, b in pairwise(values)), values   # spec: must increase
    assert values[-1] == 1


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_cancelling_the_call_cancels_the_prediction(server, replicate_fake: FakeReplicate,
                                                          mode: str) -> None:
    replicate_fake.hold = True
    async with Client(server, mode=mode) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "generate_image", {"prompt": "a fox"})
            await replicate_fake.wait_until(lambda: len(replicate_fake.predictions) == 1, timeout=10)
            tg.cancel_scope.cancel()
        await replicate_fake.wait_until(lambda: len(replicate_fake.cancels) == 1, timeout=10)
        # the server keeps serving
        replicate_fake.hold = False
        result = await client.call_tool("generate_image", {"prompt": "another fox"})
        assert not result.is_error
    [pid] = replicate_fake.cancels
    assert replicate_fake.predictions[pid]["status"] == "canceled"


async def test_a_generation_that_outlives_the_timeout_is_canceled_and_says_so(
        env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    replicate_fake.hold = True
    server = build_server(Settings.from_env({**env, "EASEL_TIMEOUT": "1"}))
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert result.is_error
    [pid] = replicate_fake.cancels
    assert f"Replicate prediction {pid} did not finish within 1 s" in text_of(result)


@pytest.mark.parametrize(("status", "body", "expected"), [
    (401, {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token", "status": 401},
     "REPLICATE_API_TOKEN"),
    (402, INSUFFICIENT_CREDIT, "insufficient credit"),
    (404, {"detail": "The requested resource could not be found.", "status": 404}, "does not know this model"),
    (422, {"detail": "- input.output_format: output_format must be one of the following: \"jpg\", \"png\"\n",
           "status": 422, "title": "Input validation failed",
           "invalid_fields": [{"type": "enum", "field": "input.output_format",
                               "description": "output_format must be one of the following: \"jpg\", \"png\""}]},
     "output_format: output_format must be one of"),
    (500, None, "HTTP 500"),
])
async def test_replicate_errors_become_tool_errors_a_person_can_act_on(
        server, replicate_fake: FakeReplicate, status: int, body: dict | None, expected: str) -> None:
    replicate_fake.inject(status, body=body, times=None, method="POST")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert result.is_error and expected in text_of(result)
    assert TOKEN not in text_of(result)


async def test_rate_limits_are_retried_after_the_wait_replicate_asks_for(
        server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.inject(429, body={"detail": "Request was throttled.", "status": 429, "retry_after": 0.01},
                          times=1, method="POST")
    replicate_fake.inject(429, body={"detail": "Request was throttled."}, headers={"Retry-After": "0"},
                          times=1, method="POST")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert not result.is_error
    assert len([r for r in replicate_fake.requests if r.method == "POST"]) == 3


async def test_rate_limits_that_persist_end_in_a_clear_error(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.inject(429, body={"detail": "Request was throttled.", "status": 429, "retry_after": 0},
                          times=None, method="POST")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert result.is_error and "rate limiting" in text_of(result)
    assert len(replicate_fake.creates) == 3  # one try plus EASEL_MAX_RETRIES=2


async def test_a_failed_prediction_reports_the_models_own_error(server, replicate_fake: FakeReplicate,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    replicate_fake.fail_predictions(1, error="NSFW content detected")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert result.is_error and "NSFW content detected" in text_of(result)
    # the call log names what went wrong, not just that a ToolError carried it
    [line] = [r.getMessage() for r in caplog.records if r.name == "easel.calls"]
    assert "error:GenerationFailed" in line


async def test_some_images_failing_still_returns_the_others(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.fail_predictions(1, error="CUDA out of memory")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2})
    assert not result.is_error
    assert len(result.structured_content["images"]) == 1
    [error] = result.structured_content["errors"]
    assert error["kind"] == "GenerationFailed" and "CUDA out of memory" in error["message"]


async def test_output_that_is_not_an_image_is_refused_and_nothing_is_stored(
        server, replicate_fake: FakeReplicate, settings: Settings) -> None:
    replicate_fake.image_factory = lambda prediction: (b"<html>not an image</html>", "image/png")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert result.is_error and "not a usable image" in text_of(result)
    assert not [p for p in Path(settings.storage.dir).rglob("*") if p.is_file() and not p.name.startswith(".")]


@pytest.mark.parametrize(("args", "field"), [
    ({"prompt": "a fox", "model": "Recraft v3", "seed": 3}, "seed"),
    ({"prompt": "a fox", "model": "Flux 1.1 Pro", "negative_prompt": "blur"}, "negative_prompt"),
    ({"prompt": "   "}, "prompt"),
    ({"prompt": "a\x00fox"}, "prompt"),
    ({"prompt": "a fox", "model": "DALL-E 9"}, "model"),
    ({"prompt": "a fox", "size": "huge"}, "size"),
    ({"prompt": "a fox", "count": 9}, "count"),
    ({"prompt": "x" * 4001}, "prompt"),
])
async def test_bad_input_is_refused_before_anything_is_spent(server, replicate_fake: FakeReplicate,
                                                             args: dict, field: str) -> None:
    async with Client(server) as client:
        result = await client.call_tool("generate_image", args)
    assert result.is_error and field in text_of(result)
    assert replicate_fake.requests == []


async def test_a_missing_token_names_the_variable_and_spends_nothing(env: dict[str, str],
                                                                     replicate_fake: FakeReplicate) -> None:
    env = {k: v for k, v in env.items() if k != "REPLICATE_API_TOKEN"}
    async with Client(build_server(Settings.from_env(env))) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert result.is_error and "REPLICATE_API_TOKEN" in text_of(result)
    assert replicate_fake.requests == []


async def test_the_token_appears_nowhere(server, replicate_fake: FakeReplicate, settings: Settings,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with Client(server) as client:
        ok = await client.call_tool("generate_image", {"prompt": "a fox"})
        replicate_fake.inject(401, body={"title": "Unauthenticated", "status": 401}, method="POST")
        bad = await client.call_tool("generate_image", {"prompt": "a fox"})
    stored = b"".join(p.read_bytes() for p in Path(settings.storage.dir).rglob("*.json"))
    for text in (json.dumps(ok.model_dump(mode="json")), json.dumps(bad.model_dump(mode="json")),
                 stored.decode(), caplog.text):
        assert TOKEN not in text


async def test_stored_images_are_listed_newest_first_and_bad_uris_are_not_found(server) -> None:
    async with Client(server) as client:
        first = await client.call_tool("generate_image", {"prompt": "one"})
        second = await client.call_tool("generate_image", {"prompt": "two"})
        listed = [r.uri for r in (await client.list_resources()).resources]
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        for bad in ("easel://images/../../etc/passwd", "easel://images/%2e%2e%2fsecret",
                    "easel://images/202611-" + "0" * 32 + ".png", "easel://images/" + "a" * 5000):
            with pytest.raises(MCPError) as err:
                await client.read_resource(bad)
            assert err.value.error.code == -32602
    uris = [r.structured_content["images"][0]["uri"] for r in (first, second)]
    assert set(uris) <= set(listed)
    assert "easel://images/{image_id}" in templates and "easel://images/{image_id}/metadata" in templates


async def test_clients_hear_that_the_resource_list_changed(server) -> None:
    heard: list[object] = []

    async def on_message(message: object) -> None:
        heard.append(message)

    async with Client(server, mode="legacy", message_handler=on_message) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
        assert not result.is_error
    assert any("ResourceListChanged" in type(getattr(m, "root", m)).__name__ or
               "resources/list_changed" in str(m) for m in heard)
