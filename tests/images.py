"""Real image bytes for tests, made with Pillow."""

from __future__ import annotations

import io

from PIL import Image


def png(seed: int = 0, size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    img = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 13 + 7) % 256))
    img.putpixel((0, 0), (seed % 256, (seed // 256) % 256, 1))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()
