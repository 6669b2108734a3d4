"""The curated tables ``zh_english`` reads: scene verbs, locatives, prepositions, adjectives and
the word classes (people, mass nouns, surnames...) it needs to write a Chinese clause in English."""

from __future__ import annotations

import re

from server.illustration.vocabulary import ANIMATE_EN

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
