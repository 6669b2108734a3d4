"""Reference images from clients: resolved, fetched safely, and checked before money is spent.

A reference may be an ``easel://images/…`` URI from our store, an https URL, a
``data:`` URI (images attached in chat arrive this way), or a path inside a
directory the operator allowed with EASEL_INPUT_DIRS. Each must decode as a
PNG, JPEG, WebP or GIF under the byte and pixel limits.

Fetching a URL goes through the fetch guard shared with provider downloads
(``providers/_netguard.py``): only http(s), never to a private, loopback, link-local,
reserved or metadata address, whether named directly, through DNS (the checked
address is the one connected to) or reached by a redirect. Operators may allow
specific hosts (EASEL_ALLOWED_FETCH_HOSTS). A local path is checked against
EASEL_INPUT_DIRS and then opened once, without following a symlink that appears
after the check, and read from that descriptor.
"""

from __future__ import annotations

import base64
import binascii
import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from providers._netguard import FetchRefused
from providers.types import InputImage
from server.images import InvalidImage, inspect_image
from server.storage import URI_PREFIX, Storage, StorageError

__all__ = ["InputError", "InputLimits", "read_local", "resolve_images"]

MAX_URL_CHARS = 8192
MAX_PATH_CHARS = 4096


class InputError(ValueError):
    """A reference image was refused; the message names it and says why."""


@dataclass(frozen=True)
class InputLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    input_dirs: tuple[Path, ...] = ()


def check_url(url: str) -> None:
    """What a caller can get wrong in a URL, said in one line before anything is fetched; where it
    may be fetched from is the guard's business (providers/_netguard.py), for every redirect hop too."""
    if len(url) > MAX_URL_CHARS:
        raise InputError(f"the URL is {len(url)} characters long; the limit is {MAX_URL_CHARS}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:   # e.g. "Invalid IPv6 URL"
        raise InputError(f"it is not a valid URL ({exc})") from None
    try:
        port = parts.port
    except ValueError:          # out of range or not a number
        raise InputError("the URL's port must be a number from 1 to 65535") from None
    if parts.scheme not in ("http", "https"):
        raise InputError(f"only https URLs can be fetched, not {parts.scheme or 'a relative'} URL")
    if not parts.hostname:
        raise InputError("the URL has no host")
    if parts.username or parts.password:
        raise InputError("URLs with credentials are not fetched")
    if port == 0:
        raise InputError("the URL's port must be a number from 1 to 65535")


async def fetch(url: str, client: httpx.AsyncClient, max_bytes: int,
                max_redirects: int = 3) -> tuple[bytes, str | None]:
    """GET ``url`` through ``client`` (a guarded client: every hop is checked where it connects)."""
    for _ in range(max_redirects + 1):
        check_url(url)
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
        except FetchRefused as exc:
            raise InputError(str(exc)) from None
        except (httpx.InvalidURL, UnicodeError) as exc:   # e.g. a malformed IDNA label such as xn--
            raise InputError(f"it is not a valid URL ({exc})") from None
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


def local_path(ref: str, limits: InputLimits) -> tuple[Path, Path]:
    """The real path of ``ref`` and the allowed directory it lies in; InputError otherwise."""
    if not limits.input_dirs:
        raise InputError("local file paths are not allowed on this server; the operator can allow "
                         "directories with EASEL_INPUT_DIRS (paths separated by os.pathsep), or send "
                         "the image as a data: URI or https URL")
    if "\x00" in ref:
        raise InputError("the path contains a NUL character")
    if len(ref) > MAX_PATH_CHARS:
        raise InputError(f"the path is {len(ref)} characters long; the limit is {MAX_PATH_CHARS}")
    path = Path(os.path.expanduser(ref))
    if not path.is_absolute():
        raise InputError("local paths must be absolute")
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as exc:   # a symlink loop
        raise InputError(f"the path cannot be resolved ({getattr(exc, 'strerror', None) or exc})") from None
    for allowed in limits.input_dirs:
        root = allowed.resolve()
        if real.is_relative_to(root):
            return real, root
    raise InputError(f"the path is outside the allowed input directories ({', '.join(map(str, limits.input_dirs))}); "
                     "add its directory to EASEL_INPUT_DIRS to allow it")


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _open_below(root: Path, real: Path) -> int:
    """Open ``real`` (checked to lie below ``root``) without following a symlink on the way.

    The path was checked by name; a name can be re-pointed between the check and the open
    (a symlink swapped in). So each component below the allowed root is opened relative to
    its parent's descriptor with O_NOFOLLOW: a link that appears after the check makes the
    open fail instead of leading outside. Where the platform has no ``dir_fd`` (Windows), the
    file is opened by name and its identity compared with the checked path's."""
    parts = real.relative_to(root).parts
    if not parts:
        raise IsADirectoryError(errno.EISDIR, "is a directory")
    if not _NOFOLLOW or os.open not in os.supports_dir_fd:
        fd = os.open(real, _OPEN_FLAGS)
        opened, checked = os.fstat(fd), os.stat(real, follow_symlinks=False)
        if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            os.close(fd)
            raise OSError(errno.ELOOP, "changed while being opened")
        return fd
    directory = os.open(root, _OPEN_FLAGS | getattr(os, "O_DIRECTORY", 0))
    try:
        for part in parts[:-1]:
            inner = os.open(part, _OPEN_FLAGS | os.O_DIRECTORY | _NOFOLLOW, dir_fd=directory)
            os.close(directory)
            directory = inner
        # O_NONBLOCK: a FIFO planted in the directory must not hang the open
        return os.open(parts[-1], _OPEN_FLAGS | _NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    finally:
        os.close(directory)


def read_local(real: Path, root: Path, max_bytes: int) -> bytes:
    """Open the checked path once and read it from that descriptor (blocking: run it in a thread)."""
    try:
        fd = _open_below(root, real)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise InputError("no such file") from None
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise InputError("the path changed while it was being opened (a symbolic link appeared where "
                             "the checked path had none); it was not read") from None
        raise InputError(f"it cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError("it is not a regular file (a directory, device or pipe)")
    with open(fd, "rb") as file:
        if os.fstat(file.fileno()).st_size > max_bytes:
            raise InputError(f"it is over the limit of {max_bytes} bytes")
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"it is over the limit of {max_bytes} bytes")
    return data


def describe(ref: str) -> str:
    if ref.startswith("data:"):
        return ref.split(",", 1)[0][:60] + ",…"
    return ref if len(ref) <= 200 else ref[:200] + "…"


async def resolve_images(refs: Sequence[str], *, storage: Storage, limits: InputLimits,
                         client: httpx.AsyncClient, field: str = "images") -> list[InputImage]:
    """Each reference's bytes, checked. ``client`` must be a guarded client (AppState.http)."""
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
                data, _ = await fetch(ref, client, limits.max_bytes)
                url = ref if ref.startswith("https://") else None
            else:
                real, root = local_path(ref, limits)
                data = await anyio.to_thread.run_sync(read_local, real, root, limits.max_bytes)
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
