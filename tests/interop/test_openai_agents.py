"""The OpenAI Agents SDK's MCP server over stdio: strict schemas, and what its model reads by default.

The Agents SDK converts each MCP tool's input schema to OpenAI strict mode when asked
(``convert_schemas_to_strict``); a schema it cannot convert silently falls back to non-strict, so
the test looks at the resulting FunctionTool rather than at whether an error was raised. By default
(``use_structured_content=False``) the model gets only the text and image blocks of a result.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import RunContextWrapper
from agents.mcp import MCPServerStdio, MCPUtil
from agents.mcp.util import MCPToolCustomDataContext
from agents.strict_schema import ensure_strict_json_schema

from tests.interop.conftest import ARTICLE
from tests.interop.expect import missing_images, missing_prompts

pytestmark = pytest.mark.anyio
FIXED_ARGUMENT_TOOLS = {"generate_image", "edit_image", "illustrate_content", "get_replicate_model_schema",
                        "search_images", "browse_images", "image_thumbnails", "check_job", "cancel_job"}


STRUCTURED: list[dict[str, Any]] = []  # the structuredContent of each call, as the SDK's hook saw it


def keep_structured(context: MCPToolCustomDataContext) -> None:
    STRUCTURED.append(dict(context.structured_content or {}))


@pytest.fixture
async def server(stdio_command: tuple[str, list[str], dict[str, str]]) -> AsyncIterator[MCPServerStdio]:
    command, args, env = stdio_command
    STRUCTURED.clear()
    async with MCPServerStdio({"command": command, "args": args, "env": env}, name="easel",
                              cache_tools_list=True, client_session_timeout_seconds=60,
                              custom_data_extractor=keep_structured) as server:
        yield server


def model_text(output: Any) -> str:
    """The text items of a tool output as the Agents SDK hands it to the model (it turns blocks
    other than text and image, such as resource_link, into text items holding their JSON)."""
    items = output if isinstance(output, list) else [output]
    return "\n".join(item["text"] for item in items if item["type"] == "text")


async def call(server: MCPServerStdio, name: str, arguments: dict[str, Any]) -> Any:
    [tool] = [t for t in await server.list_tools() if t.name == name]
    return await MCPUtil.invoke_mcp_tool(server, tool, RunContextWrapper(context=None), json.dumps(arguments))


async def test_every_tool_with_fixed_arguments_converts_to_strict_mode(server: MCPServerStdio) -> None:
    tools = {tool.name: tool for tool in await server.list_tools()}
    assert FIXED_ARGUMENT_TOOLS <= set(tools)
    for name in FIXED_ARGUMENT_TOOLS:
        ensure_strict_json_schema(copy.deepcopy(tools[name].input_schema), _reject_open_objects=True)  # says why
        function_tool = MCPUtil.to_function_tool(tools[name], server, convert_schemas_to_strict=True)
        assert function_tool.strict_json_schema, name
        assert function_tool.params_json_schema["additionalProperties"] is False, name


async def test_run_replicate_model_still_takes_any_inputs_under_the_agents_sdk(server: MCPServerStdio) -> None:
    """An open ``model_inputs`` object has no strict form: the SDK serves the tool non-strict
    (docs/clients.md says so) unless the server offers a strict one; either way it converts and a
    model's inputs go through."""
    [tool] = [t for t in await server.list_tools() if t.name == "run_replicate_model"]
    function_tool = MCPUtil.to_function_tool(tool, server, convert_schemas_to_strict=True)
    assert "model_inputs" in function_tool.params_json_schema["properties"]
    inputs = {"prompt": "a red kite", "aspect_ratio": "1:1"}
    for form in ({"model_inputs": inputs}, {"model_inputs": {}, "inputs_json": json.dumps(inputs)}):
        output = await call(server, "run_replicate_model", {"model_name": "black-forest-labs/flux-1.1-pro", **form})
        assert "easel://images/" in model_text(output), (form, output)


async def test_the_default_text_output_carries_the_image_uris_and_urls(server: MCPServerStdio) -> None:
    output = await call(server, "generate_image", {"prompt": "a lighthouse at dawn", "count": 2})
    assert [item["type"] for item in output].count("image") == 2, output  # the previews
    text = model_text(output)
    assert missing_images(text, STRUCTURED[-1]) == [], text


async def test_the_default_text_output_of_a_dry_run_carries_every_prompt(server: MCPServerStdio) -> None:
    plan = model_text(await call(server, "illustrate_content", {"content": ARTICLE, "count": 2, "dry_run": True}))
    assert missing_prompts(plan, STRUCTURED[-1]) == [], plan
