"""Settings: the environment is read once, here, into one object passed down.

Vendor keys keep their usual names; server settings use the EASEL_ prefix. A
missing vendor key is not an error until that vendor is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from providers import all_specs, provider_classes
from providers._netguard import FetchPolicy
from providers.base import DEFAULT_WAIT_WINDOW, ImageProvider, ProviderConfig
from providers.errors import ConfigError

__all__ = ["MIN_LINK_SECRET_BYTES", "Settings"]

MIN_LINK_SECRET_BYTES = 32   # HMAC-SHA256 key: shorter secrets fall to an offline search from one link

def _default_storage_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("easel-mcp", appauthor=False)) / "images"


@dataclass(frozen=True)
class Settings:
    storage_dir: Path = field(default_factory=_default_storage_dir)
    storage: str = "local"
    preview: bool = True
    resource_links: bool = True       # off: results carry no resource_link blocks (docs/clients.md)
    preview_max_px: int = 512
    preview_max_bytes: int = 100_000
    timeout: float = 300.0            # one generation, end to end
    wait_window: int = DEFAULT_WAIT_WINDOW   # seconds a provider may hold a create request
    poll_interval: float = 0.5
    poll_max: float = 5.0
    progress_interval: float = 5.0    # heartbeat progress while waiting
    max_retries: int = 3
    retry_base: float = 0.5           # EASEL_RETRY_BASE: first retry's wait, seconds (doubles, jittered)
    list_limit: int = 50              # resources/list page size
    max_prompt_chars: int = 4000
    max_image_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 64_000_000
    # --- reference images (edit_image, run_replicate_model) ---
    input_dirs: tuple[Path, ...] = ()              # EASEL_INPUT_DIRS: local paths allowed as inputs
    allowed_fetch_hosts: tuple[str, ...] = ()      # EASEL_ALLOWED_FETCH_HOSTS: exempt from the URL guard
    # the fetch guard for reference images and provider outputs (docs/security.md): the allowed hosts
    # plus the origins of every *_BASE_URL
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    input_max_bytes: int = 20 * 1024 * 1024        # EASEL_INPUT_MAX_BYTES, per reference image
    input_max_pixels: int = 50_000_000
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    # EASEL_PROMPT_MODEL "<provider>:<model>": a chat model that writes illustrate_content's scenes
    prompt_model: tuple[str, str] | None = None
    prompt_timeout: float = 30.0           # EASEL_PROMPT_TIMEOUT: seconds before the planner takes over
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # --- OSS (EASEL_STORAGE=oss; checked by server.storage.oss only when used) ---
    oss_access_key_id: str | None = None                                # OSS_ACCESS_KEY_ID
    oss_access_key_secret: str | None = field(default=None, repr=False)  # OSS_ACCESS_KEY_SECRET
    oss_endpoint: str | None = None                                     # OSS_ENDPOINT
    oss_bucket: str | None = None                                       # OSS_BUCKET
    oss_base_path: str = "easel-mcp"      # OSS_BASE_PATH (set it empty for the bucket root)
    oss_custom_domain: str | None = None  # OSS_CUSTOM_DOMAIN: public links instead of signed ones
    oss_region: str | None = None         # OSS_REGION: signature V4 when set, V1 otherwise
    oss_url_expiry: int = 86400           # EASEL_OSS_URL_EXPIRY: signed GET URL lifetime, seconds
    oss_timeout: float = 10.0             # EASEL_OSS_TIMEOUT: one OSS request, seconds
    oss_retries: int = 3                  # EASEL_OSS_RETRIES: on 5xx, network errors, timeouts
    oss_backoff: float = 0.5              # EASEL_OSS_BACKOFF: first retry delay (doubles)
    oss_retry_interval: float = 30.0      # EASEL_OSS_RETRY_INTERVAL: late uploads of local copies
    # --- end OSS ---
    # --- HTTP deployment (--transport sse/http) ---
    auth_token: str | None = field(default=None, repr=False)  # EASEL_AUTH_TOKEN: bearer token for /mcp and /sse
    allowed_hosts: tuple[str, ...] = ()    # EASEL_ALLOWED_HOSTS: Host values accepted besides loopback
    allowed_origins: tuple[str, ...] = ()  # EASEL_ALLOWED_ORIGINS: browser Origins accepted besides loopback
    max_body_bytes: int = 48 * 1024 * 1024  # EASEL_MAX_BODY_BYTES: larger requests get 413
    public_url: str | None = None          # EASEL_PUBLIC_URL: base of image links (default http://<host>:<port>)
    link_secret: str | None = field(default=None, repr=False)  # EASEL_LINK_SECRET (else from the token, else random)
    link_ttl: int = 7 * 86400              # EASEL_LINK_TTL: seconds an image link stays valid
    log_format: str = "text"               # EASEL_LOG_FORMAT: text or json (one object per line on stderr)
    shutdown_grace: float = 20.0           # EASEL_SHUTDOWN_GRACE: seconds in-flight calls get on SIGTERM
    # --- end HTTP deployment ---
    # --- HTTP connection and session limits (server.limits; docs/deployment.md) ---
    header_timeout: float = 10.0           # EASEL_HEADER_TIMEOUT: a request head must arrive within this (else 408)
    body_timeout: float = 60.0             # EASEL_BODY_TIMEOUT: a request body must arrive within this (else 408)
    keepalive_timeout: float = 5.0         # EASEL_KEEPALIVE_TIMEOUT: idle keep-alive connections are closed after this
    max_connections: int = 512             # EASEL_MAX_CONNECTIONS: beyond this, requests get 503
    max_sessions: int = 256                # EASEL_MAX_SESSIONS: open MCP sessions (streamable HTTP or SSE); then 503
    session_idle_timeout: float = 600.0    # EASEL_SESSION_IDLE_TIMEOUT: idle sessions are closed after this
    # --- end limits ---

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        s = cls(env=env) if not env.get("EASEL_STORAGE_DIR") else cls(
            storage_dir=Path(env["EASEL_STORAGE_DIR"]).expanduser(), env=env)
        s = replace(
            s,
            storage=_choice(env, "EASEL_STORAGE", ("local", "oss"), s.storage),
            preview=_flag(env, "EASEL_PREVIEW", s.preview),
            resource_links=_flag(env, "EASEL_RESOURCE_LINKS", s.resource_links),
            timeout=_number(env, "EASEL_TIMEOUT", s.timeout, 1, 3600),
            wait_window=int(_number(env, "EASEL_WAIT_WINDOW", s.wait_window, 1, 60)),
            poll_interval=_number(env, "EASEL_POLL_INTERVAL", s.poll_interval, 0.001, 60),
            poll_max=_number(env, "EASEL_POLL_MAX", s.poll_max, 0.001, 120),
            progress_interval=_number(env, "EASEL_PROGRESS_INTERVAL", s.progress_interval, 0.01, 600),
            max_retries=int(_number(env, "EASEL_MAX_RETRIES", s.max_retries, 0, 10)),
            retry_base=_number(env, "EASEL_RETRY_BASE", s.retry_base, 0.001, 60),
            list_limit=int(_number(env, "EASEL_LIST_LIMIT", s.list_limit, 1, 1000)),
            input_dirs=tuple(Path(p).expanduser() for p in (env.get("EASEL_INPUT_DIRS") or "").split(os.pathsep)
                             if p.strip()),
            allowed_fetch_hosts=tuple(h.strip().lower() for h in (env.get("EASEL_ALLOWED_FETCH_HOSTS") or "").split(",")
                                      if h.strip()),
            input_max_bytes=int(_number(env, "EASEL_INPUT_MAX_BYTES", s.input_max_bytes, 1024, 100 * 1024 * 1024)),
        )
        classes = provider_classes().values()
        fetch = FetchPolicy.build(s.allowed_fetch_hosts, (env.get(cls.url_env) for cls in classes))
        configs = {cls.name: _provider_config(env, cls, s, fetch) for cls in classes}
        s = replace(s, prompt_model=_prompt_model(env, configs),
                    prompt_timeout=_number(env, "EASEL_PROMPT_TIMEOUT", s.prompt_timeout, 0.05, 600))
        s = replace(s, **_oss_settings(env))
        s = replace(s, **_http_settings(env))
        s = replace(s, **_limit_settings(env))
        return replace(s, providers=configs, fetch=fetch)

    def keyed_providers(self) -> list[str]:
        return [name for name, cfg in self.providers.items() if cfg.api_key]


def _provider_config(env: Mapping[str, str], cls: type[ImageProvider], s: Settings,
                     fetch: FetchPolicy) -> ProviderConfig:
    """One provider's config, from what its class declares; no vendor is named here."""
    up = cls.name.upper()
    return ProviderConfig(
        api_key=env.get(cls.key_env) or None,
        base_url=env.get(cls.url_env) or None,
        timeout=s.timeout,
        wait_window=s.wait_window,
        poll_interval=s.poll_interval,
        poll_max=s.poll_max,
        max_retries=s.max_retries,
        retry_base=s.retry_base,
        concurrency=int(_number(env, f"EASEL_{up}_CONCURRENCY", cls.default_concurrency, 1, 64)),
        rate=_number(env, f"EASEL_{up}_RATE", cls.default_rate, 0, 100),
        max_download_bytes=s.max_image_bytes,
        secrets=_passed_through(env, cls.name),
        fetch=fetch,
        extra={opt.key: _canonical(opt.choices, _choice(env, opt.env, tuple(c.lower() for c in opt.choices),
                                                        opt.default)) for opt in cls.options},
    )


