"""Scenes become the prompts sent: composition, light, the set's cohesion phrase, the style,
and the per-model constraints.

* The scene comes first (image models weigh the start of a prompt most; SD 3.5's CLIP
  encoders read only the first 77 tokens).
* The style is the seed's prefix (``prompts.apply_style``) or, for a prompt written in
  Chinese, the same table in Chinese; models with a native style get it as a parameter.
* Quality constraints (no text, no watermark, no signature) go to ``negative_prompt``
  where the model takes one. They are never written into the prompt: "no text" in a
  prompt tends to invite lettering.
* Thumbnails keep the seed's app-card wording (seed 002) and vary per image.
"""

from __future__ import annotations

from dataclasses import replace

from providers.types import ImageStyle
from server.illustration.text import CJK_RUN, clean, has_cjk, plain, shorten
from server.illustration.types import IllustrationPrompt, PlannedScene, Target
from server.illustration.vocabulary import NEGATIVE, STYLE_ZH
from server.prompts import apply_style

__all__ = ["MAX_PROMPT_CHARS", "THUMBNAIL_NEGATIVE_PROMPT", "THUMBNAIL_PALETTE", "card_name", "compose",
           "styled", "thumbnail_prompt_v2", "thumbnail_scenes"]

MAX_PROMPT_CHARS = 900
MAX_NAME_CHARS = 60
MAX_SCENE_IN_PROMPT = 600
# Seed 002, v2 (Ideogram v3 custom_color_palette), in the seed's order.
THUMBNAIL_PALETTE: tuple[str, ...] = ("#000030", "#1C0C47", "#9900FF", "#4285F4", "#FFFFFF")
# Seed 002, v1 (Flux 1.1 Pro) negative prompt.
THUMBNAIL_NEGATIVE_PROMPT = "blurry, low quality, distorted, deformed"

_THUMBNAIL_VARIANTS = (
    ("one bold central icon-like symbol built from", "以{}构成的醒目中心图标"),
    ("a friendly mascot character working with", "一个友好的吉祥物角色，正在使用{}"),
    ("a simple scene of its core action, showing", "展示其核心功能的简洁场景：{}"),
    ("a bold geometric emblem made of", "由{}组成的大胆几何徽章"),
    ("a small isometric scene of it at work with", "等距视角的小场景，{}"),
    ("a close-up of its most recognisable object among", "最具辨识度的物件特写：{}"),
    ("a clean split composition, before and after, with", "前后对比的分屏构图：{}"),
    ("a playful visual metaphor for what it does, using", "用{}做的有趣视觉隐喻"),
)


def styled(prompt: str, style: ImageStyle, lang: str, target: Target) -> str:
    if lang == "zh" and not target.native_style and style != ImageStyle.ANY:
        return f"{STYLE_ZH[style]}风格，{prompt}"
    return apply_style(prompt, style, native=target.native_style)


def _no_cjk(text: str) -> str:
    return " ".join(CJK_RUN.sub(" ", text).split())


def _finish(parts: list[str], lang: str) -> str:
    glue = "，" if lang == "zh" else ", "
    prompt = glue.join(p.strip(" ,，") for p in parts if p and p.strip(" ,，"))
    return shorten(prompt, MAX_PROMPT_CHARS)


def compose(scenes: list[PlannedScene], *, style: ImageStyle, lang: str, target: Target, cohesion: str,
            negative: str | None = None) -> list[IllustrationPrompt]:
    """The prompt of each scene as sent, with its negative prompt where the model takes one."""
    set_phrase = cohesion if len(scenes) > 1 else ""
    if target.english_only:  # an English-only text encoder maps CJK to unknown tokens: never send it
        scenes = [replace(s, scene=" ".join(CJK_RUN.sub(" ", s.scene).split()), light=_no_cjk(s.light),
                          shot=_no_cjk(s.shot)) for s in scenes]
    neg = (negative or NEGATIVE[lang]) if target.negative_prompt else None
    out: list[IllustrationPrompt] = []
    for s in scenes:
        scene = shorten(s.scene, MAX_SCENE_IN_PROMPT)   # the composition, light and cohesion must survive
        prompt = styled(_finish([scene, s.shot, s.light, set_phrase], lang), style, lang, target)
        if any(p.prompt == prompt for p in out):   # never pay twice for one prompt
            prompt = _finish([prompt, f"view {s.index + 1}" if lang == "en" else f"视角{s.index + 1}"], lang)
        out.append(IllustrationPrompt(s.index, prompt, s.scene, s.section_index, s.subjects, s.template, neg))
    return out


