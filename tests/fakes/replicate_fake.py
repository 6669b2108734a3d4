"""A fake of the Replicate HTTP API, served on 127.0.0.1 for the real ``replicate`` SDK.

Built to ``replicate-api.md`` §6 (published contracts, not guesses)::

    with FakeReplicate(token="r8_test").running() as fake:
        client = replicate.Client(api_token="r8_test", base_url=fake.url)
        client.poll_interval = 0.01

Models: the official ones in ``replicate_schemas.json`` are served on
``POST /v1/models/{owner}/{name}/predictions`` (``version:"hidden"``); ``add_model`` registers
more (``official=False`` → only through ``POST /v1/predictions`` with the version id).
Input is validated like the real API (required, type, enum, min/max, ``format: uri``) and
unknown input keys are rejected too, all errors collected into one 422.

Knobs (set them from the test; all reads/writes of shared state go through ``fake.cond``):

* ``latency`` (s, default 0) and ``latency_for[model]``: starting → processing → terminal.
* ``hold = True``: new predictions stay ``processing`` until ``release(prediction_id=None)``.
* ``fail_predictions(n, error)``: the next n predictions end ``failed``.
* ``output_mode`` ``"url"`` (``<file_base_url or url>/files/<pid>/out-<i>.<ext>``) or ``"data"``
  (``data:`` URIs); ``image_factory(prediction) -> (bytes, content_type)``; ``image_size``;
  ``expire_files = True`` makes downloads 404. Every generated image has distinct bytes.
* Downloads as from a CDN: ``download_rate`` (bytes/s; 0, the default, sends each file at once) sends
  the body in ``download_chunk``-byte pieces (64 KiB) at that pace; ``drop_downloads = n`` makes the
  next n downloads close the connection after half the body (a declared length never reached);
  ``download_length = False`` sends paced bodies chunked, without a Content-Length;
  ``download_tail_gate`` (a ``threading.Event``) holds a body's last piece until it is set (30 s at most).
* ``inject(status, body, headers, times, method, path_prefix)``, ``inject_delay(...)``,
  ``inject_reset(...)`` (connection dropped, no response); ``times=None`` means forever.
* ``check_uri_format``, ``max_upload_bytes`` (100 MB), ``tokens`` (accepted bearer tokens).

Observations: ``requests`` (``Recorded``), ``creates``, ``downloads``, ``cancels``, ``predictions``,
``files``, ``file_inputs``, ``in_flight_now``, ``max_in_flight_predictions``. Every change
calls ``notify()``, so tests ``await fake.wait_until(lambda: ..., timeout=5)``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime as dt
import hashlib
import io
import json
import re
import secrets
import socket
import string
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from PIL import Image
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes._server import LoopbackServer, Waitable

__all__ = ["FakeReplicate", "Recorded", "ModelSpec", "UploadedFile", "INSUFFICIENT_CREDIT",
           "RATE_LIMITED", "SCHEMAS_PATH"]

SCHEMAS_PATH = Path(__file__).with_name("replicate_schemas.json")

UNAUTHENTICATED = {"title": "Unauthenticated",
                   "detail": "You did not pass a valid authentication token", "status": 401}
INSUFFICIENT_CREDIT = {
    "title": "Insufficient credit",
    "detail": "You have insufficient credit to run this model. Go to "
              "https://replicate.com/account/billing#billing to purchase credit. Once you "
              "purchase credit, please wait a few minutes before trying again.",
    "status": 402}
RATE_LIMITED = {"detail": "Request was throttled. Expected available in 1 second.",
                "status": 429, "retry_after": 1}
MODEL_NOT_FOUND = {"detail": "The requested resource could not be found.", "status": 404}
NOT_FOUND = {"detail": "Not found.", "status": 404}
INVALID_VERSION = {
    "title": "Invalid version or not permitted",
    "detail": "The specified version does not exist (or perhaps you don't have permission "
              "to use it?)",
    "status": 422}
TOO_LARGE = {"detail": "Files must be less than 100MB in size"}

TERMINAL = frozenset({"succeeded", "failed", "canceled"})
URI = {"type": "string", "format": "uri"}
OUTPUT_SCHEMAS: dict[str, Any] = {
    "image": URI,
    "images": {"type": "array", "items": URI},
    "dict": {"type": "object", "properties": {"image": URI, "mask": URI,
                                              "caption": {"type": "string"}}},
    "text": {"type": "string"},
    "iterator": {"type": "array", "items": {"type": "string"},
                 "x-cog-array-type": "iterator", "x-cog-array-display": "concatenate"},
}
_FORMATS = {"webp": ("WEBP", "image/webp"), "jpg": ("JPEG", "image/jpeg"),
            "jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}
_ROOT_KEYS = {"input", "stream", "webhook", "webhook_completed", "webhook_events_filter"}
_PREFER = re.compile(r"^wait(?:=(\d+))?$")
_ALNUM = string.ascii_lowercase + string.digits


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_id() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(26))


def _problem(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, headers=headers,
                    media_type="application/problem+json")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(v), "unknown")


def _is_type(v: Any, t: str) -> bool:
    given = _json_type(v)
    return given == t or (t == "number" and given == "integer")


def _uvicorn_transport(send: Any) -> Any:
    """uvicorn's per-request ``send`` is a bound method of a cycle holding the transport."""
    return getattr(getattr(send, "__self__", None), "transport", None)


