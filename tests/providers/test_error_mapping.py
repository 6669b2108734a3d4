"""Every provider maps its vendor's faults onto the one error tree the same way.

The table below has one row per registered provider: its class, its loopback fake,
how to configure it against the fake, how to inject a fault, and what "invalid
input" looks like on its wire. A new provider module that is not in the table fails
``test_every_registered_provider_is_in_the_error_mapping_table``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from providers import provider_classes
from providers.base import ImageProvider, ModelSpec, ProviderConfig
from providers.dashscope import MODELS as DASHSCOPE_MODELS
from providers.dashscope import DashScopeProvider
from providers.errors import (
    AuthenticationError,
    ConfigError,
    ContentRejected,
    GenerationTimeout,
    InvalidInput,
    ProviderUnavailable,
    RateLimited,
)
from providers.ideogram import MODELS as IDEOGRAM_MODELS
from providers.ideogram import IdeogramProvider
from providers.modelscope import MODELS as MODELSCOPE_MODELS
from providers.modelscope import ModelScopeProvider
from providers.replicate import MODELS as REPLICATE_MODELS
from providers.replicate import ReplicateProvider
from providers.types import GenerationRequest
from tests.fakes.dashscope_fake import DashScopeFake
from tests.fakes.ideogram_fake import IdeogramFake
from tests.fakes.modelscope_fake import ModelScopeFake
from tests.fakes.replicate_fake import FakeReplicate
from tests.providers._support import fast_config, ignore

pytestmark = pytest.mark.anyio

KEY = "test-key-0123456789"
WRONG = "wrong-secret-key-9876543210"
FOREVER = 1000


def _config(base_url: str, api_key: str) -> ProviderConfig:
    return fast_config(base_url, api_key, wait_window=1)


def _vendor_inject(fake: Any, status: int, body: Any, times: int) -> None:
    fake.inject(status, body, times=times, method="POST")


def _replicate_inject(fake: FakeReplicate, status: int, body: Any, times: int) -> None:
    if body is None:  # FakeReplicate has no default fault bodies: Replicate's problem+json shape
        body = {"title": f"HTTP {status}", "detail": "injected by the test", "status": status}
    fake.inject(status, body, headers={"Retry-After": "0.01"} if status == 429 else None, times=times,
                method="POST")


@dataclass(frozen=True)
class Vendor:
    cls: type[ImageProvider]
    fake: Callable[[], Any]                                # -> a fake with .running(), .url, .hold, .release()
    config: Callable[[Any, str], ProviderConfig]           # (running fake, api key) -> config
    inject: Callable[[Any, int, Any, int], None]           # (fake, status, body or None, times)
    clear: Callable[[Any], None]                           # forget injected faults
    spec: ModelSpec
    invalid: tuple[int, Any, type[Exception]]              # the vendor's "bad input" reply, and what it means

    def __str__(self) -> str:
        return self.cls.name


VENDORS = [
    Vendor(ReplicateProvider, lambda: FakeReplicate(token=KEY), lambda f, k: _config(f.url, k),
           _replicate_inject, lambda f: f.clear_faults(), REPLICATE_MODELS[0],
           (422, {"title": "Input validation failed", "detail": "- input.width: Must be at most 1440", "status": 422,
                  "invalid_fields": [{"type": "maximum", "field": "input.width",
                                      "description": "Must be at most 1440"}]}, InvalidInput)),
    Vendor(ModelScopeProvider, lambda: ModelScopeFake(api_key=KEY), lambda f, k: _config(f.url, k),
           _vendor_inject, lambda f: f.reset(), MODELSCOPE_MODELS[0],
           (400, {"errors": {"message": "invalid size"}}, InvalidInput)),
    Vendor(DashScopeProvider, lambda: DashScopeFake(api_key=KEY), lambda f, k: _config(f"{f.url}/api/v1", k),
           _vendor_inject, lambda f: f.reset(), DASHSCOPE_MODELS[0],
           (400, {"code": "InvalidParameter", "message": "The size is invalid."}, InvalidInput)),
    Vendor(IdeogramProvider, lambda: IdeogramFake(api_key=KEY), lambda f, k: _config(f.url, k),
           _vendor_inject, lambda f: f.reset(), IDEOGRAM_MODELS[0],
           (422, None, ContentRejected)),  # Ideogram's 422 is its safety check
]


@contextlib.asynccontextmanager
async def make(vendor: Vendor, fake: Any, api_key: str = KEY, **changes: Any) -> AsyncIterator[ImageProvider]:
    from dataclasses import replace

    provider = vendor.cls(replace(vendor.config(fake, api_key), **changes))
    try:
        yield provider
    finally:
        await provider.aclose()


def test_every_registered_provider_is_in_the_error_mapping_table() -> None:
    assert set(provider_classes().values()) == {v.cls for v in VENDORS}
    assert all(v.spec.provider == v.cls.name for v in VENDORS)


@pytest.mark.parametrize("vendor", VENDORS, ids=str)
async def test_faults_map_to_the_same_errors_for_every_provider(vendor: Vendor) -> None:
    request = GenerationRequest(prompt="a lighthouse at dusk")
    with vendor.fake().running() as fake:
        # a generated image arrives as bytes with a mime type
        async with make(vendor, fake) as provider:
            [image] = await provider.generate(vendor.spec, request, ignore)
        assert image.data and image.mime_type.startswith("image/") and image.provider == vendor.cls.name

        # 401: names the variable, never the key
        async with make(vendor, fake, api_key=WRONG) as provider:
            with pytest.raises(AuthenticationError) as caught:
                await provider.generate(vendor.spec, request, ignore)
        assert vendor.cls.key_env in str(caught.value) and WRONG not in str(caught.value)
        assert caught.value.provider == vendor.cls.name

        async with make(vendor, fake) as provider:
            # 429 that persists: RateLimited after bounded retries
            vendor.inject(fake, 429, None, FOREVER)
            with pytest.raises(RateLimited):
                await provider.generate(vendor.spec, request, ignore)
            vendor.clear(fake)

            # 500 that persists: ProviderUnavailable
            vendor.inject(fake, 500, None, FOREVER)
            with pytest.raises(ProviderUnavailable):
                await provider.generate(vendor.spec, request, ignore)
            vendor.clear(fake)

            # invalid input, as the vendor means it
            status, body, expected = vendor.invalid
            vendor.inject(fake, status, body, 1)
            with pytest.raises(expected) as invalid:
                await provider.generate(vendor.spec, request, ignore)
            assert invalid.value.status == status and KEY not in str(invalid.value)
            vendor.clear(fake)

        # too slow: GenerationTimeout
        fake.hold = True
        try:
            async with make(vendor, fake, timeout=0.3) as provider:
                with pytest.raises(GenerationTimeout):
                    await provider.generate(vendor.spec, request, ignore)
        finally:
            fake.release()


def test_settings_and_provider_configs_never_show_keys_in_their_repr() -> None:
    from server.config import Settings

    settings = Settings.from_env({"REPLICATE_API_TOKEN": "r8_very_secret", "EASEL_STORAGE_DIR": "/tmp/x",
                                  "OSS_ACCESS_KEY_SECRET": "oss_very_secret", "EASEL_AUTH_TOKEN": "a" * 32})
    text = repr(settings)
    assert "r8_very_secret" not in text and "oss_very_secret" not in text and "a" * 32 not in text


@pytest.mark.parametrize("name", sorted(provider_classes()))
def test_every_provider_without_a_key_says_which_variable_to_set_and_where_to_get_one(name: str) -> None:
    cls = provider_classes()[name]
    with pytest.raises(ConfigError) as caught:
        cls(ProviderConfig(api_key=None))
    message = str(caught.value)
    assert message.startswith(f"{cls.vendor} needs ") and cls.key_env in message
    assert cls.key_url.startswith("https://") and cls.key_url in message
