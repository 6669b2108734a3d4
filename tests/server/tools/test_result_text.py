"""The text content of every tool result stands on its own.

LangChain and the OpenAI Agents SDK (by default) give the model only the text blocks, so
each assertion here reads nothing but ``text_of(result)``: the URIs, openable urls, prompts
as sent, per-item errors and a model's own output must all be there.
"""

from __future__ import annotations

import json

import pytest
from mcp import Client

from tests.fakes.replicate_fake import FakeReplicate
from tests.support.results import text_of

pytestmark = pytest.mark.anyio


async def test_generate_image_text_names_every_image_its_url_and_the_prompt_as_sent(server) -> None:
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse at dusk", "count": 2,
                                                           "style": "realistic_image", "seed": 7})
    text = text_of(result)
    images = result.structured_content["images"]
    assert len(images) == 2
    for n, image in enumerate(images, 1):
        assert f"Image {n}: {image['uri']}" in text
        assert f"url: {image['url']}" in text
        assert f"seed {image['seed']}" in text
    # the prompt as the model received it, style prefix included, written once for the shared prompt
    assert text.count(f"Prompt as sent: {images[0]['prompt']}") == 1
    assert images[0]["prompt"] != "a lighthouse at dusk" and "a lighthouse at dusk" in images[0]["prompt"]


async def test_a_partly_failed_call_names_the_failed_item_and_why(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.fail_predictions(1, error="RuntimeError: CUDA out of memory")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2})
    text = text_of(result)
    assert not result.is_error
    [error] = result.structured_content["errors"]
    assert "1 failed" in text.splitlines()[0]
    assert f"Failed: {error['item']} ({error['kind']}): " in text and "CUDA out of memory" in text
    [image] = result.structured_content["images"]
    assert image["uri"] in text and image["url"] in text


ARTICLE = ("# Tides\n\nAt dawn the fishing boats leave the harbour while gulls circle the lighthouse.\n\n"
           "## The market\n\nBy noon the fish market is crowded with traders and baskets of silver sardines.\n")


