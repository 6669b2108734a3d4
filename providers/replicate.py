"""Replicate: the five seed models, the nano-banana edit models, and any model by name.

Everything Replicate-specific lives here: model ids, payload shapes (checked
against each model's published input schema), the ``Prefer: wait`` sync window,
polling, cancellation and the mapping of Replicate's problem+json errors.

One job is one prediction: created with ``Prefer: wait=N`` so a quick model
costs one request plus the download; a slower one is polled with backoff by the
job loop shared with the other vendors (``providers/_polling.py``). The create
call is shielded from cancellation (bounded by the wait window) so a cancelled
call always knows the prediction id and cancels it.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx

from providers._http import backoff_delay, download
from providers._polling import TaskState, run_task
from providers.base import EDIT, MULTILINGUAL, ImageProvider, ModelSpec, ProviderConfig
from providers.errors import (
    AuthenticationError, FieldError, GenerationFailed,
    InsufficientCredit, InvalidInput, ProviderError, ProviderUnavailable, RateLimited, UnknownModel,
)
from providers.types import ChatReply, GeneratedImage, GenerationRequest, ImageSize, ImageStyle, ProgressFn

__all__ = ["MODELS", "ReplicateProvider"]

NAME = "replicate"
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})

# Semantic size tables (the seeds'), adjusted only where the published schema disagrees.
_RATIO = {ImageSize.SQUARE: "1:1", ImageSize.LANDSCAPE: "4:3", ImageSize.PORTRAIT: "3:4",
          ImageSize.WIDE: "16:9", ImageSize.TALL: "9:16"}
# SD 3.5 Medium publishes no 4:3 or 3:4: nearest published ratios are 5:4 and 4:5.
_SD_RATIO = {**_RATIO, ImageSize.LANDSCAPE: "5:4", ImageSize.PORTRAIT: "4:5"}
_FLUX_PIXELS = {ImageSize.SQUARE: (1024, 1024), ImageSize.LANDSCAPE: (1365, 1024),
                ImageSize.PORTRAIT: (1024, 1365), ImageSize.WIDE: (1440, 810),
                ImageSize.TALL: (810, 1440)}
_RECRAFT_SIZE = {ImageSize.SQUARE: "1024x1024", ImageSize.LANDSCAPE: "1365x1024",
                 ImageSize.PORTRAIT: "1024x1365", ImageSize.WIDE: "1536x1024",
                 ImageSize.TALL: "1024x1536"}


def _with_seed(payload: dict[str, Any], req: GenerationRequest) -> dict[str, Any]:
    if req.seed is not None:
        payload["seed"] = req.seed
    return payload


def _flux(req: GenerationRequest) -> dict[str, Any]:
    # Flux 1.1 Pro reads width/height only with aspect_ratio "custom": that keeps the seeds' pixel table.
    width, height = _FLUX_PIXELS[req.size]
    return _with_seed({"prompt": req.prompt, "aspect_ratio": "custom", "width": width, "height": height,
                       "output_format": "jpg", "output_quality": 90}, req)


def _flux_ultra(req: GenerationRequest) -> dict[str, Any]:
    return _with_seed({"prompt": req.prompt, "aspect_ratio": _RATIO[req.size], "output_format": "jpg"}, req)


def _sd35(req: GenerationRequest) -> dict[str, Any]:
    payload: dict[str, Any] = {"prompt": req.prompt, "aspect_ratio": _SD_RATIO[req.size],
                               "output_format": "webp", "cfg": 7}
    if req.negative_prompt:
        payload["negative_prompt"] = req.negative_prompt
    return _with_seed(payload, req)


def _recraft(req: GenerationRequest) -> dict[str, Any]:
    return {"prompt": req.prompt, "size": _RECRAFT_SIZE[req.size], "style": ImageStyle(req.style).value}


def _nano_pro(req: GenerationRequest) -> dict[str, Any]:
    return {"prompt": req.prompt, "aspect_ratio": _RATIO[req.size], "resolution": "2K",
            "output_format": "jpg", "safety_filter_level": "block_only_high"}


def _nano_edit(req: GenerationRequest, *, pro: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "prompt": req.prompt,
        "image_input": [img.url or "" for img in req.input_images],  # filled with uploads at run time
        "aspect_ratio": req.aspect_ratio.value if req.aspect_ratio else "match_input_image",
        "output_format": req.output_format.value if req.output_format else "jpg",
    }
    if not req.input_images and payload["aspect_ratio"] == "match_input_image":
        payload["aspect_ratio"] = "1:1"  # nothing to match: pure generation
    if pro:
        payload["resolution"] = "2K"
    return payload


def _ideogram(req: GenerationRequest) -> dict[str, Any]:
    # Same style mapping as the direct Ideogram API; this schema capitalises it and has no palette.
    from providers.ideogram import ideogram_style

    style_type, prompt = ideogram_style(req.style, req.prompt)
    return _with_seed({"prompt": prompt, "aspect_ratio": _RATIO[req.size], "magic_prompt_option": "Off",
                       "style_type": style_type.capitalize()}, req)


MODELS: list[ModelSpec] = [
    ModelSpec("Flux 1.1 Pro", NAME, "black-forest-labs/flux-1.1-pro", _flux,
              summary="fast, faithful photos and art; seed", supports_seed=True),
    ModelSpec("Flux 1.1 Pro Ultra", NAME, "black-forest-labs/flux-1.1-pro-ultra", _flux_ultra,
              summary="up to 4 MP, highest detail; seed", supports_seed=True),
    ModelSpec("Recraft v3", NAME, "recraft-ai/recraft-v3", _recraft,
              summary="design and illustration, native styles", native_style=True),
    ModelSpec("Stable Diffusion 3.5 Medium", NAME, "stability-ai/stable-diffusion-3.5-medium", _sd35,
              summary="cheap; seed and negative_prompt", supports_seed=True, supports_negative_prompt=True),
    ModelSpec("Nano Banana Pro", NAME, "google/nano-banana-pro", _nano_pro,
              summary="Gemini 3 Pro Image: text rendering, 2K", prompt_languages=MULTILINGUAL),
    ModelSpec("Ideogram v3", NAME, "ideogram-ai/ideogram-v3-turbo", _ideogram,  # when IDEOGRAM_API_KEY is unset
              summary="lettering, logos and posters; native styles; seed. With IDEOGRAM_API_KEY it runs on "
                      "Ideogram (also negative_prompt, palettes), else as Ideogram v3 Turbo on Replicate",
              native_style=True, supports_seed=True, preference=1),
    ModelSpec("google/nano-banana", NAME, "google/nano-banana", lambda r: _nano_edit(r, pro=False),
              summary="Gemini 2.5 Flash Image: quick edits", uses=frozenset({EDIT}), max_input_images=10,
              prompt_languages=MULTILINGUAL),
    ModelSpec("google/nano-banana-pro", NAME, "google/nano-banana-pro", lambda r: _nano_edit(r, pro=True),
              summary="Gemini 3 Pro Image: best edits, up to 14 references",
              uses=frozenset({EDIT}), max_input_images=14, prompt_languages=MULTILINGUAL),
]

# --- error capture -------------------------------------------------------------------------
# replicate 1.0.7's ReplicateError keeps title/detail only; invalid_fields and retry_after
# are read from the response itself by a transport wrapper into the caller's sink.
_error_sink: ContextVar[list[httpx.Response] | None] = ContextVar("replicate_error_sink", default=None)


class _CapturingTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    def __init__(self, verify: ssl.SSLContext | bool = True) -> None:
        self._async = httpx.AsyncHTTPTransport(verify=verify)
        self._sync = httpx.HTTPTransport(verify=verify)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._async.handle_async_request(request)
        if response.status_code >= 400 and (sink := _error_sink.get()) is not None:
            await response.aread()
            sink.append(response)
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._sync.handle_request(request)

    async def aclose(self) -> None:
        await self._async.aclose()

    def close(self) -> None:
        self._sync.close()


@contextmanager
def _map_errors(job_id: str | None = None) -> Iterator[None]:
    """Translate replicate/httpx exceptions into the project's tree, in one place."""
    from replicate.exceptions import ReplicateError

    sink: list[httpx.Response] = []
    token = _error_sink.set(sink)
    try:
        yield
    except ReplicateError as exc:
        body: dict[str, Any] = {}
        headers: httpx.Headers = httpx.Headers()
        if sink:
            headers = sink[-1].headers
            try:
                body = json.loads(sink[-1].content or b"{}")
            except ValueError:
                body = {}
        raise _from_status(exc.status or 0, exc.title, exc.detail, body, headers, job_id) from None
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable("Replicate did not answer in time.", provider=NAME, job_id=job_id) from exc
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"Could not reach Replicate ({type(exc).__name__}).",
                                  provider=NAME, job_id=job_id) from exc
    finally:
        _error_sink.reset(token)


