"""Running generation jobs: concurrently, stored at once, with progress.

A tool turns its arguments into ``Job``s (one provider call each, at most the
model's batch size). ``run_jobs`` runs them all at once (each provider's own
limiter bounds its concurrency and rate), stores every image the moment it
arrives, and reports per-job outcomes: one failed job never sinks the others,
and an image that was paid for is stored before anything else can go wrong.
Cancelling the call cancels every outstanding provider job.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from providers.base import ImageProvider, ModelSpec
from providers.errors import ImageGenError, ProviderUnavailable
from providers.types import GeneratedImage, GenerationRequest
from server.images import InvalidImage, inspect_image
from server.results import Previews
from server.storage import Storage, StorageError, StoredImage

__all__ = ["Job", "JobOutcome", "Progress", "run_jobs", "split_count"]

log = logging.getLogger("easel.generation")


@dataclass(frozen=True)
class Job:
    spec: ModelSpec
    provider: ImageProvider
    request: GenerationRequest
    label: str = ""                          # e.g. "image 2 of 4" or "illustration 3"
    record: dict[str, Any] = field(default_factory=dict)   # extra metadata (tool, user prompt, inputs)


@dataclass
class JobOutcome:
    job: Job
    images: list[StoredImage] = field(default_factory=list)
    error: ImageGenError | None = None


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


async def run_jobs(jobs: list[Job], storage: Storage, progress: Progress, *,
                   max_pixels: int, previews: Previews | None = None) -> list[JobOutcome]:
    outcomes = [JobOutcome(job) for job in jobs]
    async with anyio.create_task_group() as tg:
        tg.start_soon(progress.heartbeat)
        async with anyio.create_task_group() as work:
            for outcome in outcomes:
                work.start_soon(_run_one, outcome, storage, progress, max_pixels, previews)
        tg.cancel_scope.cancel()
    if any(o.images for o in outcomes):
        await progress.announce_new_images()
    return outcomes


async def _run_one(outcome: JobOutcome, storage: Storage, progress: Progress, max_pixels: int,
                   previews: Previews | None) -> None:
    job = outcome.job
    prefix = f"{job.label}: " if job.label else ""

    async def report(message: str) -> None:
        await progress.send(prefix + message)

    try:
        images = await job.provider.generate(job.spec, job.request, report)
        for image in images:
            stored = await store_generated(image, job, storage, max_pixels=max_pixels, previews=previews)
            outcome.images.append(stored)
            await progress.image_done(f"{prefix}stored {stored.image_id}")
    except ImageGenError as exc:
        outcome.error = exc
        await progress.send(f"{prefix}failed: {exc}")
    except Exception as exc:  # a bug or an unmapped SDK error: log it, report it without details
        log.exception("unexpected error in %s job", job.spec.provider)
        outcome.error = ProviderUnavailable(
            f"Unexpected error while generating with {job.spec.name} ({type(exc).__name__}); "
            "see the server log.", provider=job.spec.provider)


async def store_generated(image: GeneratedImage, job: Job, storage: Storage, *,
                          max_pixels: int, previews: Previews | None = None) -> StoredImage:
    """Check the bytes are a usable image, then store them (and make the preview meanwhile)."""
    try:
        info = inspect_image(image.data, max_pixels=max_pixels)
    except InvalidImage as exc:
        raise ProviderUnavailable(f"{job.spec.name} returned something that is not a usable image: {exc}.",
                                  provider=image.provider, job_id=image.prediction_id) from None
    metadata = {
        "width": info.width, "height": info.height,
        "prompt": image.prompt_sent, "model": job.spec.name, "provider": image.provider,
        "provider_model": image.provider_model, "parameters": image.parameters, "seed": image.seed,
        "prediction_id": image.prediction_id, **job.record,
    }
    return await store_output(image.data, info.mime_type, metadata, storage, previews=previews,
                              provider=image.provider, job_id=image.prediction_id, source_url=image.source_url)


async def store_output(data: bytes, mime_type: str, metadata: dict[str, Any], storage: Storage, *,
                       previews: Previews | None, provider: str, job_id: str | None,
                       source_url: str | None) -> StoredImage:
    """Store one paid-for image (its preview made meanwhile), the one store path of every tool.

    When the store fails (disk full, bucket down and no fallback), the error says where the
    image still is: the provider's temporary link, so what was paid for is not lost."""
    put = functools.partial(storage.put, data, mime_type, metadata)
    try:
        return await (put() if previews is None else previews.store(data, put))
    except StorageError as exc:
        where = (f" It is still at the provider's temporary link for a limited time; download it from there: "
                 f"{source_url}" if source_url else " The provider sent it inline, so no other copy exists.")
        raise ProviderUnavailable(f"The image was generated but could not be stored: {exc}{where}",
                                  provider=provider, job_id=job_id) from None
