"""Words the planner draws with: the seed's keyword -> template table, light, shots,
style phrases in English and Chinese, and Chinese -> English glosses.

Templates (seed 004: keyword -> prompt template, a default when nothing matches) no
longer carry scenery of their own: the scene comes from the text. A template chooses
the composition and the light that suit its subject, and is matched on whole words
with enough evidence (see ``keywords.template_for``).

Glosses come from CC-CEDICT, bundled in ``lindera-python-cc-cedict`` (the dictionary is
compiled into the wheel: nothing is downloaded at run time). A short table of
overrides gives the scene-friendly gloss where CC-CEDICT's first sense is archaic,
a surname or a verb. A Chinese word with no usable gloss is left out of English
prompts, never sent as Chinese characters.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from providers.types import ImageStyle

__all__ = ["DEFAULT_TEMPLATE", "META_PATTERNS", "NEGATIVE", "STYLE_ZH", "TEMPLATES", "Template", "cohesion",
           "concrete_en", "gloss"]


@dataclass(frozen=True)
class Template:
    id: str
    en: frozenset[str]          # singular lowercase English words
    zh: frozenset[str]          # Chinese words (whole jieba tokens)
    shots: tuple[str, ...]      # compositions that suit the subject, English
    shots_zh: tuple[str, ...]
    light: str                  # used when the text says nothing about light
    light_zh: str


def _t(id_: str, en: str, zh: str, shots: str, shots_zh: str, light: str, light_zh: str) -> Template:
    return Template(id_, frozenset(en.split()), frozenset(zh.split()), tuple(shots.split("|")),
                    tuple(shots_zh.split("|")), light, light_zh)


TEMPLATES: tuple[Template, ...] = (
    _t("technology",
       "technology robot robotics computer chip semiconductor software smartphone server laptop screen sensor "
       "drone circuit database datacenter algorithm code electronics", "科技 机器人 电脑 计算机 芯片 服务器 "
       "软件 手机 屏幕 传感器 无人机 电路 数据库 数据中心 算法 代码 电子 自动驾驶 大模型 人工智能",
       "close-up|medium shot|wide shot", "特写|中景|全景",
       "cool screen glow and soft studio light", "屏幕的冷光与柔和的室内光"),
    _t("city", "city street skyline rooftop neighbourhood neighborhood downtown traffic subway metro apartment "
       "bridge tower alley avenue", "城市 街道 街头 高楼 大楼 街区 社区 交通 地铁 屋顶 公寓 小巷 老街 天际线 桥",
       "wide street-level shot|high-angle view|eye-level medium shot", "街头平视全景|高角度俯视|平视中景",
       "soft city daylight", "柔和的城市日光"),
    _t("nature", "forest garden flower tree mountain river lake bee hive bird animal plant wildlife meadow "
       "butterfly field valley island glacier desert cliff whale shrimp vent reef ocean sea",
       "森林 花园 花朵 鲜花 树木 山脉 河流 湖泊 蜜蜂 蜂箱 动物 植物 草原 田野 山谷 悬崖 冰川 沙漠 海洋 大海 鲸",
       "wide landscape shot|close-up|low-angle view", "远景|特写|低角度仰视",
       "soft natural daylight", "柔和的自然光"),
    _t("food", "food kitchen recipe tea coffee meal restaurant bread honey breakfast dinner chef fruit "
       "vegetable soup dumpling noodle cake pan pot oven dough", "美食 食物 厨房 菜谱 茶叶 咖啡 餐厅 早餐 晚餐 "
       "厨师 水果 蔬菜 面包 蜂蜜 米饭 面条 饺子 茶 汤 锅 蛋糕 月饼 茶汤 茶杯",
       "overhead close-up|45-degree close-up|close-up on a wooden table", "俯拍特写|45度角特写|木桌上的特写",
       "warm window light", "温暖的窗边自然光"),
    _t("product", "product kettle appliance gadget device headphone camera watch speaker charger bottle "
       "package chair backpack", "产品 水壶 电水壶 电器 家电 设备 耳机 相机 手表 音箱 充电器 包装 台灯 背包",
       "studio product shot|three-quarter product view|close-up of the details", "产品棚拍|四分之三角度产品图|细节特写",
       "soft studio light", "柔和的棚拍光"),
    _t("business", "office team meeting market bank factory warehouse shop store customer startup investor "
       "trade port", "办公室 团队 会议 市场 银行 工厂 仓库 商店 客户 创业 港口 集市",
       "medium shot|wide interior shot|eye-level shot", "中景|室内全景|平视",
       "bright daylight", "明亮的日光"),
    _t("science", "laboratory lab experiment microscope telescope scientist researcher planet galaxy "
       "satellite rocket submersible probe specimen", "实验室 实验 显微镜 望远镜 科学家 研究员 星球 星系 卫星 "
       "火箭 探测器 潜水器 样本",
       "medium shot|close-up|wide shot", "中景|特写|全景",
       "clean, even light", "干净均匀的光线"),
    _t("health", "doctor nurse hospital patient clinic fitness yoga runner gym medicine",
       "医生 护士 医院 病人 诊所 健身 瑜伽 跑步 药",
       "medium shot|close-up|eye-level shot", "中景|特写|平视",
       "soft, calm daylight", "柔和平静的日光"),
    _t("travel", "road village landscape beach train airport hotel map countryside harbour harbor journey "
       "station", "乡村 村庄 风景 道路 海滩 火车 机场 酒店 地图 港湾 车站 小镇",
       "wide landscape shot|view from the road|eye-level medium shot", "远景|沿路视角|平视中景",
       "golden-hour light", "傍晚的金色阳光"),
    _t("people", "family mother father child grandmother grandfather girl boy woman man kid friend "
       "letter window bed blanket candle", "家庭 家人 母亲 妈妈 父亲 爸爸 孩子 朋友 祖母 奶奶 爷爷 外婆 "
       "少年 少女 老人 女孩 男孩 信 窗 窗户 床 蜡烛",
       "intimate medium shot|close-up|over-the-shoulder view", "中景|人物特写|过肩视角",
       "soft window light", "柔和的窗光"),
)
DEFAULT_TEMPLATE = _t("default", "", "", "medium shot|wide shot|close-up", "中景|全景|特写",
                      "soft natural light", "柔和的自然光")

# Light the text itself names wins over the template's default (checked in this order).
LIGHT_CUES: tuple[tuple[str, str, str], ...] = (
    (r"\b(darkness|pitch[- ]black|total dark|abyss|deep sea|trench)\b|漆黑|黑暗|深海|海底|海沟",
     "total darkness beyond a few pools of artificial light", "四周一片漆黑，只有几束人造光"),
    (r"\b(night|midnight|moon|moonlight|stars|starlight|bedtime)\b|夜|月光|星空|深夜",
     "night, soft moonlight and warm lamplight", "夜色，柔和的月光与温暖的灯光"),
    (r"\b(candle|candlelight|lantern|fireplace|campfire)\b|蜡烛|烛光|灯笼|炉火",
     "warm flickering candlelight", "温暖摇曳的烛光"),
    (r"\b(storm|thunder|lightning|gale)\b|暴风|雷雨|闪电|台风",
     "dark storm clouds and flashes of lightning", "乌云密布，电光闪烁"),
    (r"\b(rain|rainy|drizzle|puddles?)\b|雨|积水",
     "grey rainy light and wet reflections", "阴雨天的灰色光线和湿漉漉的倒影"),
    (r"\b(snow|snowy|frost|winter)\b|雪|霜|冬",
     "cold, soft winter light", "清冷柔和的冬日光线"),
    (r"\b(fog|mist|misty|haze)\b|雾|薄雾",
     "soft diffused light through mist", "薄雾中柔和漫射的光线"),
    (r"\b(sunset|dusk|evening)\b|黄昏|傍晚|夕阳",
     "warm golden evening light", "温暖的黄昏光线"),
    (r"\b(dawn|sunrise|morning)\b|清晨|黎明|日出|早晨",
     "soft early-morning light", "清晨柔和的光线"),
    (r"\b(neon)\b|霓虹", "neon glow", "霓虹灯光"),
)
LIGHT_CUES_RE = tuple((re.compile(p, re.IGNORECASE), en, zh) for p, en, zh in LIGHT_CUES)

# One concrete phrase shared by a set (medium, palette, light), consistent with the style.
_COHESION_EN = {
    "monochrome": "rich black-and-white tones, fine grain",
    "photo": "natural colour grading, 35mm lens look",
    "pixel": "limited 16-colour palette, crisp pixel edges",
    "drawn": "muted earthy palette, visible linework",
    "poster": "flat shapes, bold limited palette",
    "3d": "soft clay textures, pastel palette, gentle studio light",
    "engraving": "fine engraved linework, muted inks",
    "any": "muted natural palette, fine detail",
}
_COHESION_ZH = {
    "monochrome": "黑白影调，细腻颗粒",
    "photo": "自然的色彩，35毫米镜头质感",
    "pixel": "有限的16色调色板，清晰的像素边缘",
    "drawn": "柔和的大地色调，可见的线条",
    "poster": "平面色块，大胆的有限配色",
    "3d": "柔软的黏土质感，粉彩色调，柔和的棚拍光",
    "engraving": "精细的版画线条，低饱和墨色",
    "any": "柔和自然的色调，细节丰富",
}


def _style_family(style: ImageStyle) -> str:
    v = style.value
    if v in ("realistic_image/b_and_w",):
        return "monochrome"
    if v.startswith("realistic_image"):
        return "photo"
    if v.endswith("pixel_art"):
        return "pixel"
    if "poster" in v:
        return "poster"
    if "handmade_3d" in v:
        return "3d"
    if "engraving" in v:
        return "engraving"
    if v.startswith("digital_illustration"):
        return "drawn"
    return "any"


def cohesion(style: ImageStyle, lang: str) -> str:
    return (_COHESION_ZH if lang == "zh" else _COHESION_EN)[_style_family(style)]


# The seed's style table, in Chinese, for models that get a Chinese prompt.
STYLE_ZH: dict[ImageStyle, str] = {
    ImageStyle.REALISTIC: "写实摄影", ImageStyle.REALISTIC_BW: "黑白摄影", ImageStyle.REALISTIC_HDR: "HDR摄影",
    ImageStyle.REALISTIC_NATURAL: "自然光摄影", ImageStyle.REALISTIC_STUDIO: "影棚人像摄影",
    ImageStyle.REALISTIC_ENTERPRISE: "企业形象摄影", ImageStyle.REALISTIC_HARD_FLASH: "硬闪光摄影",
    ImageStyle.REALISTIC_MOTION_BLUR: "动态模糊摄影", ImageStyle.DIGITAL_ART: "数字艺术",
    ImageStyle.PIXEL_ART: "像素艺术", ImageStyle.HAND_DRAWN: "手绘插画", ImageStyle.GRAIN: "颗粒质感数字插画",
    ImageStyle.SKETCH: "素描风插画", ImageStyle.POSTER: "二维艺术海报", ImageStyle.POSTER_2: "另类二维艺术海报",
    ImageStyle.HANDMADE_3D: "手工3D插画", ImageStyle.HAND_DRAWN_OUTLINE: "手绘线稿插画",
    ImageStyle.ENGRAVING_COLOR: "彩色版画插画",
}

# Seed 004's constraints (无文字、无水印、无签名), for negative_prompt.
NEGATIVE = {"en": "text, letters, watermark, signature, logo", "zh": "文字，字母，水印，签名，标志"}

# What an image model cannot draw: text about the picture instead of the picture.
META_PATTERNS = re.compile(
    r"\b(illustration for|this (image|picture|illustration)|the (text|article|passage|story|post|author)|"
    r"a longer text|part of a (matching )?series|captures? the essence|visual (language|hierarchy)|"
    r"as an ai|i can't|i cannot|i'm sorry|here (is|are)|scene \d|image \d|prompt)\b"
    r"|本文|文章|这段文字|插图|配图|系列|提示词|抱歉|作为一个",
    re.IGNORECASE)

# --------------------------------------------------------------------------- concreteness (English)

# Common picturable nouns beyond the templates' words (singular, lowercase).
_CONCRETE = frozenset("""
apple arm bag ball balcony basket beach bed bell bench bicycle bike blanket boat body book bottle bowl box
bread bridge brush bucket building bus cabin cafe cake camera candle car cart castle cat cave chair child
chimney church cliff clock cloud coast coat cottage counter cow crowd cup curtain deck desk dog doll door
dragon dress egg engine eye face farm fence field fire fish flag floor flower fog forest fountain fox frame
garden gate glass glove grass guitar hair hall hand harbour hat helmet hill horse house ice jar jacket
kitchen kite knife ladder lake lamp lantern leaf library light lighthouse lion machine market mask meadow
mirror moon mountain mouse mug museum nest net notebook ocean orchard owl paint painting palace pan paper
path pen pencil piano pier pillow pipe plane plant plate platform pond pot rabbit rail railway rain river
road rock roof room rope sail sand scarf school sea seed shelf ship shoe shop shore sign sky snow sofa
soldier spoon square stage stair staircase star station statue steam stone stove street sun table tent
terminal tower town toy track tractor train tram tree truck tunnel umbrella valley van vase wall wave
whale wheel window wing wolf wood workshop yard beam light floodlight chimney particle diver sailor
fisherman farmer baker teacher student engineer nurse doctor girl boy woman man grandmother grandfather
bear deer dolphin turtle shark crab octopus jellyfish coral kelp iceberg penguin rocket satellite planet
telescope microscope spaceship astronaut robot kettle headphones laptop phone keyboard monitor cable
dumpling noodle rice soup tea coffee teapot wok cutting board batter dough whisk oven tray jar honey
frame hive bee lid handle spout base teahouse temple pagoda bamboo lotus pavilion courtyard alley
""".split())
# People and animals: who a story's "she" or "he" may be, and who acts in a rebuilt Chinese scene.
ANIMATE_EN = frozenset("""man woman child children girl boy grandfather grandmother mother father farmer fisherman
worker passenger resident residents student students teacher doctor nurse chef scientist engineer villager
villagers family friend kid baby people beekeeper diver sailor baker astronaut soldier king queen prince princess
cat dog bird bee shrimp fish whale horse cow egret heron crane chick chicken duck goose sheep goat pig rabbit fox
deer bear monkey panda tiger lion elephant butterfly dragonfly owl wolf mouse dragon turtle penguin""".split())
_ABSTRACT_SUFFIX = ("tion", "sion", "ness", "ity", "ment", "ism", "ance", "ence", "ship", "ology", "ics", "acy")


def concrete_en(word: str) -> float:
    """How picturable an English word (lowercase lemma) looks: 2 known, 1 unknown, 0 abstract."""
    if word in _CONCRETE or any(word in t.en for t in TEMPLATES):
        return 2.0
    if word.endswith(_ABSTRACT_SUFFIX) or (len(word) > 4 and word.endswith("ly")):
        return 0.0
    return 1.0


# --------------------------------------------------------------------------- glosses (Chinese -> English)

# Where CC-CEDICT's first sense is not what a picture of the word shows.
GLOSS_OVERRIDES: dict[str, str] = {
    "爷爷": "grandfather", "奶奶": "grandmother", "外婆": "grandmother", "外公": "grandfather",
    "妈妈": "mother", "爸爸": "father", "孩子": "child", "老人": "old man", "少女": "young girl",
    "少年": "teenage boy", "老街": "old street", "茶": "tea", "茶叶": "tea leaves", "茶汤": "tea liquor",
    "茶园": "tea garden", "茶农": "tea farmer", "潜水器": "submersible", "喷口": "vent", "热泉": "hot spring",
    "城": "city", "灯": "lamp", "窗": "window", "信": "letter", "雨": "rain", "雪": "snow", "家": "home",
    "屋顶": "rooftop", "蜂箱": "beehive", "小区": "residential compound", "居民": "residents",
    "出租车": "taxi", "无人驾驶": "driverless", "大模型": "large AI model", "人工智能": "artificial intelligence",
    "电水壶": "electric kettle", "月饼": "mooncake", "饺子": "dumplings", "手机": "smartphone",
    "机器人": "robot", "乘客": "passenger", "北京": "Beijing", "上海": "Shanghai", "深圳": "Shenzhen",
    "杭州": "Hangzhou", "广州": "Guangzhou", "积水": "puddles", "老板": "shopkeeper", "师傅": "craftsman",
    "霓虹": "neon", "霓虹灯": "neon signs", "灯光": "lights", "木头": "wood", "学员": "students",
    "长桌": "long table", "热量": "heat", "竹制": "", "手工": "", "地上": "", "故乡": "home", "家乡": "home", "床": "bed", "桌": "table", "热锅": "hot wok",
    "矿物质": "minerals", "明月光": "bright moonlight", "月光": "moonlight",
    "明月": "bright moon", "冷却液": "coolant", "冷却塔": "cooling tower", "大锅": "big wok",
    "菜畦": "vegetable beds", "葱花": "chopped scallions", "稻田": "rice paddy", "青山": "green hills",
    "茶罐": "tea caddy", "茶匙": "tea scoop", "礼盒": "gift box", "青瓷": "celadon", "伞": "umbrella",
    "旧伞": "old umbrella", "公交车": "bus", "车站": "bus stop", "管道": "pipes", "服务器": "servers",
    "平板电脑": "tablet", "画笔": "paintbrush", "作品": "artworks", "孩子们": "children", "学员们": "students",
    "工程师": "engineer", "控制室": "control room", "课桌": "school desk", "白鹭": "egret", "街区": "city block",
    "信号灯": "traffic lights", "摄像头": "camera", "嫩芽": "tender tea buds", "铁锅": "iron wok", "街道": "street",
    "渔船": "fishing boat", "灯塔": "lighthouse",
    # "": not something a picture shows
    "远处": "", "温度": "", "智能": "", "试点": "", "百度": "", "精准": "", "食品级": "", "系统": "",
}
_BAD_SENSE = re.compile(r"^(to |made of |on |in |at |surname|variant of|old variant|abbr\.|classifier|CL:|see |"
                        r"used in|\(|archaic|erhua|also written|Japanese|Korean)", re.IGNORECASE)
_ADJECTIVE_ENDINGS = ("ent", "ive", "ful", "ous", "able", "ible", "ate")
_NOT_NOUNS = frozenset("able one tenth percent ok okay".split())
_lock = threading.Lock()
_tokenizer: Any = None


def _cedict() -> Any:
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            import lindera  # the CC-CEDICT dictionary is compiled into the wheel

            _tokenizer = lindera.Tokenizer(lindera.load_dictionary("embedded://cc-cedict"), mode="normal")
        return _tokenizer


def _senses(word: str) -> list[str]:
    tokenizer = _cedict()
    with _lock:
        tokens = list(tokenizer.tokenize(word))
    if len(tokens) != 1 or tokens[0].surface != word:
        return []
    details = list(tokens[0].details)
    if len(details) < 8 or details[7] == "*":
        return []
    return [s.strip() for s in ",".join(details[7:]).split("/") if s.strip()]


# Verbs whose first CC-CEDICT sense is not the visible action.
VERB_OVERRIDES: dict[str, str] = {
    "看": "look at", "看着": "look at", "观察": "watch", "站": "stand", "坐": "sit", "走": "walk", "用": "use",
    "采摘": "pick", "撑": "hold", "拿": "hold", "读": "read", "朗读": "read aloud", "等": "wait for",
    "种": "plant", "种菜": "grow vegetables", "泡": "brew", "喝": "drink", "跑": "run", "飞": "fly",
}


@lru_cache(maxsize=4096)
def gloss(word: str, *, verb: bool = False) -> str | None:
    """A short English gloss fit for a scene (a noun, or a verb without "to"), or None."""
    if verb and word in VERB_OVERRIDES:
        return VERB_OVERRIDES[word]
    if not verb and word in GLOSS_OVERRIDES:
        return GLOSS_OVERRIDES[word] or None   # "": not something a picture shows
    for sense in _senses(word):
        sense = re.sub(r"\([^)]*\)", "", sense).strip(" ;,")
        if verb:
            if sense.startswith("to ") and len(sense.split()) <= 3:
                return sense[3:]
            continue
        if (not sense or _BAD_SENSE.match(sense) or len(sense.split()) > 3 or has_digit(sense)
                or not re.fullmatch(r"[A-Za-z][A-Za-z' -]*", sense) or sense.endswith(_ADJECTIVE_ENDINGS)
                or " " not in sense and sense in _NOT_NOUNS):
            continue
        return sense
    return None


def known(word: str) -> bool:
    """The dictionary has the word (in any sense): not a person's name."""
    return word in GLOSS_OVERRIDES or bool(_senses(word))


def has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)
