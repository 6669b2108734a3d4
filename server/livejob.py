"""One job this process runs (``LiveJob``): its record written on every change, its cancel scope, its answer.

``server.jobbook.JobBook`` makes one per call (or per job it resumes) and keeps them; a live job needs from
its book only the shared store, the book's owner id and a way to announce that the job ended (``Book``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import anyio
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent

from providers.errors import ImageGenError
from server.job_records import (
    CANCELLED,
    FAILED,
    JobRecord,
    answer_context,
    cancel_key,
    job_status,
    record_key,
    running_key,
    with_job,
)
from server.jobs import ANSWERS, Job, WorkOutcome, error_record, finished_of
from server.storage import StorageError, StoredImage, now_iso

if TYPE_CHECKING:
    from server.storage.docs import DocStore

__all__ = ["Body", "Book", "LiveJob"]

log = logging.getLogger("easel.jobs")


class Book(Protocol):
    """What a live job needs from the book that runs it (``server.jobbook.JobBook``)."""

    docs: DocStore
    owner: str

    async def announce(self, job_id: str, *, new_images: bool) -> None: ...


Body = Callable[[Job, list[WorkOutcome]], Awaitable[CallToolResult]]


class LiveJob:
    """A job this process runs: its record (written on every change), its cancel scope, its answer."""

    def __init__(self, book: Book, record: JobRecord, job: Job, outcomes: list[WorkOutcome]) -> None:
        self.book, self.record, self.job, self.outcomes = book, record, job, outcomes
        job.listener = self
        self.scope = anyio.CancelScope()
        self.ended = anyio.Event()
        self.result: CallToolResult | None = None
        self.error: BaseException | None = None
        self.detached = False
        self.ending = False
        self.written = False        # the record (and its running mark) is in the store
        self.durable = False        # ... and fsynced, as it is from the moment the call answers with a handle
        self.lost = False           # another process claimed the job: stop writing its record
        self.cleared = False        # its end deleted the record (or its mark): a later write must not bring it back
        self.handing_over = False   # the server is stopping: the next process on the store resumes the job
        self._lock = anyio.Lock()

    # -- the record ----------------------------------------------------------------------------
    async def save(self) -> None:
        """Write the record (the first time, also its running mark, so that it can be resumed).

        Until the call answers, the record is there for a process that dies (another one resumes the job),
        and it is deleted as the call answers in time: atomic, not fsynced. Once the call has answered with
        a handle, someone holds the job's id, and the record and its mark are fsynced (power cuts too)."""
        async with self._lock:
            if self.lost or self.cleared:
                return
            self.record.updated = now_iso()
            durable = self.detached
            docs = {record_key(self.record.id): self.record.model_dump_json().encode()}
            if not self.written or (durable and not self.durable):
                docs[running_key(self.record.id)] = self.book.owner.encode()
            try:
                await self.book.docs.write_many(docs, durable=durable)
                self.written = True
                self.durable = self.durable or durable
            except StorageError as exc:   # the job goes on; only another replica's view is stale
                log.warning("job %s: could not write its record: %s", self.record.id, exc)

    async def _note(self) -> None:
        """Save what a unit learnt, once anyone may ask for it: a job that has not answered yet is saved only
        when a task id is learnt (a resume then fetches that task again: free, the store deduplicates)."""
        if self.detached:
            await self.save()

    async def task(self, unit: int, task_id: str) -> None:
        ids = self.record.units[unit].task_ids
        if task_id not in ids:   # a resumed task reports its id again
            ids.append(task_id)
            await self.save()

    async def stored(self, unit: int, image: StoredImage) -> None:
        ids = self.record.units[unit].images
        if image.image_id not in ids:   # a resumed unit stores again what its task made: the same ids
            ids.append(image.image_id)
            self.record.done += 1
        await self._note()

    async def unit_ended(self, unit: int, error: ImageGenError | None) -> None:
        record = self.record.units[unit]
        record.finished = True
        if error is not None:
            record.error = error_record(record.label, error).model_dump(include={"kind", "message"})
        await self._note()

    # -- running -------------------------------------------------------------------------------
    async def run(self, body: Body) -> None:
        try:
            with self.scope:
                self.result = await body(self.job, self.outcomes)
        except Exception as exc:   # ToolError (nothing made) or a bug: the call or check_job reports it
            self.error = exc
            if not isinstance(exc, ToolError):
                log.exception("job %s (%s) failed", self.record.id, self.record.tool)
        finally:
            with anyio.CancelScope(shield=True):
                await self._end()

    async def _end(self) -> None:
        self.ending = True    # from here on the call waits for the end rather than answering with a handle
        r = self.record
        if self.handing_over and self.result is None and self.error is None:
            # stopped for a handover: the record stays running with every task id learnt meanwhile, and its
            # lease ends now, so the next process on the store resumes it at once
            if self.written:
                r.lease_until = 0
                await self.save()
            self.lost = True
            self.ended.set()
            return
        if self.result is not None:
            structured = self.result.structured_content or {}
            text = "\n".join(c.text for c in self.result.content if isinstance(c, TextContent))
            r.result = {"structured": structured, "text": text}
            r.done = max(r.done, len(structured.get("images") or []))
            r.status = job_status(r.done, len(structured.get("errors") or []))
        elif self.scope.cancel_called:
            r.status = CANCELLED
        else:
            r.status, r.error = FAILED, str(self.error or "the job ended without an answer")
        if self.detached and r.status != CANCELLED and await self._cancel_asked():
            r.status = CANCELLED   # cancel_job on another replica: its tasks ended "canceled" before we heard
        for unit in r.units:
            unit.finished = True
        r.ended = now_iso()
        keys = [running_key(r.id)]
        if not self.detached:   # answered in time: the call carries the result, nobody will ask for it by id
            keys.append(record_key(r.id))
            self.ended.set()    # so the call answers now; the clean-up below is off its path (and shielded)
        else:
            await self.save()
        async with self._lock:   # after a save in flight (a lease renewal), which would otherwise put it back
            if not self.lost and self.written:
                self.cleared = True
                try:
                    await self.book.docs.delete_many(keys)
                except StorageError as exc:
                    log.warning("job %s: could not delete its record: %s", r.id, exc)
        self.ended.set()
        if self.detached:
            await self.book.announce(r.id, new_images=r.done > 0)

    def cancel(self) -> None:
        self.scope.cancel()

    async def _cancel_asked(self) -> bool:
        try:
            return await self.book.docs.read(cancel_key(self.record.id)) is not None
        except StorageError:
            return False

    def abandon(self) -> None:
        """Another process claimed the job: stop waiting, leave the provider tasks running for it."""
        for hooks in self.job.hooks:
            hooks.leave_running = True
        self.lost = True   # the record is the new owner's now
        self.scope.cancel()

    def hand_over(self) -> None:
        """Shutting down: stop waiting and leave the provider tasks running. A create request already sent
        still answers (it is shielded: Replicate holds one up to EASEL_WAIT_WINDOW before it names its
        prediction) and its task id is recorded; then ``_end`` lets the lease lapse for the next process."""
        for hooks in self.job.hooks:
            hooks.leave_running = True
        self.handing_over = True
        self.scope.cancel()

    # -- answering -----------------------------------------------------------------------------
    def answer(self) -> CallToolResult:
        """The answer so far (or the final one), in the tool's own shape, with the job handle."""
        if self.result is not None:
            return with_job(self.result, self.record)
        finished = finished_of(self.outcomes, self.job.record)
        structured, text = ANSWERS[self.record.tool](answer_context(self.record), finished)
        return with_job(self.job.answer(structured, finished.images, text), self.record)
