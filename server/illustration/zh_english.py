"""A Chinese sentence rebuilt as an English scene for models that read only English.

Word lists ("a shrimp among a hot spring, a vent and a chimney") tell an image model
nothing about what happens. Each clause (split at ，；) is parsed from jieba's part-of-
speech tags into who or what acts, the action with its object, and where, and written
the way prompt writers do: subject + participle + object + place ("white shrimp crowding
around the hot-spring vent, minerals pouring out from the chimney").

* Nouns (n, ns, nz, s, and ``nr`` words the dictionary knows) are glossed through
  CC-CEDICT (``vocabulary.gloss``); person names become a role and never appear.
* Verbs: ``SCENE_VERBS`` (curated participles for common scene verbs, including the
  verb-object words jieba tags as nouns: 种菜, 作画, 盛饭), else CC-CEDICT's "to …" sense.
* Locatives (f: 里 上 旁 前 间 周围 …) and prepositions (在 从 把 给 用) place a noun
  phrase: in, on, beside, in front of, among, around, from; the object of 把; for; with.
* 是 / 有 / 挤满 / 挂满 present what is there ("artworks hanging on the wall"); 疑是 / 像 /
  如 compare ("like frost on the floor"). A clause with no subject takes "hands" for a
  kitchen or craft action, else continues the previous clause or, for a person's gesture,
  "a lone figure". A clause that rebuilds to nothing but a list of things is left out:
  fewer, correct words rather than a list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.illustration.text import has_cjk
from server.illustration.vocabulary import GLOSS_OVERRIDES, gloss, known
from server.illustration.zh_tables import (
    _ADJECTIVES,
    _COLOURS,
    _DIRECTIONAL,
    _EXISTENTIAL,
    _GESTURE,
    _HANDS,
    _LOCATIVE,
    _MASS,
    _MATERIAL,
    _NO_ACTION,
    _NOUN,
    _ON,
    _PLACE_WORDS,
    _PLURAL_COUNTS,
    _PREPOSITION,
    _PUNCT,
    _SIMILE,
    _SURNAMES,
    _THE_PLACE,
    _UNCOUNTED,
    MAX_CLAUSES,
    MAX_VERBS,
    SCENE_VERBS,
)

__all__ = ["SCENE_VERBS", "action_clauses", "clauses", "ing", "is_person_name", "zh_scene_en"]


def is_person_name(word: str, flag: str) -> bool:
    """jieba tags many ordinary words ``nr``; a name is one the dictionary does not know."""
    return flag in ("nr", "nrfg", "nrt") and 2 <= len(word) <= 4 and word[0] in _SURNAMES and not known(word)


# --------------------------------------------------------------------------- noun phrases


@dataclass
class _Item:
    head: str
    mods: list[str] = field(default_factory=list)
    owner: str = ""
    plural: bool = False
    fixed: bool = False          # a role or a fixed place phrase: no article added

    def text(self, definite: bool = False) -> str:
        words = " ".join([*(_MATERIAL.get(m, m) for m in self.mods), self.head])
        if self.fixed:
            return words
        if self.plural:
            words = _plural(words)
        if self.owner and self.owner[:1].isupper():
            words = f"{words} of {'the ' if _THE_PLACE.search(self.owner) else ''}{self.owner}"
        elif self.owner:
            words = f"{self.owner} {words}"
        if words[:1].isupper() or self.plural or self.head.split()[-1] in _MASS or _plural_gloss(self.head) \
                or words.split()[-1] in _UNCOUNTED and not definite:
            return f"the {words}" if definite and not words[:1].isupper() else words
        return ("the " if definite else "an " if words[0] in "aeiou" else "a ") + words


def _plural_gloss(head: str) -> bool:
    return head.endswith(("ren", "people")) or head.endswith("s") and not head.endswith(("ss", "us", "is"))


def _plural(words: str) -> str:
    *rest, last = words.split()
    if last in _MASS or last in _UNCOUNTED or last.endswith(("s", "ren")):
        return words
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    elif last.endswith(("ch", "sh", "x")):
        last += "es"
    else:
        last += "s"
    return " ".join([*rest, last])


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass
class _Phrase:
    items: list[_Item] = field(default_factory=list)

    def text(self, definite: bool = False) -> str:
        return _join([i.text(definite) for i in self.items]) if self.items else ""

    def heads(self) -> list[str]:
        return [i.head for i in self.items if not i.fixed]


@dataclass
class _Verb:
    ing: str
    word: str
    obj: _Phrase | None = None
    after: str = ""               # a second verb on the object: 观察蜜蜂采蜜 "watching bees gathering nectar"


@dataclass
class _Clause:
    subject: _Phrase | None = None
    verbs: list[_Verb] = field(default_factory=list)
    places: list[tuple[str, str]] = field(default_factory=list)   # (preposition, place), outer first
    extras: list[str] = field(default_factory=list)                # "for the children", "with a tablet"
    simile: bool = False
    existential: bool = False
    ba: _Phrase | None = None       # 把 X: the object of the verb that follows


# --------------------------------------------------------------------------- parsing


def _resegment(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """jieba's HMM invents words (望明月, 采蜜); one the dictionary does not know and that is not
    a name is split again with the dictionary only."""
    from server.illustration.keywords import _jieba, _jieba_lock

    out: list[tuple[str, str]] = []
    for word, flag in tokens:
        if flag.startswith("nr") and len(word) > 1 and not is_person_name(word, flag) and not known(word) \
                and word not in SCENE_VERBS:
            cut = next((k for k in range(1, len(word)) if known(word[:k]) and known(word[k:])), None)
            posseg = _jieba()
            with _jieba_lock:
                parts = [word[:cut], word[cut:]] if cut else [word]
                out.extend((p.word, p.flag) for part in parts for p in posseg.cut(part, HMM=False))
        else:
            out.append((word, flag))
    return out


def clauses(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """A sentence's clauses, split at ，；。 (、 lists stay inside a clause)."""
    out: list[list[tuple[str, str]]] = [[]]
    for word, flag in tokens:
        if word in _PUNCT:
            if out[-1]:
                out.append([])
        elif word.strip():
            out[-1].append((word, flag))
    return [c for c in out if c]