def _from_status(status: int, title: str | None, detail: str | None, body: dict[str, Any],
                 headers: httpx.Headers, job_id: str | None) -> ProviderError:
    text = (detail or title or "").strip()
    if status == 401:
        return AuthenticationError("Replicate rejected the API token: check REPLICATE_API_TOKEN.",
                                   provider=NAME, status=status)
    if status == 402:
        return InsufficientCredit(f"Replicate: insufficient credit. {text}".strip(), provider=NAME, status=status)
    if status == 404:
        return UnknownModel("Replicate does not know this model (or the prediction).", provider=NAME, status=status)
    if status in (400, 422):
        fields = tuple(FieldError(str(f.get("field", "")).removeprefix("input."), str(f.get("description", "")))
                       for f in body.get("invalid_fields") or [] if isinstance(f, dict))
        if not fields and text:
            fields = (FieldError("", text),)
        what = "; ".join(str(f) for f in fields) or (title or "invalid request")
        return InvalidInput(f"Replicate rejected the input: {what}", provider=NAME, status=status, fields=fields)
    if status == 429:
        from providers._http import parse_retry_after
        retry_after = parse_retry_after(headers.get("retry-after"))
        if retry_after is None and isinstance(body.get("retry_after"), int | float):
            retry_after = float(body["retry_after"])
        return RateLimited(f"Replicate is rate limiting requests. {text}".strip(), provider=NAME,
                           retry_after=retry_after)
    return ProviderUnavailable(f"Replicate answered HTTP {status}. {text}".strip(), provider=NAME,
                               status=status, job_id=job_id)


