"""Aliyun OSS storage (oss2), for deployments where several processes share images.

Layout, as in the seeds: ``<OSS_BASE_PATH>/<YYYYMM>/<hash>.<ext>`` for the image
and ``<same key>.json`` beside it for the full metadata record. The image is
written first and the record second, so a reader that finds a record always
finds its image; an image that already exists (HEAD first) is not uploaded
again. The object carries its Content-Type, a long immutable Cache-Control (the
name is its content hash) and a few small ASCII ``x-oss-meta-*`` headers
(model, provider, seed, prediction id, sha256).

Signing: ``OSS_REGION`` set → signature V4 (``oss2.AuthV4`` plus ``region=``);
not set → signature V1 (``oss2.Auth``). Links: ``OSS_CUSTOM_DOMAIN`` set → a
plain URL on that domain (for public buckets or a CDN); otherwise a signed GET
URL valid ``EASEL_OSS_URL_EXPIRY`` seconds.

oss2 is blocking and never retries, so every call runs in a worker thread
(shared limiter of 8), has a per-request timeout (oss2 ``connect_timeout``) and
an overall deadline, and is retried on 5xx, network errors and timeouts under
the one retry policy (``providers/retry.py``); 4xx answers are not retried. Errors become
``StorageError`` with a message built here from status, code and request id,
never from headers, so no key, secret or signature can leak.

``make_oss_storage`` wraps this store in ``FallbackStorage`` so a failed upload
lands on local disk and is uploaded later. oss2 is imported lazily: only a
server configured for OSS pays for it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import anyio

from providers.errors import ConfigError
from providers.retry import RetryPolicy
from server.storage import (
    ImageNotFound,
    Storage,
    StorageError,
    StoredImage,
    image_key,
    image_uri,
    make_image_id,
    mime_of,
    now_iso,
)
from server.storage.oss_settings import OssSettings

__all__ = ["OssSettings", "OssStorage", "make_oss_storage"]

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger("easel.storage.oss")
T = TypeVar("T")

_MONTH = re.compile(r"^\d{6}$")
_RECORD_NAME = re.compile(r"^(?P<hash>[0-9a-f]{32})\.(?P<ext>png|jpg|webp|gif)\.json$")
#: (metadata field, x-oss-meta-* suffix): small, ASCII-safe copies of the record's key facts.
_META_HEADERS = (("model", "model"), ("provider", "provider"), ("seed", "seed"),
                 ("prediction_id", "prediction-id"), ("sha256", "sha256"))
_LIST_PAGE = 1000
SIDECARS = (".thumb.jpg",)     # derived objects kept beside an image, deleted with it
_THREADS = 8


def make_oss_storage(oss: OssSettings, local_dir: Path) -> Storage:
    """OssStorage wrapped in FallbackStorage over LocalStorage(local_dir) (EASEL_STORAGE_DIR)."""
    from server.storage.fallback import FallbackStorage
    from server.storage.local import LocalStorage

    primary = OssStorage.from_settings(oss)
    local = LocalStorage(local_dir)
    local.check_writable()
    return FallbackStorage(primary, local, retry_interval=oss.retry_interval, name="OSS")


# ---------------------------------------------------------------------------- the store


class _Failed(Exception):
    """One failed attempt: the safe error to raise, and whether another attempt may help."""

    def __init__(self, retry: bool, error: StorageError) -> None:
        super().__init__(str(error))
        self.retry, self.error = retry, error


class OssStorage:
    """Images and their metadata records in one OSS bucket; see the module docstring."""

    kind = "oss"

    def __init__(self, *, access_key_id: str, access_key_secret: str, endpoint: str, bucket: str,
                 base_path: str = "", custom_domain: str | None = None, region: str | None = None,
                 url_expiry: int = 86400, timeout: float = 10.0, retries: int = 3,
                 backoff: float = 0.5) -> None:
        try:
            import oss2
        except ImportError:
            raise ConfigError("EASEL_STORAGE=oss needs the oss2 package: pip install 'easel-mcp[oss]'.") from None

        oss_log = logging.getLogger("oss2")
        if oss_log.level == logging.NOTSET:
            # oss2 logs request headers (Authorization) at DEBUG and chatter at INFO.
            oss_log.setLevel(logging.WARNING)
        auth = oss2.AuthV4(access_key_id, access_key_secret) if region else oss2.Auth(access_key_id,
                                                                                      access_key_secret)
        self._bucket = oss2.Bucket(auth, endpoint, bucket, connect_timeout=timeout, region=region,
                                   app_name="easel-mcp")
        self.bucket_name = bucket
        self.endpoint = endpoint
        self.base_path = base_path.strip("/")
        self.custom_domain = custom_domain.rstrip("/") if custom_domain else None
        self.url_expiry = int(url_expiry)
        self.timeout = timeout
        self.retries = retries
        # no cap in practice: EASEL_OSS_RETRIES and EASEL_OSS_BACKOFF bound the waits
        self._retry = RetryPolicy(retries=retries, base=backoff, cap=3600.0)
        self.deadline = timeout * 3 + 10     # one attempt, end to end, whatever requests does
        self.signature = "v4" if region else "v1"
        self._limiter = anyio.CapacityLimiter(_THREADS)

    @classmethod
    def from_settings(cls, settings: OssSettings) -> OssStorage:
        ok = settings.checked()
        return cls(access_key_id=ok.access_key_id or "", access_key_secret=ok.access_key_secret or "",
                   endpoint=ok.endpoint or "", bucket=ok.bucket or "", base_path=ok.base_path,
                   custom_domain=ok.custom_domain, region=ok.region, url_expiry=ok.url_expiry,
                   timeout=ok.timeout, retries=ok.retries, backoff=ok.backoff)

    def __repr__(self) -> str:
        return (f"OssStorage(bucket={self.bucket_name!r}, endpoint={self.endpoint!r}, "
                f"base_path={self.base_path!r}, signature={self.signature!r})")

    # keys and links ---------------------------------------------------------

    @property
    def _prefix(self) -> str:
        return f"{self.base_path}/" if self.base_path else ""

    def key_of(self, image_id: str) -> str:
        """``<base path>/<YYYYMM>/<hash>.<ext>`` (the id is validated)."""
        return self._prefix + image_key(image_id)

    def url_for(self, image_id: str) -> str:
        key = self.key_of(image_id)
        if self.custom_domain:
            return f"{self.custom_domain}/{quote(key, safe='/')}"
        return self._bucket.sign_url("GET", key, self.url_expiry, slash_safe=True)  # local computation

    # the Storage protocol -----------------------------------------------------

    async def put(self, data: bytes, mime_type: str, metadata: dict[str, Any]) -> StoredImage:
        sha256 = hashlib.sha256(data).hexdigest()
        image_id = make_image_id(sha256, mime_type)
        record = {"id": image_id, "uri": image_uri(image_id), "mime_type": mime_type, "bytes": len(data),
                  "sha256": sha256, "created": now_iso(), **metadata}
        return await self.upload(image_id, data, mime_type, record)

    async def upload(self, image_id: str, data: bytes, mime_type: str, record: dict[str, Any]) -> StoredImage:
        """Store bytes under a known id with a complete record (also used for late uploads)."""
        key = self.key_of(image_id)
        sha256 = str(record.get("sha256") or hashlib.sha256(data).hexdigest())
        if await self._call("check", self._bucket.object_exists, key):
            try:
                existing = await self._read_json(key + ".json")
            except ImageNotFound:
                pass                   # image without record: an earlier upload stopped halfway
            else:
                return StoredImage(image_id, mime_type, len(data), sha256, existing, self.url_for(image_id),
                                   self.kind, deduplicated=True)
        else:
            headers = {"Content-Type": mime_type, "Cache-Control": "public, max-age=31536000, immutable",
                       **_meta_headers(record)}
            await self._call("upload", self._bucket.put_object, key, data, headers=headers)
        body = json.dumps(record, ensure_ascii=False, indent=1).encode()
        await self._call("upload", self._bucket.put_object, key + ".json", body,
                         headers={"Content-Type": "application/json; charset=utf-8"})
        return StoredImage(image_id, mime_type, len(data), sha256, record, self.url_for(image_id), self.kind)

    async def get(self, image_id: str) -> tuple[bytes, str]:
        key = self.key_of(image_id)
        try:
            data = await self._call("read", self._read_sync, key)
        except ImageNotFound:
            raise ImageNotFound(f"No image {image_id}.") from None
        return data, mime_of(image_id)

    async def metadata(self, image_id: str) -> dict[str, Any]:
        try:
            return await self._read_json(self.key_of(image_id) + ".json")
        except ImageNotFound:
            raise ImageNotFound(f"No image {image_id}.") from None

    async def list_recent(self, limit: int, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first: month prefixes newest first, records in a month by upload time.

        Only the keys of the months needed are listed, and only ``limit`` records read.
        The cursor names the last item returned, so new uploads never shift a page.
        """
        after = _decode_cursor(cursor)
        candidates: list[tuple[str, int, str]] = []           # (month, last modified, record name)
        for month in await self._months():
            if after is not None and month > after[0]:
                continue
            entries = await self._month_records(month)
            if after is not None and month == after[0]:
                entries = [e for e in entries if e < (after[1], after[2])]
            candidates.extend((month, lm, name) for lm, name in entries)
            if len(candidates) > limit:
                break
        page = candidates[:limit]
        records: list[dict[str, Any] | None] = [None] * len(page)

        async def read(i: int, month: str, name: str) -> None:
            try:
                value = await self._read_json(f"{self._prefix}{month}/{name}")
            except ImageNotFound:
                return                  # deleted since the listing
            if isinstance(value, dict):
                records[i] = value

        async with anyio.create_task_group() as tg:
            for i, (month, _, name) in enumerate(page):
                tg.start_soon(read, i, month, name)
        next_cursor = _encode_cursor(page[-1]) if len(candidates) > limit and page else None
        return [r for r in records if r is not None], next_cursor

    async def delete(self, image_id: str) -> None:
        """Remove the record, the image and its thumbnail; ImageNotFound if neither was there."""
        key = self.key_of(image_id)
        found = await self._call("check", self._bucket.object_exists, key + ".json") or \
            await self._call("check", self._bucket.object_exists, key)
        if not found:
            raise ImageNotFound(f"No image {image_id}.")
        for victim in (key + ".json", key, *(key + s for s in SIDECARS)):   # the record first
            await self._call("delete", self._bucket.delete_object, victim)

    async def read_sidecar(self, image_id: str, suffix: str) -> bytes | None:
        """A small derived object beside the image (e.g. ``.thumb.jpg``); None if not made yet."""
        try:
            return await self._call("read", self._read_sync, self.key_of(image_id) + _sidecar(suffix))
        except ImageNotFound:
            return None

    async def write_sidecar(self, image_id: str, suffix: str, data: bytes) -> None:
        await self._call("upload", self._bucket.put_object, self.key_of(image_id) + _sidecar(suffix), data,
                         headers={"Content-Type": "image/jpeg", "Cache-Control": "public, max-age=31536000"})

    async def record_months(self) -> dict[str, str | None]:
        """Every month prefix; no cheap signature in a bucket, so each sync lists the keys again."""
        return {month: None for month in await self._months()}

    async def record_versions(self, month: str) -> dict[str, str]:
        """image id -> "<last modified>:<etag>" of its record, from one listing of the month."""
        return {f"{month}-{name[:-5]}": f"{int(obj.last_modified or 0)}:{obj.etag}"
                for name, obj in await self._month_objects(month)}

    async def aclose(self) -> None:
        session = getattr(getattr(self._bucket, "session", None), "session", None)
        if session is not None:
            await anyio.to_thread.run_sync(session.close)

    # listing helpers ----------------------------------------------------------

    async def _months(self) -> list[str]:
        months: set[str] = set()
        token = ""
        while True:
            result = await self._call("list", self._bucket.list_objects_v2, prefix=self._prefix, delimiter="/",
                                      continuation_token=token, max_keys=_LIST_PAGE)
            for p in result.prefix_list:
                month = p[len(self._prefix):].rstrip("/")
                if _MONTH.match(month):
                    months.add(month)
            if not result.is_truncated or not result.next_continuation_token:
                return sorted(months, reverse=True)
            token = result.next_continuation_token

    async def _month_records(self, month: str) -> list[tuple[int, str]]:
        """(last modified, record name) of every metadata record of a month, newest first."""
        out = [(int(obj.last_modified or 0), name) for name, obj in await self._month_objects(month)]
        out.sort(reverse=True)
        return out

    async def _month_objects(self, month: str) -> list[tuple[str, Any]]:
        """(record name, listed object) of every metadata record of a month."""
        prefix = f"{self._prefix}{month}/"
        out: list[tuple[str, Any]] = []
        token = ""
        while True:
            result = await self._call("list", self._bucket.list_objects_v2, prefix=prefix, delimiter="/",
                                      continuation_token=token, max_keys=_LIST_PAGE)
            out += [(obj.key[len(prefix):], obj) for obj in result.object_list
                    if _RECORD_NAME.match(obj.key[len(prefix):])]
            if not result.is_truncated or not result.next_continuation_token:
                return out
            token = result.next_continuation_token

    # calls --------------------------------------------------------------------

    def _read_sync(self, key: str) -> bytes:
        return self._bucket.get_object(key).read()

    async def _read_json(self, key: str) -> Any:
        raw = await self._call("read", self._read_sync, key)
        try:
            return json.loads(raw)
        except ValueError:
            raise StorageError(f"The metadata record in OSS for {key.rsplit('/', 1)[-1]} is not valid JSON.") from None

    async def _call(self, action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking oss2 call in a worker thread, with a deadline, retried under the one retry
        policy (``providers/retry.py``) when ``_classify`` says the failure is worth another try."""
        call = functools.partial(fn, *args, **kwargs)

        async def once() -> T:
            try:
                with anyio.fail_after(self.deadline):
                    return await anyio.to_thread.run_sync(call, abandon_on_cancel=True, limiter=self._limiter)
            except Exception as exc:  # noqa: BLE001 - every failure is classified here
                raise _Failed(*self._classify(action, exc)) from None

        def retrying(failed: _Failed, wait: float, attempt: int) -> None:
            log.info("%s; retrying in %.2fs (attempt %d of %d)", failed.error, wait, attempt + 1, self.retries + 1)

        try:
            return await self._retry.run(once, errors=(_Failed,), on_retry=retrying,
                                         delay=lambda f, n: self._retry.backoff(n) if f.retry else None)
        except _Failed as failed:
            error = failed.error
            if failed.retry and self.retries > 0:
                error = type(error)(f"{error} (after {self.retries + 1} attempts)")
            raise error from None

    def _classify(self, action: str, exc: Exception) -> tuple[bool, StorageError]:
        """(retry?, a safe error). Messages come from status, code, OSS's message and request id only."""
        import oss2.exceptions as oe
        import requests

        what = f"OSS {action} ({self.bucket_name})"
        if isinstance(exc, TimeoutError):
            return True, StorageError(f"{what} timed out after {self.deadline:g}s")
        if isinstance(exc, oe.NoSuchBucket):
            return False, StorageError(f"{what} failed: bucket {self.bucket_name!r} does not exist at "
                                       f"{self.endpoint} (NoSuchBucket)")
        if isinstance(exc, oe.NotFound) and exc.code in ("NoSuchKey", ""):
            return False, ImageNotFound("not found")
        if isinstance(exc, oe.RequestError):
            inner = getattr(exc, "exception", None)
            kind = "timed out" if isinstance(inner, requests.Timeout) else "could not connect or was cut off"
            return True, StorageError(f"{what} {kind} ({type(inner).__name__})")
        if isinstance(exc, oe.InconsistentError):
            return True, StorageError(f"{what} failed: CRC-64 check mismatch")
        if isinstance(exc, oe.ClientError):
            return False, StorageError(f"{what} failed: {_clip(str(exc.body).removeprefix('ClientError: '))}")
        if isinstance(exc, oe.OssError):
            status = int(exc.status)
            text = f"{what} failed: HTTP {status} {exc.code or 'error'}"
            if exc.message:
                text += f": {_clip(exc.message)}"
            if exc.request_id:
                text += f" (request id {_clip(exc.request_id, 64)})"
            return status >= 500, StorageError(text)
        if isinstance(exc, (requests.RequestException, OSError)):
            return True, StorageError(f"{what} was cut off ({type(exc).__name__})")
        log.error("unexpected %s during %s", type(exc).__name__, what)
        return False, StorageError(f"{what} failed unexpectedly ({type(exc).__name__})")


# ---------------------------------------------------------------------------- helpers


def _sidecar(suffix: str) -> str:
    if suffix not in SIDECARS:
        raise StorageError(f"unknown sidecar {suffix[:20]!r}")
    return suffix


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _meta_headers(record: dict[str, Any]) -> dict[str, str]:
    """A few record fields as ``x-oss-meta-*``: printable ASCII (the rest %-encoded), at most 256 chars."""
    out = {}
    for field, name in _META_HEADERS:
        value = record.get(field)
        if value is None or value == "":
            continue
        text = "".join(c if 32 <= ord(c) < 127 and c != "%" else quote(c, safe="") for c in str(value))
        text = text.strip()[:256]
        if text:
            out[f"x-oss-meta-{name}"] = text
    return out


def _encode_cursor(item: tuple[str, int, str]) -> str:
    month, lm, name = item
    return base64.urlsafe_b64encode(f"oss1:{month}:{lm}:{name}".encode()).decode()


def _decode_cursor(cursor: str | None) -> tuple[str, int, str] | None:
    if not cursor:
        return None
    try:
        tag, month, lm, name = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        if tag == "oss1" and _MONTH.match(month) and lm.isdigit() and _RECORD_NAME.match(name):
            return month, int(lm), name
    except (ValueError, UnicodeDecodeError):
        pass
    raise StorageError("Invalid cursor.")
