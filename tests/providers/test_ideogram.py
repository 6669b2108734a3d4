"""IdeogramProvider against the loopback Ideogram fake: multipart wire, styles, palette, safety, faults."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from providers.base import ProviderConfig
from providers.errors import (
    AuthenticationError,
    ConfigError,
    ContentRejected,
    GenerationTimeout,
    InvalidInput,
    ProviderUnavailable,
    RateLimited,
)
from providers.ideogram import MODELS, IdeogramProvider, ideogram_style
from providers.types import GenerationRequest, ImageSize, ImageStyle
from tests.fakes.ideogram_fake import IdeogramFake
from tests.providers._support import fast_config, ignore, opened

pytestmark = pytest.mark.anyio

KEY = "test-key"
IDEOGRAM, BALANCED, QUALITY = MODELS
GENERATE = "/v1/ideogram-v3/generate"
SEED_002_PALETTE = ["#000030", "#1C0C47", "#9900FF", "#4285F4", "#FFFFFF"]


@pytest.fixture(scope="module")
def running() -> Iterator[IdeogramFake]:
    with IdeogramFake(api_key=KEY).running() as fake:
        yield fake


@pytest.fixture
def fake(running: IdeogramFake) -> Iterator[IdeogramFake]:
    running.reset()
    yield running
    running.reset()


def provider(fake: IdeogramFake, **overrides: Any) -> contextlib.AbstractAsyncContextManager[IdeogramProvider]:
    return opened(IdeogramProvider, fast_config(fake.url, KEY, **overrides))


def posts(fake: IdeogramFake) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST" and r.path == GENERATE]


async def test_a_generation_is_one_multipart_post_with_the_api_key_header(fake: IdeogramFake) -> None:
    async with provider(fake) as p:
        [image] = await p.generate(IDEOGRAM, GenerationRequest(prompt="a neon sign saying EASEL",
                                                               size=ImageSize.LANDSCAPE), ignore)
    [post] = posts(fake)
    assert post.headers["api-key"] == KEY and "authorization" not in post.headers
    assert post.headers["content-type"].startswith("multipart/form-data") and post.files == {}
    assert post.form == {"prompt": "a neon sign saying EASEL", "aspect_ratio": "4x3", "magic_prompt": "OFF",
                         "style_type": "AUTO", "num_images": "1", "rendering_speed": "DEFAULT"}
    assert image.data.startswith(b"\x89PNG") and image.mime_type == "image/png"
    assert image.provider == "ideogram" and image.prompt_sent == "a neon sign saying EASEL"
    assert image.seed == next(iter(fake.tasks.values()))["seeds"][0]
    download = next(r for r in fake.requests if r.path.startswith("/eph/"))
    assert "api-key" not in download.headers


@pytest.mark.parametrize(("size", "ratio"), [(ImageSize.SQUARE, "1x1"), (ImageSize.LANDSCAPE, "4x3"),
                                             (ImageSize.PORTRAIT, "3x4"), (ImageSize.WIDE, "16x9"),
                                             (ImageSize.TALL, "9x16")])
def test_sizes_map_to_ideogram_aspect_ratios(size: ImageSize, ratio: str) -> None:
    assert IDEOGRAM.build(GenerationRequest(prompt="p", size=size))["aspect_ratio"] == ratio


def test_styles_map_to_style_type_and_lossy_ones_keep_their_words_in_the_prompt() -> None:
    assert ideogram_style(ImageStyle.ANY, "a fox") == ("AUTO", "a fox")
    assert ideogram_style(ImageStyle.REALISTIC, "a fox") == ("REALISTIC", "a fox")
    assert ideogram_style(ImageStyle.REALISTIC_BW, "a fox") == ("REALISTIC", "black and white photograph of a fox")
    assert ideogram_style(ImageStyle.DIGITAL_ART, "a fox") == ("DESIGN", "digital art of a fox")
    assert ideogram_style(ImageStyle.PIXEL_ART, "a fox") == ("DESIGN", "pixel art of a fox")
    for style in ImageStyle:
        kind, _ = ideogram_style(style, "p")
        assert kind in {"AUTO", "REALISTIC", "DESIGN"}


async def test_the_quality_tiers_send_their_own_rendering_speed_whatever_the_option_says(fake: IdeogramFake) -> None:
    async with provider(fake, extra={"rendering_speed": "turbo"}) as p:
        for spec in (IDEOGRAM, BALANCED, QUALITY):
            await p.generate(spec, GenerationRequest(prompt="a poster"), ignore)
    assert [post.form["rendering_speed"] for post in posts(fake)] == ["TURBO", "DEFAULT", "QUALITY"]
    assert (BALANCED.name, QUALITY.name) == ("Ideogram v3 Balanced", "Ideogram v3 Quality")

async def test_seed_negative_prompt_count_and_style_are_sent(fake: IdeogramFake) -> None:
    async with provider(fake, extra={"rendering_speed": "turbo"}) as p:
        images = await p.generate(IDEOGRAM, GenerationRequest(prompt="a fox", style=ImageStyle.POSTER, count=3,
                                                              seed=11, negative_prompt="text"), ignore)
    [post] = posts(fake)
    assert post.form == {"prompt": "2D art poster of a fox", "aspect_ratio": "1x1", "magic_prompt": "OFF",
                         "style_type": "DESIGN", "num_images": "3", "seed": "11", "negative_prompt": "text",
                         "rendering_speed": "TURBO"}
    assert len(images) == 3 and len({i.data for i in images}) == 3 and {i.seed for i in images} == {11}
    assert images[0].prompt_sent == "2D art poster of a fox"


async def test_the_thumbnail_palette_is_sent_as_json_members_with_descending_weights(fake: IdeogramFake) -> None:
    async with provider(fake) as p:
        await p.generate(IDEOGRAM, GenerationRequest(prompt="an app card", options={"palette": SEED_002_PALETTE}),
                         ignore)
    palette = json.loads(posts(fake)[0].form["color_palette"])
    assert palette == {"members": [
        {"color_hex": "#000030", "color_weight": 1.0}, {"color_hex": "#1C0C47", "color_weight": 0.8},
        {"color_hex": "#9900FF", "color_weight": 0.6}, {"color_hex": "#4285F4", "color_weight": 0.4},
        {"color_hex": "#FFFFFF", "color_weight": 0.2}]}


async def test_the_safety_check_422_is_content_rejected(fake: IdeogramFake) -> None:
    async with provider(fake) as p:
        with pytest.raises(ContentRejected, match="Ideogram's safety check rejected the prompt"):
            await p.generate(IDEOGRAM, GenerationRequest(prompt="something unsafe"), ignore)
    assert len(posts(fake)) == 1


async def test_unsafe_images_are_skipped_and_none_left_is_content_rejected(fake: IdeogramFake) -> None:
    messages: list[str] = []

    async def progress(message: str) -> None:
        messages.append(message)

    fake.unsafe_images(1)
    async with provider(fake) as p:
        images = await p.generate(IDEOGRAM, GenerationRequest(prompt="a fox", count=3), progress)
        assert len(images) == 2 and "withheld 1 of 3" in messages[-1]
        fake.unsafe_images(2)
        with pytest.raises(ContentRejected, match="withheld every image"):
            await p.generate(IDEOGRAM, GenerationRequest(prompt="a fox", count=2), progress)


async def test_a_bad_key_is_an_authentication_error_naming_the_variable_not_the_key(fake: IdeogramFake) -> None:
    async with provider(fake, api_key="ig-wrong-secret") as p:
        with pytest.raises(AuthenticationError) as caught:
            await p.generate(IDEOGRAM, GenerationRequest(prompt="a fox"), ignore)
    assert "IDEOGRAM_API_KEY" in str(caught.value) and "ig-wrong-secret" not in str(caught.value)


async def test_a_400_is_invalid_input_with_the_vendor_detail(fake: IdeogramFake) -> None:
    fake.fail_tasks(1, "num_images is too large for this plan")
    async with provider(fake) as p:
        with pytest.raises(InvalidInput, match="num_images is too large"):
            await p.generate(IDEOGRAM, GenerationRequest(prompt="a fox"), ignore)


async def test_too_many_requests_in_flight_is_retried_with_backoff(fake: IdeogramFake) -> None:
    fake.inject(429, times=2, method="POST", path_prefix=GENERATE)
    async with provider(fake) as p:
        [image] = await p.generate(IDEOGRAM, GenerationRequest(prompt="a fox"), ignore)
    assert [r.status for r in posts(fake)] == [429, 429, 200] and image.data


async def test_a_429_that_persists_is_rate_limited(fake: IdeogramFake) -> None:
    fake.inject(429, times=10, method="POST", path_prefix=GENERATE)
    async with provider(fake) as p:
        with pytest.raises(RateLimited):
            await p.generate(IDEOGRAM, GenerationRequest(prompt="a fox"), ignore)
    assert len(posts(fake)) == 3


async def test_a_server_error_that_persists_is_provider_unavailable(fake: IdeogramFake) -> None:
    fake.inject(500, times=10, method="POST", path_prefix=GENERATE)
    async with provider(fake) as p:
        with pytest.raises(ProviderUnavailable, match="HTTP 500"):
            await p.generate(IDEOGRAM, GenerationRequest(prompt="a fox"), ignore)
    assert len(posts(fake)) == 3


async def test_a_slow_generation_times_out(fake: IdeogramFake) -> None:
    fake.hold = True
    async with provider(fake, timeout=0.3) as p:
        with pytest.raises(GenerationTimeout, match="did not answer within 0.3 s"):
            await p.generate(IDEOGRAM, GenerationRequest(prompt="a fox"), ignore)
    fake.release()
    await fake.wait_until(lambda: fake.in_flight == 0, timeout=10)


async def test_concurrent_calls_stay_within_the_provider_concurrency(fake: IdeogramFake) -> None:
    fake.hold = True
    async with provider(fake, concurrency=2) as p, anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(p.generate, IDEOGRAM, GenerationRequest(prompt="a fox"), ignore)
        await fake.wait_until(lambda: fake.in_flight == 2, timeout=10)
        fake.release()
    assert fake.max_in_flight == 2 and len(posts(fake)) == 4


def test_a_missing_key_or_an_unknown_rendering_speed_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="IDEOGRAM_API_KEY"):
        IdeogramProvider(ProviderConfig(api_key=None))
    with pytest.raises(ConfigError, match="rendering_speed"):
        IdeogramProvider(ProviderConfig(api_key=KEY, extra={"rendering_speed": "LUDICROUS"}))
