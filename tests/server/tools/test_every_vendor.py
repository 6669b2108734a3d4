"""ModelScope, DashScope and Ideogram end to end: in-memory MCP client -> server -> loopback fakes."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import Client

from server.app import build_server
from server.config import Settings
from tests.fakes.dashscope_fake import DashScopeFake
from tests.fakes.ideogram_fake import IdeogramFake
from tests.fakes.modelscope_fake import ModelScopeFake
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.results import text_of

pytestmark = pytest.mark.anyio

KEYS = {"MODELSCOPE_API_KEY": "ms-test-key", "DASHSCOPE_API_KEY": "sk-test-key", "IDEOGRAM_API_KEY": "ig-test-key"}
NEW_MODELS = [
    ("Z-Image Turbo (ModelScope)", "modelscope", "Tongyi-MAI/Z-Image-Turbo"),
    ("Qwen Image (ModelScope)", "modelscope", "Qwen/Qwen-Image"),
    ("Wanx 2.1 T2I Plus (DashScope)", "dashscope", "wanx2.1-t2i-plus"),
    ("Wanx 2.1 T2I Turbo (DashScope)", "dashscope", "wanx2.1-t2i-turbo"),
    ("Ideogram v3", "ideogram", "ideogram-v3"),
    ("Ideogram v3 Quality", "ideogram", "ideogram-v3"),
    ("Wan 2.2 T2I Plus (DashScope)", "dashscope", "wan2.2-t2i-plus"),
    ("Wan 2.2 T2I Flash (DashScope)", "dashscope", "wan2.2-t2i-flash"),
    ("Wan 2.5 T2I Preview (DashScope)", "dashscope", "wan2.5-t2i-preview"),
]
CARD = "Pollinator: an app that maps the bee-friendly gardens of a city and tells you what to plant next."


@pytest.fixture(scope="module")
def vendors() -> Iterator[dict[str, Any]]:
    with ModelScopeFake(api_key=KEYS["MODELSCOPE_API_KEY"]).running() as ms, \
            DashScopeFake(api_key=KEYS["DASHSCOPE_API_KEY"]).running() as ds, \
            IdeogramFake(api_key=KEYS["IDEOGRAM_API_KEY"]).running() as ig:
        yield {"modelscope": ms, "dashscope": ds, "ideogram": ig}


@pytest.fixture
def fakes(vendors: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for fake in vendors.values():
        fake.reset()
    yield vendors
    for fake in vendors.values():
        fake.reset()


@pytest.fixture
def all_keys(env: dict[str, str], fakes: dict[str, Any]) -> dict[str, str]:
    """Replicate (from conftest) plus the three new vendors, each pointed at its fake."""
    return {**env, **KEYS, "MODELSCOPE_BASE_URL": fakes["modelscope"].url,
            "DASHSCOPE_BASE_URL": f"{fakes['dashscope'].url}/api/v1", "IDEOGRAM_BASE_URL": fakes["ideogram"].url}


def submissions(fake: Any) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST"]


@pytest.mark.parametrize(("model", "provider", "provider_model"), NEW_MODELS, ids=[m[0] for m in NEW_MODELS])
async def test_each_new_model_makes_a_stored_image_through_generate_image(
        all_keys: dict[str, str], fakes: dict[str, Any], replicate_fake: FakeReplicate, model: str, provider: str,
        provider_model: str) -> None:
    async with Client(build_server(Settings.from_env(all_keys))) as client:
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse at dusk", "model": model,
                                                           "size": "wide", "style": "digital_illustration/pixel_art"})
        assert not result.is_error, text_of(result)
        [image] = result.structured_content["images"]
        assert (image["model"], image["provider"], image["provider_model"]) == (model, provider, provider_model)
        read = await client.read_resource(image["uri"])
        assert hashlib.sha256(base64.b64decode(read.contents[0].blob)).hexdigest() == image["sha256"]
        meta = json.loads((await client.read_resource(image["uri"] + "/metadata")).contents[0].text)
    assert meta["provider"] == provider and image["prompt"] == "pixel art of a lighthouse at dusk"
    assert len(submissions(fakes[provider])) == 1 and replicate_fake.requests == []
    if provider != "ideogram":
        assert image["prediction_id"] in fakes[provider].tasks


async def test_a_dashscope_batch_is_one_task_with_n(all_keys: dict[str, str], fakes: dict[str, Any]) -> None:
    async with Client(build_server(Settings.from_env(all_keys))) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "model": "Wanx 2.1 T2I Turbo (DashScope)",
                                                           "count": 2, "negative_prompt": "blurry"})
    assert not result.is_error, text_of(result)
    images = result.structured_content["images"]
    [submit] = submissions(fakes["dashscope"])
    assert submit.json["parameters"]["n"] == 2 and "seed" not in submit.json["parameters"]
    assert submit.json["input"]["negative_prompt"] == "blurry"
    assert len(images) == 2 and len({i["sha256"] for i in images}) == 2


@pytest.mark.parametrize("model", ["Wanx 2.1 T2I Turbo (DashScope)", "Ideogram v3"])
async def test_a_seeded_batch_keeps_the_promise_that_image_i_uses_seed_plus_i(
        all_keys: dict[str, str], fakes: dict[str, Any], model: str) -> None:
    """A vendor batch shares one seed; the tool promises seed + i per image, so each seeded image is its
    own call and each records the seed it was made with (any one can be made again alone)."""
    async with Client(build_server(Settings.from_env(all_keys))) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "model": model, "count": 3, "seed": 5})
    assert not result.is_error, text_of(result)
    provider = result.structured_content["images"][0]["provider"]
    posts = submissions(fakes[provider])
    if provider == "dashscope":
        sent = sorted((p.json["parameters"]["seed"], p.json["parameters"]["n"]) for p in posts)
    else:
        sent = sorted((int(p.form["seed"]), int(p.form["num_images"])) for p in posts)
    assert sent == [(5, 1), (6, 1), (7, 1)]
    assert sorted(i["seed"] for i in result.structured_content["images"]) == [5, 6, 7]


async def test_an_ideogram_thumbnail_set_gets_the_seed_palette_natively(all_keys: dict[str, str],
                                                                        fakes: dict[str, Any]) -> None:
    async with Client(build_server(Settings.from_env(all_keys))) as client:
        result = await client.call_tool("illustrate_content", {"content": CARD, "count": 2, "purpose": "thumbnail",
                                                               "model": "Ideogram v3", "size": "wide"})
    assert not result.is_error, text_of(result)
    images = result.structured_content["images"]
    assert len(images) == 2 and {i["provider"] for i in images} == {"ideogram"}
    posts = submissions(fakes["ideogram"])
    assert len(posts) == 2
    assert posts[0].form["prompt"] != posts[1].form["prompt"]   # two cards, not one paid for twice
    for post in posts:
        palette = json.loads(post.form["color_palette"])
        assert [m["color_hex"] for m in palette["members"]] == ["#000030", "#1C0C47", "#9900FF", "#4285F4", "#FFFFFF"]
        assert post.form["aspect_ratio"] == "16x9" and post.form["magic_prompt"] == "OFF"


async def test_ideogram_v3_runs_on_replicate_when_only_the_replicate_token_is_set(
        env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    async with Client(build_server(Settings.from_env(env))) as client:
        result = await client.call_tool("generate_image", {"prompt": "a neon sign", "model": "Ideogram v3",
                                                           "size": "tall", "seed": 3})
    assert not result.is_error, text_of(result)
    [image] = result.structured_content["images"]
    assert (image["provider"], image["provider_model"]) == ("replicate", "ideogram-ai/ideogram-v3-turbo")
    [create] = replicate_fake.creates
    assert create.json["input"] == {"prompt": "a neon sign", "aspect_ratio": "9:16", "magic_prompt_option": "Off",
                                    "style_type": "Auto", "seed": 3}


async def test_ideogram_v3_goes_to_ideogram_directly_when_both_keys_are_set(
        all_keys: dict[str, str], fakes: dict[str, Any], replicate_fake: FakeReplicate) -> None:
    async with Client(build_server(Settings.from_env(all_keys))) as client:
        result = await client.call_tool("generate_image", {"prompt": "a neon sign", "model": "Ideogram v3"})
    assert not result.is_error, text_of(result)
    assert result.structured_content["images"][0]["provider"] == "ideogram"
    assert replicate_fake.creates == [] and len(submissions(fakes["ideogram"])) == 1


@pytest.mark.parametrize(("model", "variable"), [
    ("Z-Image Turbo (ModelScope)", "MODELSCOPE_API_KEY"), ("Wanx 2.1 T2I Plus (DashScope)", "DASHSCOPE_API_KEY")])
async def test_a_model_whose_provider_has_no_key_is_refused_naming_the_variable(
        env: dict[str, str], replicate_fake: FakeReplicate, model: str, variable: str) -> None:
    async with Client(build_server(Settings.from_env(env))) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "model": model})
    assert result.is_error and variable in text_of(result)
    assert replicate_fake.requests == []


async def test_ideogram_v3_with_neither_key_names_both_variables(tmp_path: Any) -> None:
    async with Client(build_server(Settings.from_env({"EASEL_STORAGE_DIR": str(tmp_path)}))) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "model": "Ideogram v3"})
    assert result.is_error and "IDEOGRAM_API_KEY" in text_of(result) and "REPLICATE_API_TOKEN" in text_of(result)


async def test_the_tool_description_lists_the_new_models_and_marks_the_unconfigured_ones(
        env: dict[str, str], all_keys: dict[str, str]) -> None:
    async def description(settings_env: dict[str, str]) -> str:
        async with Client(build_server(Settings.from_env(settings_env))) as client:
            tools = (await client.list_tools()).tools
        return next(t for t in tools if t.name == "generate_image").description or ""

    only_replicate = await description(env)
    for model, provider, _ in NEW_MODELS:
        line = next(line for line in only_replicate.splitlines() if line.startswith(f"- {model}:"))
        assert ("[not configured on this server: set " in line) == (provider != "ideogram"), line
    everything = await description({**all_keys, "OPENAI_API_KEY": "sk-test"})
    assert "[not configured" not in everything
    assert all(f"- {model}:" in everything for model, _, _ in NEW_MODELS)


@pytest.mark.parametrize(("model", "provider", "provider_model"), NEW_MODELS, ids=[m[0] for m in NEW_MODELS])
async def test_a_dry_run_sends_nothing_hides_the_key_and_shows_what_the_real_call_sends(
        all_keys: dict[str, str], fakes: dict[str, Any], replicate_fake: FakeReplicate, model: str, provider: str,
        provider_model: str) -> None:
    args = {"prompt": "a lighthouse at dusk", "model": model, "size": "wide", "negative_prompt": "fog"}
    async with Client(build_server(Settings.from_env(all_keys))) as client:
        dry = await client.call_tool("generate_image", {**args, "dry_run": True})
        assert not dry.is_error, text_of(dry)
        assert all(f.requests == [] for f in fakes.values()) and replicate_fake.requests == []
        shown = json.dumps(dry.structured_content) + text_of(dry)
        assert not any(key in shown for key in KEYS.values())
        [call] = dry.structured_content["calls"]
        assert call["model"] == provider_model and call["url"].startswith(fakes[provider].url)
        assert "[redacted]" in json.dumps(call["headers"])
        real = await client.call_tool("generate_image", args)
        assert not real.is_error, text_of(real)
    [submit] = submissions(fakes[provider])
    if provider == "ideogram":   # multipart form fields: the fake parses them, the dry run lists them
        assert call["form"]["prompt"] == "a lighthouse at dusk" and call["form"]["negative_prompt"] == "fog"
    else:
        assert submit.json == call["json"]
        assert submit.path == call["url"].removeprefix(fakes[provider].url)
