"""pydantic-ai's MCP toolset: an Agent whose model (a scripted FunctionModel, no network) calls our tools.

What the function model is handed back is exactly what a real model would read, so the assertions
are on that: the dry-run prompts of illustrate_content and the image URIs and urls of generate_image.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import (
    BinaryContent,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from tests.interop.conftest import ARTICLE
from tests.interop.expect import missing_prompts

pytestmark = pytest.mark.anyio


def what_the_model_read(request: ModelRequest) -> tuple[str, int]:
    """The text of the tool's answer as the model gets it, and how many images came along."""
    texts: list[str] = []
    images = 0
    for part in request.parts:
        contents: list[Any] = []
        if isinstance(part, ToolReturnPart):
            contents = part.content if isinstance(part.content, list) else [part.content]
        elif isinstance(part, UserPromptPart):
            contents = part.content if isinstance(part.content, list) else [part.content]
        for item in contents:
            if isinstance(item, BinaryContent):
                images += item.is_image
            elif isinstance(item, str):
                texts.append(item)
            else:
                texts.append(json.dumps(item, default=str))
    return "\n".join(texts), images


class ScriptedModel:
    """Calls one tool with fixed arguments, then records what came back and ends the run."""

    def __init__(self, tool: str, args: dict[str, Any]) -> None:
        self.tool, self.args = tool, args
        self.tool_names: list[str] = []
        self.read: tuple[str, int] = ("", 0)

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.tool_names = [tool.name for tool in info.function_tools]
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart(self.tool, self.args)])
        last = messages[-1]
        assert isinstance(last, ModelRequest)
        self.read = what_the_model_read(last)
        return ModelResponse(parts=[TextPart("done")])


async def run(stdio_command: tuple[str, list[str], dict[str, str]], tool: str, args: dict[str, Any]) -> ScriptedModel:
    command, argv, env = stdio_command
    # pydantic-ai gives the server 5 s to start and answer initialize; a test machine busy with other
    # suites can take longer to spawn a Python process, which is not what this test is about
    toolset = MCPToolset(StdioTransport(command, argv, env=env), tool_error_behavior="error", init_timeout=60)
    model = ScriptedModel(tool, args)
    agent = Agent(FunctionModel(model), toolsets=[toolset])
    async with agent:
        result = await agent.run("go")
    assert result.output == "done"
    return model


async def test_a_dry_run_shows_the_model_every_prompt(stdio_command: tuple[str, list[str], dict[str, str]]) -> None:
    args = {"content": ARTICLE, "count": 2, "dry_run": True}
    model = await run(stdio_command, "illustrate_content", args)
    assert {"generate_image", "illustrate_content", "run_replicate_model"} <= set(model.tool_names)
    text, _ = model.read
    # The reference: the same plan, asked for directly (the planner is deterministic).
    command, argv, env = stdio_command
    from fastmcp import Client

    async with Client(StdioTransport(command, argv, env=env)) as client:
        plan = await client.call_tool("illustrate_content", args)
    assert missing_prompts(text, plan.structured_content) == [], text


async def test_generated_images_reach_the_model_as_links_and_previews(
        stdio_command: tuple[str, list[str], dict[str, str]], env: dict[str, str]) -> None:
    model = await run(stdio_command, "generate_image", {"prompt": "a lighthouse at dawn", "count": 2})
    text, previews = model.read
    assert previews == 2, text
    assert text.count("easel://images/") >= 2, text
    # Every image's openable url, as stored: the local store's files.
    assert text.count("file://" + env["EASEL_STORAGE_DIR"]) >= 2, text
