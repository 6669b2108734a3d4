"""Catalog rows: filters and pages, a record's row and estimated cost, row keys and cursors,
and reading records from a store."""

from __future__ import annotations

import base64
import calendar
import functools
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio

from server.catalog.text import segment
from server.storage import ID_PATTERN, ImageNotFound, StorageError

log = logging.getLogger("easel.catalog")

_READ_CONCURRENCY = 16


class RecordSource(Protocol):
    """What a store offers the catalog (LocalStorage, OssStorage, FallbackStorage)."""

    async def record_months(self) -> dict[str, str | None]:
        """YYYYMM -> a cheap signature of that month's records (None: cannot tell; always re-list)."""

    async def record_versions(self, month: str) -> dict[str, str]:
        """image id -> version (changes when its record changes) for one month."""

    async def metadata(self, image_id: str) -> dict[str, Any]: ...


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
        return round(spec.price.usd(megapixels=pixels / 1e6), 4) if pixels else None
    return spec.price.usd()


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
