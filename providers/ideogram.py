"""Ideogram API 3.0, called directly: "Ideogram v3", with custom colour palettes.

What is Ideogram-specific, and lives only here (the Replicate-hosted Ideogram v3
Turbo borrows ``ideogram_style`` so both paths style a prompt the same way):

* ``POST /v1/ideogram-v3/generate``, authenticated with an ``Api-Key`` header (not
  Bearer), body **multipart/form-data**; the call is synchronous and answers
  ``{"created", "data": [{"url", "prompt", "resolution", "is_image_safe", "seed",
  "style_type"}]}``. URLs expire (``exp=``): downloaded at once;
* ``aspect_ratio`` uses ``x``: square 1x1, landscape 4x3, portrait 3x4, wide 16x9,
  tall 9x16 (the seeds' ratios);
* ``magic_prompt`` is always OFF, so the prompt as sent is the prompt we store (Ideogram
  would otherwise rewrite it);
* ``rendering_speed`` (FLASH, TURBO, DEFAULT, QUALITY) is the operator's choice for "Ideogram v3":
  EASEL_IDEOGRAM_RENDERING_SPEED, passed as ``ProviderConfig.extra["rendering_speed"]``, default DEFAULT;
  the tiers "Ideogram v3 Balanced" and "Ideogram v3 Quality" send DEFAULT and QUALITY whatever it says;
* styles are native (``native_style=True``): ``any`` -> AUTO, ``realistic_image*`` ->
  REALISTIC, ``digital_illustration*`` -> DESIGN (flat, graphic, poster-like: the
  nearest of GENERAL/REALISTIC/DESIGN, the three values both Ideogram paths accept).
  The mapping is lossy for every style but ``any`` and ``realistic_image``, so those
  also get the seeds' style words as a prompt prefix ("pixel art of ...");
* ``color_palette`` is sent (as a JSON string in its form field) when
  ``options["palette"]`` lists hex colours: members in the given order with
  descending weights from 1.0 down to 0.2 (five colours: 1.0, 0.8, 0.6, 0.4, 0.2),
  since the seed gives colours without weights and lists the dominant ones first;
* ``num_images`` 1..8 per call; ``seed`` and ``negative_prompt`` are sent when given;
* 422 is the safety check; items with ``is_image_safe: false`` carry no URL and are
  skipped, and a call whose every image was withheld is ``ContentRejected``;
  429 is retried with backoff (about 10 requests may be in flight per key).

There is no job to cancel: a cancelled call abandons the request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio
import httpx

from providers._http import parse_retry_after
from providers._ideogram_style import ideogram_style
from providers.base import REDACTED, ImageProvider, ModelSpec, Option, Price, ProviderConfig
from providers.errors import (
    AuthenticationError,
    ConfigError,
    ContentRejected,
    FieldError,
    GenerationFailed,
    GenerationTimeout,
    InsufficientCredit,
    InvalidInput,
    InvalidRequest,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnknownModel,
)
from providers.types import GeneratedImage, GenerationRequest, ImageSize, ProgressFn, TaskHooks

__all__ = ["IdeogramProvider", "MODELS", "ideogram_style", "palette_members"]

NAME = "ideogram"
VENDOR = "Ideogram"
DEFAULT_BASE_URL = "https://api.ideogram.ai"
MAX_BATCH = 8
GENERATE_PATH = "/v1/ideogram-v3/generate"
RENDERING_SPEEDS = ("FLASH", "TURBO", "DEFAULT", "QUALITY")

_ASPECT = {ImageSize.SQUARE: "1x1", ImageSize.LANDSCAPE: "4x3", ImageSize.PORTRAIT: "3x4",
           ImageSize.WIDE: "16x9", ImageSize.TALL: "9x16"}
def palette_members(colours: Sequence[str]) -> dict[str, Any]:
    """Ideogram's custom palette: the colours in order, weights descending from 1.0 to 0.2."""
    members = []
    step = 0.8 / (len(colours) - 1) if len(colours) > 1 else 0.0
    for i, colour in enumerate(colours):
        hex_ = str(colour).strip().upper()
        if len(hex_) != 7 or hex_[0] != "#" or any(c not in "0123456789ABCDEF" for c in hex_[1:]):
            raise InvalidRequest(f"palette: {colour!r} is not a colour like #1C0C47.")
        members.append({"color_hex": hex_, "color_weight": round(max(0.05, 1.0 - i * step), 2)})
    return {"members": members}


