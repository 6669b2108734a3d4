from __future__ import annotations

import pytest

from providers.types import ImageStyle
from server.prompts import STYLE_PREFIX, apply_style


def test_every_style_but_any_has_a_prefix() -> None:
    assert set(STYLE_PREFIX) == set(ImageStyle) - {ImageStyle.ANY}


@pytest.mark.parametrize(("style", "expected"), [
    (ImageStyle.REALISTIC, "photorealistic of a fox"),
    (ImageStyle.PIXEL_ART, "pixel art of a fox"),
    (ImageStyle.DIGITAL_ART, "digital art of a fox"),
    (ImageStyle.ANY, "a fox"),
])
def test_the_style_becomes_a_prefix_for_models_without_native_styles(style: ImageStyle, expected: str) -> None:
    assert apply_style("a fox", style, native=False) == expected


def test_native_style_models_get_the_raw_prompt() -> None:
    assert apply_style("a fox", ImageStyle.PIXEL_ART, native=True) == "a fox"