def _is_verb(word: str, flag: str) -> bool:
    return word in SCENE_VERBS or (flag.startswith("v") and flag != "vn")


def _verb_ing(word: str) -> str | None:
    if word in SCENE_VERBS:
        return SCENE_VERBS[word]
    found = gloss(word, verb=True)
    if found is None and len(word) == 2 and word[1] in "着了过在到至":
        return _verb_ing(word[0])
    if found is None or found in _NO_ACTION or len(found.split()) > 2:
        return None
    return ing(found)


def ing(verb: str) -> str:
    head, _, tail = verb.partition(" ")
    if head.endswith("ie"):
        head = head[:-2] + "ying"
    elif head.endswith("e") and not head.endswith(("ee", "ye", "oe")):
        head = head[:-1] + "ing"
    elif 3 <= len(head) <= 4 and head[-1] not in "aeiouwxy" and head[-2] in "aeiou" and head[-3] not in "aeiou":
        head = head + head[-1] + "ing"
    else:
        head += "ing"
    return f"{head} {tail}".strip()


def _noun(word: str, flag: str) -> str | None:
    if flag not in _NOUN and not (flag == "t" and word in GLOSS_OVERRIDES):   # 明月 is tagged a time word
        return None
    en = gloss(word)
    if not en or has_cjk(en):
        return None
    return en


