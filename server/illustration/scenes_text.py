"""One sentence of a text becomes a scene: what is in the picture, in the prompt's language.

English sentences are kept nearly as written (they already name a subject, an action
and a setting), with reporting clauses, connectives, quotes and person names taken
out. A Chinese sentence becomes a Chinese scene the same way for models that read
Chinese; for English-only models each clause is rebuilt as subject + participle +
object + place (``zh_english``).
"""

from __future__ import annotations

import re

from server.illustration.keywords import EN_FUNCTION_WORDS, en_subjects, en_words, zh_tokens
from server.illustration.vocabulary import gloss
from server.illustration.zh_english import ing as _ing
from server.illustration.zh_english import is_person_name, zh_scene_en

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
