"""run_replicate_model: any model, file outputs stored at once, errors split into input vs execution."""

from __future__ import annotations

import base64
import json

import pytest
from mcp import Client

from tests.fakes.replicate_fake import FakeReplicate
from tests.support.results import text_of

pytestmark = pytest.mark.anyio



async def test_a_versioned_community_model_with_dict_output_has_its_files_stored(
        server, replicate_fake: FakeReplicate) -> None:
    version = replicate_fake.add_model("acme/segmenter", output="dict")
    async with Client(server) as client:
        result = await client.call_tool("run_replicate_model", {
            "model_name": f"acme/segmenter:{version}", "model_inputs": {"prompt": "a dog"}})
        assert not result.is_error, text_of(result)
        data = result.structured_content
        out = data["result"]
        assert data["status"] == "succeeded" and data["model_name"] == "acme/segmenter"
        assert out["caption"] == "a caption for a dog"
        assert out["image"]["uri"].startswith("easel://images/") and out["mask"]["uri"].startswith("easel://")
        read = await client.read_resource(out["mask"]["uri"])
        assert len(base64.b64decode(read.contents[0].blob)) == out["mask"]["bytes"]
    assert replicate_fake.creates[0].path == "/v1/predictions"
    assert replicate_fake.creates[0].json["version"] == version
    assert len(data["images"]) == 2


async def test_list_outputs_and_text_outputs(server, replicate_fake: FakeReplicate) -> None:
    imgs = replicate_fake.add_model("acme/many", output="images", count=3)
    txt = replicate_fake.add_model("acme/captioner", output="text")
    async with Client(server) as client:
        many = await client.call_tool("run_replicate_model", {"model_name": "acme/many", "version": imgs,
                                                              "model_inputs": {"prompt": "x"}})
        text = await client.call_tool("run_replicate_model", {"model_name": "acme/captioner", "version": txt,
                                                              "model_inputs": {"prompt": "two cats"}})
    assert [r["mime_type"].startswith("image/") for r in many.structured_content["result"]] == [True] * 3
    assert text.structured_content["result"] == "fake output: two cats"


async def test_token_streams_are_joined_when_the_schema_says_iterator(server, replicate_fake: FakeReplicate) -> None:
    version = replicate_fake.add_model("acme/llm", output="iterator")
    async with Client(server) as client:
        result = await client.call_tool("run_replicate_model", {"model_name": f"acme/llm:{version}",
                                                                "model_inputs": {"prompt": "hello world"}})
    assert result.structured_content["result"] == "fake output: hello world "


async def test_official_models_run_by_name_and_easel_uris_become_inputs(server, replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        first = await client.call_tool("generate_image", {"prompt": "a cat"})
        uri = first.structured_content["images"][0]["uri"]
        result = await client.call_tool("run_replicate_model", {
            "model_name": "google/nano-banana",
            "model_inputs": {"prompt": "make it blue", "image_input": [uri], "output_format": "png"}})
    assert not result.is_error, text_of(result)
    sent = replicate_fake.creates[-1].json["input"]["image_input"]
    assert sent[0].startswith("data:image/jpeg;base64,")
    assert result.structured_content["result"]["mime_type"] == "image/png"


async def test_invalid_inputs_list_every_field(server, replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        result = await client.call_tool("run_replicate_model", {
            "model_name": "black-forest-labs/flux-1.1-pro",
            "model_inputs": {"prompt": "x", "output_format": "gif", "safety_tolerance": 9}})
    text = text_of(result)
    assert result.is_error and text.startswith("Invalid arguments for run_replicate_model: model_inputs: "
                                               "black-forest-labs/flux-1.1-pro refused them: ")
    assert "output_format" in text and "safety_tolerance" in text


async def test_a_failing_model_is_an_execution_error(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.fail_predictions(1, error="RuntimeError: weights not found")
    async with Client(server) as client:
        result = await client.call_tool("run_replicate_model", {"model_name": "black-forest-labs/flux-1.1-pro",
                                                                "model_inputs": {"prompt": "x"}})
    assert result.is_error and "Execution error running" in text_of(result)
    assert "weights not found" in text_of(result)


@pytest.mark.parametrize("args", [
    {"model_name": "not-a-model"},
    {"model_name": "../../etc/passwd"},
    {"model_name": "acme/x", "version": "zz"},
    {"model_name": "acme/x:123"},
])
async def test_malformed_names_and_versions_are_refused(server, replicate_fake: FakeReplicate, args: dict) -> None:
    async with Client(server) as client:
        result = await client.call_tool("run_replicate_model", args)
    assert result.is_error and ("model_name" in text_of(result) or "version" in text_of(result))
    assert replicate_fake.requests == []


async def test_the_assistant_can_read_a_models_inputs_first(server, replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        result = await client.call_tool("get_replicate_model_schema", {"model_name": "recraft-ai/recraft-v3"})
    assert not result.is_error, text_of(result)
    schema = json.loads(text_of(result)) if result.structured_content is None else result.structured_content
    body = schema.get("result", schema)
    assert "style" in body["input"]["properties"]


async def test_images_from_any_model_are_found_by_the_prompt_they_were_made_from(
        server, replicate_fake: FakeReplicate) -> None:
    """search_images reads prompts: an image run_replicate_model stored must carry the model's prompt input."""
    version = replicate_fake.add_model("acme/painter", output="images", count=1)
    async with Client(server) as client:
        ran = await client.call_tool("run_replicate_model", {
            "model_name": f"acme/painter:{version}", "model_inputs": {"prompt": "a lighthouse in a storm"}})
        assert not ran.is_error, text_of(ran)
        uri = ran.structured_content["images"][0]["uri"]
        found = await client.call_tool("search_images", {"query": "lighthouse"})
    assert not found.is_error, text_of(found)
    assert [hit["uri"] for hit in found.structured_content["images"]] == [uri]
    assert "a lighthouse in a storm" in text_of(found)
