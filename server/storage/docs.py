"""Small shared documents kept in the store: job records, the spend ledger.

Replicas share them because they live where the images live: under ``state/`` in the local
store directory, or under ``<base path>/state/`` in the OSS bucket. Neither backend offers
compare-and-swap on replace, so the one exclusive operation is ``create`` (create-if-absent):
locally a hard link of a complete temporary file (atomic, fails if the name exists), on OSS a
PUT with ``x-oss-forbid-overwrite: true`` (409 FileAlreadyExists when the key exists). Build
claims and bookings from it: one document per claim epoch or per booking.

Keys are ``/``-separated segments of ``[A-Za-z0-9._-]`` (no ``..``, no empty segment); a bad
key is a ``StorageError``, as is any failure to read or write.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from server.storage import StorageError
from server.storage.local import _fsync_dir

if TYPE_CHECKING:
    from server.storage.oss import OssStorage

__all__ = ["DocStore", "LocalDocs", "OssDocs", "docs_for", "check_key"]

_SEGMENT = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
STATE_DIR = "state"


def check_key(key: str) -> str:
    """The key itself when it is well formed; StorageError otherwise."""
    parts = key.split("/")
    if len(key) > 512 or not all(_SEGMENT.match(p) and p not in (".", "..") for p in parts):
        raise StorageError(f"invalid state document key {key[:60]!r}")
    return key


class DocStore(Protocol):
    """What job records and the spend ledger need from the store."""

    kind: str

    async def read(self, key: str) -> bytes | None:
        """The document, or None when there is none."""

    async def write(self, key: str, data: bytes, *, durable: bool = True) -> None:
        """Replace the document atomically (readers see the old or the new one, never a part). ``durable``
        False: it survives the process, not necessarily a power cut (locally: no fsync)."""

    async def write_many(self, docs: dict[str, bytes], *, durable: bool = True) -> None:
        """``write`` each document, in order (locally in one worker-thread call)."""

    async def create(self, key: str, data: bytes) -> bool:
        """Create the document only if it does not exist; False when it already does."""

    async def list(self, prefix: str) -> list[str]:
        """Every key that starts with ``prefix``, sorted."""

    async def delete(self, key: str) -> None:
        """Remove the document; no error when it is not there."""

    async def delete_many(self, keys: Sequence[str]) -> None:
        """``delete`` each document, in order (locally in one worker-thread call)."""


class LocalDocs:
    """Documents as files under ``<root>``; writes are temporary file + fsync + rename (+ the directory's fsync)."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def read(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return await anyio.Path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"Could not read {key}: {exc.strerror or exc}.") from None

    async def write(self, key: str, data: bytes, *, durable: bool = True) -> None:
        await self.write_many({key: data}, durable=durable)

    async def write_many(self, docs: dict[str, bytes], *, durable: bool = True) -> None:
        paths = [(self._path(key), data) for key, data in docs.items()]

        def settle_all() -> None:
            for path, data in paths:
                self._settle(path, data, exclusive=False, durable=durable)
            if durable:   # a rename survives a power cut only once its directory is flushed
                for directory in dict.fromkeys(path.parent for path, _ in paths):
                    try:
                        _fsync_dir(directory)
                    except OSError as exc:
                        raise StorageError(f"Could not write {directory.relative_to(self.root)}: "
                                           f"{exc.strerror or exc}.") from None
        await anyio.to_thread.run_sync(settle_all)

    async def create(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        return await anyio.to_thread.run_sync(self._settle, path, data, True)

    def _settle(self, path: Path, data: bytes, exclusive: bool, durable: bool = True) -> bool:
        """Write a complete temporary file, then rename it into place (or, exclusive, hard-link it:
        link fails when the name exists, so only one creator wins and no one sees a partial file)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    if durable:
                        fh.flush()
                        os.fsync(fh.fileno())
                if not exclusive:
                    os.replace(tmp, path)
                    return True
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
                return True
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        except OSError as exc:
            raise StorageError(f"Could not write {path.relative_to(self.root)}: {exc.strerror or exc}.") from None

    async def list(self, prefix: str) -> list[str]:
        def walk() -> list[str]:
            if not self.root.is_dir():
                return []
            # start from the deepest directory the prefix names, then filter by the full prefix
            base = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
            out = []
            for dirpath, _dirs, files in os.walk(base):
                rel = Path(dirpath).relative_to(self.root).as_posix()
                for name in files:
                    if name.startswith(".tmp-"):
                        continue
                    key = name if rel == "." else f"{rel}/{name}"
                    if key.startswith(prefix):
                        out.append(key)
            return sorted(out)
        try:
            return await anyio.to_thread.run_sync(walk)
        except OSError as exc:
            raise StorageError(f"Could not list {prefix}: {exc.strerror or exc}.") from None

    async def delete(self, key: str) -> None:
        await self.delete_many([key])

    async def delete_many(self, keys: Sequence[str]) -> None:
        paths = [(key, self._path(key)) for key in keys]

        def unlink_all() -> None:
            for key, path in paths:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    raise StorageError(f"Could not delete {key}: {exc.strerror or exc}.") from None
        await anyio.to_thread.run_sync(unlink_all)


class OssDocs:
    """Documents as objects under ``<base path>/state/`` in the bucket, through the OSS store's
    own client, deadlines and retry policy."""

    kind = "oss"

    def __init__(self, oss: OssStorage) -> None:
        self._oss = oss
        self._prefix = f"{oss.base_path}/{STATE_DIR}/" if oss.base_path else f"{STATE_DIR}/"

    def _key(self, key: str) -> str:
        return self._prefix + check_key(key)

    async def read(self, key: str) -> bytes | None:
        from server.storage import ImageNotFound
        try:
            return await self._oss._call("read", self._oss._read_sync, self._key(key))
        except ImageNotFound:          # the OSS store's name for NoSuchKey
            return None

    async def write(self, key: str, data: bytes, *, durable: bool = True) -> None:
        await self._oss._call("write", self._oss._bucket.put_object, self._key(key), data)   # stored once acknowledged

    async def write_many(self, docs: dict[str, bytes], *, durable: bool = True) -> None:
        for key, data in docs.items():
            await self.write(key, data)

    async def create(self, key: str, data: bytes) -> bool:
        import oss2.exceptions as oe

        def put() -> bool:
            try:
                self._oss._bucket.put_object(self._key(key), data, headers={"x-oss-forbid-overwrite": "true"})
            except oe.ServerError as exc:
                if exc.status == 409 and exc.code == "FileAlreadyExists":
                    return False
                raise
            return True
        return await self._oss._call("write", put)

    async def list(self, prefix: str) -> list[str]:
        full = self._prefix + prefix
        out: list[str] = []
        token = ""
        while True:
            result: Any = await self._oss._call("list", self._oss._bucket.list_objects_v2, prefix=full,
                                                continuation_token=token, max_keys=1000)
            out += [obj.key[len(self._prefix):] for obj in result.object_list]
            if not result.is_truncated or not result.next_continuation_token:
                return sorted(out)
            token = result.next_continuation_token

    async def delete(self, key: str) -> None:
        await self._oss._call("delete", self._oss._bucket.delete_object, self._key(key))

    async def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            await self.delete(key)


def docs_for(store: Any, fallback_dir: Path) -> DocStore:
    """The document store beside ``store``: in its bucket when the images go to OSS (through the
    fallback wrapper too: shared state must stay shared, so it never falls back to local disk),
    else in its directory (``fallback_dir`` when the store has none)."""
    from server.storage.local import LocalStorage

    inner = getattr(store, "store", store)        # the catalog wrapper
    inner = getattr(inner, "primary", inner)      # the OSS-with-fallback wrapper
    if getattr(inner, "kind", None) == "oss" and hasattr(inner, "_bucket"):
        return OssDocs(inner)
    root = inner.root if isinstance(inner, LocalStorage) else fallback_dir
    return LocalDocs(Path(root) / STATE_DIR)
