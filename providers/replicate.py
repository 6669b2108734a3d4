"""Replicate: the five seed models, the newer families (FLUX.2, FLUX Kontext, Seedream, Imagen 4,
GPT Image, Qwen Image Edit, Ideogram v3 tiers), the nano-banana edit models, and any model by name.

Everything Replicate-specific lives here: model ids, payload shapes (checked
against each model's published input schema, ``tests/fakes/replicate_schemas.json``), the
``Prefer: wait`` sync window, polling, cancellation and the mapping of Replicate's problem+json errors.

Reference images are turned into URLs Replicate can read (https passes through, small files go
inline as data: URIs, larger ones through the Files API) before the payload is built, so each
builder puts them in its model's own field (``image_input``, ``input_images``, ``input_image``,
``image``). Outputs may be one URL or an array of URLs (Seedream, GPT Image, Qwen). A model that
``requires`` another vendor's key (GPT Image: ``OPENAI_API_KEY``) gets it in its input field
and never in the stored parameters.

One job is one prediction: created with ``Prefer: wait=N`` so a quick model
costs one request plus the download; a slower one is polled with backoff by the
job loop shared with the other vendors (``providers/_polling.py``). The create
call is shielded from cancellation (bounded by the wait window) so a cancelled
call always knows the prediction id and cancels it.
"""

from __future__ import annotations

import json
import math
import ssl
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

import httpx

from providers._ideogram_style import ideogram_style
from providers._netguard import POOL_LIMITS
from providers._polling import TaskState, http_timeout, run_task
from providers.base import (
    CHINESE_FIRST,
    EDIT,
    GENERATE,
    MULTILINGUAL,
    REDACTED,
    ImageProvider,
    ModelSpec,
    Price,
    ProviderConfig,
    resumed_request,
    shown_reference,
)
from providers.errors import (
    AuthenticationError,
    ConfigError,
    FieldError,
    GenerationFailed,
    InsufficientCredit,
    InvalidInput,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnknownModel,
)
from providers.types import (
    AspectRatio,
    ChatReply,
    GeneratedImage,
    GenerationRequest,
    ImageSize,
    ImageStyle,
    InputImage,
    OutputFormat,
    ProgressFn,
    TaskHooks,
)

__all__ = ["MODELS", "ReplicateProvider"]

NAME = "replicate"
DEFAULT_BASE_URL = "https://api.replicate.com"   # the replicate SDK's default (REPLICATE_BASE_URL overrides)
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})

# Semantic size tables (the seeds'), adjusted only where the published schema disagrees.
_RATIO = {ImageSize.SQUARE: "1:1", ImageSize.LANDSCAPE: "4:3", ImageSize.PORTRAIT: "3:4",
          ImageSize.WIDE: "16:9", ImageSize.TALL: "9:16"}
# SD 3.5 Medium publishes no 4:3 or 3:4: nearest published ratios are 5:4 and 4:5.
_SD_RATIO = {**_RATIO, ImageSize.LANDSCAPE: "5:4", ImageSize.PORTRAIT: "4:5"}
_FLUX_PIXELS = {ImageSize.SQUARE: (1024, 1024), ImageSize.LANDSCAPE: (1365, 1024),
                ImageSize.PORTRAIT: (1024, 1365), ImageSize.WIDE: (1440, 810),
                ImageSize.TALL: (810, 1440)}
# Recraft publishes 1820x1024 and 1024x1820 among its sizes: wide and tall are the seeds' 16:9 and 9:16.
_RECRAFT_SIZE = {ImageSize.SQUARE: "1024x1024", ImageSize.LANDSCAPE: "1365x1024",
                 ImageSize.PORTRAIT: "1024x1365", ImageSize.WIDE: "1820x1024",
                 ImageSize.TALL: "1024x1820"}
