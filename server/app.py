"""Builds the MCP server: lifespan state, tools, and the easel:// resources.

``build_server(settings)`` is the one entry point: the CLI runs it on a
transport, tests connect to it in memory. The lifespan owns the provider
registry (and so every vendor client); storage is built with the server, since
listing resources has no request context.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import ListResourcesResult, Resource, ResourceTemplate

from providers import Registry
from server.config import Settings
from server.storage import URI_PREFIX, ImageNotFound, Storage, StorageError
from server.storage.local import LocalStorage

__all__ = ["AppState", "EaselServer", "build_server", "make_storage"]

log = logging.getLogger("easel")

INSTRUCTIONS = """easel-mcp makes images. generate_image turns a prompt into 1-4 images; \
edit_image changes or combines reference images; illustrate_content turns a text into a set of \
matching illustrations; run_replicate_model runs any Replicate model. Every image is stored and \
returned as an easel://images/... resource link (read it for full size), a url a person can open, \
and a small preview. Read easel://images/{id}/metadata for the prompt, model and seed."""


@dataclass
class AppState:
    settings: Settings
    storage: Storage
    registry: Registry


def make_storage(settings: Settings) -> Storage:
    if settings.storage == "oss":
        from server.storage.oss import make_oss_storage  # imported only when configured

        return make_oss_storage(settings)
    local = LocalStorage(settings.storage_dir)
    local.check_writable()
    return local


class EaselServer(MCPServer):
    """MCPServer serving stored images straight from storage, with their own mime types."""

    storage: Storage
    easel_settings: Settings

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        return [*await super().list_resource_templates(),
                ResourceTemplate(uri_template=URI_PREFIX + "{image_id}", name="stored-image",
                                 description="A stored image: full-size bytes with its mime type."),
                ResourceTemplate(uri_template=URI_PREFIX + "{image_id}/metadata", name="stored-image-metadata",
                                 mime_type="application/json",
                                 description="How the image was made: prompt as sent, model, seed, size.")]

    async def _handle_list_resources(self, ctx: Any, params: Any) -> ListResourcesResult:
        cursor = getattr(params, "cursor", None) if params else None
        try:
            records, next_cursor = await self.storage.list_recent(self.easel_settings.list_limit, cursor)
        except StorageError as exc:
            from mcp import MCPError
            raise MCPError(code=-32602, message=str(exc)) from None
        resources = [Resource(uri=r["uri"], name=r["id"], mime_type=r.get("mime_type"),
                              description=str(r.get("prompt", ""))[:200], size=r.get("bytes"))
                     for r in records if isinstance(r, dict) and "uri" in r and "id" in r]
        return ListResourcesResult(resources=[*await self.list_resources(), *resources],
                                   next_cursor=next_cursor)

    async def read_resource(self, uri: Any, context: Any = None) -> Iterable[ReadResourceContents] | Any:
        text = str(uri)
        if not text.startswith(URI_PREFIX):
            return await super().read_resource(uri, context)
        image_id, _, rest = text[len(URI_PREFIX):].partition("/")
        try:
            if rest == "metadata":
                meta = await self.storage.metadata(image_id)
                return [ReadResourceContents(content=json.dumps(meta, ensure_ascii=False), mime_type="application/json")]
            if rest:
                raise ImageNotFound(f"Unknown resource {text[:120]}")
            data, mime = await self.storage.get(image_id)
        except StorageError as exc:  # ImageNotFound included: malformed ids never reach a backend
            raise ResourceNotFoundError(str(exc)) from None
        return [ReadResourceContents(content=data, mime_type=mime)]


def build_server(settings: Settings, *, storage: Storage | None = None) -> EaselServer:
    from server.tools import register_tools

    store = storage or make_storage(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[AppState]:
        registry = Registry(settings.providers)
        try:
            yield AppState(settings=settings, storage=store, registry=registry)
        finally:
            await registry.aclose()

    server = EaselServer("easel-mcp", title="easel-mcp image generation", instructions=INSTRUCTIONS,
                         version=_version(), lifespan=lifespan)
    server.storage = store
    server.easel_settings = settings
    register_tools(server, settings)
    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("easel-mcp")
    except PackageNotFoundError:
        return "0.0.0"
