"""Content analysis for illustrate_content: text in, a set of distinct, cohesive prompts out."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.base import CHINESE_FIRST
from providers.types import ImageStyle
from server.illustration import (
    MAX_CONTENT_CHARS,
    MAX_PROMPT_CHARS,
    THUMBNAIL_NEGATIVE_PROMPT,
    THUMBNAIL_PALETTE,
    ContentAnalysis,
    IllustrationPlan,
    Purpose,
    Target,
    analyze_content,
    detect_language,
    plan_illustrations,
    thumbnail_prompt_v2,
)

WANX = Target("Wanx 2.1 T2I Plus (DashScope)", CHINESE_FIRST, negative_prompt=True)

ROOT = Path(__file__).resolve().parents[3]   # the checkout, so "server" is the package

BEEKEEPING = """# Urban Beekeeping: Honey on the Rooftops

Across New York and London, beekeepers are hauling hives up fire escapes and onto flat roofs. \
Urban beekeeping has grown from a fringe hobby into a small movement, and the honey it produces \
tastes of linden trees, clover and window boxes.

## Why cities need bees

Cities are surprisingly good places for bees. Parks, street trees and balcony gardens bloom in \
sequence from March to October, and pesticides are used less often than on farms. A single hive \
can pollinate thousands of flowers a day, helping community gardens and orchards set fruit.

## Keeping a hive on a roof

A rooftop hive needs shelter from wind, a source of water and a beekeeper who checks the frames \
every week in summer. Brooklyn Grange, a rooftop farm in Queens, keeps more than thirty hives \
beside its vegetable beds. Neighbours worried about stings soon learn that honeybees are gentle \
when they forage.

## The harvest

In late August the beekeepers lift heavy frames capped with wax, spin them in an extractor and \
pour the honey into jars. Each neighbourhood yields a different flavour: dark and minty near the \
river, pale and floral near the botanical garden. The jars sell out at the farmers market within hours.
"""

KETTLE = """SmartBrew Kettle Pro

Meet the kettle that knows your tea. SmartBrew heats water to the exact temperature each leaf \
needs: 70 degrees for green tea, 85 for oolong, a rolling boil for black tea. Choose a preset on \
the touch display or from the app on your phone, and the kettle holds the temperature for up to an hour.

The body is brushed stainless steel with a double wall that stays cool to the touch. A gooseneck \
spout pours a slow, precise stream for pour-over coffee, and the lid opens with one button so you \
never burn your fingers on steam.

Schedule a morning boil from bed, get a notification when the water is ready, and let the kettle \
switch itself off when it runs dry. The 1.2 litre capacity is enough for a full pot, and the base \
rotates 360 degrees for left- and right-handed pouring.
"""

ZH_NEWSLETTER = """科技与城市周刊

一、人工智能走进城市交通

今年，上海和深圳的多个街区开始试点智能交通信号灯。系统通过摄像头和传感器收集路口数据，由人工智能算法实时调整红绿灯时长。\
试点路段的高峰拥堵时间平均缩短了百分之十五，公交车准点率明显提升。

二、屋顶花园里的蜜蜂

在北京的一些老旧社区，居民把闲置的屋顶改造成花园，还养起了蜜蜂。蜜蜂为周边的植物授粉，社区花园的蔬菜和水果产量随之增加。\
每到秋天，居民们会一起收获蜂蜜，分享给邻居。

三、无人机送货的新尝试

杭州的一家科技公司在郊区测试无人机送货。无人机从仓库起飞，沿固定航线把包裹送到小区的智能快递柜。\
公司表示，未来希望把这项技术推广到更多城市，让物流更快、更环保。
"""

ZH_STORY = """第一章 雨夜

那天晚上下着大雨。林晓撑着一把旧伞，站在车站的灯光下等最后一班公交车。街道上几乎没有行人，只有积水倒映着路灯和霓虹招牌。\
她想起小时候奶奶在厨房里煮姜汤的样子，心里一阵温暖。

第二章 旧书店

第二天清晨，雨停了。林晓沿着河边走到一家旧书店。书店老板是一位白发老人，店里堆满了发黄的书籍和旧地图。\
她在角落里找到一本没有封面的日记，里面夹着一张褪色的照片，照片上是一座她从未见过的灯塔。

第三章 灯塔

周末，林晓坐火车来到海边的小镇。她沿着海滩一直走，终于在悬崖上看见了照片里的灯塔。灯塔的门虚掩着，楼梯盘旋而上，\
墙上刻着一行模糊的字。海风吹过，她仿佛听见了奶奶的声音。
"""

ZH_PRODUCT = """智能电水壶 T1

