"""Content analysis for ``illustrate_content``: a text in, a set of image prompts out.

Everything here is deterministic and local (no network, no model weights): the same
content, count, purpose and seed always give the same plan.

1. **Clean** the text (control and format characters out, newlines normalised).
2. **Detect the language**: ``"zh"`` when Han characters carry the text, else ``"en"``.
3. **Split into sections**: markdown headings (``#``), Chinese headings (``一、``,
   ``第一章``), English ``Chapter 1``/``Part II`` lines, otherwise blank-line
   paragraphs, with tiny paragraphs merged into their neighbours.
4. **Extract keywords** per section and for the whole text. English: a stopword
   list, crude singularisation, frequency (tf-idf across sections) and capitalised
   noun phrases. Chinese: jieba TF-IDF restricted to noun-like parts of speech.
5. **Match templates** (seed 004: keyword -> prompt template, a default template
   when nothing matches) and write ``count`` prompts that differ by section,
   subject emphasis and composition while sharing one style-cohesion phrase.

Prompts are English scaffolding around the extracted subjects. Chinese subjects are
translated through a small glossary when every part of the word is known (科技公司
-> "technology company") and kept verbatim otherwise. Every prompt carries the
seeds' quality constraints (no text, no watermark, no signature) and is at most
``MAX_PROMPT_CHARS`` long. The visual *style* is not applied here: the server adds
the style prefix (or Recraft's native style) afterwards. When ``count > 1`` each
prompt already contains the cohesion phrase; callers must not append it again.

jieba is imported lazily, on the first Chinese text, so importing this module stays
cheap; its logger is set to WARNING so nothing reaches stdout or clutters stderr.
CPU cost is at most a few hundred milliseconds for ``MAX_CONTENT_CHARS`` of Chinese
(plus about one second for jieba's dictionary the first time): call
``plan_illustrations`` from a worker thread in async code.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "MAX_CONTENT_CHARS",
    "MAX_COUNT",
    "MAX_PROMPT_CHARS",
    "QUALITY_CONSTRAINTS",
    "STYLE_COHESION",
    "THUMBNAIL_NEGATIVE_PROMPT",
    "THUMBNAIL_PALETTE",
    "ContentAnalysis",
    "IllustrationPlan",
    "IllustrationPrompt",
    "Purpose",
    "Section",
    "analyze_content",
    "detect_language",
    "plan_illustrations",
    "thumbnail_prompt_v2",
]

MAX_CONTENT_CHARS = 20_000
MAX_COUNT = 8
MAX_PROMPT_CHARS = 900

# Seed 004's prompt constraints: 无文字、无水印、无签名.
QUALITY_CONSTRAINTS = "no text, no watermark, no signature"
STYLE_COHESION = (
    "consistent colour palette, consistent lighting and the same visual language "
    "as the rest of the series"
)
# Seed 002, v2 (Ideogram v3 custom_color_palette), in the seed's order. The seed
# gives hex values only, no weights.
THUMBNAIL_PALETTE: tuple[str, ...] = ("#000030", "#1C0C47", "#9900FF", "#4285F4", "#FFFFFF")
# Seed 002, v1 (Flux 1.1 Pro) negative prompt.
THUMBNAIL_NEGATIVE_PROMPT = "blurry, low quality, distorted, deformed"

_MAX_KEYWORD_CHARS = 32
_MAX_NAME_CHARS = 60
_MAX_SUBJECTS = 4
_SECTION_KEYWORDS = 8
_GLOBAL_KEYWORDS = 12
_FALLBACK_SUBJECT = "the central idea of the text"


class Purpose(StrEnum):
    """Which prompt family ``illustrate_content`` writes."""

    ILLUSTRATION = "illustration"  # scenes for the text's sections or themes
    COVER = "cover"  # one striking image for the whole text (variations when count > 1)
    THUMBNAIL = "thumbnail"  # seed 002: a name plus a description as a bold app card


@dataclass(frozen=True)
class Section:
    index: int
    title: str | None
    text: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class IllustrationPrompt:
    index: int
    prompt: str
    section_index: int | None
    subjects: tuple[str, ...]  # as they appear in the prompt (glossary English where known)
    template: str  # template id used


@dataclass(frozen=True)
class ContentAnalysis:
    language: str  # "en" | "zh"
    title: str | None
    sections: tuple[Section, ...]
    keywords: tuple[str, ...]
    themes: tuple[str, ...]


@dataclass(frozen=True)
class IllustrationPlan:
    analysis: ContentAnalysis
    prompts: tuple[IllustrationPrompt, ...]
    style_cohesion: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary. Sections carry an excerpt and a length, not their full text."""
        a = self.analysis
        return {
            "analysis": {
                "language": a.language,
                "title": a.title,
                "keywords": list(a.keywords),
                "themes": list(a.themes),
                "sections": [
                    {
                        "index": s.index,
                        "title": s.title,
                        "excerpt": _shorten(_one_line(s.text), 160),
                        "chars": len(s.text),
                        "keywords": list(s.keywords),
                    }
                    for s in a.sections
                ],
            },
            "prompts": [
                {
                    "index": p.index,
                    "prompt": p.prompt,
                    "section_index": p.section_index,
                    "subjects": list(p.subjects),
                    "template": p.template,
                }
                for p in self.prompts
            ],
            "style_cohesion": self.style_cohesion,
        }


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class _Template:
    id: str
    theme: str  # how the theme reads in a prompt
    scene: str  # English scene scaffolding
    en: frozenset[str]  # singular lowercase English keys
    zh: frozenset[str]


