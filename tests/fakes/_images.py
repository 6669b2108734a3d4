"""Small, distinct test images made with Pillow.

``make_png(seed)`` returns PNG bytes whose pixels depend on ``seed``: different seeds
give different pixels (so different content hashes), the same seed gives the same
bytes. The four bytes of the seed are written into the first row, so distinctness
holds for every seed in 0..2**32-1, not just with high probability.
"""

from __future__ import annotations

import io
import random

from PIL import Image

__all__ = ["image_size", "make_png"]


def make_png(seed: int, size: tuple[int, int] = (64, 64)) -> bytes:
    """PNG bytes, RGB, ``size`` pixels, content determined by ``seed``."""
    width, height = size
    if width < 4 or height < 1:
        raise ValueError("make_png needs at least 4x1 pixels")
    rng = random.Random(seed)
    background = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    image = Image.new("RGB", (width, height), background)
    # A diagonal band in a second colour makes the images visibly different too.
    band = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    for x in range(width):
        y = (x * height) // width
        for dy in range(max(1, height // 16)):
            if y + dy < height:
                image.putpixel((x, y + dy), band)
    # The seed itself, byte by byte, in the first row: guarantees distinct pixels.
    for i, byte in enumerate((seed & 0xFFFFFFFF).to_bytes(4, "big")):
        image.putpixel((i, 0), (byte, 255 - byte, (byte * 7) & 0xFF))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of encoded image bytes."""
    with Image.open(io.BytesIO(data)) as im:
        return im.size
