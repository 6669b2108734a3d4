"""The MCP tools, one module each. Thin: validate, build requests, delegate, shape the result.

Enum arguments are inlined in the schemas (no $ref: several clients mishandle
them), every field has a description, and every failure reaches the assistant
as a ToolError that names what to change. (Tool modules do not use
``from __future__ import annotations``: their signatures close over settings.)
"""

from mcp.server.mcpserver import MCPServer

from providers import Registry
from server.config import Settings
from server.tools import edit, generate, illustrate, jobs, run_model, search

__all__ = ["register_tools"]


def register_tools(mcp: MCPServer, settings: Settings) -> None:
    registry = Registry(settings.providers.configs)  # for descriptions only: which models have keys
    for module in (generate, edit, illustrate, run_model, search, jobs):
        module.register(mcp, settings, registry)
    jobs.register_subscriptions(mcp)