def _t(id_: str, theme: str, scene: str, en: str, zh: str) -> _Template:
    return _Template(id_, theme, scene, frozenset(en.split()), frozenset(zh.split()))


# Keyword -> template (seed 004). First match wins ties; "default" when nothing matches.
TEMPLATES: tuple[_Template, ...] = (
    _t("technology", "technology",
       "in a forward-looking technological setting with sleek devices, clean lines and soft glowing light",
       "technology tech ai software robot robotics computer data digital algorithm chip semiconductor "
       "internet app code cloud smartphone network sensor electronics innovation automation machine",
       "科技 技术 人工智能 智能 机器人 电脑 计算机 数据 数字 算法 芯片 互联网 网络 软件 手机 云计算 代码 "
       "程序 创新 自动驾驶 大模型 传感器 无人机 电子"),
    _t("city", "urban life",
       "in a lively urban environment of layered streets, buildings and city light",
       "city urban street building skyline rooftop roof neighborhood neighbourhood downtown traffic "
       "architecture subway metro apartment bridge tower district",
       "城市 都市 街道 街头 建筑 高楼 大楼 街区 社区 交通 地铁 屋顶 公寓 上海 北京 深圳 广州 杭州 城"),
    _t("nature", "nature",
       "in a natural setting full of organic textures, living plants and soft daylight",
       "nature forest garden flower tree mountain river lake bee beekeeping beekeeper hive bird animal "
       "plant wildlife ocean sea park meadow pollinator pollination insect butterfly field sky",
       "自然 森林 花园 花朵 鲜花 树木 山脉 河流 湖泊 蜜蜂 蜂箱 动物 植物 海洋 大海 公园 草原 田野 天空 "
       "星空 月亮 山 花 树 鸟 海"),
    _t("food", "food and drink",
       "with appetising food and drink arranged in a warm, inviting setting",
       "food cooking cook kitchen recipe tea coffee meal restaurant bread honey breakfast dinner chef "
       "flavour flavor fruit vegetable wine drink brew",
       "美食 食物 厨房 烹饪 茶叶 咖啡 餐厅 早餐 晚餐 厨师 水果 蔬菜 面包 蜂蜜 米饭 面条 饺子 茶"),
    _t("product", "product design",
       "presented as a hero product on a clean surface, lit to show its form, materials and details",
       "product kettle appliance gadget device feature design battery temperature button display "
       "stainless steel handle lid charger headphone camera watch speaker",
       "产品 设计 设备 电器 家电 功能 水壶 电水壶 温度 电池 屏幕 按钮 材质 不锈钢 耳机 相机 手表 音箱 充电"),
    _t("business", "business",
       "in a confident professional setting that suggests growth, teamwork and momentum",
       "business market company finance economy investment investor customer sale office team strategy "
       "growth revenue brand marketing meeting bank money trade industry career",
       "商业 市场 公司 企业 经济 金融 投资 创业 办公室 团队 客户 品牌 营销 银行 贸易 行业 会议"),
    _t("science", "science and learning",
       "in a setting of curiosity and discovery, with instruments, books and a spark of insight",
       "science research researcher scientist laboratory lab experiment study school student teacher "
       "learning education book library university classroom space planet star universe physics",
       "科学 研究 实验 实验室 学校 学生 老师 教师 教育 学习 书籍 图书馆 大学 课堂 宇宙 太空 星球 知识"),
    _t("health", "health and wellbeing",
       "in a calm, caring atmosphere that conveys wellbeing and vitality",
       "health medicine medical doctor nurse hospital fitness exercise sleep wellness body mind yoga "
       "patient care nutrition running",
       "健康 医疗 医生 护士 医院 运动 健身 睡眠 身体 心理 病人 营养 瑜伽"),
    _t("travel", "travel",
       "as a journey through an open landscape with a sense of distance, discovery and adventure",
       "travel journey trip road village landscape holiday vacation adventure tourist map train airport "
       "flight hotel beach island countryside",
       "旅行 旅游 旅程 乡村 村庄 风景 道路 冒险 火车 机场 酒店 海滩 岛屿 地图"),
    _t("people", "people and everyday life",
       "as an intimate human moment with expressive characters, gesture and emotion",
       "family friend child kid mother father grandmother grandfather love memory home house night "
       "story girl boy woman man wedding letter dream",
       "故事 家庭 家人 母亲 妈妈 父亲 爸爸 孩子 朋友 回忆 记忆 夜晚 雨夜 少年 少女 老人 祖母 奶奶 爷爷 "
       "爱情 梦想 家 梦 信 雨 雪 灯 窗"),
)
DEFAULT_TEMPLATE = _Template(
    "default", "", "as an evocative scene that captures the essence of the text", frozenset(), frozenset()
)

