"""Helpers for tests: real image bytes made with Pillow, and reading tool results."""

from __future__ import annotations

import io

from PIL import Image


def png(seed: int = 0, size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    img = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 13 + 7) % 256))
    img.putpixel((0, 0), (seed % 256, (seed // 256) % 256, 1))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def text_of(result) -> str:  # type: ignore[no-untyped-def]
    """The text blocks of a tool result, joined (error messages live there)."""
    from mcp.types import TextContent

    return " ".join(c.text for c in result.content if isinstance(c, TextContent))
