"""HTTP mechanics shared by the providers (private): Retry-After, bounded and retried downloads.

Vendor knowledge stays out of here: callers say which responses are retryable and
how long the vendor asked to wait.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import io
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

import httpx

from providers._netguard import FetchRefused
from providers.errors import OutputRefused, ProviderError, ProviderUnavailable, RateLimited
from providers.retry import RetryPolicy
from providers.types import Consume

__all__ = ["download", "parse_retry_after", "read_whole", "stream_download"]

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


async def download(client: httpx.AsyncClient, url: str, *, provider: str, max_bytes: int,
                   retries: int = 2, retry_base: float = 0.5) -> tuple[bytes, str | None]:
    """Fetch an output file (or decode a data: URI) with a size bound and retries: the whole bytes.

    Returns (bytes, content type or None); raises as ``stream_download`` does."""
    if url.startswith("data:"):
        return _decode_data_uri(url, provider=provider, max_bytes=max_bytes)
    return await stream_download(client, url, read_whole, provider=provider, max_bytes=max_bytes, retries=retries,
                                 retry_base=retry_base)


async def read_whole(chunks: AsyncIterator[bytes], content_type: str | None) -> tuple[bytes, str | None]:
    """The ``consume`` of a download wanted whole: (bytes, content type)."""
    body = io.BytesIO()   # grows in place: peak ~1.1x the file, where joining chunks takes 2x
    async for chunk in chunks:
        body.write(chunk)
    return body.getvalue(), content_type


async def stream_download(client: httpx.AsyncClient, url: str, consume: Consume[T], *, provider: str,
                          max_bytes: int, retries: int = 2, retry_base: float = 0.5) -> T:
    """Download ``url`` into ``consume(chunks, content_type)`` as the bytes arrive, bounded and retried.

    ``client`` is a ``providers._netguard.guarded_client``: the URL and every redirect hop
    pass the fetch guard. ``chunks`` raises when the body goes over ``max_bytes`` or the
    connection fails part-way; a failed attempt is retried with a fresh ``consume`` call (which
    must clean up what it had started: nothing of a failed attempt is kept). Errors that are not
    the download's (``consume``'s own) pass through untouched and are not retried. Raises
    OutputRefused when the guard refuses the address, ProviderUnavailable when the file cannot be
    had (expired, truncated, too large, unreachable).
    """
    async def once() -> T:
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
                    raise _TooLarge(f"{provider} output is {int(declared)} bytes, over the {max_bytes}-byte "
                                    "limit.", provider=provider)

                async def bounded() -> AsyncGenerator[bytes, None]:
                    total = 0
                    async for chunk in response.aiter_bytes():
                        total += len(chunk)
                        if total > max_bytes:
                            raise _TooLarge(f"{provider} output is over the {max_bytes}-byte limit.",
                                            provider=provider)
                        yield chunk

                chunks = bounded()
                try:
                    return await consume(chunks, response.headers.get("content-type"))
                finally:
                    await chunks.aclose()
        except FetchRefused as exc:
            raise OutputRefused(f"{provider} output was not downloaded: {exc}.", provider=provider,
                                url=url) from None
        except (httpx.InvalidURL, UnicodeError) as exc:   # e.g. "http://[::1/x", a malformed IDNA label
            raise OutputRefused(f"{provider} output was not downloaded: it is not a valid URL ({exc}).",
                                provider=provider, url=url) from None
        except httpx.HTTPError as exc:  # truncated bodies, resets, timeouts
            raise ProviderUnavailable(
                f"{provider} output download failed ({type(exc).__name__}).", provider=provider) from exc

    retry = RetryPolicy(retries=retries, base=retry_base, cap=10.0)

    def policy(exc: ProviderError, attempt: int) -> float | None:
        if isinstance(exc, _TooLarge):
            return None  # the same file again will not be smaller
        if exc.status is not None and exc.status < 500 and not isinstance(exc, RateLimited):
            return None  # 404/403: expired or forbidden; retrying will not help
        return retry.idempotent(exc, attempt)

    return await retry.run(once, delay=policy)


class _TooLarge(ProviderUnavailable):
    """The output is over ``max_download_bytes``: refused, never retried."""


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
