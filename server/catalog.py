"""The catalog: a searchable SQLite index of every stored image, rebuilt from the store.

One file, ``<store dir>/.catalog.sqlite3`` (WAL, so the MCP server and ``easel-mcp
gallery`` can share it). It is never the only copy of anything: every row comes
from a metadata record the store keeps beside its image, and ``Catalog.sync``
brings the catalog in step with those records (new and changed records read,
vanished ones dropped). A missing, corrupt or older-schema file is simply rebuilt.

* Search: FTS5 over the user's prompt and the prompt as sent. SQLite's tokenizers
  do not split Chinese, so the words column holds text already segmented with
  jieba (``cut_for_search``) and joined by spaces; queries are segmented the same
  way. The last English word matches as a prefix ("lighthouse dus").
* Paging: each row's key is its created time in milliseconds followed by 20 bits
  of its hash, and is also its FTS rowid. Listing and word searches both walk an
  index newest first and stop after one page; the cursor is the last key, so a
  page costs the same at row 100 and at row 100,000 and new images never shift it.
* Keeping in step: ``CatalogedStorage`` wraps the store, so each put and delete
  updates the catalog at once; ``sync`` runs at start-up and then every
  ``EASEL_CATALOG_SYNC`` seconds for shared stores (OSS), so every replica finds
  images other replicas made. A month whose cheap signature (local: size of its
  append-only index and the directory's mtime) has not changed is not re-read.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import functools
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import anyio

from server.storage import ID_PATTERN, ImageNotFound, StorageError, StoredImage

__all__ = ["Catalog", "CatalogedStorage", "Filters", "Page", "segment"]

log = logging.getLogger("easel.catalog")

SCHEMA = 2
FILE_NAME = ".catalog.sqlite3"   # a dot-file: bookkeeping, like each month's .index
_READ_CONCURRENCY = 16
FRESH_SECONDS = 2.0      # shared stores: how old this month's listing may be when someone reads the catalog


class RecordSource(Protocol):
    """What a store offers the catalog (LocalStorage, OssStorage, FallbackStorage)."""

    async def record_months(self) -> dict[str, str | None]:
        """YYYYMM -> a cheap signature of that month's records (None: cannot tell; always re-list)."""

    async def record_versions(self, month: str) -> dict[str, str]:
        """image id -> version (changes when its record changes) for one month."""

    async def metadata(self, image_id: str) -> dict[str, Any]: ...


# ---------------------------------------------------------------------------- words


_jieba_lock = threading.Lock()
_jieba_ready = False
_WORD = re.compile(r"\w", re.UNICODE)
_ASCII_WORD = re.compile(r"^[a-z0-9]+$")
_ASCII_SPLIT = re.compile(r"[a-z0-9]+")
_ASCII_RUN = re.compile(r"([\x00-\x7f]+)")


def _cut(text: str) -> list[str]:
    """Words, lower-cased: ASCII runs split plainly (50x faster than jieba), the rest by jieba."""
    if text.isascii():
        return _ASCII_SPLIT.findall(text.lower())
    words: list[str] = []
    for run in _ASCII_RUN.split(text):
        words += _ASCII_SPLIT.findall(run.lower()) if run.isascii() else _jieba_cut(run)
    return words


def _jieba_cut(text: str) -> list[str]:
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return [w.strip().lower() for w in jieba.cut_for_search(text) if _WORD.search(w)]


def segment(text: str) -> str:
    """Text as space-separated words (Chinese segmented by jieba) for the FTS column."""
    return " ".join(_cut(text)) if text else ""


def fts_query(text: str) -> str | None:
    """A user's search words as an FTS5 query: every word must match, the last (ASCII) one as a prefix,
    as a search box does while one types ("lighthouse dus"). Whole words stream from the index newest
    first; a prefix has to merge every word it starts, so only one gets that cost."""
    words = list(dict.fromkeys(_cut(text)))[:32]
    if not words:
        return None
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    if _ASCII_WORD.match(words[-1]):
        quoted[-1] += "*"
    return " AND ".join(quoted)


# ---------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Filters:
    query: str | None = None           # full text over prompts
    model: str | None = None
    provider: str | None = None
    tool: str | None = None
    since: str | None = None           # ISO date or time, inclusive
    until: str | None = None           # ISO date or time, inclusive (a bare date covers the whole day)
    size: str | None = None            # semantic size (square, landscape...) or WIDTHxHEIGHT

    def describe(self) -> str:
        parts = [f"{k}={v!r}" for k, v in vars(self).items() if v]
        return ", ".join(parts) or "no filters"


@dataclass
class Page:
    records: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)   # catalog columns (cost, created...), same order


