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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import anyio
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import BaseModel

from providers.base import ImageProvider, ModelSpec, Price
from providers.errors import ImageGenError, ProviderUnavailable, RateLimited
from providers.types import GeneratedImage, GenerationRequest, OutputStream, TaskHooks
from server.images import InvalidImage, inspect_image
from server.ingest import SizedFields, ingest
from server.previews import Previews
from server.results import ErrorRecord, GenerateResult, ImageRecord, build_result, describe, image_record, total_cost
from server.spend import Booking, image_cost
from server.storage import Storage, StorageError, StoredImage

__all__ = ["ANSWERS", "Finished", "Job", "JobListener", "Progress", "RecordedError", "Work", "WorkOutcome",
           "RESUMES", "answers", "error_record", "finished_of", "images_answer", "resumes", "run_job", "split_count",
           "store_image"]

log = logging.getLogger("easel.jobs")


@dataclass(frozen=True)
class Work:
    """One unit of image work: one provider call asking for ``request.count`` images. ``provider`` is None
    only for work read back from a job record to answer for it (nothing is run then)."""

    spec: ModelSpec
    provider: ImageProvider | None
    request: GenerationRequest
    label: str = ""                          # e.g. "image 2 of 4" or "illustration 3"
    metadata: dict[str, Any] = field(default_factory=dict)   # stored with each image (tool, user prompt, …)


@dataclass
class WorkOutcome:
    work: Work
    images: list[StoredImage] = field(default_factory=list)
    error: ImageGenError | None = None
    task_id: str | None = None      # the provider's task, once known: a resumed unit fetches it instead
    finished: bool = False          # a resumed job skips units that already ended


class RecordedError(ImageGenError):
    """A unit's error as a job record keeps it (its kind and message), read back to answer for the job."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def error_record(item: str, error: ImageGenError) -> ErrorRecord:
    return ErrorRecord(item=item, kind=getattr(error, "kind", type(error).__name__), message=str(error))


class JobListener(Protocol):
    """Hears what a job's units learn, as it happens (server.jobbook keeps the job record with it)."""

    async def task(self, unit: int, task_id: str) -> None: ...
    async def stored(self, unit: int, image: StoredImage) -> None: ...
    async def unit_ended(self, unit: int, error: ImageGenError | None) -> None: ...


@dataclass
class Finished:
    """What a job's work came to: every outcome in order, the stored images, one error per failed unit,
    and each stored image's record as the result shows it."""

    outcomes: list[WorkOutcome]
    images: list[StoredImage]
    errors: list[ErrorRecord]
    records: list[ImageRecord]


def finished_of(outcomes: list[WorkOutcome], record: Callable[[StoredImage], ImageRecord]) -> Finished:
    """What the outcomes came to, so far or in the end."""
    images = [img for o in outcomes for img in o.images]
    errors = [error_record(o.work.label or o.work.spec.name, o.error) for o in outcomes if o.error is not None]
    return Finished(outcomes, images, errors, [record(i) for i in images])


#: How each tool answers from its job's outcomes: ``answer(context, finished) -> (structured, text)``, where
#: ``context`` is the JSON the tool put in the job record. Any process answers for any job with it (check_job
#: on another replica, a job resumed after its process died).
Answer = Callable[[dict[str, Any], Finished], tuple[BaseModel, str]]
ANSWERS: dict[str, Answer] = {}


def answers(tool: str) -> Callable[[Answer], Answer]:
    def register(fn: Answer) -> Answer:
        ANSWERS[tool] = fn
        return fn
    return register


#: How a tool whose work is not a list of ``Work`` (run_replicate_model) finishes a job another process
#: started, from its context and the provider task ids the record kept (``context["task_ids"]``).
Resume = Callable[["Job", dict[str, Any]], Awaitable[CallToolResult]]
RESUMES: dict[str, Resume] = {}


def resumes(tool: str) -> Callable[[Resume], Resume]:
    def register(fn: Resume) -> Resume:
        RESUMES[tool] = fn
        return fn
    return register


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

    def detach(self) -> None:
        self._ctx = None

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
            if self.done >= self.total:   # every image is stored: only the answer is left, no waiting to report
                continue
            elapsed = time.monotonic() - self._started
            await self.send(f"{self._last} ({elapsed:.0f}s elapsed)")


