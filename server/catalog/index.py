"""The catalog itself: the SQLite file, its schema, upserts, searches and syncs with a store."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio

from server.catalog.records import (
    _COLUMNS,
    _DIMENSIONS,
    _SIZES,
    Filters,
    Page,
    RecordSource,
    _bound,
    _decode_cursor,
    _encode_cursor,
    _key,
    _read_records,
    _row,
)
from server.catalog.text import fts_query

log = logging.getLogger("easel.catalog")

SCHEMA = 2
FILE_NAME = ".catalog.sqlite3"   # a dot-file: bookkeeping, like each month's .index



class Catalog:
    """SQLite catalog; blocking methods end in ``_sync`` and run in worker threads from async code."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._removed: dict[str, float] = {}    # image id -> when its row was removed (monotonic)
        self._db = self._open()

    @classmethod
    def in_dir(cls, directory: Path) -> Catalog:
        return cls(Path(directory) / FILE_NAME)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = self._connect()
        except sqlite3.OperationalError:        # locked, disk full, read-only...: not the file's fault
            raise
        except sqlite3.DatabaseError as exc:   # corrupt: it is only an index; move it aside and rebuild
            log.warning("catalog %s is unreadable (%s); rebuilding it from the store", self.path, exc)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    Path(str(self.path) + suffix).replace(str(self.path) + suffix + ".broken")
            db = self._connect()
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA:
            db.executescript("""
                DROP TABLE IF EXISTS images; DROP TABLE IF EXISTS images_fts; DROP TABLE IF EXISTS sync_state;
                CREATE TABLE images (
                    k INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, created TEXT NOT NULL, ts REAL NOT NULL,
                    month TEXT NOT NULL, model TEXT, provider TEXT, tool TEXT, width INTEGER, height INTEGER,
                    size TEXT, mime_type TEXT, bytes INTEGER, seed INTEGER, cost REAL, prompt TEXT,
                    user_prompt TEXT, version TEXT, record TEXT NOT NULL);
                CREATE INDEX images_month ON images (month);
                CREATE INDEX images_model ON images (model);
                CREATE INDEX images_provider ON images (provider);
                CREATE INDEX images_tool ON images (tool);
                CREATE VIRTUAL TABLE images_fts USING fts5 (words, tokenize = 'unicode61 remove_diacritics 2');
                CREATE TABLE sync_state (month TEXT PRIMARY KEY, signature TEXT);
            """)
            db.execute(f"PRAGMA user_version={SCHEMA}")
        db.execute("SELECT count(*) FROM images").fetchone()   # proves the file is a readable database
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # writes --------------------------------------------------------------------------

    def upsert_sync(self, records: Iterable[tuple[dict[str, Any], str | None]], *,
                    unless_removed_since: float | None = None) -> int:
        """Add or replace rows. A sync passes when it started listing: an image deleted since then was
        listed but must not come back."""
        rows = [r for r in (_row(rec, ver) for rec, ver in records) if r is not None]
        with self._lock, self._transaction() as db:
            if unless_removed_since is not None:
                rows = [r for r in rows if self._removed.get(r[0], -1.0) < unless_removed_since]
            for row in rows:
                old = db.execute("SELECT k FROM images WHERE id = ?", (row[0],)).fetchone()
                if old is not None:
                    db.execute("DELETE FROM images_fts WHERE rowid = ?", (old[0],))
                    db.execute("DELETE FROM images WHERE k = ?", (old[0],))
                k = _key(row[2], row[0])
                while db.execute("SELECT 1 FROM images WHERE k = ?", (k,)).fetchone():   # same ms, same 20 bits
                    k -= 1
                db.execute(f"INSERT INTO images (k, {_COLUMNS}) VALUES (?, {', '.join('?' * 18)})", (k, *row[:-1]))
                db.execute("INSERT INTO images_fts (rowid, words) VALUES (?, ?)", (k, row[-1]))
        return len(rows)

    def remove_sync(self, image_ids: Iterable[str]) -> int:
        removed = 0
        now = time.monotonic()
        with self._lock, self._transaction() as db:
            if len(self._removed) > 10_000:
                self._removed.clear()
            for image_id in image_ids:
                self._removed[image_id] = now
                old = db.execute("SELECT k FROM images WHERE id = ?", (image_id,)).fetchone()
                if old is not None:
                    db.execute("DELETE FROM images_fts WHERE rowid = ?", (old[0],))
                    db.execute("DELETE FROM images WHERE k = ?", (old[0],))
                    removed += 1
        return removed

    @contextlib.contextmanager
    def _transaction(self):  # type: ignore[no-untyped-def]
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # reads ---------------------------------------------------------------------------

    def count_sync(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM images").fetchone()[0])

    def get_sync(self, image_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM images WHERE id = ?", (image_id,)).fetchone()
        return dict(row) if row is not None else None

    def search_sync(self, filters: Filters, limit: int, cursor: str | None = None, *,
                    with_total: bool = False) -> Page:
        """One page, newest first. The key ``k`` orders rows by time, and is also the FTS rowid, so a word
        search walks the full-text index newest first and stops after one page."""
        match = fts_query(filters.query) if filters.query else None
        if filters.query and match is None:
            return Page([], None, 0 if with_total else None, [])
        where, args = self._where(filters, fts=match is not None)
        after = _decode_cursor(cursor)
        page_where, page_args = list(where), list(args)
        if after is not None:
            page_where.append("i.k < ?")
            page_args.append(after)
        source, order = "images i", "i.k"
        if match is not None:
            order = "f.rowid"
            source = "images_fts f JOIN images i ON i.k = f.rowid"
            page_where.insert(0, "images_fts MATCH ?")
            page_args.insert(0, match)
            where.insert(0, "images_fts MATCH ?")
            args.insert(0, match)
        cols = ", ".join("i." + c.strip() for c in _COLUMNS.split(","))
        sql = (f"SELECT i.k AS k, {cols} FROM {source} " + (("WHERE " + " AND ".join(page_where)) if page_where else "")
               + f" ORDER BY {order} DESC LIMIT ?")
        with self._lock:
            rows = [dict(r) for r in self._db.execute(sql, [*page_args, limit + 1])]
            total = None
            if with_total:
                total = int(self._db.execute(f"SELECT count(*) FROM {source} " + (
                    ("WHERE " + " AND ".join(where)) if where else ""), args).fetchone()[0])
        more = len(rows) > limit
        rows = rows[:limit]
        keys = [r.pop("k") for r in rows]
        records = [json.loads(r.pop("record")) for r in rows]
        next_cursor = _encode_cursor(keys[-1]) if more and rows else None
        return Page(records, next_cursor, total, rows)

    def facets_sync(self) -> dict[str, list[str]]:
        """Distinct models, providers and tools, for the gallery's filter menus."""
        with self._lock:
            return {col: [r[0] for r in self._db.execute(
                f"SELECT DISTINCT {col} FROM images WHERE {col} IS NOT NULL ORDER BY {col}")]
                for col in ("model", "provider", "tool")}

    def older_than_sync(self, ts: float, limit: int = 500) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT id FROM images WHERE k < ? ORDER BY k LIMIT ?", (_key(ts, "0" * 12), limit))]

    @staticmethod
    def _where(f: Filters, *, fts: bool = False) -> tuple[list[str], list[Any]]:
        """Conditions on ``images i``. With a word search the FTS index drives the query (newest first),
        so column indexes are switched off (unary +): SQLite would otherwise start from one and probe
        the full-text index once per row."""
        where: list[str] = []
        args: list[Any] = []
        for col in ("model", "provider", "tool"):
            value = getattr(f, col)
            if value:
                where.append(f"{'+' if fts else ''}i.{col} = ? COLLATE NOCASE")
                args.append(value)
        if f.since:      # the key starts with the time: a range on k, which both indexes serve
            where.append("i.k >= ?")
            args.append(_key(_bound(f.since, "since", end=False), "0" * 12))
        if f.until:
            where.append("i.k <= ?")
            args.append(_key(_bound(f.until, "until", end=True), "0" * 7 + "fffff"))
        if f.size:
            size = f.size.strip().lower()
            dims = _DIMENSIONS.match(size)
            if dims:
                where.append("width = ? AND height = ?")
                args += [int(dims[1]), int(dims[2])]
            elif size in _SIZES:
                low, high = _SIZES[size]   # by shape, so images from every model and tool count
                where.append("((size = ?) OR (size IS NULL AND width > 0 AND height > 0 "
                             "AND CAST(width AS REAL) / height BETWEEN ? AND ?))")
                args += [size, low, high]
            else:
                raise ValueError(f"size: {f.size[:40]!r} is not one of {', '.join(_SIZES)} or WIDTHxHEIGHT "
                                 "(e.g. 1024x1024).")
        return where, args

    # keeping in step with the store -----------------------------------------------------

    async def sync(self, source: RecordSource, only: str | None = None) -> dict[str, int]:
        """Bring the catalog in step with the store's records (all months, or ``only`` one);
        returns counts (added, removed, months listed)."""
        started = time.monotonic()
        months = {only: None} if only else await source.record_months()
        known: dict[str, str | None] = await anyio.to_thread.run_sync(self._sync_state)
        added = removed = listed = 0
        for month in sorted(months, reverse=True):
            signature = months[month]
            if signature is not None and known.get(month) == signature:
                continue
            # rows first, listing second: a row added meanwhile (a put) is then never taken for gone
            have = await anyio.to_thread.run_sync(self._month_versions, month)
            versions = await source.record_versions(month)
            listed += 1
            stale = [i for i, v in versions.items() if have.get(i, "\0") != v]
            gone = [i for i in have if i not in versions]
            records = await _read_records(source, stale)
            upsert = functools.partial(self.upsert_sync, [(r, versions[r["id"]]) for r in records],
                                       unless_removed_since=started)
            added += await anyio.to_thread.run_sync(upsert)
            removed += await anyio.to_thread.run_sync(self.remove_sync, gone)
            await anyio.to_thread.run_sync(self._set_state, month, signature)
        vanished = [] if only else [m for m in await anyio.to_thread.run_sync(self._months) if m not in months]
        for month in vanished:
            ids = list(await anyio.to_thread.run_sync(self._month_versions, month))
            removed += await anyio.to_thread.run_sync(self.remove_sync, ids)
            await anyio.to_thread.run_sync(self._set_state, month, None)
        if added or removed:
            log.info("catalog: %d record(s) added or updated, %d removed", added, removed)
        return {"added": added, "removed": removed, "months_listed": listed}

    def _sync_state(self) -> dict[str, str | None]:
        with self._lock:
            return {r[0]: r[1] for r in self._db.execute("SELECT month, signature FROM sync_state")}

    def _set_state(self, month: str, signature: str | None) -> None:
        with self._lock:
            if signature is None:
                self._db.execute("DELETE FROM sync_state WHERE month = ?", (month,))
            else:
                self._db.execute("INSERT OR REPLACE INTO sync_state (month, signature) VALUES (?, ?)",
                                 (month, signature))

    def _month_versions(self, month: str) -> dict[str, str]:
        with self._lock:
            return {r[0]: r[1] or "" for r in self._db.execute(
                "SELECT id, version FROM images WHERE month = ?", (month,))}

    def _months(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT month FROM images")]