def estimated_cost(record: dict[str, Any]) -> float | None:
    """USD: the record's own figure when it has one, else the model's published price."""
    for key in ("cost_usd", "cost"):
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, dict) and isinstance(value.get("usd"), int | float):
            return float(value["usd"])
    model, provider = record.get("model"), record.get("provider")
    spec = _prices().get((model, provider)) if isinstance(model, str) and isinstance(provider, str) else None
    if spec is None or spec.price is None:
        return None
    if spec.price.per == "megapixel":
        pixels = int(record.get("width") or 0) * int(record.get("height") or 0)
        return round(spec.price.usd * pixels / 1e6, 4) if pixels else None
    return spec.price.usd


@functools.cache
def _prices() -> dict[tuple[str, str], Any]:
    """(model, provider) -> its spec, for prices; empty if the model catalog cannot load."""
    try:
        from providers import all_specs

        return {(s.name, s.provider): s for s in all_specs() if s.price is not None}
    except Exception:  # a catalog row must not depend on the model catalog loading
        return {}


def _row(record: dict[str, Any], version: str | None) -> tuple[Any, ...] | None:
    image_id = record.get("id")
    if not isinstance(image_id, str) or not ID_PATTERN.fullmatch(image_id):
        return None
    created = str(record.get("created") or "")
    ts = _timestamp(created)
    if ts is None or not 0 <= ts < 4e9:      # missing or absurd: the month in the id (the key must fit 63 bits)
        ts = float(calendar.timegm(time.strptime(image_id[:6] + "01", "%Y%m%d")))
        created = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    prompt, user_prompt = str(record.get("prompt") or ""), str(record.get("user_prompt") or "")
    words = segment(prompt if user_prompt in ("", prompt) else f"{user_prompt}\n{prompt}")
    return (image_id, created, ts, image_id[:6], _text(record.get("model")), _text(record.get("provider")),
            _text(record.get("tool")), _int(record.get("width")), _int(record.get("height")),
            _text(record.get("size")), _text(record.get("mime_type")), _int(record.get("bytes")),
            _int(record.get("seed")), estimated_cost(record),
            prompt, user_prompt, version, json.dumps(record, ensure_ascii=False), words)


def _text(value: Any) -> str | None:
    return str(value)[:200] if value not in (None, "") else None


def _int(value: Any) -> int | None:
    """An integer SQLite can hold (seeds can be 64-bit unsigned); None otherwise."""
    ok = isinstance(value, int) and not isinstance(value, bool) and -(2 ** 63) <= value < 2 ** 63
    return value if ok else None


def _timestamp(text: str) -> float | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


_COLUMNS = ("id, created, ts, month, model, provider, tool, width, height, size, mime_type, bytes, seed, cost, "
            "prompt, user_prompt, version, record")
_SIZES = {"square": (1.0, 1.0), "landscape": (1.2, 1.55), "portrait": (0.64, 0.84), "wide": (1.6, 2.5),
          "tall": (0.4, 0.63)}
_DIMENSIONS = re.compile(r"^(\d{1,5})x(\d{1,5})$")


# ---------------------------------------------------------------------------- the catalog


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


async def _read_records(source: RecordSource, ids: list[str]) -> list[dict[str, Any]]:
    batch = getattr(source, "read_records", None)     # local disk: one worker thread for all of them
    if batch is not None:
        wanted = set(ids)
        return [r for r in await batch(ids) if isinstance(r, dict) and r.get("id") in wanted]
    out: list[dict[str, Any]] = []
    limiter = anyio.Semaphore(_READ_CONCURRENCY)

    async def read(image_id: str) -> None:
        async with limiter:
            try:
                record = await source.metadata(image_id)
            except ImageNotFound:
                return                               # deleted since it was listed
            except StorageError as exc:
                log.warning("catalog: could not read the record of %s (%s)", image_id, exc)
                return
        if isinstance(record, dict) and record.get("id") == image_id:
            out.append(record)

    async with anyio.create_task_group() as tg:
        for image_id in ids:
            tg.start_soon(read, image_id)
    return out


def _bound(text: str, name: str, *, end: bool) -> float:
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        value += "T23:59:59.999+00:00" if end else "T00:00:00+00:00"
    ts = _timestamp(value)
    if ts is None:
        raise ValueError(f"{name}: {text[:40]!r} is not a date (YYYY-MM-DD) or ISO time.")
    return ts


def _key(ts: float, image_id: str) -> int:
    """The row key: milliseconds since 1970, then 20 bits of the content hash. Newest first is
    ``ORDER BY k DESC``, on the primary key itself and on the FTS rowid alike."""
    return (max(0, int(ts * 1000)) << 20) | int(image_id[7:12], 16)


def _encode_cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"c2|{key}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        tag, key = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        if tag == "c2" and key.isdigit() and len(key) <= 19:
            return int(key)
    except (ValueError, UnicodeDecodeError):
        pass
    raise StorageError("Invalid cursor: pass back the next_cursor of the previous page unchanged.")


# ---------------------------------------------------------------------------- the store, with its catalog


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
        stored = await self.store.put(data, mime_type, metadata)
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