class Job:
    """One tool call as the user sees it: its progress, the previews made while its images were stored,
    and how a stored image is shown (a signed browser link over HTTP, from the application state).

    ``ctx`` is the request's context, None for a job resumed by another process; ``detach`` stops
    reporting to a request that has answered. ``listener`` (server.jobbook) hears task ids, stored
    images and errors as they happen, and ``hooks`` holds each unit's ``TaskHooks``. ``booking``
    (server.spend) is the call's estimate in the day's ledger, settled as each unit ends."""

    def __init__(self, ctx: Any, tool: str, total: int, *, state: Any = None,
                 listener: JobListener | None = None, booking: Booking | None = None) -> None:
        self.state = state if state is not None else ctx.request_context.lifespan_context
        self.tool = tool
        self.booking = booking   # the call's estimate in the day's ledger, settled as each unit ends
        settings = self.state.settings
        self.progress = Progress(ctx, total=total, interval=settings.calls.progress_interval)
        self.previews = Previews(settings)
        self.stored: list[StoredImage] = []   # in the order they were stored
        self.listener = listener
        self.hooks: list[TaskHooks] = []

    def detach(self) -> None:
        """The call has answered: progress and notifications have no request to go to any more."""
        self.progress.detach()

    async def run(self, outcomes: list[WorkOutcome], announce: str) -> Finished:
        """Run every unit at once, storing each image as it arrives. Raises ToolError when nothing was made."""
        finished = await self.run_units(outcomes, announce)
        if not finished.images and finished.errors:
            unique = list(dict.fromkeys(e.message for e in finished.errors))
            first = next(o.error for o in finished.outcomes if o.error is not None)   # the call log names its kind
            raise ToolError(unique[0] if len(unique) == 1 else f"{self.tool} failed: " + " | ".join(unique)) from first
        return finished

    async def run_units(self, outcomes: list[WorkOutcome], announce: str) -> Finished:
        """Run the units that have not finished (a resumed job fetches those with a task id) at once."""
        await self.progress.send(announce)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.progress.heartbeat)
            async with anyio.create_task_group() as units:
                for index, outcome in enumerate(outcomes):
                    if not outcome.finished:
                        units.start_soon(self._run_one, index, outcome)
            tg.cancel_scope.cancel()
        await self.announce()
        return finished_of(outcomes, self.record)

    async def store(self, data: bytes | OutputStream, metadata: dict[str, Any], *, provider: str,
                    task_id: str | None, source_url: str | None, price: Price | None) -> StoredImage:
        """Check ``data`` (bytes, or a download to read as it arrives) is a usable image (InvalidImage if
        not), then store it with its preview and what it cost at ``price`` (``cost_usd``, server.spend:
        a per-megapixel price is applied to the image's real size, known once its header is read)."""
        spend = self.state.settings.spend

        def cost(width: int, height: int) -> dict[str, Any]:
            return {"cost_usd": image_cost(price, width, height, spend)}

        stored = await store_image(data, metadata, self.state.storage, max_pixels=self.state.settings.calls.max_image_pixels,
                                   previews=self.previews, provider=provider, task_id=task_id, source_url=source_url,
                                   sized=cost)
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

    def task_hooks(self, unit: int) -> TaskHooks:
        """The hooks of one provider call: its task id goes to the listener the moment it is known."""
        async def on_task(task_id: str) -> None:
            if self.listener is not None:
                await self.listener.task(unit, task_id)

        hooks = TaskHooks(on_task=on_task)
        self.hooks.append(hooks)
        return hooks

    async def _run_one(self, index: int, outcome: WorkOutcome) -> None:
        work = outcome.work
        prefix = f"{work.label}: " if work.label else ""
        assert work.provider is not None, "a unit read back from a record is never run"

        async def report(message: str) -> None:
            await self.progress.send(prefix + message)

        hooks = self.task_hooks(index)
        try:
            if outcome.task_id is not None:   # resumed: fetch the task already paid for
                images = await work.provider.resume(work.spec, work.request, outcome.task_id, report, hooks,
                                                     stream=True)
            else:
                images = await work.provider.generate(work.spec, work.request, report, hooks, stream=True)
            for image in images:
                stored = await self._store_generated(image, work)
                outcome.images.append(stored)
                if self.listener is not None:
                    await self.listener.stored(index, stored)
                await self.progress.image_done(f"{prefix}stored {stored.image_id}")
        except ImageGenError as exc:
            outcome.error = exc
            await self.progress.send(f"{prefix}failed: {exc}")
        except Exception as exc:  # a bug or an unmapped SDK error: log it, report it without details
            log.exception("unexpected error in %s work", work.spec.provider)
            outcome.error = ProviderUnavailable(
                f"Unexpected error while generating with {work.spec.name} ({type(exc).__name__}); "
                "see the server log.", provider=work.spec.provider)
        if self.booking is not None:   # give back what a refused unit did not cost; re-book what was stored
            await self.booking.settle(index, costs=[i.metadata.get("cost_usd") for i in outcome.images],
                                      error=outcome.error)
        outcome.finished = True
        if self.listener is not None:
            await self.listener.unit_ended(index, outcome.error)

    async def _store_generated(self, image: GeneratedImage, work: Work) -> StoredImage:
        metadata = {
            "prompt": image.prompt_sent, "model": work.spec.name, "provider": image.provider,
            "provider_model": image.provider_model, "parameters": image.parameters, "seed": image.seed,
            "prediction_id": image.prediction_id, **work.metadata,
        }
        try:
            return await self.store(image.stream or image.data, metadata, provider=image.provider,
                                    task_id=image.prediction_id, source_url=image.source_url,
                                    price=work.spec.price)
        except InvalidImage as exc:
            raise ProviderUnavailable(f"{work.spec.name} returned something that is not a usable image: {exc}.",
                                      provider=image.provider, job_id=image.prediction_id) from None


