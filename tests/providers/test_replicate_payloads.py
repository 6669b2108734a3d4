"""Every payload we can send validates against the model's published input schema."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import jsonschema
import pytest

from providers.replicate import MODELS
from providers.types import AspectRatio, GenerationRequest, ImageSize, ImageStyle, InputImage, OutputFormat

SCHEMAS = json.loads((Path(__file__).parents[1] / "fakes" / "replicate_schemas.json").read_text())


def strict(model: str) -> dict:
    published = SCHEMAS[model]
    return {"type": "object", "properties": published["properties"], "required": published["required"],
            "additionalProperties": False}


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_every_size_and_style_gives_a_payload_the_model_accepts(spec) -> None:  # type: ignore[no-untyped-def]
    schema = strict(spec.provider_model)
    images = (InputImage(data=None, mime_type="image/png", url="https://example.com/a.png"),)
    for size, style in itertools.product(ImageSize, ImageStyle):
        req = GenerationRequest(prompt="a lighthouse", size=size, style=style,
                                seed=7 if spec.supports_seed else None,
                                negative_prompt="blur" if spec.supports_negative_prompt else None,
                                input_images=images if spec.max_input_images else ())
        jsonschema.validate(spec.build(req), schema)


@pytest.mark.parametrize("spec", [s for s in MODELS if s.max_input_images], ids=lambda s: s.name)
def test_edit_payloads_accept_every_aspect_ratio_and_format(spec) -> None:  # type: ignore[no-untyped-def]
    schema = strict(spec.provider_model)
    for ratio, fmt in itertools.product(AspectRatio, OutputFormat):
        req = GenerationRequest(prompt="make it blue", aspect_ratio=ratio, output_format=fmt)
        jsonschema.validate(spec.build(req), schema)


def test_seed_table_sizes_reach_the_payloads() -> None:
    by_name = {s.name: s for s in MODELS}
    flux = by_name["Flux 1.1 Pro"].build(GenerationRequest(prompt="p", size=ImageSize.WIDE))
    assert (flux["aspect_ratio"], flux["width"], flux["height"]) == ("custom", 1440, 810)
    recraft = by_name["Recraft v3"].build(GenerationRequest(prompt="p", size=ImageSize.TALL,
                                                            style=ImageStyle.PIXEL_ART))
    assert recraft == {"prompt": "p", "size": "1024x1536", "style": "digital_illustration/pixel_art"}
    sd = by_name["Stable Diffusion 3.5 Medium"]
    assert sd.build(GenerationRequest(prompt="p", size=ImageSize.LANDSCAPE))["aspect_ratio"] == "5:4"
    assert sd.build(GenerationRequest(prompt="p", size=ImageSize.PORTRAIT))["aspect_ratio"] == "4:5"
    ultra = by_name["Flux 1.1 Pro Ultra"].build(GenerationRequest(prompt="p", size=ImageSize.LANDSCAPE))
    assert ultra["aspect_ratio"] == "4:3" and "width" not in ultra
    nano = by_name["Nano Banana Pro"].build(GenerationRequest(prompt="p", size=ImageSize.TALL))
    assert nano["aspect_ratio"] == "9:16" and nano["resolution"] == "2K"
