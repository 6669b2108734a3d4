"""Thumbnails for the gallery and for search results: made once, cached beside the image.

A thumbnail is a JPEG (every browser and every assistant reads it) whose long
side is at most 384 px, stored as the ``.thumb.jpg`` sidecar of its image (local
disk, or the bucket on OSS), so the first viewer pays for it and nobody after.
A store that keeps no sidecars gets a fresh one each time.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from server.images import make_preview
from server.storage import StorageError

__all__ = ["THUMB_SUFFIX", "thumbnail"]

log = logging.getLogger("easel.thumbnails")

THUMB_SUFFIX = ".thumb.jpg"
THUMB_PX = 384
THUMB_BYTES = 48_000


async def thumbnail(storage: Any, image_id: str) -> bytes:
    """JPEG bytes of the image's thumbnail; ImageNotFound / StorageError as the store raises them."""
    read = getattr(storage, "read_sidecar", None)
    if read is not None:
        try:
            cached = await read(image_id, THUMB_SUFFIX)
        except StorageError:
            cached = None
        if cached:
            return cached
    data, _ = await storage.get(image_id)
    thumb, _ = await anyio.to_thread.run_sync(
        lambda: make_preview(data, max_px=THUMB_PX, max_bytes=THUMB_BYTES))
    write = getattr(storage, "write_sidecar", None)
    if write is not None:
        try:
            await write(image_id, THUMB_SUFFIX, thumb)
        except (StorageError, OSError) as exc:   # served anyway; made again next time
            log.warning("could not cache the thumbnail of %s (%s)", image_id, exc)
    return thumb
