"""HTTP mechanics shared by the providers (private): retries with backoff, downloads.

Vendor knowledge stays out of here: callers say which responses are retryable and
how long the vendor asked to wait.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import io
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import httpx

from providers._netguard import FetchRefused
from providers.errors import OutputRefused, ProviderError, ProviderUnavailable, RateLimited

__all__ = ["backoff_delay", "download", "parse_retry_after", "with_retries"]

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0,
                  rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal" jitter: uniform(upper / 2, upper), upper = min(cap, base * 2**attempt).

    Half the wait is fixed so a retry never fires at once; the other half is random so
    clients that failed together do not retry together."""
    upper = min(cap, base * (2 ** attempt))
    return (rng or random).uniform(upper / 2, upper)


async def with_retries(call: Callable[[], Awaitable[T]], *, retries: int, cap: float,
                       retryable: Callable[[ProviderError, int], float | None],
                       on_retry: Callable[[ProviderError, float], Awaitable[None]] | None = None) -> T:
    """Run ``call``; when it raises a ProviderError that ``retryable(exc, attempt)`` gives a
    delay for (None: not retryable), wait and try again, at most ``retries`` more times.
    ``attempt`` counts this call's retries from 0, so backoff grows per call, not per policy.

    A vendor-requested wait longer than ``cap`` is not slept through: the error is
    raised at once so the caller learns how long the vendor wants.
    """
    attempt = 0
    while True:
        try:
            return await call()
        except ProviderError as exc:
            delay = retryable(exc, attempt)
            if delay is None or attempt >= retries:
                raise
            if delay > cap:
                raise
            attempt += 1
            if on_retry is not None:
                await on_retry(exc, delay)
            await anyio.sleep(delay)


def default_retry_delay(exc: ProviderError, attempt: int = 0, cap: float = 30.0,
                        base: float = 0.5) -> float | None:
    """Retry policy for idempotent calls: 429 (honouring retry_after) and 5xx/connection errors."""
    if isinstance(exc, RateLimited):
        return exc.retry_after if exc.retry_after is not None else backoff_delay(attempt, base=base, cap=cap)
    if isinstance(exc, ProviderUnavailable):
        return backoff_delay(attempt, base=base, cap=cap)
    return None


async def download(client: httpx.AsyncClient, url: str, *, provider: str, max_bytes: int,
                   retries: int = 2, retry_base: float = 0.5) -> tuple[bytes, str | None]:
    """Fetch an output file (or decode a data: URI) with a size bound and retries.

    ``client`` is a ``providers._netguard.guarded_client``: the URL and every redirect hop
    pass the fetch guard. Returns (bytes, content type or None). Raises OutputRefused when
    the guard refuses the address, ProviderUnavailable when the file cannot be had
    (expired, truncated, too large, unreachable).
    """
    if url.startswith("data:"):
        return _decode_data_uri(url, provider=provider, max_bytes=max_bytes)

    async def once() -> tuple[bytes, str | None]:
        try:
            async with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    err = ProviderUnavailable(
                        f"{provider} output could not be downloaded (HTTP {response.status_code}).",
                        provider=provider, status=response.status_code)
                    if response.status_code == 429:
                        raise RateLimited(str(err), provider=provider,
                                          retry_after=parse_retry_after(response.headers.get("retry-after")))
                    raise err
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise ProviderUnavailable(
                        f"{provider} output is {int(declared)} bytes, over the {max_bytes}-byte limit.",
                        provider=provider)
                body = io.BytesIO()   # grows in place: peak ~1.1x the file, where joining chunks takes 2x
                total = 0
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > max_bytes:
                        raise ProviderUnavailable(
                            f"{provider} output is over the {max_bytes}-byte limit.", provider=provider)
                    body.write(chunk)
                return body.getvalue(), response.headers.get("content-type")
        except FetchRefused as exc:
            raise OutputRefused(f"{provider} output was not downloaded: {exc}.", provider=provider,
                                url=url) from None
        except (httpx.InvalidURL, UnicodeError) as exc:   # e.g. "http://[::1/x", a malformed IDNA label
            raise OutputRefused(f"{provider} output was not downloaded: it is not a valid URL ({exc}).",
                                provider=provider, url=url) from None
        except httpx.HTTPError as exc:  # truncated bodies, resets, timeouts
            raise ProviderUnavailable(
                f"{provider} output download failed ({type(exc).__name__}).", provider=provider) from exc

    def policy(exc: ProviderError, attempt: int) -> float | None:
        if exc.status is not None and exc.status < 500 and not isinstance(exc, RateLimited):
            return None  # 404/403: expired or forbidden; retrying will not help
        return default_retry_delay(exc, attempt, base=retry_base)

    return await with_retries(once, retries=retries, cap=10.0, retryable=policy)


def _decode_data_uri(uri: str, *, provider: str, max_bytes: int) -> tuple[bytes, str | None]:
    header, _, payload = uri.partition(",")
    mime = header[5:].split(";")[0] or None
    if len(payload) * 3 // 4 > max_bytes:
        raise ProviderUnavailable(f"{provider} output is over the {max_bytes}-byte limit.",
                                  provider=provider)
    try:
        data = base64.b64decode(payload, validate=True) if ";base64" in header else payload.encode()
    except (binascii.Error, ValueError) as exc:
        raise ProviderUnavailable(f"{provider} returned a malformed data URI.",
                                  provider=provider) from exc
    return data, mime
