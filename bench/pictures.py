"""Pictures the fake serves: photo-like JPEGs and PNGs of a chosen size, with distinct bytes per
prediction so nothing is deduplicated."""

from __future__ import annotations

import io
import itertools
import math
import os
import random
import struct
import zlib
from typing import Any

from PIL import Image

MIB = 1024 * 1024


def photo_like(side: int, seed: int, grain: float = 0.3) -> Image.Image:
    """A stand-in for a generated picture: smooth colour fields, mid-scale structure and film grain
    (``grain`` 0..1). Compresses like a detailed photo, not like pure noise (the worst case for
    previews) nor like a flat test card (the best case)."""
    rng = random.Random(seed)
    fields = Image.frombytes("RGB", (16, 16), rng.randbytes(16 * 16 * 3)).resize((side, side), Image.BICUBIC)
    mid = Image.frombytes("RGB", (side // 8, side // 8), rng.randbytes((side // 8) ** 2 * 3))
    picture = Image.blend(fields, mid.resize((side, side), Image.BILINEAR), 0.3)
    grain_img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    return Image.blend(picture, grain_img, grain)


def _encode(img: Image.Image, fmt_: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt_ == "JPEG":
        img.save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def jpeg_of_about(target: int, side: int | None = None) -> bytes:
    """A photo-like JPEG of about ``target`` bytes: at ``side`` x ``side`` by choosing the quality,
    or at quality 90 by choosing the side."""
    if side is not None:
        img = photo_like(side, 1)
        lo, hi, best = 50, 98, b""
        while lo <= hi:
            q = (lo + hi) // 2
            data = _encode(img, "JPEG", q)
            if not best or abs(len(data) - target) < abs(len(best) - target):
                best = data
            lo, hi = (q + 1, hi) if len(data) < target else (lo, q - 1)
        return best
    guess = 1024
    data = _encode(photo_like(guess, 2), "JPEG", 90)
    side = int(guess * math.sqrt(target / len(data)))
    return _encode(photo_like(side, 2), "JPEG", 90)


def png_of_about(target: int) -> bytes:
    guess = 1024
    data = _encode(photo_like(guess, 3), "PNG")
    side = int(guess * math.sqrt(target / len(data)))
    return _encode(photo_like(side, 3), "PNG")


def tagged(data: bytes, mime: str, n: int) -> bytes:
    """The same picture with ``n`` written into a comment: distinct bytes (so distinct ids, no
    deduplication) at no encoding cost."""
    text = f"easel-bench {os.getpid()} {n}".encode()
    if mime == "image/jpeg":   # COM segment right after SOI
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]
    chunk = b"tEXt" + b"bench\x00" + text   # PNG: a tEXt chunk right after IHDR
    at = 8 + 25
    return data[:at] + struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[at:]


class Factory:
    """``FakeReplicate.image_factory``: a fixed picture, distinct bytes per prediction."""

    _counter = itertools.count(1)

    def __init__(self, data: bytes, mime: str) -> None:
        self.data, self.mime = data, mime

    def __call__(self, prediction: dict[str, Any]) -> tuple[bytes, str]:
        return tagged(self.data, self.mime, next(self._counter)), self.mime


def image_info(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as img:
        return f"{img.format} {img.width}x{img.height}, {len(data) / MIB:.2f} MiB"
