"""What every provider is: a catalog of model specs and one class that runs them.

A ``ModelSpec`` is one entry in a provider module's ``MODELS`` list: the public
name the tools show, the vendor's model id, what the model can do, and the
function that maps a ``GenerationRequest`` to the vendor payload. Adding a model
is adding an entry; adding a vendor is adding a module with a ``MODELS`` list and
an ``ImageProvider`` subclass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, ClassVar

import anyio
import httpx

from providers._http import download, read_whole, stream_download
from providers._limits import RateLimiter
from providers._netguard import FetchPolicy, guarded_client
from providers.errors import ConfigError, InvalidRequest
from providers.retry import RetryPolicy
from providers.types import (
    ChatReply,
    GeneratedImage,
    GenerationRequest,
    InputImage,
    OutputStream,
    ProgressFn,
    TaskHooks,
)

__all__ = ["CHINESE_FIRST", "DEFAULT_USD_RATES", "DEFAULT_WAIT_WINDOW", "EDIT", "ENGLISH", "GENERATE", "MULTILINGUAL",
           "REDACTED", "ImageProvider", "ModelSpec", "Option", "Price", "ProviderConfig", "resumed_request",
           "shown_reference"]

GENERATE = "generate"
EDIT = "edit"
DEFAULT_WAIT_WINDOW = 20       # seconds a vendor may hold a create request (sync mode); EASEL_WAIT_WINDOW

PayloadBuilder = Callable[[GenerationRequest], dict[str, Any]]

ENGLISH = ("en",)              # the text encoder reads English only: never send it CJK characters
CHINESE_FIRST = ("zh", "en")   # reads Chinese natively: a Chinese text gets a prompt written in Chinese
MULTILINGUAL = ("en", "zh")    # reads most languages, but is prompted best in English


#: USD per unit of each currency a price may be published in; the server overrides CNY with EASEL_USD_PER_CNY.
DEFAULT_USD_RATES: Mapping[str, float] = {"USD": 1.0, "CNY": 0.14}   # 0.14: about 7.1 CNY per USD (2025)
REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class Price:
    """What one output costs at the vendor, as published (an estimate: vendors change prices)."""

    amount: float                  # per image, or per megapixel of output when ``per == "megapixel"``
    per: str = "image"             # "image" or "megapixel"
    source: str = ""               # where the figure was read
    checked: str = ""              # ISO date it was last checked
    currency: str = "USD"          # as the vendor bills: "USD" or "CNY" (converted at EASEL_USD_PER_CNY)
    megapixels: float = 1.0        # per-megapixel prices: the output size we ask for, to estimate before the call

    def usd(self, rates: Mapping[str, float] = DEFAULT_USD_RATES, *, megapixels: float | None = None) -> float:
        """One image's cost in USD; a per-megapixel price is taken at ``megapixels`` (the real size, once an
        image exists), else at the size we ask for."""
        units = 1.0 if self.per == "image" else (self.megapixels if megapixels is None else megapixels)
        return self.amount * rates[self.currency] * units


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model as the tools offer it."""

    name: str                      # public name, e.g. "Flux 1.1 Pro" (an enum value in tool schemas)
    provider: str                  # provider name, e.g. "replicate"
    provider_model: str            # the vendor's id, e.g. "black-forest-labs/flux-1.1-pro"
    build: PayloadBuilder          # GenerationRequest -> vendor payload
    summary: str = ""              # one line for tool descriptions
    uses: frozenset[str] = frozenset({GENERATE})
    native_style: bool = False     # the model takes ImageStyle itself; no prompt prefix
    supports_seed: bool = False
    supports_negative_prompt: bool = False
    max_input_images: int = 0      # 0: takes no reference images
    min_input_images: int = 0      # e.g. 1 for an edit model that cannot draw from the prompt alone
    max_batch: int = 1             # images one provider call can return
    supports_palette: bool = False  # honours options["palette"] (hex colours), e.g. Ideogram
    preference: int = 0            # lower wins when several providers serve one name
    prompt_languages: tuple[str, ...] = ENGLISH   # languages the model reads, the one to write in first
    price: Price | None = None     # None: unknown
    requires: tuple[str, ...] = ()  # environment variables besides the provider's key, passed through
                                    # to the vendor (e.g. OPENAI_API_KEY for GPT Image on Replicate)

    @property
    def reads_chinese(self) -> bool:
        return "zh" in self.prompt_languages

    def check(self, request: GenerationRequest) -> None:
        """Refuse what this model cannot honour, before anything is spent."""
        if request.seed is not None and not self.supports_seed:
            raise InvalidRequest(f"seed: {self.name} does not accept a seed; leave it out "
                                 "or choose a model that does (see the tool description).")
        if request.negative_prompt and not self.supports_negative_prompt:
            raise InvalidRequest(f"negative_prompt: {self.name} does not accept a negative "
                                 "prompt; leave it out or choose a model that does.")
        if len(request.input_images) > self.max_input_images:
            raise InvalidRequest(
                f"images: {self.name} accepts at most {self.max_input_images} reference "
                f"image(s); {len(request.input_images)} were given.")
        if len(request.input_images) < self.min_input_images:
            raise InvalidRequest(
                f"images: {self.name} edits an image and needs at least {self.min_input_images} reference "
                f"image(s); {len(request.input_images)} were given.")


