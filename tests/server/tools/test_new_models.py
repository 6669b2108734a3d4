"""The newer catalog models through the real server and the Replicate fake (which validates every input
against the model's published schema): edits with each model's most references, array outputs, and
GPT Image's pass-through OpenAI key."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from mcp import Client

from providers.replicate import MODELS
from server.app import build_server
from server.config import Settings
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.images import data_uri, png
from tests.support.results import text_of

pytestmark = pytest.mark.anyio

OPENAI_KEY = "sk-openai-secret-for-tests-0123456789"
EDITORS = [s for s in MODELS if s.max_input_images and not s.name.startswith("google/")]
# each model's own field for references, as its published schema names it
FIELD = {"black-forest-labs/flux-kontext-pro": "input_image", "bytedance/seedream-4": "image_input",
         "bytedance/seedream-4.5": "image_input", "qwen/qwen-image-edit-plus": "image"}


async def metadata(client: Client, uri: str) -> dict[str, Any]:
    return json.loads((await client.read_resource(uri + "/metadata")).contents[0].text)


@pytest.fixture
def with_openai(env: dict[str, str]) -> dict[str, str]:
    return {**env, "OPENAI_API_KEY": OPENAI_KEY}


@pytest.mark.parametrize("spec", EDITORS, ids=lambda s: s.name)
async def test_each_edit_model_takes_its_most_references_in_its_own_field(
        spec, with_openai: dict[str, str], replicate_fake: FakeReplicate) -> None:  # type: ignore[no-untyped-def]
    references = [data_uri(png(i)) for i in range(spec.max_input_images)]
    async with Client(build_server(Settings.from_env(with_openai))) as client:
        result = await client.call_tool("edit_image", {"prompt": "combine them", "images": references,
                                                       "model": spec.name, "aspect_ratio": "16:9"})
        assert not result.is_error, text_of(result)
        [image] = result.structured_content["images"]
        meta = await metadata(client, image["uri"])
    [create] = replicate_fake.creates          # the fake accepted it: the input matches the published schema
    assert create.path == f"/v1/models/{spec.provider_model}/predictions"
    sent = create.json["input"][FIELD.get(spec.provider_model, "input_images")]
    sent = [sent] if isinstance(sent, str) else sent
    assert [base64.b64decode(s.split(",", 1)[1]) for s in sent] == [png(i) for i in range(spec.max_input_images)]
    w, h = create.json["input"]["aspect_ratio"].split(":")   # 16:9, or the model's nearest landscape ratio
    assert int(w) > int(h)
    assert meta["model"] == spec.name and meta["provider_model"] == spec.provider_model
    assert len(meta["inputs"]) == spec.max_input_images
    shown = json.dumps(meta["parameters"])
    assert "base64" not in shown and OPENAI_KEY not in shown    # neither reference bytes nor the key are stored


@pytest.mark.parametrize("spec", EDITORS, ids=lambda s: s.name)
async def test_one_reference_too_many_is_refused_before_anything_is_spent(
        spec, with_openai: dict[str, str], replicate_fake: FakeReplicate) -> None:  # type: ignore[no-untyped-def]
    references = [data_uri(png(i)) for i in range(spec.max_input_images + 1)]
    async with Client(build_server(Settings.from_env(with_openai))) as client:
        result = await client.call_tool("edit_image", {"prompt": "x", "images": references, "model": spec.name})
    assert result.is_error and "images" in text_of(result)
    if spec.max_input_images < 14:           # at 14 the tool's own schema refuses the 15th
        assert f"images: {spec.name} accepts at most {spec.max_input_images} images" in text_of(result)
    assert replicate_fake.requests == []


async def test_qwen_image_edit_needs_an_image_and_says_so_before_spending(server,
                                                                           replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        result = await client.call_tool("edit_image", {"prompt": "make it red", "model": "Qwen Image Edit"})
    assert result.is_error and "images:" in text_of(result) and "at least 1" in text_of(result)
    assert replicate_fake.requests == []


async def test_gpt_image_without_an_openai_key_is_refused_naming_the_variable(
        server, replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        gen = await client.call_tool("generate_image", {"prompt": "a fox", "model": "GPT Image 1.5"})
        edit = await client.call_tool("edit_image", {"prompt": "a fox", "model": "GPT Image 1.5",
                                                     "images": [data_uri(png(1))]})
    for result in (gen, edit):
        assert result.is_error and "OPENAI_API_KEY" in text_of(result)
    assert replicate_fake.requests == []       # nothing created, nothing uploaded
    line = next(x for x in tools["generate_image"].description.splitlines() if x.startswith("- GPT Image 1.5:"))
    assert line.endswith("[not configured on this server: set OPENAI_API_KEY]")
    # the model stays in the schema whatever the environment
    assert "GPT Image 1.5" in tools["generate_image"].input_schema["properties"]["model"]["enum"]


async def test_gpt_image_passes_the_key_through_and_returns_one_stored_image_per_array_item(
        with_openai: dict[str, str], replicate_fake: FakeReplicate) -> None:
    async with Client(build_server(Settings.from_env(with_openai))) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "model": "GPT Image 1.5",
                                                           "count": 3, "size": "wide"})
        assert not result.is_error, text_of(result)
        images = result.structured_content["images"]
        metas = [await metadata(client, i["uri"]) for i in images]
    [create] = replicate_fake.creates          # three images, one prediction: number_of_images
    sent = create.json["input"]
    assert sent["openai_api_key"] == OPENAI_KEY and sent["number_of_images"] == 3 and sent["aspect_ratio"] == "3:2"
    assert len({i["sha256"] for i in images}) == 3
    everything = json.dumps([result.structured_content, metas]) + text_of(result)
    assert OPENAI_KEY not in everything and all("openai_api_key" not in m["parameters"] for m in metas)


async def test_seedream_array_output_is_stored_and_its_prompt_is_not_rewritten(
        server, replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "一只在雪中的狐狸", "model": "Seedream 4.5",
                                                           "size": "tall", "style": "digital_illustration"})
        assert not result.is_error, text_of(result)
    [image] = result.structured_content["images"]
    prediction = next(iter(replicate_fake.predictions.values()))
    assert isinstance(prediction["output"], list) and len(prediction["output"]) == 1
    assert prediction["input"]["prompt"] == "digital art of 一只在雪中的狐狸"
    assert prediction["input"]["aspect_ratio"] == "9:16" and image["mime_type"].startswith("image/")


@pytest.mark.parametrize("model", ["FLUX.2 Pro", "Imagen 4 Fast", "Ideogram v3 Quality", "Seedream 4"])
async def test_new_generators_run_end_to_end(model: str, server, replicate_fake: FakeReplicate) -> None:  # type: ignore[no-untyped-def]
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse", "model": model,
                                                           "size": "landscape"})
    assert not result.is_error, text_of(result)
    assert len(result.structured_content["images"]) == 1
