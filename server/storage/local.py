"""Local disk storage: the default, no set-up.

Layout under the root: ``YYYYMM/<hash>.<ext>`` plus ``YYYYMM/<hash>.<ext>.json``
for the metadata. Every write goes to a temporary file in the same directory,
is fsynced, then renamed into place, so no half-written file is ever visible;
then the directory is fsynced, so that the renames survive a power cut too.
The image is written before its metadata, and a failed metadata write removes
an image it had just added: no orphans either way. Blocking file work runs in
worker threads.

Listing newest first reads ``YYYYMM/.index``, an append-only list of ids that
``put`` extends (one ``O_APPEND`` write per line, so several processes can share
a store), instead of stat-ing every record; a month without an index (a store
written by an older version) is scanned and sorted by modification time.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, BinaryIO

import anyio

from server.storage import (
    ID_PATTERN,
    ImageNotFound,
    StorageError,
    StoredImage,
    image_key,
    image_uri,
    make_image_id,
    mime_of,
    now_iso,
)

__all__ = ["LocalStorage", "LocalWriter"]


class LocalStorage:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def check_writable(self) -> None:
        """Create the root and prove it is writable; StorageError says what to do otherwise."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
                pass
        except OSError as exc:
            raise StorageError(
                f"Image storage directory {self.root} is not writable ({exc.strerror or exc}). "
                "Set EASEL_STORAGE_DIR to a directory this user can write.") from None

    def path_of(self, image_id: str) -> Path:
        return self.root / image_key(image_id)

    def url_for(self, image_id: str) -> str:
        return self.path_of(image_id).resolve().as_uri()

    async def put(self, data: bytes, mime_type: str, metadata: dict[str, Any]) -> StoredImage:
        return await anyio.to_thread.run_sync(self.put_sync, data, mime_type, metadata)

    def put_sync(self, data: bytes, mime_type: str, metadata: dict[str, Any],
                 sha256: str | None = None) -> StoredImage:
        sha256 = sha256 or hashlib.sha256(data).hexdigest()
        return self._place(sha256, mime_type, len(data), metadata, lambda path: _atomic_write(path, data))

    def open_writer(self) -> LocalWriter:
        """A file for an image whose bytes are still arriving, in this month's directory; see LocalWriter."""
        return LocalWriter(self)

    def _place(self, sha256: str, mime_type: str, size: int, metadata: dict[str, Any],
               write_image: Callable[[Path], None]) -> StoredImage:
        """Put the image in place (``write_image(path)``, atomic) unless it is there already, then its record."""
        image_id = make_image_id(sha256, mime_type)
        path = self.path_of(image_id)
        meta_path = path.with_name(path.name + ".json")
        record = {"id": image_id, "uri": image_uri(image_id), "mime_type": mime_type, "bytes": size,
                  "sha256": sha256, "created": now_iso(), **metadata}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if meta_path.exists() and path.exists():
                existing = json.loads(meta_path.read_text("utf-8"))
                return StoredImage(image_id, mime_type, size, sha256, existing, self.url_for(image_id),
                                   self.kind, deduplicated=True)
            created_image = not path.exists()
            if created_image:
                write_image(path)
            try:
                _atomic_write(meta_path, json.dumps(record, ensure_ascii=False, indent=1).encode())
            except BaseException:
                if created_image:
                    with contextlib.suppress(OSError):
                        path.unlink()
                raise
            _fsync_dir(path.parent)   # the two renames themselves survive a power cut: the image is stored
            _append_index(path.parent, image_id)
        except OSError as exc:
            raise _not_stored(self.root, exc) from None
        return StoredImage(image_id, mime_type, size, sha256, record, self.url_for(image_id), self.kind)

    async def get(self, image_id: str) -> tuple[bytes, str]:
        path = self.path_of(image_id)
        try:
            data = await anyio.Path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise ImageNotFound(f"No image {image_id}.") from None
        return data, mime_of(image_id)

    async def metadata(self, image_id: str) -> dict[str, Any]:
        path = self.path_of(image_id)
        try:
            return json.loads(await anyio.Path(path.with_name(path.name + ".json")).read_text("utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            raise ImageNotFound(f"No image {image_id}.") from None

    async def list_recent(self, limit: int, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        return await anyio.to_thread.run_sync(self._list_sync, limit, cursor)

    def _list_sync(self, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        offset = _decode_cursor(cursor)
        records: list[dict[str, Any]] = []
        skipped = 0
        if not self.root.is_dir():
            return [], None
        months = sorted((d for d in os.scandir(self.root) if d.is_dir() and d.name.isdigit()),
                        key=lambda d: d.name, reverse=True)
        for month in months:
            names = _newest_first(Path(month.path))
            if skipped + len(names) <= offset:
                skipped += len(names)
                continue
            for name in names:
                if skipped < offset:
                    skipped += 1
                    continue
                if len(records) == limit:
                    return records, _encode_cursor(offset + limit)
                try:
                    with open(os.path.join(month.path, name), encoding="utf-8") as fh:
                        records.append(json.load(fh))
                except (OSError, ValueError):
                    continue
        return records, None

    async def delete(self, image_id: str) -> None:
        """Remove the image, its record and its sidecars (thumbnail); ImageNotFound if none was there."""
        await anyio.to_thread.run_sync(self._delete_sync, image_id)

    def _delete_sync(self, image_id: str) -> None:
        path = self.path_of(image_id)
        found = False
        # the record first: without it, listing and the catalog no longer see the image
        for victim in (path.with_name(path.name + ".json"), path,
                       *path.parent.glob(glob_escape(path.name) + ".*")):
            try:
                victim.unlink()
                found = True
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError(f"Could not delete {image_id}: {exc.strerror or exc}.") from None
        if not found:
            raise ImageNotFound(f"No image {image_id}.")

    def sidecar_path(self, image_id: str, suffix: str) -> Path:
        path = self.path_of(image_id)
        return path.with_name(path.name + suffix)

    async def read_sidecar(self, image_id: str, suffix: str) -> bytes | None:
        """A small derived file kept beside the image (e.g. ``.thumb.jpg``); None if not made yet."""
        try:
            return await anyio.Path(self.sidecar_path(image_id, suffix)).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    async def write_sidecar(self, image_id: str, suffix: str, data: bytes) -> None:
        path = self.sidecar_path(image_id, suffix)
        if path.parent.is_dir():
            await anyio.to_thread.run_sync(_atomic_write, path, data)

    async def record_months(self) -> dict[str, str | None]:
        """YYYYMM -> signature (index size and directory mtime): unchanged means no record came or went."""
        def months() -> dict[str, str | None]:
            out: dict[str, str | None] = {}
            if not self.root.is_dir():
                return out
            for d in os.scandir(self.root):
                if d.is_dir() and len(d.name) == 6 and d.name.isdigit():
                    try:
                        index = os.stat(os.path.join(d.path, INDEX)).st_size
                    except OSError:
                        index = -1
                    out[d.name] = f"{index}:{d.stat().st_mtime_ns}"
            return out
        return await anyio.to_thread.run_sync(months)

    async def record_versions(self, month: str) -> dict[str, str]:
        """image id -> mtime of its record, for one month."""
        def versions() -> dict[str, str]:
            out: dict[str, str] = {}
            try:
                entries = list(os.scandir(self.root / month))
            except (FileNotFoundError, NotADirectoryError):
                return out
            for e in entries:
                if e.name.endswith(".json") and not e.name.startswith("."):
                    image_id = f"{month}-{e.name[:-5]}"
                    if ID_PATTERN.fullmatch(image_id):
                        with contextlib.suppress(OSError):
                            out[image_id] = str(e.stat().st_mtime_ns)
            return out
        return await anyio.to_thread.run_sync(versions)

    async def read_records(self, image_ids: list[str]) -> list[dict[str, Any]]:
        """Many metadata records in one worker thread (the catalog's rebuild); missing ones are skipped."""
        def read() -> list[dict[str, Any]]:
            out = []
            for image_id in image_ids:
                path = self.path_of(image_id)
                try:
                    with open(path.with_name(path.name + ".json"), encoding="utf-8") as fh:
                        out.append(json.load(fh))
                except (OSError, ValueError):
                    continue
            return out
        return await anyio.to_thread.run_sync(read)

    async def aclose(self) -> None:
        return None


INDEX = ".index"


class LocalWriter:
    """An image written as its bytes arrive: a temporary file (``.tmp-*``, never listed) in the month's
    directory, fsynced and renamed to its content-addressed name by ``commit`` (then its record,
    as ``put``); ``abort`` removes it. Nothing is visible before ``commit``. ``write`` and the
    ``*_sync`` methods block: call them from a worker thread."""

    def __init__(self, storage: LocalStorage) -> None:
        self._storage = storage
        self._file: BinaryIO | None = None
        self._tmp: str | None = None
        self.size = 0

    def write(self, chunk: bytes) -> None:
        try:
            if self._file is None:
                month = self._storage.root / f"{datetime.now(UTC):%Y%m}"
                month.mkdir(parents=True, exist_ok=True)
                _sweep_stale_once(month)
                fd, self._tmp = tempfile.mkstemp(dir=month, prefix=".tmp-")
                self._file = os.fdopen(fd, "wb")
            self._file.write(chunk)
        except OSError as exc:
            raise _not_stored(self._storage.root, exc) from None
        self.size += len(chunk)

    async def commit(self, tail: list[bytes], sha256: str, mime_type: str, metadata: dict[str, Any]) -> StoredImage:
        return await anyio.to_thread.run_sync(self.commit_sync, tail, sha256, mime_type, metadata)

    def commit_sync(self, tail: list[bytes], sha256: str, mime_type: str, metadata: dict[str, Any]) -> StoredImage:
        try:
            for chunk in tail or [b""]:
                self.write(chunk)
            assert self._file is not None and self._tmp is not None
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
            except OSError as exc:
                raise _not_stored(self._storage.root, exc) from None
            return self._storage._place(sha256, mime_type, self.size, metadata, self._rename_to)
        finally:
            self.abort()   # the temporary file, when it was not renamed (a duplicate, or a failure)

    def _rename_to(self, path: Path) -> None:
        assert self._tmp is not None
        os.replace(self._tmp, path)
        self._tmp = None

    def abort(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = None


#: A temporary file untouched this long (seconds) was left by a process that died mid-download: every
#: 256 KiB written refreshes a live one's time (and a download's reads time out after 30 s at most).
STALE_TMP = 3600.0
_swept: set[Path] = set()   # month directories this process has swept


def _sweep_stale_once(month: Path) -> None:
    """Remove the ``.tmp-*`` files a killed process left in ``month`` (once per directory and process): a
    streamed image's temporary file lives as long as its download, so a crash or a restart mid-download
    would otherwise leave it on disk forever (never listed, but taking space)."""
    if month in _swept:
        return
    _swept.add(month)
    cutoff = time.time() - STALE_TMP
    with contextlib.suppress(OSError), os.scandir(month) as entries:
        for entry in entries:
            if entry.name.startswith(".tmp-"):
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)


def _fsync_dir(directory: Path) -> None:
    """Flush a directory's entries: a rename is durable only once its directory is (one call covers the
    image's and its record's renames, which share the month's directory)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _not_stored(root: Path, exc: OSError) -> StorageError:
    return StorageError(f"Could not store the image in {root}: {exc.strerror or exc}.")


def _append_index(month_dir: Path, image_id: str) -> None:
    """One O_APPEND write per id: whole lines, safe with several writers on a local filesystem."""
    fd = os.open(month_dir / INDEX, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{image_id}\n".encode())
    finally:
        os.close(fd)


def _newest_first(month_dir: Path) -> list[str]:
    """Metadata file names of a month, newest first: from the index, else by modification time."""
    try:
        lines = (month_dir / INDEX).read_text("ascii").split()
    except (OSError, ValueError):
        entries = [e for e in os.scandir(month_dir) if e.name.endswith(".json") and not e.name.startswith(".")]
        entries.sort(key=lambda e: (e.stat().st_mtime_ns, e.name), reverse=True)
        return [e.name for e in entries]
    seen: set[str] = set()
    names = []
    for image_id in reversed(lines):
        if image_id not in seen and ID_PATTERN.fullmatch(image_id):
            seen.add(image_id)
            names.append(image_id.split("-", 1)[1] + ".json")
    return names


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind == "o" and value.isdigit():
            return int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise StorageError("Invalid cursor.")
