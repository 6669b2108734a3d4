"""Looking at image bytes: what they are, how big, and a small preview.

Pillow is imported on first use (it is heavy; start-up should not pay for it).
Every decode is bounded by a pixel limit, so a decompression bomb is refused
rather than expanded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO

__all__ = ["HeaderProbe", "ImageInfo", "InvalidImage", "inspect_image", "make_preview", "sniff_mime"]

_FORMAT_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


class InvalidImage(ValueError):
    """The bytes are not an image we accept; the message says why."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    mime_type: str
    width: int
    height: int


def sniff_mime(data: bytes) -> str | None:
    """The mime type from magic bytes, without decoding."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def inspect_image(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Type and size from the header; refuses non-images and images over ``max_pixels``."""
    info = _header(data, max_pixels=max_pixels, final=True)
    assert info is not None
    return info


class HeaderProbe:
    """``inspect_image`` for bytes still arriving: ``feed`` each chunk; it answers the image's type and
    size as soon as the header is in (and refuses, as ``inspect_image`` does, as soon as it can).

    It keeps only the bytes before the header is understood, and tries to read it each time they
    have doubled, so a large header costs a few attempts, not one per chunk."""

    def __init__(self, *, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self.info: ImageInfo | None = None
        self._head = bytearray()
        self._next_try = 12   # enough to tell the type from the magic bytes

    def feed(self, chunk: bytes) -> ImageInfo | None:
        """The image's info once the header is in (InvalidImage if it is refused), else None."""
        if self.info is None:
            self._head += chunk
            if len(self._head) >= self._next_try:
                self._next_try = 2 * len(self._head)
                self.info = _header(bytes(self._head), max_pixels=self.max_pixels, final=False)
                if self.info is not None:
                    self._head = bytearray()
        return self.info

    def finish(self) -> ImageInfo:
        """At the last byte: the info, or InvalidImage saying why the whole file is not one."""
        if self.info is None:
            self.info = inspect_image(bytes(self._head), max_pixels=self.max_pixels)
        return self.info


def _header(data: bytes, *, max_pixels: int, final: bool) -> ImageInfo | None:
    """Read the header of ``data``; when it may still be incomplete (not ``final``), None for "not yet"."""
    mime = sniff_mime(data)
    if mime is None:
        if not final and len(data) < 12:
            return None
        raise InvalidImage("not a PNG, JPEG, WebP or GIF image")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            fmt = img.format
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"the image could not be read ({type(exc).__name__})") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if not final:
            return None
        raise InvalidImage(f"the image could not be read ({type(exc).__name__})") from None
    if width <= 0 or height <= 0:
        raise InvalidImage("the image has no pixels")
    if width * height > max_pixels:
        raise InvalidImage(f"the image is {width}x{height} = {width * height} pixels, "
                           f"over the limit of {max_pixels}")
    return ImageInfo(_FORMAT_MIME.get(fmt or "", mime), width, height)


def make_preview(data: bytes | IO[bytes], *, max_px: int, max_bytes: int) -> tuple[bytes, str]:
    """A JPEG whose long side is at most ``max_px`` and size at most about ``max_bytes``, from the bytes
    or a file (read as far as the decoder needs: a file still being written can be one that waits)."""
    from PIL import Image

    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
        img.draft("RGB", (max_px, max_px))  # JPEG: decode at reduced scale, far less memory
        img.thumbnail((max_px, max_px))
        rgb = img.convert("RGB")
    side = max_px
    for quality in (80, 65, 50, 35, 25):
        out = io.BytesIO()
        rgb.save(out, "JPEG", quality=quality)
        if out.tell() <= max_bytes:
            return out.getvalue(), "image/jpeg"
    while out.tell() > max_bytes and side > 64:
        side = side * 3 // 4
        small = rgb.copy()
        small.thumbnail((side, side))
        out = io.BytesIO()
        small.save(out, "JPEG", quality=40)
    return out.getvalue(), "image/jpeg"
