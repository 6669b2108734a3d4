"""Settings: the environment is read once, here, into small frozen settings per concern.

``Settings.from_env`` builds each block from its own variables and checks them once:

* ``providers`` (``ProviderSettings``): one ``ProviderConfig`` per vendor, read by a loop
  over what each provider class declares (key, base URL, rate, concurrency, options,
  pass-through keys; ``providers/base.py``), plus the job tuning every vendor shares;
* ``calls``: one tool call (progress heartbeat, prompt and image bounds, the prompt model);
* ``results``: what a result carries (previews, resource links, list page size);
* ``inputs``: reference images (allowed directories, size bounds);
* ``storage``: where images go; the OSS block is parsed by ``server/storage/oss_settings.py``;
* ``http`` and ``limits``: the HTTP deployment and its connection and session bounds;
* ``gallery``: the catalog index and the gallery page;
* ``jobs``: when a long call answers with a job handle, and the job records' leases.
* ``spend``: the day's budget, the confirmation threshold, currency rates (``server/spend.py``).

Vendor keys keep their usual names and are named only by their provider classes; server
settings use the EASEL_ prefix. A missing vendor key is not an error until that vendor is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from providers import all_specs, provider_classes
from providers._netguard import FetchPolicy
from providers.base import DEFAULT_USD_RATES, DEFAULT_WAIT_WINDOW, ImageProvider, ProviderConfig
from providers.errors import ConfigError
from server.envvars import choice, flag, items, number
from server.storage.oss_settings import OssSettings

__all__ = ["MIN_LINK_SECRET_BYTES", "CallSettings", "GallerySettings", "HttpSettings", "InputSettings", "JobSettings",
           "LimitSettings", "ProviderSettings", "ResultSettings", "Settings", "SpendSettings", "StorageSettings"]

MIN_LINK_SECRET_BYTES = 32   # HMAC-SHA256 key: shorter secrets fall to an offline search from one link


def _default_storage_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("easel-mcp", appauthor=False)) / "images"


@dataclass(frozen=True)
class ProviderSettings:
    """The vendors: one config each (by registry name), and the job tuning they all share."""

    timeout: float = 300.0            # EASEL_TIMEOUT: one generation, end to end
    wait_window: int = DEFAULT_WAIT_WINDOW   # EASEL_WAIT_WINDOW: seconds a provider may hold a create request
    poll_interval: float = 0.5        # EASEL_POLL_INTERVAL
    poll_max: float = 5.0             # EASEL_POLL_MAX
    max_retries: int = 3              # EASEL_MAX_RETRIES
    retry_base: float = 0.5           # EASEL_RETRY_BASE: first retry's wait, seconds (doubles, jittered)
    max_image_bytes: int = 64 * 1024 * 1024   # one output download
    configs: dict[str, ProviderConfig] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str], fetch: FetchPolicy) -> ProviderSettings:
        d = cls()
        tuning = cls(
            timeout=number(env, "EASEL_TIMEOUT", d.timeout, 1, 3600),
            wait_window=int(number(env, "EASEL_WAIT_WINDOW", d.wait_window, 1, 60)),
            poll_interval=number(env, "EASEL_POLL_INTERVAL", d.poll_interval, 0.001, 60),
            poll_max=number(env, "EASEL_POLL_MAX", d.poll_max, 0.001, 120),
            max_retries=int(number(env, "EASEL_MAX_RETRIES", d.max_retries, 0, 10)),
            retry_base=number(env, "EASEL_RETRY_BASE", d.retry_base, 0.001, 60),
        )
        configs = {p.name: tuning._config(env, p, fetch) for p in provider_classes().values()}
        return cls(**{**tuning.__dict__, "configs": configs})

    def _config(self, env: Mapping[str, str], cls: type[ImageProvider], fetch: FetchPolicy) -> ProviderConfig:
        """One provider's config, from what its class declares; no vendor is named here."""
        up = cls.name.upper()
        return ProviderConfig(
            api_key=env.get(cls.key_env) or None,
            base_url=env.get(cls.url_env) or None,
            timeout=self.timeout,
            wait_window=self.wait_window,
            poll_interval=self.poll_interval,
            poll_max=self.poll_max,
            max_retries=self.max_retries,
            retry_base=self.retry_base,
            concurrency=int(number(env, f"EASEL_{up}_CONCURRENCY", cls.default_concurrency, 1, 64)),
            rate=number(env, f"EASEL_{up}_RATE", cls.default_rate, 0, 100),
            max_download_bytes=self.max_image_bytes,
            secrets=_passed_through(env, cls.name),
            fetch=fetch,
            extra={opt.key: _option(env, opt.env, opt.choices, opt.default) for opt in cls.options},
        )

    def keyed(self) -> list[str]:
        """Registry names of the providers that have a key."""
        return [name for name, cfg in self.configs.items() if cfg.api_key]


