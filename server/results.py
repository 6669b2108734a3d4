"""Shaping tool results: structured content, resource links, a summary, previews.

Every image tool answers the same way: ``structuredContent`` that matches the
declared output schema, one ``resource_link`` per image, a one-line summary,
and (unless EASEL_PREVIEW=off) a small JPEG preview per image that fits in an
assistant's context.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import anyio
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from server.config import Settings
from server.images import make_preview
from server.storage import StoredImage

__all__ = ["ErrorRecord", "GenerateResult", "ImageRecord", "Previews", "build_result", "image_link", "image_record"]

log = logging.getLogger("easel.results")

#: Set per tool call by EaselServer when it serves images over HTTP: image id -> signed
#: browser link (server.links). Unset (stdio, in-memory): storage URLs are kept as they are.
image_link: ContextVar[Callable[[str], str] | None] = ContextVar("image_link", default=None)


class ImageRecord(BaseModel):
    uri: str = Field(description="easel://images/… resource URI; read it for the full-size bytes")
    url: str = Field(description="a link a person can open")
    mime_type: str
    width: int
    height: int
    bytes: int
    sha256: str
    prompt: str = Field(description="the prompt as sent to the model")
    model: str
    provider: str
    provider_model: str
    seed: int | None = None
    prediction_id: str | None = None
    stored_in: str = Field(description="local or oss")
    note: str | None = None


class ErrorRecord(BaseModel):
    item: str = Field(description="which image or job failed")
    kind: str = Field(description="error class, e.g. RateLimited, GenerationFailed")
    message: str


class GenerateResult(BaseModel):
    images: list[ImageRecord]
    errors: list[ErrorRecord] = Field(default_factory=list)


def image_record(stored: StoredImage) -> ImageRecord:
    m = stored.metadata
    link = image_link.get()
    url = link(stored.image_id) if link is not None and stored.stored_in == "local" else stored.url  # OSS keeps its own
    return ImageRecord(uri=stored.uri, url=url, mime_type=stored.mime_type,
                       width=int(m.get("width") or 0), height=int(m.get("height") or 0),
                       bytes=stored.size, sha256=stored.sha256, prompt=str(m.get("prompt", "")),
                       model=str(m.get("model", "")), provider=str(m.get("provider", "")),
                       provider_model=str(m.get("provider_model", "")), seed=m.get("seed"),
                       prediction_id=m.get("prediction_id"), stored_in=stored.stored_in, note=stored.note)


class Previews:
    """The previews of one call, each made in a worker thread *while* its image is being stored.

    Decoding the image is the biggest cost of a result (libjpeg's entropy decode grows
    with the file, not the preview), so it overlaps the hash, fsyncs and metadata write
    instead of following them. A preview that cannot be made is left out and logged: the
    image is already stored, and its link still works.
    """

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.preview
        self._max_px = settings.preview_max_px
        self._max_bytes = settings.preview_max_bytes
        self.made: dict[str, tuple[bytes, str]] = {}   # image id -> (JPEG bytes, mime)

    async def store(self, data: bytes, put: Callable[[], Awaitable[StoredImage]]) -> StoredImage:
        """``await put()`` (which stores ``data``) while ``data``'s preview is made alongside."""
        if not self.enabled:
            return await put()
        made: list[tuple[bytes, str] | None] = [None]

        async def preview() -> None:
            made[0] = await anyio.to_thread.run_sync(self._make, data)

        failed: BaseException | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(preview)
            try:
                stored = await put()
            except Exception as exc:  # re-raised as it is below, not inside an ExceptionGroup
                failed = exc
        if failed is not None:
            raise failed
        if made[0] is not None:
            self.made[stored.image_id] = made[0]
        return stored

    def _make(self, data: bytes) -> tuple[bytes, str] | None:
        try:
            return make_preview(data, max_px=self._max_px, max_bytes=self._max_bytes)
        except Exception as exc:  # e.g. a body cut short after its header: stored, but not decodable
            log.warning("no preview: the image could not be decoded (%s: %s)", type(exc).__name__, exc)
            return None


def build_result(structured: dict[str, Any], images: list[StoredImage], previews: Previews | None,
                 summary: str) -> CallToolResult:
    content: list[Any] = [TextContent(type="text", text=summary)]
    for stored in images:
        content.append(ResourceLink(type="resource_link", uri=stored.uri, name=stored.image_id,
                                    mime_type=stored.mime_type,
                                    description=str(stored.metadata.get("prompt", ""))[:200]))
    for stored in images:
        made = previews.made.get(stored.image_id) if previews is not None else None
        if made is not None:
            preview, mime = made
            content.append(ImageContent(type="image", data=base64.b64encode(preview).decode(), mime_type=mime))
    return CallToolResult(content=content, structured_content=structured)