def card_name(name: str | None, fallback: str) -> str:
    """A display name: ``name``, else the first sentence of the fallback's first line, shortened."""
    cleaned = plain(clean(name)).strip("#").strip() if name else ""
    if not cleaned:
        first_line = next((line for line in fallback.split("\n") if line.strip()), "")
        first_line = plain(first_line).strip("#").strip()
        for stop in "。！？.!?":
            first_line = first_line.split(stop)[0]
        cleaned = first_line
    return shorten(cleaned.strip(), MAX_NAME_CHARS)


def thumbnail_scenes(name: str, subjects: list[str], description: str, count: int, lang: str,
                     english_only: bool) -> list[PlannedScene]:
    """Seed 002 v1: an app-store card per image, each with its own composition and subject emphasis."""
    if english_only and has_cjk(name):
        name = ""  # never send CJK to an English-only model; the card is drawn without its name
    if english_only and has_cjk(description):
        description = ""
    out = []
    for k in range(count):
        rotated = subjects[k % len(subjects):] + subjects[: k % len(subjects)] if subjects else []
        shown = rotated[:3]
        en_variant, zh_variant = _THUMBNAIL_VARIANTS[k % len(_THUMBNAIL_VARIANTS)]
        if lang == "zh":
            what = "、".join(shown) or "它的核心功能"
            head = f"为名为“{name}”的AI智能体或应用设计的应用商店缩略图" if name else "AI智能体或应用的应用商店缩略图"
            scene = "，".join(x for x in (head, zh_variant.format(what), "醒目、简洁、一眼就能看懂",
                                          f"它的作用：{description}" if description else "") if x)
        else:
            what = ", ".join(shown) or "its core function"
            head = (f"an app-store thumbnail for the AI agent or app named {name}" if name
                    else "an app-store thumbnail for an AI agent or app")
            scene = ", ".join(x for x in (head, f"{en_variant} {what}",
                                          "bold, simple and understandable at a glance",
                                          f"what it does: {description}" if description else "") if x)
        out.append(PlannedScene(k, scene, None, tuple(shown), "thumbnail"))
    return out


def thumbnail_prompt_v2(name: str, description: str, variant: int = 0) -> str:
    """Seed 002 v2: a retro-futuristic vector pop-art card for Ideogram v3 (English only).

    The name is drawn as bold typography (the seed asks for it) when it has no CJK
    characters. Use with ``THUMBNAIL_PALETTE``; ``variant`` varies the composition.
    """
    app = card_name(name, "")
    if not app:
        raise ValueError("name must contain text")
    composition = _THUMBNAIL_VARIANTS[variant % len(_THUMBNAIL_VARIANTS)][0]
    named = "" if has_cjk(app) else f' with the name "{app}" in bold typography as a prominent element'
    head = f"A striking retro-futuristic vector pop-art illustration{named}: {composition} objects tied to"
    summary = "" if has_cjk(description) else shorten(plain(clean(description or "")), 300)
    what = f"what it does ({summary})" if summary else "what it does"
    tail = ("so its purpose is concrete and understood at a glance. Vibrant limited palette, sharp vector lines, "
            "geometric shapes, flat solid colours without gradients; mid-century futurism meets 1960s "
            "psychedelia; clear visual storytelling.")
    return shorten(f"{head} {what}, {tail}", MAX_PROMPT_CHARS)