def _create_retry_delay(exc: ProviderError, attempt: int) -> float | None:
    """POST is not idempotent: retry only 429 and 503 (the request was not processed)."""
    if isinstance(exc, RateLimited):
        return exc.retry_after if exc.retry_after is not None else backoff_delay(attempt + 1)
    if exc.status == 503:
        return backoff_delay(attempt + 1)
    return None


class ReplicateProvider(ImageProvider):
    name = NAME
    vendor = "Replicate"
    key_env = "REPLICATE_API_TOKEN"
    key_url = "https://replicate.com/account/api-tokens"
    key_kind = "an API token"

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        import replicate  # imported when first used: keeps start-up fast

        tls = httpx.create_ssl_context()  # one TLS context for all three clients: each costs ~40 ms to build
        self._client = replicate.Client(api_token=config.api_key, base_url=config.base_url or None,
                                        transport=_CapturingTransport(tls))
        # downloads are bounded too: a stalled file host must not outlive the configured timeout
        wait = min(30.0, config.timeout)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(wait, connect=min(10.0, wait)), follow_redirects=True,
                                       verify=tls)

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the image path -----------------------------------------------------------------------
    async def _generate(self, spec: ModelSpec, request: GenerationRequest,
                        progress: ProgressFn) -> list[GeneratedImage]:
        payload = spec.build(request)
        if request.input_images:
            payload["image_input"] = [await self.image_reference(img.data, img.mime_type, img.url)
                                      for img in request.input_images]
        prediction = await self.run_prediction(spec.provider_model, None, payload, progress)
        urls = _output_urls(prediction.get("output"))
        if not urls:
            raise GenerationFailed(f"Replicate prediction {prediction['id']} succeeded but returned no image.",
                                   provider=NAME, job_id=prediction["id"])
        shown = {k: ("<image>" if k == "image_input" else v) for k, v in payload.items()}
        images = []
        for url in urls:
            data, mime = await self.fetch_output(url)
            images.append(GeneratedImage(data=data, mime_type=mime or "application/octet-stream",
                                         provider=NAME, provider_model=spec.provider_model,
                                         prompt_sent=str(payload.get("prompt", request.prompt)), parameters=shown,
                                         seed=request.seed,
                                         prediction_id=prediction["id"]))
        return images

    async def fetch_output(self, url: str) -> tuple[bytes, str | None]:
        return await download(self._http, url, provider=NAME, max_bytes=self.config.max_download_bytes,
                               retries=self.config.max_retries)

    async def image_reference(self, data: bytes | None, mime: str, url: str | None) -> str:
        """An input Replicate can read: https URLs pass through, small files inline, large ones uploaded."""
        if url:
            return url
        assert data is not None
        if len(data) <= 256 * 1024:
            import base64
            return f"data:{mime};base64,{base64.b64encode(data).decode()}"
        import io
        with _map_errors():
            uploaded = await self._client.files.async_create(io.BytesIO(data), filename="input",
                                                               content_type=mime)
        return uploaded.urls["get"]

    # -- any model -------------------------------------------------------------------------------
    async def model_schema(self, model: str, version: str | None = None) -> dict[str, Any]:
        """The model's published OpenAPI schema (latest version unless one is given) and description."""
        with _map_errors():
            found = await self._client.models.async_get(model)
            ver = await found.versions.async_get(version) if version else found.latest_version
        if ver is None:
            raise UnknownModel(f"Replicate model {model} has no published version.", provider=NAME, status=404)
        return {"model": model, "version": ver.id, "description": found.description,
                "openapi_schema": ver.openapi_schema}

    # -- a language model (the prompt writer) ---------------------------------------------------
    async def complete(self, model: str, messages: list[dict[str, str]], *, timeout: float) -> ChatReply:
        """A language model on Replicate (e.g. meta/meta-llama-3-70b-instruct): its inputs are
        ``prompt`` and ``system_prompt``, its output a list of text pieces. Replicate bills these by
        token at per-model prices we do not hold, so the reply carries token counts, not a cost.
        (``timeout`` is enforced by the caller; cancelling cancels the prediction.)"""
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        user = "\n\n".join(m["content"] for m in messages if m["role"] != "system")
        payload = {"prompt": user, "system_prompt": system, "max_tokens": 1500, "temperature": 0.4}

        async def quiet(_: str) -> None:
            return None

        prediction = await self.run_prediction(model, None, payload, quiet)
        output = prediction.get("output")
        text = "".join(str(o) for o in output) if isinstance(output, list) else str(output or "")
        metrics = prediction.get("metrics") if isinstance(prediction.get("metrics"), dict) else {}
        tokens_in, tokens_out = metrics.get("input_token_count"), metrics.get("output_token_count")
        return ChatReply(text=text, model=model, input_tokens=tokens_in if isinstance(tokens_in, int) else None,
                         output_tokens=tokens_out if isinstance(tokens_out, int) else None)

    # -- predictions ----------------------------------------------------------------------------
    async def run_prediction(self, model: str, version: str | None, payload: dict[str, Any],
                             progress: ProgressFn) -> dict[str, Any]:
        """Create (waiting up to the wait window), poll; return the terminal prediction as a dict.

        Cancels the prediction on cancellation or timeout (``providers._polling.run_task``).
        """
        wait = max(1, min(60, int(self.config.wait_window)))

        async def create() -> tuple[str, TaskState]:
            with _map_errors():
                if version:
                    created = await self._client.predictions.async_create(version=version, input=payload, wait=wait)
                else:
                    # not predictions.async_create(model=...): replicate 1.0.7 drops `wait` on that path
                    created = await self._client.models.predictions.async_create(model=model, input=payload,
                                                                                 wait=wait)
            return created.id, _state(_as_dict(created))

        async def get(prediction_id: str) -> TaskState:
            with _map_errors(prediction_id):
                return _state(_as_dict(await self._client.predictions.async_get(prediction_id)))

        async def cancel(prediction_id: str) -> None:
            with _map_errors(prediction_id):
                await self._client.predictions.async_cancel(prediction_id)

        # The SDK retries its own GETs; a create is retried only when it cannot have run (429, 503).
        _, state = await run_task(provider=NAME, vendor="Replicate", noun="prediction", config=self.config,
                                  submit=create, poll=get, cancel=cancel, progress=progress,
                                  submit_retry=_create_retry_delay, submit_deadline=wait + 30,
                                  poll_retries=False)
        prediction: dict[str, Any] = state.body
        if prediction["status"] == "failed":
            raise GenerationFailed(f"The model failed (Replicate prediction {prediction['id']}): "
                                   f"{prediction.get('error') or 'no error text given'}",
                                   provider=NAME, job_id=prediction["id"])
        if prediction["status"] != "succeeded":
            raise GenerationFailed(f"Replicate prediction {prediction['id']} ended {prediction['status']}.",
                                   provider=NAME, job_id=prediction["id"])
        return prediction


def _state(prediction: dict[str, Any]) -> TaskState:
    return TaskState(prediction["status"], prediction["status"] in TERMINAL, prediction)


def _as_dict(prediction: Any) -> dict[str, Any]:
    keys = ("id", "status", "output", "error", "metrics", "model", "version", "logs")
    return {k: getattr(prediction, k, None) for k in keys}


def _output_urls(output: Any) -> list[str]:
    if isinstance(output, str):
        return [output]
    if isinstance(output, list):
        return [o for o in output if isinstance(o, str)]
    return []
PROVIDER = ReplicateProvider
