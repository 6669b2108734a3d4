"""Reading one environment variable: the parsers every settings block shares (``server/config.py``,
``server/storage/oss.py``). Each error names the variable and what is allowed."""

from __future__ import annotations

from collections.abc import Mapping

from providers.errors import ConfigError

__all__ = ["choice", "flag", "items", "number", "text"]


def flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    raise ConfigError(f"{name} must be on or off, not {raw!r}.")


def number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
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


def choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or default).strip().lower()
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}.")
    return raw


def items(env: Mapping[str, str], name: str, sep: str = ",") -> tuple[str, ...]:
    """A list variable: the non-empty, stripped parts."""
    return tuple(v.strip() for v in (env.get(name) or "").split(sep) if v.strip())


def text(env: Mapping[str, str], name: str) -> str | None:
    """A stripped value, or None when unset or blank."""
    return (env.get(name) or "").strip() or None