def _generate_fields(req: GenerationRequest) -> dict[str, str]:
    if not 1 <= req.count <= MAX_BATCH:
        raise InvalidRequest(f"count: Ideogram makes 1 to {MAX_BATCH} images per call, not {req.count}.")
    style_type, prompt = ideogram_style(req.style, req.prompt)
    fields = {"prompt": prompt, "aspect_ratio": _ASPECT[req.size], "magic_prompt": "OFF",
              "style_type": style_type, "num_images": str(req.count)}
    if req.seed is not None:
        fields["seed"] = str(req.seed)
    if req.negative_prompt:
        fields["negative_prompt"] = req.negative_prompt
    if req.options.get("palette"):
        fields["color_palette"] = json.dumps(palette_members(req.options["palette"]))
    return fields


def _tier(speed: str) -> Callable[[GenerationRequest], dict[str, str]]:
    return lambda req: {**_generate_fields(req), "rendering_speed": speed}


def _price(usd: float, tier: str) -> Price:
    return Price(usd, source=f"Ideogram list price for {tier} (developer.puter.com, Jun 2026)", checked="2026-12-01")


_DIRECT: dict[str, Any] = dict(native_style=True, supports_seed=True, supports_negative_prompt=True,
                               max_batch=MAX_BATCH, supports_palette=True, preference=0)

# Each name is also served by Replicate (providers/replicate.py) when IDEOGRAM_API_KEY is unset.
MODELS: list[ModelSpec] = [
    ModelSpec("Ideogram v3", NAME, "ideogram-v3", _generate_fields,
              summary="lettering, logos and posters, native styles; on Ideogram (adds negative_prompt and "
                      "palettes) at the configured rendering speed, else Turbo on Replicate",
              price=_price(0.06, "Default"), **_DIRECT),
    ModelSpec("Ideogram v3 Balanced", NAME, "ideogram-v3", _tier("DEFAULT"),
              summary="balanced tier: better lettering than Turbo",
              price=_price(0.06, "Default"), **_DIRECT),
    ModelSpec("Ideogram v3 Quality", NAME, "ideogram-v3", _tier("QUALITY"),
              summary="best tier: posters and dense text",
              price=_price(0.09, "Quality"), **_DIRECT),
]


@contextmanager
def _map_errors() -> Iterator[None]:
    """Translate httpx errors and Ideogram error replies into the project's tree, in one place."""
    try:
        yield
    except httpx.HTTPStatusError as exc:
        raise _from_response(exc.response) from None
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(f"{VENDOR} did not answer in time.", provider=NAME) from exc
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"Could not reach {VENDOR} ({type(exc).__name__}).", provider=NAME) from exc


def _from_response(response: httpx.Response) -> ProviderError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = (body.get("detail") or body.get("error") or body.get("message")) if isinstance(body, dict) else None
    if isinstance(detail, list):  # validation errors: [{"loc": [...], "msg": ...}]
        detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    text = str(detail or "").strip()
    if status in (401, 403):
        return AuthenticationError(f"{VENDOR} rejected the API key: check IDEOGRAM_API_KEY.",
                                   provider=NAME, status=status)
    if status == 402:
        return InsufficientCredit(f"{VENDOR}: insufficient credit; add credit in Ideogram's API dashboard.",
                                  provider=NAME, status=status)
    if status == 404:
        return UnknownModel(f"{VENDOR} does not offer this endpoint or model.", provider=NAME, status=status)
    if status == 422:
        return ContentRejected(f"{VENDOR}'s safety check rejected the prompt. {text}".strip(),
                               provider=NAME, status=status)
    if status == 429:
        return RateLimited(f"{VENDOR} is limiting requests. {text}".strip(), provider=NAME,
                           retry_after=parse_retry_after(response.headers.get("retry-after")))
    if status == 400:
        return InvalidInput(f"{VENDOR} rejected the input: {text or 'invalid request'}", provider=NAME,
                            status=status, fields=(FieldError("", text),) if text else ())
    return ProviderUnavailable(f"{VENDOR} answered HTTP {status}. {text}".strip(), provider=NAME, status=status)


