"""A loopback Aliyun OSS server for tests that drive the real ``oss2`` client.

    fake = FakeOSS()
    with fake.running():
        bucket = oss2.Bucket(oss2.Auth("test-ak", "test-sk"), fake.endpoint, "easel-test")
        bucket.put_object("imgs/a.png", b"...")

The endpoint is ``http://127.0.0.1:PORT``; oss2 switches to path-style addressing
for IP hosts on its own (``/bucket/key``, with ``/`` in keys sent as ``%2F``).

Signatures are recomputed here independently of oss2's signer, for all four forms
oss2 produces: V1 header (``OSS ak:sig``), V4 header (``OSS4-HMAC-SHA256 ...``),
V1 presigned query (``OSSAccessKeyId/Expires/Signature``) and V4 presigned query
(``x-oss-signature...``). Errors are OSS-shaped XML; HEAD errors carry the XML
base64-encoded in ``x-oss-err`` (oss2 decodes it to raise ``NoSuchKey`` etc.).

Supported: PutObject, GetObject (single ``Range``), HeadObject, GetObjectMeta
(``HEAD ?objectMeta``), DeleteObject, ListObjects (V1) and ListObjectsV2. Anything
else answers 400 ``NotImplemented`` so a test notices instead of passing by accident.

Fault hooks: :meth:`FakeOSS.inject` (an error status), :meth:`FakeOSS.inject_reset`
(drop the connection with no response), :meth:`FakeOSS.inject_delay` (stall so the
client times out) and ``fake.down = True`` (503 for everything). All shared state
is guarded by ``fake.cond``; every change calls ``notify`` so tests can
``await fake.wait_until(...)`` or ``fake.wait_until_sync(...)`` with a bound.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote
from xml.sax.saxutils import escape

import anyio
import oss2.auth
import oss2.utils

from ._server import LoopbackServer, Waitable

__all__ = ["FakeOSS", "Obj", "RecordedRequest"]

#: Query parameters that V1 signing puts in the canonical resource (mirrors oss2's list).
V1_SUBRESOURCES: frozenset[str] = frozenset(oss2.auth.ProviderAuth._subresource_key_set)
_RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-cache-control": "cache-control",
    "response-content-encoding": "content-encoding",
    "response-content-disposition": "content-disposition",
    "response-expires": "expires",
}
_OBJECT_SUBRESOURCES_OK = frozenset({"objectMeta", "security-token", *_RESPONSE_OVERRIDES})
_BUCKET_SUBRESOURCES_OK = frozenset({"continuation-token", "security-token"})
#: Standard headers stored with an object on PUT and returned on GET/HEAD.
_STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding",
                   "content-language", "expires")
_V4_ALGORITHM = "OSS4-HMAC-SHA256"
_V4_DEFAULT_SIGNED = ("content-type", "content-md5")
_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'
_MAX_KEY_BYTES = 1023


@dataclass
class Obj:
    """A stored object. ``etag`` is the upper-case MD5 hex, without quotes."""

    data: bytes
    content_type: str
    meta: dict[str, str]
    etag: str
    last_modified: int
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def crc64(self) -> int:
        return _crc64(self.data)


@dataclass
class RecordedRequest:
    """One request as the fake saw it. ``status`` is None while in flight, or when the
    connection was dropped (``inject_reset``) or the client gave up during a delay."""

    method: str
    path: str  # raw path as sent, still percent-encoded
    query: dict[str, str]  # decoded
    headers: dict[str, str]  # lower-case names
    auth_kind: str  # "v1" | "v4" | "v1-query" | "v4-query" | "anonymous"
    bucket: str
    key: str
    body: bytes = b""
    status: int | None = None
    request_id: str = ""


@dataclass
class _Fault:
    kind: str  # "status" | "reset" | "delay"
    remaining: int | None  # None: until cleared
    method: str | None
    key: str | None
    status: int = 503
    code: str = "ServiceUnavailable"
    message: str = ""
    seconds: float = 0.0

    def matches(self, rec: RecordedRequest) -> bool:
        if self.method is not None and self.method.upper() != rec.method:
            return False
        return self.key is None or self.key == rec.key


@dataclass
class _Resp:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


class _AuthError(Exception):
    def __init__(self, resp: _Resp) -> None:
        super().__init__(resp.status)
        self.resp = resp


def _crc64(data: bytes) -> int:
    c = oss2.utils.Crc64()
    c.update(data)
    return int(c.crc)


def _utf8(s: str) -> bytes:
    # Header values arrive as latin-1 bytes of the str the client signed; oss2 signs
    # that str's UTF-8 bytes. Round-trip so both agree for any latin-1 value.
    return s.encode("utf-8")


def _v4_uri_encode(text: str, keep_slash: bool) -> str:
    out = []
    for b in text.encode("utf-8"):
        c = chr(b)
        if ("A" <= c <= "Z") or ("a" <= c <= "z") or ("0" <= c <= "9") or c in "_-~.":
            out.append(c)
        elif keep_slash and c == "/":
            out.append(c)
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def _iso8601(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _new_request_id() -> str:
    return uuid.uuid4().hex[:24].upper()


class _ASGIApp:
    """ASGI-3 callable (uvicorn treats a bound method as ASGI-2)."""

    def __init__(self, fake: FakeOSS) -> None:
        self.fake = fake

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        await self.fake._asgi(scope, receive, send)


class FakeOSS(Waitable):
    """In-process OSS double; see the module docstring."""

    def __init__(self, access_key_id: str = "test-ak", access_key_secret: str = "test-sk",
                 buckets: tuple[str, ...] | list[str] = ("easel-test",), region: str = "cn-hangzhou",
                 public_read: bool = False) -> None:
        super().__init__()
        self.credentials: dict[str, str] = {access_key_id: access_key_secret}
        self.buckets: set[str] = set(buckets)
        self.region = region
        self.public_read = public_read
        self.objects: dict[tuple[str, str], Obj] = {}
        self.requests: list[RecordedRequest] = []
        self.down = False
        self.corrupt_crc = False
        #: Server clock (unix seconds) for presigned expiry and request-time skew checks.
        self.clock: Callable[[], float] = time.time
        #: Header-signed requests whose date is further off than this get RequestTimeTooSkewed.
        self.max_skew_seconds = 15 * 60
        self._faults: list[_Fault] = []
        self._server: LoopbackServer | None = None

    # ------------------------------------------------------------------ lifecycle

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeOSS]:
        """Serve on 127.0.0.1 until the block exits; yields the fake itself."""
        server = LoopbackServer(_ASGIApp(self))
        self._server = server
        with server.running():
            try:
                yield self
            finally:
                self._server = None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOSS is not running; use `with fake.running():`")
        return self._server.url

    @property
    def default_bucket(self) -> str:
        return sorted(self.buckets)[0]

    # ------------------------------------------------------------------ test helpers

    def put_object(self, key: str, data: bytes, content_type: str = "application/octet-stream",
                   meta: dict[str, str] | None = None, bucket: str | None = None) -> Obj:
        """Seed an object directly (no HTTP). ``meta`` keys are full ``x-oss-meta-*`` names."""
        obj = Obj(data=bytes(data), content_type=content_type,
                  meta={k.lower(): v for k, v in (meta or {}).items()},
                  etag=hashlib.md5(data).hexdigest().upper(), last_modified=int(self.clock()))
        with self.cond:
            self.buckets.add(bucket or self.default_bucket)
            self.objects[(bucket or self.default_bucket, key)] = obj
            self.cond.notify_all()
        return obj

    def get(self, key: str, bucket: str | None = None) -> Obj | None:
        with self.cond:
            return self.objects.get((bucket or self.default_bucket, key))

    def add_bucket(self, name: str) -> None:
        with self.cond:
            self.buckets.add(name)
            self.cond.notify_all()

    def inject(self, status: int = 503, code: str = "ServiceUnavailable", times: int | None = 1,
               method: str | None = None, message: str | None = None, key: str | None = None) -> None:
        """Answer the next ``times`` matching requests (None: until cleared) with an OSS error."""
        self._add_fault(_Fault("status", times, method, key, status=status, code=code,
                               message=message or f"Injected {code} from the fake."))

    def inject_reset(self, times: int | None = 1, method: str | None = None,
                     key: str | None = None) -> None:
        """Read the next matching request, then drop the connection (RST) without a response."""
        self._add_fault(_Fault("reset", times, method, key))

    def inject_delay(self, seconds: float, times: int | None = 1, method: str | None = None,
                     key: str | None = None) -> None:
        """Stall the next matching request ``seconds`` before handling it. If the client
        disconnects meanwhile (its timeout), the handler stops at once."""
        self._add_fault(_Fault("delay", times, method, key, seconds=seconds))

    def clear_faults(self) -> None:
        with self.cond:
            self._faults.clear()
            self.down = False
            self.cond.notify_all()

    def requests_for(self, method: str | None = None, key: str | None = None) -> list[RecordedRequest]:
        with self.cond:
            return [r for r in self.requests
                    if (method is None or r.method == method.upper()) and (key is None or r.key == key)]

    def _add_fault(self, fault: _Fault) -> None:
        with self.cond:
            self._faults.append(fault)
            self.cond.notify_all()

    def _take_fault(self, kind: str, rec: RecordedRequest) -> _Fault | None:
        with self.cond:
            for f in self._faults:
                if f.kind == kind and f.matches(rec):
                    if f.remaining is not None:
                        f.remaining -= 1
                        if f.remaining <= 0:
                            self._faults.remove(f)
                    self.cond.notify_all()
                    return f
        return None

    # ------------------------------------------------------------------ ASGI

    async def _asgi(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"].upper()
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        query_string = scope.get("query_string", b"").decode("latin-1")
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            name, value = k.decode("latin-1").lower(), v.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        body = await self._read_body(receive)
        query = dict(parse_qsl(query_string, keep_blank_values=True, encoding="utf-8", errors="replace"))
        bucket, key = self._split_path(raw_path)
        rec = RecordedRequest(method=method, path=raw_path.decode("latin-1"), query=query,
                              headers=headers, auth_kind=self._auth_kind(headers, query),
                              bucket=bucket, key=key, body=body, request_id=_new_request_id())
        with self.cond:
            self.requests.append(rec)
            self.cond.notify_all()

        resp = await self._handle(rec, receive)
        if resp is None:
            return
        with self.cond:
            rec.status = resp.status
            self.cond.notify_all()
        hdrs = [("x-oss-request-id", rec.request_id), *resp.headers]
        if not any(k == "content-length" for k, _ in hdrs):
            hdrs.append(("content-length", str(len(resp.body))))
        await send({"type": "http.response.start", "status": resp.status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in hdrs]})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else resp.body})

    @staticmethod
    async def _read_body(receive: Callable[..., Any]) -> bytes:
        chunks = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                break
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _split_path(raw_path: bytes) -> tuple[str, str]:
        path = raw_path.decode("latin-1").lstrip("/")
        bucket_raw, _, key_raw = path.partition("/")
        return unquote(bucket_raw), unquote(key_raw, encoding="utf-8", errors="replace")

    @staticmethod
    def _auth_kind(headers: dict[str, str], query: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        if auth.startswith(_V4_ALGORITHM + " "):
            return "v4"
        if auth.startswith("OSS "):
            return "v1"
        if auth:
            return "unsupported"
        if "x-oss-signature" in query:
            return "v4-query"
        if "Signature" in query or "OSSAccessKeyId" in query:
            return "v1-query"
        return "anonymous"

    # ------------------------------------------------------------------ faults

    async def _handle(self, rec: RecordedRequest, receive: Callable[..., Any]) -> _Resp | None:
        if self.down:
            return self._error(rec, 503, "ServiceUnavailable", "Service is unavailable (FakeOSS down mode).")
        fault = self._take_fault("delay", rec)
        if fault is not None and await self._stall(receive, fault.seconds):
            return None  # client went away
        if self._take_fault("reset", rec) is not None:
            await self._reset(receive)
            return None
        fault = self._take_fault("status", rec)
        if fault is not None:
            return self._error(rec, fault.status, fault.code, fault.message)
        try:
            return self._dispatch(rec)
        except _AuthError as e:
            return e.resp

    @staticmethod
    async def _stall(receive: Callable[..., Any], seconds: float) -> bool:
        """Wait ``seconds``; True if the client disconnected meanwhile."""
        with anyio.move_on_after(seconds):
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return True
        return False

    @staticmethod
    async def _reset(receive: Callable[..., Any]) -> None:
        # uvicorn's receive is a bound method of its request cycle, which holds the transport.
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if transport is None:
            raise RuntimeError("inject_reset needs uvicorn's HTTP protocol (no transport found)")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        with anyio.move_on_after(2):  # let uvicorn mark the cycle disconnected: no 500 is sent
            while (await receive())["type"] != "http.disconnect":
                pass

    # ------------------------------------------------------------------ errors

    def _error(self, rec: RecordedRequest, status: int, code: str, message: str,
               **extra: str) -> _Resp:
        host = f"{rec.bucket}.oss-{self.region}.aliyuncs.com" if rec.bucket else f"oss-{self.region}.aliyuncs.com"
        parts = [f"<Code>{escape(code)}</Code>", f"<Message>{escape(message)}</Message>",
                 f"<RequestId>{rec.request_id}</RequestId>", f"<HostId>{escape(host)}</HostId>"]
        parts += [f"<{k}>{escape(str(v))}</{k}>" for k, v in extra.items()]
        xml = f"{_XML_DECL}<Error>{''.join(parts)}</Error>".encode()
        headers = [("content-type", "application/xml")]
        if rec.method == "HEAD":
            headers += [("x-oss-err", base64.b64encode(xml).decode("ascii")), ("content-length", "0")]
            return _Resp(status, headers, b"")
        return _Resp(status, headers, xml)

    def _not_implemented(self, rec: RecordedRequest, what: str) -> _Resp:
        return self._error(rec, 400, "NotImplemented", f"FakeOSS does not implement {what}.")

    # ------------------------------------------------------------------ auth

    def _authenticate(self, rec: RecordedRequest) -> None:
        kind = rec.auth_kind
        if kind == "anonymous":
            if self.public_read and rec.method in ("GET", "HEAD"):
                return
            raise _AuthError(self._error(rec, 403, "AccessDenied",
                                         "You have no right to access this object because of bucket acl."))
        if kind == "unsupported":
            raise _AuthError(self._error(rec, 400, "InvalidArgument",
                                         "Authorization header is invalid or of an unsupported version."))
        if kind == "v1":
            self._auth_v1_header(rec)
        elif kind == "v1-query":
            self._auth_v1_query(rec)
        elif kind == "v4":
            self._auth_v4_header(rec)
        else:
            self._auth_v4_query(rec)

    def _secret_for(self, rec: RecordedRequest, ak: str) -> str:
        with self.cond:
            sk = self.credentials.get(ak)
        if sk is None:
            raise _AuthError(self._error(rec, 403, "InvalidAccessKeyId",
                                         "The OSS Access Key Id you provided does not exist in our records.",
                                         OSSAccessKeyId=ak))
        return sk

    def _check_skew(self, rec: RecordedRequest, request_ts: float, shown: str) -> None:
        now = self.clock()
        if abs(now - request_ts) > self.max_skew_seconds:
            raise _AuthError(self._error(
                rec, 403, "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
                RequestTime=shown, ServerTime=_iso8601(now),
                MaxAllowedSkewMilliseconds=str(int(self.max_skew_seconds * 1000))))

    def _check_expiry(self, rec: RecordedRequest, expires_at: float) -> None:
        now = self.clock()
        if now > expires_at:
            raise _AuthError(self._error(rec, 403, "AccessDenied", "Request has expired.",
                                         Expires=_iso8601(expires_at), ServerTime=_iso8601(now)))

    def _mismatch(self, rec: RecordedRequest, ak: str, provided: str, string_to_sign: bytes,
                  canonical_request: bytes | None = None) -> _AuthError:
        extra = {"StringToSign": string_to_sign.decode("utf-8", "replace"),
                 "SignatureProvided": provided, "OSSAccessKeyId": ak}
        if canonical_request is not None:
            extra["CanonicalRequest"] = canonical_request.decode("utf-8", "replace")
        return _AuthError(self._error(
            rec, 403, "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.", **extra))

    # V1 -----------------------------------------------------------------

    def _v1_string_to_sign(self, rec: RecordedRequest, date: str) -> bytes:
        h = rec.headers
        canon = sorted((k, v) for k, v in h.items() if k.startswith("x-oss-"))
        headers_bytes = b"".join(k.encode("ascii") + b":" + _utf8(v) + b"\n" for k, v in canon)
        sub = sorted(((k, v) for k, v in rec.query.items() if k in V1_SUBRESOURCES), key=lambda e: e[0])
        resource = f"/{rec.bucket}/{rec.key}"
        if sub:
            resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
        return b"\n".join([rec.method.encode("ascii"), _utf8(h.get("content-md5", "")),
                           _utf8(h.get("content-type", "")), _utf8(date),
                           headers_bytes + resource.encode("utf-8")])

    @staticmethod
    def _v1_sign(secret: str, string_to_sign: bytes) -> str:
        digest = hmac.new(secret.encode("utf-8"), string_to_sign, hashlib.sha1).digest()
        return base64.b64encode(digest).decode("ascii")

    def _auth_v1_header(self, rec: RecordedRequest) -> None:
        ak, sep, provided = rec.headers["authorization"][len("OSS "):].strip().rpartition(":")
        if not sep:
            raise _AuthError(self._error(rec, 400, "InvalidArgument", "Authorization header is invalid."))
        sk = self._secret_for(rec, ak)
        date = rec.headers.get("x-oss-date") or rec.headers.get("date", "")
        sts = self._v1_string_to_sign(rec, date)
        if not hmac.compare_digest(self._v1_sign(sk, sts), provided):
            raise self._mismatch(rec, ak, provided, sts)
        try:
            ts = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise _AuthError(self._error(rec, 403, "AccessDenied",
                                         "OSS authentication requires a valid Date.")) from None
        self._check_skew(rec, ts, date)

    def _auth_v1_query(self, rec: RecordedRequest) -> None:
        q = rec.query
        ak, expires, provided = q.get("OSSAccessKeyId", ""), q.get("Expires", ""), q.get("Signature", "")
        if not (ak and expires and provided):
            raise _AuthError(self._error(rec, 403, "AccessDenied",
                                         "OSSAccessKeyId, Expires and Signature are all required."))
        try:
            expires_at = int(expires)
        except ValueError:
            raise _AuthError(self._error(rec, 400, "InvalidArgument", "Expires is not an integer.")) from None
        self._check_expiry(rec, expires_at)
        sk = self._secret_for(rec, ak)
        sts = self._v1_string_to_sign(rec, rec.headers.get("x-oss-date") or expires)
        if not hmac.compare_digest(self._v1_sign(sk, sts), provided):
            raise self._mismatch(rec, ak, provided, sts)

    # V4 -----------------------------------------------------------------

    def _v4_signature(self, rec: RecordedRequest, sk: str, date_time: str, cred_date: str,
                      additional: list[str], query: dict[str, str]) -> tuple[str, bytes, bytes]:
        h = rec.headers
        uri = _v4_uri_encode(f"/{rec.bucket}/{rec.key}", True)
        encoded = sorted((_v4_uri_encode(k, False), _v4_uri_encode(v, False)) for k, v in query.items())
        canon_query = "&".join(f"{k}={v}" if v else k for k, v in encoded)
        signed = {k: v for k, v in h.items()
                  if k.startswith("x-oss-") or k in _V4_DEFAULT_SIGNED or k in additional}
        canon_headers = b"".join(k.encode("ascii") + b":" + _utf8(v) + b"\n" for k, v in sorted(signed.items()))
        canonical_request = (rec.method.encode("ascii") + b"\n" + uri.encode("ascii") + b"\n"
                             + canon_query.encode("ascii") + b"\n" + canon_headers + b"\n"
                             + ";".join(sorted(additional)).encode("ascii") + b"\n"
                             + _utf8(h.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD")))
        scope = f"{cred_date}/{self.region}/oss/aliyun_v4_request"
        string_to_sign = (f"{_V4_ALGORITHM}\n{date_time}\n{scope}\n"
                          + hashlib.sha256(canonical_request).hexdigest()).encode("utf-8")
        key = ("aliyun_v4" + sk).encode("utf-8")
        for part in (cred_date, self.region, "oss", "aliyun_v4_request"):
            key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
        return hmac.new(key, string_to_sign, hashlib.sha256).hexdigest(), string_to_sign, canonical_request

    def _parse_credential(self, rec: RecordedRequest, credential: str) -> tuple[str, str]:
        parts = credential.split("/")
        if len(parts) != 5 or parts[3] != "oss" or parts[4] != "aliyun_v4_request":
            raise _AuthError(self._error(rec, 400, "InvalidArgument",
                                         f"Invalid credential scope: {credential!r}."))
        ak, cred_date, region = parts[0], parts[1], parts[2]
        if region != self.region:
            raise _AuthError(self._error(
                rec, 403, "SignatureDoesNotMatch",
                f"Invalid signing region in credential: {region!r}; this bucket is in {self.region!r}.",
                OSSAccessKeyId=ak))
        return ak, cred_date

    def _v4_time(self, rec: RecordedRequest, date_time: str) -> float:
        try:
            return datetime.strptime(date_time, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            raise _AuthError(self._error(rec, 403, "AccessDenied",
                                         f"Invalid x-oss-date {date_time!r}.")) from None

    def _auth_v4_header(self, rec: RecordedRequest) -> None:
        fields: dict[str, str] = {}
        for item in rec.headers["authorization"][len(_V4_ALGORITHM):].split(","):
            k, _, v = item.strip().partition("=")
            fields[k] = v
        if "Credential" not in fields or "Signature" not in fields:
            raise _AuthError(self._error(rec, 400, "InvalidArgument", "Authorization header is invalid."))
        ak, cred_date = self._parse_credential(rec, fields["Credential"])
        sk = self._secret_for(rec, ak)
        date_time = rec.headers.get("x-oss-date", "")
        ts = self._v4_time(rec, date_time)
        additional = [a.lower() for a in fields.get("AdditionalHeaders", "").split(";") if a]
        provided = fields["Signature"]
        sig, sts, creq = self._v4_signature(rec, sk, date_time, cred_date, additional, rec.query)
        if cred_date != date_time[:8] or not hmac.compare_digest(sig, provided):
            raise self._mismatch(rec, ak, provided, sts, creq)
        self._check_skew(rec, ts, date_time)

    def _auth_v4_query(self, rec: RecordedRequest) -> None:
        q = rec.query
        if q.get("x-oss-signature-version") != _V4_ALGORITHM:
            raise _AuthError(self._error(rec, 400, "InvalidArgument",
                                         "x-oss-signature-version must be OSS4-HMAC-SHA256."))
        missing = [p for p in ("x-oss-credential", "x-oss-date", "x-oss-expires") if p not in q]
        if missing:
            raise _AuthError(self._error(rec, 403, "AccessDenied", f"Missing query parameters: {missing}."))
        ak, cred_date = self._parse_credential(rec, q["x-oss-credential"])
        date_time = q["x-oss-date"]
        try:
            expires = int(q["x-oss-expires"])
        except ValueError:
            raise _AuthError(self._error(rec, 400, "InvalidArgument",
                                         "x-oss-expires is not an integer.")) from None
        self._check_expiry(rec, self._v4_time(rec, date_time) + expires)
        sk = self._secret_for(rec, ak)
        additional = [a.lower() for a in q.get("x-oss-additional-headers", "").split(";") if a]
        signed_query = {k: v for k, v in q.items() if k != "x-oss-signature"}
        provided = q["x-oss-signature"]
        sig, sts, creq = self._v4_signature(rec, sk, date_time, cred_date, additional, signed_query)
        if cred_date != date_time[:8] or not hmac.compare_digest(sig, provided):
            raise self._mismatch(rec, ak, provided, sts, creq)

    # ------------------------------------------------------------------ routing

    def _dispatch(self, rec: RecordedRequest) -> _Resp:
        if not rec.bucket:
            return self._not_implemented(rec, "service-level requests (ListBuckets)")
        with self.cond:
            known = rec.bucket in self.buckets
        if not known:
            return self._error(rec, 404, "NoSuchBucket", "The specified bucket does not exist.",
                               BucketName=rec.bucket)
        self._authenticate(rec)
        if rec.key:
            unsupported = sorted(k for k in rec.query if k in V1_SUBRESOURCES and k not in _OBJECT_SUBRESOURCES_OK)
            if unsupported:
                return self._not_implemented(rec, f"object sub-resources {unsupported}")
            if rec.method == "PUT":
                return self._put(rec)
            if rec.method in ("GET", "HEAD"):
                return self._get(rec)
            if rec.method == "DELETE":
                return self._delete(rec)
            return self._not_implemented(rec, f"{rec.method} on objects")
        unsupported = sorted(k for k in rec.query if k in V1_SUBRESOURCES and k not in _BUCKET_SUBRESOURCES_OK)
        if unsupported:
            return self._not_implemented(rec, f"bucket sub-resources {unsupported}")
        if rec.method == "GET":
            return self._list(rec)
        return self._not_implemented(rec, f"{rec.method} on buckets")

    # objects --------------------------------------------------------------

    def _put(self, rec: RecordedRequest) -> _Resp:
        h = rec.headers
        if "x-oss-copy-source" in h:
            return self._not_implemented(rec, "CopyObject")
        if rec.key.startswith(("/", "\\")) or len(rec.key.encode("utf-8")) > _MAX_KEY_BYTES:
            return self._error(rec, 400, "InvalidObjectName", "The specified object is not valid.",
                               ObjectName=rec.key)
        md5 = hashlib.md5(rec.body)
        md5_b64 = base64.b64encode(md5.digest()).decode("ascii")
        if "content-md5" in h and h["content-md5"] != md5_b64:
            return self._error(rec, 400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        obj = Obj(data=rec.body, content_type=h.get("content-type") or "application/octet-stream",
                  meta={k: v for k, v in h.items() if k.startswith("x-oss-meta-")},
                  etag=md5.hexdigest().upper(), last_modified=int(self.clock()),
                  headers={k: h[k] for k in _STORED_HEADERS if k in h})
        with self.cond:
            if h.get("x-oss-forbid-overwrite", "").lower() == "true" and (rec.bucket, rec.key) in self.objects:
                return self._error(rec, 409, "FileAlreadyExists",
                                   "The object you specified already exists and can not be overwritten.")
            self.objects[(rec.bucket, rec.key)] = obj
            self.cond.notify_all()
        return _Resp(200, [("etag", f'"{obj.etag}"'), ("content-md5", md5_b64),
                           ("x-oss-hash-crc64ecma", str(self._crc_header(obj)))])

    def _crc_header(self, obj: Obj) -> int:
        crc = obj.crc64
        return crc ^ 1 if self.corrupt_crc else crc

    def _get(self, rec: RecordedRequest) -> _Resp:
        with self.cond:
            obj = self.objects.get((rec.bucket, rec.key))
        if obj is None:
            return self._error(rec, 404, "NoSuchKey", "The specified key does not exist.", Key=rec.key)
        size = len(obj.data)
        headers = {
            "content-type": obj.content_type,
            "etag": f'"{obj.etag}"',
            "last-modified": formatdate(obj.last_modified, usegmt=True),
            "accept-ranges": "bytes",
            "x-oss-object-type": "Normal",
            "x-oss-storage-class": "Standard",
            "x-oss-hash-crc64ecma": str(self._crc_header(obj)),
            "content-md5": base64.b64encode(hashlib.md5(obj.data).digest()).decode("ascii"),
            **obj.headers,
            **obj.meta,
        }
        if rec.method == "GET":
            for param, header in _RESPONSE_OVERRIDES.items():
                if param in rec.query:
                    headers[header] = rec.query[param]
        status, body = 200, obj.data
        if rec.method == "GET" and "range" in rec.headers:
            rng = self._parse_range(rec.headers["range"], size)
            if rng is None:
                if rec.headers.get("x-oss-range-behavior", "").lower() == "standard":
                    return self._error(rec, 416, "InvalidRange", "The requested range is not satisfiable.")
            else:
                start, end = rng
                status, body = 206, obj.data[start:end + 1]
                headers["content-range"] = f"bytes {start}-{end}/{size}"
        headers["content-length"] = str(size if rec.method == "HEAD" else len(body))
        return _Resp(status, list(headers.items()), body)

    @staticmethod
    def _parse_range(value: str, size: int) -> tuple[int, int] | None:
        """A single ``bytes=a-b`` / ``a-`` / ``-n`` range; None when invalid (OSS then sends it all)."""
        unit, _, spec = value.strip().partition("=")
        if unit.strip().lower() != "bytes" or "," in spec:
            return None
        first, dash, last = spec.strip().partition("-")
        if not dash or not (first.isdigit() or last.isdigit()):
            return None
        if not first:
            n = int(last)
            return (max(size - n, 0), size - 1) if n > 0 and size > 0 else None
        start = int(first)
        end = int(last) if last else size - 1
        if start >= size or end < start:
            return None
        return start, min(end, size - 1)

    def _delete(self, rec: RecordedRequest) -> _Resp:
        with self.cond:
            self.objects.pop((rec.bucket, rec.key), None)
            self.cond.notify_all()
        return _Resp(204, [])

    # listing --------------------------------------------------------------

    def _list(self, rec: RecordedRequest) -> _Resp:
        q = rec.query
        v2 = q.get("list-type") == "2"
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        url = q.get("encoding-type", "") == "url"
        try:
            max_keys = int(q.get("max-keys") or 100)
        except ValueError:
            max_keys = -1
        if not 1 <= max_keys <= 1000:
            return self._error(rec, 400, "InvalidArgument", "max-keys must be between 1 and 1000.",
                               ArgumentName="max-keys", ArgumentValue=q.get("max-keys", ""))
        if v2:
            start = q.get("start-after", "")
            token = q.get("continuation-token", "")
            if token:
                try:
                    start = max(start, base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8"))
                except ValueError:
                    return self._error(rec, 400, "InvalidArgument",
                                       "The continuation token provided is incorrect.")
        else:
            start = q.get("marker", "")

        with self.cond:
            listing = sorted((k, o) for (b, k), o in self.objects.items()
                             if b == rec.bucket and k.startswith(prefix) and k > start)
        contents: list[tuple[str, Obj]] = []
        prefixes: list[str] = []
        last = ""
        truncated = False
        for k, o in listing:
            cp = None
            if delimiter:
                i = k.find(delimiter, len(prefix))
                if i >= 0:
                    cp = k[:i + len(delimiter)]
            if cp is not None and (start.startswith(cp) or (prefixes and prefixes[-1] == cp)):
                continue
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            if cp is not None:
                prefixes.append(cp)
                last = cp
            else:
                contents.append((k, o))
                last = k

        def enc(s: str) -> str:
            return escape(quote(s, safe="/") if url else s)

        out = [_XML_DECL, "<ListBucketResult>", f"<Name>{escape(rec.bucket)}</Name>",
               f"<Prefix>{enc(prefix)}</Prefix>"]
        if v2:
            if "start-after" in q and q["start-after"]:
                out.append(f"<StartAfter>{enc(q['start-after'])}</StartAfter>")
            if q.get("continuation-token"):
                out.append(f"<ContinuationToken>{enc(q['continuation-token'])}</ContinuationToken>")
        else:
            out.append(f"<Marker>{enc(q.get('marker', ''))}</Marker>")
        out.append(f"<MaxKeys>{max_keys}</MaxKeys><Delimiter>{enc(delimiter)}</Delimiter>")
        if url:
            out.append("<EncodingType>url</EncodingType>")
        out.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        if truncated:
            if v2:
                token = base64.urlsafe_b64encode(last.encode("utf-8")).decode("ascii")
                out.append(f"<NextContinuationToken>{enc(token)}</NextContinuationToken>")
            else:
                out.append(f"<NextMarker>{enc(last)}</NextMarker>")
        if v2:
            out.append(f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount>")
        owner = not v2 or q.get("fetch-owner") == "true"
        for k, o in contents:
            out.append(f"<Contents><Key>{enc(k)}</Key><LastModified>{_iso8601(o.last_modified)}</LastModified>"
                       f"<ETag>\"{o.etag}\"</ETag><Type>Normal</Type><Size>{len(o.data)}</Size>"
                       "<StorageClass>Standard</StorageClass>")
            if owner:
                out.append("<Owner><ID>0000000000000000</ID><DisplayName>0000000000000000</DisplayName></Owner>")
            out.append("</Contents>")
        for p in prefixes:
            out.append(f"<CommonPrefixes><Prefix>{enc(p)}</Prefix></CommonPrefixes>")
        out.append("</ListBucketResult>")
        return _Resp(200, [("content-type", "application/xml")], "".join(out).encode("utf-8"))