async def test_illustrate_content_text_names_each_illustrations_image_url_and_error(
        server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.fail_predictions(1, error="NSFW content detected")
    async with Client(server) as client:
        result = await client.call_tool("illustrate_content", {"content": ARTICLE, "count": 2})
    text = text_of(result)
    assert not result.is_error
    items = result.structured_content["illustrations"]
    [made] = [i for i in items if i["image"]]
    [failed] = [i for i in items if i["error"]]
    assert "1 failed" in text.splitlines()[0]
    assert f"Illustration {made['index'] + 1}: {made['image']['uri']}" in text
    assert f"url: {made['image']['url']}" in text
    assert f"Illustration {failed['index'] + 1} failed (GenerationFailed): " in text and "NSFW content detected" in text
    for item in items:   # each prompt as sent, numbered like the illustrations
        assert f"{item['index'] + 1}. {item['prompt']}" in text


async def test_edit_image_text_has_the_uri_url_and_prompt(server) -> None:
    async with Client(server) as client:
        first = await client.call_tool("generate_image", {"prompt": "a cat"})
        source = first.structured_content["images"][0]["uri"]
        result = await client.call_tool("edit_image", {"prompt": "make the cat blue", "images": [source]})
    text = text_of(result)
    [image] = result.structured_content["images"]
    assert image["uri"] in text and f"url: {image['url']}" in text and "prompt as sent: make the cat blue" in text
    assert "1 reference image" in text


async def test_run_replicate_model_text_carries_a_text_models_output(server, replicate_fake: FakeReplicate) -> None:
    version = replicate_fake.add_model("acme/captioner", output="text")
    async with Client(server) as client:
        result = await client.call_tool("run_replicate_model", {"model_name": f"acme/captioner:{version}",
                                                                "model_inputs": {"prompt": "two cats"}})
    text = text_of(result)
    assert "acme/captioner succeeded" in text
    assert "Output (text, 21 characters):\nfake output: two cats" in text


async def test_run_replicate_model_text_shows_json_output_with_stored_images_as_uris(
        server, replicate_fake: FakeReplicate) -> None:
    version = replicate_fake.add_model("acme/segmenter", output="dict")
    async with Client(server) as client:
        result = await client.call_tool("run_replicate_model", {"model_name": f"acme/segmenter:{version}",
                                                                "model_inputs": {"prompt": "a dog"}})
    text = text_of(result)
    out = result.structured_content["result"]
    shown = json.loads(text.split("Output (JSON):\n", 1)[1])
    assert shown == {"image": out["image"]["uri"], "mask": out["mask"]["uri"], "caption": "a caption for a dog"}
    for record in (out["image"], out["mask"]):
        assert f"url: {record['url']}" in text
    assert "sha256" not in text   # records are shortened in the text; structuredContent keeps them whole


async def test_a_long_output_is_clipped_with_a_note_saying_where_the_rest_is(
        server, replicate_fake: FakeReplicate) -> None:
    long = {"rows": [{"index": i, "label": f"label number {i}"} for i in range(2000)]}
    version = replicate_fake.add_model("acme/table", output=lambda _pred: long)
    async with Client(server) as client:
        result = await client.call_tool("run_replicate_model", {"model_name": f"acme/table:{version}",
                                                                "model_inputs": {"prompt": "x"}})
    text = text_of(result)
    assert result.structured_content["result"] == long
    assert 6000 < len(text) < 7000
    assert "[clipped: showing 6000 of " in text and "structuredContent (field result)" in text


async def test_get_replicate_model_schema_text_lists_each_input(server) -> None:
    async with Client(server) as client:
        result = await client.call_tool("get_replicate_model_schema", {"model_name": "recraft-ai/recraft-v3"})
    text = text_of(result)
    assert result.structured_content["input"]["properties"]["size"]["default"] == "1024x1024"
    assert "- prompt: string, required" in text
    assert '- size: string, one of "1024x1024", "1365x1024"' in text and 'default "1024x1024"' in text
    assert "inputs_json" in text


# ------------------------------------------------------------------- inputs_json (strict-mode form)

async def test_inputs_json_carries_the_inputs_for_clients_without_free_form_objects(
        server, replicate_fake: FakeReplicate) -> None:
    version = replicate_fake.add_model("acme/captioner", output="text")
    async with Client(server) as client:
        result = await client.call_tool("run_replicate_model", {
            "model_name": f"acme/captioner:{version}", "model_inputs": {},
            "inputs_json": json.dumps({"prompt": "three owls"})})
    assert not result.is_error, text_of(result)
    assert replicate_fake.creates[-1].json["input"] == {"prompt": "three owls"}
    assert "fake output: three owls" in text_of(result)


@pytest.mark.parametrize(("inputs_json", "expected"), [
    ("{prompt: 1}", "inputs_json: not valid JSON"),
    ("[1, 2]", "inputs_json: must be a JSON object, not list"),
    ('{"prompt": "other"}', "inputs_json: prompt also given in model_inputs with another value"),
])
async def test_bad_inputs_json_is_refused_before_anything_is_sent(
        server, replicate_fake: FakeReplicate, inputs_json: str, expected: str) -> None:
    async with Client(server) as client:
        result = await client.call_tool("run_replicate_model", {
            "model_name": "acme/captioner", "model_inputs": {"prompt": "owls"}, "inputs_json": inputs_json})
    assert result.is_error and text_of(result).startswith("Invalid arguments for run_replicate_model: " + expected)
    assert replicate_fake.requests == []


# -------------------------------------------------------------------------- one error wording

@pytest.mark.parametrize(("tool", "args", "expected"), [
    ("generate_image", {"prompt": "p", "count": 9}, "count: Input should be less than or equal to 4"),
    ("generate_image", {"prompt": "a\x00b"}, "prompt: contains control characters"),
    ("generate_image", {"prompt": "   "}, "prompt: must contain text"),
    ("generate_image", {"prompt": "a fox", "model": "Recraft v3", "seed": 3}, "seed"),
    ("edit_image", {"prompt": "x", "images": ["data:image/png;base64," + "A" * 8] * 11}, "images: "),
    ("run_replicate_model", {"model_name": "nope"}, "model_name: must look like owner/name"),
    ("get_replicate_model_schema", {"model_name": "acme/x", "version": "zz"}, "version: must be"),
])
async def test_every_argument_mistake_reads_invalid_arguments_for_the_tool(
        server, replicate_fake: FakeReplicate, tool: str, args: dict, expected: str) -> None:
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    text = text_of(result)
    assert result.is_error and text.startswith(f"Invalid arguments for {tool}: "), text
    assert expected in text and "Error executing tool" not in text
    assert replicate_fake.requests == []


async def test_a_failure_that_is_not_an_argument_mistake_is_its_own_sentence(
        server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.fail_predictions(1, error="RuntimeError: weights not found")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    text = text_of(result)
    assert result.is_error and "weights not found" in text
    assert not text.startswith(("Invalid arguments", "Error executing tool"))


async def test_an_unreadable_reference_image_is_an_argument_mistake(server) -> None:
    bad = "data:image/png;base64," + "A" * 40
    async with Client(server) as client:
        result = await client.call_tool("edit_image", {"prompt": "x", "images": [bad]})
    assert text_of(result).startswith("Invalid arguments for edit_image: images[0]")


async def test_resource_links_can_be_turned_off_and_the_text_still_names_each_image(
        env: dict[str, str]) -> None:
    from mcp.types import ResourceLink

    from server.app import build_server
    from server.config import Settings

    server = build_server(Settings.from_env({**env, "EASEL_RESOURCE_LINKS": "off", "EASEL_PREVIEW": "off"}))
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert [c.type for c in result.content] == ["text"]
    [image] = result.structured_content["images"]
    assert image["uri"] in text_of(result) and image["url"] in text_of(result)
    assert not any(isinstance(c, ResourceLink) for c in result.content)


async def test_the_call_log_names_an_argument_mistake_found_by_the_tool(
        server, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="easel.calls"):
        async with Client(server) as client:
            await client.call_tool("generate_image", {"prompt": "   "})
    [record] = [r for r in caplog.records if r.name == "easel.calls"]
    assert record.outcome == "error:InvalidArguments"
