"""Loopback fake of ModelScope API-Inference image generation (async mode).

Also home of the machinery the three image-vendor fakes share (``VendorFake``,
``Recorded``): this folder's file list is fixed, so the DashScope and Ideogram fakes
import it from here.

Wire behaviour follows the "Test-server specification for ModelScope" in
/work/shared/reference/oss-modelscope-dashscope-ideogram.md §2:

* ``POST /v1/images/generations`` — ``Authorization: Bearer <key>`` (else 401
  ``{"errors":{"message":"Invalid token"},"request_id":…}``), ``X-ModelScope-Async-Mode:
  true``, JSON with ``model`` and ``prompt``; ``size`` ``^\\d+x\\d+$`` with 64..2048 a
  side; ``steps`` 1..100, ``guidance`` 1.5..20, ``seed`` 0..2**31-1. Replies
  ``{"task_id","request_id"}`` plus ``modelscope-ratelimit-*`` quota headers.
* ``GET /v1/tasks/{id}`` — needs ``X-ModelScope-Task-Type: image_generation``, else
  (and for unknown ids) HTTP 200 ``{"task_status":"FAILED","errors":{"code":500,
  "message":"task not found"}}``. Statuses PENDING → RUNNING → **SUCCEED** (not
  SUCCEEDED) with ``output_images``, or FAILED with ``errors.message``.
* ``GET /img/{name}`` — the generated image.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import anyio
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes._images import make_png
from tests.fakes._server import LoopbackServer, Waitable

__all__ = [
    "HOLD_LIMIT",
    "ImageFactory",
    "MODELSCOPE_401_BODY",
    "MODELSCOPE_429_BODY",
    "MODELSCOPE_429_HEADERS",
    "MODELSCOPE_500_BODY",
    "MODELSCOPE_TASK_NOT_FOUND",
    "ModelScopeFake",
    "Recorded",
    "RecordedFile",
    "VendorFake",
    "is_int",
    "is_number",
    "json_response",
    "new_id",
]

# ---------------------------------------------------------------------------
# Shared machinery
# ---------------------------------------------------------------------------

ImageFactory = Callable[[dict[str, Any]], tuple[bytes, str]]

_serial = itertools.count(1)  # process-wide, so default images differ across fakes too
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
HOLD_LIMIT = 60.0  # a held request/task never waits longer than this on the server side


@dataclass
class RecordedFile:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Recorded:
    """One request as the fake saw it (injected, reset and downloads included)."""

    method: str
    path: str
    headers: dict[str, str]          # lower-case names
    query: dict[str, str]
    body: bytes
    json: Any = None                 # parsed JSON body, when the body was JSON
    form: dict[str, Any] | None = None   # text form fields; a repeated field gives a list
    files: dict[str, list[RecordedFile]] = field(default_factory=dict)
    status: int | None = None        # response status; None while in flight or if reset
    reset: bool = False              # the connection was dropped instead of answered
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Injection:
    status: int | None                # None: drop the connection
    body: Any
    headers: dict[str, str] | None
    times: int
    method: str | None
    path_prefix: str | None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


def new_id() -> str:
    return str(uuid.uuid4())


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, (bytes, str)):  # an explicit content-type header wins
        return Response(body, status_code=status, headers=headers, media_type="text/plain")
    return JSONResponse(body, status_code=status, headers=headers)


class VendorFake(Waitable):
    """State and knobs common to the image-vendor fakes.

    Subclasses provide ``build_routes()``, ``error_body(status)`` and the vendor rules.
    """

    vendor = "base"
    TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"})

    def __init__(self, api_key: str = "test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.url: str | None = None
        self.server: LoopbackServer | None = None
        self._reset_state()

    def reset(self) -> None:
        """Forget everything and restore every knob to its default (the server keeps
        running), so one fake can serve many tests."""
        with self.cond:
            self._reset_state()
            self.cond.notify_all()

    def _reset_state(self) -> None:
        # Slots opened before a reset must not be closed against the new counters.
        self._generation = getattr(self, "_generation", 0) + 1
        self.steps_before_done = 1       # polls a task stays non-terminal (async vendors)
        self.latency = 0.0               # server-side delay of synchronous generations
        self.hold = False                # keep tasks RUNNING / sync requests waiting
        self.image_factory: ImageFactory | None = None
        self.image_size: tuple[int, int] | None = (64, 64)  # None: the requested size
        self.requests: list[Recorded] = []
        self.tasks: dict[str, dict[str, Any]] = {}
        self.images: dict[str, tuple[bytes, str]] = {}
        self.cancels: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._injections: list[_Injection] = []
        self._failures: list[dict[str, Any]] = []

    # -- lifecycle -------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[Self]:
        app = Starlette(routes=self.build_routes())
        server = LoopbackServer(_FrontDoor(self, app))
        self.server = server
        self.url = server.url
        with server.running():
            yield self

    def build_routes(self) -> list[Route]:  # pragma: no cover - abstract
        raise NotImplementedError

    def error_body(self, status: int) -> tuple[Any, dict[str, str]]:  # pragma: no cover
        raise NotImplementedError

    # -- scripting knobs -------------------------------------------------------
    def inject(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
               times: int = 1, method: str | None = None, path_prefix: str | None = None) -> None:
        """The next ``times`` matching requests get ``status`` (vendor's body if None)."""
        with self.cond:
            self._injections.append(_Injection(status, body, headers, times, method, path_prefix))
            self.cond.notify_all()

    def inject_reset(self, times: int = 1, path_prefix: str | None = None,
                     method: str | None = None) -> None:
        """The next ``times`` matching requests get their connection dropped (RST)."""
        with self.cond:
            self._injections.append(_Injection(None, None, None, times, method, path_prefix))
            self.cond.notify_all()

    def fail_tasks(self, n: int = 1, message: str = "Image generation failed.",
                   code: str | None = None) -> None:
        """The next ``n`` generations end failed with ``message`` (vendor-shaped)."""
        with self.cond:
            self._failures.extend({"message": message, "code": code} for _ in range(n))
            self.cond.notify_all()

    def release(self) -> None:
        """End ``hold``: held tasks finish on their next poll, held requests return."""
        with self.cond:
            self.hold = False
            self.cond.notify_all()

    def expire(self, task_id: str) -> None:
        """Forget a task as the vendor does after its retention period."""
        with self.cond:
            task = self.tasks.get(task_id)
            if task is not None:
                if task["state"] not in self.TERMINAL:
                    self._close_slot(task["generation"])
                task["expired"] = True
                for name in task["image_names"]:
                    self.images.pop(name, None)
            self.cond.notify_all()

    # -- helpers for subclasses ------------------------------------------------
    def _take_injection(self, method: str, path: str) -> _Injection | None:
        with self.cond:
            for inj in self._injections:
                if inj.times > 0 and inj.matches(method, path):
                    inj.times -= 1
                    if inj.times <= 0:
                        self._injections.remove(inj)
                    return inj
        return None

    def _take_failure(self) -> dict[str, Any] | None:
        with self.cond:
            return self._failures.pop(0) if self._failures else None

    def _open_slot(self) -> int:
        with self.cond:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.cond.notify_all()
            return self._generation

    def _close_slot(self, generation: int) -> None:
        with self.cond:
            if generation == self._generation:
                self.in_flight -= 1
            self.cond.notify_all()

    def _new_task(self, **fields: Any) -> dict[str, Any]:
        task: dict[str, Any] = {
            "id": new_id(), "vendor": self.vendor, "state": "PENDING", "polls": 0,
            "failure": self._take_failure(), "image_names": [], "expired": False,
            "n": 1, "width": 1024, "height": 1024, "created": time.time(),
        }
        task.update(fields)
        with self.cond:
            self.tasks[task["id"]] = task
            task["generation"] = self._open_slot()
        return task

    def _advance(self, task: dict[str, Any]) -> str:
        """One poll of ``task``: returns its state (PENDING/RUNNING/SUCCEEDED/FAILED/...)."""
        with self.cond:
            if task["state"] in self.TERMINAL:
                return task["state"]
            i = task["polls"]
            task["polls"] += 1
            if self.hold or i < self.steps_before_done:
                state = "PENDING" if i == 0 and self.steps_before_done >= 2 else "RUNNING"
            else:
                state = "FAILED" if task["failure"] else "SUCCEEDED"
                if state == "SUCCEEDED":
                    self._render(task)
                self._close_slot(task["generation"])
            task["state"] = state
            self.cond.notify_all()
            return state

    def _render(self, task: dict[str, Any]) -> list[str]:
        """Make the task's images (``task["n"]`` of them); returns their names."""
        names = []
        for index in range(task["n"]):
            if self.image_factory is not None:
                data, ctype = self.image_factory(dict(task, index=index))
            else:
                size = self.image_size or (task["width"], task["height"])
                data, ctype = make_png(next(_serial), size), "image/png"
            name = f"{task['id']}-{index}.{_EXT.get(ctype.split(';')[0].strip(), 'bin')}"
            self.images[name] = (data, ctype)
            names.append(name)
        task["image_names"] = names
        return names

    async def _sync_wait(self) -> None:
        """Latency and hold for synchronous generations (server side, bounded)."""
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        deadline = time.monotonic() + HOLD_LIMIT
        while self.hold and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def _serve_image(self, name: str) -> Response:
        found = self.images.get(name)
        if found is None:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        data, ctype = found
        return Response(data, media_type=ctype)

    def auth_bearer(self, request: Request) -> bool:
        return request.headers.get("authorization", "") == f"Bearer {self.api_key}"


class _FrontDoor:
    """Outermost ASGI layer: records every request, applies injections and resets."""

    def __init__(self, fake: VendorFake, app: Any) -> None:
        self.fake = fake
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self._nodelay(send)
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            key = k.decode("latin-1").lower()
            val = v.decode("latin-1")
            headers[key] = f"{headers[key]}, {val}" if key in headers else val
        request = Request(scope, replay)
        rec = Recorded(method=scope["method"], path=scope["path"], headers=headers,
                       query=dict(request.query_params), body=body)
        await self._parse_body(rec, scope, body)
        fake = self.fake
        with fake.cond:
            fake.requests.append(rec)
            fake.cond.notify_all()

        injection = fake._take_injection(rec.method, rec.path)
        if injection is not None and injection.status is None:
            with fake.cond:  # before the RST: the client may look as soon as it sees it
                rec.reset = True
                fake.cond.notify_all()
            await self._reset(send, receive)
            return
        if injection is not None:
            response_body, response_headers = injection.body, dict(injection.headers or {})
            if response_body is None:
                default_body, default_headers = fake.error_body(injection.status)
                response_body = default_body
                response_headers = {**default_headers, **response_headers}
            response = json_response(injection.status, response_body, response_headers)
            with fake.cond:  # recorded before the client can see the response
                rec.status = injection.status
                fake.cond.notify_all()
            await response(scope, replay, send)
            return

        replayed = False

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                with fake.cond:
                    rec.status = message["status"]
                    fake.cond.notify_all()
            await send(message)

        await self.app(scope, replay, send_wrapper)

    @staticmethod
    def _nodelay(send: Any) -> None:
        """Disable Nagle on the server side of the connection: uvicorn writes headers and
        body separately, and with Nagle plus the client's delayed ACK every response
        would take ~40 ms."""
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @staticmethod
    async def _parse_body(rec: Recorded, scope: dict[str, Any], body: bytes) -> None:
        ctype = rec.headers.get("content-type", "")
        if "json" in ctype:
            with contextlib.suppress(ValueError):
                rec.json = json.loads(body)
        elif ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            sent = False

            async def once() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            try:
                form = await Request(scope, once).form()
            except Exception:  # malformed form: the route will answer 400
                return
            try:
                fields: dict[str, Any] = {}
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        rec.files.setdefault(key, []).append(
                            RecordedFile(value.filename, value.content_type, await value.read()))
                    elif key in fields:
                        prev = fields[key]
                        fields[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
                    else:
                        fields[key] = value
                rec.form = fields
            finally:
                await form.close()

    @staticmethod
    async def _reset(send: Any, receive: Any) -> None:
        """Abort the TCP connection with an RST, without any response bytes."""
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:  # not uvicorn's cycle: the best we can do is no response
            raise ConnectionAbortedError("fake reset")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        # Let uvicorn see the disconnect, so it does not try to answer 500 itself.
        with anyio.move_on_after(2):
            while (await receive())["type"] != "http.disconnect":
                pass


# ---------------------------------------------------------------------------
# ModelScope
# ---------------------------------------------------------------------------

MODELSCOPE_401_BODY: dict[str, Any] = {"errors": {"message": "Invalid token"}}
# [U] the exact 429 wording is not documented; errors.message is the parsed shape.
MODELSCOPE_429_BODY: dict[str, Any] = {
    "errors": {"message": "Request limit exceeded, please try again later."}}
MODELSCOPE_429_HEADERS: dict[str, str] = {
    "modelscope-ratelimit-requests-limit": "2000",
    "modelscope-ratelimit-requests-remaining": "0",
    "modelscope-ratelimit-model-requests-limit": "200",
    "modelscope-ratelimit-model-requests-remaining": "0",
}
# Seen in the wild (Tongyi-MAI/Z-Image issue #159).
MODELSCOPE_500_BODY: dict[str, Any] = {
    "errors": {"message": "Server is busy, please try again later"}}
MODELSCOPE_TASK_NOT_FOUND: dict[str, Any] = {
    "task_status": "FAILED", "errors": {"code": 500, "message": "task not found"}}

_MS_SIZE = re.compile(r"^(\d+)x(\d+)$")
_MS_STATUS = {"PENDING": "PENDING", "RUNNING": "RUNNING", "SUCCEEDED": "SUCCEED",
              "FAILED": "FAILED"}


class ModelScopeFake(VendorFake):
    """ModelScope API-Inference: async submit + poll with ``SUCCEED``."""

    vendor = "modelscope"

    def _reset_state(self) -> None:
        super()._reset_state()
        self.known_models: set[str] | None = None   # None: any model id exists
        self.quota_limit = 2000
        self.quota_remaining = 2000
        self.model_quota_limit = 200
        self.model_quota_remaining: dict[str, int] = {}

    # -- vendor shapes -----------------------------------------------------------
    def error_body(self, status: int) -> tuple[Any, dict[str, str]]:
        if status == 401:
            body, headers = MODELSCOPE_401_BODY, {}
        elif status == 429:
            body, headers = MODELSCOPE_429_BODY, dict(MODELSCOPE_429_HEADERS)
        elif status >= 500:
            body, headers = MODELSCOPE_500_BODY, {}
        else:
            body, headers = {"errors": {"message": f"HTTP {status}"}}, {}
        return {**copy.deepcopy(body), "request_id": new_id()}, headers

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        rid = new_id()
        return JSONResponse({"errors": {"message": message}, "request_id": rid},
                            status_code=status, headers={"x-request-id": rid, **(headers or {})})

    def _quota_headers(self, model: str) -> dict[str, str]:
        return {
            "modelscope-ratelimit-requests-limit": str(self.quota_limit),
            "modelscope-ratelimit-requests-remaining": str(self.quota_remaining),
            "modelscope-ratelimit-model-requests-limit": str(self.model_quota_limit),
            "modelscope-ratelimit-model-requests-remaining":
                str(self.model_quota_remaining.get(model, self.model_quota_limit)),
        }

    def build_routes(self) -> list[Route]:
        return [
            Route("/v1/images/generations", self._submit, methods=["POST"]),
            Route("/v1/tasks/{task_id}", self._poll, methods=["GET"]),
            Route("/img/{name}", self._image, methods=["GET"]),
        ]

    def _validate(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "request body must be a JSON object"
        model = body.get("model")
        if not isinstance(model, str) or not model.strip():
            return "model is required"
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return "prompt is required"
        if len(prompt) >= 2000:
            return "prompt must be shorter than 2000 characters"
        neg = body.get("negative_prompt")
        if neg is not None and (not isinstance(neg, str) or len(neg) >= 2000):
            return "negative_prompt must be a string shorter than 2000 characters"
        if "size" in body:
            m = _MS_SIZE.match(body["size"]) if isinstance(body["size"], str) else None
            if m is None or not all(64 <= int(side) <= 2048 for side in m.groups()):
                return f"invalid size {body['size']!r}: expected WxH, each side 64..2048"
        if "seed" in body and not (is_int(body["seed"]) and 0 <= body["seed"] <= 2**31 - 1):
            return "seed must be an integer in [0, 2147483647]"
        if "steps" in body and not (is_int(body["steps"]) and 1 <= body["steps"] <= 100):
            return "steps must be an integer in [1, 100]"
        if "guidance" in body and not (is_number(body["guidance"])
                                       and 1.5 <= body["guidance"] <= 20):
            return "guidance must be a number in [1.5, 20]"
        if "image_url" in body:
            url = body["image_url"]
            urls = url if isinstance(url, list) else [url]
            if not urls or not all(isinstance(u, str) and u for u in urls):
                return "image_url must be a URL string or a list of them"
        return None

    async def _submit(self, request: Request) -> Response:
        if not self.auth_bearer(request):
            return self._error(401, MODELSCOPE_401_BODY["errors"]["message"])
        if request.headers.get("x-modelscope-async-mode", "").lower() != "true":
            return self._error(400, "this fake only speaks async mode: "
                                    "send X-ModelScope-Async-Mode: true")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._error(400, "request body is not valid JSON")
        problem = self._validate(body)
        if problem:
            return self._error(400, problem)
        model = body["model"]
        if self.known_models is not None and model not in self.known_models:
            return self._error(404, f"Model {model} not found")
        with self.cond:
            model_left = self.model_quota_remaining.get(model, self.model_quota_limit)
            if self.quota_remaining <= 0 or model_left <= 0:
                return self._error(429, MODELSCOPE_429_BODY["errors"]["message"],
                                   self._quota_headers(model))
            self.quota_remaining -= 1
            self.model_quota_remaining[model] = model_left - 1
            width, height = 1024, 1024
            if "size" in body:
                width, height = (int(s) for s in body["size"].split("x"))
            task = self._new_task(model=model, prompt=body["prompt"], size=body.get("size"),
                                  seed=body.get("seed"), image_url=body.get("image_url"),
                                  width=width, height=height, params=body)
            headers = self._quota_headers(model)
        rid = new_id()
        return JSONResponse({"task_id": task["id"], "request_id": rid},
                            headers={"x-request-id": rid, **headers})

    async def _poll(self, request: Request) -> Response:
        if not self.auth_bearer(request):
            return self._error(401, MODELSCOPE_401_BODY["errors"]["message"])
        rid = new_id()
        task = self.tasks.get(request.path_params["task_id"])
        if (request.headers.get("x-modelscope-task-type") != "image_generation"
                or task is None or task["expired"]):
            return JSONResponse({**copy.deepcopy(MODELSCOPE_TASK_NOT_FOUND), "request_id": rid},
                                headers={"x-request-id": rid})
        state = self._advance(task)
        reply: dict[str, Any] = {"task_id": task["id"], "task_status": _MS_STATUS[state],
                                 "request_id": rid}
        if state == "SUCCEEDED":
            reply["output_images"] = [f"{self.url}/img/{n}" for n in task["image_names"]]
        elif state == "FAILED":
            errors: dict[str, Any] = {"message": task["failure"]["message"]}
            if task["failure"].get("code") is not None:
                errors["code"] = task["failure"]["code"]
            reply["errors"] = errors
        return JSONResponse(reply, headers={"x-request-id": rid})

    async def _image(self, request: Request) -> Response:
        return self._serve_image(request.path_params["name"])

