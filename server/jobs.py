"""The one pipeline of every image tool: run the work, store each image (+ preview) the moment it
arrives, report progress, answer.

A tool declares its arguments, turns them into ``Work`` and calls ``run_job`` (or, for a
model whose output is not a list of images, drives a ``Job`` itself). An image's route runs
one way: the provider downloads it -> ``store_image`` checks it is a usable image -> it is
stored while its preview is made (server.previews) -> the result is shaped (server.results).

Three words are kept apart:

* a provider's **task**: what a vendor runs and knows by its id (a Replicate prediction, a
  DashScope or ModelScope task); ``task_id`` here, ``prediction_id`` in the stored metadata.
* **work**: one unit of image work, one provider call for at most the model's batch size
  (``Work``, its ``WorkOutcome``). All of a call's work runs at once (each provider's own limiter
  bounds its concurrency and rate); one failed unit never sinks the others, and an image that
  was paid for is stored before anything else can go wrong.
* a **job**: what the user sees, one tool call with its progress, previews and stored images
  (``Job``). Cancelling the call cancels every outstanding provider task.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import BaseModel

from providers.base import ImageProvider, ModelSpec
from providers.errors import ImageGenError, ProviderUnavailable, RateLimited
from providers.types import GeneratedImage, GenerationRequest, OutputStream
from server.images import InvalidImage, inspect_image
from server.ingest import ingest
from server.previews import Previews
from server.results import ErrorRecord, GenerateResult, ImageRecord, build_result, describe, image_record
from server.storage import Storage, StorageError, StoredImage

__all__ = ["Finished", "Job", "Progress", "Work", "WorkOutcome", "images_answer", "run_job", "split_count",
           "store_image"]

log = logging.getLogger("easel.jobs")


@dataclass(frozen=True)
class Work:
    """One unit of image work: one provider call asking for ``request.count`` images."""

    spec: ModelSpec
    provider: ImageProvider
    request: GenerationRequest
    label: str = ""                          # e.g. "image 2 of 4" or "illustration 3"
    metadata: dict[str, Any] = field(default_factory=dict)   # stored with each image (tool, user prompt, …)


@dataclass
class WorkOutcome:
    work: Work
    images: list[StoredImage] = field(default_factory=list)
    error: ImageGenError | None = None


@dataclass
class Finished:
    """What a job's work came to: every outcome in order, the stored images, one error per failed unit,
    and each stored image's record as the result shows it."""

    outcomes: list[WorkOutcome]
    images: list[StoredImage]
    errors: list[ErrorRecord]
    records: list[ImageRecord]


