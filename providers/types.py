"""The shared vocabulary between the MCP layer and the providers.

Enum values are the specification (the seeds' tables): tool schemas mirror them
exactly. The model names are not an enum here: tools build their ``model`` choices
from the catalog (``providers.model_names``), so that a new model is one new entry
in its provider's ``MODELS`` list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

__all__ = [
    "AspectRatio",
    "GeneratedImage",
    "GenerationRequest",
    "ImageSize",
    "ImageStyle",
    "InputImage",
    "OutputFormat",
    "OutputStream",
    "ProgressFn",
    "TaskHooks",
]

T = TypeVar("T")

#: What reads a download as it arrives: ``consume(chunks, content_type)`` -> its result.
Consume = Callable[[AsyncIterator[bytes], str | None], Awaitable[T]]
#: A download not made yet: ``await stream(consume)`` opens it (through the provider's fetch guard, size
#: bound and retry policy) and returns what ``consume`` returned. A body that fails part-way is retried
#: with a fresh ``consume`` call, so each call must start from nothing and clean up after itself when the
#: chunks raise.
OutputStream = Callable[[Consume[Any]], Awaitable[Any]]


class ImageSize(StrEnum):
    """Semantic sizes; each model maps them to its own ratio or pixel size."""

    SQUARE = "square"
    LANDSCAPE = "landscape"
    PORTRAIT = "portrait"
    WIDE = "wide"
    TALL = "tall"


class ImageStyle(StrEnum):
    """Visual styles (Recraft v3's style names); other models get a prompt prefix."""

    ANY = "any"
    REALISTIC = "realistic_image"
    REALISTIC_BW = "realistic_image/b_and_w"
    REALISTIC_HDR = "realistic_image/hdr"
    REALISTIC_NATURAL = "realistic_image/natural_light"
    REALISTIC_STUDIO = "realistic_image/studio_portrait"
    REALISTIC_ENTERPRISE = "realistic_image/enterprise"
    REALISTIC_HARD_FLASH = "realistic_image/hard_flash"
    REALISTIC_MOTION_BLUR = "realistic_image/motion_blur"
    DIGITAL_ART = "digital_illustration"
    PIXEL_ART = "digital_illustration/pixel_art"
    HAND_DRAWN = "digital_illustration/hand_drawn"
    GRAIN = "digital_illustration/grain"
    SKETCH = "digital_illustration/infantile_sketch"
    POSTER = "digital_illustration/2d_art_poster"
    POSTER_2 = "digital_illustration/2d_art_poster_2"
    HANDMADE_3D = "digital_illustration/handmade_3d"
    HAND_DRAWN_OUTLINE = "digital_illustration/hand_drawn_outline"
    ENGRAVING_COLOR = "digital_illustration/engraving_color"


class AspectRatio(StrEnum):
    """Aspect ratios of the edit models (nano-banana's published enum)."""

    MATCH_INPUT_IMAGE = "match_input_image"
    R1_1 = "1:1"
    R2_3 = "2:3"
    R3_2 = "3:2"
    R3_4 = "3:4"
    R4_3 = "4:3"
    R4_5 = "4:5"
    R5_4 = "5:4"
    R9_16 = "9:16"
    R16_9 = "16:9"
    R21_9 = "21:9"


class OutputFormat(StrEnum):
    JPG = "jpg"
    PNG = "png"


@dataclass(frozen=True, slots=True)
class InputImage:
    """A reference image, already checked by the server (type, bytes, pixels).

    ``data`` holds the bytes; ``url`` is set when the image is an https URL the
    provider may pass through instead of uploading.
    """

    data: bytes | None
    mime_type: str
    url: str | None = None
    source: str = ""  # what the client gave (easel:// URI, https URL, "data:" or a path)


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One provider call. ``count`` is at most the model's ``max_batch``."""

    prompt: str
    size: ImageSize = ImageSize.SQUARE
    style: ImageStyle = ImageStyle.ANY
    count: int = 1
    seed: int | None = None
    negative_prompt: str | None = None
    input_images: tuple[InputImage, ...] = ()
    aspect_ratio: AspectRatio | None = None
    output_format: OutputFormat | None = None
    options: dict[str, Any] = field(default_factory=dict)  # vendor-only extras, validated by the spec


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """Bytes a provider produced, with what it took to produce them.

    An output served from a URL may come as a ``stream`` still to be downloaded (``data`` is then
    empty and ``mime_type`` unknown): the server reads it into its store as the bytes arrive.
    ``ImageProvider.generate`` hands out downloaded bytes unless asked for streams."""

    data: bytes
    mime_type: str
    provider: str
    provider_model: str
    prompt_sent: str
    parameters: dict[str, Any]  # the payload as sent, minus secrets and inline image bytes
    seed: int | None = None
    prediction_id: str | None = None
    source_url: str | None = None   # the vendor's temporary link, while it lasts (None for inline data)
    stream: OutputStream | None = None   # the download, when not made yet (data is then b"")


# Progress callback: (message) -> awaitable. Providers call it on every state change.
ProgressFn = Callable[[str], Awaitable[None]]


@dataclass(slots=True)
class TaskHooks:
    """What the server learns of, and asks of, the vendor task behind one provider call.

    ``on_task`` is told the task id as soon as the vendor's create request answers (before any
    poll), so the server can record it and a later process can fetch the task by id. Setting
    ``leave_running`` before cancelling the call makes the provider stop waiting *without*
    cancelling the vendor task: a server shutting down leaves it for whichever process
    resumes the job (a real cancellation leaves it False and the task is cancelled)."""

    on_task: Callable[[str], Awaitable[None]] | None = None
    leave_running: bool = False


@dataclass(frozen=True, slots=True)
class ChatReply:
    """What a chat (language) model answered: its text, the tokens it counted, and its cost where known."""

    text: str
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None   # None: the vendor publishes no price we hold
