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

import re
from dataclasses import dataclass, field

from server.illustration.text import has_cjk
from server.illustration.vocabulary import ANIMATE_EN, GLOSS_OVERRIDES, gloss, known

__all__ = ["SCENE_VERBS", "action_clauses", "clauses", "ing", "is_person_name", "zh_scene_en"]

# Participles for common scene verbs, where CC-CEDICT's first sense is not the visible action
# (打散 "to scatter": eggs are beaten) or jieba tags a verb-object word as a noun (种菜, 啄米).
SCENE_VERBS: dict[str, str] = {
    "挤满": "crowding", "挂满": "hanging", "长满": "growing", "堆满": "piled", "摆满": "laid out", "坐满": "filling",
    "涌出": "pouring out", "冒出": "rising", "流": "flowing", "飘": "drifting", "落": "falling", "照亮": "illuminating",
    "倒映": "reflecting", "映": "reflecting", "种菜": "growing vegetables", "养蜂": "keeping bees", "采": "gathering",
    "采蜜": "gathering nectar", "观察": "watching", "看": "looking at", "看着": "looking at", "望": "gazing at",
    "撑": "holding", "撑着": "holding", "拿": "holding", "拿着": "holding", "抱": "holding", "举": "raising",
    "站": "standing", "站着": "standing", "坐": "sitting", "坐在": "sitting", "躺": "lying", "走": "walking",
    "跑": "running", "飞": "flying", "游": "swimming", "等": "waiting for", "朗读": "reading aloud", "读": "reading",
    "写": "writing", "画": "drawing", "作画": "painting", "画画": "painting", "盛饭": "serving rice",
    "啄米": "pecking at rice", "啄": "pecking at", "打散": "beating", "搅拌": "stirring", "炒": "stir-frying",
    "翻炒": "stir-frying", "炒制": "roasting", "切": "cutting", "切块": "cutting {} into chunks", "撒": "sprinkling",
    "下锅": "tipping into the wok", "倒": "pouring", "装盘": "plating", "盛": "serving", "煮": "boiling",
    "蒸": "steaming", "烤": "baking", "包": "wrapping", "揉": "kneading", "洗": "washing", "浸没": "submerged",
    "泡": "steeping", "冲泡": "brewing", "喝": "drinking", "采摘": "picking", "种": "planting", "浇水": "watering",
    "举头": "looking up", "抬头": "looking up", "低头": "lowering their head", "思": "longing for",
    "思念": "longing for", "想": "thinking of", "改造": "turning", "盛出": "", "出": "", "带到": "carrying", "划": "rowing", "搬": "carrying",
    "推": "pushing", "拉": "pulling", "骑": "riding", "修": "repairing", "钓鱼": "fishing", "晒": "drying",
    "吹": "blowing", "挂": "hanging", "打印": "printing", "精选": "{}", "是": "", "有": "",
}
# What an existential verb presents is the noun after it: 墙上挂满了作品 "artworks hanging on the wall".
_EXISTENTIAL = frozenset("是 有 挤满 挂满 长满 堆满 摆满 坐满 站满 停着 挂着 落满".split())
_SIMILE = frozenset("疑是 像 好像 如 似 仿佛 宛如".split())
_HANDS = frozenset("打散 搅拌 炒 翻炒 炒制 切 切块 撒 下锅 倒 装盘 盛 盛出 煮 蒸 烤 包 揉 洗 泡 冲泡".split())
_GESTURE = frozenset("举头 抬头 低头 望 思 思念 想 看 看着 站 坐 走".split())
_NO_ACTION = frozenset({"have", "be", "exist", "become", "is", "possess", "succeed", "doubt"})

_LOCATIVE = {"里": "in", "中": "in", "内": "inside", "里面": "inside", "上": "on", "上面": "on", "下": "under",
             "下面": "under", "旁": "beside", "边": "beside", "旁边": "beside", "前": "in front of",
             "后": "behind", "间": "among", "之间": "among", "周围": "around", "四周": "around",
             "外": "outside", "附近": "near"}
# Place words (jieba ``s``) that are a noun and a locative in one: 桌上 "on the table".
_PLACE_WORDS = {"远处": ("in", "the distance"), "地上": ("on", "the floor"), "脚边": ("at", "their feet"),
                "身边": ("beside", "them"), "窗外": ("outside", "the window"), "门口": ("at", "the doorway"),
"天上": ("in", "the sky"), "水中": ("in", "the water")}
_PREPOSITION = {"在": "in", "于": "in", "从": "from", "到": "to", "往": "toward", "向": "toward"}
_ADJECTIVES = {"旧": "old", "新": "new", "长": "long", "大": "big", "小": "small", "热": "hot", "冷": "cold",
               "透明": "clear", "明亮": "bright", "金黄": "golden", "嫩绿": "fresh green", "白色": "white",
               "黑色": "black", "红色": "red", "绿色": "green", "黄色": "yellow", "蓝色": "blue", "灰色": "grey"}
_PLURAL_COUNTS = re.compile(r"^(一排排|一些|许多|很多|几|成群|一群|满|无数|一串串|一堆堆|层层)")
_NOUN = frozenset({"n", "ns", "nz", "nl", "ng", "s", "nr", "nrt", "nrfg"})
_PUNCT = frozenset("，。！？；：,.!?;:")
_COLOURS = frozenset("white black red green blue yellow grey gray brown purple pink orange golden silver".split())
_PEOPLE = frozenset("""man woman child children girl boy grandfather grandmother mother father farmer tea farmer
fisherman worker passenger residents resident student students teacher doctor nurse chef scientist engineer
old man young girl teenage boy villager villagers family friend kid baby people person""".split()) | ANIMATE_EN
_MASS = frozenset("""wood neon coolant celadon heat steam light frost silk milk tea rain snow water seawater honey rice
bread fog people moonlight home nectar smoke mist sand grass liquor""".split())
_UNCOUNTED = frozenset("shrimp fish sheep deer".split())
_SURNAMES = frozenset("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
                      "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤欧"
                      "司上诸")
_MATERIAL = {"wood": "wooden", "stone": "stone", "bamboo": "bamboo", "glass": "glass"}
_THE_PLACE = re.compile(r"(?:Ocean|Sea|River|Mountains|Desert|Lake|Strait|Bay)$")
_ON = frozenset("street old street rooftop beach seabed floor hillside road island table long table wall desk".split())
MAX_CLAUSES = 3
MAX_VERBS = 2
_DIRECTIONAL = frozenset("回 上 下 出 进 起 来 去 出来 起来 下来 上来 回来".split())


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
