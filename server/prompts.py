"""Style as words: the prefix a model without native styles receives.

The table is the seeds' (style -> prefix text); ``any`` adds nothing. The prompt
becomes ``"<style text> of <prompt>"``.
"""

from __future__ import annotations

from providers.types import ImageStyle

__all__ = ["STYLE_PREFIX", "apply_style"]

STYLE_PREFIX: dict[ImageStyle, str] = {
    ImageStyle.REALISTIC: "photorealistic",
    ImageStyle.REALISTIC_BW: "black and white photograph",
    ImageStyle.REALISTIC_HDR: "HDR photograph",
    ImageStyle.REALISTIC_NATURAL: "natural light photograph",
    ImageStyle.REALISTIC_STUDIO: "studio portrait photograph",
    ImageStyle.REALISTIC_ENTERPRISE: "enterprise photograph",
    ImageStyle.REALISTIC_HARD_FLASH: "hard flash photograph",
    ImageStyle.REALISTIC_MOTION_BLUR: "motion blur photograph",
    ImageStyle.DIGITAL_ART: "digital art",
    ImageStyle.PIXEL_ART: "pixel art",
    ImageStyle.HAND_DRAWN: "hand drawn illustration",
    ImageStyle.GRAIN: "grainy digital illustration",
    ImageStyle.SKETCH: "sketchy illustration",
    ImageStyle.POSTER: "2D art poster",
    ImageStyle.POSTER_2: "alternate 2D art poster",
    ImageStyle.HANDMADE_3D: "handmade 3D illustration",
    ImageStyle.HAND_DRAWN_OUTLINE: "hand drawn outline illustration",
    ImageStyle.ENGRAVING_COLOR: "color engraving illustration",
}


def apply_style(prompt: str, style: ImageStyle, *, native: bool) -> str:
    """The prompt as sent: unchanged for models with native styles or style ``any``."""
    if native or style == ImageStyle.ANY:
        return prompt
    return f"{STYLE_PREFIX[style]} of {prompt}"
