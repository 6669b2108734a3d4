"""An image stored as it downloads: hashed, written and decoded for its preview while the bytes arrive.

The whole-bytes path (``server.jobs.store_image``) waits for the last byte, then checks, hashes,
writes and decodes. Here each chunk of a provider's ``OutputStream`` goes, as it arrives, to

* the header probe (``server.images.HeaderProbe``): the type and pixel size are checked as soon
  as the header is in, and a file that is not a usable image is refused there;
* sha256 and the store's writer (``LocalStorage.open_writer``: a temporary file in the month's
  directory; other stores are buffered in memory and given to ``put`` at the end: OSS uploads
  one object, so it needs the bytes, and its fallback to local disk keeps working unchanged);
* the preview decoder (``server.previews.StreamingPreview``), started once the header is accepted.

After the last byte only the fsync, the rename, the record and the preview's encode remain.
Nothing half-written is visible: a download that fails part-way aborts the writer (the
temporary file is removed) and the decoder; the provider's retry then starts from nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

from providers.types import OutputStream
from server.images import HeaderProbe
from server.previews import Previews
from server.storage import Storage, StoredImage, open_writer

__all__ = ["SizedFields", "ingest"]

#: ``sized(width, height)``: the metadata that depends on an image's pixel size (its cost at a per-megapixel
#: price), added once the header says the size.
SizedFields = Callable[[int, int], dict[str, Any]]

#: Bytes gathered before they are hashed and written in one worker-thread call.
_FLUSH = 256 * 1024


async def ingest(stream: OutputStream, metadata: dict[str, Any], storage: Storage, *, max_pixels: int,
                 previews: Previews | None, sized: SizedFields | None = None) -> StoredImage:
    """Download ``stream`` into ``storage`` (with ``metadata`` plus width and height, and ``sized``'s fields)
    and make its preview on the way. Raises InvalidImage for what is not a usable image, StorageError when the store
    fails, and the provider's errors when the download does."""

    async def consume(chunks: AsyncIterator[bytes], content_type: str | None) -> StoredImage:
        return await _Attempt(storage, max_pixels, previews, sized).run(chunks, metadata)

    stored: StoredImage = await stream(consume)
    return stored


class _Attempt:
    """One try at the download: everything it starts is its own, and undone if it fails."""

    def __init__(self, storage: Storage, max_pixels: int, previews: Previews | None,
                 sized: SizedFields | None) -> None:
        self.sized = sized
        self.writer = open_writer(storage)
        self.probe = HeaderProbe(max_pixels=max_pixels)
        self.previews = previews
        self.preview = previews.streaming() if previews is not None else None
        self.sha = hashlib.sha256()
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.made: tuple[bytes, str] | None = None

    async def run(self, chunks: AsyncIterator[bytes], metadata: dict[str, Any]) -> StoredImage:
        failed: BaseException | None = None
        stored: StoredImage | None = None
        async with anyio.create_task_group() as tg:
            try:
                stored = await self._store(chunks, metadata, tg)
            except BaseException as exc:   # re-raised below as it is, not inside an ExceptionGroup
                failed = exc
                if self.preview is not None:
                    self.preview.abort()   # unblocks its thread: the task group waits for it
                self.writer.abort()        # a close and an unlink: no worker thread, even when cancelled
        if failed is not None:
            raise failed
        assert stored is not None
        if self.previews is not None:
            self.previews.keep(stored.image_id, self.made)
        return stored

    async def _store(self, chunks: AsyncIterator[bytes], metadata: dict[str, Any],
                     tg: anyio.abc.TaskGroup) -> StoredImage:
        started = False
        async for chunk in chunks:
            info = self.probe.feed(chunk)          # InvalidImage as soon as the header says so
            if self.preview is not None:
                self.preview.feed(chunk)
                if info is not None and not started:
                    started = True
                    tg.start_soon(self._make_preview)
            self.pending.append(chunk)
            self.pending_bytes += len(chunk)
            if self.pending_bytes >= _FLUSH:
                await anyio.to_thread.run_sync(self._flush)
        info = self.probe.finish()
        if self.preview is not None:
            self.preview.end()
            if not started:
                tg.start_soon(self._make_preview)
        for chunk in self.pending:      # under _FLUSH bytes: hashed here, written with the commit (one thread hop)
            self.sha.update(chunk)
        return await self.writer.commit(self.pending, self.sha.hexdigest(), info.mime_type,
                                        {"width": info.width, "height": info.height, **metadata,
                                         **(self.sized(info.width, info.height) if self.sized else {})})

    def _flush(self) -> None:
        for chunk in self.pending:
            self.sha.update(chunk)
            self.writer.write(chunk)
        self.pending, self.pending_bytes = [], 0

    async def _make_preview(self) -> None:
        assert self.preview is not None
        self.made = await self.preview.make()
