"""The prompt-writing language model (``EASEL_PROMPT_MODEL``): ask, check, or fall back.

The chat call itself is the provider's (``ImageProvider.complete``: vendor URLs and
payloads stay in ``providers/``). Any failure (timeout, vendor error, refusal,
invalid JSON, wrong count or language, meta text) returns no scenes and a one-line
reason; the caller then uses the planner and says so in the result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio

from providers.errors import ImageGenError
from providers.types import ChatReply
from server.illustration.sources import SceneRejected, check_model_scenes, scene_messages
from server.illustration.types import ContentAnalysis, PlannedScene, Purpose

__all__ = ["ModelAttempt", "ask_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelAttempt:
    name: str                              # "dashscope:qwen-plus"
    scenes: list[PlannedScene] | None      # None: fall back to the planner
    note: str                              # what happened, one line
    reply: ChatReply | None = None         # tokens and cost, when the model answered


async def ask_model(provider: object, name: str, model: str, analysis: ContentAnalysis, count: int,
                    purpose: Purpose, lang: str, timeout: float) -> ModelAttempt:
    messages = scene_messages(analysis, count, purpose, lang)
    try:
        with anyio.fail_after(timeout):
            reply: ChatReply = await provider.complete(model, messages, timeout=timeout)  # type: ignore[attr-defined]
    except TimeoutError:
        return ModelAttempt(name, None, f"{name} did not answer within {timeout:g} s; the planner wrote the scenes")
    except ImageGenError as exc:
        log.warning("prompt model %s failed: %s", name, exc)
        return ModelAttempt(name, None, f"{name} failed ({type(exc).__name__}); the planner wrote the scenes")
    try:
        scenes = check_model_scenes(reply.text, count, lang)
    except SceneRejected as exc:
        return ModelAttempt(name, None, f"{name}'s scenes were not usable ({exc}); the planner wrote the scenes",
                            reply)
    return ModelAttempt(name, scenes, f"{name} wrote the scenes", reply)
