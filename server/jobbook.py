"""Jobs that outlive a call: the record in the store, the lease, check, cancel, resume (docs/jobs.md).

Every image call runs as a job owned by the server's lifespan, not by the request: the request
waits for it up to EASEL_RETURN_AFTER seconds and then answers with what is stored so far and a
job handle, while the work goes on. Cancelling the request before it answered still cancels the
job (and its provider tasks), as before.

The job record (server.job_records, in the shared document store ``AppState.docs``) is written on
every change. Any replica answers ``check_job`` from it; the owner answers from memory.

The owner renews its lease every EASEL_JOB_RENEW seconds. A job whose lease has expired (its
process died) is claimed by whichever process first *creates* ``jobs/<id>/claim-<epoch>``: the
store's one exclusive operation, since neither backend can compare-and-swap a replace. The new
owner fetches each unfinished unit's task by id (``ImageProvider.resume``: nothing is paid
twice), stores its images and finishes the record. A unit without a task id (its process died
before the vendor answered the create request) is marked failed, never resubmitted: the task may
exist and be paid for, and resubmitting would pay again. An owner that finds a later claim than
its own has lost the job and stops writing.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp.types import CallToolResult

from providers import all_specs
from providers.errors import ImageGenError
from server.job_records import (
    CANCELLED,
    RUNNING,
    RUNNING_PREFIX,
    JobRecord,
    UnitRecord,
    answer_context,
    cancel_key,
    claim_key,
    job_uri,
    load_record,
    record_key,
    request_of,
    running_key,
    units_of,
    with_job,
)
from server.jobs import ANSWERS, RESUMES, Job, RecordedError, Work, WorkOutcome, finished_of
from server.livejob import Body, LiveJob
from server.previews import Previews
from server.results import ImageRecord, build_result, image_record
from server.storage import StorageError, StoredImage, now_iso

if TYPE_CHECKING:
    from mcp.server.subscriptions import SubscriptionBus

    from server.spend import Booking
    from server.state import AppState

__all__ = ["CALL_STARTED", "JobBook"]

log = logging.getLogger("easel.jobs")

#: When the tool call being served started (time.monotonic(); set by the server for each call). The host's
#: timer runs from then, so EASEL_RETURN_AFTER does too: reference downloads, a scene-writing model or a
#: handshake-era spend question before the job starts all count.
CALL_STARTED: ContextVar[float | None] = ContextVar("easel_call_started", default=None)

class JobBook:
    """This process's jobs: runs them in the lifespan's task group, keeps their records and leases, answers
    and cancels any job by id, and resumes orphans (``serve``)."""

    def __init__(self, state: AppState, bus: SubscriptionBus | None = None) -> None:
        self.state = state
        self.docs = state.docs
        self.settings = state.settings.jobs
        self.owner = uuid.uuid4().hex
        self.live: dict[str, LiveJob] = {}
        self.bus = bus
        self.sessions: dict[str, set[Any]] = {}   # job URI -> handshake-era sessions subscribed to it
        self._tg: anyio.abc.TaskGroup | None = None
        self.stopping = False   # shutting down: hand jobs over, adopt none

    # -- the lifespan ----------------------------------------------------------------------------
    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the jobs' task group; renew leases and adopt orphans every EASEL_JOB_RENEW seconds."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            while True:
                await self._renew()
                if not self.stopping:   # a job this process hands over must not come back to it
                    await self._adopt_orphans()
                await anyio.sleep(self.settings.renew)

    async def shutdown(self) -> None:
        """Hand running jobs over: their provider tasks keep running, their leases lapse once every task id
        a create request still in flight names is recorded, and the next process on this store resumes them.
        The caller bounds the wait; a job still waiting on its create then hands over when that answers."""
        self.stopping = True
        handing = [live for live in self.live.values() if not live.ended.is_set() and not live.lost]
        for live in handing:
            live.hand_over()
        for live in handing:
            await live.ended.wait()

    # -- a call ------------------------------------------------------------------------------------
    async def call(self, ctx: Any, tool: str, *, total: int, context: dict[str, Any], body: Body,
                   work: list[Work] | None = None, units: list[UnitRecord] | None = None,
                   booking: Booking | None = None) -> CallToolResult:
        """Run ``body`` as a job; answer with its result, or with a job handle once EASEL_RETURN_AFTER passes.
        ``body`` gets one outcome per unit of ``work``; a tool that runs no ``Work`` describes its ``units``.
        ``booking`` (server.spend) is the call's estimate in the day's ledger, settled as its units end."""
        outcomes = [WorkOutcome(w) for w in work or []]
        units = units if units is not None else units_of(work or [])
        assert self._tg is not None, "JobBook.serve runs in the lifespan"
        now = now_iso()
        record = JobRecord(id=uuid.uuid4().hex, tool=tool, created=now, updated=now, total=total, owner=self.owner,
                           lease_until=time.time() + self.settings.lease, context=context, units=units)
        live = LiveJob(self, record, Job(ctx, tool, total, booking=booking), outcomes)   # saved once a task id is known
        self.live[record.id] = live
        self._tg.start_soon(live.run, body)
        try:
            with anyio.move_on_after(self._return_after()):
                await live.ended.wait()
            if live.ending:   # its work is done; only the record's clean-up is left
                await live.ended.wait()
        except anyio.get_cancelled_exc_class():
            # the call was cancelled before it answered: cancel everything, as a call always did
            with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                live.cancel()
                await live.ended.wait()
            raise
        if live.ended.is_set():
            if live.result is None:
                raise live.error or ToolError(f"{tool} was cancelled.")
            return live.result            # finished in time: the answer is exactly the tool's own
        live.detached = True
        live.job.detach()
        await live.save()                 # from now on anyone may ask for it by id
        return live.answer()

    def _return_after(self) -> float:
        """Seconds this call may still wait before it answers with a job handle: EASEL_RETURN_AFTER from the
        call's start (``CALL_STARTED``), not from the job's."""
        if not self.settings.return_after:
            return math.inf
        started = CALL_STARTED.get()
        spent = time.monotonic() - started if started is not None else 0.0
        return max(0.0, self.settings.return_after - spent)

    # -- check and cancel ------------------------------------------------------------------------------
    async def load(self, job_id: str) -> JobRecord | None:
        if job_id in self.live:
            return self.live[job_id].record
        return await load_record(self.docs, job_id)

    async def check(self, job_id: str, wait: float) -> CallToolResult:
        """The job's answer after waiting up to ``wait`` seconds for it to end."""
        deadline = time.monotonic() + wait
        while True:
            live = self.live.get(job_id)
            if live is not None and not live.lost:
                with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                    await live.ended.wait()
                return live.answer()
            record = await self.load(job_id)
            if record is None:
                raise ToolError(f"job_id: no job {job_id!r} on this server (jobs are kept in its store).")
            if record.status != RUNNING or time.monotonic() >= deadline:
                return await self._answer_from(record)
            await anyio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))   # another replica runs it

    async def cancel(self, job_id: str) -> CallToolResult:
        live = self.live.get(job_id)
        if live is not None and not live.lost:
            if not live.ended.is_set():
                live.cancel()
                with anyio.move_on_after(30):
                    await live.ended.wait()
            return live.answer()
        record = await self.load(job_id)
        if record is None:
            raise ToolError(f"job_id: no job {job_id!r} on this server (jobs are kept in its store).")
        if record.status == RUNNING:   # another process runs it: cancel its tasks, then tell it (or take it over)
            await self.docs.write(cancel_key(job_id), self.owner.encode())   # first: the owner reads it at its end
            await self._cancel_tasks(record)
            if record.lease_until < time.time() and await self._claim(record):
                await self._end_cancelled(record)
        return await self._answer_from(record)

    async def _cancel_tasks(self, record: JobRecord) -> None:
        for unit in record.units:
            if unit.finished or not unit.task_ids:
                continue
            try:
                await self.state.registry.provider(unit.provider).cancel_task(unit.task_ids[-1])
            except ImageGenError as exc:
                log.warning("job %s: could not cancel %s task %s: %s", record.id, unit.provider, unit.task_ids[-1], exc)

    async def _end_cancelled(self, record: JobRecord) -> None:
        record.status, record.ended, record.updated = CANCELLED, now_iso(), now_iso()
        await self.docs.write(record_key(record.id), record.model_dump_json().encode())
        await self.docs.delete(running_key(record.id))
        await self.announce(record.id, new_images=False)

    async def _answer_from(self, record: JobRecord) -> CallToolResult:
        """Any process's answer for a job it does not run, from the record and the stored images."""
        storage = self.state.storage
        ids = [i for u in record.units for i in u.images]
        images = [await _stored(storage, i) for i in ids]
        previews = Previews(self.state.settings)
        for image in images:
            await previews.add(image.image_id, (await storage.get(image.image_id))[0])
        if record.result is not None:
            structured, text = dict(record.result.get("structured") or {}), str(record.result.get("text", ""))
        else:
            outcomes = await self._outcomes(record, images, runnable=False)
            finished = finished_of(outcomes, lambda s: _record_of(s, self.state))
            model, text = ANSWERS[record.tool](answer_context(record), finished)
            structured = model.model_dump()
        return with_job(build_result(structured, images, previews.made, text), record)

    async def _outcomes(self, record: JobRecord, images: list[StoredImage], *, runnable: bool) -> list[WorkOutcome]:
        """The record's units as outcomes: to answer from (``runnable`` False), or to resume. A resumed unit
        fetches its task again (storing its images again costs nothing: the store deduplicates); a unit
        that never learnt its task id is not resubmitted (it may exist and be paid for)."""
        by_id = {s.image_id: s for s in images}
        outcomes = []
        for unit in record.units:
            spec = next((s for s in all_specs() if s.provider == unit.provider and s.name == unit.model), None)
            if spec is None:   # run_replicate_model: no catalog model, nothing to rebuild
                continue
            if runnable and not unit.finished and not unit.task_ids:
                unit.finished, unit.error = True, {"kind": "NotResubmitted", "message": (
                    "the server running this job stopped before the provider confirmed the request; it was not "
                    "sent again, so it is not paid for twice. Call the tool again for this image.")}
            provider = self.state.registry.provider(unit.provider) if runnable and not unit.finished else None
            kept = unit.finished or not runnable
            outcome = WorkOutcome(Work(spec, provider, request_of(unit.request), unit.label, unit.metadata),
                                  images=[by_id[i] for i in unit.images if i in by_id] if kept else [],
                                  task_id=unit.task_ids[-1] if unit.task_ids else None, finished=unit.finished)
            if unit.error is not None:
                outcome.error = RecordedError(unit.error.get("kind", "Error"), unit.error.get("message", ""))
            outcomes.append(outcome)
        return outcomes

    # -- leases and orphans --------------------------------------------------------------------------
    async def _renew(self) -> None:
        for job_id, live in list(self.live.items()):
            if live.ended.is_set() or live.lost:   # its record has the rest; check_job reads it from there
                self.live.pop(job_id, None)
                continue
            if not live.written:                   # no task yet: nothing to resume, nobody holds its id
                continue
            try:
                if await self.docs.read(claim_key(job_id, live.record.epoch + 1)) is not None:
                    log.warning("job %s was claimed by another process; this one stops", job_id)
                    live.abandon()   # its tasks are the new owner's now: stop waiting, do not cancel them
                    continue
                if await self.docs.read(cancel_key(job_id)) is not None:
                    live.cancel()
                    continue
            except StorageError as exc:
                log.warning("job %s: could not check its claims: %s", job_id, exc)
            if live.ending or live.lost:   # ended (or handed over) while we looked: its lease is settled
                continue
            live.record.lease_until = time.time() + self.settings.lease
            await live.save()

    async def _claim(self, record: JobRecord) -> bool:
        """Take over a job whose owner's lease has expired: only one process creates the next claim."""
        if not await self.docs.create(claim_key(record.id, record.epoch + 1), self.owner.encode()):
            return False
        record.epoch += 1
        record.owner = self.owner
        record.lease_until = time.time() + self.settings.lease
        return True

    async def _adopt_orphans(self) -> None:
        try:
            keys = await self.docs.list(RUNNING_PREFIX)
        except StorageError as exc:
            log.warning("could not list running jobs: %s", exc)
            return
        for key in keys:
            job_id = key.rsplit("/", 1)[-1]
            if job_id in self.live:
                continue
            try:
                await self._adopt(job_id)
            except StorageError as exc:
                log.warning("job %s: could not resume it: %s", job_id, exc)

    async def _adopt(self, job_id: str) -> None:
        record = await self.load(job_id)
        if record is None or record.status != RUNNING:
            await self.docs.delete(running_key(job_id))   # ended, or its record never got written
            return
        if record.lease_until > time.time() or not await self._claim(record):
            return
        log.warning("resuming job %s (%s): its process stopped renewing its lease", job_id, record.tool)
        if await self.docs.read(cancel_key(job_id)) is not None:
            await self._cancel_tasks(record)
            await self._end_cancelled(record)
            return
        images = [await _stored(self.state.storage, i) for u in record.units for i in u.images]
        try:
            outcomes = await self._outcomes(record, images, runnable=True)
        except ImageGenError as exc:   # e.g. this process has no key for the provider
            outcomes, record.error = [], f"could not resume: {exc}"
        job = Job(None, record.tool, record.total, state=self.state)
        live = LiveJob(self, record, job, outcomes)
        live.detached = live.written = True
        self.live[job_id] = live
        await live.save()

        context = answer_context(record)
        resume = RESUMES.get(record.tool)

        async def body(job: Job, outcomes: list[WorkOutcome]) -> CallToolResult:
            if resume is not None and context["task_ids"]:
                return await resume(job, context)
            if not outcomes:
                raise ToolError(record.error or "the server running it stopped before the provider confirmed the "
                                "request; it was not sent again, so it is not paid for twice. Call the tool again.")
            finished = await job.run_units(outcomes, f"resuming job {job_id}")
            structured, text = ANSWERS[record.tool](context, finished)
            return job.answer(structured, finished.images, text)

        assert self._tg is not None
        self._tg.start_soon(live.run, body)

    # -- notifications ---------------------------------------------------------------------------------
    async def announce(self, job_id: str, *, new_images: bool) -> None:
        """``resources/updated`` for the job's URI to its subscribers, in both protocol eras (and the resource
        list changed when a detached job stored images nobody was told of). Best effort."""
        uri = job_uri(job_id)
        events: list[Any] = [ResourceUpdated(uri=uri)] + ([ResourcesListChanged()] if new_images else [])
        if self.bus is not None:
            for event in events:
                try:
                    await self.bus.publish(event)
                except Exception:
                    log.debug("subscription event not published", exc_info=True)
        for session in self.sessions.pop(uri, set()):   # a job ends once
            try:
                await session.send_resource_updated(uri)
            except Exception:   # the client went away
                log.debug("resources/updated not delivered", exc_info=True)


async def _stored(storage: Any, image_id: str) -> StoredImage:
    m = await storage.metadata(image_id)
    return StoredImage(image_id, str(m.get("mime_type", "")), int(m.get("bytes") or 0), str(m.get("sha256", "")), m,
                       storage.url_for(image_id), storage.kind)


def _record_of(stored: StoredImage, state: AppState) -> ImageRecord:
    return image_record(stored, state.links)
