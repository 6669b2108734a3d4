"""Icons for the server, its tools and its prompts: small SVGs sent inline as data: URIs.

Inline, so a host never fetches anything from us (or anyone) to draw them. Line art on a
24-unit grid in one mid-blue stroke that reads on light and dark themes.
"""

from __future__ import annotations

import base64
from functools import cache

from mcp.types import Icon

__all__ = ["icons"]

_STROKE = '#5b6cff'
_SHAPES = {
    # an easel holding a canvas with a sun and a hill
    "server": '<rect x="4" y="3" width="16" height="12" rx="1.5"/><path d="M8 21l3-6M16 21l-3-6M12 15v6"/>'
              '<circle cx="9" cy="7.5" r="1.5"/><path d="M5.5 13l4-3.5 3 2.5 2.5-2 3.5 3"/>',
    # a four-pointed spark and a small one
    "generate": '<path d="M10 3l1.8 5.2L17 10l-5.2 1.8L10 17l-1.8-5.2L3 10l5.2-1.8z"/>'
                '<path d="M18 14l.8 2.2 2.2.8-2.2.8L18 20l-.8-2.2L15 17l2.2-.8z"/>',
    # a brush over a picture corner
    "edit": '<path d="M14.5 4.5l5 5L10 19H5v-5z"/><path d="M12.5 6.5l5 5"/>',
    # a picture beside lines of text
    "illustrate": '<rect x="3" y="4" width="9" height="8" rx="1"/><path d="M4 11l3-3 4 3"/>'
                  '<path d="M15 5h6M15 9h6M3 15h18M3 19h12"/>',
    # a picture: a stored image
    "image": '<rect x="3" y="4" width="18" height="16" rx="2"/><circle cx="9" cy="9.5" r="1.8"/>'
             '<path d="M3.5 18l5.5-5 4 3.5 3-2.5 4.5 4"/>',
    # a box with a play mark: run a model
    "run": '<rect x="3" y="4" width="18" height="16" rx="2"/><path d="M10 9l5 3-5 3z"/>',
    # a form: a model's inputs
    "schema": '<rect x="4" y="3" width="16" height="18" rx="2"/><path d="M8 8h8M8 12h8M8 16h5"/>',
    # a magnifier: search stored images
    "search": '<circle cx="10.5" cy="10.5" r="6"/><path d="M15 15l5.5 5.5M7.5 12l2-2 1.5 1.5 2-2"/>',
    # a grid of four pictures: browse stored images
    "browse": '<rect x="3" y="3" width="8" height="8" rx="1"/><rect x="13" y="3" width="8" height="8" rx="1"/>'
              '<rect x="3" y="13" width="8" height="8" rx="1"/><rect x="13" y="13" width="8" height="8" rx="1"/>',
    # a strip of small pictures: thumbnails
    "thumbnails": '<rect x="2.5" y="8" width="5" height="8" rx="1"/><rect x="9.5" y="8" width="5" height="8" rx="1"/>'
                  '<rect x="16.5" y="8" width="5" height="8" rx="1"/>',
    # a framed picture with a link: the gallery page
    "gallery": '<rect x="3" y="3" width="14" height="12" rx="1.5"/><path d="M5.5 12.5l3.5-3.5 3 2.5 2.5-2"/>'
               '<path d="M14 19.5a2.5 2.5 0 0 0 3.5 0l2.5-2.5a2.5 2.5 0 0 0-3.5-3.5l-.8.8"/>',
    # a clock: a job that goes on after its call answered
    "job": '<circle cx="12" cy="12" r="8.5"/><path d="M12 7v5l3.5 2"/>',
    # a clock struck through: stop a job
    "cancel-job": '<circle cx="12" cy="12" r="8.5"/><path d="M12 7v5l3.5 2M5 19L19 5"/>',
    # a rounded square with a mark: a logo or app icon
    "logo": '<rect x="3" y="3" width="18" height="18" rx="5"/><path d="M8 16l4-8 4 8M9.5 13h5"/>',
    # a card with a headline bar and a share arrow
    "social": '<rect x="2.5" y="5" width="19" height="14" rx="2"/><path d="M6 10h8M6 13.5h5"/>'
              '<path d="M15.5 15l3-3-3-3"/>',
}


def icons(name: str) -> list[Icon]:
    """The icon list for ``name`` (one of the keys above), as MCP ``icons``."""
    return [_icon(name)]


@cache
def _icon(name: str) -> Icon:
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="{_STROKE}" '
           f'stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round">{_SHAPES[name]}</svg>')
    src = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    return Icon(src=src, mime_type="image/svg+xml", sizes=["any"])