这款智能电水壶采用食品级不锈钢内胆，支持四十到一百度精准控温。通过手机应用可以预约烧水，早上起床就能喝上温度刚好的茶。

水壶底座可三百六十度旋转，壶身双层防烫设计，干烧自动断电，让全家人用得安心。一点二升大容量，适合泡茶、冲咖啡和冲奶粉。
"""

TEXTS = {
    "beekeeping": BEEKEEPING,
    "kettle": KETTLE,
    "zh_newsletter": ZH_NEWSLETTER,
    "zh_story": ZH_STORY,
    "zh_product": ZH_PRODUCT,
}

_HAN = re.compile(r"[\u4e00-\u9fff]")


def _all_prompts(plan: IllustrationPlan) -> str:
    return "\n".join(p.prompt for p in plan.prompts).lower()


def _assert_well_formed(plan: IllustrationPlan, count: int) -> None:
    prompts = [p.prompt for p in plan.prompts]
    assert len(prompts) == count
    assert len(set(prompts)) == count
    assert [p.index for p in plan.prompts] == list(range(count))
    for prompt in prompts:
        assert prompt.strip()
        assert len(prompt) <= MAX_PROMPT_CHARS


# --------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("name", "language"),
    [("beekeeping", "en"), ("kettle", "en"), ("zh_newsletter", "zh"), ("zh_story", "zh"), ("zh_product", "zh")],
)
def test_the_language_of_each_text_is_detected(name: str, language: str) -> None:
    assert detect_language(TEXTS[name]) == language
    assert analyze_content(TEXTS[name]).language == language


def test_chinese_text_with_some_english_product_words_is_still_chinese() -> None:
    assert detect_language("这款 SmartBrew 水壶支持 Wi-Fi 和 App 预约烧水，适合每天早上泡茶。") == "zh"


def test_english_text_quoting_a_chinese_word_is_still_english() -> None:
    text = "The word 科技 means technology; it appears on every billboard in the city centre these days."
    assert detect_language(text) == "en"


# --------------------------------------------------------------------------- analysis


def test_markdown_headings_become_titled_sections_and_the_first_heading_the_title() -> None:
    analysis = analyze_content(BEEKEEPING)
    assert analysis.title == "Urban Beekeeping: Honey on the Rooftops"
    assert [s.title for s in analysis.sections] == [
        None,
        "Why cities need bees",
        "Keeping a hive on a roof",
        "The harvest",
    ]
    assert [s.index for s in analysis.sections] == [0, 1, 2, 3]
    assert analysis.sections[3].text.startswith("In late August")


def test_chinese_numbered_headings_split_a_newsletter() -> None:
    analysis = analyze_content(ZH_NEWSLETTER)
    assert analysis.title == "科技与城市周刊"
    assert [s.title for s in analysis.sections] == ["人工智能走进城市交通", "屋顶花园里的蜜蜂", "无人机送货的新尝试"]


def test_chapter_headings_split_a_chinese_story() -> None:
    analysis = analyze_content(ZH_STORY)
    assert [s.title for s in analysis.sections] == ["第一章 雨夜", "第二章 旧书店", "第三章 灯塔"]


def test_blank_line_paragraphs_become_sections_and_a_short_first_line_the_title() -> None:
    analysis = analyze_content(KETTLE)
    assert analysis.title == "SmartBrew Kettle Pro"
    assert len(analysis.sections) == 3
    assert all(s.title is None for s in analysis.sections)


def test_tiny_paragraphs_are_merged_into_their_neighbours() -> None:
    text = "Bees.\n\nMore bees.\n\n" + "A long paragraph about hives and honey on city roofs. " * 6
    analysis = analyze_content(text)
    assert len(analysis.sections) == 1
    assert "More bees." in analysis.sections[0].text


def test_english_keywords_are_the_texts_real_subjects() -> None:
    analysis = analyze_content(BEEKEEPING)
    keywords = {k.lower() for k in analysis.keywords}
    assert {"honey", "hive"} <= keywords
    assert any(k.startswith("bee") for k in keywords)
    assert not keywords & {"the", "and", "are", "from", "into"}
    assert "hive" in analysis.sections[2].keywords


def test_chinese_keywords_come_from_jieba_nouns_not_whitespace() -> None:
    analysis = analyze_content(ZH_NEWSLETTER)
    assert "蜜蜂" in analysis.keywords
    assert all(" " not in k and len(k) <= 32 for k in analysis.keywords)
    assert "蜜蜂" in analysis.sections[1].keywords
    assert "仓库" in analysis.sections[2].keywords
    assert not set(analysis.keywords) & {"今年", "一起", "明显", "通过"}  # not nouns


def test_themes_come_from_the_matched_templates() -> None:
    assert analyze_content(BEEKEEPING).themes == ("nature",)
    assert analyze_content(ZH_PRODUCT).themes == ("product",)
    assert analyze_content("A short note about nothing much at all.").themes == ()  # too little evidence


# --------------------------------------------------------------------------- prompts


@pytest.mark.parametrize("name", sorted(TEXTS))
@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize("count", [1, 3, 8])
def test_every_plan_has_count_distinct_bounded_prompts(name: str, purpose: Purpose, count: int) -> None:
    plan = plan_illustrations(TEXTS[name], count, purpose)
    _assert_well_formed(plan, count)


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_the_same_input_gives_the_same_plan(name: str) -> None:
    for purpose in Purpose:
        assert plan_illustrations(TEXTS[name], 4, purpose) == plan_illustrations(TEXTS[name], 4, purpose)
        assert plan_illustrations(TEXTS[name], 4, purpose, seed=7) == plan_illustrations(
            TEXTS[name], 4, purpose, seed=7
        )


def test_a_different_seed_can_change_the_variants_but_each_seed_is_stable() -> None:
    plans = {seed: plan_illustrations(BEEKEEPING, 3, seed=seed) for seed in range(8)}
    assert len({tuple(p.prompt for p in plan.prompts) for plan in plans.values()}) > 1
    for seed, plan in plans.items():
        assert plan_illustrations(BEEKEEPING, 3, seed=seed) == plan
        _assert_well_formed(plan, 3)
        assert plan.analysis == plans[0].analysis  # the seed never changes the analysis


def test_a_plan_is_identical_in_fresh_processes_with_different_hash_seeds(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        import server.illustration as ill
        assert "jieba" not in sys.modules, "jieba must be imported lazily"
        texts = json.loads(open(sys.argv[1], encoding="utf-8").read())
        out = {name: ill.plan_illustrations(text, 5, purpose, seed=3).to_dict()
               for name, text in texts.items() for purpose in ("illustration", "cover")}
        open(sys.argv[2], "w", encoding="utf-8").write(json.dumps(out, ensure_ascii=False, sort_keys=True))
        """
    )
    texts = {"beekeeping": BEEKEEPING, "zh_newsletter": ZH_NEWSLETTER}
    source = tmp_path / "texts.json"
    source.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    results = []
    for hash_seed in ("1", "2"):
        target = tmp_path / f"plan-{hash_seed}.json"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run(
            [sys.executable, "-c", script, str(source), str(target)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == ""  # the server speaks MCP on stdout: analysis prints nothing
        results.append(target.read_text(encoding="utf-8"))
    assert results[0] == results[1]
    here = {name: plan_illustrations(text, 5, purpose, seed=3).to_dict()
            for name, text in texts.items() for purpose in ("illustration", "cover")}
    assert json.loads(results[0]) == json.loads(json.dumps(here, ensure_ascii=False))


def test_illustrations_mention_the_beekeeping_articles_subjects() -> None:
    plan = plan_illustrations(BEEKEEPING, 4)
    text = _all_prompts(plan)
    assert "bee" in text
    assert "honey" in text
    assert "hive" in text
    assert {p.section_index for p in plan.prompts} == {0, 1, 2, 3}


def test_illustrations_of_the_kettle_show_the_kettle() -> None:
    plan = plan_illustrations(KETTLE, 3)
    assert "kettle" in _all_prompts(plan)
    assert "tea" in _all_prompts(plan)


def test_chinese_product_description_is_illustrated_as_a_product() -> None:
    plan = plan_illustrations(ZH_PRODUCT, 2)
    assert all(p.template == "product" for p in plan.prompts)
    assert "kettle" in _all_prompts(plan)
    assert not _HAN.search(_all_prompts(plan))   # the default target reads English only


@pytest.mark.parametrize("name", sorted(TEXTS))
@pytest.mark.parametrize("purpose", list(Purpose))
def test_quality_constraints_go_to_the_negative_prompt_never_into_the_prompt(name: str, purpose: Purpose) -> None:
    for target in (Target(), WANX):
        for p in plan_illustrations(TEXTS[name], 3, purpose, target=target).prompts:
            assert "no text" not in p.prompt.lower() and "watermark" not in p.prompt.lower()
            assert (p.negative_prompt is not None) == target.negative_prompt
    wanx = plan_illustrations(ZH_STORY, 2, target=WANX).prompts
    assert all("水印" in (p.negative_prompt or "") for p in wanx)


def test_a_set_shares_one_cohesion_phrase_and_a_single_image_does_not_need_it() -> None:
    plan = plan_illustrations(BEEKEEPING, 3)
    assert plan.style_cohesion and all(plan.style_cohesion in p.prompt for p in plan.prompts)
    single = plan_illustrations(BEEKEEPING, 1)
    assert single.style_cohesion == "" and plan.style_cohesion not in single.prompts[0].prompt
    bw = plan_illustrations(BEEKEEPING, 3, style=ImageStyle.REALISTIC_BW)
    assert "black-and-white" in bw.style_cohesion and "palette" not in bw.style_cohesion
    assert all(p.prompt.startswith("black and white photograph of ") for p in bw.prompts)


def test_the_style_is_left_to_the_server() -> None:
    for p in plan_illustrations(BEEKEEPING, 3).prompts:
        for word in ("photorealistic", "pixel art", "watercolor", "3d render"):
            assert word not in p.prompt.lower()


def test_cover_illustration_and_thumbnail_prompts_differ() -> None:
    prompts = {purpose: plan_illustrations(BEEKEEPING, 1, purpose).prompts[0] for purpose in Purpose}
    assert len({p.prompt for p in prompts.values()}) == 3
    assert prompts[Purpose.COVER].section_index is None
    assert "thumbnail" in prompts[Purpose.THUMBNAIL].prompt
    assert prompts[Purpose.THUMBNAIL].template == "thumbnail"
    assert prompts[Purpose.ILLUSTRATION].section_index is not None


def test_cover_variations_are_the_texts_most_picturable_moments() -> None:
    plan = plan_illustrations(BEEKEEPING, 4, Purpose.COVER)
    _assert_well_formed(plan, 4)
    assert all(p.section_index is None for p in plan.prompts)
    assert len({p.scene for p in plan.prompts}) == 4


def test_more_images_than_sections_take_each_sections_next_best_moment() -> None:
    plan = plan_illustrations(ZH_PRODUCT, 3)  # one section
    _assert_well_formed(plan, 3)
    assert {p.section_index for p in plan.prompts} == {0}
    assert len({p.scene for p in plan.prompts}) == 3

    plan = plan_illustrations(BEEKEEPING, 7)  # four sections
    _assert_well_formed(plan, 7)
    sections = [p.section_index for p in plan.prompts]
    assert sections == sorted(sections)  # text order
    assert set(sections) == {0, 1, 2, 3}


def test_fewer_images_than_sections_pick_salient_sections_in_text_order() -> None:
    plan = plan_illustrations(BEEKEEPING, 2)
    sections = [p.section_index for p in plan.prompts]
    assert len(set(sections)) == 2
    assert sections == sorted(sections)


def test_thumbnail_follows_the_app_store_recipe_and_varies_per_image() -> None:
    description = (
        "Reads your inbox every morning, sorts newsletters from real mail, and writes a short "
        "digest of what needs an answer today."
    )
    plan = plan_illustrations(description, 3, Purpose.THUMBNAIL, name="Inbox Butler")
    _assert_well_formed(plan, 3)
    for p in plan.prompts:
        assert "app-store thumbnail" in p.prompt and "Inbox Butler" in p.prompt
        assert "digest" in p.prompt and "bold, simple" in p.prompt
    assert len({p.prompt.split(", ")[1] for p in plan.prompts}) == 3   # a different composition each


def test_thumbnail_name_defaults_to_the_title_and_chinese_names_stay_out_of_english_prompts() -> None:
    assert "named SmartBrew Kettle Pro" in plan_illustrations(KETTLE, 1, Purpose.THUMBNAIL).prompts[0].prompt
    story = plan_illustrations(ZH_STORY, 2, Purpose.THUMBNAIL).prompts
    assert not any(_HAN.search(p.prompt) for p in story)
    zh = plan_illustrations(ZH_STORY, 1, Purpose.THUMBNAIL, target=WANX).prompts[0].prompt
    assert "第一章 雨夜" in zh and "缩略图" in zh
    with pytest.raises(ValueError, match="^name: "):
        plan_illustrations(KETTLE, 1, Purpose.THUMBNAIL, name="  **  ")


def test_thumbnail_v2_is_retro_futuristic_pop_art_with_the_name_as_typography() -> None:
    prompt = thumbnail_prompt_v2("Inbox Butler", "an assistant that sorts email into a morning digest")
    assert '"Inbox Butler"' in prompt
    assert "bold typography" in prompt
    assert "retro-futuristic vector pop-art" in prompt
    assert "morning digest" in prompt
    assert len(prompt) <= MAX_PROMPT_CHARS
    assert len({thumbnail_prompt_v2("Inbox Butler", "digest", k) for k in range(3)}) == 3
    assert not _HAN.search(thumbnail_prompt_v2("茶小二", "一个帮你泡茶的助手"))
    long = thumbnail_prompt_v2("X" * 500, "word " * 5000)
    assert len(long) <= MAX_PROMPT_CHARS
    with pytest.raises(ValueError, match="name"):
        thumbnail_prompt_v2("  \n", "anything")


def test_thumbnail_palette_and_negative_prompt_are_the_seeds_values() -> None:
    assert THUMBNAIL_PALETTE == ("#000030", "#1C0C47", "#9900FF", "#4285F4", "#FFFFFF")
    assert THUMBNAIL_NEGATIVE_PROMPT == "blurry, low quality, distorted, deformed"


def test_plan_to_dict_is_json_and_keeps_sections_short() -> None:
    plan = plan_illustrations(ZH_NEWSLETTER, 3, seed=1)
    data = json.loads(json.dumps(plan.to_dict(), ensure_ascii=False))
    assert data["analysis"]["language"] == "zh"
    assert [p["prompt"] for p in data["prompts"]] == [p.prompt for p in plan.prompts]
    assert data["style_cohesion"] == plan.style_cohesion
    assert data["analysis"]["scene_source"] == "planner"
    assert all(len(s["excerpt"]) <= 160 for s in data["analysis"]["sections"])
    assert isinstance(plan.analysis, ContentAnalysis)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("content", ["", "   ", "\n\t\n", "\x00\x01\u200b"])
def test_empty_content_is_refused(content: str) -> None:
    with pytest.raises(ValueError, match="content must contain text"):
        plan_illustrations(content, 1)


def test_too_long_content_is_refused_with_the_limit_and_the_length() -> None:
    content = "bees " * (MAX_CONTENT_CHARS // 5 + 1)
    with pytest.raises(ValueError, match="content") as info:
        plan_illustrations(content, 1)
    assert "20,000" in str(info.value)
    assert f"{len(content):,}" in str(info.value)
    plan_illustrations(content[:MAX_CONTENT_CHARS], 1)  # exactly at the limit is fine


@pytest.mark.parametrize("count", [0, -1, 9, 100, True, 2.0, "3", None])
def test_a_count_outside_one_to_eight_is_refused(count: object) -> None:
    with pytest.raises(ValueError, match=r"count must be an integer from 1 to 8"):
        plan_illustrations(BEEKEEPING, count)  # type: ignore[arg-type]


def test_an_unknown_purpose_is_refused_and_a_purpose_string_is_accepted() -> None:
    with pytest.raises(ValueError, match="purpose must be one of illustration, cover, thumbnail"):
        plan_illustrations(BEEKEEPING, 1, "poster")  # type: ignore[arg-type]
    assert plan_illustrations(BEEKEEPING, 1, "cover") == plan_illustrations(BEEKEEPING, 1, Purpose.COVER)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- properties

_weird_text = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=400),
    st.text(alphabet="蜜蜂城市科技的了第一章、二三\n #。，abc", max_size=300),
    st.builds(
        lambda word, n, sep: sep.join([word] * n),
        st.text(min_size=1, max_size=40),
        st.integers(min_value=1, max_value=3000),
        st.sampled_from([" ", "\n", "\n\n", "", "。"]),
    ),
    st.builds(lambda c, n: c * n, st.sampled_from(["\x00", "\u200b", "\ufeff", "#", "\n", "\u2028", "字"]),
              st.integers(min_value=1, max_value=25_000)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=_weird_text,
    count=st.integers(min_value=-1, max_value=10),
    purpose=st.sampled_from(list(Purpose)),
    seed=st.one_of(st.none(), st.integers()),
)
def test_any_text_gives_count_distinct_bounded_prompts_or_a_value_error(
    content: str, count: int, purpose: Purpose, seed: int | None
) -> None:
    try:
        plan = plan_illustrations(content, count, purpose, seed=seed)
    except ValueError as error:
        assert re.match(r"(content|count) ", str(error))
        return
    _assert_well_formed(plan, count)
    assert plan_illustrations(content, count, purpose, seed=seed) == plan
    json.dumps(plan.to_dict())
