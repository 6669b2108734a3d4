"""Where scenes come from, best first: the caller, a prompt-writing language model, the planner.

* **Caller** scenes are checked (1-8 short descriptions; no CJK for a model that reads
  only English) and used as written; the server adds style, cohesion and constraints.
* A **language model** (``EASEL_PROMPT_MODEL``) gets the sections and returns JSON
  ``{"scenes": [...]}``. ``check_model_scenes`` validates it: count, language, length,
  no meta text. Anything wrong means the planner writes the scenes instead, and the
  result says why.
* The **planner** (``planner.plan_scenes``) is deterministic and always available.
"""

from __future__ import annotations

import json
import re

from server.illustration.text import HAN, clean, has_cjk, one_line, shorten
from server.illustration.types import ContentAnalysis, PlannedScene, Purpose, Target
from server.illustration.vocabulary import META_PATTERNS

__all__ = ["MAX_SCENE_CHARS", "SceneRejected", "check_caller_scenes", "check_model_scenes", "scene_messages"]

MAX_SCENES = 8
MAX_SCENE_CHARS = 400
_MAX_MODEL_WORDS = 80
_MIN_MODEL_WORDS = 5


class SceneRejected(ValueError):
    """The language model's reply cannot be used; the message says why (for the result's notes)."""


def check_caller_scenes(scenes: list[str], target: Target) -> list[PlannedScene]:
    if not 1 <= len(scenes) <= MAX_SCENES:
        raise ValueError(f"scenes: give 1 to {MAX_SCENES} scene descriptions, one per image; got {len(scenes)}")
    out = []
    for i, raw in enumerate(scenes):
        scene = one_line(clean(raw)).strip(" ,，")
        if not scene:
            raise ValueError(f"scenes: scene {i + 1} is empty; write one concrete scene per image")
        if len(scene) > MAX_SCENE_CHARS:
            raise ValueError(f"scenes: scene {i + 1} has {len(scene)} characters; keep each under "
                             f"{MAX_SCENE_CHARS} (subject, action, setting, composition, light)")
        if target.english_only and has_cjk(scene):
            raise ValueError(f"scenes: {target.name} reads English only and scene {i + 1} contains CJK "
                             "characters; write the scenes in English")
        out.append(PlannedScene(i, scene, None, (), "caller"))
    return out


_LANGUAGE_NAME = {"en": "English", "zh": "Simplified Chinese"}


def scene_messages(analysis: ContentAnalysis, count: int, purpose: Purpose, lang: str) -> list[dict[str, str]]:
    """Chat messages asking for ``count`` scenes as JSON, in the prompt language ``lang``."""
    language = _LANGUAGE_NAME[lang]
    what = ("one striking cover image for the whole text" if purpose is Purpose.COVER
            else "illustrations, one per important part of the text, in text order")
    system = (
        "You write scene descriptions for a text-to-image model. Each scene is one sentence of 20 to 60 words "
        f"in {language}: a concrete subject, what it is doing, the setting, the composition and the light, "
        "taken from what the text actually describes. Do not mention the text, the article, the series, "
        "illustrations or images; do not add art style words, artist names, text, captions or lettering; "
        "do not name real private people (use a role such as 'a beekeeper'). "
        'Reply with JSON only: {"scenes": ["...", "..."]}.')
    sections = "\n\n".join(f"[{s.index + 1}] {s.title + ': ' if s.title else ''}{shorten(one_line(s.text), 700)}"
                           for s in analysis.sections[:12])
    user = (f"Write exactly {count} distinct scene(s) for {what}, in {language}.\n\n"
            f"Title: {analysis.title or '(none)'}\n\n{sections}")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")


def check_model_scenes(reply: str, count: int, lang: str) -> list[PlannedScene]:
    """The model's scenes, or ``SceneRejected`` saying what was wrong with them."""
    try:
        data = json.loads(_FENCE.sub("", reply.strip()))
    except ValueError:
        raise SceneRejected("its reply was not JSON") from None
    scenes = data.get("scenes") if isinstance(data, dict) else data
    if not isinstance(scenes, list) or not all(isinstance(s, str) for s in scenes):
        raise SceneRejected('its reply had no "scenes" list of strings')
    if len(scenes) != count:
        raise SceneRejected(f"it returned {len(scenes)} scene(s) instead of {count}")
    out = []
    for i, raw in enumerate(scenes):
        scene = one_line(clean(raw)).strip(" ,，")
        if lang == "en" and has_cjk(scene):
            raise SceneRejected(f"scene {i + 1} is not in English")
        if lang == "zh" and len(HAN.findall(scene)) * 2 < len(scene.replace(" ", "")):
            raise SceneRejected(f"scene {i + 1} is not in Chinese")
        size = len(HAN.findall(scene)) // 2 if lang == "zh" else len(scene.split())
        if not _MIN_MODEL_WORDS <= size <= _MAX_MODEL_WORDS:
            raise SceneRejected(f"scene {i + 1} is {'too short' if size < _MIN_MODEL_WORDS else 'too long'}")
        if META_PATTERNS.search(scene):
            raise SceneRejected(f"scene {i + 1} talks about the text or the image instead of showing a scene")
        out.append(PlannedScene(i, scene, None, (), "language_model"))
    if len({s.scene.lower() for s in out}) != len(out):
        raise SceneRejected("it repeated a scene")
    return out
