"""The nouns of illustration planning: purposes, sections, scenes, prompts, the plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from providers.base import ENGLISH, ModelSpec

__all__ = ["ContentAnalysis", "IllustrationPlan", "IllustrationPrompt", "PlannedScene", "Purpose", "SceneSource",
           "Section", "Target"]


class Purpose(StrEnum):
    """Which prompt family ``illustrate_content`` writes."""

    ILLUSTRATION = "illustration"  # scenes for the text's sections
    COVER = "cover"  # one striking image for the whole text (variations when count > 1)
    THUMBNAIL = "thumbnail"  # seed 002: a name plus a description as a bold app card


class SceneSource(StrEnum):
    CALLER = "caller"
    LANGUAGE_MODEL = "language_model"
    PLANNER = "planner"


@dataclass(frozen=True)
class Section:
    index: int
    title: str | None
    text: str
    keywords: tuple[str, ...]   # its most frequent picturable nouns, in the text's language


@dataclass(frozen=True)
class ContentAnalysis:
    language: str  # "en" | "zh"
    title: str | None
    sections: tuple[Section, ...]
    keywords: tuple[str, ...]
    themes: tuple[str, ...]


@dataclass(frozen=True)
class PlannedScene:
    index: int
    scene: str                    # what is in the picture, in the prompt's language
    section_index: int | None
    subjects: tuple[str, ...]
    template: str
    shot: str = ""                # planner scenes only: caller and model scenes carry their own
    light: str = ""


@dataclass(frozen=True)
class Target:
    """What the prompts are written for: read from the model's catalog entry."""

    name: str = "an English-only model"
    languages: tuple[str, ...] = ENGLISH
    native_style: bool = False
    negative_prompt: bool = False
    palette: bool = False

    @classmethod
    def of(cls, spec: ModelSpec) -> Target:
        return cls(spec.name, spec.prompt_languages, spec.native_style, spec.supports_negative_prompt,
                   spec.supports_palette)

    @property
    def english_only(self) -> bool:
        return "zh" not in self.languages

    def writes(self, text_language: str) -> str:
        """The prompt language for a text: Chinese only for a Chinese text and a Chinese-first model."""
        return "zh" if text_language == "zh" and self.languages[:1] == ("zh",) else "en"


@dataclass(frozen=True)
class IllustrationPrompt:
    index: int
    prompt: str                   # as sent: style, cohesion and constraints applied
    scene: str
    section_index: int | None
    subjects: tuple[str, ...]
    template: str
    negative_prompt: str | None = None
    palette: tuple[str, ...] = ()


@dataclass(frozen=True)
class IllustrationPlan:
    analysis: ContentAnalysis
    prompts: tuple[IllustrationPrompt, ...]
    language: str                 # the prompts' language
    style_cohesion: str
    scene_source: SceneSource = SceneSource.PLANNER
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary. Sections carry an excerpt and a length, not their full text."""
        from server.illustration.text import one_line, shorten

        a = self.analysis
        return {
            "analysis": {
                "language": a.language,
                "prompt_language": self.language,
                "scene_source": self.scene_source.value,
                "notes": list(self.notes),
                "title": a.title,
                "keywords": list(a.keywords),
                "themes": list(a.themes),
                "sections": [
                    {"index": s.index, "title": s.title, "excerpt": shorten(one_line(s.text), 160),
                     "chars": len(s.text), "keywords": list(s.keywords)}
                    for s in a.sections
                ],
            },
            "prompts": [
                {"index": p.index, "prompt": p.prompt, "scene": p.scene, "section_index": p.section_index,
                 "subjects": list(p.subjects), "template": p.template, "negative_prompt": p.negative_prompt}
                for p in self.prompts
            ],
            "style_cohesion": self.style_cohesion,
        }
