"""Compositions that suit the subject: a street or a coastline wants a wide shot, a cup or a
pair of hands a close-up, people at work a medium shot. A template (the seed's table) may
name its own compositions (product shots, overhead food shots); within a set no scene gets
the same composition twice.
"""

from __future__ import annotations

import re

from server.illustration.vocabulary import Template

__all__ = ["choose_shot", "scale_of"]

_WIDE = frozenset("""street streets city skyline river sea ocean forest mountain mountains hill hills field fields
valley harbour harbor beach sky town village landscape park lake island coast coastline shore bay desert glacier
plain meadow square avenue road railway bridge ferries ferry fleet tram trams station seabed darkness abyss
panorama horizon countryside farmland terraces""".split())
_CLOSE = frozenset("""cup cups mug bowl bowls pan plate plates bottle lid spout leaf leaves egg eggs jar jars spoon
teaspoon hand hands fingers button zest bud buds teapot page pages ring watch flower flowers bee bees petal petals
key keys detail coin coins dumpling dumplings pancake pancakes bead beads needle thread stitch drop drops crumb""".split())

_GENERIC = {
    "en": {"wide": ("wide shot", "wide establishing shot", "high-angle wide view"),
           "medium": ("medium shot", "eye-level medium shot", "three-quarter view"),
           "close": ("close-up", "macro close-up", "close-up with shallow depth of field")},
    "zh": {"wide": ("全景", "远景", "高角度全景"),
           "medium": ("中景", "平视中景", "四分之三侧面视角"),
           "close": ("特写", "微距特写", "浅景深特写")},
}
_WORD = re.compile(r"[A-Za-z]+")


def scale_of(english: str) -> str:
    """wide, medium or close, from the scene's words (English)."""
    words = [w.lower() for w in _WORD.findall(english)]
    wide = sum(w in _WIDE for w in words)
    close = sum(w in _CLOSE for w in words)
    if wide > close:
        return "wide"
    if close > wide:
        return "close"
    return "medium"


def choose_shot(template: Template, english: str, lang: str, taken: set[str], k: int) -> str:
    """A composition for one scene: the template's own when it has a family (product, food), else by
    scale, rotated by ``k`` for variety; never one in ``taken`` (already used for this scene)."""
    own = template.shots_zh if lang == "zh" else template.shots
    family = own if template.id in ("product", "food") else _GENERIC[lang][scale_of(english)]
    options = list(family[k % len(family):] + family[: k % len(family)])
    options += [s for scale in ("medium", "wide", "close") for s in _GENERIC[lang][scale] if s not in options]
    return next((shot for shot in options if shot not in taken), options[0])