def parse(tokens: list[tuple[str, str]], role: str) -> _Clause:
    c = _Clause()
    np: _Phrase | None = None
    mode = ""            # where the pending noun phrase goes: "", place, ba, with, for
    prep = ""
    mods: list[str] = []
    plural = False
    joined = owner_next = False
    skip: set[int] = set()

    def flush(loc: str | None = None) -> None:
        nonlocal np, mode, prep
        if np is None or not np.items:
            np = None
            if loc is None:
                mode, prep = "", ""
            return
        if mode == "drop":
            pass
        elif loc is not None or mode == "place":
            where = np.text(definite=True)
            at = prep if prep in ("from", "to", "toward") else (loc or prep or "in")
            c.places.append(("on" if at == "in" and loc is None and np.items[-1].head in _ON else at, where))
        elif mode == "into" and c.verbs:
            c.verbs[-1].after = f"into {np.text()}"
        elif mode == "ba":
            c.ba = np                              # the object of the coming verb
        elif mode == "with":
            c.extras.append(f"with {np.text()}")
        elif mode == "for":
            c.extras.append(f"for {np.text(definite=True)}")
        elif c.verbs and c.verbs[-1].obj is None:
            c.verbs[-1].obj = np
        elif c.verbs:
            c.verbs[-1].obj.items.extend(np.items)  # type: ignore[union-attr]
        elif c.subject is None:
            c.subject = np
        np, mode, prep = None, "", ""

    for i, (word, flag) in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if word in _PLACE_WORDS:
            loc, where = _PLACE_WORDS[word]
            flush()
            c.places.append((loc, where))
        elif flag == "s" and len(word) >= 2 and word[-1] in _LOCATIVE and (en := gloss(word[:-1])):
            flush()
            c.places.append((_LOCATIVE[word[-1]], _Item(en, mods).text(definite=True)))
            mods = []
        elif flag == "f" and word in _LOCATIVE and np is not None:
            flush(_LOCATIVE[word])
        elif word == "疑" and nxt[0] == "是" or word in _SIMILE:
            flush()
            c.simile = True
        elif word == "是" and c.simile:
            continue
        elif i in skip or word in _DIRECTIONAL and i and _is_verb(*tokens[i - 1]):
            continue          # 倒回, 撒上: the direction of the verb before
        elif word in ("成", "成为") and c.verbs:
            flush()
            mode = "into"
        elif word in _ADJECTIVES and c.verbs and np is None and nxt[1] not in _NOUN and nxt[0] != "的":
            c.verbs[-1].after = f"until {_ADJECTIVES[word]}"   # 炒至金黄: "stir-frying until golden"
        elif is_person_name(word, flag):
            np = np or _Phrase()
            np.items.append(_Item(role, fixed=True))
        elif word in _ADJECTIVES and (not _is_verb(word, flag) or nxt[0] == "的"):
            mods.append(_ADJECTIVES[word])
        elif flag == "m" or flag == "q":
            plural = plural or bool(_PLURAL_COUNTS.match(word))
        elif word not in SCENE_VERBS and (en := _noun(word, flag)) is not None:
            if en in _COLOURS:
                mods.append(en)
                continue
            if np is not None and np.items and not joined:
                last = np.items[-1]
                if owner_next:       # 潜水器的探照灯: an owner
                    np.items[-1] = _Item(en, mods, last.text().removeprefix("a ").removeprefix("an ")
                                         if not last.fixed else last.head, plural)
                else:                # 热泉 喷口: a compound
                    last.mods = [*last.mods, last.head.replace(" ", "-")] if " " in last.head else \
                        [*last.mods, last.head]
                    last.head, last.plural = en, last.plural or plural
                    last.mods = [*mods, *last.mods]
            else:
                np = np or _Phrase()
                np.items.append(_Item(en, mods, plural=plural or word.endswith("们")))
            mods, plural, joined, owner_next = [], False, False, False
        elif word in ("的", "之") and np is not None:
            owner_next = True
        elif word in ("和", "与", "及", "、") and np is not None:
            joined = True
        elif flag == "p" or word in _PREPOSITION:
            flush()
            if word in _PREPOSITION:
                mode, prep = "place", _PREPOSITION[word]
            elif word == "把":
                mode = "ba"
            elif word == "用":
                mode = "with"
            elif word in ("给", "为"):
                mode = "for"
        elif _is_verb(word, flag):
            if word in _EXISTENTIAL and not (c.subject or np and mode == ""):
                c.existential = True
            if word in ("是", "有") and np is not None and mode == "":
                c.existential = True
                flush("inside" if word == "有" else "in")
            ing = _verb_ing(word)
            j = i + 1
            while j < len(tokens) and _is_verb(*tokens[j]):
                j += 1
            if j < len(tokens) and tokens[j][0] == "的":   # 打印出来的作品: a relative clause, left out
                skip.update(range(i, j + 1))
                if mode == "":
                    np = None
                continue
            if np is not None and mode == "" and c.verbs and c.verbs[-1].obj is None and ing:
                flush()          # the object of the verb before: 观察 蜜蜂 | 采
                c.verbs[-1].after = ing
                continue
            flush()
            if not ing and word not in _EXISTENTIAL:
                mode = "drop"     # 出锅: its noun is not an object of the verb before
                continue
            c.verbs.append(_Verb(ing or "", word, c.ba))   # "" and None read alike below
            c.ba = None
            if len(word) > 1 and word.endswith("到"):
                mode, prep = "place", "to"       # 带到屋顶: carrying … to the rooftop
            mods, joined = [], False
        # anything else (particles, adverbs, pronouns, time words) is left out
    flush()
    return c


