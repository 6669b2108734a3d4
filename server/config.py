"""Settings: the environment is read once, here, into one object passed down.

Vendor keys keep their usual names; server settings use the EASEL_ prefix. A
missing vendor key is not an error until that vendor is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from providers.base import ProviderConfig
from providers.errors import ConfigError

__all__ = ["PROVIDER_ENV", "Settings"]

# provider name -> (key variable, base-URL variable, default submissions/second)
PROVIDER_ENV: dict[str, tuple[str, str, float]] = {
    "replicate": ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", 0.0),
    "modelscope": ("MODELSCOPE_API_KEY", "MODELSCOPE_BASE_URL", 2.0),   # the seeds' 2 requests/second
    "dashscope": ("DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL", 2.0),      # 2 task submissions/second
    "ideogram": ("IDEOGRAM_API_KEY", "IDEOGRAM_BASE_URL", 0.0),
}


def _default_storage_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("easel-mcp", appauthor=False)) / "images"


@dataclass(frozen=True)
class Settings:
    storage_dir: Path = field(default_factory=_default_storage_dir)
    storage: str = "local"
    preview: bool = True
    preview_max_px: int = 512
    preview_max_bytes: int = 100_000
    timeout: float = 300.0            # one generation, end to end
    wait_window: int = 20             # seconds a provider may hold a create request
    poll_interval: float = 0.5
    poll_max: float = 5.0
    progress_interval: float = 5.0    # heartbeat progress while waiting
    max_retries: int = 3
    list_limit: int = 50              # resources/list page size
    max_prompt_chars: int = 4000
    max_image_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 64_000_000
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        s = cls(env=env) if not env.get("EASEL_STORAGE_DIR") else cls(
            storage_dir=Path(env["EASEL_STORAGE_DIR"]).expanduser(), env=env)
        s = replace(
            s,
            storage=_choice(env, "EASEL_STORAGE", ("local", "oss"), s.storage),
            preview=_flag(env, "EASEL_PREVIEW", s.preview),
            timeout=_number(env, "EASEL_TIMEOUT", s.timeout, 1, 3600),
            wait_window=int(_number(env, "EASEL_WAIT_WINDOW", s.wait_window, 1, 60)),
            poll_interval=_number(env, "EASEL_POLL_INTERVAL", s.poll_interval, 0.001, 60),
            poll_max=_number(env, "EASEL_POLL_MAX", s.poll_max, 0.001, 120),
            progress_interval=_number(env, "EASEL_PROGRESS_INTERVAL", s.progress_interval, 0.01, 600),
            max_retries=int(_number(env, "EASEL_MAX_RETRIES", s.max_retries, 0, 10)),
            list_limit=int(_number(env, "EASEL_LIST_LIMIT", s.list_limit, 1, 1000)),
        )
        configs = {}
        for name, (key_var, url_var, rate) in PROVIDER_ENV.items():
            up = name.upper()
            configs[name] = ProviderConfig(
                api_key=env.get(key_var) or None,
                base_url=env.get(url_var) or None,
                timeout=s.timeout,
                wait_window=s.wait_window,
                poll_interval=s.poll_interval,
                poll_max=s.poll_max,
                max_retries=s.max_retries,
                concurrency=int(_number(env, f"EASEL_{up}_CONCURRENCY", 8, 1, 64)),
                rate=_number(env, f"EASEL_{up}_RATE", rate, 0, 100),
                max_download_bytes=s.max_image_bytes,
            )
        return replace(s, providers=configs)

    def keyed_providers(self) -> list[str]:
        return [name for name, cfg in self.providers.items() if cfg.api_key]


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