def shown_reference(image: InputImage, limit: int = 120) -> str:
    """A reference image as a dry run shows it: an https URL as given (shortened past ``limit``), inline data as
    its type and size (a data: URI is megabytes of text nobody needs to read)."""
    url = image.url or ""
    if url and not url.startswith("data:"):
        return url if len(url) <= limit else url[:limit - 1] + "…"
    size = len(image.data) if image.data is not None else len(url) * 3 // 4
    return f"<{image.mime_type}, {size} bytes>"


@dataclass(frozen=True, slots=True)
class Option:
    """A vendor-specific setting a provider class declares (``ImageProvider.options``).

    The server reads ``env`` once, accepts any of ``choices`` whatever its case, and hands
    the declared spelling to the provider as ``ProviderConfig.extra[key]``."""

    key: str                       # name in ProviderConfig.extra, e.g. "rendering_speed"
    env: str                       # environment variable, e.g. "EASEL_IDEOGRAM_RENDERING_SPEED"
    choices: tuple[str, ...]       # allowed values, in the vendor's spelling
    default: str


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """Everything a provider needs from the settings; tests point base_url at a fake."""

    api_key: str | None = field(repr=False)   # never in a repr, log line or error
    base_url: str | None = None
    timeout: float = 300.0         # whole job, seconds
    wait_window: int = DEFAULT_WAIT_WINDOW
    poll_interval: float = 0.5     # first poll delay; grows to poll_max
    poll_max: float = 5.0
    max_retries: int = 3           # for 429 / retryable 5xx / connection errors
    retry_base: float = 0.5        # first retry's wait, seconds (doubles each retry); EASEL_RETRY_BASE
    retry_cap: float = 30.0        # longest single wait between retries
    concurrency: int = 8           # jobs in flight at once for this provider
    rate: float = 0.0              # job submissions per second; 0 = unlimited
    max_download_bytes: int = 64 * 1024 * 1024
    # what output downloads may reach (providers/_netguard.py); each provider adds its own endpoint
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    extra: dict[str, Any] = field(default_factory=dict)
    # values of the variables a model ``requires`` (by variable name); never in a repr, log line or error
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of this provider's calls (``providers/retry.py``)."""
        return RetryPolicy(retries=self.max_retries, base=self.retry_base, cap=self.retry_cap)


def resumed_request(request: GenerationRequest) -> GenerationRequest:
    """``request`` as a resumed task rebuilds its recorded parameters: a job record keeps no image bytes, so
    each reference image stands as ``"<image>"`` (as the stored parameters show it anyway)."""
    return replace(request, input_images=tuple(InputImage(data=None, mime_type=i.mime_type, url="<image>",
                                                          source=i.source) for i in request.input_images))


