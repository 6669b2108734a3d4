"""Previews: the small JPEG an assistant can see, made in a worker thread while its image is stored.

An image's route runs one way (server.jobs): download -> check -> store + preview ->
result. This module is the "+ preview": it knows how to make one and keeps the ones a
call made; result shaping (server.results) only places them in the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio

from server.config import Settings
from server.images import make_preview
from server.storage import StoredImage

__all__ = ["Previews"]

log = logging.getLogger("easel.previews")


class Previews:
    """The previews of one call, each made in a worker thread *while* its image is being stored.

    Decoding the image is the biggest cost of a result (libjpeg's entropy decode grows
    with the file, not the preview), so it overlaps the hash, fsyncs and metadata write
    instead of following them. A preview that cannot be made is left out and logged: the
    image is already stored, and its link still works.
    """

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.results.preview
        self._max_px = settings.results.preview_max_px
        self._max_bytes = settings.results.preview_max_bytes
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

    async def add(self, image_id: str, data: bytes) -> None:
        """The preview of an image stored earlier (a job answered by a process that did not store it)."""
        if self.enabled and (made := await anyio.to_thread.run_sync(self._make, data)) is not None:
            self.made[image_id] = made

    def _make(self, data: bytes) -> tuple[bytes, str] | None:
        try:
            return make_preview(data, max_px=self._max_px, max_bytes=self._max_bytes)
        except Exception as exc:  # e.g. a body cut short after its header: stored, but not decodable
            log.warning("no preview: the image could not be decoded (%s: %s)", type(exc).__name__, exc)
            return None