def _canonical(choices: tuple[str, ...], value: str) -> str:
    return next(c for c in choices if c.lower() == value)


def _passed_through(env: Mapping[str, str], provider: str) -> dict[str, str]:
    """The variables this provider's models require besides its key (ModelSpec.requires), when set."""
    wanted = {var for spec in all_specs() if spec.provider == provider for var in spec.requires}
    return {var: env[var] for var in sorted(wanted) if env.get(var)}


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    raise ConfigError(f"{name} must be on or off, not {raw!r}.")


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number between {low:g} and {high:g}, not {raw!r}.") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, not {raw!r}.")
    return value


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or default).strip().lower()
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}.")
    return raw


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


def _oss_settings(env: Mapping[str, str]) -> dict[str, object]:
    """The OSS block of Settings. Values are checked further (and only) when EASEL_STORAGE=oss."""
    d = Settings
    base = env.get("OSS_BASE_PATH")
    return {
        "oss_access_key_id": (env.get("OSS_ACCESS_KEY_ID") or "").strip() or None,
        "oss_access_key_secret": env.get("OSS_ACCESS_KEY_SECRET") or None,
        "oss_endpoint": (env.get("OSS_ENDPOINT") or "").strip() or None,
        "oss_bucket": (env.get("OSS_BUCKET") or "").strip() or None,
        "oss_base_path": d.oss_base_path if base is None else base.strip().strip("/"),
        "oss_custom_domain": (env.get("OSS_CUSTOM_DOMAIN") or "").strip() or None,
        "oss_region": (env.get("OSS_REGION") or "").strip() or None,
        "oss_url_expiry": int(_number(env, "EASEL_OSS_URL_EXPIRY", d.oss_url_expiry, 1, 7 * 86400)),
        "oss_timeout": _number(env, "EASEL_OSS_TIMEOUT", d.oss_timeout, 0.05, 600),
        "oss_retries": int(_number(env, "EASEL_OSS_RETRIES", d.oss_retries, 0, 10)),
        "oss_backoff": _number(env, "EASEL_OSS_BACKOFF", d.oss_backoff, 0, 60),
        "oss_retry_interval": _number(env, "EASEL_OSS_RETRY_INTERVAL", d.oss_retry_interval, 0.01, 86400),
    }


