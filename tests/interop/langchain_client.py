"""Run by tests/interop/test_langchain.py with the python of .venv-interop/langchain (mcp<2 lives there).

usage: python langchain_client.py SERVER_PYTHON ARTICLE_FILE
Starts the server with SERVER_PYTHON -m server over stdio through langchain-mcp-adapters and prints
one JSON object: each tool's convert_to_openai_tool result, and the ToolMessage of each call as
LangChain hands it to a model (content blocks) with its artifact.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_mcp_adapters.client import MultiServerMCPClient


def converted(tool: Any, strict: bool) -> dict[str, Any]:
    try:
        return {"schema": convert_to_openai_tool(tool, strict=strict)}
    except Exception as exc:  # reported, not raised: the test names every tool that fails
        return {"error": f"{type(exc).__name__}: {exc}"}


async def call(tools: dict[str, Any], name: str, args: dict[str, Any]) -> dict[str, Any]:
    message = await tools[name].ainvoke({"type": "tool_call", "id": f"call-{name}", "name": name, "args": args})
    return {"content": message.content, "artifact": message.artifact, "status": message.status}


async def main(server_python: str, article: str) -> None:
    server = {"transport": "stdio", "command": server_python, "args": ["-m", "server"]}
    client = MultiServerMCPClient({
        "easel": {**server, "env": dict(os.environ)},
        # The setting docs/clients.md gives for LangChain: no resource_link blocks.
        "easel_links_off": {**server, "env": {**os.environ, "EASEL_RESOURCE_LINKS": "off"}},
    })
    tools = {tool.name: tool for tool in await client.get_tools(server_name="easel")}
    links_off = {tool.name: tool for tool in await client.get_tools(server_name="easel_links_off")}
    generate = {"prompt": "a lighthouse at dawn", "count": 2}
    out: dict[str, Any] = {
        "tools": {name: {"openai": converted(tool, False), "openai_strict": converted(tool, True)}
                  for name, tool in tools.items()},
        "generate_image": await call(tools, "generate_image", generate),
        "generate_image_links_off": await call(links_off, "generate_image", generate),
        "dry_run": await call(tools, "illustrate_content", {"content": article, "count": 2, "dry_run": True}),
    }
    print(json.dumps(out, default=repr))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], open(sys.argv[2], encoding="utf-8").read()))