def split_count(spec: ModelSpec, request: GenerationRequest, count: int) -> list[GenerationRequest]:
    """One request per provider call, each asking for at most ``spec.max_batch`` images.

    A seeded request is split into one image per call: a vendor's batch shares one seed, and
    the tools promise that image i uses seed + i, so that any one image can be made again alone."""
    batch = 1 if request.seed is not None else max(1, spec.max_batch)
    sizes = [batch] * (count // batch) + ([count % batch] if count % batch else [])
    return [replace(request, count=n) for n in sizes]


class Progress:
    """MCP progress for a call: state messages, a heartbeat while waiting, and a value that is
    the number of images stored so far.

    The spec wants every notification's value to be larger than the last, so a message between
    two stored images carries ``done + k / (k + 9)`` for the k-th such message: it creeps up
    (0.1, 0.18, 0.25, … 0.87 after a 5-minute wait's heartbeats) and never reaches the next
    whole image, so a progress bar does not claim half an image before anything is done.
    """

    def __init__(self, ctx: Any, total: int, interval: float) -> None:
        self._ctx = ctx
        self.total = total
        self.done = 0
        self._since_done = 0
        self._interval = interval
        self._started = time.monotonic()
        self._last = "starting"

    async def send(self, message: str) -> None:
        self._since_done += 1
        await self._report(self.done + self._since_done / (self._since_done + 9), message)

    async def image_done(self, message: str) -> None:
        self.done += 1
        self._since_done = 0
        await self._report(self.done, message)

    async def _report(self, value: float, message: str) -> None:
        self._last = message
        if self._ctx is None:
            return
        try:
            await self._ctx.report_progress(value, self.total, message=message)
        except Exception:  # progress is best effort; never fail a paid generation over it
            log.debug("progress notification failed", exc_info=True)

    async def announce_new_images(self) -> None:
        """Tell the client resources/list changed, in both protocol eras (each ignores the other's call)."""
        if self._ctx is None:
            return
        for notify in (lambda: self._ctx.notify_resources_changed(),
                       lambda: self._ctx.request_context.session.send_resource_list_changed()):
            try:
                await notify()
            except Exception:  # best effort, like progress
                log.debug("resource list_changed notification failed", exc_info=True)

    async def heartbeat(self) -> None:
        while True:
            await anyio.sleep(self._interval)
            elapsed = time.monotonic() - self._started
            await self.send(f"{self._last} ({elapsed:.0f}s elapsed)")


class Job:
    """One tool call as the user sees it: its progress, the previews made while its images were stored,
    and how a stored image is shown (a signed browser link over HTTP, from the application state)."""

    def __init__(self, ctx: Any, tool: str, total: int) -> None:
        self.state = ctx.request_context.lifespan_context
        self.tool = tool
        settings = self.state.settings
        self.progress = Progress(ctx, total=total, interval=settings.calls.progress_interval)
        self.previews = Previews(settings)
        self.stored: list[StoredImage] = []   # in the order they were stored

    async def run(self, work: list[Work], announce: str) -> Finished:
        """Run every unit at once, storing each image as it arrives. Raises ToolError when nothing was made."""
        await self.progress.send(announce)
        outcomes = [WorkOutcome(w) for w in work]
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.progress.heartbeat)
            async with anyio.create_task_group() as units:
                for outcome in outcomes:
                    units.start_soon(self._run_one, outcome)
            tg.cancel_scope.cancel()
        await self.announce()
        images = [img for o in outcomes for img in o.images]
        errors = [ErrorRecord(item=o.work.label or o.work.spec.name, kind=type(o.error).__name__,
                              message=str(o.error)) for o in outcomes if o.error is not None]
        if not images and errors:
            unique = list(dict.fromkeys(e.message for e in errors))
            first = next(o.error for o in outcomes if o.error is not None)   # the call log names its kind
            raise ToolError(unique[0] if len(unique) == 1 else f"{self.tool} failed: " + " | ".join(unique)) from first
        return Finished(outcomes, images, errors, [self.record(i) for i in images])

    async def store(self, data: bytes | OutputStream, metadata: dict[str, Any], *, provider: str,
                    task_id: str | None, source_url: str | None) -> StoredImage:
        """Check ``data`` (bytes, or a download to read as it arrives) is a usable image (InvalidImage if
        not), then store it with its preview."""
        stored = await store_image(data, metadata, self.state.storage, max_pixels=self.state.settings.calls.max_image_pixels,
                                   previews=self.previews, provider=provider, task_id=task_id, source_url=source_url)
        self.stored.append(stored)
        return stored

    async def announce(self) -> None:
        """Tell the client its resource list changed, when this job stored anything."""
        if self.stored:
            await self.progress.announce_new_images()

    def record(self, stored: StoredImage) -> ImageRecord:
        return image_record(stored, self.state.links)

    def answer(self, structured: BaseModel | dict[str, Any], images: list[StoredImage], text: str) -> CallToolResult:
        body = structured.model_dump() if isinstance(structured, BaseModel) else structured
        return build_result(body, images, self.previews.made, text)

    async def _run_one(self, outcome: WorkOutcome) -> None:
        work = outcome.work
        prefix = f"{work.label}: " if work.label else ""

        async def report(message: str) -> None:
            await self.progress.send(prefix + message)

        try:
            images = await work.provider.generate(work.spec, work.request, report, stream=True)
            for image in images:
                stored = await self._store_generated(image, work)
                outcome.images.append(stored)
                await self.progress.image_done(f"{prefix}stored {stored.image_id}")
        except ImageGenError as exc:
            outcome.error = exc
            await self.progress.send(f"{prefix}failed: {exc}")
        except Exception as exc:  # a bug or an unmapped SDK error: log it, report it without details
            log.exception("unexpected error in %s work", work.spec.provider)
            outcome.error = ProviderUnavailable(
                f"Unexpected error while generating with {work.spec.name} ({type(exc).__name__}); "
                "see the server log.", provider=work.spec.provider)

    async def _store_generated(self, image: GeneratedImage, work: Work) -> StoredImage:
        metadata = {
            "prompt": image.prompt_sent, "model": work.spec.name, "provider": image.provider,
            "provider_model": image.provider_model, "parameters": image.parameters, "seed": image.seed,
            "prediction_id": image.prediction_id, **work.metadata,
        }
        try:
            return await self.store(image.stream or image.data, metadata, provider=image.provider,
                                    task_id=image.prediction_id,
                                    source_url=image.source_url)
        except InvalidImage as exc:
            raise ProviderUnavailable(f"{work.spec.name} returned something that is not a usable image: {exc}.",
                                      provider=image.provider, job_id=image.prediction_id) from None


