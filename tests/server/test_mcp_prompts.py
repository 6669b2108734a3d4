"""MCP prompts (slash commands), their completions, and the icons of the server, tools and prompts."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest
from mcp import Client, MCPError
from mcp.types import PromptReference, ResourceTemplateReference

pytestmark = pytest.mark.anyio
MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])
PROMPTS = {"illustrate_article": "article", "product_shot": "product", "logo": "brand", "social_card": "title"}


def assert_svg_icon(icons) -> None:  # type: ignore[no-untyped-def]
    [icon] = icons
    assert icon.mime_type == "image/svg+xml" and icon.src.startswith("data:image/svg+xml;base64,")
    root = ET.fromstring(base64.b64decode(icon.src.split(",", 1)[1]))
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and len(root) >= 1


@MODES
async def test_four_prompts_are_listed_with_titles_icons_and_described_arguments(server, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(prompts) == set(PROMPTS)
    for name, required in PROMPTS.items():
        prompt = prompts[name]
        assert prompt.title and prompt.description
        assert_svg_icon(prompt.icons)
        assert [a.name for a in prompt.arguments if a.required] == [required]
        assert all(a.description for a in prompt.arguments)


@MODES
async def test_each_prompt_tells_the_assistant_which_tool_to_call_and_with_what(server, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        article = await client.get_prompt("illustrate_article", {"article": "Tides rise twice a day.",
                                                                 "count": "2", "style": "digital_illustration"})
        product = await client.get_prompt("product_shot", {"product": "a matte black ceramic mug", "size": "wide"})
        mark = await client.get_prompt("logo", {"brand": "Fernhill Bakery", "kind": "app icon"})
        card = await client.get_prompt("social_card", {"title": "Launch day", "platform": "Instagram / TikTok story"})
    [text] = [m.content.text for m in article.messages]
    assert "illustrate_content" in text and "count=2" in text and 'style="digital_illustration"' in text
    assert text.endswith("Tides rise twice a day.")
    [text] = [m.content.text for m in product.messages]
    assert "generate_image" in text and 'size="wide"' in text and "a matte black ceramic mug" in text
    [text] = [m.content.text for m in mark.messages]
    assert 'size="square"' in text and "no letters" in text and "Fernhill Bakery" in text
    [text] = [m.content.text for m in card.messages]
    assert 'size="tall"' in text and '"Launch day"' in text and 'model="Ideogram v3"' in text
    assert all(m.role == "user" for p in (article, product, mark, card) for m in p.messages)


@pytest.mark.parametrize(("name", "args", "field"), [
    ("logo", {"brand": "x", "kind": "poster"}, "kind: 'poster' is not one of logo"),
    ("product_shot", {"product": "x", "count": "9"}, "count: must be a whole number from 1 to 4"),
    ("social_card", {"title": "x", "platform": "Myspace"}, "platform: 'Myspace' is not one of"),
    ("illustrate_article", {"article": "x", "style": "oil"}, "style: 'oil' is not one of any, realistic_image"),
])
async def test_a_bad_prompt_argument_is_refused_by_name(server, name: str, args: dict, field: str) -> None:
    async with Client(server) as client:
        with pytest.raises(MCPError) as caught:
            await client.get_prompt(name, args)
    assert caught.value.error.code == -32602 and caught.value.error.message.startswith(field)


@MODES
async def test_arguments_with_fixed_values_complete(server, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        style = await client.complete(PromptReference(type="ref/prompt", name="social_card"),
                                      {"name": "style", "value": "digital_illustration/ha"})
        platform = await client.complete(PromptReference(type="ref/prompt", name="social_card"),
                                         {"name": "platform", "value": "insta"})
        kind = await client.complete(PromptReference(type="ref/prompt", name="logo"), {"name": "kind", "value": ""})
        free = await client.complete(PromptReference(type="ref/prompt", name="logo"), {"name": "brand", "value": "a"})
    assert style.completion.values == ["digital_illustration/hand_drawn", "digital_illustration/handmade_3d",
                                       "digital_illustration/hand_drawn_outline"]
    assert platform.completion.values == ["Instagram post", "Instagram / TikTok story"]
    assert kind.completion.values == ["logo", "wordmark", "app icon", "favicon", "emblem"]
    assert free.completion.values == []


async def test_stored_image_ids_complete_in_the_resource_template(server) -> None:
    template = ResourceTemplateReference(type="ref/resource", uri="easel://images/{image_id}")
    async with Client(server) as client:
        assert (await client.complete(template, {"name": "image_id", "value": ""})).completion.values == []
        made = await client.call_tool("generate_image", {"prompt": "a heron"})
        image_id = made.structured_content["images"][0]["uri"].removeprefix("easel://images/")
        found = await client.complete(template, {"name": "image_id", "value": image_id[:9]})
    assert found.completion.values == [image_id]


async def test_the_server_every_tool_and_the_image_templates_have_an_icon(server) -> None:
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        templates = (await client.list_resource_templates()).resource_templates
        assert_svg_icon(client.server_info.icons)
    for item in [*tools, *templates]:
        assert_svg_icon(item.icons)
    assert len({tool.icons[0].src for tool in tools}) == len(tools)