def _http_settings(env: Mapping[str, str]) -> dict[str, object]:
    """The HTTP deployment block of Settings. Error messages never echo a secret."""
    d = Settings
    token = env.get("EASEL_AUTH_TOKEN") or None
    if token is not None and (len(token) < 16 or not all(33 <= ord(c) < 127 for c in token)):
        raise ConfigError("EASEL_AUTH_TOKEN must be at least 16 printable ASCII characters without spaces; "
                          "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'.")
    link_secret = env.get("EASEL_LINK_SECRET") or None
    if link_secret is not None and len(link_secret.encode()) < MIN_LINK_SECRET_BYTES:
        raise ConfigError(f"EASEL_LINK_SECRET must be at least {MIN_LINK_SECRET_BYTES} bytes (a short one can be "
                          "guessed from a single link); make one with: "
                          "python -c 'import secrets; print(secrets.token_urlsafe(32))'.")
    public = (env.get("EASEL_PUBLIC_URL") or "").strip().rstrip("/") or None
    if public is not None and not public.startswith(("http://", "https://")):
        raise ConfigError(f"EASEL_PUBLIC_URL must start with http:// or https://, not {public[:80]!r}.")

    def items(name: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in (env.get(name) or "").split(",") if v.strip())

    return {
        "auth_token": token,
        "allowed_hosts": items("EASEL_ALLOWED_HOSTS"),
        "allowed_origins": tuple(o.rstrip("/") for o in items("EASEL_ALLOWED_ORIGINS")),
        "max_body_bytes": int(_number(env, "EASEL_MAX_BODY_BYTES", d.max_body_bytes, 1024, 1024 ** 3)),
        "public_url": public,
        "link_secret": link_secret,
        "link_ttl": int(_number(env, "EASEL_LINK_TTL", d.link_ttl, 60, 365 * 86400)),
        "log_format": _choice(env, "EASEL_LOG_FORMAT", ("text", "json"), d.log_format),
        "shutdown_grace": _number(env, "EASEL_SHUTDOWN_GRACE", d.shutdown_grace, 0, 3600),
    }


def _limit_settings(env: Mapping[str, str]) -> dict[str, object]:
    """Bounds on HTTP connections and MCP sessions (server.limits)."""
    d = Settings
    return {
        "header_timeout": _number(env, "EASEL_HEADER_TIMEOUT", d.header_timeout, 0.1, 600),
        "body_timeout": _number(env, "EASEL_BODY_TIMEOUT", d.body_timeout, 0.1, 3600),
        "keepalive_timeout": _number(env, "EASEL_KEEPALIVE_TIMEOUT", d.keepalive_timeout, 0.1, 600),
        "max_connections": int(_number(env, "EASEL_MAX_CONNECTIONS", d.max_connections, 2, 100_000)),
        "max_sessions": int(_number(env, "EASEL_MAX_SESSIONS", d.max_sessions, 1, 100_000)),
        "session_idle_timeout": _number(env, "EASEL_SESSION_IDLE_TIMEOUT", d.session_idle_timeout, 1, 7 * 86400),
    }
