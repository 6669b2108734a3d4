"""illustrate_content's planning: a text in, ``count`` prompts an image model renders well out.

Modules, in the order a text goes through them:

* ``text``        cleaning, language, bylines/code out, sections, sentences
* ``keywords``    picturable words, names, the seed's keyword -> template match
* ``vocabulary``  templates, light, cohesion and style phrases, CC-CEDICT glosses
* ``scenes_text`` one sentence -> one scene, in the prompt's language
* ``planner``     the deterministic planner: sections -> scenes
* ``sources``     caller scenes and the prompt-writing language model's reply, checked
* ``assemble``    scenes -> prompts as sent (style, cohesion, negative prompt, thumbnails)

``plan_illustrations`` is CPU work (jieba, CC-CEDICT): call it from a worker thread.
"""

from __future__ import annotations

from providers.types import ImageStyle
from server.illustration.assemble import (
    MAX_PROMPT_CHARS,
    THUMBNAIL_NEGATIVE_PROMPT,
    THUMBNAIL_PALETTE,
    card_name,
    compose,
    thumbnail_prompt_v2,
    thumbnail_scenes,
)
from server.illustration.planner import Analysed, analyse, plan_scenes, summary
from server.illustration.sources import SceneRejected, check_caller_scenes, check_model_scenes, scene_messages
from server.illustration.text import clean, detect_language
from server.illustration.types import (
    ContentAnalysis,
    IllustrationPlan,
    IllustrationPrompt,
    PlannedScene,
    Purpose,
    SceneSource,
    Section,
    Target,
)
from server.illustration.vocabulary import NEGATIVE, cohesion, gloss

__all__ = [
    "MAX_CONTENT_CHARS", "MAX_COUNT", "MAX_PROMPT_CHARS", "NEGATIVE", "THUMBNAIL_NEGATIVE_PROMPT",
    "THUMBNAIL_PALETTE", "Analysed", "ContentAnalysis", "IllustrationPlan", "IllustrationPrompt", "PlannedScene",
    "Purpose", "SceneRejected", "SceneSource", "Section", "Target", "analyse", "analyze_content",
    "check_model_scenes", "detect_language", "plan_illustrations", "prompt_lines", "scene_messages",
    "thumbnail_prompt_v2",
]

MAX_CONTENT_CHARS = 20_000
MAX_COUNT = 8


def _check(content: str, count: int, purpose: Purpose | str, seed: int | None) -> Purpose:
    if not isinstance(content, str) or not clean(content).strip():
        raise ValueError("content must contain text")
    if len(content) > MAX_CONTENT_CHARS:
        raise ValueError(f"content is too long: {len(content):,} characters; the limit is {MAX_CONTENT_CHARS:,}")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be an integer from 1 to {MAX_COUNT}, got {count!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an integer or null, got {seed!r}")
    try:
        return Purpose(purpose)
    except ValueError:
        allowed = ", ".join(p.value for p in Purpose)
        raise ValueError(f"purpose must be one of {allowed}, got {purpose!r}") from None


def analyze_content(content: str) -> ContentAnalysis:
    """Language, title, sections, keywords and themes of a text."""
    _check(content, 1, Purpose.ILLUSTRATION, None)
    return analyse(content).analysis


def plan_illustrations(
    content: str,
    count: int,
    purpose: Purpose | str = Purpose.ILLUSTRATION,
    *,
    seed: int | None = None,
    name: str | None = None,
    style: ImageStyle = ImageStyle.ANY,
    target: Target | None = None,
    scenes: list[str] | None = None,
    model_scenes: list[PlannedScene] | None = None,
    notes: tuple[str, ...] = (),
    analysed: Analysed | None = None,
) -> IllustrationPlan:
    """``count`` prompts for ``purpose``, written for ``target`` in ``style``.

    Scenes come from ``scenes`` (the caller's), else ``model_scenes`` (a language model's,
    already checked), else the deterministic planner. Raises ``ValueError`` naming the field.
    """
    purpose = _check(content, count, purpose, seed)
    target = target or Target()
    a = analysed or analyse(content)
    lang = target.writes(a.analysis.language)
    set_phrase = cohesion(style, lang)
    source = SceneSource.PLANNER
    if scenes is not None:
        planned, source = check_caller_scenes(scenes, target), SceneSource.CALLER
        if len(planned) != count:
            raise ValueError(f"count: {count} differs from the {len(planned)} scene(s) given; leave count out "
                             "or give one scene per image")
    elif model_scenes is not None:
        planned, source = model_scenes, SceneSource.LANGUAGE_MODEL
    elif purpose is Purpose.THUMBNAIL:
        app = card_name(name, a.analysis.title or clean(content))
        if name is not None and not card_name(name, ""):
            raise ValueError("name: it has no visible characters after cleaning; give the app or agent's name")
        subjects = _card_subjects(a, lang)
        description = summary("\n".join(s.text for s in a.analysis.sections), 240 if lang == "en" else 100)
        planned = thumbnail_scenes(app, list(dict.fromkeys(subjects)), description, count, lang,
                                   target.english_only)
    else:
        planned = plan_scenes(a, count, purpose, lang, seed)
    prompts = compose(planned, style=style, lang=lang, target=target, cohesion=set_phrase,
                      negative=(THUMBNAIL_NEGATIVE_PROMPT + ", " + NEGATIVE["en"]) if purpose is Purpose.THUMBNAIL
                      and lang == "en" else None)
    if purpose is Purpose.THUMBNAIL and target.palette and source is SceneSource.PLANNER:
        app = card_name(name, a.analysis.title or clean(content))
        prompts = [IllustrationPrompt(p.index, styled_v2, p.scene, None, p.subjects, "thumbnail_v2",
                                      p.negative_prompt, THUMBNAIL_PALETTE)
                   for p in prompts
                   for styled_v2 in [thumbnail_prompt_v2(app or "this app", content, p.index)]]
    return IllustrationPlan(a.analysis, tuple(prompts), lang, set_phrase if count > 1 else "", source, notes)


def _card_subjects(a: Analysed, lang: str) -> list[str]:
    """The text's most frequent picturable nouns, in the prompt's language."""
    if a.analysis.language == "zh" and lang == "en":
        return list(dict.fromkeys(g for w in a.analysis.keywords if (g := gloss(w))))[:6]
    return list(a.analysis.keywords[:6])


def prompt_lines(plan: IllustrationPlan) -> str:
    """Every prompt as sent, one line each, for the tool's text content."""
    lines = [f"{p.index + 1}. {p.prompt}" + (f"  [negative: {p.negative_prompt}]" if p.negative_prompt else "")
             for p in plan.prompts]
    return "\n".join(lines)