# zh -> en for the templates' keywords and other common subject words. Words made
# entirely of glossary entries are translated piecewise (科技公司 -> technology company).
GLOSSARY: dict[str, str] = {
    "科技": "technology", "技术": "technology", "人工智能": "artificial intelligence", "智能": "smart",
    "机器人": "robot", "电脑": "computer", "计算机": "computer", "数据": "data", "数字": "digital",
    "算法": "algorithm", "芯片": "chip", "互联网": "internet", "网络": "network", "软件": "software",
    "手机": "smartphone", "云计算": "cloud computing", "代码": "code", "程序": "program",
    "创新": "innovation", "自动驾驶": "self-driving", "大模型": "large AI model", "传感器": "sensor",
    "无人机": "drone", "电子": "electronics", "汽车": "car", "电动车": "electric car",
    "城市": "city", "都市": "metropolis", "街道": "street", "街头": "street", "建筑": "architecture",
    "高楼": "high-rise", "大楼": "building", "街区": "neighbourhood", "社区": "community",
    "交通": "traffic", "地铁": "subway", "屋顶": "rooftop", "公寓": "apartment", "上海": "Shanghai",
    "北京": "Beijing", "深圳": "Shenzhen", "广州": "Guangzhou", "杭州": "Hangzhou", "城": "city",
    "自然": "nature", "森林": "forest", "花园": "garden", "花朵": "flowers", "鲜花": "flowers",
    "树木": "trees", "山脉": "mountains", "河流": "river", "湖泊": "lake", "蜜蜂": "bees",
    "蜂箱": "beehive", "动物": "animals", "植物": "plants", "海洋": "ocean", "大海": "sea",
    "公园": "park", "草原": "grassland", "田野": "fields", "天空": "sky", "星空": "starry sky",
    "月亮": "moon", "山": "mountain", "花": "flower", "树": "tree", "鸟": "bird", "海": "sea",
    "美食": "food", "食物": "food", "厨房": "kitchen", "烹饪": "cooking", "茶叶": "tea leaves",
    "咖啡": "coffee", "餐厅": "restaurant", "早餐": "breakfast", "晚餐": "dinner", "厨师": "chef",
    "水果": "fruit", "蔬菜": "vegetables", "面包": "bread", "蜂蜜": "honey", "米饭": "rice",
    "面条": "noodles", "饺子": "dumplings", "茶": "tea", "水": "water",
    "产品": "product", "设计": "design", "设备": "device", "电器": "appliance", "家电": "home appliance",
    "功能": "feature", "水壶": "kettle", "电水壶": "electric kettle", "温度": "temperature",
    "电池": "battery", "屏幕": "screen", "按钮": "button", "材质": "material", "不锈钢": "stainless steel",
    "耳机": "headphones", "相机": "camera", "手表": "watch", "音箱": "speaker", "充电": "charging",
    "商业": "business", "市场": "market", "公司": "company", "企业": "enterprise", "经济": "economy",
    "金融": "finance", "投资": "investment", "创业": "startup", "办公室": "office", "团队": "team",
    "客户": "customer", "品牌": "brand", "营销": "marketing", "银行": "bank", "贸易": "trade",
    "行业": "industry", "会议": "meeting",
    "科学": "science", "研究": "research", "实验": "experiment", "实验室": "laboratory",
    "学校": "school", "学生": "student", "老师": "teacher", "教师": "teacher", "教育": "education",
    "学习": "learning", "书籍": "books", "图书馆": "library", "大学": "university", "课堂": "classroom",
    "宇宙": "universe", "太空": "outer space", "星球": "planet", "知识": "knowledge",
    "健康": "health", "医疗": "healthcare", "医生": "doctor", "护士": "nurse", "医院": "hospital",
    "运动": "exercise", "健身": "fitness", "睡眠": "sleep", "身体": "body", "心理": "mental health",
    "病人": "patient", "营养": "nutrition", "瑜伽": "yoga",
    "旅行": "travel", "旅游": "tourism", "旅程": "journey", "乡村": "countryside", "村庄": "village",
    "风景": "landscape", "道路": "road", "冒险": "adventure", "火车": "train", "机场": "airport",
    "酒店": "hotel", "海滩": "beach", "岛屿": "island", "地图": "map",
    "故事": "story", "家庭": "family", "家人": "family", "母亲": "mother", "妈妈": "mother",
    "父亲": "father", "爸爸": "father", "孩子": "child", "朋友": "friend", "回忆": "memories",
    "记忆": "memory", "夜晚": "night", "雨夜": "rainy night", "少年": "youth", "少女": "young girl",
    "老人": "old man", "祖母": "grandmother", "奶奶": "grandmother", "爷爷": "grandfather",
    "爱情": "love", "梦想": "dream", "家": "home", "梦": "dream", "信": "letter", "雨": "rain",
    "雪": "snow", "灯": "lamp", "窗": "window", "夜": "night", "猫": "cat", "狗": "dog", "鱼": "fish",
    "书": "book", "门": "door", "桥": "bridge", "路": "road", "风": "wind", "云": "cloud",
    "车站": "station", "灯光": "lights", "窗户": "window", "咖啡馆": "cafe", "书店": "bookshop",
    "旧": "old", "灯塔": "lighthouse", "照片": "photograph", "海风": "sea breeze", "小镇": "small town",
    "悬崖": "cliff", "楼梯": "staircase", "日记": "diary", "公交车": "bus", "大雨": "heavy rain",
    "路灯": "streetlight", "积水": "puddles", "霓虹": "neon lights", "伞": "umbrella",
    "信号灯": "traffic light", "红绿灯": "traffic light", "摄像头": "camera", "仓库": "warehouse",
    "物流": "logistics", "快递": "parcel delivery", "包裹": "parcel", "居民": "residents",
    "邻居": "neighbours", "小区": "residential estate", "航线": "flight route", "农民": "farmer",
    "工厂": "factory", "工人": "worker", "港口": "harbour", "船": "boat", "河": "river", "湖": "lake",
}
_GLOSSARY_MAX = max(map(len, GLOSSARY))