def _set_nodelay(send: Any) -> None:
    """LoopbackServer's socket has proto 0, so asyncio skips TCP_NODELAY and every response
    (headers, then body) stalls ~40 ms on Nagle + delayed ACK. Set it per connection here."""
    transport = _uvicorn_transport(send)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _output_count(inp: dict[str, Any], default: int) -> int:
    """Images an array-output model returns for this input, by the field its schema publishes."""
    for name in ("num_outputs", "number_of_images"):
        if isinstance(inp.get(name), int):
            return int(inp[name])
    if inp.get("sequential_image_generation") == "auto" and isinstance(inp.get("max_images"), int):
        return int(inp["max_images"])   # Seedream: "up to"; the fake makes that many
    return default


def _is_create(method: str, path: str) -> bool:
    return method == "POST" and (path == "/v1/predictions" or (
        path.startswith("/v1/models/") and path.endswith("/predictions")))


def _err(kind: str, fld: str, description: str) -> dict[str, str]:
    return {"type": kind, "field": fld, "description": description}


def _validation_failed(errors: list[dict[str, str]]) -> Response:
    detail = "".join(f"- {e['field'] or '(root)'}: {e['description']}\n" for e in errors)
    return _problem(422, {"detail": detail, "status": 422, "title": "Input validation failed",
                          "invalid_fields": errors})


