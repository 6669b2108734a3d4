"""Submit, then poll: the task loop of vendors whose jobs are asynchronous (private).

ModelScope and DashScope both create a task with one POST and report its state on
GET; only the words and shapes differ, and those stay in their own modules. This
module owns the mechanics:

* the overall deadline (``anyio.fail_after(config.timeout)``) -> ``GenerationTimeout``
  naming the task id;
* the poll interval, from ``config.poll_interval`` growing by half each poll up to
  ``config.poll_max``;
* progress on every state change;
* bounded retries (``config.max_retries``) with exponential backoff and jitter;
* cancelling the vendor task, when the vendor can, on cancellation or timeout: the
  submit request is shielded so a cancelled call still learns the id it must cancel,
  and the cancel request itself is shielded and bounded.

Retry policy (Ideogram's single POST uses it too):

* idempotent calls (polls): 429, 5xx and any transport error;
* creating calls (POST): 429, 5xx and transport errors raised before the request was
  sent (connect errors). A connection dropped after sending may have created a paid
  job, so that is not retried.

The first retry waits about ``config.extra["retry_base"]`` seconds (default 0.5),
each later one twice as long, never longer than ``config.retry_cap``; a vendor's
Retry-After wins.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from providers._http import backoff_delay, with_retries
from providers.base import ProviderConfig
from providers.errors import GenerationTimeout, ProviderError, ProviderUnavailable, RateLimited
from providers.types import ProgressFn

__all__ = ["TaskState", "http_timeout", "retry_policy", "run_task"]

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class TaskState:
    """One poll's answer: the vendor's status word (for progress), whether it is final,
    and the reply the vendor module reads results or errors from."""

    status: str
    terminal: bool
    body: Any = None


def http_timeout(config: ProviderConfig) -> httpx.Timeout:
    """Per-request timeouts no longer than the job's: a stalled host cannot outlive it."""
    wait = min(30.0, config.timeout)
    return httpx.Timeout(wait, connect=min(10.0, wait))


def retry_policy(config: ProviderConfig, *, creating: bool) -> Callable[[ProviderError, int], float | None]:
    """A ``with_retries`` policy: seconds to wait before retry number ``n`` (from 0), or None."""
    base = float(config.extra.get("retry_base", 0.5))

    def delay(exc: ProviderError, n: int) -> float | None:
        if isinstance(exc, RateLimited):
            return exc.retry_after if exc.retry_after is not None else backoff_delay(
                n, base=base, cap=config.retry_cap)
        if not isinstance(exc, ProviderUnavailable):
            return None
        if creating and not (exc.status is not None and exc.status >= 500) \
                and not isinstance(exc.__cause__, _NOT_SENT):
            return None  # the request went out: the job may exist, and a retry could pay twice
        return backoff_delay(n, base=base, cap=config.retry_cap)

    return delay


async def run_task(*, provider: str, vendor: str, config: ProviderConfig,
                   submit: Callable[[], Awaitable[str]], poll: Callable[[str], Awaitable[TaskState]],
                   cancel: Callable[[str], Awaitable[None]] | None,
                   progress: ProgressFn) -> tuple[str, TaskState]:
    """Submit a task, poll it to a terminal state, return (task id, final state).

    ``provider`` is the registry name, ``vendor`` the display name used in messages.
    ``cancel`` is None for vendors that cannot cancel a task; then a cancelled or
    timed-out call just stops polling.
    """
    created: list[str] = []
    state: TaskState | None = None

    async def submit_once() -> str:
        if cancel is None:
            created.append(await submit())
            return created[-1]
        with anyio.CancelScope(shield=True), anyio.move_on_after(config.timeout):
            created.append(await submit())
            return created[-1]
        raise ProviderUnavailable(f"{vendor} did not answer the submit request in time.", provider=provider)

    try:
        with anyio.fail_after(config.timeout):
            task_id = await with_retries(submit_once, retries=config.max_retries, cap=config.retry_cap,
                                         retryable=retry_policy(config, creating=True))
            await progress(f"{vendor} task {task_id} submitted")
            delay = config.poll_interval
            last = ""
            while True:
                await anyio.sleep(delay)
                delay = min(config.poll_max, delay * 1.5)
                state = await with_retries(lambda: poll(task_id), retries=config.max_retries,
                                           cap=config.retry_cap, retryable=retry_policy(config, creating=False))
                if state.status != last:
                    last = state.status
                    await progress(f"{vendor} task {task_id} {state.status}")
                if state.terminal:
                    return task_id, state
    except TimeoutError:
        task_id = created[0] if created else None
        canceled = await _cancel_quietly(cancel, task_id)
        after = ("" if not task_id else " and was canceled" if canceled else
                 f"; {vendor} cannot cancel tasks, so it may still finish" if cancel is None else
                 "; it could not be canceled (it had already started), so it may still finish")
        raise GenerationTimeout(
            f"{vendor} task {task_id or '(not created)'} did not finish within {config.timeout:g} s{after}. "
            "Try again, or raise EASEL_TIMEOUT.", provider=provider, job_id=task_id) from None
    except BaseException:
        if created and (state is None or not state.terminal):
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
