"""Where images live: the Storage protocol, image ids, and the backend factory.

An image id is derived from the content: ``YYYYMM-<32 hex of sha256>.<ext>``. It
maps to a storage key (``YYYYMM/<hash>.<ext>``) without any lookup, is URL-safe,
and is checked against a strict pattern before it touches a backend, so a client
can never name a path.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = [
    "ID_PATTERN", "ImageNotFound", "Storage", "StorageError", "StoredImage", "Writer",
    "image_key", "image_uri", "make_image_id", "open_writer", "parse_image_id",
]

EXT_BY_MIME = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
MIME_BY_EXT = {ext: mime for mime, ext in EXT_BY_MIME.items()}
ID_PATTERN = re.compile(r"^(?P<month>\d{6})-(?P<hash>[0-9a-f]{32})\.(?P<ext>png|jpg|webp|gif)$")
URI_PREFIX = "easel://images/"


class StorageError(Exception):
    """The store could not do what was asked; the message is safe to show."""


class ImageNotFound(StorageError):
    pass


def make_image_id(sha256_hex: str, mime_type: str, when: datetime | None = None) -> str:
    when = when or datetime.now(UTC)
    return f"{when:%Y%m}-{sha256_hex[:32]}.{EXT_BY_MIME[mime_type]}"


def parse_image_id(image_id: str) -> re.Match[str]:
    match = ID_PATTERN.fullmatch(image_id) if isinstance(image_id, str) and len(image_id) < 64 else None
    if match is None:
        example = f"{datetime.now(UTC):%Y%m}-<32 hex>.png"   # this month's form, never a stale one
        raise ImageNotFound(f"No image {image_id[:80]!r}: ids look like {example}.")
    return match


def image_key(image_id: str) -> str:
    """The backend key for an id (validated): ``YYYYMM/<hash>.<ext>``."""
    m = parse_image_id(image_id)
    return f"{m['month']}/{m['hash']}.{m['ext']}"


def image_uri(image_id: str) -> str:
    return URI_PREFIX + image_id


def mime_of(image_id: str) -> str:
    return MIME_BY_EXT[parse_image_id(image_id)["ext"]]


@dataclass(frozen=True, slots=True)
class StoredImage:
    image_id: str
    mime_type: str
    size: int
    sha256: str
    metadata: dict[str, Any]
    url: str
    stored_in: str               # "local" or "oss"
    deduplicated: bool = False
    note: str | None = None      # e.g. "OSS failed; kept locally, will upload later"

    @property
    def uri(self) -> str:
        return image_uri(self.image_id)


class Storage(Protocol):
    """What the server needs from a store. Implementations: local.LocalStorage, oss.OssStorage."""

    kind: str

    async def put(self, data: bytes, mime_type: str, metadata: dict[str, Any]) -> StoredImage:
        """Store bytes (atomically, deduplicated by content) and their metadata record."""

    async def get(self, image_id: str) -> tuple[bytes, str]:
        """Bytes and mime type; ImageNotFound for malformed or unknown ids."""

    async def metadata(self, image_id: str) -> dict[str, Any]: ...

    async def list_recent(self, limit: int, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """Metadata records, newest first, and the cursor of the next page (None at the end)."""

    def url_for(self, image_id: str) -> str:
        """A link a person can open."""

    async def aclose(self) -> None: ...


class Writer(Protocol):
    """An image stored as its bytes arrive (server.ingest): ``write`` chunks (blocking: from a worker
    thread), then ``commit`` the last ones (``tail``) with the whole file's hash, type and metadata
    (as ``put``), or ``abort``. Nothing of it is visible before ``commit``, and nothing is left after
    ``abort``."""

    def write(self, chunk: bytes) -> None: ...

    async def commit(self, tail: list[bytes], sha256: str, mime_type: str, metadata: dict[str, Any]) -> StoredImage:
        ...

    def abort(self) -> None: ...


def open_writer(storage: Storage) -> Writer:
    """The store's own writer (``storage.open_writer()``: local disk writes a temporary file as the bytes
    come), else one that holds the bytes and gives them to ``put`` at the end (OSS uploads one object)."""
    opener = getattr(storage, "open_writer", None)
    return opener() if opener is not None else _Buffered(storage)


class _Buffered:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._body = io.BytesIO()

    def write(self, chunk: bytes) -> None:
        self._body.write(chunk)

    async def commit(self, tail: list[bytes], sha256: str, mime_type: str, metadata: dict[str, Any]) -> StoredImage:
        for chunk in tail:
            self._body.write(chunk)
        return await self._storage.put(self._body.getvalue(), mime_type, metadata)

    def abort(self) -> None:
        self._body = io.BytesIO()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
