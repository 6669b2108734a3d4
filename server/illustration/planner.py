"""The deterministic planner: a text becomes ``count`` scenes, with no network and no model.

1. The text is cleaned; code, bylines and datelines go (``text.strip_noise``).
2. It is split into sections; list-like sections (ingredients, specs) are used only
   when nothing else is left.
3. Every sentence is scored for what it shows (picturable nouns, length, no
   questions); each chosen section gives its best sentence, turned into a scene in
   the prompt's language (``scenes_text``).
4. The seed's keyword -> template table, matched on whole words with at least two
   hits, picks a composition and a default light; light the text itself names wins.

Same content, count, purpose, seed and prompt language: same plan.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass

from server.illustration.keywords import en_names, en_subjects, en_words, template_for, zh_tokens
from server.illustration.scenes_text import en_scene, score_en, score_zh, zh_scene, zh_scene_en
from server.illustration.text import (
    clean, detect_language, is_list_section, one_line, plain, sentences, shorten, split, strip_noise,
)
from server.illustration.types import ContentAnalysis, PlannedScene, Purpose, Section
from server.illustration.vocabulary import LIGHT_CUES_RE, TEMPLATES, Template, gloss

__all__ = ["Analysed", "analyse", "plan_scenes"]

_SECTION_SUBJECTS = 6
_PRODUCT_WORDS = next(t.en | t.zh for t in TEMPLATES if t.id == "product")
_NOUN = frozenset({"n", "ns", "nz", "nl", "ng"})


@dataclass(frozen=True)
class _Sentence:
    text: str
    score: float
    tokens: tuple[tuple[str, str], ...] = ()   # Chinese only


@dataclass(frozen=True)
class Analysed:
    analysis: ContentAnalysis
    sentences: tuple[tuple[_Sentence, ...], ...]   # per section, in text order
    people: frozenset[str]                         # English person names
    pronouns: tuple[tuple[str, int], ...]
    words: tuple[tuple[str, float], ...]           # whole-text subject weights (template matching)


def analyse(content: str) -> Analysed:
    text = strip_noise(clean(content)).strip() or clean(content).strip()
    lang = detect_language(text)
    title, raw = split(text, lang)
    listy = [is_list_section(body) for _, body in raw]
    all_sentences = [s for _, body in raw for s in sentences(body)]
    people, _places = en_names(all_sentences) if lang == "en" else (set(), set())
    pronoun_words = ("she", "he", "her", "him") if lang == "en" else ("她", "他")
    counts = Counter(w.lower() for s in all_sentences for w in (en_words(s) if lang == "en" else s)
                     if w.lower() in pronoun_words)
    pronouns = {"she": counts["she"] + counts["her"], "he": counts["he"] + counts["him"]} if lang == "en" else \
        {"她": counts["她"], "他": counts["他"]}

    per_section: list[tuple[_Sentence, ...]] = []
    sections: list[Section] = []
    whole: Counter[str] = Counter()
    for i, (section_title, body) in enumerate(raw):
        scored: list[_Sentence] = []
        subjects: Counter[str] = Counter()
        for s in _units(sentences(body), lang):
            if lang == "zh":
                tokens = tuple(zh_tokens(s))
                scored.append(_Sentence(s, score_zh(list(tokens)) - (3 if listy[i] else 0), tokens))
                for w, f in tokens:
                    if f in _NOUN and len(w) >= 2:
                        subjects[w] += 1
            else:
                scored.append(_Sentence(s, score_en(s, people) - (3 if listy[i] else 0)))
                for key, weight in en_subjects(s, people):
                    subjects[key] += weight
        per_section.append(tuple(scored))
        whole.update(subjects)
        sections.append(Section(i, section_title, body, tuple(w for w, _ in subjects.most_common(_SECTION_SUBJECTS))))
    template = template_for(whole, lang)
    analysis = ContentAnalysis(
        language=lang, title=shorten(one_line(title), 120) if title else None, sections=tuple(sections),
        keywords=tuple(w for w, _ in whole.most_common(12)),
        themes=(template.id,) if template.id != "default" else ())
    return Analysed(analysis, tuple(per_section), frozenset(people), tuple(pronouns.items()),
                    tuple(whole.items()))


_CLAUSE = re.compile(r",\s+(?:and|but|while|as|so|where|which)\s+|;\s+|\s+[—–]\s+")


def _units(found: list[str], lang: str) -> list[str]:
    """Sentences and, for long English ones, their clauses: the best clause may be the picture."""
    if lang != "en":
        return found
    out = []
    for s in found:
        parts = [p for p in _CLAUSE.split(s) if len(p.split()) >= 6]
        if len(parts) > 1 and len(s.split()) > 22:
            out.extend(parts)   # a long sentence: its best clause is the picture
        else:
            out.append(s)
    return out


def _light(text: str, template: Template, lang: str) -> str:
    for pattern, en, zh in LIGHT_CUES_RE:
        if pattern.search(text):
            return zh if lang == "zh" else en
    return template.light_zh if lang == "zh" else template.light


def _scene_of(a: Analysed, s: _Sentence, lang: str) -> tuple[str, tuple[str, ...]]:
    """(scene, subjects) of one sentence in the prompt language ``lang``."""
    pronouns = dict(a.pronouns)
    if a.analysis.language == "zh":
        if lang == "zh":
            scene = zh_scene(s.text, pronouns)
            return scene, tuple(w for w, f in s.tokens if f in _NOUN and len(w) >= 2 and w in scene)[:4]
        return zh_scene_en(list(s.tokens))
    scene = en_scene(s.text, set(a.people), pronouns)
    subjects = tuple(dict.fromkeys(k for k, _ in en_subjects(scene, set(a.people))))[:4]
    return scene, subjects


def _section_template(a: Analysed, index: int | None, scene_words: list[str]) -> Template:
    words: Counter[str] = Counter()
    for w in scene_words:
        words[w] += 2
    if index is not None:
        words.update(dict.fromkeys(a.analysis.sections[index].keywords, 1))
    found = template_for(words, a.analysis.language)
    return found if found.id != "default" else template_for(dict(a.words), a.analysis.language)


def _fallback_subject(a: Analysed, lang: str) -> str:
    if a.analysis.language == "zh" and lang == "en":
        for w in a.analysis.keywords:
            if (g := gloss(w)) is not None:
                return g
        return "a quiet everyday scene"
    title = a.analysis.title or ""
    return plain(title) or (a.analysis.keywords[0] if a.analysis.keywords else "a quiet everyday scene")


def plan_scenes(a: Analysed, count: int, purpose: Purpose, lang: str, seed: int | None) -> list[PlannedScene]:
    """``count`` distinct scenes in ``lang``: one per chosen section (illustration) or the best of the
    whole text (cover); more images than sections take each section's next-best sentence."""
    offset = 0 if seed is None else random.Random(seed).randrange(3)
    ranked: list[tuple[int, _Sentence]] = []
    for i, group in enumerate(a.sentences):
        ranked.extend((i, s) for s in sorted(group, key=lambda s: -s.score))
    if purpose is Purpose.COVER:
        order = sorted(ranked, key=lambda t: -t[1].score)
        picks = [(None, s) for _, s in order[:count]]
    else:
        best_of = {}
        for i, s in ranked:
            best_of.setdefault(i, s)
        chosen = sorted(sorted(best_of, key=lambda i: -best_of[i].score)[:count])
        picks = [(i, best_of[i]) for i in chosen]
        extra = [t for t in sorted(ranked, key=lambda t: -t[1].score) if t[1] is not best_of.get(t[0])]
        picks += [(i, s) for i, s in extra[: count - len(picks)]]
        picks.sort(key=lambda t: (t[0], -t[1].score))
    out: list[PlannedScene] = []
    seen: set[str] = set()
    for k in range(count):
        section, sentence = picks[k % len(picks)] if picks else (None, None)
        scene, subjects = _scene_of(a, sentence, lang) if sentence else ("", ())
        if not scene:
            scene, subjects = _fallback_subject(a, lang), ()
        template = _section_template(a, section, list(subjects))
        shots = template.shots_zh if lang == "zh" else template.shots
        shot = shots[(k + offset + (purpose is Purpose.COVER)) % len(shots)]
        top = a.analysis.keywords[0] if a.analysis.keywords else ""
        if lang == "en" and top in _PRODUCT_WORDS and dict(a.words).get(top, 0) >= 4:
            product = gloss(top) if a.analysis.language == "zh" else top
            if product and product.lower() not in scene.lower():
                scene = f"the {product}: {scene}"   # a product page is about its product
        source = sentence.text if sentence else ""
        light = _light(source + " " + (a.analysis.sections[section].text if section is not None else ""),
                       template, lang)
        key = f"{scene}|{shot}".lower()
        if key in seen:  # fewer moments than images and shots: the count disambiguates
            shot = f"{shot}, view {k + 1}" if lang == "en" else f"{shot}，视角{k + 1}"
        seen.add(key)
        out.append(PlannedScene(k, scene, section, subjects, template.id, shot, light))
    return out


_SUMMARY_SPLIT = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")


def summary(text: str, limit: int) -> str:
    """The first sentences of ``text`` that fit in ``limit`` characters."""
    flat = plain(text)
    if len(flat) <= limit:
        return flat
    taken = ""
    for sentence in _SUMMARY_SPLIT.split(flat):
        glue = "" if not taken or taken[-1] in "。！？" else " "
        if len(taken) + len(glue) + len(sentence) > limit:
            break
        taken = taken + glue + sentence
    return taken or shorten(flat, limit)
