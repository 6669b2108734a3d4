"""The one retry policy: its waits, its decisions, and its loop."""

from __future__ import annotations

import random

import anyio
import httpx
import pytest

from providers.errors import InvalidInput, ProviderUnavailable, RateLimited
from providers.retry import RetryPolicy

pytestmark = pytest.mark.anyio


def test_each_wait_is_between_half_and_all_of_the_doubled_base_and_never_over_the_cap() -> None:
    policy, rng = RetryPolicy(retries=5, base=0.5, cap=3.0), random.Random(7)
    for attempt, upper in enumerate((0.5, 1.0, 2.0, 3.0, 3.0)):
        waits = [policy.backoff(attempt, rng) for _ in range(200)]
        assert upper / 2 <= min(waits) and max(waits) <= upper


def test_a_creating_call_is_retried_only_when_it_cannot_have_run_twice() -> None:
    policy = RetryPolicy()
    not_sent = ProviderUnavailable("connect", provider="p")
    not_sent.__cause__ = httpx.ConnectError("refused")
    dropped = ProviderUnavailable("reset after sending", provider="p")
    dropped.__cause__ = httpx.ReadError("reset")
    assert policy.creating(not_sent, 0) is not None and policy.creating(dropped, 0) is None
    assert policy.idempotent(dropped, 0) is not None                    # a poll may be repeated
    assert policy.creating(ProviderUnavailable("busy", provider="p", status=503), 0) is not None
    assert policy.creating(RateLimited("slow down", provider="p", retry_after=4.0), 0) == 4.0
    assert policy.idempotent(InvalidInput("bad", provider="p"), 0) is None


async def test_the_loop_stops_after_its_retries_and_raises_at_once_past_the_cap() -> None:
    calls = []

    async def failing() -> None:
        calls.append(1)
        raise ProviderUnavailable("busy", provider="p", status=503)

    with anyio.fail_after(10), pytest.raises(ProviderUnavailable):
        await RetryPolicy(retries=2, base=0.001).run(failing)
    assert len(calls) == 3

    calls.clear()

    async def slow_down() -> None:
        calls.append(1)
        raise RateLimited("wait a minute", provider="p", retry_after=60.0)

    with anyio.fail_after(10), pytest.raises(RateLimited):
        await RetryPolicy(retries=3, cap=30.0).run(slow_down)
    assert len(calls) == 1                                              # not slept through: the caller learns


async def test_other_errors_and_a_custom_decision() -> None:
    heard: list[tuple[float, int]] = []
    attempts = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError("disk hiccup")
        return "ok"

    with anyio.fail_after(10):
        result = await RetryPolicy(retries=3, base=0.001).run(
            flaky, errors=(OSError,), delay=lambda exc, n: 0.001, on_retry=lambda exc, wait, n: heard.append((wait, n)))
    assert result == "ok" and heard == [(0.001, 1), (0.001, 2)]
