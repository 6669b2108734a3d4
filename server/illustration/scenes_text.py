"""One sentence of a text becomes a scene: what is in the picture, in the prompt's language.

English sentences are kept nearly as written (they already name a subject, an action
and a setting), with reporting clauses, connectives, quotes and person names taken
out. A Chinese sentence becomes a Chinese scene the same way for models that read
Chinese; for English-only models it is rebuilt from its nouns and its main verb,
glossed through CC-CEDICT (words without a usable gloss are left out).
"""

from __future__ import annotations

import re

from server.illustration.keywords import EN_FUNCTION_WORDS, en_subjects, en_words, zh_tokens
from server.illustration.text import has_cjk
from server.illustration.vocabulary import ANIMATE_EN, gloss, known

__all__ = ["MAX_SCENE_WORDS", "en_scene", "score_en", "score_zh", "zh_scene", "zh_scene_en"]

MAX_SCENE_WORDS = 32
MAX_SCENE_CHARS_ZH = 56

_REPORTING = re.compile(r"^.{0,90}?\b(?:said|says|warn(?:s|ed)?|explain(?:s|ed)?|note(?:s|d)?|report(?:s|ed)?|"
                        r"believe(?:s|d)?|argue(?:s|d)?|told \w+|announce(?:s|d)?|claim(?:s|ed)?|add(?:s|ed)|"
                        r"found|find|show(?:s|ed)?|know|knew|remember(?:s|ed)?)\s+that\s+", re.IGNORECASE)
_CONNECTIVE = re.compile(r"^(?:once upon a time|but|and|so|then|however|meanwhile|still|yet|now|today|also|"
                         r"instead|finally|first|next|later|soon|suddenly|once|at last|after that|in the end|"
                         r"of course|for example|in fact|here|there)\b,?\s+", re.IGNORECASE)
_QUOTE = re.compile(r"[\"“][^\"”]{0,300}[\"”]|'[^']{12,300}'")
_PARENS = re.compile(r"\s*[(（][^)）]{0,120}[)）]")
_PRONOUN_START = {"she": "a woman", "he": "a man", "they": "people", "i": "a person", "we": "a group of people",
                  "you": "a person"}
_HANDS_VERBS = frozenset("""whisk fold fry stir chop slice dice add pour bake knead mix stack serve boil roast
grill season sprinkle spread beat crack roll cut peel grate simmer steam drain brush press shape pinch wrap fill
plant prune water sand glue paint sew stitch carve polish tie""".split())
_SPLIT_AT = re.compile(r"[,;:—–]\s*")


def _role(pronouns: dict[str, int]) -> str:
    she, he = pronouns.get("she", 0), pronouns.get("he", 0)
    return "a woman" if she > he else "a man" if he > she else "a person"


def _trim_words(text: str, limit: int) -> str:
    words = text.split()
    if len(words) <= limit:
        return text
    cut = " ".join(words[:limit])
    for m in reversed(list(_SPLIT_AT.finditer(cut))):
        if len(cut[: m.start()].split()) >= limit // 2:
            return cut[: m.start()]
    while words[:limit] and words[limit - 1].lower() in EN_FUNCTION_WORDS:
        limit -= 1
    return " ".join(words[:limit])


