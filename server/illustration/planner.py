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
from collections.abc import Sequence
from dataclasses import dataclass

from server.illustration.keywords import en_names, en_subjects, en_words, lemma, template_for, zh_tokens
from server.illustration.scenes_text import en_scene, score_en, score_zh, zh_scene, zh_scene_en
from server.illustration.shots import choose_shot
from server.illustration.text import (
    CJK_RUN,
    HAN,
    clean,
    detect_language,
    is_list_section,
    one_line,
    plain,
    sentences,
    shorten,
    split,
    strip_noise,
)
from server.illustration.types import ContentAnalysis, PlannedScene, Purpose, Section
from server.illustration.vocabulary import ANIMATE_EN, LIGHT_CUES_RE, TEMPLATES, Template, concrete_en, gloss
from server.illustration.zh_english import action_clauses, is_person_name

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
                    subjects[key] += weight  # type: ignore[assignment]  # float weights; typeshed's Counter says int
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
        if len(parts) > 1 and len(s.split()) > 16:
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
            return scene, tuple(w for w, f in s.tokens if (f in _NOUN or f.startswith("nr") and not is_person_name(w, f))
                                and len(w) >= 2 and w in scene)[:4]
        she, he = pronouns.get("她", 0), pronouns.get("他", 0)
        return zh_scene_en(list(s.tokens), "a woman" if she > he else "a man" if he > she else "a person")
    scene = en_scene(s.text, set(a.people), pronouns, _character(a))
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


def _picks(a: Analysed, count: int, purpose: Purpose) -> list[tuple[int | None, _Sentence]]:
    """Which sentences become pictures: the best of each chosen section (or of the whole text,
    for a cover), then next-best moments with something to show, in text order."""
    ranked = [(i, s) for i, group in enumerate(a.sentences) for s in sorted(group, key=lambda s: -s.score)]
    by_score = sorted(ranked, key=lambda t: -t[1].score)
    if purpose is Purpose.COVER:
        picks: list[tuple[int | None, _Sentence]] = [(None, s) for _, s in by_score[:count]]
        return picks or [(None, s) for _, s in by_score[:1]]
    best_of: dict[int, _Sentence] = {}
    for i, s in ranked:
        best_of.setdefault(i, s)
    chosen = sorted(sorted(best_of, key=lambda i: -best_of[i].score)[:count])
    picked = [(i, best_of[i]) for i in chosen]
    floor = max((s.score for _, s in picked), default=0) / 3
    extra = [t for t in by_score if t[1] is not best_of.get(t[0]) and t[1].score > min(floor, 1.0)]
    picked += extra[: count - len(picked)]
    picked.sort(key=lambda t: (t[0], a.sentences[t[0]].index(t[1])))   # text order
    return _split_moments(picked, count) if a.analysis.language == "zh" else list(picked)


def _split_moments(picked: Sequence[tuple[int | None, _Sentence]], count: int) -> list[tuple[int | None, _Sentence]]:
    """Too few sentences for ``count`` pictures: a Chinese sentence with more than one picturable
    action (学员们…作画，墙上挂满了作品) gives one picture per action, before any moment is repeated."""
    out = list(picked)
    for section, s in list(out):
        if len(out) >= count:
            break
        groups = action_clauses(list(s.tokens))
        if len(groups) < 2:
            continue
        parts = [(section, _Sentence("".join(w for w, _ in g), s.score, tuple(g))) for g in groups]
        at = out.index((section, s))
        out[at:at + 1] = parts[: count - len(out) + 1]
    return out


