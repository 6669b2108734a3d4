"""A shared store that never loses an image: local disk catches what it cannot take.

``FallbackStorage(primary, local)`` writes to the primary store (OSS). When that
fails, after the primary's own bounded retries, the image goes to the local
store at once, the result says so (``stored_in="local"`` plus a note), and a
marker file ``<local root>/pending/<image id>`` (written atomically) records
that it still has to be uploaded. ``run_background`` uploads pending images
every ``retry_interval`` seconds once the primary answers again; it scans the
markers on its first round, so images kept during an earlier run are uploaded
after a restart too. After a late upload the local copy stays (cheap, and still
readable) and only the marker goes.

Reads try the primary first, then local; an image still pending is read from
local directly. Listing falls back to the local listing when the primary fails.
Nothing here knows which vendor the primary is.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import replace
from typing import Any, Protocol

import anyio

from server.storage import ID_PATTERN, ImageNotFound, Storage, StorageError, StoredImage, parse_image_id
from server.storage.local import LocalStorage, _atomic_write

__all__ = ["FallbackStorage", "Uploader"]

log = logging.getLogger("easel.storage")


class Uploader(Storage, Protocol):
    async def upload(self, image_id: str, data: bytes, mime_type: str, record: dict[str, Any]) -> StoredImage:
        """Store bytes under an id that already exists locally, with its complete metadata record."""

    # Also needed of the primary: the fallback deletes, keeps sidecars and syncs records through it.
    async def delete(self, image_id: str) -> None: ...

    async def read_sidecar(self, image_id: str, suffix: str) -> bytes | None: ...

    async def write_sidecar(self, image_id: str, suffix: str, data: bytes) -> None: ...

    async def record_months(self) -> dict[str, str | None]: ...

    async def record_versions(self, month: str) -> dict[str, str]: ...


class FallbackStorage:
    def __init__(self, primary: Uploader, local: LocalStorage, *, retry_interval: float = 30.0,
                 name: str = "OSS") -> None:
        self.primary = primary
        self.local = local
        self.kind = primary.kind
        self.name = name
        self.retry_interval = retry_interval
        self.pending_dir = local.root / "pending"
        self._flushing = False
        self._round_done: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"FallbackStorage({self.primary!r}, local={str(self.local.root)!r})"

    # writes -----------------------------------------------------------------------

    async def put(self, data: bytes, mime_type: str, metadata: dict[str, Any]) -> StoredImage:
        try:
            return await self.primary.put(data, mime_type, metadata)
        except StorageError as exc:
            reason = str(exc)
        except Exception as exc:  # a bug in the primary must not lose a paid-for image either
            log.exception("unexpected error storing in %s", self.name)
            reason = f"unexpected {type(exc).__name__}"
        log.warning("%s upload failed (%s); storing the image locally", self.name, reason)
        stored = await self.local.put(data, mime_type, metadata)   # StorageError here: nowhere left to go
        try:
            await anyio.to_thread.run_sync(self._mark, stored.image_id)
        except OSError as exc:
            log.error("could not record %s for a later upload (%s)", stored.image_id, exc.strerror or exc)
            return replace(stored, stored_in="local",
                           note=f"{self.name} upload failed ({reason}); stored locally only")
        return replace(stored, stored_in="local",
                       note=f"{self.name} upload failed ({reason}); stored locally, "
                            f"will upload when {self.name} answers")

    # reads ------------------------------------------------------------------------

    async def get(self, image_id: str) -> tuple[bytes, str]:
        return await self._read(image_id, "get")

    async def metadata(self, image_id: str) -> dict[str, Any]:
        return await self._read(image_id, "metadata")

    async def _read(self, image_id: str, op: str) -> Any:
        parse_image_id(image_id)                       # malformed ids never reach a backend
        if self.is_pending(image_id):
            with contextlib.suppress(ImageNotFound):
                return await getattr(self.local, op)(image_id)
        try:
            return await getattr(self.primary, op)(image_id)
        except ImageNotFound:
            return await getattr(self.local, op)(image_id)
        except StorageError as exc:
            try:
                return await getattr(self.local, op)(image_id)
            except ImageNotFound:
                raise exc from None

    async def list_recent(self, limit: int, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        try:
            return await self.primary.list_recent(limit, cursor)
        except StorageError as exc:
            try:
                result = await self.local.list_recent(limit, cursor)
            except StorageError:
                raise exc from None
            log.warning("%s listing failed (%s); listing local images instead", self.name, exc)
            return result

    async def delete(self, image_id: str) -> None:
        """Delete everywhere: the primary, the local copy, and the pending-upload marker."""
        parse_image_id(image_id)
        found = False
        for store in (self.primary, self.local):
            try:
                await store.delete(image_id)
                found = True
            except ImageNotFound:
                continue
        await anyio.to_thread.run_sync(self._unmark, image_id)
        if not found:
            raise ImageNotFound(f"No image {image_id}.")

    async def read_sidecar(self, image_id: str, suffix: str) -> bytes | None:
        store = self.local if self.is_pending(image_id) else self.primary
        try:
            return await store.read_sidecar(image_id, suffix)
        except StorageError:
            return await self.local.read_sidecar(image_id, suffix)

    async def write_sidecar(self, image_id: str, suffix: str, data: bytes) -> None:
        try:
            await (self.local if self.is_pending(image_id) else self.primary).write_sidecar(image_id, suffix, data)
        except StorageError:
            await self.local.write_sidecar(image_id, suffix, data)

    async def record_months(self) -> dict[str, str | None]:
        """The bucket's months plus those of images still waiting to be uploaded (never a signature)."""
        months = await self.primary.record_months()
        for image_id in await anyio.to_thread.run_sync(self.pending_ids):
            months.setdefault(image_id[:6], None)
        return {m: None for m in months}

    async def record_versions(self, month: str) -> dict[str, str]:
        """The bucket's records, plus local records of pending images (other local copies are stale)."""
        versions = await self.primary.record_versions(month)
        pending = [i for i in await anyio.to_thread.run_sync(self.pending_ids) if i.startswith(month)]
        if pending:
            local = await self.local.record_versions(month)
            versions.update({i: "local:" + local[i] for i in pending if i in local and i not in versions})
        return versions

    def url_for(self, image_id: str) -> str:
        return self.local.url_for(image_id) if self.is_pending(image_id) else self.primary.url_for(image_id)

    async def aclose(self) -> None:
        try:
            await self.primary.aclose()
        finally:
            await self.local.aclose()

    # pending uploads ----------------------------------------------------------------

    def is_pending(self, image_id: str) -> bool:
        return (self.pending_dir / image_id).is_file()

    def pending_ids(self) -> list[str]:
        try:
            names = os.listdir(self.pending_dir)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(n for n in names if ID_PATTERN.fullmatch(n))

    def _mark(self, image_id: str) -> None:
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.pending_dir / image_id, image_id.encode() + b"\n")

    def _unmark(self, image_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.pending_dir / image_id).unlink()

    async def flush_pending(self) -> int:
        """Upload pending images, oldest id first, until one fails; returns how many went up."""
        if self._flushing:              # another lifespan of this process is already at it
            return 0
        self._flushing = True
        try:
            ids = await anyio.to_thread.run_sync(self.pending_ids)
            uploaded = 0
            for image_id in ids:
                try:
                    data, mime = await self.local.get(image_id)
                    record = await self.local.metadata(image_id)
                except ImageNotFound:
                    log.warning("pending image %s is gone from local storage; forgetting it", image_id)
                    await anyio.to_thread.run_sync(self._unmark, image_id)
                    continue
                try:
                    await self.primary.upload(image_id, data, mime, record)
                except StorageError as exc:
                    log.info("%s still unavailable (%s); %d image(s) wait in local storage",
                             self.name, exc, len(ids) - uploaded)
                    break
                await anyio.to_thread.run_sync(self._unmark, image_id)
                uploaded += 1
                log.info("uploaded %s to %s (it had been stored locally)", image_id, self.name)
            return uploaded
        finally:
            self._flushing = False
            done, self._round_done = self._round_done, None
            if done is not None:
                done.set()

    async def wait_for_round(self) -> None:
        """Wait until the next upload round (``flush_pending``) has finished; for tests and tools."""
        if self._round_done is None:
            self._round_done = anyio.Event()
        await self._round_done.wait()

    async def run_background(self) -> None:
        """Upload pending images now and then every ``retry_interval`` seconds; runs until cancelled."""
        while True:
            try:
                await self.flush_pending()
            except Exception:  # a bug must not stop later rounds; the next one tries again
                log.exception("background upload round failed")
            await anyio.sleep(self.retry_interval)
