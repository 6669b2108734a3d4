"""The warm-up after start (server/warmup.py): it builds what the first call would, and it can be turned off."""

from __future__ import annotations

import pytest

from providers import Registry
from providers.errors import ConfigError
from server.config import Settings
from server.warmup import warm_up

pytestmark = pytest.mark.anyio


async def test_the_warm_up_builds_every_configured_providers_client(settings: Settings) -> None:
    registry = Registry(settings.providers.configs)
    try:
        await warm_up(registry, settings)
        assert set(registry._providers) == set(settings.providers.keyed()) == {"replicate"}
    finally:
        await registry.aclose()


def test_the_warm_up_is_on_by_default_and_easel_warmup_turns_it_off() -> None:
    assert Settings.from_env({}).calls.warmup is True
    assert Settings.from_env({"EASEL_WARMUP": "off"}).calls.warmup is False
    with pytest.raises(ConfigError, match="EASEL_WARMUP"):
        Settings.from_env({"EASEL_WARMUP": "later"})