# Compositions: every prompt of a plan gets a different one (count <= 8 = len).
_ILLUSTRATION_SHOTS = (
    "a wide establishing shot of",
    "a close-up detail shot of",
    "a metaphorical, conceptual image of",
    "a medium shot centred on",
    "a bird's-eye view of",
    "a low-angle, dramatic view of",
    "a quiet still-life arrangement of",
    "a dynamic diagonal composition featuring",
)
_COVER_SHOTS = (
    "an iconic centred composition of",
    "a bold symbolic composition of",
    "a sweeping panoramic composition of",
    "a dramatic close-up of",
    "a minimalist composition with generous negative space around",
    "a layered, multi-plane composition of",
    "a high-contrast silhouette composition of",
    "a surreal conceptual composition of",
)
_THUMBNAIL_SHOTS = (
    "one bold central icon-like symbol built from",
    "a friendly mascot character working with",
    "a simple scene of its core action, showing",
    "a bold geometric emblem made of",
    "a small isometric scene of it at work with",
    "a close-up of its most recognisable object among",
    "a clean split composition showing before and after with",
    "a playful visual metaphor for what it does, using",
)

_EN_FUNCTION_WORDS = frozenset(
    """
    a about above across after afterwards again against ago all almost alone along already also although
    always am among amongst an and another any anybody anyone anything anyway anywhere are around as at
    away back be became because become becomes becoming been before beforehand behind being below beside
    besides between beyond both but by can cannot could did do does doing done down during each either
    else elsewhere enough etc even ever every everybody everyone everything everywhere except few for
    former formerly from further had has have having he hence her here hers herself him himself his how
    however i if in indeed instead into is it its itself just least less many may me meanwhile might
    mine more moreover most mostly much must my myself namely neither never nevertheless next no nobody
    none nor not nothing now nowhere of off often on once one only onto or other others otherwise our
    ours ourselves out over own per perhaps please quite rather really same several she should since so
    some somebody someone something sometime sometimes somewhat somewhere still such than that the their
    theirs them themselves then there thereafter thereby therefore these they this those though through
    throughout thus to together too toward towards under until unto up upon us very via was we well were
    what whatever when whenever where whereas wherever whether which while who whoever whole whom whose
    why will with within without would yet you your yours yourself yourselves let lets
    """.split()
)
_EN_STOPWORDS = _EN_FUNCTION_WORDS | frozenset(
    """
    it's i'm i've i'd i'll you're you've you'll we're we've we'll they're they've don't doesn't didn't
    isn't aren't wasn't weren't won't can't couldn't shouldn't wouldn't that's there's here's what's
    say says said make makes made making get gets got getting go goes went gone going know knows knew
    known take takes took taken taking see sees saw seen come comes came coming think thinks thought look
    looks looked looking want wants wanted give gives gave given use uses used using find finds found
    tell tells told ask asks asked seem seems seemed feel feels felt try tries tried leave leaves left
    call calls called keep keeps kept keeping begin begins began begun show shows showed shown hear heard put
    puts mean means meant need needs needed help helps helped turn turns turned start starts started
    become include includes included including continue continues set sets like likes liked bring
    brings brought happen happens happened provide provides provided allow allows allowed add adds added
    spend spends spent offer offers offered consider considers appear appears expect expects stay stays
    remain remains suggest suggests require requires required decide decides decided hold holds held
    stand stands stood lose loses lost pay pays paid meet meets met lead leads led understand watch
    watches follow follows stop stops create creates created speak speaks read reads write writes wrote
    written sit sits sat run runs ran move moves moved live lives lived believe believes change changes
    changed learn learns learned learnt can't
    new good great high low old big small large little long short young important different early late
    real best better worse worst sure free able easy hard right full last first second third next
    certain clear possible recent major simple main true whole various likely able own
    every each few many much more most less least lot lots kind kinds sort sorts part parts number way
    ways thing things something anything nothing everything fact facts case cases example examples point
    points time times year years day days today tomorrow yesterday week weeks month months
    one two three four five six seven eight nine ten hundred thousand million billion
    actually simply probably certainly especially usually finally quickly slowly nearly exactly
    around within also maybe yes okay ok mr mrs ms dr st vs pro plus max mini
    january february march april june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday
    surprisingly near far heavy flat ready dry exact double cool warm hot cold dark pale light
    instead inside outside per cent percent enough""".split()
)
_EN_KEEP_S = frozenset(
    "series species news lens gas bus physics mathematics economics politics chaos analysis basis "
    "crisis thesis canvas atlas always perhaps glasses scissors trousers".split()
)
_ZH_ALLOW_POS = ("n", "nr", "nrt", "nrfg", "ns", "nt", "nz", "nw", "vn", "eng")

