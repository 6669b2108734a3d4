"""ModelScope API-Inference: Z-Image Turbo and Qwen-Image, plus Qwen-Image-Edit.

What is ModelScope-specific, and lives only here:

* async mode: ``POST /v1/images/generations`` with ``X-ModelScope-Async-Mode: true``
  answers ``{"task_id"}``; ``GET /v1/tasks/{id}`` needs ``X-ModelScope-Task-Type:
  image_generation`` and reports PENDING / RUNNING / **SUCCEED** / FAILED, with
  ``output_images`` (URLs of undocumented lifetime: downloaded at once) or
  ``errors.message``;
* sizes are ``"WxH"`` strings: the seeds' semantic pixel table (1024x1024, 1365x1024,
  1024x1365, 1440x810, 810x1440) snapped to multiples of 16, because Z-Image and
  Qwen-Image work in 16-pixel steps; every value is inside both models' ranges;
* ``seed`` (0..2**31-1) and ``negative_prompt`` are sent when given; prompts must be
  under 2000 characters; there is no batch size (one task, one image);
* editing (``Qwen/Qwen-Image-Edit-2511``) uses the same endpoint with ``image_url``,
  which must be a public URL: only reference images given as https URLs work;
* errors: ``{"errors": {"message"}}`` with 401 bad token, 403 account not bound or not
  verified, 404 unknown model, 429 quota or concurrency, 5xx busy.

**ModelScope has no cancel endpoint**: when the MCP call is cancelled or times out we
stop polling; the task may still finish on ModelScope's side.
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from providers._chat import openai_chat
from providers._http import parse_retry_after
from providers._polling import SUBMITTED, TaskState
from providers._tasks import TaskApiProvider
from providers.base import CHINESE_FIRST, EDIT, ModelSpec, Price
from providers.errors import (
    AuthenticationError,
    FieldError,
    GenerationFailed,
    InvalidInput,
    InvalidRequest,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnknownModel,
)
from providers.types import AspectRatio, ChatReply, GenerationRequest, ImageSize, ProgressFn

__all__ = ["MODELS", "ModelScopeProvider"]

NAME = "modelscope"
VENDOR = "ModelScope"
DEFAULT_BASE_URL = "https://api-inference.modelscope.cn"
MAX_PROMPT = 1999
_STATUS = {"PENDING": "pending", "RUNNING": "running", "SUCCEED": "succeeded", "FAILED": "failed"}

_SIZE = {ImageSize.SQUARE: "1024x1024", ImageSize.LANDSCAPE: "1360x1024", ImageSize.PORTRAIT: "1024x1360",
         ImageSize.WIDE: "1440x816", ImageSize.TALL: "816x1440"}


def _snap(pixels: float) -> int:
    return max(64, int(round(pixels / 16)) * 16)


def _ratio_size(ratio: AspectRatio) -> str:
    """About one megapixel in the given ratio, in 16-pixel steps (edits)."""
    a, b = (int(x) for x in ratio.value.split(":"))
    width = math.sqrt(1024 * 1024 * a / b)
    return f"{_snap(width)}x{_snap(width * b / a)}"


def _common(req: GenerationRequest) -> dict[str, Any]:
    if len(req.prompt) > MAX_PROMPT:
        raise InvalidRequest(f"prompt: ModelScope takes prompts under 2000 characters; this one has "
                             f"{len(req.prompt)} (style prefix included).")
    payload: dict[str, Any] = {"prompt": req.prompt}
    if req.negative_prompt:
        payload["negative_prompt"] = req.negative_prompt[:MAX_PROMPT]
    if req.seed is not None:
        payload["seed"] = req.seed
    return payload


def _text_to_image(req: GenerationRequest) -> dict[str, Any]:
    return {**_common(req), "size": _SIZE[req.size]}


def _edit(req: GenerationRequest) -> dict[str, Any]:
    if not req.input_images:
        raise InvalidRequest("images: Qwen Image Edit on ModelScope needs one reference image, given as an "
                             "https URL.")
    image = req.input_images[0]
    if not image.url:
        raise InvalidRequest("images: ModelScope needs https URLs for reference images (it fetches them "
                             "itself); easel:// URIs, data: URIs and local files cannot be sent. Use an "
                             "https URL, or an edit model that takes uploads such as google/nano-banana.")
    payload = {**_common(req), "image_url": image.url}
    if req.aspect_ratio and req.aspect_ratio != AspectRatio.MATCH_INPUT_IMAGE:
        payload["size"] = _ratio_size(req.aspect_ratio)
    return payload


# API-Inference is free within a daily quota (about 2000 calls a day, usually 200 per model), so no charge.
FREE = Price(0.0, currency="CNY", source="ModelScope API-Inference free daily quota (modelscope.cn/docs/model-service/"
                         "API-Inference/limits, via Cherry Studio docs)", checked="2026-12-01")

MODELS: list[ModelSpec] = [
    ModelSpec("Z-Image Turbo (ModelScope)", NAME, "Tongyi-MAI/Z-Image-Turbo", _text_to_image,
              summary="Tongyi Lab: fast photoreal images",
              supports_seed=True, supports_negative_prompt=True, prompt_languages=CHINESE_FIRST, price=FREE),
    ModelSpec("Qwen Image (ModelScope)", NAME, "Qwen/Qwen-Image", _text_to_image,
              summary="Alibaba Qwen: strong at Chinese and English text in images",
              supports_seed=True, supports_negative_prompt=True, prompt_languages=CHINESE_FIRST, price=FREE),
    # Also on Replicate (preferred there: it takes uploads and up to 3 images); served here without
    # REPLICATE_API_TOKEN, on ModelScope's free quota.
    ModelSpec("Qwen Image Edit", NAME, "Qwen/Qwen-Image-Edit-2511", _edit,
              summary="Alibaba Qwen on ModelScope: the reference must be an https URL",
              uses=frozenset({EDIT}), supports_seed=True, supports_negative_prompt=True, max_input_images=1,
              min_input_images=1, prompt_languages=CHINESE_FIRST, preference=1, price=FREE),
]


def _from_response(response: httpx.Response, job_id: str | None) -> ProviderError:
    status = response.status_code
    try:
        errors = response.json().get("errors") or {}
    except (ValueError, AttributeError):
        errors = {}
    text = str(errors.get("message") or "").strip() if isinstance(errors, dict) else ""
    if status == 401:
        return AuthenticationError(f"{VENDOR} rejected the access token: check MODELSCOPE_API_KEY.",
                                   provider=NAME, status=status)
    if status == 403:
        return AuthenticationError(f"{VENDOR} refused the account behind MODELSCOPE_API_KEY: API-Inference "
                                   "needs an account bound to Alibaba Cloud and real-name verified.",
                                   provider=NAME, status=status)
    if status == 404:
        return UnknownModel(f"{VENDOR} does not know this model. {text}".strip(), provider=NAME, status=status)
    if status == 429:
        left = response.headers.get("modelscope-ratelimit-model-requests-remaining")
        quota = f" (requests left today for this model: {left})" if left is not None else ""
        return RateLimited(f"{VENDOR} is limiting requests{quota}. {text}".strip(), provider=NAME,
                           retry_after=parse_retry_after(response.headers.get("retry-after")))
    if status in (400, 422):
        return InvalidInput(f"{VENDOR} rejected the input: {text or 'invalid request'}", provider=NAME,
                            status=status, fields=(FieldError("", text),) if text else ())
    return ProviderUnavailable(f"{VENDOR} answered HTTP {status}. {text}".strip(), provider=NAME,
                               status=status, job_id=job_id)


class ModelScopeProvider(TaskApiProvider):
    name = NAME
    vendor = VENDOR
    key_env = "MODELSCOPE_API_KEY"
    key_url = "https://modelscope.cn/my/myaccesstoken"
    key_kind = "an access token"
    url_env = "MODELSCOPE_BASE_URL"
    default_rate = 2.0   # the seeds' 2 requests/second
    default_base_url = DEFAULT_BASE_URL
    submit_path = "/v1/images/generations"
    submit_headers = {"X-ModelScope-Async-Mode": "true"}

    async def complete(self, model: str, messages: list[dict[str, str]], *, timeout: float) -> ChatReply:
        """A chat model (e.g. Qwen/Qwen2.5-72B-Instruct) on API-Inference's OpenAI-compatible
        ``/v1/chat/completions``; calls are free within the daily quota, so the cost is 0."""
        return await openai_chat(self._http, "/v1/chat/completions", api_key=self.config.api_key or "",
                                 model=model, messages=messages, timeout=timeout, provider=NAME,
                                 map_errors=self._map_errors, cost=lambda i, o: 0.0)

    def _error_from(self, response: httpx.Response, job_id: str | None) -> ProviderError:
        return _from_response(response, job_id)

    def _reply(self, response: httpx.Response, job_id: str | None) -> dict[str, Any]:
        body = self._json_object(response)
        if body is None:
            raise ProviderUnavailable(f"{VENDOR} sent a reply that is not a JSON object.", provider=NAME,
                                      status=response.status_code, job_id=job_id)
        return body

    async def _submit(self, payload: dict[str, Any]) -> tuple[str, TaskState]:
        body = await self._call("POST", self.submit_path, json=payload, headers={**self._auth, **self.submit_headers})
        return self._task_id(body), SUBMITTED

    async def _poll(self, task_id: str) -> TaskState:
        body = await self._call("GET", f"/v1/tasks/{task_id}", job_id=task_id,
                                headers={**self._auth, "X-ModelScope-Task-Type": "image_generation"})
        word = str(body.get("task_status") or "").upper()
        return TaskState(_STATUS.get(word, word.lower() or "unknown"), word in ("SUCCEED", "FAILED"), body)

    async def _outputs(self, task_id: str, state: TaskState, request: GenerationRequest,
                       progress: ProgressFn) -> list[str]:
        body = state.body
        if body.get("task_status") != "SUCCEED":
            errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
            raise GenerationFailed(f"{VENDOR} task {task_id} failed: "
                                   f"{errors.get('message') or 'no error text given'}.",
                                   provider=NAME, job_id=task_id)
        urls = [u for u in body.get("output_images") or [] if isinstance(u, str) and u]
        if not urls:
            raise GenerationFailed(f"{VENDOR} task {task_id} succeeded but returned no image.",
                                   provider=NAME, job_id=task_id)
        return urls


PROVIDER = ModelScopeProvider
