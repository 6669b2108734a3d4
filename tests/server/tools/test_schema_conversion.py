"""Every tool's input schema survives the converters agent frameworks run on it.

The real libraries (installed by the ``test`` extra) convert the schemas the server lists:
google-genai's MCP adapter, LangChain's OpenAI tool conversion, and the OpenAI Agents SDK's
strict conversion through its own MCP path. A library that cannot be installed skips its test.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from server.app import build_server
from server.config import Settings

pytestmark = pytest.mark.anyio
Tools = dict[str, Any]
FIXED_ARGUMENTS = ["generate_image", "edit_image", "illustrate_content", "get_replicate_model_schema",
                   "search_images", "browse_images", "image_thumbnails", "check_job", "cancel_job"]
# Takes no arguments. The Agents SDK counts an object without properties as open and serves it non-strict;
# declaring "additionalProperties": false instead would crash google-genai's adapter (docs/clients.md).
NO_ARGUMENTS = ["gallery_link"]


@pytest.fixture
async def tools(tmp_path: Path) -> Tools:
    server = build_server(Settings.from_env({"EASEL_STORAGE_DIR": str(tmp_path)}))
    async with Client(server) as client:
        return {t.name: t for t in (await client.list_tools()).tools}


async def test_no_schema_declares_additional_properties_true(tools: Tools) -> None:
    assert set(tools) == {*FIXED_ARGUMENTS, *NO_ARGUMENTS, "run_replicate_model"}
    for tool in tools.values():
        assert '"additionalProperties": true' not in json.dumps(tool.input_schema), tool.name
    inputs = tools["run_replicate_model"].input_schema["properties"]
    assert inputs["model_inputs"]["type"] == "object" and inputs["model_inputs"]["properties"] == {}
    assert "additionalProperties" not in inputs["model_inputs"]   # absent: any key is allowed
    assert inputs["inputs_json"]["type"] == "string"


# The adapter reads tool.inputSchema first; once fastmcp is imported (the interop tests), MCP SDK v2's Tool warns
# about the old name, once per process: which test meets it depends on the order the tests run in.
@pytest.mark.filterwarnings("ignore:Accessing `Tool.inputSchema` is deprecated")
async def test_google_genai_converts_every_tool(tools: Tools) -> None:
    pytest.importorskip("google.genai")
    from google.genai import _mcp_utils

    for tool in tools.values():
        converted = _mcp_utils.mcp_to_gemini_tool(copy.deepcopy(tool))
        [declaration] = converted.function_declarations
        assert declaration.name == tool.name
        assert set(declaration.parameters.properties) == set(tool.input_schema["properties"])
    run = _mcp_utils.mcp_to_gemini_tool(tools["run_replicate_model"]).function_declarations[0]
    assert run.parameters.properties["inputs_json"].type == "STRING"
    assert run.parameters.properties["model_inputs"].properties == {}   # an OBJECT with its (empty) map


async def test_langchain_converts_every_tool(tools: Tools) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.utils.function_calling import convert_to_openai_tool

    for tool in tools.values():
        converted = convert_to_openai_tool({"name": tool.name, "description": tool.description,
                                            "parameters": copy.deepcopy(tool.input_schema)})
        assert converted["function"]["name"] == tool.name
        assert set(converted["function"]["parameters"]["properties"]) == set(tool.input_schema["properties"])


async def test_langchain_strict_conversion_closes_model_inputs_and_requires_inputs_json(tools: Tools) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.utils.function_calling import convert_to_openai_tool

    for tool in tools.values():
        params = convert_to_openai_tool({"name": tool.name, "description": tool.description,
                                         "parameters": copy.deepcopy(tool.input_schema)}, strict=True)["function"][
            "parameters"]
        assert params["additionalProperties"] is False, tool.name
        assert set(params.get("required", [])) == set(params["properties"]), tool.name
    run = convert_to_openai_tool({"name": "run_replicate_model", "parameters": copy.deepcopy(
        tools["run_replicate_model"].input_schema)}, strict=True)["function"]["parameters"]["properties"]
    assert run["model_inputs"]["additionalProperties"] is False and run["inputs_json"]["type"] == "string"


async def test_openai_agents_converts_every_tool_with_fixed_arguments_strictly(tools: Tools) -> None:
    pytest.importorskip("agents")
    from agents.mcp import MCPServerStdio, MCPUtil

    never_started = MCPServerStdio(params={"command": "easel-mcp"})
    converted = {name: MCPUtil.to_function_tool(tool, never_started, convert_schemas_to_strict=True)
                 for name, tool in tools.items()}
    assert [n for n in FIXED_ARGUMENTS if converted[n].strict_json_schema] == FIXED_ARGUMENTS
    for name in FIXED_ARGUMENTS:
        schema = converted[name].params_json_schema
        assert schema["additionalProperties"] is False, name
        assert set(schema.get("required", [])) == set(schema["properties"]), name
    # An open object cannot be strict: the SDK serves run_replicate_model non-strict, schema untouched.
    run = converted["run_replicate_model"]
    assert run.strict_json_schema is False
    assert run.params_json_schema["properties"]["model_inputs"] == tools["run_replicate_model"].input_schema[
        "properties"]["model_inputs"]


async def test_the_strict_form_of_run_replicate_model_carries_inputs_in_inputs_json(tools: Tools) -> None:
    """What a converter that closes every object (OpenAI strict) leaves: model_inputs can only be {},
    and inputs_json is a required string, which the server reads as the model's inputs."""
    pytest.importorskip("agents")
    from agents.strict_schema import ensure_strict_json_schema

    strict = ensure_strict_json_schema(copy.deepcopy(tools["run_replicate_model"].input_schema))
    props = strict["properties"]
    assert props["model_inputs"]["additionalProperties"] is False and not props["model_inputs"]["properties"]
    assert props["inputs_json"]["type"] == "string" and "inputs_json" in strict["required"]
