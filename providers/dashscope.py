"""Aliyun DashScope (Model Studio): Wan text-to-image, 2.1 (Plus, Turbo), 2.2 (Plus, Flash) and 2.5 Preview.

What is DashScope-specific, and lives only here:

* the base URL **includes** ``/api/v1``, exactly as the dashscope SDK's
  ``DASHSCOPE_HTTP_BASE_URL``: default ``https://dashscope.aliyuncs.com/api/v1`` (Beijing);
  other regions are ``https://dashscope-intl.aliyuncs.com/api/v1`` and
  ``https://dashscope-us.aliyuncs.com/api/v1`` (keys are per region). A
  ``DASHSCOPE_BASE_URL`` without a path is refused with a message saying so;
* ``POST /services/aigc/text2image/image-synthesis`` with ``X-DashScope-Async: enable``,
  body ``{"model", "input": {"prompt", "negative_prompt"}, "parameters": {"size": "W*H",
  "n", "seed", "prompt_extend": false, "watermark": false}}``. ``n`` is always sent (omitted, the service
  makes and bills four). ``prompt_extend`` is off so the prompt we store is the prompt
  that made the image;
* ``GET /tasks/{id}``: PENDING / RUNNING / SUCCEEDED / FAILED / CANCELED / UNKNOWN. FAILED
  and UNKNOWN (an expired or unknown id) arrive with HTTP 200. Results are
  ``output.results[].url``, valid 24 h: downloaded at once;
* ``POST /tasks/{id}/cancel`` cancels a PENDING task; we send it when the MCP call is
  cancelled or times out. A RUNNING task cannot be cancelled and may still be billed;
* sizes: the seeds' semantic pixel table (square 1024*1024 is the seed's own size), exact ratios
  for every model: Wan 2.1 and 2.2 take 512..1440 pixels a side, Wan 2.5 a total of 768*768 to
  1440*1440 pixels with sides at most 4:1, and every value is inside both ranges;
* errors: ``{"code", "message", "request_id"}``: InvalidApiKey, AccessDenied*,
  Arrearage, DataInspectionFailed, InvalidParameter, Model.NotExist, Throttling*, 5xx.
  The same codes appear in failed tasks' ``output.code``;
* chat (``complete``, the prompt-writing model): Qwen models through the OpenAI-compatible
  mode, which lives beside the native API at ``/compatible-mode/v1/chat/completions`` on
  the same host (not under ``/api/v1``). No price is held: the result reports tokens;
* a seed applies to the whole batch; the seed recorded per image is the request's seed
  only when one image was asked for (the server asks for one image per seeded task:
  ``server.generation.split_count``).
"""

from __future__ import annotations

from typing import Any

import httpx

from providers._chat import openai_chat
from providers._http import parse_retry_after
from providers._polling import SUBMITTED, TaskState
from providers._tasks import TaskApiProvider
from providers.base import CHINESE_FIRST, ModelSpec, Price
from providers.errors import (
    AuthenticationError,
    ConfigError,
    ContentRejected,
    FieldError,
    GenerationFailed,
    InsufficientCredit,
    InvalidInput,
    InvalidRequest,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnknownModel,
)
from providers.types import ChatReply, GenerationRequest, ImageSize, ProgressFn

__all__ = ["DashScopeProvider", "MODELS"]

NAME = "dashscope"
VENDOR = "DashScope"
DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"
MAX_BATCH = 4
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"})

_SIZE = {ImageSize.SQUARE: "1024*1024", ImageSize.LANDSCAPE: "1365*1024", ImageSize.PORTRAIT: "1024*1365",
         ImageSize.WIDE: "1440*810", ImageSize.TALL: "810*1440"}


def _wanx(req: GenerationRequest) -> dict[str, Any]:
    if not 1 <= req.count <= MAX_BATCH:
        raise InvalidRequest(f"count: DashScope makes 1 to {MAX_BATCH} images per task, not {req.count}.")
    inp: dict[str, Any] = {"prompt": req.prompt}
    if req.negative_prompt:
        inp["negative_prompt"] = req.negative_prompt
    params: dict[str, Any] = {"size": _SIZE[req.size], "n": req.count, "prompt_extend": False,
                              "watermark": False}
    if req.seed is not None:
        params["seed"] = req.seed
    return {"input": inp, "parameters": params}


