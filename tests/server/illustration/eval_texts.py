"""The evaluation set for illustrate_content's prompts: texts a user would really send.

Each entry: (name, text, words a prompt of it should show, in English, and names that must
never reach a prompt). ``make prompts`` prints each text's first line beside its prompts.
"""

from __future__ import annotations

EVAL: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
    ("en-news-deepsea", """Life Without Sunlight

By Jane Whitaker

Three thousand metres below the Pacific, the submersible's floodlights fell on chimneys of pale minerals. \
White shrimp crowded the vents, and particles drifted through the beams in total darkness.

Scientists said that the animals live on chemical energy rather than sunlight.""",
     ("submersible", "shrimp", "chimney", "vent"), ("Jane", "Whitaker")),
    ("en-news-flood", """Floodwaters Recede in River Town

Reporter: Tom Hale

Volunteers in rubber boots carried sandbags along the flooded main street as the river began to fall. \
A fisherman rowed his boat past the bakery, where water still stood at the windows.""",
     ("sandbag", "boat", "street", "river"), ("Tom", "Hale")),
    ("en-product-backpack", """TrailMate 30 Backpack

The TrailMate 30 backpack is made of waxed canvas with leather straps and brass buckles. \
A padded sleeve holds a laptop, and a side pocket fits a steel water bottle.""",
     ("backpack", "canvas", "strap", "bottle"), ()),
    ("en-fiction-bedtime", """The Lantern Fox

Once upon a time a small fox carried a paper lantern through the snowy forest. \
She stopped beneath an old oak where an owl was reading a book by starlight.

At last the fox curled up in her den, the lantern glowing beside her, and fell asleep.""",
     ("fox", "lantern", "forest", "owl"), ()),
    ("en-poem", """Harbour at Dusk

Gulls wheel above the tarred and resting boats,
a lamp comes on behind a salted pane,
the tide pulls softly at the mooring ropes.""",
     ("gull", "boat", "lamp", "tide", "rope"), ()),
    ("en-technical-database", """# How a B-tree index finds a row

A database stores an index as a tree of pages on disk. The query starts at the root page, \
compares the key with the separators and follows a pointer down to a leaf page.

```sql
SELECT * FROM users WHERE id = 42;
```

See https://example.com/btree for the full walkthrough.""",
     ("page", "tree", "disk", "database", "index"), ()),
    ("en-recipe", """Lemon Pancakes

Ingredients:
- 200 g flour
- 2 eggs
- 300 ml milk
- 1 lemon

Whisk the eggs and milk in a bowl, then fold in the flour and the lemon zest. \
Fry small pancakes in a hot buttered pan until golden, and stack them on a warm plate.""",
     ("pancake", "pan", "bowl", "egg", "lemon"), ()),
    ("en-one-line", "A red kite flying over a green hill on a windy afternoon.", ("kite", "hill"), ()),
    ("en-launch", """Introducing Nimbus Desk Lamp

Nimbus is a desk lamp with an aluminium arm and a warm LED head that dims with a touch. \
It lights a notebook and a coffee cup on a wooden desk without glare.""",
     ("lamp", "desk", "notebook", "cup"), ()),
    ("en-markdown-travel", """# Three Days in Lisbon

## The trams

Yellow trams climb the steep hills of the Alfama, past tiled walls and laundry hanging from balconies.

## The river

At sunset the ferries cross the wide Tagus river toward the lights of the southern shore.""",
     ("tram", "hill", "ferry", "river", "balcony"), ()),
    ("en-mixed-chinese", """Tea Notes: 龙井 Longjing

The farmers of Hangzhou pick the young leaves before the spring rains. In a hot iron wok the leaves \
are pressed flat by hand, and the kitchen fills with a roasted smell.""",
     ("leaves", "wok", "farmer", "kitchen"), ()),
    ("zh-news-deepsea", """深海热泉

记者 王小明

在太平洋三千米深的海底，潜水器的探照灯照亮了黑色的海水。热泉喷口周围挤满了白色的虾，矿物质从烟囱里不断涌出。""",
     ("虾", "潜水器", "探照灯", "海水"), ("王小明",)),
    ("zh-news-city", """城市屋顶变花园

（记者 李华）上海的一些小区把屋顶改造成了花园，居民在这里种菜、养蜂。孩子们在菜畦间观察蜜蜂采蜜。""",
     ("屋顶", "花园", "蜜蜂", "居民"), ("李华",)),
    ("zh-product-tea", """西湖龙井礼盒

精选明前嫩芽，手工炒制。礼盒内有青瓷茶罐和一把竹制茶匙，冲泡后茶汤嫩绿明亮。""",
     ("茶罐", "茶匙", "茶汤", "礼盒"), ()),
    ("zh-fiction", """第一章 雨夜

那天晚上下着大雨。林晓撑着一把旧伞，站在车站的灯光下等最后一班公交车。街道上的积水倒映着路灯和霓虹招牌。""",
     ("伞", "车站", "公交车", "路灯", "积水"), ("林晓",)),
    ("zh-poem", """静夜思

床前明月光，疑是地上霜。举头望明月，低头思故乡。""",
     ("明月", "霜", "床"), ()),
    ("zh-recipe", """番茄炒蛋

材料：
- 番茄 2个
- 鸡蛋 3个
- 盐 少许

先把鸡蛋打散，在热锅里炒至金黄盛出。再把番茄切块下锅翻炒，倒回鸡蛋，撒上葱花出锅装盘。""",
     ("鸡蛋", "番茄", "锅", "葱花"), ()),
    ("zh-technical", """数据中心的液冷技术

在数据中心里，一排排服务器浸没在透明的冷却液中，管道把热量带到屋顶的冷却塔。工程师在控制室里看着屏幕上的温度曲线。""",
     ("服务器", "冷却液", "管道", "工程师", "屏幕"), ()),
    ("zh-one-line", "一只白鹭站在稻田里，远处是青山和村庄。", ("白鹭", "稻田", "青山", "村庄"), ()),
    ("zh-markdown", """# 山村小学

## 早读

清晨，孩子们坐在木头课桌前大声朗读，窗外是雾气缭绕的竹林。

## 午饭

中午，老师在院子里的大锅旁给孩子们盛饭，几只小鸡在脚边啄米。""",
     ("孩子", "课桌", "竹林", "老师", "锅"), ()),
    ("zh-mixed-links", """AI 绘画工作坊

报名请访问 https://example.com/signup 。工作坊里，学员们用平板电脑和画笔在长桌上作画，墙上挂满了打印出来的作品。""",
     ("平板电脑", "画笔", "长桌", "作品"), ()),
]
