"""Submit, then poll: the job loop of vendors whose jobs are asynchronous (private).

Replicate (predictions), ModelScope and DashScope (tasks) all create a job with one
POST and report its state on GET; only the words and shapes differ, and those stay in
their own modules. A submit may already answer with a finished job (Replicate's
``Prefer: wait``); then nothing is polled. This module owns the mechanics:

* the overall deadline (``anyio.fail_after(config.timeout)``) -> ``GenerationTimeout``
  naming the task id;
* the poll interval, from ``config.poll_interval`` growing by half each poll up to
  ``config.poll_max``;
* progress on every state change;
* bounded retries (``config.max_retries``) with exponential backoff and jitter;
* cancelling the vendor task, when the vendor can, on cancellation or timeout: the
  submit request is shielded so a cancelled call still learns the id it must cancel,
  and the cancel request itself is shielded and bounded.

Retries follow ``config.retry`` (``providers/retry.py``, the one policy): polls as
idempotent calls (429, 5xx, any transport error), the submit as a creating call (429,
5xx, and transport errors raised before the request was sent: a connection dropped
after sending may have created a paid job). Retry number n waits between half and all
of ``config.retry_base * 2**n`` seconds (EASEL_RETRY_BASE, default 0.5), never longer
than ``config.retry_cap``; a vendor's Retry-After wins.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from providers.base import ProviderConfig
from providers.errors import GenerationTimeout, ProviderError, ProviderUnavailable
from providers.types import ProgressFn, TaskHooks

__all__ = ["SUBMITTED", "TaskState", "http_timeout", "run_task"]


@dataclass(frozen=True, slots=True)
class TaskState:
    """One poll's answer: the vendor's status word (for progress), whether it is final,
    and the reply the vendor module reads results or errors from."""

    status: str
    terminal: bool
    body: Any = None


#: What a submit that only returns an id knows of its job.
SUBMITTED = TaskState("submitted", terminal=False)


def http_timeout(config: ProviderConfig) -> httpx.Timeout:
    """Per-request timeouts no longer than the job's: a stalled host cannot outlive it."""
    wait = min(30.0, config.timeout)
    return httpx.Timeout(wait, connect=min(10.0, wait))


RetryDelay = Callable[[ProviderError, int], float | None]


async def run_task(*, provider: str, vendor: str, config: ProviderConfig,
                   submit: Callable[[], Awaitable[tuple[str, TaskState]]],
                   poll: Callable[[str], Awaitable[TaskState]],
                   cancel: Callable[[str], Awaitable[None]] | None,
                   progress: ProgressFn, noun: str = "task",
                   submit_retry: RetryDelay | None = None, submit_deadline: float | None = None,
                   poll_retries: bool = True, hooks: TaskHooks | None = None) -> tuple[str, TaskState]:
    """Submit a job, poll it to a terminal state, return (job id, final state).

    ``provider`` is the registry name; ``vendor`` and ``noun`` name the job in messages
    ("DashScope task …", "Replicate prediction …"). ``submit`` returns the id and what
    the vendor said of the job (``SUBMITTED`` when it says nothing). ``cancel`` is None
    for vendors that cannot cancel; then a cancelled or timed-out call just stops polling.
    ``submit_retry`` replaces the default policy for the POST, ``submit_deadline`` bounds
    one shielded submit (default: the whole timeout), and ``poll_retries=False`` leaves
    retrying polls to the vendor's SDK. ``hooks.on_task`` hears the id once the submit answered (still
    shielded, so a cancelled call records it too); ``hooks.leave_running`` skips the vendor cancel
    when the call is cancelled (a resume elsewhere will fetch the task). To resume a task by id, pass
    a ``submit`` that fetches it.
    """
    created: list[str] = []
    state: TaskState | None = None

    async def submitted() -> tuple[str, TaskState]:
        answer = await submit()
        created.append(answer[0])
        if hooks is not None and hooks.on_task is not None:
            await hooks.on_task(answer[0])
        return answer

    async def submit_once() -> tuple[str, TaskState]:
        if cancel is None:
            return await submitted()
        # Once the request is sent a job may exist: finish the request even if the call is
        # cancelled, so the id that must be cancelled is known. Backoff sleeps between
        # attempts stay cancellable: nothing exists yet to clean up.
        with anyio.CancelScope(shield=True), anyio.move_on_after(submit_deadline or config.timeout):
            return await submitted()
        raise ProviderUnavailable(f"{vendor} did not answer the submit request in time.", provider=provider)

    async def poll_once(job_id: str) -> TaskState:
        if not poll_retries:
            return await poll(job_id)
        return await config.retry.run(lambda: poll(job_id), delay=config.retry.idempotent)

    try:
        with anyio.fail_after(config.timeout):
            job_id, first = await config.retry.run(submit_once, delay=submit_retry or config.retry.creating)
            state = first
            await progress(f"{vendor} {noun} {job_id} {state.status}")
            delay = config.poll_interval
            last = state.status
            while not state.terminal:
                await anyio.sleep(delay)
                delay = min(config.poll_max, delay * 1.5)
                state = await poll_once(job_id)
                if state.status != last:
                    last = state.status
                    await progress(f"{vendor} {noun} {job_id} {state.status}")
            return job_id, state
    except TimeoutError:
        pending = created[0] if created else None
        canceled = await _cancel_quietly(cancel, pending)
        after = ("" if not pending else " and was canceled" if canceled else
                 f"; {vendor} cannot cancel {noun}s, so it may still finish" if cancel is None else
                 "; it could not be canceled (it had already started), so it may still finish")
        raise GenerationTimeout(
            f"{vendor} {noun} {pending or '(not created)'} did not finish within {config.timeout:g} s{after}. "
            "Try again, or raise EASEL_TIMEOUT.", provider=provider, job_id=pending) from None
    except BaseException:
        if created and (state is None or not state.terminal) and not (hooks is not None and hooks.leave_running):
            await _cancel_quietly(cancel, created[0])
        raise


async def _cancel_quietly(cancel: Callable[[str], Awaitable[None]] | None, task_id: str | None) -> bool:
    """Ask the vendor to cancel; never raises, never takes more than 10 s."""
    if cancel is None or not task_id:
        return False
    with anyio.CancelScope(shield=True), anyio.move_on_after(10):
        try:
            await cancel(task_id)
            return True
        except ProviderError:
            return False
    return False