# Published aspect-ratio enums (tests/fakes/replicate_schemas.json): a ratio a model lacks becomes its
# nearest published one (``_nearest``).
_FLUX2_RATIOS = ("match_input_image", "1:1", "16:9", "3:2", "2:3", "4:5", "5:4", "9:16", "3:4", "4:3")
_KONTEXT_RATIOS = ("match_input_image", "1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "4:5", "5:4", "21:9",
                   "9:21", "2:1", "1:2")
_SEEDREAM_RATIOS = ("match_input_image", "1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "21:9")
_IMAGEN_RATIOS = ("1:1", "9:16", "16:9", "3:4", "4:3")
_GPT_IMAGE_RATIOS = ("1:1", "3:2", "2:3")
_QWEN_EDIT_RATIOS = ("match_input_image", "1:1", "16:9", "9:16", "4:3", "3:4")
# Variables a model ``requires``, and the input field that carries each to the model (never stored or shown).
_PASSED_THROUGH = {"OPENAI_API_KEY": "openai_api_key"}
CHECKED = "2026-12-01"


def _with_seed(payload: dict[str, Any], req: GenerationRequest) -> dict[str, Any]:
    if req.seed is not None:
        payload["seed"] = req.seed
    return payload


def _nearest(ratio: str, published: Sequence[str]) -> str:
    """``ratio`` if the model publishes it, else the closest published ratio (by log of width/height, so a
    landscape ratio never turns portrait)."""
    if ratio in published:
        return ratio

    def log_ratio(value: str) -> float:
        w, h = value.split(":")
        return math.log(int(w) / int(h))

    want = log_ratio(ratio)
    return min((r for r in published if ":" in r), key=lambda r: abs(log_ratio(r) - want))


def _aspect(req: GenerationRequest, published: Sequence[str]) -> str:
    """The aspect ratio to send: from ``size`` when generating, from ``aspect_ratio`` when editing.

    ``match_input_image`` needs an input image and a model that publishes it; otherwise the image is square.
    """
    if req.aspect_ratio is None:
        return _nearest(_RATIO[req.size], published)
    if req.aspect_ratio == AspectRatio.MATCH_INPUT_IMAGE:
        return "match_input_image" if req.input_images and "match_input_image" in published else "1:1"
    return _nearest(req.aspect_ratio.value, published)


def _format(req: GenerationRequest, published: Sequence[str]) -> str:
    """The output format asked for (jpg unless png), spelled the way the model publishes it."""
    wanted = "png" if req.output_format == OutputFormat.PNG else "jpg"
    return wanted if wanted in published else "jpeg"


def _refs(req: GenerationRequest) -> list[str]:
    """Reference images as sent: ``_generate`` has replaced each by a URL Replicate can read."""
    return [img.url or "" for img in req.input_images]


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
    payload: dict[str, Any] = {"prompt": req.prompt, "image_input": _refs(req),
                               "aspect_ratio": _aspect(req, [r.value for r in AspectRatio]),  # publishes them all
                               "output_format": _format(req, ("jpg", "png"))}
    if pro:
        payload["resolution"] = "2K"
    return payload


def _ideogram(req: GenerationRequest) -> dict[str, Any]:
    # Same style mapping as the direct Ideogram API; this schema capitalises it and has no palette.
    style_type, prompt = ideogram_style(req.style, req.prompt)
    return _with_seed({"prompt": prompt, "aspect_ratio": _RATIO[req.size], "magic_prompt_option": "Off",
                       "style_type": style_type.capitalize()}, req)


def _flux2(req: GenerationRequest, *, megapixels: bool = True, upsampling: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {"prompt": req.prompt, "aspect_ratio": _aspect(req, _FLUX2_RATIOS),
                               "output_format": _format(req, ("webp", "jpg", "png")), "output_quality": 90}
    if megapixels:                      # pro, flex and max; dev has no resolution field
        payload["resolution"] = "1 MP"
    if upsampling:                      # flex upsamples by default: off, so the prompt stored is the prompt used
        payload["prompt_upsampling"] = False
    if req.input_images:
        payload["input_images"] = _refs(req)
    return _with_seed(payload, req)


def _kontext(req: GenerationRequest) -> dict[str, Any]:
    payload: dict[str, Any] = {"prompt": req.prompt, "aspect_ratio": _aspect(req, _KONTEXT_RATIOS),
                               "output_format": _format(req, ("jpg", "png")), "prompt_upsampling": False}
    if req.input_images:
        payload["input_image"] = _refs(req)[0]
    return _with_seed(payload, req)


def _seedream(req: GenerationRequest, *, enhance_field: bool) -> dict[str, Any]:
    # One image per prediction (sequential generation off); the output is still an array of URLs.
    payload: dict[str, Any] = {"prompt": req.prompt, "size": "2K", "aspect_ratio": _aspect(req, _SEEDREAM_RATIOS),
                               "sequential_image_generation": "disabled", "max_images": 1}
    if enhance_field:                   # Seedream 4 rewrites prompts by default; 4.5 has no such field
        payload["enhance_prompt"] = False
    if req.input_images:
        payload["image_input"] = _refs(req)
    return payload


def _imagen(req: GenerationRequest) -> dict[str, Any]:
    return {"prompt": req.prompt, "aspect_ratio": _aspect(req, _IMAGEN_RATIOS), "output_format": "jpg",
            "safety_filter_level": "block_only_high"}


def _gpt_image(req: GenerationRequest) -> dict[str, Any]:
    # openai_api_key is added by the provider from the server's OPENAI_API_KEY (``requires``).
    payload: dict[str, Any] = {"prompt": req.prompt, "aspect_ratio": _aspect(req, _GPT_IMAGE_RATIOS),
                               "output_format": _format(req, ("png", "jpeg", "webp")), "quality": "auto",
                               "moderation": "auto", "number_of_images": req.count}
    if req.input_images:
        payload["input_images"] = _refs(req)
    return payload


def _qwen_edit(req: GenerationRequest) -> dict[str, Any]:
    return _with_seed({"prompt": req.prompt, "image": _refs(req), "aspect_ratio": _aspect(req, _QWEN_EDIT_RATIOS),
                       "output_format": _format(req, ("webp", "jpg", "png"))}, req)


def _price(usd: float, source: str, per: str = "image") -> Price:
    return Price(usd, per=per, source=source, checked=CHECKED)


BOTH = frozenset({GENERATE, EDIT})


MODELS: list[ModelSpec] = [
    # -- the seed's five, first: Flux 1.1 Pro is the tools' default --------------------------------------------
    ModelSpec("Flux 1.1 Pro", NAME, "black-forest-labs/flux-1.1-pro", _flux,
              summary="fast, faithful photos and art", supports_seed=True,
              price=_price(0.04, "lumenfall.ai provider table (Replicate $0.040/image)")),
    ModelSpec("Flux 1.1 Pro Ultra", NAME, "black-forest-labs/flux-1.1-pro-ultra", _flux_ultra,
              summary="up to 4 MP, highest detail of Flux 1.1", supports_seed=True,
              price=_price(0.06, "runflow.io (BFL list price $0.06/image)")),
    ModelSpec("Recraft v3", NAME, "recraft-ai/recraft-v3", _recraft,
              summary="design and illustration, native styles", native_style=True,
              price=_price(0.04, "aigateway.sh (pass-through price $0.040/image)")),
    ModelSpec("Stable Diffusion 3.5 Medium", NAME, "stability-ai/stable-diffusion-3.5-medium", _sd35,
              summary="cheap, open weights", supports_seed=True, supports_negative_prompt=True),
    ModelSpec("Nano Banana Pro", NAME, "google/nano-banana-pro", _nano_pro,
              summary="Gemini 3 Pro Image: text rendering, 2K", prompt_languages=MULTILINGUAL,
              price=_price(0.15, "lumenfall.ai provider table (Replicate, 1K/2K; 4K is $0.30)")),
    # -- the seed's edit models: google/nano-banana is edit_image's default ----------------------------------
    ModelSpec("google/nano-banana", NAME, "google/nano-banana", lambda r: _nano_edit(r, pro=False),
              summary="Gemini 2.5 Flash Image: quick edits", uses=frozenset({EDIT}), max_input_images=10,
              prompt_languages=MULTILINGUAL,
              price=_price(0.039, "lumenfall.ai provider table (Replicate $0.039/image)")),
    ModelSpec("google/nano-banana-pro", NAME, "google/nano-banana-pro", lambda r: _nano_edit(r, pro=True),
              summary="Gemini 3 Pro Image: best edits",
              uses=frozenset({EDIT}), max_input_images=14, prompt_languages=MULTILINGUAL,
              price=_price(0.15, "lumenfall.ai provider table (Replicate, 1K/2K; 4K is $0.30)")),
    # -- served here when IDEOGRAM_API_KEY is unset (providers/ideogram.py has the direct entries) -------------
    ModelSpec("Ideogram v3", NAME, "ideogram-ai/ideogram-v3-turbo", _ideogram,
              summary="lettering, logos and posters, native styles; Turbo tier on Replicate, or Ideogram "
                      "itself with IDEOGRAM_API_KEY (adds negative_prompt and palettes)",
              native_style=True, supports_seed=True, preference=1,
              price=_price(0.03, "Ideogram list price for Turbo (developer.puter.com, Jun 2026)")),
    ModelSpec("Ideogram v3 Balanced", NAME, "ideogram-ai/ideogram-v3-balanced", _ideogram,
              summary="balanced tier: better lettering than Turbo",
              native_style=True, supports_seed=True, preference=1,
              price=_price(0.06, "Ideogram list price for Default/Balanced (developer.puter.com, Jun 2026)")),
    ModelSpec("Ideogram v3 Quality", NAME, "ideogram-ai/ideogram-v3-quality", _ideogram,
              summary="best tier: posters and dense text",
              native_style=True, supports_seed=True, preference=1,
              price=_price(0.09, "Ideogram list price for Quality (developer.puter.com, Jun 2026)")),
    # -- newer models -------------------------------------------------------------------------------------------
    ModelSpec("FLUX.2 Pro", NAME, "black-forest-labs/flux-2-pro", _flux2,
              summary="photoreal detail and legible text, multi-reference edits",
              uses=BOTH, supports_seed=True, max_input_images=8,
              price=_price(0.03, "runflow.io, Mar 2026: BFL list price for the first MP (+$0.015 per extra MP, "
                                 "inputs count); Replicate's own rate unverified")),
    ModelSpec("FLUX.2 Max", NAME, "black-forest-labs/flux-2-max", _flux2,
              summary="the family's highest fidelity",
              uses=BOTH, supports_seed=True, max_input_images=8),
    ModelSpec("FLUX.2 Flex", NAME, "black-forest-labs/flux-2-flex", lambda r: _flux2(r, upsampling=True),
              summary="tuned for typography and fine detail",
              uses=BOTH, supports_seed=True, max_input_images=10,
              price=_price(0.06, "lumenfall.ai, 2026 (fal.ai and Replicate)", per="megapixel")),
    ModelSpec("FLUX.2 Dev", NAME, "black-forest-labs/flux-2-dev", lambda r: _flux2(r, megapixels=False),
              summary="open weights, quick and cheap",
              uses=BOTH, supports_seed=True, max_input_images=4),
    ModelSpec("FLUX Kontext Pro", NAME, "black-forest-labs/flux-kontext-pro", _kontext,
              summary="precise instruction edits of one image (change text, colours, objects)",
              uses=frozenset({EDIT}), supports_seed=True, max_input_images=1,
              price=_price(0.04, "oauth.openai-hk.com reseller table quoting Replicate, 2025")),
    ModelSpec("Seedream 4", NAME, "bytedance/seedream-4", lambda r: _seedream(r, enhance_field=True),
              summary="ByteDance: 2K images, blends several references",
              uses=BOTH, max_input_images=10, prompt_languages=CHINESE_FIRST,
              price=_price(0.03, "llm-stats.com, 2026 (via Replicate)")),
    ModelSpec("Seedream 4.5", NAME, "bytedance/seedream-4.5", lambda r: _seedream(r, enhance_field=False),
              summary="sharper 2K images and text than 4",
              uses=BOTH, max_input_images=14, prompt_languages=CHINESE_FIRST,
              price=_price(0.04, "aggregators, 2026 (infr.sh lists Replicate at $0.045); unverified")),
    ModelSpec("Imagen 4 Fast", NAME, "google/imagen-4-fast", _imagen,
              summary="Google's fastest, cheapest tier",
              price=_price(0.02, "Google list price (resellers mark it up); Replicate's rate unverified")),
    ModelSpec("Imagen 4", NAME, "google/imagen-4", _imagen,
              summary="Google: photoreal scenes, clean composition",
              price=_price(0.04, "Google list price (resellers mark it up); Replicate's rate unverified")),
    ModelSpec("Imagen 4 Ultra", NAME, "google/imagen-4-ultra", _imagen,
              summary="Google's most prompt-faithful tier",
              price=_price(0.06, "Google list price (resellers mark it up); Replicate's rate unverified")),
    ModelSpec("GPT Image 1.5", NAME, "openai/gpt-image-1.5", _gpt_image,
              summary="OpenAI: follows long instructions, text in images; OpenAI bills the key's "
                      "account",
              uses=BOTH, max_input_images=14, max_batch=4, prompt_languages=MULTILINGUAL,
              requires=("OPENAI_API_KEY",)),
    ModelSpec("Qwen Image Edit", NAME, "qwen/qwen-image-edit-plus", _qwen_edit,
              summary="Alibaba Qwen: edits and combines images, keeps Chinese and English text; "
                      "on Replicate, else on ModelScope (one https URL only)",
              uses=frozenset({EDIT}), supports_seed=True, min_input_images=1, max_input_images=3,
              prompt_languages=CHINESE_FIRST),
]

# --- error capture -------------------------------------------------------------------------
# replicate 1.0.7's ReplicateError keeps title/detail only; invalid_fields and retry_after
# are read from the response itself by a transport wrapper into the caller's sink.
_error_sink: ContextVar[list[httpx.Response] | None] = ContextVar("replicate_error_sink", default=None)


class _CapturingTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    def __init__(self, verify: ssl.SSLContext | bool = True) -> None:
        self._async = httpx.AsyncHTTPTransport(verify=verify, limits=POOL_LIMITS)
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


def _create_retry_policy(config: ProviderConfig) -> Callable[[ProviderError, int], float | None]:
    """POST is not idempotent: retry only 429 and 503 (the request was not processed)."""

    def delay(exc: ProviderError, attempt: int) -> float | None:
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        if isinstance(exc, RateLimited) or exc.status == 503:
            return config.retry.backoff(attempt + 1)
        return None

    return delay


class ReplicateProvider(ImageProvider):
    name = NAME
    vendor = "Replicate"
    key_env = "REPLICATE_API_TOKEN"
    key_url = "https://replicate.com/account/api-tokens"
    key_kind = "an API token"
    url_env = "REPLICATE_BASE_URL"
    # Replicate limits how fast predictions are created (600/min), not how many run at once; a job holds
    # its slot while the model runs (seconds), so the base default of 8 made a shared server's 9th
    # concurrent call wait for a whole generation (bench/team.py: 50 calls per replica took 7x one).
    default_concurrency = 64

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        import replicate  # imported when first used: keeps start-up fast

        tls = httpx.create_ssl_context()  # one TLS context for all three clients: each costs ~40 ms to build
        self._client = replicate.Client(api_token=config.api_key, base_url=config.base_url or None,
                                        transport=_CapturingTransport(tls))
        # downloads are bounded too: a stalled file host must not outlive the configured timeout
        self._http = self._http_client(DEFAULT_BASE_URL, timeout=http_timeout(config), follow_redirects=True,
                                       verify=tls)

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the image path -----------------------------------------------------------------------
    async def _generate(self, spec: ModelSpec, request: GenerationRequest, progress: ProgressFn,
                        hooks: TaskHooks | None = None) -> list[GeneratedImage]:
        secrets = self._passed_through(spec)        # before any upload: a missing key costs nothing
        refs = [await self.image_reference(img.data, img.mime_type, img.url) for img in request.input_images]
        sent = replace(request, input_images=tuple(InputImage(data=None, mime_type=img.mime_type, url=ref,
                                                              source=img.source)
                                                   for img, ref in zip(request.input_images, refs, strict=True)))
        payload = {**spec.build(sent), **secrets}
        prediction = await self.run_prediction(spec.provider_model, None, payload, progress, hooks)
        return await self._images(spec, request, prediction, _shown(payload, hidden=set(secrets), refs=set(refs)))

    can_resume = True

    async def _resume(self, spec: ModelSpec, request: GenerationRequest, task_id: str, progress: ProgressFn,
                      hooks: TaskHooks | None) -> list[GeneratedImage]:
        """The prediction fetched by id (GET /v1/predictions/{id}), waited for and downloaded. The recorded
        parameters are the payload rebuilt from ``request``, reference images shown as "<image>"."""
        prediction = await self.resume_prediction(task_id, progress, hooks)
        return await self._images(spec, request, prediction, spec.build(resumed_request(request)))

    async def _images(self, spec: ModelSpec, request: GenerationRequest, prediction: dict[str, Any],
                      shown: dict[str, Any]) -> list[GeneratedImage]:
        """A succeeded prediction's output images, to download at once (Replicate deletes them after an hour)."""
        urls = _output_urls(prediction.get("output"))
        if not urls:
            raise GenerationFailed(f"Replicate prediction {prediction['id']} succeeded but returned no image.",
                                   provider=NAME, job_id=prediction["id"])
        images = []
        for url in urls:
            images.append(await self.output_image(url, provider=NAME, provider_model=spec.provider_model,
                                                  prompt_sent=str(shown.get("prompt", request.prompt)),
                                                  parameters=shown, seed=request.seed,
                                                  prediction_id=prediction["id"]))
        return images

    def describe_calls(self, spec: ModelSpec, request: GenerationRequest) -> list[dict[str, Any]]:
        """One prediction: the payload as ``_generate`` builds it, references shown short (at run time they become
        https URLs, data: URIs or uploads), each passed-through key redacted whether it is set or not."""
        shown = replace(request, input_images=tuple(replace(img, data=None, url=shown_reference(img))
                                                    for img in request.input_images))
        payload = {**spec.build(shown), **{_PASSED_THROUGH[var]: REDACTED for var in spec.requires}}
        return [self.describe_prediction(spec.provider_model, None, payload)]

    def describe_prediction(self, model: str, version: str | None, payload: dict[str, Any]) -> dict[str, Any]:
        """The create request ``run_prediction`` would send (the replicate SDK's routes)."""
        base = (self.config.base_url or DEFAULT_BASE_URL).rstrip("/")
        if version:
            return {"method": "POST", "url": f"{base}/v1/predictions", "model": f"{model}:{version}",
                    "json": {"version": version, "input": payload}}
        return {"method": "POST", "url": f"{base}/v1/models/{model}/predictions", "model": model,
                "json": {"input": payload}}

    def _passed_through(self, spec: ModelSpec) -> dict[str, str]:
        """The input fields that carry what the model ``requires`` (e.g. the caller's OpenAI key)."""
        fields = {}
        for var in spec.requires:
            value = self.config.secrets.get(var)
            if not value:
                raise ConfigError(f"{spec.name} needs {var}: set it in the server's environment (Replicate "
                                  "passes it to the model's vendor, which bills that account).")
            fields[_PASSED_THROUGH[var]] = value
        return fields

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
        metrics = prediction.get("metrics")
        if not isinstance(metrics, dict):
            metrics = {}
        tokens_in, tokens_out = metrics.get("input_token_count"), metrics.get("output_token_count")
        return ChatReply(text=text, model=model, input_tokens=tokens_in if isinstance(tokens_in, int) else None,
                         output_tokens=tokens_out if isinstance(tokens_out, int) else None)

    # -- predictions ----------------------------------------------------------------------------
    async def run_prediction(self, model: str, version: str | None, payload: dict[str, Any],
                             progress: ProgressFn, hooks: TaskHooks | None = None) -> dict[str, Any]:
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

        # A create is retried only when it cannot have run (429, 503).
        return await self._await(create, progress, hooks, submit_retry=_create_retry_policy(self.config),
                                 submit_deadline=wait + 30)

    async def resume_prediction(self, prediction_id: str, progress: ProgressFn,
                                hooks: TaskHooks | None = None) -> dict[str, Any]:
        """A prediction created earlier (by any process), fetched by id and polled to its end."""

        async def fetch() -> tuple[str, TaskState]:
            return prediction_id, await self._get(prediction_id)

        return await self._await(fetch, progress, hooks)

    async def _get(self, prediction_id: str) -> TaskState:
        with _map_errors(prediction_id):
            return _state(_as_dict(await self._client.predictions.async_get(prediction_id)))

    async def _await(self, submit: Callable[[], Awaitable[tuple[str, TaskState]]], progress: ProgressFn,
                     hooks: TaskHooks | None, **submitting: Any) -> dict[str, Any]:
        # The SDK retries its own GETs.
        _, state = await run_task(provider=NAME, vendor="Replicate", noun="prediction", config=self.config,
                                  submit=submit, poll=self._get, cancel=self._cancel, progress=progress,
                                  poll_retries=False, hooks=hooks, **submitting)
        prediction: dict[str, Any] = state.body
        if prediction["status"] == "failed":
            raise GenerationFailed(f"The model failed (Replicate prediction {prediction['id']}): "
                                   f"{prediction.get('error') or 'no error text given'}",
                                   provider=NAME, job_id=prediction["id"])
        if prediction["status"] != "succeeded":
            raise GenerationFailed(f"Replicate prediction {prediction['id']} ended {prediction['status']}.",
                                   provider=NAME, job_id=prediction["id"])
        return prediction

    async def _cancel(self, prediction_id: str) -> None:
        with _map_errors(prediction_id):
            await self._client.predictions.async_cancel(prediction_id)

    async def cancel_task(self, task_id: str) -> bool:
        await self._cancel(task_id)
        return True


def _state(prediction: dict[str, Any]) -> TaskState:
    return TaskState(prediction["status"], prediction["status"] in TERMINAL, prediction)


def _as_dict(prediction: Any) -> dict[str, Any]:
    keys = ("id", "status", "output", "error", "metrics", "model", "version", "logs")
    return {k: getattr(prediction, k, None) for k in keys}


def _shown(payload: dict[str, Any], *, hidden: set[str], refs: set[str]) -> dict[str, Any]:
    """The payload as recorded with the image: no passed-through secrets, no reference bytes or upload URLs."""
    def show(value: Any) -> Any:
        if isinstance(value, list):
            return [show(v) for v in value]
        return "<image>" if isinstance(value, str) and value in refs else value

    return {k: show(v) for k, v in payload.items() if k not in hidden}


def _output_urls(output: Any) -> list[str]:
    if isinstance(output, str):
        return [output]
    if isinstance(output, list):
        return [o for o in output if isinstance(o, str)]
    return []
PROVIDER = ReplicateProvider
