"""Reference images from clients: resolved, fetched safely, and checked before money is spent.

A reference may be an ``easel://images/…`` URI from our store, an https URL, a
``data:`` URI (images attached in chat arrive this way), or a path inside a
directory the operator allowed with EASEL_INPUT_DIRS. Each must decode as a
PNG, JPEG, WebP or GIF under the byte and pixel limits.

Fetching a URL is guarded: only http(s), and never to a private, loopback,
link-local, reserved or metadata address, whether named directly, through DNS,
or reached by a redirect. Operators may allow specific hosts (EASEL_ALLOWED_FETCH_HOSTS).
The check resolves the name and then connects by name, so a DNS answer that
changes between the two is not caught; the redirect and scheme checks are.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from providers.types import InputImage
from server.images import InvalidImage, inspect_image
from server.storage import URI_PREFIX, Storage, StorageError

__all__ = ["InputError", "InputLimits", "UrlGuard", "resolve_images"]


class InputError(ValueError):
    """A reference image was refused; the message names it and says why."""


@dataclass(frozen=True)
class InputLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    input_dirs: tuple[Path, ...] = ()


class UrlGuard:
    """Decides whether a URL may be fetched; resolves names to check every address."""

    def __init__(self, allowed_hosts: Sequence[str] = ()) -> None:
        self.allowed = {h.strip().lower() for h in allowed_hosts if h.strip()}

    async def check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise InputError(f"only https URLs can be fetched, not {parts.scheme or 'a relative'} URL")
        host = (parts.hostname or "").lower()
        if not host:
            raise InputError("the URL has no host")
        if parts.username or parts.password:
            raise InputError("URLs with credentials are not fetched")
        if host in self.allowed:
            return
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await anyio.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                raise InputError(f"the host {host!r} could not be resolved") from None
            addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        for address in addresses:
            if not address.is_global or address.is_multicast:
                raise InputError(f"the host {host!r} is a private, loopback, link-local or reserved "
                                 "address; only public hosts are fetched (an operator can allow a host "
                                 "with EASEL_ALLOWED_FETCH_HOSTS)")


async def fetch(url: str, guard: UrlGuard, client: httpx.AsyncClient, max_bytes: int,
                max_redirects: int = 3) -> tuple[bytes, str | None]:
    for _ in range(max_redirects + 1):
        await guard.check(url)
        try:
            async with client.stream("GET", url, follow_redirects=False) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code >= 400:
                    raise InputError(f"fetching it failed with HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise InputError(f"it is {int(declared)} bytes; the limit is {max_bytes} bytes")
                chunks, total = [], 0
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > max_bytes:
                        raise InputError(f"it is over the limit of {max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks), response.headers.get("content-type")
        except httpx.HTTPError as exc:
            raise InputError(f"fetching it failed ({type(exc).__name__})") from None
    raise InputError(f"it redirected more than {max_redirects} times")


def decode_data_uri(uri: str, max_bytes: int) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep or not header.startswith("data:"):
        raise InputError("it is not a valid data: URI (expected data:<type>;base64,<data>)")
    if ";base64" not in header:
        raise InputError("data: URIs must be base64-encoded images")
    if len(payload) > (max_bytes * 4) // 3 + 4:
        raise InputError(f"it is over the limit of {max_bytes} bytes")
    try:
        return base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("its base64 data is malformed") from None


def local_path(ref: str, limits: InputLimits) -> Path:
    if not limits.input_dirs:
        raise InputError("local file paths are not allowed on this server; the operator can allow "
                         "directories with EASEL_INPUT_DIRS (paths separated by os.pathsep), or send "
                         "the image as a data: URI or https URL")
    path = Path(os.path.expanduser(ref))
    if not path.is_absolute():
        raise InputError("local paths must be absolute")
    real = path.resolve()
    for allowed in limits.input_dirs:
        if real.is_relative_to(allowed.resolve()):
            return real
    raise InputError(f"the path is outside the allowed input directories ({', '.join(map(str, limits.input_dirs))}); "
                     "add its directory to EASEL_INPUT_DIRS to allow it")


def describe(ref: str) -> str:
    if ref.startswith("data:"):
        return ref.split(",", 1)[0][:60] + ",…"
    return ref if len(ref) <= 200 else ref[:200] + "…"


async def resolve_images(refs: Sequence[str], *, storage: Storage, limits: InputLimits, guard: UrlGuard,
                         client: httpx.AsyncClient, field: str = "images") -> list[InputImage]:
    images = []
    for i, ref in enumerate(refs):
        where = f"{field}[{i}] ({describe(ref)})"
        url: str | None = None
        try:
            if ref.startswith(URI_PREFIX):
                try:
                    data, _ = await storage.get(ref[len(URI_PREFIX):])
                except StorageError:
                    raise InputError("no such stored image") from None
            elif ref.startswith("data:"):
                data = decode_data_uri(ref, limits.max_bytes)
            elif "://" in ref:
                data, _ = await fetch(ref, guard, client, limits.max_bytes)
                url = ref if ref.startswith("https://") else None
            else:
                path = local_path(ref, limits)
                if not path.is_file():
                    raise InputError("no such file")
                if path.stat().st_size > limits.max_bytes:
                    raise InputError(f"it is over the limit of {limits.max_bytes} bytes")
                data = await anyio.Path(path).read_bytes()
            if len(data) > limits.max_bytes:
                raise InputError(f"it is {len(data)} bytes; the limit is {limits.max_bytes} bytes")
            try:
                info = inspect_image(data, max_pixels=limits.max_pixels)
            except InvalidImage as exc:
                raise InputError(f"{exc} (accepted: PNG, JPEG, WebP, GIF up to {limits.max_bytes} bytes "
                                 f"and {limits.max_pixels} pixels)") from None
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        images.append(InputImage(data=data, mime_type=info.mime_type, url=url, source=describe(ref)))
    return images