# --------------------------------------------------------------------------- cleaning

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_EN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+(?:['\u2019\-][A-Za-z\u00c0-\u024f]+)*")
_ENG_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9+#.\-]*")
_SENTENCE_END = ".!?。！？…:：;；,，、"


def _clean(text: str) -> str:
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
        elif cat == "Cf" or cat == "Cs":
            continue
        elif cat[0] in "CZ":  # tabs, other controls, private use, unassigned, odd spaces
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shorten(text: str, limit: int) -> str:
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


def _plain(text: str) -> str:
    """Prose without markdown decoration or URLs, on one line."""
    text = _MD_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _MD_MARKS.sub(" ", text)
    return _one_line(text)


def detect_language(text: str) -> str:
    """``"zh"`` when Han characters carry the text (about 1 Han char per 3 Latin letters), else ``"en"``."""
    han = len(_HAN.findall(text))
    if not han:
        return "en"
    return "zh" if han * 3 >= len(_LATIN_LETTER.findall(text)) else "en"


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
    if len(paragraphs) == 1 and "\n" in paragraphs[0]:
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


def _split(text: str, lang: str) -> tuple[str | None, list[tuple[str | None, str]]]:
    """The document title and (section title, body) pairs in text order."""
    lines = text.split("\n")
    headings = {i: h for i, line in enumerate(lines) if (h := _heading(line))}
    title: str | None = None
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None:
        rest = any(line.strip() for line in lines[first + 1 :])
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


# --------------------------------------------------------------------------- keywords


@dataclass(frozen=True)
class _Kw:
    text: str  # as shown (original language)
    key: str  # matching key: English lemma / proper noun, or the Chinese word
    weight: float


def _lemma(word: str) -> str:
    if len(word) <= 3 or word in _EN_KEEP_S or word.endswith(("ss", "us", "is", "ous", "ics")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def _en_terms(text: str, *, phrases: bool) -> list[tuple[str, str]]:
    """(key, surface) pairs: lemmas of content words, and capitalised noun phrases."""
    terms: list[tuple[str, str]] = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        words = [m.group(0).replace("\u2019", "'") for m in _EN_WORD.finditer(sentence)]
        i = 0
        while i < len(words):
            word = words[i]
            if phrases and word[0].isupper():
                j = i + 1
                while j < len(words) and (
                    words[j][0].isupper()
                    or (words[j] in ("of", "de", "la", "von") and j + 1 < len(words) and words[j + 1][0].isupper())
                ):
                    j += 1
                run, start = words[i:j], i
                while run and run[0].lower() in _EN_FUNCTION_WORDS:  # "The", "In", "Our" ...
                    run, start = run[1:], start + 1
                if run and (len(run) > 1 or start > 0) and len(run[-1]) >= 2:
                    phrase = " ".join(run)
                    if len(phrase) <= _MAX_KEYWORD_CHARS and run[-1].lower() not in _EN_STOPWORDS:
                        terms.append((phrase, phrase))
                        i = j
                        continue
            lower = word.lower()
            if 3 <= len(lower) <= _MAX_KEYWORD_CHARS and lower not in _EN_STOPWORDS:
                key = _lemma(lower)
                if key not in _EN_STOPWORDS:
                    # keep the spelling of brand-like words (SmartBrew, iPhone, NASA)
                    terms.append((key, word if word[1:] != word[1:].lower() else lower))
            i += 1
    return terms


def _display_forms(terms: list[tuple[str, str]]) -> dict[str, str]:
    """The most frequent surface form of each key (first seen wins ties)."""
    surfaces: dict[str, Counter[str]] = {}
    for key, surface in terms:
        surfaces.setdefault(key, Counter())[surface] += 1
    return {key: c.most_common(1)[0][0] for key, c in surfaces.items()}


def _rank(scores: dict[str, float], first_seen: dict[str, int], limit: int) -> list[tuple[str, float]]:
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], first_seen.get(kv[0], 0), kv[0]))
    return ordered[:limit]


_TEMPLATE_EN = frozenset().union(*(t.en for t in TEMPLATES))
_TEMPLATE_ZH = frozenset().union(*(t.zh for t in TEMPLATES)) | frozenset(GLOSSARY)


def _en_prior(key: str) -> float:
    """How picturable a term looks without a tagger: known subjects and names up, adverbs down."""
    if " " in key or key[:1].isupper():
        return 1.5
    if key in _TEMPLATE_EN:
        return 1.5
    if len(key) > 4 and key.endswith("ly"):
        return 0.3
    if len(key) > 4 and key.endswith("ed"):
        return 0.5
    if len(key) > 5 and key.endswith("ing"):
        return 0.7
    return 1.0


