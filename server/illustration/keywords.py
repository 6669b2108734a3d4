"""Words of a text that can be drawn: English and Chinese tokens, names, subjects, templates.

English has no tagger here (no model weights, no download): content words are
found with a stopword list, crude singularisation and a concreteness score (known
picturable nouns up, abstract suffixes and adverbs down); capitalised words met in
the middle of a sentence are names, kept for places ("in London") and replaced by
a role for people. Chinese uses jieba's part-of-speech tagger: nouns are subjects,
``nr`` tokens are person names and never reach a prompt.

jieba is imported lazily on the first Chinese text; its logger is quietened so
nothing reaches stdout.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from typing import Any

from server.illustration.vocabulary import DEFAULT_TEMPLATE, GLOSS_OVERRIDES, TEMPLATES, Template, concrete_en

__all__ = ["EN_STOPWORDS", "en_names", "en_subjects", "en_words", "lemma", "template_for", "zh_tokens"]

EN_FUNCTION_WORDS = frozenset("""
a about above across after again against ago all almost alone along already also although always am among an
and another any anybody anyone anything anyway anywhere are around as at away back be became because become
becomes been before behind being below beside besides between beyond both but by can cannot could did do does
doing done down during each either else enough etc even ever every everybody everyone everything everywhere
except few for from further had has have having he hence her here hers herself him himself his how however i
if in indeed instead into is it its itself just least less many may me meanwhile might mine more moreover most
mostly much must my myself neither never nevertheless next no nobody none nor not nothing now nowhere of off
often on once one only onto or other others otherwise our ours ourselves out over own per perhaps please quite
rather really same several she should since so some somebody someone something sometime sometimes somewhat
somewhere still such than that the their theirs them themselves then there therefore these they this those
though through throughout thus to together too toward towards under until up upon us very via was we well were
what whatever when whenever where whereas wherever whether which while who whoever whole whom whose why will
with within without would yet you your yours yourself yourselves let lets
""".split())
EN_STOPWORDS = EN_FUNCTION_WORDS | frozenset("""
say says said make makes made making get gets got getting go goes went gone going know knows knew known take
takes took taken taking see sees saw seen come comes came coming think thinks thought look looks looked want
wants wanted give gives gave given use uses used using find finds found tell tells told ask asks asked seem
seems seemed feel feels felt try tries tried leave leaves left call calls called keep keeps kept begin began
show shows showed shown hear heard put puts mean means meant need needs needed help helps helped turn turns
turned start starts started include includes included including continue set like likes liked bring brings
brought happen happened provide provides allow allows add adds added spend spent offer offers consider appear
expect stay remain suggest require required decide hold holds held stand stood lose lost pay paid meet met lead
led understand watch follow stop create created speak read write wrote written sit sat run ran move moved live
lived believe change changed learn learned new good great high low old big small large little long short young
important different early late real best better worse worst sure free able easy hard right full last first
second third certain clear possible recent major simple main true various likely lot lots kind kinds sort
sorts part parts number way ways thing things fact facts case cases example examples point points time times
year years day days today tomorrow yesterday week weeks month months one two three four five six seven eight
nine ten hundred thousand million billion actually simply probably certainly especially usually finally
quickly slowly nearly exactly maybe yes okay ok mr mrs ms dr st vs january february march april june july
august september october november december monday tuesday wednesday thursday friday saturday sunday near far
instead inside outside per cent percent step steps minute minutes hour hours version release feature features
support supports user users people person idea ideas question answer problem issue result results team
""".split())
_KEEP_S = frozenset("series species news lens gas bus glass chaos canvas atlas perhaps glasses scissors "
                    "trousers headphones".split())
_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+(?:['\u2019\-][A-Za-z\u00c0-\u024f]+)*")
_DETERMINERS = frozenset("the a an his her their its our my your this these those that every each some".split())
_PLACE_PREPS = frozenset("in at across from near over to of into through around outside inside the".split())


def lemma(word: str) -> str:
    if len(word) <= 3 or word in _KEEP_S or word.endswith(("ss", "us", "is", "ous")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def en_words(sentence: str) -> list[str]:
    return [m.group(0).replace("\u2019", "'") for m in _WORD.finditer(sentence)]


def en_names(sentences: list[str]) -> tuple[set[str], set[str]]:
    """(person names, place names): capitalised words met mid-sentence, split by the word before them."""
    people: Counter[str] = Counter()
    places: Counter[str] = Counter()
    for sentence in sentences:
        words = en_words(sentence)
        for i, word in enumerate(words[1:], start=1):
            if not word[0].isupper() or word.isupper() or word.lower() in EN_STOPWORDS:
                continue
            if word.lower() in EN_FUNCTION_WORDS:
                continue
            (places if words[i - 1].lower() in _PLACE_PREPS or words[i - 1][0].isupper() else people)[word] += 1
    starts: Counter[str] = Counter()
    for sentence in sentences:  # a person is the subject of some sentence, or owns something
        words = en_words(sentence)
        if words:
            starts[words[0]] += 1
        starts.update(w[:-2] for w in words if w.endswith("'s"))
    confirmed = {p for p in people if starts[p]}
    return confirmed - set(places), set(places)


def en_subjects(sentence: str, names: set[str]) -> list[tuple[str, float]]:
    """(lemma, score) of the picturable nouns of a sentence, in order."""
    words = en_words(sentence)
    out: list[tuple[str, float]] = []
    for i, word in enumerate(words):
        low = word.lower()
        if word in names or low in EN_STOPWORDS or len(low) < 3:
            continue
        if i > 0 and word[0].isupper() and not word.isupper():
            continue  # a name or a place: settings come from the sentence itself
        key = lemma(low)
        score = concrete_en(key)
        if score == 0 or key in EN_STOPWORDS:
            continue
        prev = words[i - 1].lower() if i else ""
        if prev in _DETERMINERS or prev.endswith("'s"):
            score += 0.5
        if low.endswith("ing") or low.endswith("ed"):
            score -= 0.7
        out.append((key, score))
    return out


def template_for(words: Counter[str] | dict[str, float], lang: str) -> Template:
    """The seed's keyword -> template match: whole words only, and at least two hits."""
    best, best_score = DEFAULT_TEMPLATE, 1.5
    for template in TEMPLATES:
        vocab = template.zh if lang == "zh" else template.en
        score = sum(w for k, w in words.items() if k in vocab)
        if score > best_score:
            best, best_score = template, score
    return best


# --------------------------------------------------------------------------- Chinese

_jieba_lock = threading.Lock()
_posseg: Any = None


def _jieba() -> Any:
    """``jieba.posseg``, imported and initialised once, quietly."""
    global _posseg
    with _jieba_lock:
        if _posseg is None:
            import jieba
            import jieba.posseg

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            for word, english in GLOSS_OVERRIDES.items():   # keep the nouns we gloss whole
                if len(word) > 1 and english and not jieba.dt.FREQ.get(word):
                    jieba.add_word(word, freq=20000, tag="n")
            _posseg = jieba.posseg
        return _posseg


def zh_tokens(text: str) -> list[tuple[str, str]]:
    """(word, part of speech) pairs; jieba's tokenizers are shared, so calls are serialised."""
    posseg = _jieba()
    with _jieba_lock:
        return [(p.word, p.flag) for p in posseg.cut(text)]
