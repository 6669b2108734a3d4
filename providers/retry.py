"""One retry policy for every call that may be tried again: vendor API calls (``providers._polling``,
Ideogram's POST, Replicate's create), output downloads (``providers._http``) and OSS requests
(``server/storage/oss.py``).

Retry number n (from 0) waits between half and all of ``min(cap, base * 2**n)`` seconds ("equal
jitter": half fixed so a retry never fires at once, half random so clients that failed together
do not retry together). A caller's ``delay`` function decides, per error, whether to retry and
may ask for its own wait (a vendor's Retry-After); a wait longer than ``cap`` is not slept
through: the error is raised at once so the caller learns how long the vendor wants.

Why not stamina or tenacity: both are well kept, but what varies here is the *decision* per
error (Retry-After, "was the POST sent?", 4xx never), which either library takes as callbacks
anyway, and tenacity sleeps with asyncio while we run on anyio. The loop itself is a dozen lines;
keeping it here keeps one formula and one place to read it.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx

from providers.errors import ProviderError, ProviderUnavailable, RateLimited

__all__ = ["RetryPolicy"]

T = TypeVar("T")

#: Transport errors raised before a request was sent: retrying them cannot pay twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 3        # tries after the first
    base: float = 0.5       # first retry's wait, seconds (doubles each retry)
    cap: float = 30.0       # longest single wait

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The jittered wait before retry number ``attempt`` (from 0)."""
        upper = min(self.cap, self.base * (2 ** attempt))
        return (rng or random).uniform(upper / 2, upper)

    def idempotent(self, exc: ProviderError, attempt: int) -> float | None:
        """For calls that may safely run twice (polls, downloads): 429 (honouring Retry-After), 5xx and
        any transport error."""
        if isinstance(exc, RateLimited):
            return exc.retry_after if exc.retry_after is not None else self.backoff(attempt)
        if isinstance(exc, ProviderUnavailable):
            return self.backoff(attempt)
        return None

    def creating(self, exc: ProviderError, attempt: int) -> float | None:
        """For a POST that creates a paid job: 429, 5xx, and transport errors raised before the request
        was sent. A connection dropped after sending may have created the job: not retried."""
        if isinstance(exc, ProviderUnavailable) and not (exc.status is not None and exc.status >= 500) \
                and not isinstance(exc.__cause__, _NOT_SENT):
            return None
        return self.idempotent(exc, attempt)

    async def run(self, call: Callable[[], Awaitable[T]], *,
                  delay: Callable[[Any, int], float | None] | None = None,
                  errors: tuple[type[BaseException], ...] = (ProviderError,),
                  on_retry: Callable[[Any, float, int], None] | None = None) -> T:
        """Run ``call``; when it raises one of ``errors`` that ``delay(exc, attempt)`` gives a wait for
        (None: not retryable; default ``idempotent``), wait and try again, at most ``retries`` more
        times. ``on_retry(exc, wait, attempt)`` hears of each retry before its wait."""
        decide: Callable[[Any, int], float | None] = delay or self.idempotent
        attempt = 0
        while True:
            try:
                return await call()
            except errors as exc:
                wait = decide(exc, attempt)
                if wait is None or attempt >= self.retries or wait > self.cap:
                    raise
                attempt += 1
                if on_retry is not None:
                    on_retry(exc, wait, attempt)
                await anyio.sleep(wait)