def _wan(model: str, name: str, summary: str, usd: float | None = None) -> ModelSpec:
    price = None if usd is None else Price(usd, source="alibabacloud.com/help/en/model-studio/"
                                                       "text-to-image-v2-api-reference (international)",
                                           checked="2026-12-01")
    return ModelSpec(name, NAME, model, _wanx, summary=summary, supports_seed=True, supports_negative_prompt=True,
                     max_batch=MAX_BATCH, prompt_languages=CHINESE_FIRST, price=price)


MODELS: list[ModelSpec] = [
    _wan("wanx2.1-t2i-plus", "Wanx 2.1 T2I Plus (DashScope)", "rich detail", 0.05),
    _wan("wanx2.1-t2i-turbo", "Wanx 2.1 T2I Turbo (DashScope)", "faster and cheaper than Plus", 0.025),
    # Wan 2.2 and 2.5: same endpoint and payload (Model Studio's text-to-image V2 reference lists them).
    _wan("wan2.2-t2i-plus", "Wan 2.2 T2I Plus (DashScope)", "steadier, more detailed than 2.1"),
    _wan("wan2.2-t2i-flash", "Wan 2.2 T2I Flash (DashScope)", "50% faster than 2.1"),
    _wan("wan2.5-t2i-preview", "Wan 2.5 T2I Preview (DashScope)", "the newest Wan (a preview)"),
]


def _from_code(code: str, message: str, status: int | None, job_id: str | None, *,
               retry_after: float | None = None) -> ProviderError:
    """One DashScope error code (from an HTTP error or a failed task) as a project error."""
    text = message.strip()
    where = f" (task {job_id})" if job_id else ""
    if code == "InvalidApiKey" or status == 401:
        return AuthenticationError(f"{VENDOR} rejected the API key: check DASHSCOPE_API_KEY (keys are per "
                                   "region; DASHSCOPE_BASE_URL must be the key's region).",
                                   provider=NAME, status=status)
    if code.startswith("AccessDenied") or status == 403:
        return AuthenticationError(f"{VENDOR} refused access for DASHSCOPE_API_KEY: the account may not have "
                                   f"activated this model. {text}".strip(), provider=NAME, status=status)
    if code == "Arrearage":
        return InsufficientCredit(f"{VENDOR}: the Alibaba Cloud account has an overdue payment; top it up and "
                                  "try again.", provider=NAME, status=status, job_id=job_id)
    if code == "DataInspectionFailed":
        return ContentRejected(f"{VENDOR}'s content inspection rejected the prompt or image{where}.",
                               provider=NAME, status=status, job_id=job_id)
    if code.startswith("Model.") or status == 404:
        return UnknownModel(f"{VENDOR} does not know this model. {text}".strip(), provider=NAME, status=status)
    if code.startswith("Throttling") or status == 429:
        return RateLimited(f"{VENDOR} is limiting requests ({code or 'HTTP 429'}). {text}".strip(),
                           provider=NAME, retry_after=retry_after, job_id=job_id)
    if code.startswith("InvalidParameter") or status in (400, 422):
        return InvalidInput(f"{VENDOR} rejected the input{where}: {text or code or 'invalid request'}",
                            provider=NAME, status=status, fields=(FieldError("", text),) if text else (),
                            job_id=job_id)
    if status is None:  # a task that ran and failed
        return GenerationFailed(f"{VENDOR} task {job_id} failed ({code or 'no code'}): "
                                f"{text or 'no error text given'}", provider=NAME, job_id=job_id)
    return ProviderUnavailable(f"{VENDOR} answered HTTP {status} ({code or 'no code'}). {text}".strip(),
                               provider=NAME, status=status, job_id=job_id)


