"""Every payload we can send validates against the model's published input schema, in the right shape.

The schemas are the published ones (``tests/fakes/replicate_schemas.json``, each with its source and
date), made strict: no key the model does not publish, no value outside an enum or a range.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import jsonschema
import pytest

from providers.base import GENERATE
from providers.replicate import MODELS
from providers.types import AspectRatio, GenerationRequest, ImageSize, ImageStyle, InputImage, OutputFormat
from server.prompts import apply_style

SCHEMAS = json.loads((Path(__file__).parents[1] / "fakes" / "replicate_schemas.json").read_text())
BY_NAME = {s.name: s for s in MODELS}
GENERATORS = [s for s in MODELS if GENERATE in s.uses]   # edit-only models take aspect_ratio, not size
SHAPE = {ImageSize.SQUARE: 0, ImageSize.LANDSCAPE: 1, ImageSize.WIDE: 1, ImageSize.PORTRAIT: -1, ImageSize.TALL: -1}
# Sizes that are not the seed's exact ratio on a model, because it publishes none closer (docs/models.md).
INEXACT = {("GPT Image 1.5", ImageSize.LANDSCAPE), ("GPT Image 1.5", ImageSize.WIDE),
           ("GPT Image 1.5", ImageSize.PORTRAIT), ("GPT Image 1.5", ImageSize.TALL),
           ("Stable Diffusion 3.5 Medium", ImageSize.LANDSCAPE), ("Stable Diffusion 3.5 Medium", ImageSize.PORTRAIT)}
SEED_RATIO = {ImageSize.SQUARE: 1.0, ImageSize.LANDSCAPE: 4 / 3, ImageSize.PORTRAIT: 3 / 4,
              ImageSize.WIDE: 16 / 9, ImageSize.TALL: 9 / 16}


def strict(model: str) -> dict:
    published = SCHEMAS[model]
    return {"type": "object", "properties": published["properties"], "required": published["required"],
            "additionalProperties": False}


def refs(n: int) -> tuple[InputImage, ...]:
    return tuple(InputImage(data=None, mime_type="image/png", url=f"https://example.com/{i}.png") for i in range(n))


def width_over_height(payload: dict) -> float:
    """The output's shape as the payload asks for it: a ratio, a WxH size, or width and height."""
    ratio = payload.get("aspect_ratio")
    if isinstance(ratio, str) and ":" in ratio:
        w, h = ratio.split(":")
        return int(w) / int(h)
    if isinstance(payload.get("size"), str) and "x" in payload["size"]:
        w, h = payload["size"].split("x")
        return int(w) / int(h)
    return payload["width"] / payload["height"]


def sign(x: float) -> int:
    return 0 if math.isclose(x, 1.0) else (1 if x > 1 else -1)


def request_as_the_server_builds_it(spec, size: ImageSize, style: ImageStyle) -> GenerationRequest:  # type: ignore[no-untyped-def]
    return GenerationRequest(prompt=apply_style("a lighthouse", style, native=spec.native_style), size=size,
                             style=style, seed=7 if spec.supports_seed else None,
                             negative_prompt="blur" if spec.supports_negative_prompt else None,
                             input_images=refs(spec.min_input_images))


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_every_size_and_style_gives_a_payload_the_model_accepts(spec) -> None:  # type: ignore[no-untyped-def]
    schema = strict(spec.provider_model)
    for size, style in itertools.product(ImageSize, ImageStyle):
        jsonschema.validate(spec.build(request_as_the_server_builds_it(spec, size, style)), schema)


@pytest.mark.parametrize("spec", GENERATORS, ids=lambda s: s.name)
@pytest.mark.parametrize("size", ImageSize)
def test_each_size_keeps_its_orientation_and_the_seed_ratio_where_published(spec, size) -> None:  # type: ignore[no-untyped-def]
    payload = spec.build(request_as_the_server_builds_it(spec, size, ImageStyle.ANY))
    shape = width_over_height(payload)
    assert sign(shape) == SHAPE[size], (spec.name, size, payload)
    if (spec.name, size) not in INEXACT:
        assert shape == pytest.approx(SEED_RATIO[size], rel=0.01), (spec.name, size, payload)


def test_wide_is_never_narrower_than_landscape() -> None:
    for spec in GENERATORS:
        shapes = {size: width_over_height(spec.build(request_as_the_server_builds_it(spec, size, ImageStyle.ANY)))
                  for size in (ImageSize.LANDSCAPE, ImageSize.WIDE, ImageSize.PORTRAIT, ImageSize.TALL)}
        assert shapes[ImageSize.WIDE] >= shapes[ImageSize.LANDSCAPE], spec.name
        assert shapes[ImageSize.TALL] <= shapes[ImageSize.PORTRAIT], spec.name


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_a_style_is_native_or_a_prompt_prefix_never_both_never_lost(spec) -> None:  # type: ignore[no-untyped-def]
    plain = spec.build(request_as_the_server_builds_it(spec, ImageSize.SQUARE, ImageStyle.ANY))
    styled = spec.build(request_as_the_server_builds_it(spec, ImageSize.SQUARE, ImageStyle.REALISTIC))
    assert plain["prompt"] == "a lighthouse"
    if spec.native_style:
        assert styled["prompt"] == "a lighthouse" and styled != plain   # the style travels in its own field
    else:
        assert styled["prompt"] == "photorealistic of a lighthouse"
        assert {k: v for k, v in styled.items() if k != "prompt"} == {k: v for k, v in plain.items() if k != "prompt"}


