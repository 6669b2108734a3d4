"""fastmcp's Client against the real server, over stdio and streamable HTTP.

Everything a host lists and calls: tools, resources, resource templates, prompts, a tool call whose
text carries the images, and a resource read of the full-size bytes.
"""

from __future__ import annotations

import base64
import json

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport
from fastmcp.exceptions import ToolError
from mcp.types import PromptReference

from tests.interop.conftest import ARTICLE
from tests.interop.expect import missing_images, missing_prompts
from tests.support.processes import http_server

pytestmark = pytest.mark.anyio
TOOLS = {"generate_image", "edit_image", "run_replicate_model", "get_replicate_model_schema", "illustrate_content"}


def text_of(result) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(block.text for block in result.content if block.type == "text")


async def exercise(client: Client) -> None:
    tools = {tool.name: tool for tool in await client.list_tools()}
    assert TOOLS <= set(tools)
    assert all(tools[name].description for name in TOOLS)

    templates = {t.uri_template for t in await client.list_resource_templates()}
    assert "easel://images/{image_id}" in templates

    result = await client.call_tool("generate_image", {"prompt": "a lighthouse at dawn", "count": 2})
    assert not result.is_error
    images = result.structured_content["images"]
    assert len(images) == 2 and all(image["uri"].startswith("easel://images/") for image in images)
    assert missing_images(text_of(result), result.structured_content) == [], text_of(result)

    # The stored image is listed as a resource and its full-size bytes read back.
    listed = {str(r.uri) for r in await client.list_resources()}
    assert {image["uri"] for image in images} <= listed
    [blob] = await client.read_resource(images[0]["uri"])
    assert blob.mime_type == images[0]["mime_type"]
    assert len(base64.b64decode(blob.blob)) == images[0]["bytes"]
    [meta] = await client.read_resource(images[0]["uri"] + "/metadata")
    assert json.loads(meta.text)["prompt"] == "a lighthouse at dawn"

    with pytest.raises(ToolError, match="count"):
        await client.call_tool("generate_image", {"prompt": "a lighthouse", "count": 9})


async def test_stdio(stdio_command: tuple[str, list[str], dict[str, str]]) -> None:
    command, args, env = stdio_command
    async with Client(StdioTransport(command, args, env=env)) as client:
        await exercise(client)


async def test_streamable_http(env: dict[str, str]) -> None:
    with http_server(["--transport", "http"], env) as base:
        async with Client(StreamableHttpTransport(f"{base}/mcp")) as client:
            await exercise(client)


async def test_a_dry_run_text_carries_every_prompt(stdio_command: tuple[str, list[str], dict[str, str]]) -> None:
    command, args, env = stdio_command
    async with Client(StdioTransport(command, args, env=env)) as client:
        plan = await client.call_tool("illustrate_content", {"content": ARTICLE, "count": 2, "dry_run": True})
    assert missing_prompts(text_of(plan), plan.structured_content) == [], text_of(plan)


async def test_prompts_are_listed_and_render(stdio_command: tuple[str, list[str], dict[str, str]]) -> None:
    """Hosts show MCP prompts as slash commands: a few real ones, each with described arguments."""
    command, args, env = stdio_command
    async with Client(StdioTransport(command, args, env=env)) as client:
        prompts = await client.list_prompts()
        assert len(prompts) >= 4, [p.name for p in prompts]
        for prompt in prompts:
            assert prompt.description, prompt.name
            assert all(arg.description for arg in prompt.arguments or []), prompt.name
            given = {arg.name: ARTICLE for arg in prompt.arguments or [] if arg.required}
            rendered = await client.get_prompt(prompt.name, given)
            text = " ".join(m.content.text for m in rendered.messages if m.content.type == "text")
            assert text.strip(), prompt.name
        # Arguments with a fixed set of values complete (what a host offers as the user types).
        completed = {}
        for prompt in prompts:
            for arg in prompt.arguments or []:
                completion = await client.complete(PromptReference(type="ref/prompt", name=prompt.name),
                                                   {"name": arg.name, "value": ""})
                if completion.values:
                    completed[f"{prompt.name}.{arg.name}"] = completion.values
        assert completed, "no prompt argument offers completions"


async def test_server_and_tools_have_icons(stdio_command: tuple[str, list[str], dict[str, str]]) -> None:
    command, args, env = stdio_command
    async with Client(StdioTransport(command, args, env=env)) as client:
        assert client.server_info is not None and client.server_info.icons
        tools = {tool.name: tool for tool in await client.list_tools()}
        assert all(tools[name].icons for name in TOOLS), [n for n in TOOLS if not tools[n].icons]