def plan_scenes(a: Analysed, count: int, purpose: Purpose, lang: str, seed: int | None) -> list[PlannedScene]:
    """``count`` distinct scenes in ``lang``: one per chosen section (illustration) or the best of the
    whole text (cover); more images than moments show the same moment from another viewpoint."""
    offset = 0 if seed is None else random.Random(seed).randrange(3)
    picks = _picks(a, count, purpose)
    top = a.analysis.keywords[0] if a.analysis.keywords else ""
    product = ""
    if lang == "en" and top in _PRODUCT_WORDS:
        product = (gloss(top) if a.analysis.language == "zh" else top) or ""
    leads = dict(a.words).get(top, 0) >= 4   # the page is about its product
    out: list[PlannedScene] = []
    used: dict[str, set[str]] = {}
    for k in range(count):
        section, sentence = picks[k % len(picks)] if picks else (None, None)
        scene, subjects = _scene_of(a, sentence, lang) if sentence else ("", ())
        if lang == "en":   # an English prompt never carries CJK (an English text may quote Chinese)
            scene = " ".join(CJK_RUN.sub(" ", scene).split())
        if not scene:
            scene, subjects = _fallback_subject(a, lang), ()
        if picks and k >= len(picks):   # more pictures than moments: the same moment, seen otherwise
            things = subjects if a.analysis.language == "zh" else tuple(   # things, not adjectives ("red")
                w for w, _ in en_subjects(scene, set(a.people)) if concrete_en(lemma(w.lower())) == 2)
            scene = _another_view(scene, things, lang, k // len(picks))
        if lang == "en" and a.analysis.language == "en" and re.match(r"(?i)its? ", scene) and (named := product
                                                                                             or _title_noun(a)):
            scene = _name_the_product(scene, named, False)
        elif product and product.lower() not in scene.lower():
            scene = _name_the_product(scene, product, leads)
        template = _section_template(a, section, list(subjects))
        source = sentence.text if sentence else ""
        taken = used.setdefault(scene.lower(), set())
        shot = choose_shot(template, scene if lang == "en" else " ".join(_english(subjects)), lang, taken,
                           k + offset + (purpose is Purpose.COVER))
        taken.add(shot)
        light = _light(source + " " + (a.analysis.sections[section].text if section is not None else ""),
                       template, lang)
        out.append(PlannedScene(k, scene, section, subjects, template.id, shot, light))
    return out


_VIEWS = {"en": ("seen from high above, the whole scene laid out below", "seen from ground level, grass and stones "
                 "in the foreground", "framed by an open window in the foreground"),
          "zh": ("从高处俯瞰，整个场景尽收眼底", "从地面仰视，前景是草叶和石子", "透过前景中敞开的窗户望去")}


def _another_view(scene: str, subjects: tuple[str, ...], lang: str, round_: int) -> str:
    """The second picture of a one-moment text is a detail of its main subject against the rest
    (another picture, not another shot name); later ones see the whole scene from elsewhere."""
    main = subjects[0] if subjects else ""
    back = next((s for s in subjects[1:] if s not in main and main not in s), "")
    if round_ == 1 and main:
        if lang == "zh":
            return f"{main}的特写" + (f"，背景是虚化的{back}" if back else "")
        detail = f"a close detail of the {_phrase(scene, main)}"
        return detail + (f", the {_phrase(scene, back)} soft in the background" if back else "")
    views = _VIEWS["zh" if lang == "zh" else "en"]
    return f"{scene}{'，' if lang == 'zh' else ', '}{views[round_ % len(views)]}"


def _phrase(scene: str, noun: str) -> str:
    """The noun with the adjectives the scene gives it: "red kite" for kite."""
    found = re.search(rf"\b(?:a|an|the)\s+((?:[\w-]+\s+){{0,2}}?{re.escape(noun)}\w*)", scene, re.IGNORECASE)
    return found.group(1) if found else noun.removeprefix("the ")


def _english(words: tuple[str, ...]) -> list[str]:
    return [w if not HAN.search(w) else (gloss(w) or "") for w in words]


def _character(a: Analysed) -> str | None:
    """The text's main animate character ("fox" in a fable), whom a leading "she" or "he" means."""
    for word in a.analysis.keywords:
        if word in ANIMATE_EN and word not in ("people", "family"):
            return word
    return None


def _title_noun(a: Analysed) -> str:
    """What an English text is about, as its title names it ("Introducing Nimbus Desk Lamp" -> lamp)."""
    for word in reversed(en_words(a.analysis.title or "")):
        if concrete_en(lemma(word.lower())) == 2:
            return lemma(word.lower())
    return a.analysis.keywords[0] if a.analysis.keywords else ""


def _name_the_product(scene: str, product: str, leads: bool) -> str:
    """A product page's sentence about "it" names the product; on a page about the product, the
    product leads every scene."""
    first, _, rest = scene.partition(" ")
    if first.lower() in ("it", "its"):
        owner = f"the {product}'s" if first.lower() == "its" else f"the {product}"
        return f"{owner} {rest}"
    return f"the {product}: {scene}" if leads else scene


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