@pytest.mark.parametrize("spec", [s for s in MODELS if s.max_input_images], ids=lambda s: s.name)
def test_edit_payloads_accept_every_aspect_ratio_and_format_with_the_most_references(spec) -> None:  # type: ignore[no-untyped-def]
    schema = strict(spec.provider_model)
    for ratio, fmt in itertools.product(AspectRatio, OutputFormat):
        req = GenerationRequest(prompt="make it blue", aspect_ratio=ratio, output_format=fmt,
                                input_images=refs(spec.max_input_images))
        payload = spec.build(req)
        jsonschema.validate(payload, schema)
        urls = [r.url for r in req.input_images]
        carried = [v for v in payload.values() if v in (urls, urls[0])]   # one field holds them, in order
        assert carried == ([urls[0]] if spec.max_input_images == 1 else [urls]), payload
        if ratio != AspectRatio.MATCH_INPUT_IMAGE:
            w, h = ratio.value.split(":")
            assert sign(width_over_height(payload)) == sign(int(w) / int(h)), (spec.name, ratio, payload)


@pytest.mark.parametrize("spec", [s for s in MODELS if s.max_input_images and not s.min_input_images],
                         ids=lambda s: s.name)
def test_edit_models_without_references_draw_from_the_prompt_at_one_to_one(spec) -> None:  # type: ignore[no-untyped-def]
    payload = spec.build(GenerationRequest(prompt="a banana", aspect_ratio=AspectRatio.MATCH_INPUT_IMAGE))
    jsonschema.validate(payload, strict(spec.provider_model))
    assert payload["aspect_ratio"] == "1:1"


def test_seed_table_sizes_reach_the_payloads() -> None:
    flux = BY_NAME["Flux 1.1 Pro"].build(GenerationRequest(prompt="p", size=ImageSize.WIDE))
    assert (flux["aspect_ratio"], flux["width"], flux["height"]) == ("custom", 1440, 810)
    recraft = BY_NAME["Recraft v3"]
    assert recraft.build(GenerationRequest(prompt="p", size=ImageSize.TALL, style=ImageStyle.PIXEL_ART)) == {
        "prompt": "p", "size": "1024x1820", "style": "digital_illustration/pixel_art"}
    assert recraft.build(GenerationRequest(prompt="p", size=ImageSize.WIDE))["size"] == "1820x1024"
    sd = BY_NAME["Stable Diffusion 3.5 Medium"]
    assert sd.build(GenerationRequest(prompt="p", size=ImageSize.LANDSCAPE))["aspect_ratio"] == "5:4"
    assert sd.build(GenerationRequest(prompt="p", size=ImageSize.PORTRAIT))["aspect_ratio"] == "4:5"
    ultra = BY_NAME["Flux 1.1 Pro Ultra"].build(GenerationRequest(prompt="p", size=ImageSize.LANDSCAPE))
    assert ultra["aspect_ratio"] == "4:3" and "width" not in ultra
    nano = BY_NAME["Nano Banana Pro"].build(GenerationRequest(prompt="p", size=ImageSize.TALL))
    assert nano["aspect_ratio"] == "9:16" and nano["resolution"] == "2K"


def test_newer_models_get_their_published_nearest_shapes_and_keep_prompts_unrewritten() -> None:
    def build(name: str, **kw) -> dict:  # type: ignore[no-untyped-def]
        return BY_NAME[name].build(GenerationRequest(prompt="p", **kw))

    assert build("FLUX.2 Pro", size=ImageSize.WIDE) == {
        "prompt": "p", "aspect_ratio": "16:9", "resolution": "1 MP", "output_format": "jpg", "output_quality": 90}
    assert build("FLUX.2 Flex", size=ImageSize.SQUARE)["prompt_upsampling"] is False
    assert "resolution" not in build("FLUX.2 Dev")
    assert build("Seedream 4", size=ImageSize.PORTRAIT) == {
        "prompt": "p", "size": "2K", "aspect_ratio": "3:4", "sequential_image_generation": "disabled",
        "max_images": 1, "enhance_prompt": False}
    assert "enhance_prompt" not in build("Seedream 4.5")
    assert build("Imagen 4 Ultra", size=ImageSize.TALL)["aspect_ratio"] == "9:16"
    assert [build("GPT Image 1.5", size=s)["aspect_ratio"] for s in ImageSize] == ["1:1", "3:2", "2:3", "3:2", "2:3"]
    assert build("GPT Image 1.5", count=3)["number_of_images"] == 3
    # edits: a ratio the model lacks becomes its nearest published one
    assert build("FLUX.2 Pro", aspect_ratio=AspectRatio.R21_9)["aspect_ratio"] == "16:9"
    assert build("Seedream 4", aspect_ratio=AspectRatio.R4_5)["aspect_ratio"] == "3:4"
    assert build("Qwen Image Edit", aspect_ratio=AspectRatio.R2_3, input_images=refs(1))["aspect_ratio"] == "3:4"
    assert build("GPT Image 1.5", aspect_ratio=AspectRatio.R5_4, output_format=OutputFormat.JPG)["output_format"] \
        == "jpeg"


def test_every_model_says_what_it_reads_and_what_it_costs_with_a_source_and_date() -> None:
    for spec in MODELS:
        assert spec.prompt_languages and spec.summary, spec.name
        if spec.price is not None:
            assert spec.price.per in ("image", "megapixel") and spec.price.source and spec.price.checked, spec.name
    chinese = {s.name for s in MODELS if s.prompt_languages[0] == "zh"}
    assert chinese == {"Seedream 4", "Seedream 4.5", "Qwen Image Edit"}
    assert BY_NAME["GPT Image 1.5"].requires == ("OPENAI_API_KEY",)