async def run_job(ctx: Any, tool: str, work: list[Work], *, total: int, announce: str,
                  answer: Callable[[Finished], tuple[BaseModel, str]]) -> CallToolResult:
    """The whole call: run ``work`` as one job, then ``answer(finished)`` gives the structured content and the
    text, and the result carries a resource link and a preview per stored image."""
    job = Job(ctx, tool, total)
    finished = await job.run(work, announce)
    structured, text = answer(finished)
    return job.answer(structured, finished.images, text)


def images_answer(finished: Finished, summary: str) -> tuple[GenerateResult, str]:
    """The answer of a tool whose result is just its images: GenerateResult, described in full."""
    result = GenerateResult(images=finished.records, errors=finished.errors)
    return result, describe(summary, images=result.images, errors=result.errors)


async def store_image(data: bytes | OutputStream, metadata: dict[str, Any], storage: Storage, *,
                      max_pixels: int, previews: Previews | None, provider: str, task_id: str | None,
                      source_url: str | None) -> StoredImage:
    """Check the bytes are a usable image (InvalidImage if not), then store one paid-for image, its preview
    made meanwhile: the one store path of every tool. A download (``OutputStream``) is checked,
    stored and previewed as its bytes arrive (server.ingest).

    When the store fails (disk full, bucket down and no fallback), or the download does, the error
    says where the image still is: the provider's temporary link, so what was paid for is not lost."""
    where = (f" It is still at the provider's temporary link for a limited time; download it from there: "
             f"{source_url}" if source_url else " The provider sent it inline, so no other copy exists.")
    try:
        if callable(data):
            return await ingest(data, metadata, storage, max_pixels=max_pixels, previews=previews)
        info = inspect_image(data, max_pixels=max_pixels)
        put = functools.partial(storage.put, data, info.mime_type, {"width": info.width, "height": info.height,
                                                                     **metadata})
        return await (put() if previews is None else previews.store(data, put))
    except (ProviderUnavailable, RateLimited) as exc:   # a download that failed after its retries
        if not source_url:
            raise
        raise ProviderUnavailable(f"The image was generated but {exc}{where}", provider=provider,
                                  job_id=task_id) from None
    except StorageError as exc:
        raise ProviderUnavailable(f"The image was generated but could not be stored: {exc}{where}",
                                  provider=provider, job_id=task_id) from None