class DashScopeProvider(TaskApiProvider):
    name = NAME
    vendor = VENDOR
    key_env = "DASHSCOPE_API_KEY"
    key_url = "https://bailian.console.aliyun.com/?apiKey=1"
    url_env = "DASHSCOPE_BASE_URL"   # includes /api/v1, e.g. https://dashscope-intl.aliyuncs.com/api/v1
    default_rate = 2.0          # 2 task submissions/second
    default_concurrency = 2     # the Wanx models run at most 2 tasks at once per account
    default_base_url = DEFAULT_BASE_URL
    submit_path = "/services/aigc/text2image/image-synthesis"
    submit_headers = {"X-DashScope-Async": "enable"}
    can_cancel = True

    def _base_url(self) -> httpx.URL:
        base = httpx.URL(self.config.base_url or DEFAULT_BASE_URL)
        if base.path in ("", "/"):
            raise ConfigError("DASHSCOPE_BASE_URL must include the API path, e.g. "
                              "https://dashscope-intl.aliyuncs.com/api/v1.")
        return base

    async def complete(self, model: str, messages: list[dict[str, str]], *, timeout: float) -> ChatReply:
        url = self._http.base_url.copy_with(path="/compatible-mode/v1/chat/completions")
        return await openai_chat(self._http, url, api_key=self.config.api_key or "", model=model,
                                 messages=messages, timeout=timeout, provider=NAME, map_errors=self._map_errors)

    def _error_from(self, response: httpx.Response, job_id: str | None) -> ProviderError:
        body = self._json_object(response) or {}
        return _from_code(str(body.get("code") or ""), str(body.get("message") or ""), response.status_code,
                          job_id, retry_after=parse_retry_after(response.headers.get("retry-after")))

    def _reply(self, response: httpx.Response, job_id: str | None) -> dict[str, Any]:
        output = (self._json_object(response) or {}).get("output")
        if not isinstance(output, dict):
            raise ProviderUnavailable(f"{VENDOR} sent a reply without an output object.", provider=NAME,
                                      status=response.status_code, job_id=job_id)
        return output

    async def _cancel(self, task_id: str) -> None:
        with self._map_errors(task_id):
            response = await self._http.post(f"/tasks/{task_id}/cancel", headers=self._auth)
            response.raise_for_status()

    async def _submit(self, payload: dict[str, Any]) -> tuple[str, TaskState]:
        output = await self._call("POST", self.submit_path, json=payload, headers={**self._auth, **self.submit_headers})
        return self._task_id(output), SUBMITTED

    async def _poll(self, task_id: str) -> TaskState:
        output = await self._call("GET", f"/tasks/{task_id}", job_id=task_id, headers=self._auth)
        word = str(output.get("task_status") or "").upper()
        return TaskState(word.lower() or "unknown", word in TERMINAL, output)

    async def _outputs(self, task_id: str, state: TaskState, request: GenerationRequest,
                       progress: ProgressFn) -> list[str]:
        output = state.body
        word = output.get("task_status")
        if word == "UNKNOWN":
            raise GenerationFailed(f"{VENDOR} no longer knows task {task_id}: task ids and results expire after "
                                   "24 hours (or the id never existed).", provider=NAME, job_id=task_id)
        if word == "CANCELED":
            raise GenerationFailed(f"{VENDOR} task {task_id} was canceled.", provider=NAME, job_id=task_id)
        if word == "FAILED":
            raise _from_code(str(output.get("code") or ""), str(output.get("message") or ""), None, task_id)
        results = [r for r in output.get("results") or [] if isinstance(r, dict)]
        urls = [r["url"] for r in results if isinstance(r.get("url"), str) and r["url"]]
        if not urls:
            failed = next((r for r in results if r.get("code")), {})
            raise _from_code(str(failed.get("code") or ""), str(failed.get("message") or "no image was returned"),
                             None, task_id)
        if len(urls) < request.count:
            await progress(f"{VENDOR} task {task_id} returned {len(urls)} of {request.count} image(s)")
        return urls

    def _prompt_sent(self, payload: dict[str, Any], request: GenerationRequest) -> str:
        return request.prompt

    def _seed_of(self, request: GenerationRequest) -> int | None:
        return request.seed if request.count == 1 else None   # a seed applies to the whole batch


PROVIDER = DashScopeProvider
