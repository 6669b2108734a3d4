"""Ideogram's style vocabulary (private), shared by the direct Ideogram API and Ideogram on Replicate.

Both speak the same ``style_type`` words; it lives here so neither vendor module imports the other.
"""

from __future__ import annotations

from providers.types import ImageStyle

__all__ = ["ideogram_style"]

# The seeds' style words, for the styles Ideogram's style_type cannot say by itself.
_PHRASE = {
    ImageStyle.REALISTIC_BW: "black and white photograph", ImageStyle.REALISTIC_HDR: "HDR photograph",
    ImageStyle.REALISTIC_NATURAL: "natural light photograph",
    ImageStyle.REALISTIC_STUDIO: "studio portrait photograph",
    ImageStyle.REALISTIC_ENTERPRISE: "enterprise photograph",
    ImageStyle.REALISTIC_HARD_FLASH: "hard flash photograph",
    ImageStyle.REALISTIC_MOTION_BLUR: "motion blur photograph", ImageStyle.DIGITAL_ART: "digital art",
    ImageStyle.PIXEL_ART: "pixel art", ImageStyle.HAND_DRAWN: "hand drawn illustration",
    ImageStyle.GRAIN: "grainy digital illustration", ImageStyle.SKETCH: "sketchy illustration",
    ImageStyle.POSTER: "2D art poster", ImageStyle.POSTER_2: "alternate 2D art poster",
    ImageStyle.HANDMADE_3D: "handmade 3D illustration",
    ImageStyle.HAND_DRAWN_OUTLINE: "hand drawn outline illustration",
    ImageStyle.ENGRAVING_COLOR: "color engraving illustration",
}


def ideogram_style(style: ImageStyle, prompt: str) -> tuple[str, str]:
    """(Ideogram style_type in upper case, the prompt with style words where the type is lossy)."""
    style = ImageStyle(style)
    if style == ImageStyle.ANY:
        kind = "AUTO"
    elif style.value.startswith("realistic_image"):
        kind = "REALISTIC"
    else:
        kind = "DESIGN"
    phrase = _PHRASE.get(style)
    return kind, f"{phrase} of {prompt}" if phrase else prompt
