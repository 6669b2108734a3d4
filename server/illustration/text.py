"""Text in: cleaning, language, bylines and code out, sections, sentences.

Everything here is plain string work with no dependencies. ``split`` returns the
document title and its sections (markdown headings, Chinese ``一、`` / ``第一章``
headings, English ``Chapter 1`` lines, otherwise blank-line paragraphs with tiny
ones merged into their neighbours).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["CJK_RUN", "HAN", "clean", "detect_language", "has_cjk", "is_list_section", "one_line", "plain", "sentences",
           "shorten", "split", "strip_noise"]

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
# Any CJK script an English-only text encoder cannot read: Han, kana, hangul, CJK punctuation.
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
                  r"\U00020000-\U0002fa1f]")
CJK_RUN = re.compile(_CJK.pattern + "+")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_SENTENCE_END = ".!?。！？…:：;；,，、"


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def clean(text: str) -> str:
    """Text with newlines normalised and control/format/unassigned characters removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for ch in text:
        if ch == "\n":
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in ("Zl", "Zp"):
            out.append("\n")
        elif cat in ("Cf", "Cs"):
            continue
        elif cat[0] in "CZ":  # tabs, other controls, private use, unassigned, odd spaces
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def one_line(text: str) -> str:
    return " ".join(text.split())


def shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary when there is one."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:，、") + "…"


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+|www\.\S+")
_MD_MARKS = re.compile(r"(\*\*|__|`+|^\s*>+\s?|^\s*[-*+]\s+|^\s*\d+[.)]\s+)", re.MULTILINE)


def plain(text: str) -> str:
    """Prose without markdown decoration or URLs, on one line."""
    text = _MD_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _MD_MARKS.sub(" ", text)
    return one_line(text)


def detect_language(text: str) -> str:
    """``"zh"`` when Han characters carry the text (about 1 Han char per 3 Latin letters), else ``"en"``."""
    han = len(HAN.findall(text))
    if not han:
        return "en"
    return "zh" if han * 3 >= len(_LATIN_LETTER.findall(text)) else "en"


# --------------------------------------------------------------------------- noise: bylines, code, links

_FENCE = re.compile(r"^\s*(```|~~~).*?(^\s*\1\s*$|\Z)", re.MULTILINE | re.DOTALL)
_INDENTED_CODE = re.compile(r"(?:^(?: {4}|\t).*\n?){2,}", re.MULTILINE)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_EN_BYLINE = re.compile(
    r"^\s*(?:[-–—*_]\s*)?(?:(?:written |words |photos? |photographs? |text |story |reporting |illustrations? )?by|"
    r"author|reporter|editor|posted by|photo credit|credit|source|updated|published)\b[\s:：].{0,80}$",
    re.IGNORECASE)
_ZH_BYLINE = re.compile(
    r"^\s*[（(【\[]?\s*(?:本报)?(?:记者|作者|文|图|编辑|责编|责任编辑|摄影|摄|来源|通讯员|撰文|文字|校对|审核)"
    r"[\s:：/|丨｜].{0,40}$")
_ZH_INLINE_BYLINE = re.compile(r"[（(【\[]\s*(?:本报)?(?:记者|通讯员|作者|文|图|编辑)[^）)】\]]{0,30}[）)】\]]")
_ZH_DATELINE = re.compile(r"^\s*(?:新华社|中新社|本报|人民网|央视网)?[\u4e00-\u9fff]{0,8}\d{1,2}月\d{1,2}日电"
                          r"\s*[（(]?[^）)]{0,20}[）)]?\s*")
_ZH_REPORTER = re.compile(r"(?:本报|新华社)?记者[\u4e00-\u9fff·]{2,4}(?=[\s，,。报道])")


def strip_noise(text: str) -> str:
    """The text without code, bylines, datelines and link targets: what an image can show."""
    text = _FENCE.sub("\n", text)
    text = _INDENTED_CODE.sub("\n", text)
    text = _INLINE_CODE.sub(" ", text)
    lines = []
    for line in text.split("\n"):
        if _EN_BYLINE.match(line) or _ZH_BYLINE.match(line):
            continue
        line = _ZH_INLINE_BYLINE.sub("", line)
        line = _ZH_DATELINE.sub("", line)
        line = _ZH_REPORTER.sub("", line)
        lines.append(line)
    return "\n".join(lines)


_QUANTITY = re.compile(r"^\s*(?:[-*+•]\s*|\d+[.)]\s*)?(?:\d+[\d./½¼¾]*\s*(?:g|kg|ml|l|cups?|tbsp|tsp|oz|lb|"
                       r"grams?|克|毫升|勺|个|片|根|斤|两)?\b|[½¼¾])", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)、])\s+")


