"""What the provider tests share: a fast configuration, a provider that is closed after use,
and progress callbacks (one that records, one that ignores)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from providers.base import ImageProvider, ProviderConfig

P = TypeVar("P", bound=ImageProvider)


def fast_config(base_url: str, api_key: str, /, **changes: Any) -> ProviderConfig:
    """Polls, retries and timeouts short enough for loopback fakes; ``changes`` override any field."""
    settings: dict[str, Any] = {"api_key": api_key, "base_url": base_url, "poll_interval": 0.01,
                                "poll_max": 0.02, "timeout": 10.0, "max_retries": 2,
                                "retry_base": 0.01}
    return ProviderConfig(**{**settings, **changes})


@contextlib.asynccontextmanager
async def opened(cls: type[P], config: ProviderConfig) -> AsyncIterator[P]:
    provider = cls(config)
    try:
        yield provider
    finally:
        await provider.aclose()


class Progress:
    """A progress callback that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def __call__(self, message: str) -> None:
        self.messages.append(message)


async def ignore(message: str) -> None:
    pass