def en_scene(sentence: str, people: set[str], pronouns: dict[str, int], character: str | None = None) -> str:
    """The drawable part of an English sentence: person names replaced by a role, a leading "she"
    or "he" by the story's ``character`` when it has one, the main verb as a participle."""
    s = _PARENS.sub("", _QUOTE.sub("", sentence))
    s = _REPORTING.sub("", s)
    for _ in range(2):
        s = _CONNECTIVE.sub("", s.strip())
    s = s.strip(" ,;:-—–")
    role = _role(pronouns)
    for name in sorted(people, key=len, reverse=True):
        s = re.sub(rf"\b{re.escape(name)}'s\b", f"{role}'s", s)
        s = re.sub(rf"\b{re.escape(name)}\b", role, s)
    words = s.split()
    if words and words[0].lower() in ("she", "he") and character:
        words[0] = f"the {character}"
    elif words and words[0].lower() in _PRONOUN_START:
        words[0] = _PRONOUN_START[words[0].lower()]
    elif words and words[0].lower() in _HANDS_VERBS:   # a recipe step: show the hands doing it
        words[0] = "hands " + _ing(words[0].lower())
    s = " ".join(words)
    s = re.sub(r"\b(a (?:woman|man|person))( and \1)+\b", "two people", s)
    s = re.split(r",? (?:then|and then|before|until) ", s, maxsplit=1)[0] if len(s.split()) > 8 else s
    s = _participle(s)
    s = _trim_words(s, MAX_SCENE_WORDS).rstrip(" .!?,;:…")
    first = s.split()[0] if s else ""
    if first.lower() in EN_FUNCTION_WORDS:
        s = first.lower() + s[len(first):]
    return s


_IRREGULAR = {"fell": "falling", "ran": "running", "sat": "sitting", "stood": "standing", "flew": "flying",
              "swam": "swimming", "rode": "riding", "drove": "driving", "held": "holding", "lay": "lying",
              "hung": "hanging", "threw": "throwing", "caught": "catching", "drew": "drawing", "wore": "wearing",
              "ate": "eating", "drank": "drinking", "sang": "singing", "spun": "spinning", "shone": "shining",
              "grew": "growing", "broke": "breaking", "swept": "sweeping", "slept": "sleeping", "wove": "weaving",
              "dug": "digging", "rose": "rising", "blew": "blowing", "crept": "creeping", "knelt": "kneeling",
              "leapt": "leaping", "struck": "striking", "fed": "feeding", "led": "leading", "built": "building"}
_AUXILIARY = frozenset("was were had has have is are been be being am would could should will did do does not "
                       "never".split())
_ACTION = re.compile(r"\b(?:is|are|was|were)\s+\w{3,}ing\b", re.IGNORECASE)
_VERB_ED = re.compile(r"^[a-z]{3,}ed$")


def _past_to_participle(word: str) -> str | None:
    """"carried" -> "carrying", "crowded" -> "crowding"; None when the spelling is ambiguous
    ("glided": glide or glid?)."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if not _VERB_ED.match(word):
        return None
    stem = word[:-2]
    if stem.endswith("i"):
        return stem[:-1] + "ying"
    if stem[-1] == stem[-2] and stem[-1] not in "aeiou":   # stopped -> stopping
        return stem + "ing"
    if stem[-1] in "wy" or (stem[-1] not in "aeiou" and stem[-2] not in "aeiou"):   # rowed, crowded, danced
        return stem + "ing"
    return None


_LEADING_PHRASE = re.compile(r"^((?:in|at|on|across|under|below|above|after|before|during|beneath|inside|outside|"
                             r"behind|beyond|along|near|through|one|two|three|four|five|six|seven|eight|nine|ten|"
                             r"every|each|that|this|last|next)\b[^,]{0,80}, )", re.IGNORECASE)


def _participle(scene: str) -> str:
    """The first past-tense verb after the subject of each clause, as a participle: "a small fox
    carrying a paper lantern", the form image prompts read best in."""
    lead = _LEADING_PHRASE.match(scene)
    head, scene = (lead.group(1), scene[lead.end():]) if lead else ("", scene)
    clauses = re.split(r"(, (?:and|while|as) )", scene)
    for i in range(0, len(clauses), 2):
        words = clauses[i].split()
        for j, word in enumerate(words[:8]):
            low = word.lower().strip(",;:")
            if j == 0 and i == 0:
                continue   # the subject
            if low in _AUXILIARY or (j and "," in words[j - 1]):
                break
            if j and words[j - 1].lower() in ("the", "a", "an", "his", "her", "their", "its", "my", "our", "of"):
                continue   # "the flooded street": an adjective
            if (ing := _past_to_participle(low)) is not None:
                words[j] = ing + word[len(low):]
                clauses[i] = " ".join(words)
                break
    return head + "".join(clauses)