class ImageProvider(ABC):
    """One vendor. Subclasses set ``name``, ``vendor``, the key's ``key_env`` / ``key_url``
    (and ``key_kind`` if the vendor does not call it an API key), ``url_env``, and implement
    ``_generate``. A provider is only built with a key: without one, construction says where
    to get it.

    The class declares its settings; the server reads them with one loop over the classes
    (``server/config.py``) and never names a vendor variable itself: the key and base-URL
    variables, the default submission rate and concurrency (overridden by
    ``EASEL_<NAME>_RATE`` / ``EASEL_<NAME>_CONCURRENCY``), vendor ``options``, and, through
    each model's ``ModelSpec.requires``, the keys passed through to the vendor."""

    name: ClassVar[str]                      # registry name, e.g. "replicate"
    vendor: ClassVar[str]                    # display name, e.g. "Replicate"
    key_env: ClassVar[str]                   # e.g. "REPLICATE_API_TOKEN"
    key_url: ClassVar[str]                   # where a user gets one
    key_kind: ClassVar[str] = "an API key"
    url_env: ClassVar[str]                   # base-URL override, e.g. "REPLICATE_BASE_URL"
    default_rate: ClassVar[float] = 0.0      # job submissions per second; 0 = unlimited
    default_concurrency: ClassVar[int] = 8   # jobs in flight at once
    options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, config: ProviderConfig) -> None:
        if not config.api_key:
            raise ConfigError(f"{self.vendor} needs {self.key_kind}: set {self.key_env} ({self.key_url}).")
        self.config = config
        self._slots = anyio.CapacityLimiter(max(1, config.concurrency))
        self._rate = RateLimiter(config.rate)

    async def generate(self, spec: ModelSpec, request: GenerationRequest, progress: ProgressFn,
                       hooks: TaskHooks | None = None, *, stream: bool = False) -> list[GeneratedImage]:
        """Run one job under this provider's concurrency and rate limits; ``hooks`` hears its task id.

        With ``stream`` an output served from a URL comes back not yet downloaded (``GeneratedImage.stream``)
        for a caller that reads it as it arrives (the server: into its store), and the download no
        longer holds one of the provider's job slots; without, every image holds its bytes."""
        async with self._slots:
            await self._rate.acquire()
            images = await self._generate(spec, request, progress, hooks)
        return await downloaded(images, stream=stream)

    @abstractmethod
    async def _generate(self, spec: ModelSpec, request: GenerationRequest, progress: ProgressFn,
                        hooks: TaskHooks | None = None) -> list[GeneratedImage]: ...

    #: Whether a task created earlier, by this or another process, can be fetched by its id (``resume``).
    can_resume: ClassVar[bool] = False

    async def resume(self, spec: ModelSpec, request: GenerationRequest, task_id: str, progress: ProgressFn,
                     hooks: TaskHooks | None = None, *, stream: bool = False) -> list[GeneratedImage]:
        """Fetch the task ``task_id`` (made for ``request``) by id, wait for it to finish and download its
        outputs, as ``generate`` would have (``stream`` as there): nothing is submitted, so nothing is paid
        again. Vendors that answer synchronously have no task to fetch and refuse."""
        async with self._slots:
            images = await self._resume(spec, request, task_id, progress, hooks)
        return await downloaded(images, stream=stream)

    async def _resume(self, spec: ModelSpec, request: GenerationRequest, task_id: str, progress: ProgressFn,
                      hooks: TaskHooks | None) -> list[GeneratedImage]:
        raise InvalidRequest(f"{self.vendor} answers synchronously: there is no task {task_id} to resume.")

    async def cancel_task(self, task_id: str) -> bool:
        """Ask the vendor to cancel the task ``task_id`` (made by any process); False when it offers no way to.
        Raises the vendor's error (ProviderError) when the request fails."""
        return False

    @abstractmethod
    def describe_calls(self, spec: ModelSpec, request: GenerationRequest) -> list[dict[str, Any]]:
        """What ``generate`` would send for ``request``, sending nothing (dry runs): one entry per request that
        creates work at the vendor, ``{"method", "url", "model", "json" or "form"}``. Keys and tokens are
        ``REDACTED``; reference images are shown by ``shown_reference``, never as their bytes."""

    _http: httpx.AsyncClient   # output downloads (and, for most vendors, the API calls too)

    def _http_client(self, default_base_url: str, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client for this vendor: its endpoint trusted, every other address (output files,
        redirects) behind the fetch guard (``providers/_netguard.py``)."""
        return guarded_client(self.config.fetch.trusting(self.config.base_url or default_base_url), **kwargs)

    async def fetch_output(self, url: str) -> tuple[bytes, str | None]:
        """Download an output file (or decode a data: URI) through the guard, bounded and retried."""
        return await download(self._http, url, provider=self.name, max_bytes=self.config.max_download_bytes,
                              retries=self.config.max_retries, retry_base=self.config.retry_base)

    def output_stream(self, url: str) -> OutputStream:
        """The download of an output file, not started: as ``fetch_output``, read chunk by chunk."""
        return partial(stream_download, self._http, url, provider=self.name,
                       max_bytes=self.config.max_download_bytes, retries=self.config.max_retries,
                       retry_base=self.config.retry_base)

    async def output_image(self, url: str, **fields: Any) -> GeneratedImage:
        """The image at ``url`` with its ``fields`` (provider, prompt_sent, …): a data: URI decoded now
        (its ``source_url`` None: there is no other copy), any other URL as a stream to download."""
        if url.startswith("data:"):
            data, mime = await self.fetch_output(url)
            return GeneratedImage(data=data, mime_type=_bare_mime(mime), source_url=None, **fields)
        return GeneratedImage(data=b"", mime_type="", source_url=url, stream=self.output_stream(url), **fields)

    async def complete(self, model: str, messages: list[dict[str, str]], *, timeout: float) -> ChatReply:
        """Ask one of the vendor's chat (language) models; vendors without one refuse."""
        raise InvalidRequest(f"{self.vendor} offers no chat model here; EASEL_PROMPT_MODEL must name a "
                             "provider that does.")

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients. Called once when the server shuts down."""


def _bare_mime(content_type: str | None) -> str:
    return (content_type or "application/octet-stream").split(";")[0].strip()


async def downloaded(images: list[GeneratedImage], *, stream: bool) -> list[GeneratedImage]:
    """``images`` as they are when the caller reads streams itself (``stream``), else each with its bytes:
    a stream is downloaded whole."""
    if stream:
        return images
    out = []
    for image in images:
        if image.stream is not None:
            data, mime = await image.stream(read_whole)
            image = replace(image, data=data, mime_type=_bare_mime(mime), stream=None)
        out.append(image)
    return out