def _english_keywords(
    doc_title: str | None, sections: list[tuple[str | None, str]]
) -> tuple[list[list[_Kw]], list[_Kw]]:
    per_section: list[Counter[str]] = []
    all_terms: list[tuple[str, str]] = []
    title_terms = _en_terms(doc_title, phrases=False) if doc_title else []
    for t, body in sections:
        heading = _en_terms(t, phrases=False) if t else []
        terms = _en_terms(body, phrases=True)
        counts: Counter[str] = Counter(k for k, _ in terms)
        for k, _ in heading:
            counts[k] += 2
        per_section.append(counts)
        all_terms.extend(heading + terms)
    all_terms.extend(title_terms)
    first_seen: dict[str, int] = {}
    for pos, (k, _) in enumerate(all_terms):
        first_seen.setdefault(k, pos)
    display = _display_forms(all_terms)

    totals: Counter[str] = Counter()
    df: Counter[str] = Counter()
    for counts in per_section:
        totals.update(counts)
        df.update(counts.keys())
    for k, _ in title_terms:
        totals[k] += 3
    n = len(sections)

    # A section's subjects: frequent there, somewhat distinctive, and part of the text's topic.
    section_kws: list[list[_Kw]] = []
    for counts in per_section:
        scores = {
            k: c * (1.0 + 0.5 * math.log(n / df[k])) * (1.0 + math.log(totals[k])) * _en_prior(k)
            for k, c in counts.items()
        }
        section_kws.append([_Kw(display[k], k, w) for k, w in _rank(scores, first_seen, _SECTION_KEYWORDS)])

    grand = sum(totals.values()) or 1
    scores = {k: c / grand * _en_prior(k) for k, c in totals.items()}
    global_kws = [_Kw(display[k], k, w) for k, w in _rank(scores, first_seen, _GLOBAL_KEYWORDS)]
    return section_kws, global_kws


_jieba_lock = threading.Lock()
_jieba_analyse: Any = None


def _jieba() -> Any:
    """``jieba.analyse``, imported and initialised once, quietly."""
    global _jieba_analyse
    with _jieba_lock:
        if _jieba_analyse is None:
            import jieba
            import jieba.analyse

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba_analyse = jieba.analyse
        return _jieba_analyse


def _valid_zh_keyword(word: str) -> bool:
    word = word.strip()
    if not (2 <= len(word) <= _MAX_KEYWORD_CHARS) and word not in GLOSSARY:
        return False
    if _HAN.search(word):
        return all(_HAN.match(ch) for ch in word)
    return bool(_ENG_TOKEN.fullmatch(word)) and word.lower() not in _EN_STOPWORDS


def _zh_tags(text: str, limit: int) -> list[_Kw]:
    analyse = _jieba()
    with _jieba_lock:  # jieba's shared tokenizers are not documented as thread-safe
        tags = analyse.extract_tags(
            text, topK=limit * 3, withWeight=True, allowPOS=_ZH_ALLOW_POS, withFlag=True
        )
    scored: list[tuple[float, int, _Kw]] = []
    seen: set[str] = set()
    for rank, (pair, weight) in enumerate(tags):
        word, flag = pair.word.strip(), pair.flag
        if word in seen or not _valid_zh_keyword(word):
            continue
        seen.add(word)
        key = word if _HAN.search(word) else _lemma(word.lower())
        prior = 1.3 if word in _TEMPLATE_ZH else 0.5 if flag == "vn" else 1.0
        w = float(weight) * prior
        scored.append((-w, rank, _Kw(word, key, w)))
    return [kw for _, _, kw in sorted(scored)[:limit]]


def _chinese_keywords(
    doc_title: str | None, sections: list[tuple[str | None, str]]
) -> tuple[list[list[_Kw]], list[_Kw]]:
    section_kws = [
        _zh_tags(f"{t}\n{t}\n{body}" if t else body, _SECTION_KEYWORDS) for t, body in sections
    ]
    whole = "\n".join(([doc_title] * 3 if doc_title else []) + [f"{t or ''}\n{b}" for t, b in sections])
    return section_kws, _zh_tags(whole, _GLOBAL_KEYWORDS)


# --------------------------------------------------------------------------- translation, templates


def _translate(word: str) -> str:
    """English for a Chinese word made of glossary entries; the word itself otherwise."""
    if not _HAN.search(word):
        return word
    if word in GLOSSARY:
        return GLOSSARY[word]
    parts: list[str] = []
    i = 0
    while i < len(word):
        for size in range(min(_GLOSSARY_MAX, len(word) - i), 0, -1):
            piece = word[i : i + size]
            if piece in GLOSSARY:
                parts.append(GLOSSARY[piece])
                i += size
                break
        else:
            return word
    return " ".join(parts)


def _matches(template: _Template, kw: _Kw) -> bool:
    if _HAN.search(kw.key):
        return kw.key in template.zh or any(len(z) >= 2 and z in kw.key for z in template.zh)
    return any(_lemma(w.lower()) in template.en for w in kw.key.split())


def _template_scores(kws: list[_Kw]) -> list[tuple[_Template, float]]:
    scored = []
    for template in TEMPLATES:
        score = sum(kw.weight for kw in kws if _matches(template, kw))
        if score > 0:
            scored.append((template, score))
    order = {t.id: i for i, t in enumerate(TEMPLATES)}
    return sorted(scored, key=lambda ts: (-ts[1], order[ts[0].id]))


def _template_for(kws: list[_Kw]) -> _Template:
    scored = _template_scores(kws)
    return scored[0][0] if scored else DEFAULT_TEMPLATE


def _overlaps(a: str, b: str) -> bool:
    """One subject contains the other (whole words; any substring for Han text)."""
    a, b = a.lower(), b.lower()
    if _HAN.search(a) or _HAN.search(b):
        return a in b or b in a
    return f" {a} " in f" {b} " or f" {b} " in f" {a} "


