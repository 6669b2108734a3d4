"""Warm-up after start: what the first tool call would otherwise pay for, done while the server is idle.

The first ``generate_image`` after start used to spend ~150-200 ms on things no later call pays:
importing Pillow and its JPEG/PNG plugins (and running their decoders and encoder once), importing
the vendor SDKs and building the provider clients (a TLS context each). None of it is needed to
answer ``initialize`` or ``tools/list``, so start-up stays as fast as it was; instead, ``IDLE``
seconds after the lifespan starts (when a client has had those answered), this does that work in
the background: the library part in a worker thread, the provider clients (which bind to the event
loop) on the loop. A call that comes
in meanwhile finds part of it done. ``EASEL_WARMUP=off`` turns it off (docs/performance.md has the
measurements).
"""

from __future__ import annotations

import io
import logging

import anyio

from providers import Registry
from server.config import Settings

__all__ = ["warm_up"]

log = logging.getLogger("easel.warmup")

IDLE = 0.5   # seconds after start: a client's initialize, tools/list and the like are answered by then


async def warm_up(registry: Registry, settings: Settings) -> None:
    """Warm the image libraries and every configured provider's client; never fails the server."""
    await anyio.sleep(IDLE)
    try:
        await anyio.to_thread.run_sync(_images, settings.results.preview_max_px)
        for name in settings.providers.keyed():
            registry.provider(name)
            await anyio.sleep(0)   # one client at a time: let a request in between
    except Exception:   # a warm-up that fails leaves the work to the first call, as without it
        log.debug("warm-up failed", exc_info=True)


def _images(max_px: int) -> None:
    """Pillow with its JPEG and PNG plugins, each codec run once on a tiny picture, as a call would."""
    from PIL import Image

    from server.images import inspect_image, make_preview

    for fmt in ("JPEG", "PNG"):
        out = io.BytesIO()
        Image.new("RGB", (64, 64), (40, 90, 160)).save(out, fmt)
        inspect_image(out.getvalue(), max_pixels=64 * 64)
        make_preview(out.getvalue(), max_px=max_px, max_bytes=100_000)
