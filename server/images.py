"""Looking at image bytes: what they are, how big, and a small preview.

Pillow is imported on first use (it is heavy; start-up should not pay for it).
Every decode is bounded by a pixel limit, so a decompression bomb is refused
rather than expanded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

__all__ = ["ImageInfo", "InvalidImage", "inspect_image", "make_preview", "sniff_mime"]

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
    mime = sniff_mime(data)
    if mime is None:
        raise InvalidImage("not a PNG, JPEG, WebP or GIF image")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            fmt = img.format
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"the image could not be read ({type(exc).__name__})") from None
    if width <= 0 or height <= 0:
        raise InvalidImage("the image has no pixels")
    if width * height > max_pixels:
        raise InvalidImage(f"the image is {width}x{height} = {width * height} pixels, "
                           f"over the limit of {max_pixels}")
    return ImageInfo(_FORMAT_MIME.get(fmt or "", mime), width, height)


def make_preview(data: bytes, *, max_px: int, max_bytes: int) -> tuple[bytes, str]:
    """A JPEG whose long side is at most ``max_px`` and size at most about ``max_bytes``."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
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