def score_en(sentence: str, people: set[str]) -> float:
    """How much of a picture a sentence holds: picturable nouns, not too long, not a question."""
    subjects = en_subjects(sentence, people)
    best = sorted((s for _, s in subjects), reverse=True)[:5]
    score = sum(best)
    n = len(en_words(sentence))
    if n < 5:
        score -= 2
    if n > 45:
        score -= (n - 45) / 10
    if sentence.rstrip().endswith("?"):
        score -= 2
    if re.match(r"^(i|we|you)\b", sentence.strip(), re.IGNORECASE):
        score -= 1
    if sum(ch.isdigit() for ch in sentence) > 6:
        score -= 1.5
    if _QUOTE.fullmatch(sentence.strip()):
        score -= 3
    if _ACTION.search(sentence) or _participle(sentence) != sentence:
        score += 1.5   # something happens: a picture, not a statement
    return score


# --------------------------------------------------------------------------- Chinese

_NOUN = frozenset({"n", "ns", "nz", "nl", "ng", "s"})
_PERSON = frozenset({"nr", "nrfg", "nrt"})
_ZH_REPORTING = re.compile(r"^(?:据[^，,]{0,30}(?:报道|介绍|了解)|[^，,。]{0,12}(?:说|表示|介绍|认为|指出|称|透露|告诉记者)"
                           r"|记者[^，,]{0,10}(?:了解到|获悉|看到))[，,：:]\s*")
_ZH_QUOTE = re.compile(r"“[^”]{12,200}”|「[^」]{12,200}」")
_ZH_CONNECTIVE = re.compile(r"^(?:但是|但|而且|然后|于是|因此|所以|同时|此外|另外|不过|其实|如今|现在|今天|后来)[，,]?")


def score_zh(tokens: list[tuple[str, str]]) -> float:
    nouns = [w for w, f in tokens if f in _NOUN and len(w) >= 2]
    score = min(len(nouns), 6) * 1.0 + sum(0.5 for w, f in tokens if f in _NOUN and gloss(w))
    chars = sum(len(w) for w, _ in tokens)
    if chars < 8:
        score -= 2
    if chars > 90:
        score -= (chars - 90) / 20
    if any(f in _PERSON for _, f in tokens):
        score -= 0.5
    if sum(1 for w, f in tokens if f == "m") > 3:
        score -= 1.5
    if tokens and tokens[-1][0] in ("？", "?"):
        score -= 2
    return score


def _zh_role(pronouns: dict[str, int]) -> str:
    she, he = pronouns.get("她", 0), pronouns.get("他", 0)
    return "一位女子" if she > he else "一位男子" if he > she else "一个人"


def zh_scene(sentence: str, pronouns: dict[str, int]) -> str:
    """A Chinese sentence as a Chinese scene: names become a role, reporting and quotes go."""
    s = _ZH_QUOTE.sub("", _PARENS.sub("", sentence)).strip()
    s = _ZH_CONNECTIVE.sub("", _ZH_REPORTING.sub("", s))
    role = _zh_role(pronouns)
    out = []
    for word, flag in zh_tokens(s):
        if is_person_name(word, flag):
            out.append(role)
        else:
            out.append(word)
    s = "".join(out).strip("，,。！？；;：: ")
    if len(s) > MAX_SCENE_CHARS_ZH:
        cut = s[:MAX_SCENE_CHARS_ZH]
        comma = max(cut.rfind("，"), cut.rfind("；"), cut.rfind("、"))
        s = cut[:comma] if comma >= MAX_SCENE_CHARS_ZH // 2 else cut
    return s.strip("，,。！？；;：:、 ")


_PEOPLE_EN = frozenset("man woman child girl boy grandfather grandmother mother father farmer fisherman worker "
                       "passenger resident residents student teacher doctor nurse chef scientist engineer old man "
                       "young girl teenage boy people tea farmer villager villagers family friend kid baby".split())
