"""Loopback fake of Aliyun DashScope (Model Studio) image synthesis.

Wire behaviour follows the "Test-server specification for DashScope" in
/work/shared/reference/oss-modelscope-dashscope-ideogram.md §3. Everything lives
under ``/api/v1`` (point the code under test at ``fake.url + "/api/v1"``):

* ``POST /services/aigc/text2image/image-synthesis`` and
  ``/services/aigc/image2image/image-synthesis`` — Bearer key (else 401
  ``InvalidApiKey``), ``X-DashScope-Async: enable`` (else 403 ``AccessDenied``), JSON
  ``{"model","input":{"prompt",…},"parameters":{"size":"W*H","n","seed",…}}``. Sizes
  use ``*``; an ``x`` is a 400 ``InvalidParameter``. ``n`` 1..4 — **omitted ``n``
  makes 4 images**, as the real service does (recorded in ``n_defaulted``).
  Reply ``{"output":{"task_id","task_status":"PENDING"},"request_id"}``.
* ``GET /tasks/{id}`` — PENDING → RUNNING → **SUCCEEDED** with ``output.results``,
  ``task_metrics`` and ``usage.image_count``; failures are ``FAILED`` with
  ``code``/``message`` **at HTTP 200**; unknown or expired ids → HTTP 200 ``UNKNOWN``.
* ``POST /tasks/{id}/cancel`` — cancels a PENDING task (``CANCELED``), else 400.
* ``POST /services/aigc/multimodal-generation/generation`` — synchronous
  qwen-image-edit style ``choices`` reply; rejects the async header with 403.
* ``GET /r/{name}`` — result images (403 once the task is expired).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.modelscope_fake import VendorFake, is_int, new_id

__all__ = [
    "DASHSCOPE_401_BODY",
    "DASHSCOPE_403_ASYNC_BODY",
    "DASHSCOPE_403_SYNC_BODY",
    "DASHSCOPE_429_BODY",
    "DASHSCOPE_500_BODY",
    "DASHSCOPE_503_BODY",
    "DASHSCOPE_CANCEL_REFUSED_BODY",
    "DashScopeFake",
]

DASHSCOPE_401_BODY: dict[str, Any] = {"code": "InvalidApiKey",
                                      "message": "Invalid API-key provided."}
# No X-DashScope-Async on an async-only model (image-synthesis).
DASHSCOPE_403_SYNC_BODY: dict[str, Any] = {
    "code": "AccessDenied", "message": "current user api does not support synchronous calls"}
# X-DashScope-Async on a sync-only model (multimodal-generation).
DASHSCOPE_403_ASYNC_BODY: dict[str, Any] = {
    "code": "AccessDenied", "message": "current user api does not support asynchronous calls"}
DASHSCOPE_429_BODY: dict[str, Any] = {
    "code": "Throttling.RateQuota",
    "message": "Requests rate limit exceeded, please try again later."}
DASHSCOPE_500_BODY: dict[str, Any] = {
    "code": "InternalError",
    "message": "An internal error has occured, please try again later or contact service support."}
DASHSCOPE_503_BODY: dict[str, Any] = {
    "code": "ServiceUnavailable",
    "message": "The service is temporarily unavailable, please try again later."}
DASHSCOPE_CANCEL_REFUSED_BODY: dict[str, Any] = {
    "code": "UnsupportedOperation",
    "message": "Failed to cancel the task, please confirm if the task is in PENDING status."}

_SIZE = re.compile(r"^(\d+)\*(\d+)$")
_QWEN_SIZES = frozenset({"1664*928", "1472*1140", "1328*1328", "1140*1472", "928*1664"})
_EDIT_FUNCTIONS = frozenset({
    "description_edit", "description_edit_with_mask", "stylization_all", "stylization_local",
    "remove_watermark", "expand", "super_resolution", "colorization", "doodle",
    "control_cartoon_feature"})
_EXPIRED_XML = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>AccessDenied</Code>\n'
                b"  <Message>Request has expired.</Message>\n</Error>\n")


def _stamp(when: float | None = None) -> str:
    moment = dt.datetime.fromtimestamp(when) if when is not None else dt.datetime.now()
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def check_size(model: str, size: Any) -> str | None:
    """None when ``size`` suits ``model``, else the InvalidParameter message.

    Published limits (alibabacloud.com/help/en/model-studio/text-to-image-v2-api-reference, read
    2026-12-01): wan2.2-t2i-plus/-flash and every wanx2.x model take 512..1440 pixels a side;
    wan2.5-t2i-preview (and wan2.6-t2i) a total of 768*768..1440*1440 pixels, aspect 1:4..4:1.
    """
    m = _SIZE.match(size) if isinstance(size, str) else None
    if m is None:
        return f"The size {size!r} is invalid: use width*height, e.g. 1024*1024."
    w, h = int(m.group(1)), int(m.group(2))
    if model.startswith("qwen-image"):
        if size not in _QWEN_SIZES:
            return f"The size {size} is not supported by {model}."
    elif model.startswith("wan2.5"):
        if not (768 * 768 <= w * h <= 1440 * 1440) or not (0.25 <= w / h <= 4):
            return f"The size {size} is out of range for {model}."
    elif not (512 <= w <= 1440 and 512 <= h <= 1440):
        return f"The size {size} is out of range: width and height must be in [512, 1440]."
    return None


class DashScopeFake(VendorFake):
    """DashScope async image synthesis (and the sync multimodal endpoint)."""

    vendor = "dashscope"

    def _reset_state(self) -> None:
        super()._reset_state()
        self.known_models: set[str] | None = None   # None: any model exists
        self.n_defaulted: list[str] = []            # task ids submitted without n

    def fail_tasks(self, n: int = 1, message: str = "Image generation failed.",
                   code: str | None = "InternalError.Algo") -> None:
        super().fail_tasks(n, message, code)

    # -- vendor shapes -----------------------------------------------------------
    def error_body(self, status: int) -> tuple[Any, dict[str, str]]:
        body = {401: DASHSCOPE_401_BODY, 403: DASHSCOPE_403_SYNC_BODY, 429: DASHSCOPE_429_BODY,
                503: DASHSCOPE_503_BODY}.get(status)
        if body is None:
            body = DASHSCOPE_500_BODY if status >= 500 else {
                "code": "InvalidParameter", "message": f"HTTP {status}"}
        return {**copy.deepcopy(body), "request_id": new_id()}, {}

    @staticmethod
    def _error(status: int, code: str, message: str) -> Response:
        return JSONResponse({"code": code, "message": message, "request_id": new_id()},
                            status_code=status)

    def _err(self, status: int, template: dict[str, Any]) -> Response:
        return self._error(status, template["code"], template["message"])

    def build_routes(self) -> list[Route]:
        base = "/api/v1"
        return [
            Route(f"{base}/services/aigc/text2image/image-synthesis",
                  self._submit_t2i, methods=["POST"]),
            Route(f"{base}/services/aigc/image2image/image-synthesis",
                  self._submit_i2i, methods=["POST"]),
            Route(f"{base}/services/aigc/multimodal-generation/generation",
                  self._multimodal, methods=["POST"]),
            Route(f"{base}/tasks/{{task_id}}", self._poll, methods=["GET"]),
            Route(f"{base}/tasks/{{task_id}}/cancel", self._cancel, methods=["POST"]),
            Route("/r/{name}", self._image, methods=["GET"]),
        ]

    # -- validation ----------------------------------------------------------------
    def _common(self, request: Request,
                raw: bytes) -> tuple[dict[str, Any] | None, Response | None]:
        if not self.auth_bearer(request):
            return None, self._err(401, DASHSCOPE_401_BODY)
        try:
            body = json.loads(raw)
        except ValueError:
            return None, self._error(400, "InvalidParameter", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return None, self._error(400, "InvalidParameter", "The request body must be an object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return None, self._error(400, "InvalidParameter", "Model not specified.")
        if self.known_models is not None and model not in self.known_models:
            return None, self._error(400, "InvalidParameter", "Model not exist.")
        if not isinstance(body.get("input"), dict):
            return None, self._error(400, "InvalidParameter", "input is required.")
        params = body.get("parameters", {})
        if not isinstance(params, dict):
            return None, self._error(400, "InvalidParameter", "parameters must be an object.")
        if "seed" in params and not (is_int(params["seed"]) and 0 <= params["seed"] <= 2147483647):
            return None, self._error(400, "InvalidParameter",
                                     "seed must be an integer in [0, 2147483647].")
        return body, None

    def _synthesis(self, body: dict[str, Any], kind: str) -> Response:
        model, inp = body["model"], body["input"]
        params = body.get("parameters", {})
        prompt = inp.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return self._error(400, "InvalidParameter", "input.prompt is required.")
        if len(prompt) > 2000:  # wan/qwen prompts: at most ~800 words / 2000 characters
            return self._error(400, "InvalidParameter", "input.prompt is too long.")
        if kind == "image2image":
            if inp.get("function") not in _EDIT_FUNCTIONS:
                return self._error(400, "InvalidParameter",
                                   f"input.function {inp.get('function')!r} is not supported.")
            if not isinstance(inp.get("base_image_url"), str) or not inp["base_image_url"]:
                return self._error(400, "InvalidParameter", "input.base_image_url is required.")
            if (inp["function"] == "description_edit_with_mask"
                    and not isinstance(inp.get("mask_image_url"), str)):
                return self._error(400, "InvalidParameter", "input.mask_image_url is required.")
        width, height = 1024, 1024
        if "size" in params:
            problem = check_size(model, params["size"])
            if problem:
                return self._error(400, "InvalidParameter", problem)
            width, height = (int(s) for s in params["size"].split("*"))
        n_defaulted = "n" not in params
        n = 4 if n_defaulted else params["n"]
        if not n_defaulted and not (is_int(n) and 1 <= n <= 4):
            return self._error(400, "InvalidParameter", "n must be an integer in [1, 4].")
        if model.startswith("qwen-image") and n != 1:
            return self._error(400, "InvalidParameter", f"n must be 1 for {model}.")
        with self.cond:
            task = self._new_task(kind=kind, model=model, prompt=prompt, n=n,
                                  n_defaulted=n_defaulted, size=params.get("size"),
                                  seed=params.get("seed"), width=width, height=height,
                                  params=body)
            if n_defaulted:
                self.n_defaulted.append(task["id"])
        return JSONResponse({"output": {"task_id": task["id"], "task_status": "PENDING"},
                             "request_id": new_id()})

    # -- routes --------------------------------------------------------------------
    async def _submit(self, request: Request, kind: str) -> Response:
        body, error = self._common(request, await request.body())
        if error is not None:
            return error
        assert body is not None
        if request.headers.get("x-dashscope-async", "").lower() != "enable":
            return self._err(403, DASHSCOPE_403_SYNC_BODY)
        return self._synthesis(body, kind)

    async def _submit_t2i(self, request: Request) -> Response:
        return await self._submit(request, "text2image")

    async def _submit_i2i(self, request: Request) -> Response:
        return await self._submit(request, "image2image")

    async def _poll(self, request: Request) -> Response:
        if not self.auth_bearer(request):
            return self._err(401, DASHSCOPE_401_BODY)
        task_id = request.path_params["task_id"]
        task = self.tasks.get(task_id)
        if task is None or task["expired"]:
            return JSONResponse({"request_id": new_id(),
                                 "output": {"task_id": task_id, "task_status": "UNKNOWN"}})
        state = self._advance(task)
        output: dict[str, Any] = {"task_id": task["id"], "task_status": state,
                                  "submit_time": _stamp(task["created"])}
        reply: dict[str, Any] = {"request_id": new_id(), "output": output}
        if state != "PENDING":
            output["scheduled_time"] = _stamp(task["created"])
        if state in ("PENDING", "RUNNING"):
            output["task_metrics"] = {"TOTAL": task["n"], "SUCCEEDED": 0, "FAILED": 0}
        elif state == "SUCCEEDED":
            task.setdefault("end_time", _stamp())
            output["end_time"] = task["end_time"]
            extend = task["params"].get("parameters", {}).get("prompt_extend", True)
            results = []
            for name in task["image_names"]:
                item = {"url": f"{self.url}/r/{name}", "orig_prompt": task["prompt"]}
                if extend is not False:
                    item["actual_prompt"] = f"{task['prompt']}, highly detailed, soft natural light"
                results.append(item)
            output["results"] = results
            output["task_metrics"] = {"TOTAL": task["n"], "SUCCEEDED": task["n"], "FAILED": 0}
            reply["usage"] = {"image_count": task["n"]}
        elif state == "FAILED":
            task.setdefault("end_time", _stamp())
            output["end_time"] = task["end_time"]
            output["code"] = task["failure"].get("code") or "InternalError.Algo"
            output["message"] = task["failure"]["message"]
        return JSONResponse(reply)

    async def _cancel(self, request: Request) -> Response:
        if not self.auth_bearer(request):
            return self._err(401, DASHSCOPE_401_BODY)
        task = self.tasks.get(request.path_params["task_id"])
        with self.cond:
            if task is None or task["expired"] or task["state"] != "PENDING":
                return self._err(400, DASHSCOPE_CANCEL_REFUSED_BODY)
            task["state"] = "CANCELED"
            self._close_slot(task["generation"])
            self.cancels.append(task["id"])
            self.cond.notify_all()
        return JSONResponse({"request_id": new_id()})

    async def _multimodal(self, request: Request) -> Response:
        body, error = self._common(request, await request.body())
        if error is not None:
            return error
        assert body is not None
        if request.headers.get("x-dashscope-async", "").lower() == "enable":
            return self._err(403, DASHSCOPE_403_ASYNC_BODY)
        messages = body["input"].get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error(400, "InvalidParameter", "input.messages is required.")
        texts: list[str] = []
        images: list[str] = []
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, list) or message.get("role") not in ("user", "system",
                                                                            "assistant"):
                return self._error(400, "InvalidParameter",
                                   "each message needs a role and a content list.")
            for item in content:
                if isinstance(item, dict) and isinstance(item.get("text"), str):
                    texts.append(item["text"])
                elif (isinstance(item, dict) and isinstance(item.get("image"), str)
                      and item["image"]):
                    images.append(item["image"])
                else:
                    return self._error(400, "InvalidParameter",
                                       "content items must be {\"text\": …} or {\"image\": url}.")
        if not any(t.strip() for t in texts):
            return self._error(400, "InvalidParameter", "a text instruction is required.")
        params = body.get("parameters", {})
        n = params.get("n", 1)
        if not (is_int(n) and 1 <= n <= 6):
            return self._error(400, "InvalidParameter", "n must be an integer in [1, 6].")
        width, height = 1024, 1024
        if "size" in params:
            m = _SIZE.match(params["size"]) if isinstance(params["size"], str) else None
            if m is None or not all(512 <= int(s) <= 2048 for s in m.groups()):
                return self._error(400, "InvalidParameter",
                                   f"The size {params['size']!r} is invalid: use width*height.")
            width, height = int(m.group(1)), int(m.group(2))
        # A sync call is a task that lives for the length of the request.
        task = self._new_task(kind="multimodal", state="RUNNING", model=body["model"],
                              prompt=" ".join(texts), images=images, n=n, seed=params.get("seed"),
                              width=width, height=height, params=body)
        try:
            await self._sync_wait()
        finally:
            with self.cond:
                if task["failure"] is not None:
                    task["state"] = "FAILED"
                else:
                    self._render(task)
                    task["state"] = "SUCCEEDED"
                self._close_slot(task["generation"])
        if task["failure"] is not None:
            code = task["failure"].get("code") or "InternalError.Algo"
            return self._error(500 if code.startswith("InternalError") else 400,
                               code, task["failure"]["message"])
        content = [{"image": f"{self.url}/r/{name}"} for name in task["image_names"]]
        return JSONResponse({
            "output": {"choices": [{"finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}]},
            "usage": {"width": width, "height": height, "image_count": n},
            "request_id": new_id(),
        })

    async def _image(self, request: Request) -> Response:
        name = request.path_params["name"]
        task = self.tasks.get(name.rsplit("-", 1)[0])
        if task is not None and task["expired"]:
            return Response(_EXPIRED_XML, status_code=403, media_type="application/xml")
        return self._serve_image(name)
