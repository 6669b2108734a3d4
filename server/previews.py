"""Previews: the small JPEG an assistant can see, made in a worker thread while its image is stored.

An image's route runs one way (server.jobs): download -> check -> store + preview ->
result. This module is the "+ preview": it knows how to make one and keeps the ones a
call made; result shaping (server.results) only places them in the answer.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import IO, Any, cast

import anyio
from anyio.lowlevel import RunVar

from server.config import Settings
from server.images import make_preview
from server.storage import StoredImage

__all__ = ["Previews", "StreamingPreview"]

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


    def streaming(self) -> StreamingPreview | None:
        """A preview decoded from bytes as they arrive (None when previews are off)."""
        return StreamingPreview(self) if self.enabled else None

    def keep(self, image_id: str, made: tuple[bytes, str] | None) -> None:
        if made is not None:
            self.made[image_id] = made

    def _make(self, data: bytes | _Pipe) -> tuple[bytes, str] | None:
        try:
            src = data if isinstance(data, bytes) else cast(IO[bytes], data)   # a _Pipe is a binary file
            return make_preview(src, max_px=self._max_px, max_bytes=self._max_bytes)
        except _Aborted:
            return None
        except Exception as exc:  # e.g. a body cut short after its header: stored, but not decodable
            log.warning("no preview: the image could not be decoded (%s: %s)", type(exc).__name__, exc)
            return None


class StreamingPreview:
    """One image's preview, decoded in a worker thread while its bytes are still arriving.

    The thread runs the same ``make_preview`` as the whole-bytes path (so the same draft-mode
    JPEG decode and the same result) over a file that waits for more bytes instead of ending:
    the decoder consumes each block as it lands, and after the last byte only the last block's
    decode and the small JPEG encode remain. ``feed`` is called from the event loop and only
    appends; the thread never holds the loop. Await ``make`` once the header is accepted (so a
    refused file is never decoded); call ``end`` after the last byte, ``abort`` on failure: each
    unblocks the thread.
    """

    def __init__(self, previews: Previews) -> None:
        self._previews = previews
        self._pipe = _Pipe()

    def feed(self, chunk: bytes) -> None:
        self._pipe.feed(chunk)

    def end(self) -> None:
        self._pipe.close_input()

    def abort(self) -> None:
        self._pipe.close_input(aborted=True)

    async def make(self) -> tuple[bytes, str] | None:
        """The preview (None if it could not be made, or the download was aborted)."""
        try:
            return await anyio.to_thread.run_sync(self._previews._make, self._pipe, limiter=_decoders())
        finally:
            self._pipe.release()


class _Aborted(OSError):
    """The bytes stopped coming: the download failed or was cancelled."""


class _Pipe(io.RawIOBase):
    """A seekable file of bytes still arriving: a read past what has come waits for more (or the end).

    It holds what has arrived (as the whole-bytes path held the download); ``release`` drops it."""

    def __init__(self) -> None:
        super().__init__()
        self._buf = bytearray()
        self._pos = 0
        self._ended = False
        self._aborted = False
        self._released = False
        self._want = -1            # the length the reader waits for (-1: it is not waiting)
        self._cond = threading.Condition()

    def feed(self, chunk: bytes) -> None:
        with self._cond:
            if not self._released:
                self._buf += chunk
                if 0 <= self._want <= len(self._buf):   # wake the reader only once what it waits for is here
                    self._cond.notify()

    def close_input(self, *, aborted: bool = False) -> None:
        with self._cond:
            self._ended = True
            self._aborted = self._aborted or aborted
            self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._buf = bytearray()
            self._released = True

    def _wait_for(self, end: int | None) -> None:
        """Wait until byte ``end`` (None: the last byte) has arrived or no more will."""
        while not self._ended and (end is None or len(self._buf) < end):
            self._want = end if end is not None else 1 << 62   # to the end: only close_input wakes it
            self._cond.wait()
        self._want = -1
        if self._aborted:
            raise _Aborted("the download stopped")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        with self._cond:
            self._wait_for(None if size is None or size < 0 else self._pos + size)
            end = len(self._buf) if size is None or size < 0 else min(len(self._buf), self._pos + size)
            out = bytes(memoryview(self._buf)[self._pos:end])
            self._pos = max(self._pos, end)
            return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        with self._cond:
            if whence == io.SEEK_END:
                self._wait_for(None)
                self._pos = len(self._buf) + offset
            else:
                self._pos = (self._pos if whence == io.SEEK_CUR else 0) + offset
            return self._pos

    def tell(self) -> int:
        return self._pos


_DECODER_THREADS = 64
_limiter: RunVar[anyio.CapacityLimiter] = RunVar("easel_preview_decoders")


def _decoders() -> anyio.CapacityLimiter:
    """The streaming decoders' own thread limit (one per event loop, like anyio's default one). A decoder
    waits for its bytes most of the time: on the default limiter (shared with the stores' file
    writes) enough of them would starve the writes that keep their downloads moving."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(_DECODER_THREADS)
        _limiter.set(limiter)
        return limiter

