"""A task outlives the call that created it: its id is reported as soon as the vendor answers, a
call stopped with ``leave_running`` does not cancel it, and ``resume`` fetches it by id (no second
submit, so nothing is paid twice) and downloads exactly what the vendor made. Cancel by id."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest

from providers.base import ImageProvider, ModelSpec
from providers.dashscope import MODELS as DASHSCOPE_MODELS
from providers.dashscope import DashScopeProvider
from providers.errors import InvalidRequest
from providers.ideogram import MODELS as IDEOGRAM_MODELS
from providers.ideogram import IdeogramProvider
from providers.modelscope import MODELS as MODELSCOPE_MODELS
from providers.modelscope import ModelScopeProvider
from providers.replicate import MODELS as REPLICATE_MODELS
from providers.replicate import ReplicateProvider
from providers.types import GenerationRequest, TaskHooks
from tests.fakes.dashscope_fake import DashScopeFake
from tests.fakes.modelscope_fake import ModelScopeFake
from tests.fakes.replicate_fake import FakeReplicate
from tests.providers._support import Progress, fast_config, opened

pytestmark = pytest.mark.anyio

KEY = "test-key"


@dataclass
class Vendor:
    name: str
    cls: type[ImageProvider]
    spec: ModelSpec
    base: Callable[[Any], str]
    submits: Callable[[Any], int]
    cancels: Callable[[Any], list[str]]
    can_cancel: bool


def _posts(fake: Any, path: str) -> int:
    return len([r for r in fake.requests if r.method == "POST" and r.path == path])


VENDORS = [
    Vendor("replicate", ReplicateProvider, REPLICATE_MODELS[0], lambda f: f.url, lambda f: len(f.creates),
           lambda f: f.cancels, True),
    Vendor("dashscope", DashScopeProvider, DASHSCOPE_MODELS[0], lambda f: f"{f.url}/api/v1",
           lambda f: _posts(f, "/api/v1/services/aigc/text2image/image-synthesis"), lambda f: f.cancels, True),
    Vendor("modelscope", ModelScopeProvider, MODELSCOPE_MODELS[0], lambda f: f.url,
           lambda f: _posts(f, "/v1/images/generations"), lambda f: f.cancels, False),
]


@contextlib.contextmanager
def fake_for(vendor: Vendor) -> Iterator[Any]:
    fakes: dict[str, Callable[[], Any]] = {"replicate": lambda: FakeReplicate(token=KEY),
                                           "dashscope": lambda: DashScopeFake(api_key=KEY),
                                           "modelscope": lambda: ModelScopeFake(api_key=KEY)}
    with fakes[vendor.name]().running() as fake:
        yield fake


@contextlib.asynccontextmanager
async def provider_for(vendor: Vendor, fake: Any) -> AsyncIterator[ImageProvider]:
    async with opened(vendor.cls, fast_config(vendor.base(fake), KEY, wait_window=1)) as provider:
        yield provider


async def start_and_leave(provider: ImageProvider, spec: ModelSpec, fake: Any,
                          request: GenerationRequest | None = None) -> str:
    """Start a generation, learn its task id, then stop waiting as a server shutting down does."""
    ids: list[str] = []

    async def on_task(task_id: str) -> None:
        ids.append(task_id)

    hooks = TaskHooks(on_task=on_task)
    async with anyio.create_task_group() as tg:
        tg.start_soon(provider.generate, spec, request or GenerationRequest(prompt="a lighthouse"), Progress(), hooks)
        with anyio.fail_after(10):
            while not ids:
                await anyio.sleep(0.01)
        hooks.leave_running = True
        tg.cancel_scope.cancel()
    return ids[0]


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
async def test_a_task_left_running_is_resumed_by_id_without_a_second_submit(vendor: Vendor) -> None:
    with fake_for(vendor) as fake:
        fake.hold = True
        async with provider_for(vendor, fake) as provider:
            task_id = await start_and_leave(provider, vendor.spec, fake)
        assert vendor.cancels(fake) == []          # left running: the next owner fetches it
        fake.release()
        progress = Progress()
        async with provider_for(vendor, fake) as provider:   # another process: a fresh provider
            [image] = await provider.resume(vendor.spec, GenerationRequest(prompt="a lighthouse"), task_id, progress)
        assert vendor.submits(fake) == 1           # paid for once
        assert image.prediction_id == task_id and image.source_url
        async with httpx.AsyncClient() as http:    # exactly the bytes the vendor serves for the task
            served = (await http.get(image.source_url)).content
        assert image.data == served and image.data[:2] in (b"\xff\xd8", b"\x89P", b"RI")
        assert any(task_id in m for m in progress.messages)


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
async def test_cancel_by_id_reaches_the_vendor_that_can_cancel(vendor: Vendor) -> None:
    with fake_for(vendor) as fake:
        fake.hold = True
        async with provider_for(vendor, fake) as provider:
            task_id = await start_and_leave(provider, vendor.spec, fake)
            assert await provider.cancel_task(task_id) is vendor.can_cancel
        assert vendor.cancels(fake) == ([task_id] if vendor.can_cancel else [])
        fake.release()


async def test_ideogram_answers_synchronously_so_there_is_nothing_to_resume() -> None:
    async with opened(IdeogramProvider, fast_config("http://127.0.0.1:9", KEY)) as provider:
        assert not provider.can_resume
        with pytest.raises(InvalidRequest, match="synchronously"):
            await provider.resume(IDEOGRAM_MODELS[0], GenerationRequest(prompt="a sign"), "x", Progress())


async def test_an_edit_task_resumes_from_a_request_whose_reference_images_kept_no_bytes_or_links() -> None:
    """A job record keeps a reference image by its source only; the resume still rebuilds its parameters."""
    from providers.types import InputImage

    edit = next(s for s in MODELSCOPE_MODELS if s.min_input_images)
    ref = "https://images.example.com/cat.png"
    sent = GenerationRequest(prompt="make it blue", input_images=(InputImage(None, "image/png", url=ref, source=ref),))
    with ModelScopeFake(api_key=KEY).running() as fake:
        fake.hold = True
        async with opened(ModelScopeProvider, fast_config(fake.url, KEY)) as provider:
            task_id = await start_and_leave(provider, edit, fake, sent)
        fake.release()
        recorded = GenerationRequest(prompt="make it blue", input_images=(InputImage(None, "image/png", source=ref),))
        async with opened(ModelScopeProvider, fast_config(fake.url, KEY)) as provider:
            [image] = await provider.resume(edit, recorded, task_id, Progress())
    assert image.prediction_id == task_id and image.parameters["image_url"] == "<image>"
