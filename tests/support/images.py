"""Real image bytes made with Pillow, and the ``data:`` URIs a chat client attaches them as."""

from __future__ import annotations

import base64
import io

from PIL import Image


def png(seed: int = 0, size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    img = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 13 + 7) % 256))
    img.putpixel((0, 0), (seed % 256, (seed // 256) % 256, 1))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
