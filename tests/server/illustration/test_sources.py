"""illustrate_content's scene sources and prompt checks, through MCP and on the evaluation set."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from providers import all_specs
from server.app import build_server
from server.config import Settings
from server.illustration import Target, plan_illustrations
from server.illustration.keywords import EN_STOPWORDS
from server.illustration.shots import _GENERIC
from server.illustration.vocabulary import DEFAULT_TEMPLATE, META_PATTERNS, TEMPLATES
from tests.fakes.chat_fake import ChatFake, scenes_reply
from tests.fakes.replicate_fake import FakeReplicate
from tests.server.illustration.eval_texts import EVAL
from tests.support.results import text_of

CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
SPECS = {s.name: s for s in all_specs()}
FLUX, SD = Target.of(SPECS["Flux 1.1 Pro"]), Target.of(SPECS["Stable Diffusion 3.5 Medium"])
WANX = Target.of(SPECS["Wanx 2.1 T2I Plus (DashScope)"])
ARTICLE = "\n\n".join(text for name, text, _, _ in EVAL if name == "en-news-deepsea")


# --------------------------------------------------------------------------- the evaluation set


@pytest.mark.parametrize(("name", "text", "subjects", "names"), EVAL, ids=[e[0] for e in EVAL])
def test_every_prompt_of_the_evaluation_set_is_a_scene_the_model_can_read(
        name: str, text: str, subjects: tuple[str, ...], names: tuple[str, ...]) -> None:
    for target in (FLUX, SD, WANX):
        plan = plan_illustrations(text, 3, target=target)
        prompts = [p.prompt for p in plan.prompts]
        assert len(set(prompts)) == 3, prompts
        for p in plan.prompts:
            if target.english_only:
                assert not CJK.search(p.prompt), p.prompt
                assert len(p.prompt.split()) < 80, p.prompt
            assert not META_PATTERNS.search(p.prompt), p.prompt
            assert not any(n in p.prompt for n in names), p.prompt
            assert "no text" not in p.prompt.lower()
        if plan.language == "zh" or plan.analysis.language == "en":   # subjects as written in the text
            shown = "\n".join(prompts).lower()
            assert any(s.lower() in shown for s in subjects), (name, target.name, prompts)


# --------------------------------------------------------------------------- through MCP


@pytest.fixture
def chat() -> Iterator[ChatFake]:
    with ChatFake(api_key="sk-dashscope-test").running() as fake:
        yield fake


def _server(tmp_path: Path, replicate_fake: FakeReplicate, token: str, chat: ChatFake | None = None, **extra: str):
    env = {"EASEL_STORAGE_DIR": str(tmp_path / "images"), "REPLICATE_API_TOKEN": token,
           "REPLICATE_BASE_URL": replicate_fake.url, "EASEL_POLL_INTERVAL": "0.01", "EASEL_POLL_MAX": "0.05",
           "EASEL_WAIT_WINDOW": "1", **extra}
    if chat is not None:
        env.update({"DASHSCOPE_API_KEY": chat.api_key, "DASHSCOPE_BASE_URL": chat.url + "/api/v1",
                    "EASEL_PROMPT_MODEL": "dashscope:qwen-plus"})
    return build_server(Settings.from_env(env))


TOKEN = "r8_secret_test_token_0123456789"


@pytest.fixture
def replicate_fake() -> Iterator[FakeReplicate]:
    with FakeReplicate(token=TOKEN).running() as fake:
        yield fake



@pytest.mark.anyio
async def test_caller_scenes_are_sent_with_the_style_and_listed_in_the_text(tmp_path, replicate_fake) -> None:
    scenes = ["a submersible's floodlights on pale mineral chimneys, white shrimp crowding the vents",
              "a research ship on a calm grey sea at dawn, a crane lowering the submersible"]
    async with Client(_server(tmp_path, replicate_fake, TOKEN)) as client:
        result = await client.call_tool("illustrate_content", {"content": ARTICLE, "scenes": scenes,
                                                               "style": "digital_illustration/hand_drawn"})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["analysis"]["scene_source"] == "caller"
    sent = sorted(c.json["input"]["prompt"] for c in replicate_fake.creates)
    assert sent == sorted(i["prompt"] for i in data["illustrations"])
    for scene, item in zip(scenes, data["illustrations"], strict=True):
        assert item["prompt"].startswith(f"hand drawn illustration of {scene}, ")
        assert item["prompt"] in text_of(result)   # a caller that sees only text sees every prompt


@pytest.mark.anyio
@pytest.mark.parametrize(("args", "message"), [
    ({"scenes": ["海底的潜水器"]}, "scenes: Flux 1.1 Pro reads English only"),
    ({"scenes": ["a ship", "a shrimp"], "count": 3}, "count: 3 differs from the 2 scene(s)"),
    ({"purpose": "thumbnail", "name": "\u200b  "}, "name:"),
])
async def test_bad_scenes_count_or_name_are_one_line_errors_before_anything_is_spent(
        tmp_path, replicate_fake, args: dict, message: str) -> None:
    async with Client(_server(tmp_path, replicate_fake, TOKEN)) as client:
        result = await client.call_tool("illustrate_content", {"content": ARTICLE, **args})
    assert result.is_error and message in text_of(result), text_of(result)
    assert "\n" not in text_of(result).strip()
    assert replicate_fake.requests == []


@pytest.mark.anyio
async def test_a_dry_run_lists_every_prompt_in_its_text(tmp_path, replicate_fake) -> None:
    async with Client(_server(tmp_path, replicate_fake, TOKEN)) as client:
        result = await client.call_tool("illustrate_content", {"content": ARTICLE, "count": 2, "dry_run": True})
    text = text_of(result)
    assert "nothing spent" in text and "the server's planner" in text
    assert "Sections found:\n[1] " in text and "submersible" in text.split("Prompts as sent:")[0]
    for item in result.structured_content["illustrations"]:
        assert f"{item['index'] + 1}. {item['prompt']}" in text


@pytest.mark.anyio
async def test_the_prompt_model_writes_the_scenes_and_its_use_is_reported(tmp_path, replicate_fake, chat) -> None:
    chat.reply = scenes_reply(
        "a yellow submersible hangs in black water, its floodlights on pale mineral chimneys crowded with shrimp",
        "white shrimp swarm over a smoking hydrothermal vent, particles drifting through a single beam of light")
    async with Client(_server(tmp_path, replicate_fake, TOKEN, chat)) as client:
        result = await client.call_tool("illustrate_content", {"content": ARTICLE, "count": 2, "dry_run": True})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["analysis"]["scene_source"] == "language_model"
    assert data["prompt_model"]["used"] and data["prompt_model"]["input_tokens"] > 0
    assert data["illustrations"][0]["prompt"].startswith("a yellow submersible hangs in black water")
    assert "the prompt model was called" in text_of(result) and "nothing spent" not in text_of(result)
    [(path, body)] = chat.requests
    assert path == "/compatible-mode/v1/chat/completions" and body["model"] == "qwen-plus"
    assert "exactly 2" in body["messages"][1]["content"] and "English" in body["messages"][1]["content"]


@pytest.mark.anyio
@pytest.mark.parametrize(("reply", "why"), [
    ("Sure! Here are your scenes: a ship.", "not JSON"),
    (scenes_reply("a submersible lights pale chimneys crowded with white shrimp in black water"),
     "1 scene(s) instead of 2"),
    (scenes_reply("潜水器的探照灯照亮了黑色的海水和白色的虾群以及烟囱", "a research ship on a calm grey sea at dawn"),
     "not in English"),
    (scenes_reply("An illustration for this article about the deep sea and its animals",
                  "a research ship on a calm grey sea at dawn with a crane"), "talks about the text"),
])
async def test_bad_model_output_falls_back_to_the_planner_and_says_why(tmp_path, replicate_fake, chat,
                                                                       reply: str, why: str) -> None:
    chat.reply = reply
    async with Client(_server(tmp_path, replicate_fake, TOKEN, chat)) as client:
        result = await client.call_tool("illustrate_content", {"content": ARTICLE, "count": 2, "dry_run": True})
    data = result.structured_content
    assert data["analysis"]["scene_source"] == "planner"
    assert why in data["prompt_model"]["note"] and why in text_of(result)
    assert not data["prompt_model"]["used"]


@pytest.mark.anyio
async def test_a_slow_prompt_model_times_out_into_the_planner(tmp_path, replicate_fake, chat) -> None:
    chat.delay = 2.0
    async with Client(_server(tmp_path, replicate_fake, TOKEN, chat, EASEL_PROMPT_TIMEOUT="0.2")) as client:
        result = await client.call_tool("illustrate_content", {"content": ARTICLE, "count": 2})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["analysis"]["scene_source"] == "planner" and "did not answer within 0.2 s" in text_of(result)
    assert len(data["images"]) == 2   # the images are still made


@pytest.mark.anyio
async def test_chinese_text_for_a_chinese_reading_model_is_prompted_in_chinese(tmp_path, replicate_fake) -> None:
    text = next(t for n, t, _, _ in EVAL if n == "zh-fiction")
    async with Client(_server(tmp_path, replicate_fake, TOKEN)) as client:
        result = await client.call_tool("illustrate_content", {
            "content": text, "count": 2, "dry_run": True, "model": "Wanx 2.1 T2I Plus (DashScope)",
            "style": "digital_illustration/hand_drawn"})
    items = result.structured_content["illustrations"]
    assert all(i["prompt"].startswith("手绘插画风格，") for i in items)
    assert all(not re.search(r"[A-Za-z]{3,}", i["prompt"]) for i in items)
    assert all("水印" in i["negative_prompt"] for i in items)
    assert not any("林晓" in i["prompt"] for i in items)


@pytest.mark.anyio
async def test_modelscope_chat_is_free_and_its_path_is_v1_chat_completions(tmp_path, replicate_fake) -> None:
    with ChatFake(api_key="ms-test-token").running() as ms:
        ms.reply = scenes_reply("a yellow submersible hangs in black water above pale chimneys crowded with shrimp")
        server = _server(tmp_path, replicate_fake, TOKEN, MODELSCOPE_API_KEY=ms.api_key, MODELSCOPE_BASE_URL=ms.url,
                         EASEL_PROMPT_MODEL="modelscope:Qwen/Qwen2.5-72B-Instruct")
        async with Client(server) as client:
            result = await client.call_tool("illustrate_content", {"content": ARTICLE, "count": 1, "dry_run": True})
    data = result.structured_content
    assert data["analysis"]["scene_source"] == "language_model"
    assert data["prompt_model"]["cost_usd"] == 0.0 and "$0.0000" in text_of(result)
    assert [path for path, _ in ms.requests] == ["/v1/chat/completions"]


@pytest.mark.anyio
async def test_a_language_model_on_replicate_writes_chinese_scenes_for_wanx(tmp_path, replicate_fake) -> None:
    text = next(t for n, t, _, _ in EVAL if n == "zh-fiction")
    scenes = ["雨夜的车站灯光下，一位撑着旧伞的年轻女子独自等待最后一班公交车，积水倒映着霓虹招牌",
              "清晨的河边旧书店里，白发老人站在堆满发黄书籍和旧地图的书架之间，晨光从窗户照进来"]
    seen: list[dict] = []

    def llm(prediction: dict) -> list[str]:
        seen.append(prediction["input"])
        reply = scenes_reply(*scenes)
        return [reply[i:i + 7] for i in range(0, len(reply), 7)]   # streamed pieces, as language models answer

    replicate_fake.add_model("meta/meta-llama-3-70b-instruct", official=True, output=llm, input_schema={
        "type": "object", "required": ["prompt"], "properties": {
            "prompt": {"type": "string"}, "system_prompt": {"type": "string"},
            "max_tokens": {"type": "integer"}, "temperature": {"type": "number"}}})
    server = _server(tmp_path, replicate_fake, TOKEN, EASEL_PROMPT_MODEL="replicate:meta/meta-llama-3-70b-instruct")
    async with Client(server) as client:
        result = await client.call_tool("illustrate_content", {
            "content": text, "count": 2, "dry_run": True, "model": "Wanx 2.1 T2I Plus (DashScope)"})
    data = result.structured_content
    assert data["analysis"]["scene_source"] == "language_model", data["prompt_model"]
    assert [i["prompt"].split("，")[0] for i in data["illustrations"]] == [s.split("，")[0] for s in scenes]
    assert "Simplified Chinese" in seen[0]["prompt"] and "JSON" in seen[0]["system_prompt"]
    assert "cost unknown" in text_of(result)


def test_the_prompt_model_setting_is_checked_at_start_up() -> None:
    from providers.errors import ConfigError

    with pytest.raises(ConfigError, match="EASEL_PROMPT_MODEL must be <provider>:<model>"):
        Settings.from_env({"EASEL_PROMPT_MODEL": "openai:gpt-4o"})
    with pytest.raises(ConfigError, match="needs DASHSCOPE_API_KEY"):
        Settings.from_env({"EASEL_PROMPT_MODEL": "dashscope:qwen-plus"})
    assert Settings.from_env({"EASEL_PROMPT_MODEL": "dashscope: qwen-plus ", "DASHSCOPE_API_KEY": "k"}
                             ).calls.prompt_model == ("dashscope", "qwen-plus")


@pytest.mark.anyio
async def test_a_failing_prompt_model_falls_back_without_leaking_its_key(tmp_path, replicate_fake, chat) -> None:
    chat.status = 500
    async with Client(_server(tmp_path, replicate_fake, TOKEN, chat)) as client:
        result = await client.call_tool("illustrate_content", {"content": ARTICLE, "count": 2, "dry_run": True})
    data = result.structured_content
    assert data["analysis"]["scene_source"] == "planner"
    assert "failed (ProviderUnavailable)" in data["prompt_model"]["note"]
    assert chat.api_key not in text_of(result) and chat.api_key not in str(data)


@pytest.mark.parametrize(("text", "wrong"), [
    ("Once upon a time a little bear looked up at the stars from his bed. A star winked back at him, "
     "and the bear smiled and pulled his blanket up to his nose.", ("instrument", "telescope", "laboratory")),
    ("The storm broke over the harbour at noon. Dark clouds rolled in from the sea and the fishing boats "
     "strained at their ropes while waves crashed over the pier.", ("device", "screen", "technolog")),
])
def test_whole_word_templates_no_longer_put_the_wrong_scenery_into_a_text(text: str, wrong: tuple[str, ...]) -> None:
    prompts = " ".join(p.prompt for p in plan_illustrations(text, 2).prompts).lower()
    assert not any(w in prompts for w in wrong), prompts
    assert "bear" in prompts or "boat" in prompts


def test_english_scenes_read_as_pictures_not_narration() -> None:
    from server.illustration.scenes_text import en_scene

    assert en_scene("Then she carried the lantern along the flooded street.", set(), {"she": 3}, "fox") == (
        "the fox carrying the lantern along the flooded street")
    assert en_scene("Scientists said that white shrimp crowded the vents.", set(), {}) == (
        "white shrimp crowding the vents")
    assert en_scene("Mira's brother stopped by the old mill.", {"Mira"}, {"she": 2}) == (
        "a woman's brother stopping by the old mill")
    assert en_scene("Whisk the eggs in a bowl, then fold in the flour.", set(), {}) == (
        "hands whisking the eggs in a bowl")
    assert en_scene("The bird glided over the lake.", set(), {}) == "the bird glided over the lake"   # ambiguous: kept


# --------------------------------------------------------------------------- distinct pictures, not renamed shots

_SHOTS = sorted({shot for t in (*TEMPLATES, DEFAULT_TEMPLATE) for shot in (*t.shots, *t.shots_zh)}
                | {shot for by_scale in _GENERIC.values() for family in by_scale.values() for shot in family},
                key=len, reverse=True)
_EN_WORD = re.compile(r"[a-z][a-z'-]+")


def _without_shots(prompt: str) -> str:
    for shot in _SHOTS:
        prompt = prompt.replace(shot, "")
    return " ".join(prompt.replace("，", " ").replace(",", " ").split())


def _content(scene: str) -> set[str]:
    """What a scene shows: its English content words, or its Chinese character pairs."""
    if CJK.search(scene):
        chars = "".join(CJK.findall(scene))
        return {chars[i:i + 2] for i in range(len(chars) - 1)}
    return {w for w in _EN_WORD.findall(scene.lower()) if w not in EN_STOPWORDS and w not in ("a", "an", "the")}


ONE_MOMENT = {"en-one-line", "zh-one-line"}   # one sentence, one action: a second picture is another view


@pytest.mark.parametrize(("name", "text"), [(e[0], e[1]) for e in EVAL], ids=[e[0] for e in EVAL])
def test_the_pictures_of_a_set_differ_by_more_than_their_shot_words(name: str, text: str) -> None:
    """Two prompts that differ only in "wide shot" / "wide establishing shot" pay twice for one
    picture. With the shot phrases removed every two prompts differ by at least three words of
    what they show; a text with more than one moment shows two of them (its two pictures share at
    most half of their content words)."""
    for target in (FLUX, WANX):
        for count in (2, 3):
            plan = plan_illustrations(text, count, target=target)
            stripped = [_without_shots(p.prompt) for p in plan.prompts]
            assert len(set(stripped)) == count, stripped
            for i, p in enumerate(plan.prompts):
                for q in plan.prompts[i + 1:]:
                    a, b = _content(p.scene), _content(q.scene)
                    assert len(a ^ b) >= 3, (name, target.name, p.scene, q.scene)
                    if count == 2 and name not in ONE_MOMENT:
                        assert len(a & b) <= max(1, min(len(a), len(b))) / 2, (name, target.name, p.scene, q.scene)