def is_list_section(text: str) -> bool:
    """Mostly short list items or quantities (an ingredient list, specs): little to picture."""
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 3:
        return False
    listy = sum(1 for line in lines if (_LIST_ITEM.match(line) or _QUANTITY.match(line)) and len(line) < 60)
    return listy * 3 >= len(lines) * 2


# --------------------------------------------------------------------------- sections

_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?[^#\s].*?)\s*#*\s*$")
_ZH_CHAPTER = re.compile(r"^\s*(第[0-9０-９一二三四五六七八九十百千零〇两]+[章节回部篇卷集])[\s:：、.．]*(.{0,40})$")
_ZH_NUMBERED = re.compile(r"^\s*[一二三四五六七八九十]{1,3}[、．.]\s*([^\s。！？].{0,30})$")
_EN_CHAPTER = re.compile(
    r"^\s*(chapter|part)\s+([0-9]+|[ivxlcdm]+|one|two|three|four|five|six|seven|eight|nine|ten"
    r"|eleven|twelve)\b[\s:.\-\u2013\u2014]*(.{0,60})$",
    re.IGNORECASE,
)


def _heading(line: str) -> tuple[int, str] | None:
    """(level, title) when the line is a heading."""
    if m := _MD_HEADING.match(line):
        return len(m.group(1)), m.group(2).strip()
    if _ZH_CHAPTER.match(line) or _EN_CHAPTER.match(line):
        return 1, line.strip()
    if m := _ZH_NUMBERED.match(line):
        title = m.group(1).strip()
        if title and title[-1] not in "。！？；;":
            return 2, title
    return None


def _looks_like_title(line: str, lang: str) -> bool:
    line = line.strip()
    if not line or line[-1] in _SENTENCE_END:
        return False
    if lang == "zh":
        return len(line) <= 30
    return len(line) <= 80 and len(line.split()) <= 12


def _paragraph_chunks(body: str, lang: str) -> list[str]:
    """Blank-line paragraphs (single lines when there are no blank lines), tiny ones merged."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
    if len(paragraphs) == 1 and "\n" in paragraphs[0] and not is_list_section(paragraphs[0]):
        paragraphs = [p.strip() for p in paragraphs[0].split("\n") if p.strip()]
    minimum = 80 if lang == "zh" else 200
    chunks: list[str] = []
    buffer: list[str] = []
    for p in paragraphs:
        buffer.append(p)
        if sum(map(len, buffer)) >= minimum:
            chunks.append("\n\n".join(buffer))
            buffer = []
    if buffer:
        if chunks and sum(map(len, buffer)) < minimum:
            chunks[-1] = chunks[-1] + "\n\n" + "\n\n".join(buffer)
        else:
            chunks.append("\n\n".join(buffer))
    return chunks


def split(text: str, lang: str) -> tuple[str | None, list[tuple[str | None, str]]]:
    """The document title and (section title, body) pairs in text order."""
    lines = text.split("\n")
    headings = {i: h for i, line in enumerate(lines) if (h := _heading(line))}
    title: str | None = None
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None:
        rest = any(line.strip() for line in lines[first + 1:])
        h = headings.get(first)
        if h is not None and rest and _MD_HEADING.match(lines[first]):
            if sum(1 for lv, _ in headings.values() if lv <= h[0]) == 1:
                title = h[1]
                del headings[first]
                lines[first] = ""
        elif h is None and rest and _looks_like_title(lines[first], lang):
            title = lines[first].strip()
            lines[first] = ""

    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for i, line in enumerate(lines):
        if i in headings:
            blocks.append((headings[i][1], []))
        else:
            blocks[-1][1].append(line)

    sections: list[tuple[str | None, str]] = []
    for block_title, block_lines in blocks:
        body = "\n".join(block_lines).strip()
        if block_title is None:
            sections.extend((None, chunk) for chunk in _paragraph_chunks(body, lang))
        elif body:
            sections.append((block_title, body))
    if not sections:  # only headings, or only a title: the text itself is the one section
        heading_titles = [t for t, _ in blocks if t]
        sections = [(None, "\n".join(heading_titles) or (title or text.strip()))]
    return title, sections


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])[\"'”’)]*\s+|(?<=[。！？；])[”’」』）]*\s*|\n+")


def sentences(text: str) -> list[str]:
    """Sentences of a section (Chinese and English punctuation; list lines count as sentences)."""
    out: list[str] = []
    for line in text.split("\n"):
        line = plain(line)
        out.extend(s.strip() for s in _SENTENCE_SPLIT.split(line) if s and s.strip())
    return out
