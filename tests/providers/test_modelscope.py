"""ModelScopeProvider against the loopback ModelScope fake: wire, task states, faults."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from providers.base import ProviderConfig
from providers.errors import (
    AuthenticationError,
    ConfigError,
    GenerationFailed,
    GenerationTimeout,
    InvalidInput,
    InvalidRequest,
    ProviderUnavailable,
    RateLimited,
    UnknownModel,
)
from providers.modelscope import MODELS, ModelScopeProvider
from providers.types import AspectRatio, GenerationRequest, ImageSize, InputImage
from tests.fakes.modelscope_fake import ModelScopeFake
from tests.providers._support import Progress, fast_config, opened

pytestmark = pytest.mark.anyio

KEY = "test-key"
SPECS = {s.name: s for s in MODELS}
Z_IMAGE = SPECS["Z-Image Turbo (ModelScope)"]
EDIT = SPECS["Qwen Image Edit"]
SUBMIT = "/v1/images/generations"


@pytest.fixture(scope="module")
def running() -> Iterator[ModelScopeFake]:
    with ModelScopeFake(api_key=KEY).running() as fake:
        yield fake


@pytest.fixture
def fake(running: ModelScopeFake) -> Iterator[ModelScopeFake]:
    running.reset()
    yield running
    running.reset()


def provider(fake: ModelScopeFake, **overrides: Any) -> contextlib.AbstractAsyncContextManager[ModelScopeProvider]:
    return opened(ModelScopeProvider, fast_config(fake.url, KEY, **overrides))


def submits(fake: ModelScopeFake) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST" and r.path == SUBMIT]


async def test_a_task_is_submitted_in_async_mode_polled_until_succeed_and_downloaded(fake: ModelScopeFake) -> None:
    fake.steps_before_done = 3
    progress = Progress()
    async with provider(fake) as p:
        [image] = await p.generate(Z_IMAGE, GenerationRequest(prompt="a lighthouse at dusk"), progress)
    [submit] = submits(fake)
    assert submit.headers["authorization"] == f"Bearer {KEY}"
    assert submit.headers["x-modelscope-async-mode"] == "true"
    assert submit.json == {"model": "Tongyi-MAI/Z-Image-Turbo", "prompt": "a lighthouse at dusk",
                           "size": "1024x1024"}
    [task_id] = fake.tasks
    polls = [r for r in fake.requests if r.path == f"/v1/tasks/{task_id}"]
    assert len(polls) == 4 and all(r.headers["x-modelscope-task-type"] == "image_generation" for r in polls)
    assert [m.split()[-1] for m in progress.messages] == ["submitted", "pending", "running", "succeeded"]
    assert image.data.startswith(b"\x89PNG") and image.mime_type == "image/png"
    assert (image.provider, image.provider_model, image.prediction_id) == ("modelscope", Z_IMAGE.provider_model,
                                                                           task_id)
    assert image.prompt_sent == "a lighthouse at dusk" and image.parameters == submit.json
    assert "authorization" not in [r for r in fake.requests if r.path.startswith("/img/")][0].headers


@pytest.mark.parametrize(("size", "expected"), [
    (ImageSize.SQUARE, "1024x1024"), (ImageSize.LANDSCAPE, "1360x1024"), (ImageSize.PORTRAIT, "1024x1360"),
    (ImageSize.WIDE, "1440x816"), (ImageSize.TALL, "816x1440")])
def test_sizes_are_the_seed_table_in_16_pixel_steps_within_both_models_ranges(size: ImageSize,
                                                                                expected: str) -> None:
    for spec in (Z_IMAGE, SPECS["Qwen Image (ModelScope)"]):
        sent = spec.build(GenerationRequest(prompt="p", size=size))["size"]
        assert sent == expected
        assert all(int(side) % 16 == 0 and 64 <= int(side) <= 1664 for side in sent.split("x"))


async def test_seed_and_negative_prompt_reach_the_wire_for_qwen_image(fake: ModelScopeFake) -> None:
    async with provider(fake) as p:
        [image] = await p.generate(SPECS["Qwen Image (ModelScope)"],
                                   GenerationRequest(prompt="a fox", size=ImageSize.WIDE, seed=42,
                                                     negative_prompt="blurry"), Progress())
    assert submits(fake)[0].json == {"model": "Qwen/Qwen-Image", "prompt": "a fox", "size": "1440x816",
                                     "seed": 42, "negative_prompt": "blurry"}
    assert image.seed == 42


async def test_a_failed_task_raises_generation_failed_with_the_vendor_text_and_task_id(
        fake: ModelScopeFake) -> None:
    fake.fail_tasks(1, "The prompt could not be rendered.")
    async with provider(fake) as p:
        with pytest.raises(GenerationFailed) as caught:
            await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())
    [task_id] = fake.tasks
    assert caught.value.job_id == task_id
    assert task_id in str(caught.value) and "could not be rendered" in str(caught.value)


async def test_a_task_the_vendor_no_longer_knows_is_a_generation_failure(fake: ModelScopeFake) -> None:
    fake.hold = True
    async with provider(fake) as p, anyio.create_task_group() as tg:
        outcome: list[BaseException] = []

        async def run() -> None:
            try:
                await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())
            except GenerationFailed as exc:
                outcome.append(exc)

        tg.start_soon(run)
        await fake.wait_until(lambda: any(t["polls"] >= 1 for t in fake.tasks.values()), timeout=10)
        fake.expire(next(iter(fake.tasks)))
        fake.release()
    [error] = outcome
    assert "task not found" in str(error)


async def test_a_bad_token_is_an_authentication_error_naming_the_variable_not_the_token(
        fake: ModelScopeFake) -> None:
    async with provider(fake, api_key="ms-wrong-secret") as p:
        with pytest.raises(AuthenticationError) as caught:
            await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())
    assert "MODELSCOPE_API_KEY" in str(caught.value) and "ms-wrong-secret" not in str(caught.value)
    assert len(submits(fake)) == 1  # not retried


async def test_an_unbound_account_is_an_authentication_error(fake: ModelScopeFake) -> None:
    fake.inject(403, {"errors": {"message": "Please bind your Aliyun account"}}, method="POST")
    async with provider(fake) as p:
        with pytest.raises(AuthenticationError, match="MODELSCOPE_API_KEY"):
            await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())


async def test_an_unknown_model_id_is_an_unknown_model_error(fake: ModelScopeFake) -> None:
    fake.known_models = {"Qwen/Qwen-Image"}
    async with provider(fake) as p:
        with pytest.raises(UnknownModel):
            await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())


async def test_an_invalid_request_is_invalid_input_with_the_vendor_text(fake: ModelScopeFake) -> None:
    fake.inject(400, {"errors": {"message": "invalid size"}}, method="POST")
    async with provider(fake) as p:
        with pytest.raises(InvalidInput, match="invalid size"):
            await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())


async def test_a_429_is_retried_and_the_task_then_succeeds(fake: ModelScopeFake) -> None:
    fake.inject(429, method="POST", path_prefix=SUBMIT)
    async with provider(fake) as p:
        [image] = await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())
    assert [r.status for r in submits(fake)] == [429, 200] and image.data


async def test_a_429_that_persists_is_rate_limited_after_bounded_retries(fake: ModelScopeFake) -> None:
    fake.inject(429, times=10, method="POST", path_prefix=SUBMIT)
    async with provider(fake) as p:
        with pytest.raises(RateLimited) as caught:
            await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())
    assert len(submits(fake)) == 3  # one try plus max_retries=2
    assert "requests left today for this model: 0" in str(caught.value)


async def test_server_errors_while_polling_are_retried(fake: ModelScopeFake) -> None:
    fake.inject(500, times=2, method="GET", path_prefix="/v1/tasks/")
    async with provider(fake) as p:
        [image] = await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())
    assert image.data
    assert [r.status for r in fake.requests if r.path.startswith("/v1/tasks/")][:2] == [500, 500]


async def test_a_dropped_connection_while_polling_is_retried(fake: ModelScopeFake) -> None:
    fake.inject_reset(1, method="GET", path_prefix="/v1/tasks/")
    async with provider(fake) as p:
        [image] = await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())
    assert image.data


async def test_a_dropped_submit_is_not_retried_because_the_task_may_exist(fake: ModelScopeFake) -> None:
    fake.inject_reset(1, method="POST", path_prefix=SUBMIT)
    async with provider(fake) as p:
        with pytest.raises(ProviderUnavailable, match="Could not reach ModelScope"):
            await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())
    assert len(submits(fake)) == 1


async def test_a_server_error_that_persists_is_provider_unavailable(fake: ModelScopeFake) -> None:
    fake.inject(500, times=10, method="POST", path_prefix=SUBMIT)
    async with provider(fake) as p:
        with pytest.raises(ProviderUnavailable, match="busy"):
            await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())
    assert len(submits(fake)) == 3


async def test_a_slow_task_times_out_naming_the_task_and_saying_it_cannot_be_canceled(
        fake: ModelScopeFake) -> None:
    fake.hold = True
    async with provider(fake, timeout=0.3) as p:
        with pytest.raises(GenerationTimeout) as caught:
            await p.generate(Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())
    [task_id] = fake.tasks
    assert caught.value.job_id == task_id and task_id in str(caught.value)
    assert "cannot cancel" in str(caught.value)


async def test_cancelling_the_call_just_stops_polling(fake: ModelScopeFake) -> None:
    fake.hold = True
    async with provider(fake) as p:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(p.generate, Z_IMAGE, GenerationRequest(prompt="a fox"), Progress())
                await fake.wait_until(lambda: any(t["polls"] >= 2 for t in fake.tasks.values()), timeout=10)
                scope.cancel()
        seen = len(fake.requests)
    assert scope.cancelled_caught
    assert len(fake.requests) == seen and all(r.method == "GET" for r in fake.requests[1:])
    assert fake.cancels == []


async def test_an_edit_sends_the_https_reference_as_image_url(fake: ModelScopeFake) -> None:
    ref = InputImage(data=b"png", mime_type="image/png", url="https://example.com/cat.png")
    async with provider(fake) as p:
        [image] = await p.generate(EDIT, GenerationRequest(prompt="make it blue", input_images=(ref,),
                                                           aspect_ratio=AspectRatio.R16_9), Progress())
    assert submits(fake)[0].json == {"model": "Qwen/Qwen-Image-Edit-2511", "prompt": "make it blue",
                                     "image_url": "https://example.com/cat.png", "size": "1360x768"}
    assert image.data


async def test_an_edit_refuses_references_without_an_https_url_before_any_request(fake: ModelScopeFake) -> None:
    inline = InputImage(data=b"png", mime_type="image/png", url=None, source="data:image/png;base64,…")
    async with provider(fake) as p:
        with pytest.raises(InvalidRequest) as caught:
            await p.generate(EDIT, GenerationRequest(prompt="make it blue", input_images=(inline,)), Progress())
        with pytest.raises(InvalidRequest, match="^images: "):
            await p.generate(EDIT, GenerationRequest(prompt="make it blue"), Progress())
    assert str(caught.value).startswith("images: ModelScope needs https URLs for reference images")
    assert fake.requests == []


async def test_a_prompt_of_2000_characters_is_refused_before_any_request(fake: ModelScopeFake) -> None:
    async with provider(fake) as p:
        with pytest.raises(InvalidRequest, match="^prompt: "):
            await p.generate(Z_IMAGE, GenerationRequest(prompt="x" * 2000), Progress())
    assert fake.requests == []


def test_a_missing_key_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="MODELSCOPE_API_KEY"):
        ModelScopeProvider(ProviderConfig(api_key=None))