# --------------------------------------------------------------------------- writing


def _render(c: _Clause, previous_subject: bool) -> tuple[str, bool]:
    """(the clause in English, whether it has its own subject)."""
    places = " ".join(f"{p} {w}" for p, w in reversed(c.places[-2:]))
    extras = " ".join(c.extras)
    verbs = [v for v in c.verbs if v.ing or v.obj is not None][:MAX_VERBS]
    if c.simile:
        things = c.subject or next((v.obj for v in verbs if v.obj), None)
        return (" ".join(x for x in ("like", things.text() if things else "", places) if x) if things else "",
                False)
    actions = []
    for v in verbs:
        obj = v.obj.text() if v.obj else ""
        if "{}" in v.ing:
            actions.append(" ".join(x for x in (v.ing.format(obj).replace("  ", " "), v.after) if x))
        else:
            actions.append(" ".join(x for x in (v.ing, obj, v.after) if x))
    if c.existential and c.subject is None:
        shown = next(((v, v.obj) for v in verbs if v.obj), None)
        if shown is None:
            return "", False
        v, thing = shown
        return " ".join(x for x in (thing.text(), v.ing, v.after, extras, places) if x), False
    action = " and ".join(a for a in actions if a)
    subject = c.subject.text() if c.subject else ""
    if not subject and action:
        if not previous_subject and any(v.word in _HANDS for v in verbs):
            subject = "hands"
        elif not previous_subject and any(v.word in _GESTURE for v in verbs):
            subject = "a lone figure"
    if not action:
        if c.subject and len(c.subject.items) <= 2:   # a thing somewhere: "bright moonlight in front of the bed"
            return " ".join(x for x in (subject, extras, places) if x), True
        return "", False
    if not subject and not previous_subject and not extras and not places and not any(v.obj for v in verbs):
        return "", False
    return " ".join(x for x in (subject, action, extras, places) if x), bool(subject)


def _place_only(c: _Clause) -> bool:
    return bool(c.places) and c.subject is None and not c.verbs and not c.simile


def _picturable(c: _Clause) -> bool:
    """An action with its own actor: a subject, or what an existential verb presents (墙上挂满了作品);
    not 是 / 有, and not a step that continues the clause before (倒回鸡蛋)."""
    shows = [v for v in c.verbs if v.ing]
    return not c.simile and bool(shows) and (c.subject is not None or c.existential and shows[0].obj is not None)


def action_clauses(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The sentence as groups of clauses, one per picturable action (学员们…作画 | 墙上挂满了作品);
    setting clauses (工作坊里, 远处是青山和村庄) join the action next to them. One group: the
    sentence is one moment."""
    groups: list[list[tuple[str, str]]] = []
    lead: list[tuple[str, str]] = []
    comma = [("，", "x")]
    for part in clauses(_resegment(tokens)):
        if _picturable(parse(part, "a person")):
            groups.append([*lead, *comma, *part] if lead else part)
            lead = []
        elif groups:
            groups[-1] = [*groups[-1], *comma, *part]
        else:
            lead = [*lead, *comma, *part] if lead else part
    return groups or ([lead] if lead else [])


def zh_scene_en(tokens: list[tuple[str, str]], role: str = "a person") -> tuple[str, tuple[str, ...]]:
    """An English scene rebuilt from a Chinese sentence: (scene, English subjects)."""
    parsed = [parse(part, role) for part in clauses(_resegment(tokens))]
    rendered: list[str] = []
    pending_places: list[tuple[str, str]] = []
    has_subject = False
    subjects: list[str] = []
    for c in parsed:
        if _place_only(c):
            pending_places.extend(c.places)
            continue
        if pending_places:
            c.places = [*pending_places, *c.places]
            pending_places = []
        text, own = _render(c, has_subject)
        if not text:
            continue
        has_subject = has_subject or own
        rendered.append(text)
        for phrase in (c.subject, *(v.obj for v in c.verbs)):
            if phrase is not None:
                subjects.extend(phrase.heads())
        subjects.extend(w.removeprefix("the ") for _, w in c.places)
        if len(rendered) == MAX_CLAUSES:
            break
    if pending_places and rendered:
        rendered[-1] += " " + " ".join(f"{p} {w}" for p, w in reversed(pending_places[-2:]))
    scene = ", ".join(rendered)
    return scene, tuple(dict.fromkeys(s for s in subjects if s and not has_cjk(s)))
