"""DashScopeProvider against the loopback DashScope fake: wire, task states, cancel, faults."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from providers.base import ProviderConfig
from providers.dashscope import MODELS, DashScopeProvider
from providers.errors import (
    AuthenticationError,
    ConfigError,
    ContentRejected,
    GenerationFailed,
    GenerationTimeout,
    InsufficientCredit,
    InvalidInput,
    ProviderUnavailable,
    RateLimited,
    UnknownModel,
)
from providers.types import GenerationRequest, ImageSize
from tests.fakes.dashscope_fake import DashScopeFake
from tests.providers._support import Progress, fast_config, opened

pytestmark = pytest.mark.anyio

KEY = "test-key"
SPECS = {s.name: s for s in MODELS}
PLUS = SPECS["Wanx 2.1 T2I Plus (DashScope)"]
TURBO = SPECS["Wanx 2.1 T2I Turbo (DashScope)"]
SUBMIT = "/api/v1/services/aigc/text2image/image-synthesis"


@pytest.fixture(scope="module")
def running() -> Iterator[DashScopeFake]:
    with DashScopeFake(api_key=KEY).running() as fake:
        yield fake


@pytest.fixture
def fake(running: DashScopeFake) -> Iterator[DashScopeFake]:
    running.reset()
    yield running
    running.reset()


def provider(fake: DashScopeFake, **overrides: Any) -> contextlib.AbstractAsyncContextManager[DashScopeProvider]:
    return opened(DashScopeProvider, fast_config(f"{fake.url}/api/v1", KEY, **overrides))


def submits(fake: DashScopeFake) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST" and r.path == SUBMIT]


async def test_a_task_is_created_async_polled_from_pending_to_succeeded_and_downloaded(fake: DashScopeFake) -> None:
    fake.steps_before_done = 2
    progress = Progress()
    async with provider(fake) as p:
        [image] = await p.generate(PLUS, GenerationRequest(prompt="a lighthouse at dusk", size=ImageSize.WIDE),
                                   progress)
    [submit] = submits(fake)
    assert submit.headers["authorization"] == f"Bearer {KEY}" and submit.headers["x-dashscope-async"] == "enable"
    assert submit.json == {"model": "wanx2.1-t2i-plus", "input": {"prompt": "a lighthouse at dusk"},
                           "parameters": {"size": "1440*810", "n": 1, "prompt_extend": False, "watermark": False}}
    [task_id] = fake.tasks
    assert [m.split()[-1] for m in progress.messages] == ["submitted", "pending", "running", "succeeded"]
    assert image.data.startswith(b"\x89PNG") and image.mime_type == "image/png"
    assert (image.provider, image.provider_model, image.prediction_id) == ("dashscope", "wanx2.1-t2i-plus", task_id)
    download = next(r for r in fake.requests if r.path.startswith("/r/"))
    assert "authorization" not in download.headers
    assert fake.n_defaulted == []


@pytest.mark.parametrize(("size", "expected"), [
    (ImageSize.SQUARE, "1024*1024"), (ImageSize.LANDSCAPE, "1365*1024"), (ImageSize.PORTRAIT, "1024*1365"),
    (ImageSize.WIDE, "1440*810"), (ImageSize.TALL, "810*1440")])
def test_sizes_are_the_seed_table_with_a_star_and_512_to_1440_a_side(size: ImageSize, expected: str) -> None:
    for spec in MODELS:
        sent = spec.build(GenerationRequest(prompt="p", size=size))["parameters"]["size"]
        assert sent == expected and all(512 <= int(side) <= 1440 for side in sent.split("*"))


async def test_n_is_always_sent_and_a_batch_of_four_comes_back_from_one_task(fake: DashScopeFake) -> None:
    async with provider(fake) as p:
        images = await p.generate(TURBO, GenerationRequest(prompt="a fox", count=4, seed=7,
                                                           negative_prompt="blurry"), Progress())
    [submit] = submits(fake)
    assert submit.json["parameters"]["n"] == 4 and submit.json["parameters"]["seed"] == 7
    assert submit.json["input"] == {"prompt": "a fox", "negative_prompt": "blurry"}
    assert len(images) == 4 and len({i.data for i in images}) == 4
    assert {i.prediction_id for i in images} == set(fake.tasks) and fake.n_defaulted == []


async def test_a_failed_task_answered_with_http_200_is_a_generation_failure(fake: DashScopeFake) -> None:
    fake.fail_tasks(1, "The model crashed.", code="InternalError.Algo")
    async with provider(fake) as p:
        with pytest.raises(GenerationFailed) as caught:
            await p.generate(PLUS, GenerationRequest(prompt="a fox"), Progress())
    [task_id] = fake.tasks
    assert caught.value.job_id == task_id and "InternalError.Algo" in str(caught.value)
    assert "The model crashed." in str(caught.value)


async def test_a_task_failed_by_content_inspection_is_content_rejected(fake: DashScopeFake) -> None:
    fake.fail_tasks(1, "Output data may contain inappropriate content.", code="DataInspectionFailed")
    async with provider(fake) as p:
        with pytest.raises(ContentRejected):
            await p.generate(PLUS, GenerationRequest(prompt="a fox"), Progress())


async def test_an_unknown_or_expired_task_is_a_generation_failure_saying_so(fake: DashScopeFake) -> None:
    fake.hold = True
    async with provider(fake) as p, anyio.create_task_group() as tg:
        outcome: list[BaseException] = []

        async def run() -> None:
            try:
                await p.generate(PLUS, GenerationRequest(prompt="a fox"), Progress())
            except GenerationFailed as exc:
                outcome.append(exc)

        tg.start_soon(run)
        await fake.wait_until(lambda: any(t["polls"] >= 1 for t in fake.tasks.values()), timeout=10)
        fake.expire(next(iter(fake.tasks)))
        fake.release()
    [error] = outcome
    assert "no longer knows task" in str(error) and "24 hours" in str(error)


async def test_cancelling_the_call_cancels_the_pending_task(fake: DashScopeFake) -> None:
    async with provider(fake, poll_interval=30.0, poll_max=30.0) as p:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(p.generate, PLUS, GenerationRequest(prompt="a fox"), Progress())
                await fake.wait_until(lambda: len(fake.tasks) == 1, timeout=10)
                scope.cancel()
    [task_id] = fake.tasks
    assert scope.cancelled_caught
    assert fake.cancels == [task_id] and fake.tasks[task_id]["state"] == "CANCELED"
    [cancel] = [r for r in fake.requests if r.path.endswith("/cancel")]
    assert cancel.path == f"/api/v1/tasks/{task_id}/cancel" and cancel.headers["authorization"] == f"Bearer {KEY}"


async def test_a_slow_task_times_out_naming_the_task_id(fake: DashScopeFake) -> None:
    fake.hold = True
    async with provider(fake, timeout=0.3) as p:
        with pytest.raises(GenerationTimeout) as caught:
            await p.generate(PLUS, GenerationRequest(prompt="a fox"), Progress())
    [task_id] = fake.tasks
    assert caught.value.job_id == task_id and task_id in str(caught.value)
    # it was RUNNING: DashScope cancels only PENDING tasks, and the message says it may still finish
    assert any(r.path.endswith("/cancel") for r in fake.requests) and "may still finish" in str(caught.value)


async def test_a_bad_key_is_an_authentication_error_naming_the_variable_not_the_key(fake: DashScopeFake) -> None:
    async with provider(fake, api_key="sk-wrong-secret") as p:
        with pytest.raises(AuthenticationError) as caught:
            await p.generate(PLUS, GenerationRequest(prompt="a fox"), Progress())
    assert "DASHSCOPE_API_KEY" in str(caught.value) and "sk-wrong-secret" not in str(caught.value)
    assert len(submits(fake)) == 1


@pytest.mark.parametrize(("status", "code", "error"), [
    (400, "Arrearage", InsufficientCredit),
    (400, "DataInspectionFailed", ContentRejected),
    (400, "InvalidParameter", InvalidInput),
    (404, "Model.NotExist", UnknownModel),
    (403, "AccessDenied.Unpurchased", AuthenticationError),
])
async def test_error_codes_map_to_the_error_tree(fake: DashScopeFake, status: int, code: str,
                                                 error: type[Exception]) -> None:
    fake.inject(status, {"code": code, "message": "from the fake", "request_id": "r1"}, method="POST")
    async with provider(fake) as p:
        with pytest.raises(error):
            await p.generate(PLUS, GenerationRequest(prompt="a fox"), Progress())
    assert len(submits(fake)) == 1


async def test_throttling_is_retried_and_the_task_then_succeeds(fake: DashScopeFake) -> None:
    fake.inject(429, method="POST", path_prefix=SUBMIT)
    async with provider(fake) as p:
        [image] = await p.generate(PLUS, GenerationRequest(prompt="a fox"), Progress())
    assert [r.status for r in submits(fake)] == [429, 200] and image.data


async def test_throttling_that_persists_is_rate_limited_after_bounded_retries(fake: DashScopeFake) -> None:
    fake.inject(429, times=10, method="POST", path_prefix=SUBMIT)
    async with provider(fake) as p:
        with pytest.raises(RateLimited, match="Throttling.RateQuota"):
            await p.generate(PLUS, GenerationRequest(prompt="a fox"), Progress())
    assert len(submits(fake)) == 3


async def test_a_503_is_retried_and_a_persisting_500_is_provider_unavailable(fake: DashScopeFake) -> None:
    fake.inject(503, method="POST", path_prefix=SUBMIT)
    async with provider(fake) as p:
        assert await p.generate(PLUS, GenerationRequest(prompt="a fox"), Progress())
        fake.inject(500, times=10, method="POST", path_prefix=SUBMIT)
        with pytest.raises(ProviderUnavailable, match="InternalError"):
            await p.generate(PLUS, GenerationRequest(prompt="a fox"), Progress())
    assert [r.status for r in submits(fake)] == [503, 200, 500, 500, 500]


async def test_server_errors_while_polling_are_retried(fake: DashScopeFake) -> None:
    fake.inject(500, times=2, method="GET", path_prefix="/api/v1/tasks/")
    async with provider(fake) as p:
        [image] = await p.generate(PLUS, GenerationRequest(prompt="a fox"), Progress())
    assert image.data


def test_a_missing_key_or_a_base_url_without_the_api_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DASHSCOPE_API_KEY"):
        DashScopeProvider(ProviderConfig(api_key=None))
    with pytest.raises(ConfigError, match="DASHSCOPE_BASE_URL must include the API path"):
        DashScopeProvider(ProviderConfig(api_key=KEY, base_url="https://dashscope-intl.aliyuncs.com"))


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_every_wan_model_gets_the_seed_sizes_inside_its_published_limits(spec) -> None:  # type: ignore[no-untyped-def]
    from tests.fakes.dashscope_fake import check_size

    shape = {ImageSize.SQUARE: 0, ImageSize.LANDSCAPE: 1, ImageSize.WIDE: 1, ImageSize.PORTRAIT: -1,
             ImageSize.TALL: -1}
    for size in ImageSize:
        sent = spec.build(GenerationRequest(prompt="p", size=size))["parameters"]["size"]
        assert check_size(spec.provider_model, sent) is None, (spec.name, size, sent)
        w, h = (int(x) for x in sent.split("*"))
        assert (w > h) - (w < h) == shape[size], (spec.name, size, sent)


async def test_wan_2_5_runs_through_the_same_task_api(fake: DashScopeFake) -> None:
    wan25 = SPECS["Wan 2.5 T2I Preview (DashScope)"]
    async with provider(fake) as p:
        images = await p.generate(wan25, GenerationRequest(prompt="一座灯塔", size=ImageSize.TALL, count=2, seed=5,
                                                            negative_prompt="文字"), Progress())
    [submit] = submits(fake)
    assert submit.json == {"model": "wan2.5-t2i-preview", "input": {"prompt": "一座灯塔", "negative_prompt": "文字"},
                           "parameters": {"size": "810*1440", "n": 2, "prompt_extend": False, "watermark": False,
                                          "seed": 5}}
    assert len(images) == 2 and {i.provider_model for i in images} == {"wan2.5-t2i-preview"}
