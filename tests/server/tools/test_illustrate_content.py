"""illustrate_content through MCP: plan, generate concurrently, report each item, cancel everything."""

from __future__ import annotations

from itertools import pairwise

import anyio
import pytest
from mcp import Client

from tests.fakes.replicate_fake import FakeReplicate
from tests.support.results import text_of

pytestmark = pytest.mark.anyio

ARTICLE = """# The quiet revolution of urban beekeeping

Across London, beekeepers are placing hives on office rooftops. The bees forage on lime trees
and park flowers, and the city honey has a surprising, floral taste.

## Who keeps the hives

Most urban beekeepers are volunteers. They inspect the colonies every week, check the queen,
and teach schoolchildren how a hive works.

## Too many hives?

Ecologists warn that wild pollinators compete with honeybees for the same flowers. Some
boroughs now plant wildflower meadows along railway lines to feed both.
"""

CHINESE = """一、城市里的无人驾驶

今年春天，深圳的街道上出现了更多无人驾驶出租车。乘客通过手机预约，车辆在城市交通中平稳行驶。

二、屋顶花园

上海的一些小区把屋顶改造成了花园，居民在这里种菜、养蜂，孩子们也来学习植物知识。
"""



async def test_a_dry_run_plans_styled_prompts_about_the_text_and_spends_nothing(
        server, replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        result = await client.call_tool("illustrate_content", {"content": ARTICLE, "count": 3, "dry_run": True,
                                                               "style": "digital_illustration/hand_drawn"})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    prompts = [i["prompt"] for i in data["illustrations"]]
    assert len(set(prompts)) == 3 and data["images"] == []
    assert all(p.startswith("hand drawn illustration of ") for p in prompts)
    assert any("bee" in p.lower() or "hive" in p.lower() for p in prompts)
    assert data["analysis"]["language"] == "en"
    assert replicate_fake.requests == []


async def test_all_illustrations_are_generated_concurrently(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.hold = True
    done: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        done.append(progress)

    results = []
    async with Client(server) as client, anyio.create_task_group() as tg:
        async def call() -> None:
            results.append(await client.call_tool("illustrate_content", {"content": ARTICLE, "count": 4},
                                                  progress_callback=on_progress))

        tg.start_soon(call)
        await replicate_fake.wait_until(lambda: replicate_fake.in_flight_now == 4, timeout=10)
        replicate_fake.release()
    data = results[0].structured_content
    assert len(data["images"]) == 4 and all(i["image"] for i in data["illustrations"])
    assert len({i["image"]["sha256"] for i in data["illustrations"]}) == 4
    sent = [c.json["input"]["prompt"] for c in replicate_fake.creates]
    assert sorted(sent) == sorted(i["prompt"] for i in data["illustrations"])
    assert done[-1] == 4 and all(a < b for a, b in pairwise(done)), done   # four jobs, one rising count


async def test_one_failed_illustration_does_not_sink_the_others(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.fail_predictions(1, error="safety filter triggered")
    async with Client(server) as client:
        result = await client.call_tool("illustrate_content", {"content": ARTICLE, "count": 3})
    assert not result.is_error
    items = result.structured_content["illustrations"]
    failed = [i for i in items if i["error"]]
    assert len(failed) == 1 and "safety filter triggered" in failed[0]["error"]["message"]
    assert failed[0]["image"] is None
    assert len([i for i in items if i["image"]]) == 2


async def test_cancelling_cancels_every_outstanding_prediction(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.hold = True
    async with Client(server) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "illustrate_content", {"content": ARTICLE, "count": 3})
            await replicate_fake.wait_until(lambda: len(replicate_fake.predictions) == 3, timeout=10)
            tg.cancel_scope.cancel()
        await replicate_fake.wait_until(lambda: len(replicate_fake.cancels) == 3, timeout=10)
    assert set(replicate_fake.cancels) == set(replicate_fake.predictions)


async def test_chinese_text_is_illustrated_and_recraft_gets_the_style_natively(
        server, replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        result = await client.call_tool("illustrate_content", {
            "content": CHINESE, "count": 2, "model": "Recraft v3", "style": "digital_illustration/grain"})
    assert not result.is_error, text_of(result)
    assert result.structured_content["analysis"]["language"] == "zh"
    for create in replicate_fake.creates:
        assert create.json["input"]["style"] == "digital_illustration/grain"
        assert not create.json["input"]["prompt"].startswith("grainy")


@pytest.mark.parametrize(("args", "field"), [
    ({"content": "x" * 20_001}, "content"),
    ({"content": "   \n  "}, "content"),
    ({"content": ARTICLE, "count": 9}, "count"),
    ({"content": ARTICLE, "purpose": "poster"}, "purpose"),
])
async def test_bad_input_is_refused_before_anything_is_spent(server, replicate_fake: FakeReplicate,
                                                             args: dict, field: str) -> None:
    async with Client(server) as client:
        result = await client.call_tool("illustrate_content", args)
    assert result.is_error and field in text_of(result)
    assert replicate_fake.requests == []