class IdeogramProvider(ImageProvider):
    name = NAME
    vendor = VENDOR
    key_env = "IDEOGRAM_API_KEY"
    key_url = "https://ideogram.ai/manage-api"
    url_env = "IDEOGRAM_BASE_URL"
    options = (Option("rendering_speed", "EASEL_IDEOGRAM_RENDERING_SPEED", RENDERING_SPEEDS, "DEFAULT"),)

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._speed = str(config.extra.get("rendering_speed", "DEFAULT")).upper()
        if self._speed not in RENDERING_SPEEDS:
            raise ConfigError(f"Ideogram rendering_speed must be one of {', '.join(RENDERING_SPEEDS)}.")
        self._auth = {"Api-Key": config.api_key or ""}   # never empty: ImageProvider refuses a missing key
        self._http = self._http_client(DEFAULT_BASE_URL, base_url=config.base_url or DEFAULT_BASE_URL,
                                       follow_redirects=True,
                                       timeout=httpx.Timeout(config.timeout, connect=min(10.0, config.timeout)))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, fields: dict[str, str]) -> dict[str, Any]:
        with _map_errors():
            response = await self._http.post(GENERATE_PATH, headers=self._auth,
                                             files=[(k, (None, v)) for k, v in fields.items()])
            response.raise_for_status()
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ProviderUnavailable(f"{VENDOR} sent a reply without a data list.", provider=NAME, status=200)
        return body

    def _fields(self, spec: ModelSpec, request: GenerationRequest) -> dict[str, str]:
        return {"rendering_speed": self._speed, **spec.build(request)}   # a tier's own speed wins

    def describe_calls(self, spec: ModelSpec, request: GenerationRequest) -> list[dict[str, Any]]:
        """One synchronous generate call: its multipart form fields (Ideogram takes no reference images here)."""
        return [{"method": "POST", "url": str(self._http.base_url).rstrip("/") + GENERATE_PATH, "model": spec.provider_model,
                 "headers": {"Api-Key": REDACTED}, "form": self._fields(spec, request)}]

    async def _generate(self, spec: ModelSpec, request: GenerationRequest, progress: ProgressFn,
                        hooks: TaskHooks | None = None) -> list[GeneratedImage]:
        # one synchronous request: there is no task id to report (hooks) or to resume later
        fields = self._fields(spec, request)
        await progress(f"{VENDOR} generating {request.count} image(s)")
        try:
            with anyio.fail_after(self.config.timeout):
                body = await self.config.retry.run(lambda: self._post(fields), delay=self.config.retry.creating)
        except TimeoutError:
            raise GenerationTimeout(f"{VENDOR} did not answer within {self.config.timeout:g} s. Try again, or "
                                    "raise EASEL_TIMEOUT.", provider=NAME) from None
        items = [d for d in body["data"] if isinstance(d, dict)]
        safe = [d for d in items if d.get("is_image_safe", True) is not False and d.get("url")]
        if not safe:
            if items:
                raise ContentRejected(f"{VENDOR}'s safety check withheld every image ({len(items)}).",
                                      provider=NAME)
            raise GenerationFailed(f"{VENDOR} answered without any image.", provider=NAME)
        if len(safe) < len(items):
            await progress(f"{VENDOR} withheld {len(items) - len(safe)} of {len(items)} image(s) as unsafe")
        images = []
        for item in safe:
            seed = item.get("seed") if isinstance(item.get("seed"), int) else request.seed
            images.append(await self.output_image(
                item["url"], provider=NAME, provider_model=spec.provider_model, prompt_sent=fields["prompt"],
                parameters=fields, seed=seed, prediction_id=None))
        return images


PROVIDER = IdeogramProvider