async def run_job(ctx: Any, tool: str, work: list[Work], *, total: int, announce: str,
                  context: dict[str, Any], booking: Booking | None = None) -> CallToolResult:
    """The whole call: run ``work`` as one job, then the tool's answer (``ANSWERS[tool]``, given ``context``)
    gives the structured content and the text, and the result carries a resource link and a preview per
    stored image. A call still running after EASEL_RETURN_AFTER answers with a job handle instead
    (server.jobbook); its work goes on. ``booking`` (server.spend) is the call's estimate in the ledger,
    settled unit by unit."""
    async def body(job: Job, outcomes: list[WorkOutcome]) -> CallToolResult:
        finished = await job.run(outcomes, announce)
        structured, text = ANSWERS[tool](context, finished)
        return job.answer(structured, finished.images, text)

    book = ctx.request_context.lifespan_context.jobs
    return await book.call(ctx, tool, total=total, context=context, work=work, body=body,
                           booking=booking)


def images_answer(finished: Finished, summary: str) -> tuple[GenerateResult, str]:
    """The answer of a tool whose result is just its images: GenerateResult, described in full."""
    result = GenerateResult(images=finished.records, errors=finished.errors,
                            cost_usd=total_cost([r.cost_usd for r in finished.records]))
    return result, describe(summary, images=result.images, errors=result.errors)


async def store_image(data: bytes | OutputStream, metadata: dict[str, Any], storage: Storage, *,
                      max_pixels: int, previews: Previews | None, provider: str, task_id: str | None,
                      source_url: str | None, sized: SizedFields | None = None) -> StoredImage:
    """Check the bytes are a usable image (InvalidImage if not), then store one paid-for image, its preview
    made meanwhile: the one store path of every tool. A download (``OutputStream``) is checked,
    stored and previewed as its bytes arrive (server.ingest). ``sized(width, height)`` adds the
    metadata that depends on the image's pixel size (its cost at a per-megapixel price).

    When the store fails (disk full, bucket down and no fallback), or the download does, the error
    says where the image still is: the provider's temporary link, so what was paid for is not lost."""
    where = (f" It is still at the provider's temporary link for a limited time; download it from there: "
             f"{source_url}" if source_url else " The provider sent it inline, so no other copy exists.")
    try:
        if callable(data):
            return await ingest(data, metadata, storage, max_pixels=max_pixels, previews=previews, sized=sized)
        info = inspect_image(data, max_pixels=max_pixels)
        put = functools.partial(storage.put, data, info.mime_type, {
            "width": info.width, "height": info.height, **metadata,
            **(sized(info.width, info.height) if sized else {})})
        return await (put() if previews is None else previews.store(data, put))
    except (ProviderUnavailable, RateLimited) as exc:   # a download that failed after its retries
        if not source_url:
            raise
        raise ProviderUnavailable(f"The image was generated but {exc}{where}", provider=provider,
                                  job_id=task_id) from None
    except StorageError as exc:
        raise ProviderUnavailable(f"The image was generated but could not be stored: {exc}{where}",
                                  provider=provider, job_id=task_id) from None
