"""The store wrapped with its catalog: puts and deletes update it at once, listing reads it."""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import anyio

from server.catalog.index import Catalog
from server.catalog.records import Filters, Page
from server.storage import ImageNotFound, StorageError, StoredImage, Writer, open_writer

log = logging.getLogger("easel.catalog")

FRESH_SECONDS = 2.0      # shared stores: how old this month's listing may be when someone reads the catalog



class CatalogedStorage:
    """A store whose puts and deletes update the catalog at once, and whose listing reads it.

    Everything else (pending uploads, background work, links) is the wrapped store's.
    """

    def __init__(self, store: Any, catalog: Catalog, *, sync_interval: float | None = None,
                 retention_days: float | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.kind = store.kind
        self.sync_interval = sync_interval
        self.retention_days = retention_days
        self.synced = False              # the first sync (start-up) has run
        self._first_sync: anyio.Lock | None = None
        self._month_synced = 0.0

    def __getattr__(self, name: str) -> Any:   # only called for what this class does not define
        return getattr(self.store, name)

    def __repr__(self) -> str:
        return f"CatalogedStorage({self.store!r}, catalog={str(self.catalog.path)!r})"

    async def put(self, data: bytes, mime_type: str, metadata: dict[str, Any]) -> StoredImage:
        return await self.add(await self.store.put(data, mime_type, metadata))

    def open_writer(self) -> Writer:
        """The wrapped store's writer (server.storage.open_writer), its commit adding the catalog row."""
        return _CatalogedWriter(open_writer(self.store), self)

    async def add(self, stored: StoredImage) -> StoredImage:
        """Add a just-stored image's row."""
        try:
            await anyio.to_thread.run_sync(self.catalog.upsert_sync, [(stored.metadata, None)])
        except sqlite3.Error as exc:   # the image is stored; the next sync adds its row
            log.warning("catalog: could not add %s (%s); the next sync will", stored.image_id, exc)
        return stored

    async def get(self, image_id: str) -> tuple[bytes, str]:
        return await self.store.get(image_id)

    async def metadata(self, image_id: str) -> dict[str, Any]:
        return await self.store.metadata(image_id)

    def url_for(self, image_id: str) -> str:
        return self.store.url_for(image_id)

    async def delete(self, image_id: str) -> None:
        """Remove the image, its record, its thumbnail and its catalog row, wherever they are stored.
        A row whose image is already gone from the store goes too (and ImageNotFound says so)."""
        try:
            await self.store.delete(image_id)
        except ImageNotFound:
            await anyio.to_thread.run_sync(self.catalog.remove_sync, [image_id])
            raise
        await anyio.to_thread.run_sync(self.catalog.remove_sync, [image_id])

    async def list_recent(self, limit: int, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        page = await self.search(Filters(), limit, cursor)
        return page.records, page.next_cursor

    async def ensure_synced(self) -> None:
        """Make sure the first sync has run (readers call this; only one of them does the work)."""
        if self.synced:
            return
        if self._first_sync is None:
            self._first_sync = anyio.Lock()
        async with self._first_sync:
            if not self.synced:
                try:
                    await self.sync()
                except Exception:  # the catalog then shows what it had; the next round tries again
                    log.exception("catalog: first sync failed")
                self.synced = True

    async def fresh(self) -> None:
        """On a shared store, re-list this month's records if that was not done in the last seconds:
        images other replicas just made are then found at once (older months follow each sync round)."""
        await self.ensure_synced()
        now = time.monotonic()
        if not self.sync_interval or now - self._month_synced < FRESH_SECONDS:
            return
        self._month_synced = now
        try:
            await self.catalog.sync(self.store, only=datetime.now(UTC).strftime("%Y%m"))
        except StorageError as exc:
            log.warning("catalog: could not list this month's records (%s)", exc)

    async def search(self, filters: Filters, limit: int, cursor: str | None = None, *,
                     with_total: bool = False) -> Page:
        await self.fresh()
        return await anyio.to_thread.run_sync(
            lambda: self.catalog.search_sync(filters, limit, cursor, with_total=with_total))

    async def sync(self) -> dict[str, int]:
        return await self.catalog.sync(self.store)

    async def expire(self, now: float | None = None) -> int:
        """Delete images older than the retention setting; returns how many went."""
        if not self.retention_days:
            return 0
        cutoff = (now or time.time()) - self.retention_days * 86400
        deleted = 0
        while ids := await anyio.to_thread.run_sync(self.catalog.older_than_sync, cutoff):
            for image_id in ids:
                try:
                    await self.delete(image_id)
                except ImageNotFound:
                    continue                 # already gone from the store; its row went with this call
                except StorageError as exc:
                    log.warning("retention: could not delete %s (%s); will try again", image_id, exc)
                    return deleted
                deleted += 1
        if deleted:
            log.info("retention: deleted %d image(s) older than %g days", deleted, self.retention_days)
        return deleted

    async def run_background(self) -> None:
        """Start-up sync, then (shared stores) a sync every ``sync_interval`` seconds; retention too."""
        async with anyio.create_task_group() as tg:
            inner = getattr(self.store, "run_background", None)
            if inner is not None:
                tg.start_soon(inner)
            await self.ensure_synced()
            while True:
                try:
                    await self.expire()
                except Exception:  # a failed round must not stop later ones
                    log.exception("retention round failed; will try again")
                if not self.sync_interval and not self.retention_days:
                    return
                await anyio.sleep(self.sync_interval or 3600)
                try:
                    await self.sync()
                except Exception:
                    log.exception("catalog sync failed; will try again")

    async def aclose(self) -> None:
        try:
            await self.store.aclose()
        finally:
            await anyio.to_thread.run_sync(self.catalog.close)


class _CatalogedWriter:
    def __init__(self, inner: Writer, storage: CatalogedStorage) -> None:
        self._inner, self._storage = inner, storage
        self.write, self.abort = inner.write, inner.abort

    async def commit(self, tail: list[bytes], sha256: str, mime_type: str, metadata: dict[str, Any]) -> StoredImage:
        return await self._storage.add(await self._inner.commit(tail, sha256, mime_type, metadata))