def render_image(n: int, ext: str, size: tuple[int, int] = (64, 64)) -> tuple[bytes, str]:
    """A small image whose 8x8 black/white blocks spell ``n`` in binary: distinct bytes per n,
    even after lossy JPEG/WebP coding."""
    fmt, ctype = _FORMATS[ext]
    img = Image.new("RGB", size, (40 + n % 200, 90, 160))
    cols = max(size[0] // 8, 1)
    for bit in range(min(64, cols * max(size[1] // 8, 1))):
        shade = 255 if (n >> bit) & 1 else 0
        x, y = (bit % cols) * 8, (bit // cols) * 8
        img.paste((shade, shade, shade), (x, y, x + 8, y + 8))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue(), ctype


@dataclass
class Recorded:
    """One request as the fake saw it (``status`` is filled in once the response starts)."""
    method: str
    path: str
    headers: dict[str, str]
    json: Any | None
    prefer: str | None
    status: int | None = None


@dataclass
class ModelSpec:
    ref: str
    input_schema: dict[str, Any]
    output: Any  # "image" | "images" | "dict" | "text" | "iterator" | callable(prediction)
    version: str
    official: bool
    output_schema: dict[str, Any]
    description: str = ""
    count: int = 2  # images for output="images" unless the input says num_outputs
    created_at: str = field(default_factory=lambda: _iso(_now()))


@dataclass
class UploadedFile:
    id: str
    name: str
    content_type: str
    content: bytes
    json: dict[str, Any]


@dataclass
class _Rule:
    kind: str  # "status" | "delay" | "reset"
    times: int | None
    method: str | None
    path_prefix: str | None
    status: int = 0
    body: Any = None
    headers: dict[str, str] | None = None
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return ((self.method is None or self.method.upper() == method)
                and (self.path_prefix is None or path.startswith(self.path_prefix)))


class _Pred:
    def __init__(self, data: dict[str, Any], spec: ModelSpec, hold: bool) -> None:
        self.data = data
        self.spec = spec
        self.hold = hold
        self.done = asyncio.Event()
        self.released = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.t0 = asyncio.get_running_loop().time()
        self.t_start: float | None = None


class _Paced:
    """A file sent in pieces: at ``rate`` bytes/s (0: no pause), or cut off after half when ``drop``."""

    def __init__(self, body: bytes, media_type: str, *, rate: float, chunk: int, drop: bool,
                 length: bool = True, tail_gate: threading.Event | None = None) -> None:
        self.body, self.media_type, self.rate, self.chunk, self.drop = body, media_type, rate, chunk, drop
        self.length, self.tail_gate = length, tail_gate

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", self.media_type.encode())]
        if self.length:
            headers.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        start = asyncio.get_running_loop().time()
        end = len(self.body) // 2 if self.drop else len(self.body)
        for sent in range(0, end, self.chunk):
            piece = self.body[sent:min(end, sent + self.chunk)]
            if self.tail_gate is not None and sent + len(piece) >= end:   # the last piece waits (bounded)
                await asyncio.get_running_loop().run_in_executor(None, self.tail_gate.wait, 30)
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            if self.rate > 0:   # the pace of a link of that speed: piece k is out at (bytes so far) / rate
                due = start + (sent + len(piece)) / self.rate
                await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
        if self.drop:   # the connection goes, the declared length never reached
            transport = scope.get("fake.transport")
            if transport is not None:
                transport.abort()
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class FakeReplicate(Waitable):
    """The Replicate API as a Starlette app; see the module docstring for the knobs."""

    def __init__(self, token: str = "r8_test", schemas_path: Path = SCHEMAS_PATH) -> None:
        super().__init__()
        self.tokens: set[str] = {token}
        self.url = ""
        self.port = 0
        self.file_base_url: str | None = None
        self.latency = 0.0
        self.latency_for: dict[str, float] = {}
        self.hold = False
        self.output_mode = "url"
        self.image_factory: Callable[[dict[str, Any]], tuple[bytes, str]] | None = None
        self.image_size = (64, 64)
        self.expire_files = False
        self.download_rate = 0.0
        self.download_chunk = 64 * 1024
        self.drop_downloads = 0
        self.download_length = True
        self.download_tail_gate: threading.Event | None = None
        self.check_uri_format = True
        self.max_upload_bytes = 100 * 1024 * 1024
        self.models: dict[str, ModelSpec] = {}
        self.versions: dict[str, ModelSpec] = {}
        self._preds: dict[str, _Pred] = {}  # public view: ``predictions``
        self.requests: list[Recorded] = []
        self.cancels: list[str] = []
        self.files: dict[str, UploadedFile] = {}
        self.file_inputs: list[str] = []
        self.outputs: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.max_in_flight_predictions = 0
        self._in_flight = 0
        self._image_counter = 0
        self._fail_queue: list[str] = []
        self._rules: list[_Rule] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: LoopbackServer | None = None
        for ref, raw in json.loads(schemas_path.read_text()).items():
            if ref.startswith("_"):
                continue
            props = {k: {pk: pv for pk, pv in p.items() if not pk.startswith("_")}
                     for k, p in raw["properties"].items()}
            many = (raw.get("output") or {}).get("type") == "array"   # Seedream, GPT Image, Qwen: URL arrays
            self.add_model(ref, {"type": "object", "properties": props,
                                 "required": list(raw.get("required", []))},
                           output="images" if many else "image", official=True,
                           output_schema=raw.get("output"), count=1)
        self.app = Starlette(routes=[
            Route("/v1/models/{owner}/{name}/predictions", self._create_official, methods=["POST"]),
            Route("/v1/models/{owner}/{name}/versions/{vid}", self._get_version, methods=["GET"]),
            Route("/v1/models/{owner}/{name}", self._get_model, methods=["GET"]),
            Route("/v1/predictions", self._create_versioned, methods=["POST"]),
            Route("/v1/predictions/{pid}", self._get_prediction, methods=["GET"]),
            Route("/v1/predictions/{pid}/cancel", self._cancel, methods=["POST"]),
            Route("/v1/files", self._upload, methods=["POST"]),
            Route("/v1/files", self._list_files, methods=["GET"]),
            Route("/v1/files/{fid}", self._file_meta, methods=["GET", "DELETE"]),
            Route("/files/{pid}/{fname}", self._download, methods=["GET"]),
        ], exception_handlers={HTTPException: self._http_error})

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeReplicate:
        self._server = LoopbackServer(self).start()
        self.url, self.port = self._server.url, self._server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeReplicate]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    # ----------------------------------------------------------------- test-facing API
    def add_model(self, ref: str, input_schema: dict[str, Any] | None = None, output: Any = "image",
                  version: str | None = None, official: bool = False,
                  output_schema: dict[str, Any] | None = None, description: str = "",
                  count: int = 2) -> str:
        """Register a model; returns its (64-hex) version id."""
        if input_schema is None:
            input_schema = {"type": "object", "properties": {"prompt": {"type": "string"}},
                            "required": ["prompt"]}
        if version is None:
            version = hashlib.sha256(f"{ref}:{official}".encode()).hexdigest()
        if output_schema is None:
            output_schema = OUTPUT_SCHEMAS.get(output, {}) if isinstance(output, str) else {}
        spec = ModelSpec(ref, input_schema, output, version, official, output_schema,
                         description or f"Fake {ref}", count)
        with self.cond:
            self.models[ref] = spec
            self.versions[version] = spec
        return version

    def fail_predictions(self, n: int = 1, error: str = "Prediction failed (fake)") -> None:
        with self.cond:
            self._fail_queue.extend([error] * n)

    def release(self, prediction_id: str | None = None) -> int:
        """Let held predictions (``hold = True``) finish; None releases all. Returns the count."""
        with self.cond:
            preds = [p for pid, p in self._preds.items()
                     if p.hold and p.data["status"] not in TERMINAL
                     and (prediction_id is None or pid == prediction_id)]
            for p in preds:
                p.hold = False
        if self._loop is not None:
            for p in preds:
                self._loop.call_soon_threadsafe(p.released.set)
        return len(preds)

    def inject(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
               times: int | None = 1, method: str | None = None,
               path_prefix: str | None = None) -> None:
        self._add_rule(_Rule("status", times, method, path_prefix, status=status, body=body,
                             headers=headers))

    def inject_delay(self, seconds: float, times: int | None = 1, path_prefix: str | None = None,
                     method: str | None = None) -> None:
        self._add_rule(_Rule("delay", times, method, path_prefix, seconds=seconds))

    def inject_reset(self, times: int | None = 1, path_prefix: str | None = None,
                     method: str | None = None) -> None:
        self._add_rule(_Rule("reset", times, method, path_prefix))

    def clear_faults(self) -> None:
        with self.cond:
            self._rules.clear()

    @property
    def predictions(self) -> dict[str, dict[str, Any]]:
        """Snapshots of every prediction object, by id, in creation order."""
        with self.cond:
            return {pid: copy.deepcopy(p.data) for pid, p in self._preds.items()}

    @property
    def creates(self) -> list[Recorded]:
        with self.cond:
            return [r for r in self.requests if _is_create(r.method, r.path)]

    @property
    def downloads(self) -> list[Recorded]:
        with self.cond:
            return [r for r in self.requests if r.method == "GET" and r.path.startswith("/files/")]

    @property
    def in_flight_now(self) -> int:
        with self.cond:
            return self._in_flight

    # ----------------------------------------------------------------- ASGI wrapper
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self._loop = asyncio.get_running_loop()
        _set_nodelay(send)
        scope["fake.transport"] = _uvicorn_transport(send)   # for a download cut off part-way (_Paced)
        chunks, more = [], True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        parsed = None
        if "json" in headers.get("content-type", ""):
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        rec = Recorded(method, path, headers, parsed, headers.get("prefer"))
        with self.cond:
            self.requests.append(rec)
        self.notify()

        delay = self._take_rule(method, path, ("delay",))
        if delay is not None:
            await asyncio.sleep(delay.seconds)
        rule = self._take_rule(method, path, ("status", "reset"))
        if rule is not None and rule.kind == "reset":
            return await self._reset(send)

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                rec.status = message["status"]
                if path.startswith("/v1/"):
                    remaining = b"599" if _is_create(method, path) else b"2999"
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"ratelimit-remaining", remaining),
                                                      (b"ratelimit-reset", b"1")]}
                self.notify()
            await send(message)

        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if rule is not None:
            response = self._fault_response(rule)
        elif path.startswith("/v1/") and headers.get("authorization", "") not in {
                f"Bearer {t}" for t in self.tokens}:
            response = _problem(401, UNAUTHENTICATED)
        else:
            return await self.app(scope, replay, recording_send)
        await response(scope, replay, recording_send)

    def _add_rule(self, rule: _Rule) -> None:
        with self.cond:
            self._rules.append(rule)

    def _take_rule(self, method: str, path: str, kinds: tuple[str, ...]) -> _Rule | None:
        with self.cond:
            for rule in self._rules:
                if rule.kind in kinds and rule.matches(method, path):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self._rules.remove(rule)
                    return rule
        return None

    @staticmethod
    def _fault_response(rule: _Rule) -> Response:
        if isinstance(rule.body, dict | list):
            return _problem(rule.status, rule.body, rule.headers)
        content = rule.body if rule.body is not None else b""
        return Response(content, status_code=rule.status, headers=rule.headers,
                        media_type="text/plain" if content else None)

    @staticmethod
    async def _reset(send: Any) -> None:
        """Close the connection with no response (httpx: RemoteProtocolError)."""
        transport = _uvicorn_transport(send)
        if transport is not None:  # uvicorn's cycle: abort, then let connection_lost run
            transport.abort()
            for _ in range(5):
                await asyncio.sleep(0)
            return
        await send({"type": "http.response.start", "status": 200,  # fallback: truncated body
                    "headers": [(b"content-length", b"64")]})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        return _problem(status, NOT_FOUND if status == 404 else
                        {"detail": str(getattr(exc, "detail", exc)), "status": status})

    # ----------------------------------------------------------------- validation
    def _validate(self, schema: dict[str, Any], inp: Any) -> list[dict[str, str]]:
        if not isinstance(inp, dict):
            return [_err("invalid_type", "input",
                         f"Invalid type. Expected: object, given: {_json_type(inp)}")]
        errors = [_err("required", "input", f"{name} is required")
                  for name in schema.get("required", []) if name not in inp]
        props = schema.get("properties", {})
        for key, value in inp.items():
            if key not in props:
                errors.append(_err("additional_property_not_allowed", "input",
                                   f"Additional property {key} is not allowed"))
            else:
                self._check(f"input.{key}", key, props[key], value, errors)
        return errors

    def _check(self, fld: str, name: str, sch: dict[str, Any], v: Any,
               errors: list[dict[str, str]]) -> None:
        t = sch.get("type")
        if t and not _is_type(v, t):
            errors.append(_err("invalid_type", fld,
                               f"Invalid type. Expected: {t}, given: {_json_type(v)}"))
            return
        if "enum" in sch and not any(type(e) is type(v) and e == v for e in sch["enum"]):
            choices = ", ".join(json.dumps(e) for e in sch["enum"])
            errors.append(_err("enum", fld, f"{name} must be one of the following: {choices}"))
        if isinstance(v, int | float) and not isinstance(v, bool):
            if "maximum" in sch and v > sch["maximum"]:
                errors.append(_err("number_lte", fld,
                                   f"Must be less than or equal to {_num(sch['maximum'])}"))
            if "minimum" in sch and v < sch["minimum"]:
                errors.append(_err("number_gte", fld,
                                   f"Must be greater than or equal to {_num(sch['minimum'])}"))
        if isinstance(v, str) and sch.get("format") == "uri" and self.check_uri_format:
            u = urlparse(v)
            if not u.scheme or not (u.netloc or u.scheme == "data"):
                errors.append(_err("format", fld, "Does not match format 'uri'"))
        if isinstance(v, list) and isinstance(sch.get("items"), dict):
            for i, item in enumerate(v):
                self._check(f"{fld}.{i}", str(i), sch["items"], item, errors)

    async def _body(self, request: Request, allowed: set[str]) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return _problem(400, {"detail": f"Failed to parse request body as JSON: {exc}",
                                  "status": 400})
        if not isinstance(body, dict):
            return _validation_failed([_err("invalid_type", "", "Invalid type. Expected: "
                                            f"object, given: {_json_type(body)}")])
        errors = [_err("required", "", f"{k} is required")
                  for k in sorted({"input", "version"} & allowed) if k not in body]
        errors += [_err("additional_property_not_allowed", "", f"Additional property {k} is "
                        "not allowed") for k in body if k not in allowed]
        return _validation_failed(errors) if errors else body

    # ----------------------------------------------------------------- prediction routes
    async def _create_official(self, request: Request) -> Response:
        ref = f"{request.path_params['owner']}/{request.path_params['name']}"
        with self.cond:
            spec = self.models.get(ref)
        if spec is None:
            return _problem(404, MODEL_NOT_FOUND)
        if not spec.official:
            return _problem(422, INVALID_VERSION)
        return await self._create(request, spec, _ROOT_KEYS, "hidden")

    async def _create_versioned(self, request: Request) -> Response:
        body = await self._body(request, _ROOT_KEYS | {"version"})
        if isinstance(body, Response):
            return body
        ref = str(body["version"])
        vid = ref.rsplit(":", 1)[1] if ":" in ref else ref
        with self.cond:
            spec = self.versions.get(vid)
            if spec is not None and ":" in ref and ref.split(":", 1)[0] != spec.ref:
                spec = None
            if spec is None and ":" not in ref and "/" in ref:  # "owner/name": official only
                spec = self.models.get(ref)
                spec = spec if spec is not None and spec.official else None
                vid = "hidden"
        if spec is None:
            return _problem(422, INVALID_VERSION)
        return await self._create(request, spec, _ROOT_KEYS | {"version"}, vid, body)

    async def _create(self, request: Request, spec: ModelSpec, allowed: set[str],
                      version: str, body: dict[str, Any] | None = None) -> Response:
        prefer = request.headers.get("prefer")
        wait = None
        if prefer is not None:
            m = _PREFER.match(prefer.strip())
            if not m or not 1 <= int(m.group(1) or 60) <= 60:
                return _problem(400, {"title": "Invalid Prefer header", "status": 400,
                                      "detail": "Prefer must be 'wait' or 'wait=N' with N "
                                                "between 1 and 60"})
            wait = float(m.group(1) or 60)
        if body is None:
            got = await self._body(request, allowed)
            if isinstance(got, Response):
                return got
            body = got
        errors = self._validate(spec.input_schema, body["input"])
        if errors:
            return _validation_failed(errors)
        pred = self._start(spec, body["input"], version)
        headers = {}
        if wait is not None:
            headers["Preference-Applied"] = prefer.strip()  # type: ignore[union-attr]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pred.done.wait(), wait)
        with self.cond:
            snap = copy.deepcopy(pred.data)
        if snap["status"] not in TERMINAL:
            snap.update(status="starting", output=None, started_at=None, metrics={})
        return JSONResponse(snap, status_code=201, headers=headers)

    def _start(self, spec: ModelSpec, inp: dict[str, Any], version: str) -> _Pred:
        pid = _new_id()
        data = {"id": pid, "model": spec.ref, "version": version, "input": inp, "logs": "",
                "output": None, "error": None, "status": "starting",
                "created_at": _iso(_now()), "started_at": None, "completed_at": None,
                "data_removed": False, "source": "api", "metrics": {},
                "urls": {"get": f"{self.url}/v1/predictions/{pid}",
                         "cancel": f"{self.url}/v1/predictions/{pid}/cancel",
                         "web": f"https://replicate.com/p/{pid}",
                         "stream": f"{self.url}/v1/stream/{pid}"}}
        refs = self._file_refs(inp)
        with self.cond:
            pred = _Pred(data, spec, self.hold)
            error = self._fail_queue.pop(0) if self._fail_queue else None
            latency = self.latency_for.get(spec.ref, self.latency)
            self.file_inputs.extend(refs)
            missing = [r for r in refs if r not in self.files]
            self._preds[pid] = pred
            self._in_flight += 1
            self.max_in_flight_predictions = max(self.max_in_flight_predictions, self._in_flight)
        if missing and error is None:
            error = f"Could not download file {self.url}/v1/files/{missing[0]}: not found"
        pred.task = asyncio.create_task(self._progress(pred, latency, error))
        self.notify()
        return pred

    def _file_refs(self, value: Any) -> list[str]:
        prefix = f"{self.url}/v1/files/"
        if isinstance(value, str):
            return [value[len(prefix):]] if value.startswith(prefix) else []
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) \
            else []
        return [ref for item in items for ref in self._file_refs(item)]

    async def _progress(self, pred: _Pred, latency: float, error: str | None) -> None:
        await asyncio.sleep(0)
        with self.cond:
            pred.data.update(status="processing", started_at=_iso(_now()))
            pred.t_start = asyncio.get_running_loop().time()
        self.notify()
        if latency > 0:
            await asyncio.sleep(latency)
        if pred.hold:
            await pred.released.wait()
        output = None
        if error is None:
            try:
                output = self._make_output(pred)
            except Exception as exc:  # a failing output callable/factory fails the prediction
                error = f"{type(exc).__name__}: {exc}"
        self._finish(pred, "failed" if error else "succeeded", output, error)

    def _finish(self, pred: _Pred, status: str, output: Any = None,
                error: str | None = None) -> None:
        now = asyncio.get_running_loop().time()
        with self.cond:
            if pred.data["status"] in TERMINAL:
                return
            pred.data.update(status=status, output=output, error=error,
                             completed_at=_iso(_now()))
            if pred.t_start is not None:
                pred.data["metrics"] = {"predict_time": round(now - pred.t_start, 6),
                                        "total_time": round(now - pred.t0, 6)}
            self._in_flight -= 1
        pred.done.set()
        self.notify()

    def _make_output(self, pred: _Pred) -> Any:
        kind, inp = pred.spec.output, pred.data["input"]
        if callable(kind):
            return kind(copy.deepcopy(pred.data))
        if kind == "image":
            return self._image(pred, 0)
        if kind == "images":
            return [self._image(pred, i) for i in range(_output_count(inp, pred.spec.count))]
        if kind == "dict":
            return {"image": self._image(pred, 0), "mask": self._image(pred, 1),
                    "caption": f"a caption for {inp.get('prompt', 'the image')}"}
        words = str(inp.get("prompt", "fake output")).split() or ["fake"]
        if kind == "text":
            return "fake output: " + " ".join(words)
        if kind == "iterator":
            return ["fake ", "output: ", *[w + " " for w in words]]
        raise ValueError(f"unknown output kind {kind!r}")

    def _image(self, pred: _Pred, index: int) -> str:
        fmt = pred.data["input"].get("output_format",  # else the schema default, else webp
                                     pred.spec.input_schema.get("properties", {})
                                     .get("output_format", {}).get("default"))
        ext = fmt if isinstance(fmt, str) and fmt in _FORMATS else "webp"
        with self.cond:
            self._image_counter += 1
            n = self._image_counter
        if self.image_factory is not None:
            content, ctype = self.image_factory(copy.deepcopy(pred.data))
        else:
            content, ctype = render_image(n, ext, self.image_size)
        name = f"out-{index}.{ext}"
        with self.cond:
            self.outputs[(pred.data["id"], name)] = (content, ctype)
        if self.output_mode == "data":
            return f"data:{ctype};base64,{base64.b64encode(content).decode()}"
        return f"{self.file_base_url or self.url}/files/{pred.data['id']}/{name}"

    async def _get_prediction(self, request: Request) -> Response:
        with self.cond:
            pred = self._preds.get(request.path_params["pid"])
            snap = copy.deepcopy(pred.data) if pred else None
        return JSONResponse(snap) if snap else _problem(404, NOT_FOUND)

    async def _cancel(self, request: Request) -> Response:
        pid = request.path_params["pid"]
        with self.cond:
            pred = self._preds.get(pid)
            if pred is not None:
                self.cancels.append(pid)
        if pred is None:
            return _problem(404, NOT_FOUND)
        if pred.task is not None and pred.data["status"] not in TERMINAL:
            pred.task.cancel()
        self._finish(pred, "canceled")
        self.notify()
        with self.cond:
            return JSONResponse(copy.deepcopy(pred.data))

    # ----------------------------------------------------------------- models and versions
    def _spec_for(self, request: Request) -> ModelSpec | None:
        with self.cond:
            return self.models.get(f"{request.path_params['owner']}/{request.path_params['name']}")

    @staticmethod
    def _version_obj(spec: ModelSpec) -> dict[str, Any]:
        return {"id": spec.version, "created_at": spec.created_at, "cog_version": "0.9.4",
                "openapi_schema": {"openapi": "3.0.2", "info": {"title": "Cog", "version": "0.1.0"},
                                   "paths": {}, "components": {"schemas": {
                                       "Input": {"title": "Input", **spec.input_schema},
                                       "Output": {"title": "Output", **spec.output_schema}}}}}

    async def _get_model(self, request: Request) -> Response:
        spec = self._spec_for(request)
        if spec is None:
            return _problem(404, MODEL_NOT_FOUND)
        owner, name = spec.ref.split("/", 1)
        return JSONResponse({"url": f"https://replicate.com/{spec.ref}", "owner": owner,
                             "name": name, "description": spec.description,
                             "visibility": "public", "github_url": None, "paper_url": None,
                             "license_url": None, "run_count": 0, "cover_image_url": None,
                             "default_example": None, "latest_version": self._version_obj(spec)})

    async def _get_version(self, request: Request) -> Response:
        p = request.path_params
        with self.cond:
            spec = self.versions.get(p["vid"])
        if spec is None or spec.ref != f"{p['owner']}/{p['name']}":
            return _problem(404, NOT_FOUND)
        return JSONResponse(self._version_obj(spec))

    # ----------------------------------------------------------------- files
    async def _upload(self, request: Request) -> Response:
        async with request.form() as form:
            part = form.get("content")
            if part is None or isinstance(part, str):
                return _validation_failed([_err("required", "", "content is required")])
            content = await part.read()
            try:
                metadata = json.loads(str(form.get("metadata") or "{}"))
            except ValueError:
                return _problem(400, {"detail": "metadata must be JSON", "status": 400})
            name = part.filename or "file"
            ctype = part.content_type or "application/octet-stream"
        if len(content) > self.max_upload_bytes:
            return _problem(413, TOO_LARGE)
        fid, now = _new_id(), _now()
        meta = {"id": fid, "name": name, "content_type": ctype, "size": len(content),
                "etag": hashlib.md5(content).hexdigest(),
                "checksums": {"sha256": hashlib.sha256(content).hexdigest(),
                              "md5": hashlib.md5(content).hexdigest()},
                "metadata": metadata, "created_at": _iso(now),
                "expires_at": _iso(now + dt.timedelta(days=1)),
                "urls": {"get": f"{self.url}/v1/files/{fid}"}}
        with self.cond:
            self.files[fid] = UploadedFile(fid, name, ctype, content, meta)
        self.notify()
        return JSONResponse(meta, status_code=201)

    async def _list_files(self, request: Request) -> Response:
        with self.cond:
            results = [f.json for f in self.files.values()]
        return JSONResponse({"results": results, "next": None, "previous": None})

    async def _file_meta(self, request: Request) -> Response:
        fid = request.path_params["fid"]
        with self.cond:
            f = self.files.get(fid)
            if f is not None and request.method == "DELETE":
                del self.files[fid]
        if f is None:
            return _problem(404, NOT_FOUND)
        self.notify()
        return Response(status_code=204) if request.method == "DELETE" else JSONResponse(f.json)

    async def _download(self, request: Request) -> Any:
        with self.cond:
            item = self.outputs.get((request.path_params["pid"], request.path_params["fname"]))
            drop = self.drop_downloads > 0
            self.drop_downloads -= drop
        if item is None or self.expire_files:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        if self.download_rate <= 0 and not drop and self.download_tail_gate is None:
            return Response(item[0], media_type=item[1])
        return _Paced(item[0], item[1], rate=self.download_rate, chunk=self.download_chunk, drop=drop,
                      length=self.download_length, tail_gate=self.download_tail_gate)
