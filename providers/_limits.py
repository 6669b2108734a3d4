"""Rate limiting shared by providers (private)."""

from __future__ import annotations

import anyio

__all__ = ["RateLimiter"]


class RateLimiter:
    """Spaces acquisitions at least ``1/rate`` seconds apart (rate 0: no limit).

    Fair in arrival order: each caller reserves the next free slot under a lock,
    then sleeps outside it until that slot comes.
    """

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            now = anyio.current_time()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            await anyio.sleep(slot - now)
