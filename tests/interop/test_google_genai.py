"""google-genai's MCP adapter (``mcp_to_gemini_tool``) on every tool the real server lists.

The adapter crashes on ``"additionalProperties": true`` and fails the whole request, so every tool
must convert; the converted declarations must still carry what a model needs to call them well.
"""

from __future__ import annotations

import pytest
from google.genai import types
from google.genai._mcp_utils import mcp_to_gemini_tool
from mcp import Client, StdioServerParameters

pytestmark = [
    pytest.mark.anyio,
    # The adapter reads tool.inputSchema before input_schema; with fastmcp imported in the same
    # process (other interop tests), MCP SDK v2's Tool warns about the old name. Not our concern here.
    pytest.mark.filterwarnings("ignore:Accessing `Tool.inputSchema` is deprecated"),
]


async def test_every_tool_converts_to_a_gemini_function_declaration(
        stdio_command: tuple[str, list[str], dict[str, str]]) -> None:
    command, args, env = stdio_command
    async with Client(StdioServerParameters(command=command, args=args, env=env)) as client:
        tools = (await client.list_tools()).tools
    assert len(tools) >= 5
    failed: dict[str, str] = {}
    declarations: dict[str, types.FunctionDeclaration] = {}
    for tool in tools:
        try:
            [declaration] = mcp_to_gemini_tool(tool).function_declarations or []
        except Exception as exc:  # collect them all: one report names every tool that fails
            failed[tool.name] = f"{type(exc).__name__}: {exc}"
            continue
        declarations[tool.name] = declaration
    assert failed == {}

    # A request with all of them together builds, as a Gemini call would send it.
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=list(declarations.values()))])
    assert len(config.tools[0].function_declarations) == len(tools)

    generate = declarations["generate_image"].parameters
    assert generate.required == ["prompt"]
    assert "Flux 1.1 Pro" in (generate.properties["model"].enum or [])
    assert generate.properties["count"].maximum == 4
    # run_replicate_model still takes a model's inputs, whatever form the server gives them.
    run = declarations["run_replicate_model"].parameters
    assert "model_inputs" in run.properties and run.properties["model_inputs"].description