def _option(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    """A declared option: accepted in any case, handed on in the provider's own spelling."""
    value = choice(env, name, tuple(c.lower() for c in choices), default)
    return next(c for c in choices if c.lower() == value)


def _passed_through(env: Mapping[str, str], provider: str) -> dict[str, str]:
    """The variables this provider's models require besides its key (ModelSpec.requires), when set."""
    wanted = {var for spec in all_specs() if spec.provider == provider for var in spec.requires}
    return {var: env[var] for var in sorted(wanted) if env.get(var)}


@dataclass(frozen=True)
class CallSettings:
    """One tool call."""

    progress_interval: float = 5.0    # EASEL_PROGRESS_INTERVAL: heartbeat progress while waiting
    max_prompt_chars: int = 4000
    max_image_pixels: int = 64_000_000
    # EASEL_PROMPT_MODEL "<provider>:<model>": a chat model that writes illustrate_content's scenes
    prompt_model: tuple[str, str] | None = None
    prompt_timeout: float = 30.0      # EASEL_PROMPT_TIMEOUT: seconds before the planner takes over
    warmup: bool = True               # EASEL_WARMUP: warm libraries and provider clients once idle after start

    @classmethod
    def from_env(cls, env: Mapping[str, str], providers: ProviderSettings) -> CallSettings:
        d = cls()
        return cls(progress_interval=number(env, "EASEL_PROGRESS_INTERVAL", d.progress_interval, 0.01, 600),
                   prompt_model=_prompt_model(env, providers.configs),
                   prompt_timeout=number(env, "EASEL_PROMPT_TIMEOUT", d.prompt_timeout, 0.05, 600),
                   warmup=flag(env, "EASEL_WARMUP", d.warmup))


def _prompt_model(env: Mapping[str, str], configs: Mapping[str, ProviderConfig]) -> tuple[str, str] | None:
    """EASEL_PROMPT_MODEL, e.g. ``dashscope:qwen-plus``; it reuses that provider's key. The providers
    offered are those whose class implements ``complete`` (a chat model)."""
    raw = (env.get("EASEL_PROMPT_MODEL") or "").strip()
    if not raw:
        return None
    chat = [name for name, cls in provider_classes().items() if cls.complete is not ImageProvider.complete]
    provider, _, model = raw.partition(":")
    provider, model = provider.strip().lower(), model.strip()
    if provider not in chat or not model:
        raise ConfigError(f"EASEL_PROMPT_MODEL must be <provider>:<model> with provider one of "
                          f"{', '.join(chat)} (e.g. dashscope:qwen-plus, "
                          f"replicate:meta/meta-llama-3-70b-instruct), not {raw[:80]!r}.")
    if not configs[provider].api_key:
        raise ConfigError(f"EASEL_PROMPT_MODEL uses {provider}, which needs {provider_classes()[provider].key_env}.")
    return provider, model


@dataclass(frozen=True)
class JobSettings:
    """Calls that outlive a host's patience become jobs (server.jobbook; docs/jobs.md)."""

    # EASEL_RETURN_AFTER: seconds before a still-running call answers with a job handle (None: never).
    # Hosts commonly give up at 60 s; 45 leaves room for a slow network and the answer itself.
    return_after: float | None = 45.0
    lease: float = 30.0               # EASEL_JOB_LEASE: seconds a job's owner holds it without renewing
    renew: float = 10.0               # EASEL_JOB_RENEW: seconds between renewals (and scans for orphans)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JobSettings:
        d = cls()
        raw = (env.get("EASEL_RETURN_AFTER") or "").strip().lower()
        after = None if raw in ("off", "0") else number(env, "EASEL_RETURN_AFTER", d.return_after or 45.0, 0.01, 3600)
        lease = number(env, "EASEL_JOB_LEASE", d.lease, 0.5, 3600)
        renew = number(env, "EASEL_JOB_RENEW", min(d.renew, lease / 3), 0.1, 3600)
        if renew >= lease:
            raise ConfigError(f"EASEL_JOB_RENEW ({renew:g}) must be shorter than EASEL_JOB_LEASE ({lease:g}), so a "
                              "living owner renews its lease before it expires.")
        return cls(return_after=after, lease=lease, renew=renew)


@dataclass(frozen=True)
class ResultSettings:
    """What a tool result carries."""

    preview: bool = True              # EASEL_PREVIEW
    resource_links: bool = True       # EASEL_RESOURCE_LINKS; off: no resource_link blocks (docs/clients.md)
    preview_max_px: int = 512
    preview_max_bytes: int = 100_000
    list_limit: int = 50              # EASEL_LIST_LIMIT: resources/list page size

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ResultSettings:
        d = cls()
        return cls(preview=flag(env, "EASEL_PREVIEW", d.preview),
                   resource_links=flag(env, "EASEL_RESOURCE_LINKS", d.resource_links),
                   list_limit=int(number(env, "EASEL_LIST_LIMIT", d.list_limit, 1, 1000)))


@dataclass(frozen=True)
class InputSettings:
    """Reference images (edit_image, run_replicate_model)."""

    input_dirs: tuple[Path, ...] = ()              # EASEL_INPUT_DIRS: local paths allowed as inputs
    allowed_fetch_hosts: tuple[str, ...] = ()      # EASEL_ALLOWED_FETCH_HOSTS: exempt from the URL guard
    max_bytes: int = 20 * 1024 * 1024              # EASEL_INPUT_MAX_BYTES, per reference image
    max_pixels: int = 50_000_000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> InputSettings:
        d = cls()
        return cls(input_dirs=tuple(Path(p).expanduser() for p in items(env, "EASEL_INPUT_DIRS", os.pathsep)),
                   allowed_fetch_hosts=tuple(h.lower() for h in items(env, "EASEL_ALLOWED_FETCH_HOSTS")),
                   max_bytes=int(number(env, "EASEL_INPUT_MAX_BYTES", d.max_bytes, 1024, 100 * 1024 * 1024)))


@dataclass(frozen=True)
class StorageSettings:
    """Where images go: local disk, or Aliyun OSS over a local fallback (server/storage/oss.py)."""

    backend: str = "local"            # EASEL_STORAGE: local or oss
    dir: Path = field(default_factory=_default_storage_dir)   # EASEL_STORAGE_DIR
    oss: OssSettings = field(default_factory=OssSettings)     # checked by server.storage.oss only when used

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StorageSettings:
        root = env.get("EASEL_STORAGE_DIR")
        return cls(backend=choice(env, "EASEL_STORAGE", ("local", "oss"), cls.backend),
                   dir=Path(root).expanduser() if root else _default_storage_dir(),
                   oss=OssSettings.from_env(env))


@dataclass(frozen=True)
class HttpSettings:
    """The HTTP deployment (--transport sse/http). Error messages never echo a secret."""

    auth_token: str | None = field(default=None, repr=False)  # EASEL_AUTH_TOKEN: bearer token for /mcp and /sse
    allowed_hosts: tuple[str, ...] = ()    # EASEL_ALLOWED_HOSTS: Host values accepted besides loopback
    allowed_origins: tuple[str, ...] = ()  # EASEL_ALLOWED_ORIGINS: browser Origins accepted besides loopback
    max_body_bytes: int = 48 * 1024 * 1024  # EASEL_MAX_BODY_BYTES: larger requests get 413
    public_url: str | None = None          # EASEL_PUBLIC_URL: base of image links (default http://<host>:<port>)
    link_secret: str | None = field(default=None, repr=False)  # EASEL_LINK_SECRET (else from the token, else random)
    link_ttl: int = 7 * 86400              # EASEL_LINK_TTL: seconds an image link stays valid
    shutdown_grace: float = 20.0           # EASEL_SHUTDOWN_GRACE: seconds in-flight calls get on SIGTERM

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HttpSettings:
        d = cls()
        token = env.get("EASEL_AUTH_TOKEN") or None
        if token is not None and (len(token) < 16 or not all(33 <= ord(c) < 127 for c in token)):
            raise ConfigError("EASEL_AUTH_TOKEN must be at least 16 printable ASCII characters without spaces; "
                              "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'.")
        link_secret = env.get("EASEL_LINK_SECRET") or None
        if link_secret is not None and len(link_secret.encode()) < MIN_LINK_SECRET_BYTES:
            raise ConfigError(f"EASEL_LINK_SECRET must be at least {MIN_LINK_SECRET_BYTES} bytes (a short one can "
                              "be guessed from a single link); make one with: "
                              "python -c 'import secrets; print(secrets.token_urlsafe(32))'.")
        public = (env.get("EASEL_PUBLIC_URL") or "").strip().rstrip("/") or None
        if public is not None and not public.startswith(("http://", "https://")):
            raise ConfigError(f"EASEL_PUBLIC_URL must start with http:// or https://, not {public[:80]!r}.")
        return cls(
            auth_token=token,
            allowed_hosts=items(env, "EASEL_ALLOWED_HOSTS"),
            allowed_origins=tuple(o.rstrip("/") for o in items(env, "EASEL_ALLOWED_ORIGINS")),
            max_body_bytes=int(number(env, "EASEL_MAX_BODY_BYTES", d.max_body_bytes, 1024, 1024 ** 3)),
            public_url=public,
            link_secret=link_secret,
            link_ttl=int(number(env, "EASEL_LINK_TTL", d.link_ttl, 60, 365 * 86400)),
            shutdown_grace=number(env, "EASEL_SHUTDOWN_GRACE", d.shutdown_grace, 0, 3600),
        )


@dataclass(frozen=True)
class LimitSettings:
    """Bounds on HTTP connections and MCP sessions (server.limits; docs/deployment.md)."""

    header_timeout: float = 10.0           # EASEL_HEADER_TIMEOUT: a request head must arrive within this (else 408)
    body_timeout: float = 60.0             # EASEL_BODY_TIMEOUT: a request body must arrive within this (else 408)
    keepalive_timeout: float = 30.0        # EASEL_KEEPALIVE_TIMEOUT: idle keep-alive connections are closed after this
    max_connections: int = 512             # EASEL_MAX_CONNECTIONS: beyond this, requests get 503
    max_sessions: int = 256                # EASEL_MAX_SESSIONS: open MCP sessions (streamable HTTP or SSE); then 503
    session_idle_timeout: float = 600.0    # EASEL_SESSION_IDLE_TIMEOUT: idle sessions are closed after this

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LimitSettings:
        d = cls()
        return cls(
            header_timeout=number(env, "EASEL_HEADER_TIMEOUT", d.header_timeout, 0.1, 600),
            body_timeout=number(env, "EASEL_BODY_TIMEOUT", d.body_timeout, 0.1, 3600),
            keepalive_timeout=number(env, "EASEL_KEEPALIVE_TIMEOUT", d.keepalive_timeout, 0.1, 600),
            max_connections=int(number(env, "EASEL_MAX_CONNECTIONS", d.max_connections, 2, 100_000)),
            max_sessions=int(number(env, "EASEL_MAX_SESSIONS", d.max_sessions, 1, 100_000)),
            session_idle_timeout=number(env, "EASEL_SESSION_IDLE_TIMEOUT", d.session_idle_timeout, 1, 7 * 86400),
        )


@dataclass(frozen=True)
class GallerySettings:
    """The catalog and gallery (server.catalog, server.gallery; docs/gallery.md)."""

    catalog: bool = True                   # EASEL_CATALOG: off serves listings straight from the store
    catalog_sync: float | None = None      # EASEL_CATALOG_SYNC: seconds between syncs (default: 15 with OSS, start-up only locally)
    retention_days: float | None = None    # EASEL_RETENTION_DAYS: delete images older than this (default: keep)
    link_ttl: int = 86400                  # EASEL_GALLERY_LINK_TTL: seconds a signed gallery link stays valid

    @classmethod
    def from_env(cls, env: Mapping[str, str], storage: StorageSettings) -> GallerySettings:
        sync = env.get("EASEL_CATALOG_SYNC")
        retention = env.get("EASEL_RETENTION_DAYS")
        return cls(
            catalog=flag(env, "EASEL_CATALOG", True),
            catalog_sync=(number(env, "EASEL_CATALOG_SYNC", 15.0, 0.01, 86400) if sync
                          else 15.0 if storage.backend == "oss" else None),
            retention_days=number(env, "EASEL_RETENTION_DAYS", 0, 0.001, 36500) if retention else None,
            link_ttl=int(number(env, "EASEL_GALLERY_LINK_TTL", cls.link_ttl, 60, 365 * 86400)),
        )


@dataclass(frozen=True)
class SpendSettings:
    """What calls may spend (server.spend; docs/spend.md). Unset limits mean no limit and no question."""

    budget_usd_per_day: float | None = None   # EASEL_BUDGET_USD_PER_DAY: estimates booked per UTC day, shared by replicas
    confirm_above_usd: float | None = None    # EASEL_CONFIRM_ABOVE_USD: a call estimated above this asks the user first
    unknown_price_usd: float | None = None    # EASEL_UNKNOWN_PRICE_USD: per image of an unpriced model (else refused
                                              # while a budget is set)
    usd_per_cny: float = DEFAULT_USD_RATES["CNY"]   # EASEL_USD_PER_CNY
    # EASEL_REQUEST_STATE_KEY: seals the request state of a question to the user (2026-07-28 clients), so that any
    # replica can take the answer; else derived from EASEL_LINK_SECRET or EASEL_AUTH_TOKEN, else one per process
    request_state_key: str | None = field(default=None, repr=False)

    @property
    def rates(self) -> dict[str, float]:
        """USD per unit of each currency a price may be in."""
        return {**DEFAULT_USD_RATES, "CNY": self.usd_per_cny}

    @classmethod
    def from_env(cls, env: Mapping[str, str], http: HttpSettings) -> SpendSettings:
        def optional(name: str) -> float | None:
            return number(env, name, 0, 0, 1_000_000) if (env.get(name) or "").strip() else None

        key = env.get("EASEL_REQUEST_STATE_KEY") or None
        if key is not None and len(key.encode()) < MIN_LINK_SECRET_BYTES:
            raise ConfigError(f"EASEL_REQUEST_STATE_KEY must be at least {MIN_LINK_SECRET_BYTES} bytes; make one with: "
                              "python -c 'import secrets; print(secrets.token_urlsafe(32))'.")
        return cls(budget_usd_per_day=optional("EASEL_BUDGET_USD_PER_DAY"),
                   confirm_above_usd=optional("EASEL_CONFIRM_ABOVE_USD"),
                   unknown_price_usd=optional("EASEL_UNKNOWN_PRICE_USD"),
                   usd_per_cny=number(env, "EASEL_USD_PER_CNY", cls.usd_per_cny, 0.0001, 100),
                   request_state_key=key or _derived(http.link_secret or http.auth_token, b"request-state"))


def _derived(secret: str | None, purpose: bytes) -> str | None:
    """A key for ``purpose`` from a secret the replicas already share: HMAC-SHA256, so neither reveals the other."""
    if secret is None:
        return None
    import hashlib
    import hmac

    return hmac.new(secret.encode(), b"easel-mcp " + purpose, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Settings:
    providers: ProviderSettings = field(default_factory=ProviderSettings)
    calls: CallSettings = field(default_factory=CallSettings)
    results: ResultSettings = field(default_factory=ResultSettings)
    inputs: InputSettings = field(default_factory=InputSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    gallery: GallerySettings = field(default_factory=GallerySettings)
    jobs: JobSettings = field(default_factory=JobSettings)
    spend: SpendSettings = field(default_factory=SpendSettings)
    # the fetch guard for reference images and provider outputs (docs/security.md): the allowed hosts
    # plus the origins of every provider's base-URL variable
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    log_format: str = "text"               # EASEL_LOG_FORMAT: text or json (one object per line on stderr)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        inputs = InputSettings.from_env(env)
        fetch = FetchPolicy.build(inputs.allowed_fetch_hosts,
                                  (env.get(p.url_env) for p in provider_classes().values()))
        providers = ProviderSettings.from_env(env, fetch)
        storage = StorageSettings.from_env(env)
        http = HttpSettings.from_env(env)
        return cls(providers=providers, calls=CallSettings.from_env(env, providers),
                   results=ResultSettings.from_env(env), inputs=inputs, storage=storage,
                   http=http, limits=LimitSettings.from_env(env), spend=SpendSettings.from_env(env, http),
                   gallery=GallerySettings.from_env(env, storage), jobs=JobSettings.from_env(env), fetch=fetch,
                   log_format=choice(env, "EASEL_LOG_FORMAT", ("text", "json"), cls.log_format))