_SETTING_EN = frozenset("street teahouse kitchen room house garden city village mountain sea deep sea river lake "
                        "market office laboratory factory station school park forest field rooftop courtyard "
                        "temple shop restaurant beach harbour harbor island road alley old street hospital "
                        "classroom library warehouse port farm tea garden residential compound countryside valley "
                        "desert seabed ocean hillside sky workshop studio bookstore cafe".split()) | {
    "control room", "rice paddy", "paddy field", "tea garden", "bamboo forest"}
_ANIMATE = _PEOPLE_EN | ANIMATE_EN


_MASS_NOUNS = frozenset("""wood neon temperature coolant celadon heat steam light frost silk milk tea rain snow water
seawater honey rice bread fog people""".split())


def _article(noun: str) -> str:
    """"a lantern", "an egret"; names, plurals and mass nouns without an article."""
    if noun[:1].isupper() or noun.endswith(("s", "water", "steel", "ren")) or noun in _MASS_NOUNS:
        return noun
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _ing(verb: str) -> str:
    head, _, tail = verb.partition(" ")
    if head.endswith("ie"):
        head = head[:-2] + "ying"
    elif head.endswith("e") and not head.endswith(("ee", "ye", "oe")):
        head = head[:-1] + "ing"
    elif (len(head) <= 4 and len(head) >= 3 and head[-1] not in "aeiouwxy" and head[-2] in "aeiou"
          and head[-3] not in "aeiou"):
        head = head + head[-1] + "ing"
    else:
        head += "ing"
    return f"{head} {tail}".strip()


_SURNAMES = frozenset("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
                      "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤欧"
                      "司上诸")
_COLOURS = frozenset("white black red green blue yellow grey gray brown purple pink orange golden silver light dark "
                     "bright pale".split())


def is_person_name(word: str, flag: str) -> bool:
    """jieba tags many ordinary words ``nr``; a name is one the dictionary does not know."""
    return flag in _PERSON and 2 <= len(word) <= 4 and word[0] in _SURNAMES and not known(word)


def zh_scene_en(tokens: list[tuple[str, str]]) -> tuple[str, tuple[str, ...]]:
    """An English scene rebuilt from a Chinese sentence: its subject and what it is doing (the verb
    after it, glossed), its setting, and its other nouns: (scene, English subjects)."""
    agent = setting = action = None
    used: set[int] = set()
    things: list[str] = []
    for i, (word, flag) in enumerate(tokens):
        if i in used or is_person_name(word, flag) or not (flag in _NOUN or flag in _PERSON):
            continue
        if flag == "ns" and len(word) < 2:   # a lone character tagged as a place is a mis-split
            continue
        en = gloss(word)
        if not en or has_cjk(en) or all(w in _COLOURS for w in en.split()):
            continue
        if agent is None and (en in _ANIMATE or en.removesuffix("s") in _ANIMATE or en.endswith("ren")):
            agent = en
            action, taken = _action_after(tokens, i)
            used |= taken
        elif flag == "ns" or en in _SETTING_EN:
            setting = setting or en   # a second place is left out: one setting per picture
        elif en not in things and len(things) < 3:
            things.append(en)
    if agent is None and (acting := _acting_thing(tokens)) is not None:
        agent, action = acting   # no person or animal: the thing that acts ("a searchlight illuminating …")
        things = [t for t in things if t not in agent and t not in action]
    subjects = tuple(x for x in (agent, *things, setting) if x)
    joined = _join([_article(t) for t in things]) if things else ""
    text = _article(agent) + (f" {action}" if action else "") if agent else joined
    if setting and not (action and setting in action):
        where = setting if setting[:1].isupper() and not _THE_PLACE.search(setting) else f"the {setting}"
        text = f"{text} {_ON.get(setting, 'in')} {where}" if text else where
    if agent and things:
        text = f"{text}, with {joined}" if action else f"{text} among {joined}"
    return text.strip(), subjects