def _subjects(kws: list[_Kw], lang: str, rotate: int = 0, *, keep_first: bool = False) -> tuple[str, ...]:
    """Up to four distinct prompt subjects, rotated by ``rotate`` (after the first, if kept)."""
    words: list[str] = []
    for kw in kws:
        word = _translate(kw.text) if lang == "zh" else kw.text
        if not any(_overlaps(word, w) for w in words):  # "bookshop" after "old bookshop"
            words.append(word)
    head, rest = (words[:1], words[1:]) if keep_first else ([], words)
    if rest:
        start = rotate % len(rest)
        rest = rest[start:] + rest[:start]
    return tuple((head + rest)[:_MAX_SUBJECTS])


def _join(items: tuple[str, ...] | list[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class _Analysed:
    analysis: ContentAnalysis
    section_kws: tuple[tuple[_Kw, ...], ...]
    global_kws: tuple[_Kw, ...]


def _analyse(content: str) -> _Analysed:
    text = _clean(content).strip()
    lang = detect_language(text)
    title, raw_sections = _split(text, lang)
    if lang == "zh":
        section_kws, global_kws = _chinese_keywords(title, raw_sections)
    else:
        section_kws, global_kws = _english_keywords(title, raw_sections)
    themes = tuple(t.theme for t, _ in _template_scores(global_kws)[:3])
    if not themes:
        themes = _subjects(global_kws, lang)[:3]
    sections = tuple(
        Section(i, t, body, tuple(kw.text for kw in kws))
        for i, ((t, body), kws) in enumerate(zip(raw_sections, section_kws, strict=True))
    )
    analysis = ContentAnalysis(
        language=lang,
        title=_shorten(_one_line(title), 120) if title else None,
        sections=sections,
        keywords=tuple(kw.text for kw in global_kws),
        themes=themes,
    )
    return _Analysed(analysis, tuple(map(tuple, section_kws)), tuple(global_kws))


def analyze_content(content: str) -> ContentAnalysis:
    """Language, title, sections, keywords and themes of a text (validated like ``plan_illustrations``)."""
    _check_content(content)
    return _analyse(content).analysis


# --------------------------------------------------------------------------- prompts


def _check_content(content: str) -> None:
    if not isinstance(content, str) or not _clean(content).strip():
        raise ValueError("content must contain text")
    if len(content) > MAX_CONTENT_CHARS:
        raise ValueError(
            f"content is too long: {len(content):,} characters; the limit is {MAX_CONTENT_CHARS:,}"
        )


def _finish(*parts: str) -> str:
    prompt = " ".join(p.strip() for p in parts if p and p.strip())
    return prompt if len(prompt) <= MAX_PROMPT_CHARS else _shorten(prompt, MAX_PROMPT_CHARS)


def _cohesion(count: int) -> str:
    return f"Part of a matching series: {STYLE_COHESION}." if count > 1 else ""


def _quality() -> str:
    return QUALITY_CONSTRAINTS[0].upper() + QUALITY_CONSTRAINTS[1:] + "."


def _about(themes: tuple[str, ...]) -> str:
    return f" about {_join(themes)}" if themes else ""


def _salience(kws: tuple[_Kw, ...], global_weight: dict[str, float], text: str) -> float:
    return sum(global_weight.get(kw.key, 0.0) for kw in kws) + len(text) * 1e-9


def _illustration_prompts(a: _Analysed, count: int, offset: int) -> list[IllustrationPrompt]:
    sections = a.analysis.sections
    global_weight = {kw.key: kw.weight for kw in a.global_kws}
    salience = [_salience(a.section_kws[s.index], global_weight, s.text) for s in sections]
    by_salience = sorted(range(len(sections)), key=lambda i: (-salience[i], i))
    if count <= len(sections):
        slots = sorted((i, 0) for i in by_salience[:count])
    else:
        per_section = [1] * len(sections)
        for k in range(count - len(sections)):
            per_section[by_salience[k % len(sections)]] += 1
        slots = [(i, j) for i in range(len(sections)) for j in range(per_section[i])]

    lang = a.analysis.language
    out = []
    for k, (i, j) in enumerate(slots):
        kws = list(a.section_kws[i]) or list(a.global_kws)
        template = _template_for(kws)
        subjects = _subjects(kws, lang, rotate=j)
        shot = _ILLUSTRATION_SHOTS[(offset + k) % len(_ILLUSTRATION_SHOTS)]
        prompt = _finish(
            f"{shot} {_join(subjects) or _FALLBACK_SUBJECT}, {template.scene}.",
            f"An illustration for one passage of a longer text{_about(a.analysis.themes)}.",
            _cohesion(count),
            _quality(),
        )
        out.append(IllustrationPrompt(k, prompt, i, subjects, template.id))
    return out


def _cover_prompts(a: _Analysed, count: int, offset: int) -> list[IllustrationPrompt]:
    kws = list(a.global_kws)
    template = _template_for(kws)
    out = []
    for k in range(count):
        subjects = _subjects(kws, a.analysis.language, rotate=k, keep_first=True)
        shot = _COVER_SHOTS[(offset + k) % len(_COVER_SHOTS)]
        prompt = _finish(
            f"{shot} {_join(subjects) or _FALLBACK_SUBJECT}, {template.scene}.",
            f"A striking cover image that sums up the whole text{_about(a.analysis.themes)}, "
            "with one strong focal point and a clear visual hierarchy.",
            _cohesion(count),
            _quality(),
        )
        out.append(IllustrationPrompt(k, prompt, None, subjects, template.id))
    return out


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")


def _summary(text: str, limit: int) -> str:
    """The first sentences of ``text`` that fit in ``limit`` characters."""
    plain = _plain(text)
    if len(plain) <= limit:
        return plain
    taken = ""
    for sentence in _SENTENCE_SPLIT.split(plain):
        glue = "" if not taken or taken[-1] in "。！？" else " "
        if len(taken) + len(glue) + len(sentence) > limit:
            break
        taken = taken + glue + sentence
    return taken or _shorten(plain, limit)


def _name(name: str | None, fallback: str) -> str:
    """A display name: ``name``, else the first sentence of the fallback's first line, shortened."""
    cleaned = _plain(_clean(name)).strip("#").strip() if name else ""
    if not cleaned:
        first_line = next((line for line in fallback.split("\n") if line.strip()), "")
        first_line = _plain(first_line).strip("#").strip()
        cleaned = _SENTENCE_SPLIT.split(first_line, maxsplit=1)[0].rstrip("。！？.!?") if first_line else ""
    return _shorten(cleaned, _MAX_NAME_CHARS)


def _thumbnail_prompts(
    a: _Analysed, content: str, count: int, offset: int, name: str | None
) -> list[IllustrationPrompt]:
    analysis = a.analysis
    app = _name(name, analysis.title or _clean(content)) or "this app"
    description = "\n".join(s.text for s in analysis.sections)
    kws = list(a.global_kws)
    out = []
    for k in range(count):
        subjects = _subjects(kws, analysis.language, rotate=k, keep_first=True)
        shot = _THUMBNAIL_SHOTS[(offset + k) % len(_THUMBNAIL_SHOTS)]
        head = (
            f"a visually engaging app-store thumbnail for the AI agent or app named {app}, "
            "highlighting what it does in a clear and captivating way."
        )
        tail = [
            f"Show {shot} {_join(subjects) or 'its core function'}; bold, simple and understandable at a "
            "glance, an appealing design that showcases its core functionality.",
            _cohesion(count),
            _quality(),
        ]
        room = MAX_PROMPT_CHARS - len(head) - sum(len(t) + 1 for t in tail) - len(" What it does: ") - 1
        limit = min(240 if analysis.language == "en" else 100, room)
        summary = _summary(description, limit) if limit >= 20 else ""
        prompt = _finish(head, f"What it does: {summary}" if summary else "", *tail)
        out.append(IllustrationPrompt(k, prompt, None, subjects, "thumbnail"))
    return out


def plan_illustrations(
    content: str,
    count: int,
    purpose: Purpose = Purpose.ILLUSTRATION,
    *,
    seed: int | None = None,
    name: str | None = None,
) -> IllustrationPlan:
    """Analyse ``content`` and write ``count`` distinct prompts for ``purpose``.

    ``seed`` only rotates the composition variants; the same arguments always give
    the same plan. ``name`` is the app or agent name for ``thumbnail`` (default: the
    text's title or first line). Raises ``ValueError`` naming the offending field.
    """
    _check_content(content)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be an integer from 1 to {MAX_COUNT}, got {count!r}")
    try:
        purpose = Purpose(purpose)
    except ValueError:
        allowed = ", ".join(p.value for p in Purpose)
        raise ValueError(f"purpose must be one of {allowed}, got {purpose!r}") from None
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an integer or null, got {seed!r}")

    analysed = _analyse(content)
    offset = 0 if seed is None else random.Random(seed).randrange(len(_ILLUSTRATION_SHOTS))
    if purpose is Purpose.COVER:
        prompts = _cover_prompts(analysed, count, offset)
    elif purpose is Purpose.THUMBNAIL:
        prompts = _thumbnail_prompts(analysed, content, count, offset, name)
    else:
        prompts = _illustration_prompts(analysed, count, offset)
    return IllustrationPlan(analysed.analysis, tuple(prompts), STYLE_COHESION)


def thumbnail_prompt_v2(name: str, description: str) -> str:
    """Seed 002 v2: a retro-futuristic vector pop-art card for Ideogram v3.

    The name is drawn as bold typography (the seed asks for it), so the only text
    constraint is "no other text". Use with ``THUMBNAIL_PALETTE``.
    """
    app = _name(name, "")
    if not app:
        raise ValueError("name must contain text")
    head = (
        f'A striking retro-futuristic vector pop-art illustration with the name "{app}" in bold '
        "typography as a prominent element. It literally and clearly depicts"
    )
    tail = (
        f"together with recognisable objects tied to what {app} does, so its purpose is concrete, "
        "intuitive and understood at a glance. Vibrant limited palette, sharp vector lines, geometric "
        "shapes, flat illustration with solid colours and no gradients or shading; mid-century futurism "
        "meets 1960s psychedelia; clear visual storytelling and thematic clarity above all. "
        "No other text, no watermark, no signature."
    )
    room = MAX_PROMPT_CHARS - len(head) - len(tail) - len(" what  is: ,") - len(app) - 2
    summary = _summary(_clean(description or ""), min(300, room)) if room >= 20 else ""
    middle = f"what {app} is: {summary}," if summary else f"{app},"
    return _finish(head, middle, tail)