_THE_PLACE = re.compile(r"(?:Ocean|Sea|River|Mountains|Desert|Lake|Strait|Bay)$")
_FILLER = frozenset({"ul", "uj", "uz", "ug", "uv", "ud", "a", "d", "m", "q"})   # particles, adverbs, counts
_ON = {"street": "on", "rooftop": "on", "old street": "on", "beach": "on", "island": "on", "road": "on",
       "hillside": "on", "farm": "on"}


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _acting_thing(tokens: list[tuple[str, str]]) -> tuple[str, str] | None:
    """("submersible's searchlight", "illuminating black seawater") from 潜水器的探照灯照亮了黑色的海水:
    the noun before the first verb, its owner, and the verb with its object (a thing needs an object
    to show an action)."""
    found = _subject_before_verb(tokens)
    if found is None:
        return None
    i, agent = found
    action, _ = _action_after(tokens, i)
    if action is None or " " not in action:
        return None
    owner = gloss(tokens[i - 2][0]) if i >= 2 and tokens[i - 1][0] == "的" and tokens[i - 2][1] in _NOUN else None
    if owner and owner != agent and owner not in _SETTING_EN:
        agent = f"{owner}'s {agent}"
    return agent, action


def _subject_before_verb(tokens: list[tuple[str, str]]) -> tuple[int, str] | None:
    """(position, gloss) of the noun right before the sentence's first verb, if it has a gloss."""
    for j, (_, flag) in enumerate(tokens):
        if flag.startswith("v") and flag != "vn":
            k = j - 1
            while k >= 0 and tokens[k][1] in ("d", "ul", "f"):
                k -= 1
            if k >= 0 and (tokens[k][1] in _NOUN or tokens[k][1] in _PERSON) and (en := gloss(tokens[k][0])):
                return k, en
            return None
    return None


def _verb(word: str) -> str | None:
    """"look at" for 看着: the verb's gloss, or its first character's when an aspect particle follows."""
    found = gloss(word, verb=True)
    if found is None and len(word) == 2 and word[1] in "着了过":
        found = gloss(word[0], verb=True)
    return found if found and len(found.split()) <= 2 else None


def _action_after(tokens: list[tuple[str, str]], i: int) -> tuple[str | None, set[int]]:
    """"picking tender tea buds" from 茶农 | 在 | 茶园里 | 采摘 | 嫩芽, "standing in the rice paddy"
    from 白鹭 | 站 | 在 | 稻田: the first verb within five tokens of the subject, with its object or
    its place; and the token positions it used."""
    for j in range(i + 1, min(i + 6, len(tokens))):
        word, flag = tokens[j]
        if flag in ("x", "w") or word in "，。！？；":
            return None, set()
        if not flag.startswith("v") or flag == "vn":
            continue
        verb = _verb(word)
        if verb is None or verb in ("have", "be", "exist", "become", "is", "possess"):
            return None, set()
        k = j + 1
        place = k < len(tokens) and tokens[k][0] in ("在", "到", "进", "上") and tokens[k][1] in ("p", "v", "f")
        k += 1 if place else 0
        colour = None
        while k < len(tokens) and (tokens[k][1] in _FILLER or (gloss(tokens[k][0]) or "") in _COLOURS):
            colour = gloss(tokens[k][0]) if tokens[k][1] in _NOUN else colour   # 黑色的海水: "black seawater"
            k += 1
        if k < len(tokens) and tokens[k][1] in _NOUN and (obj := gloss(tokens[k][0])):
            obj = f"{colour} {obj}" if colour else obj
            if place:
                where = obj if obj[:1].isupper() else f"the {obj}"
                return f"{_ing(verb)} {_ON.get(obj, 'in')} {where}", {k}
            return f"{_ing(verb)} {_article(obj)}", {k}
        return _ing(verb), set()
    return None, set()
