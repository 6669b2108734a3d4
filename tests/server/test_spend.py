"""Spend (issue 16): estimates and cost_usd, dry runs, the day's budget in the shared ledger, and the user's consent.

Everything runs against the loopback Replicate fake through the real SDK; the ledger is read back from the store
the way another replica would read it (server.spend.spent_today over the state documents).
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import ElicitResult
from PIL import Image

from server.app import build_server
from server.config import Settings
from server.spend import MICRO, spent_today
from server.storage.docs import LocalDocs
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.replicate import TOKEN
from tests.support.results import text_of

pytestmark = pytest.mark.anyio
MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])
OPENAI_KEY = "sk-openai-secret-value-0123456789"


def serve(env: dict[str, str], **extra: str) -> Any:
    return build_server(Settings.from_env({**env, **extra}))


async def spent(env: dict[str, str]) -> float:
    """Today's ledger total, read from the store as any replica reads it."""
    docs = LocalDocs(Path(env["EASEL_STORAGE_DIR"]) / "state")
    return await spent_today(docs, datetime.now(UTC).strftime("%Y-%m-%d")) / MICRO


def png_data_uri(size: int = 300) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# ------------------------------------------------------------------ cost_usd

async def test_each_image_and_the_call_carry_their_cost_in_the_result_the_text_and_the_metadata(server) -> None:
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2})
        assert not result.is_error, text_of(result)
        images = result.structured_content["images"]
        assert [i["cost_usd"] for i in images] == [0.04, 0.04]
        assert result.structured_content["cost_usd"] == 0.08
        assert "Estimated cost: $0.08 for 2 image(s)." in text_of(result)
        meta = json.loads((await client.read_resource(images[0]["uri"] + "/metadata")).contents[0].text)
    assert meta["cost_usd"] == 0.04


async def test_a_per_megapixel_price_is_taken_at_the_stored_image_real_size(server, replicate_fake: FakeReplicate) -> None:
    replicate_fake.image_size = (1000, 500)                       # half a megapixel; FLUX.2 Flex is $0.06/MP
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "model": "FLUX.2 Flex"})
        assert not result.is_error, text_of(result)
        [image] = result.structured_content["images"]
        assert (image["width"], image["height"]) == (1000, 500)
        assert image["cost_usd"] == pytest.approx(0.03)
        meta = json.loads((await client.read_resource(image["uri"] + "/metadata")).contents[0].text)
    assert meta["cost_usd"] == pytest.approx(0.03)


async def test_a_model_without_a_published_price_says_unknown(server) -> None:
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "model": "Stable Diffusion 3.5 Medium"})
    assert not result.is_error, text_of(result)
    assert result.structured_content["images"][0]["cost_usd"] is None and result.structured_content["cost_usd"] is None
    assert "Estimated cost: unknown" in text_of(result)


async def test_run_replicate_model_prices_a_catalog_model_and_says_unknown_for_others(
        server, replicate_fake: FakeReplicate) -> None:
    version = replicate_fake.add_model("acme/sketcher", output="images", count=1)
    async with Client(server) as client:
        known = await client.call_tool("run_replicate_model", {"model_name": "black-forest-labs/flux-1.1-pro",
                                                               "model_inputs": {"prompt": "a fox"}})
        assert not known.is_error, text_of(known)
        assert known.structured_content["cost_usd"] == 0.04
        assert known.structured_content["images"][0]["cost_usd"] == 0.04
        other = await client.call_tool("run_replicate_model", {"model_name": "acme/sketcher", "version": version,
                                                               "model_inputs": {"prompt": "a fox"}})
    assert not other.is_error, text_of(other)
    assert other.structured_content["cost_usd"] is None and other.structured_content["images"][0]["cost_usd"] is None
    assert "Cost: unknown (acme/sketcher is not in the catalog" in text_of(other)


# ------------------------------------------------------------------ dry runs

async def test_dry_runs_of_every_image_tool_send_nothing_and_redact_every_secret(
        env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    server = serve(env, OPENAI_API_KEY=OPENAI_KEY)
    calls = {
        "generate_image": {"prompt": "a fox", "model": "GPT Image 1.5", "count": 2},
        "edit_image": {"prompt": "make it blue", "images": [png_data_uri()], "model": "FLUX.2 Pro"},
        "run_replicate_model": {"model_name": "openai/gpt-image-1.5",
                                "model_inputs": {"prompt": f"a fox (key {OPENAI_KEY})", "openai_api_key": OPENAI_KEY}},
        "illustrate_content": {"content": "A short story about a lighthouse keeper and a storm.", "count": 2},
    }
    async with Client(server) as client:
        for tool, args in calls.items():
            result = await client.call_tool(tool, {**args, "dry_run": True})
            assert not result.is_error, (tool, text_of(result))
            body, text = json.dumps(result.structured_content), text_of(result)
            assert result.structured_content["dry_run"] is True and result.structured_content["calls"], tool
            for shown in (body, text):
                assert OPENAI_KEY not in shown and TOKEN not in shown, tool
            assert "Dry run: nothing was sent and nothing was spent" in text or "nothing generated" in text, tool
            assert len(body) < 20_000, tool    # reference images are shown short, not as megabytes of base64
    assert replicate_fake.requests == []
    generate = calls["generate_image"]
    assert generate["count"] == 2


async def test_a_dry_run_shows_the_payload_the_real_call_sends(env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    server = serve(env, OPENAI_API_KEY=OPENAI_KEY)
    async with Client(server) as client:
        dry = await client.call_tool("generate_image", {"prompt": "a fox", "model": "GPT Image 1.5", "dry_run": True})
        [call] = dry.structured_content["calls"]
        assert call["method"] == "POST" and call["url"].endswith("/v1/models/openai/gpt-image-1.5/predictions")
        assert call["json"]["input"]["openai_api_key"] == "[redacted]"
        assert "Estimated cost: unknown: no published price for GPT Image 1.5." in text_of(dry)
        real = await client.call_tool("generate_image", {"prompt": "a fox", "model": "GPT Image 1.5"})
        assert not real.is_error, text_of(real)
    sent = replicate_fake.creates[0].json["input"]
    assert sent == {**call["json"]["input"], "openai_api_key": OPENAI_KEY}


async def test_an_edit_dry_run_shortens_inline_references(server, replicate_fake: FakeReplicate) -> None:
    async with Client(server) as client:
        result = await client.call_tool("edit_image", {"prompt": "make it blue", "images": [png_data_uri()],
                                                       "model": "google/nano-banana", "dry_run": True})
    [call] = result.structured_content["calls"]
    [ref] = call["json"]["input"]["image_input"]
    assert ref.startswith("<image/png, ") and "bytes" in ref and len(ref) < 100
    assert call["cost_usd"] == 0.039 and result.structured_content["cost_usd"] == 0.039
    assert replicate_fake.requests == []


# ------------------------------------------------------------------ the day's budget

async def test_a_call_over_the_budget_is_refused_before_any_provider_request(
        env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    server = serve(env, EASEL_BUDGET_USD_PER_DAY="0.10")
    async with Client(server) as client:
        first = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2})      # $0.08
        assert not first.is_error, text_of(first)
        requests = len(replicate_fake.requests)
        refused = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2})
        dry = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2, "dry_run": True})
    assert refused.is_error
    text = text_of(refused)
    assert "$0.08" in text and "$0.10 budget" in text and "$0.02 remains" in text
    assert "EASEL_BUDGET_USD_PER_DAY" in text and "refused before anything was spent" in text
    assert len(replicate_fake.requests) == requests                  # not one more request
    assert await spent(env) == pytest.approx(0.08)
    assert "Budget: $0.02 of today's $0.10 remains (EASEL_BUDGET_USD_PER_DAY, UTC day). The real call would be " \
           "refused." in text_of(dry)


async def test_illustrate_content_over_the_budget_does_not_ask_its_scene_writing_model_first(
        env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    """The scene-writing model (EASEL_PROMPT_MODEL) is a paid provider request too: a call the budget refuses
    makes none, not even that one."""
    replicate_fake.add_model("meta/meta-llama-3-70b-instruct", official=True, output=lambda p: ["[]"], input_schema={
        "type": "object", "required": ["prompt"], "properties": {
            "prompt": {"type": "string"}, "system_prompt": {"type": "string"},
            "max_tokens": {"type": "integer"}, "temperature": {"type": "number"}}})
    server = serve(env, EASEL_BUDGET_USD_PER_DAY="0.05", EASEL_PROMPT_MODEL="replicate:meta/meta-llama-3-70b-instruct")
    async with Client(server) as client:
        refused = await client.call_tool("illustrate_content", {
            "content": "A lighthouse keeper climbs the tower. A storm breaks over the bay.", "count": 2})
    assert refused.is_error and "EASEL_BUDGET_USD_PER_DAY" in text_of(refused) and "$0.08" in text_of(refused)
    assert replicate_fake.requests == [] and await spent(env) == 0


async def test_a_unit_the_vendor_refused_gives_its_estimate_back_and_a_failed_prediction_keeps_it(
        env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    server = serve(env, EASEL_BUDGET_USD_PER_DAY="1")
    async with Client(server) as client:
        replicate_fake.inject(422, {"detail": "prompt: invalid", "status": 422}, times=1, method="POST",
                              path_prefix="/v1/models/")
        refused = await client.call_tool("generate_image", {"prompt": "a fox"})
        assert refused.is_error
        assert await spent(env) == 0                                  # booked, then released
        replicate_fake.fail_predictions(1)
        failed = await client.call_tool("generate_image", {"prompt": "a fox"})
        assert failed.is_error
        assert await spent(env) == pytest.approx(0.04)                # accepted by Replicate: may be charged
        made = await client.call_tool("generate_image", {"prompt": "a fox"})
        assert not made.is_error
    assert await spent(env) == pytest.approx(0.08)


async def test_run_replicate_model_gives_its_booking_back_when_its_inputs_are_refused(
        env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    async with Client(serve(env, EASEL_BUDGET_USD_PER_DAY="1")) as client:
        bad = await client.call_tool("run_replicate_model", {
            "model_name": "black-forest-labs/flux-1.1-pro",
            "model_inputs": {"prompt": "a fox", "image": "easel://images/202612-" + "0" * 32 + ".png"}})
        assert bad.is_error and "model_inputs" in text_of(bad)
        assert await spent(env) == 0 and replicate_fake.requests == []
        good = await client.call_tool("run_replicate_model", {"model_name": "black-forest-labs/flux-1.1-pro",
                                                              "model_inputs": {"prompt": "a fox"}})
        assert not good.is_error, text_of(good)
    assert await spent(env) == pytest.approx(0.04)


async def test_each_unit_of_a_call_is_settled_on_its_own(env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    replicate_fake.inject(422, {"detail": "prompt: invalid", "status": 422}, times=1, method="POST",
                          path_prefix="/v1/models/")
    async with Client(serve(env, EASEL_BUDGET_USD_PER_DAY="1")) as client:
        result = await client.call_tool("illustrate_content", {
            "content": "A lighthouse keeper climbs the tower. A storm breaks over the bay.", "count": 2})
    assert not result.is_error, text_of(result)
    assert len(result.structured_content["images"]) == 1 and len(result.structured_content["errors"]) == 1
    assert result.structured_content["cost_usd"] == 0.04 and "Estimated cost: $0.04 for 1 image(s)." in text_of(result)
    assert await spent(env) == pytest.approx(0.04)                   # the refused illustration gave its $0.04 back


async def test_a_megapixel_booking_is_settled_at_the_real_size(env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    replicate_fake.image_size = (2000, 1000)                       # 2 MP: twice the 1 MP estimate of FLUX.2 Flex
    server = serve(env, EASEL_BUDGET_USD_PER_DAY="1")
    async with Client(server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "model": "FLUX.2 Flex"})
    assert not result.is_error, text_of(result)
    assert await spent(env) == pytest.approx(0.12)


async def test_concurrent_calls_in_one_process_never_overshoot(env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    server = serve(env, EASEL_BUDGET_USD_PER_DAY="0.10")
    results: list[Any] = []
    async with Client(server) as client:
        async def one() -> None:
            results.append(await client.call_tool("generate_image", {"prompt": "a fox"}))   # $0.04 each

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(one)
    made = [r for r in results if not r.is_error]
    assert len(made) == 2 and len(results) == 6                     # 2 x $0.04 fit in $0.10; a third would not
    assert len(replicate_fake.creates) == 2
    assert await spent(env) == pytest.approx(0.08)


async def test_an_unpriced_model_is_refused_under_a_budget_unless_an_assumed_price_is_set(
        env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    args = {"prompt": "a fox", "model": "Stable Diffusion 3.5 Medium"}
    async with Client(serve(env, EASEL_BUDGET_USD_PER_DAY="1")) as client:
        refused = await client.call_tool("generate_image", args)
    assert refused.is_error and "no published price" in text_of(refused) and "EASEL_UNKNOWN_PRICE_USD" in text_of(refused)
    assert replicate_fake.requests == []
    async with Client(serve(env, EASEL_BUDGET_USD_PER_DAY="1", EASEL_UNKNOWN_PRICE_USD="0.05")) as client:
        made = await client.call_tool("generate_image", args)
    assert not made.is_error, text_of(made)
    assert made.structured_content["cost_usd"] is None                # the result does not pretend to know
    assert await spent(env) == pytest.approx(0.05)                   # the ledger counts the assumed price


# ------------------------------------------------------------------ asking the user

def answering(action: str, approve: bool = True) -> Any:
    asked: list[str] = []

    async def callback(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=action, content={"approve": approve} if action == "accept" else None)

    callback.asked = asked  # type: ignore[attr-defined]
    return callback


@MODES
async def test_an_expensive_call_asks_the_user_and_goes_ahead_when_accepted(
        env: dict[str, str], replicate_fake: FakeReplicate, mode: str) -> None:
    cb = answering("accept")
    async with Client(serve(env, EASEL_CONFIRM_ABOVE_USD="0.05"), mode=mode, elicitation_callback=cb) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2})
    assert not result.is_error, text_of(result)
    [question] = cb.asked
    assert "2 image(s) with Flux 1.1 Pro" in question and "$0.08" in question
    assert len(replicate_fake.creates) == 2


@MODES
@pytest.mark.parametrize(("action", "approve", "said"), [("decline", True, "declined"), ("cancel", True, "cancelled"),
                                                          ("accept", False, "said no")])
async def test_a_declined_question_refuses_the_call_and_spends_nothing(
        env: dict[str, str], replicate_fake: FakeReplicate, mode: str, action: str, approve: bool, said: str) -> None:
    cb = answering(action, approve)
    async with Client(serve(env, EASEL_CONFIRM_ABOVE_USD="0.05", EASEL_BUDGET_USD_PER_DAY="1"), mode=mode,
                      elicitation_callback=cb) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2})
    assert result.is_error and f"the user {said}" in text_of(result) and "nothing spent" in text_of(result)
    assert replicate_fake.requests == [] and await spent(env) == 0


@MODES
async def test_a_client_that_cannot_be_asked_is_told_to_confirm_and_confirm_spend_then_works(
        env: dict[str, str], replicate_fake: FakeReplicate, mode: str) -> None:
    async with Client(serve(env, EASEL_CONFIRM_ABOVE_USD="0.05"), mode=mode) as client:
        refused = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2})
        assert refused.is_error and "confirm_spend: true" in text_of(refused) and "$0.08" in text_of(refused)
        assert replicate_fake.requests == []
        confirmed = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2, "confirm_spend": True})
    assert not confirmed.is_error, text_of(confirmed)
    assert len(replicate_fake.creates) == 2


@MODES
async def test_confirm_spend_does_not_answer_for_a_user_the_client_can_ask(
        env: dict[str, str], replicate_fake: FakeReplicate, mode: str) -> None:
    """confirm_spend is for clients that cannot ask; an assistant (or an injected prompt) cannot use it to skip
    the question the operator wants the user to answer."""
    cb = answering("decline")
    async with Client(serve(env, EASEL_CONFIRM_ABOVE_USD="0.05", EASEL_BUDGET_USD_PER_DAY="1"), mode=mode,
                      elicitation_callback=cb) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2, "confirm_spend": True})
    assert len(cb.asked) == 1 and "$0.08" in cb.asked[0]
    assert result.is_error and "the user declined" in text_of(result)
    assert replicate_fake.requests == [] and await spent(env) == 0


async def test_a_cheap_call_is_not_asked_about(env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    cb = answering("decline")
    async with Client(serve(env, EASEL_CONFIRM_ABOVE_USD="0.05"), elicitation_callback=cb) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert not result.is_error and cb.asked == []


async def test_the_budget_refuses_before_the_user_is_asked(env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    cb = answering("accept")
    server = serve(env, EASEL_CONFIRM_ABOVE_USD="0.01", EASEL_BUDGET_USD_PER_DAY="0.05")
    async with Client(server, elicitation_callback=cb) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2})
    assert result.is_error and "EASEL_BUDGET_USD_PER_DAY" in text_of(result)
    assert cb.asked == [] and replicate_fake.requests == []


# ------------------------------------------------------------------ pieces

def test_prices_in_yuan_are_converted_at_the_configured_rate() -> None:
    from providers.base import Price
    from server.spend import Quote, Unit

    yuan = Price(0.20, currency="CNY", source="test", checked="2026-12-01")
    spend_settings = Settings.from_env({"EASEL_USD_PER_CNY": "0.15"}).spend
    quote = Quote("generate_image", (Unit("Wan", 2, yuan),), spend_settings)
    assert quote.total == pytest.approx(0.06)
    assert yuan.usd() == pytest.approx(0.20 * 0.14)                  # the documented default rate
    with pytest.raises(Exception, match="EASEL_USD_PER_CNY"):
        Settings.from_env({"EASEL_USD_PER_CNY": "lots"})


def test_every_configured_secret_is_redacted_wherever_it_appears() -> None:
    from server.dryrun import redact, secret_values

    settings = Settings.from_env({"REPLICATE_API_TOKEN": "r8_abcdefgh", "OPENAI_API_KEY": "sk-zyxwvuts",
                                  "EASEL_AUTH_TOKEN": "bearer-token-0123456789", "OSS_ACCESS_KEY_SECRET": "oss-secret-1"})
    secrets = secret_values(settings)
    assert {"r8_abcdefgh", "sk-zyxwvuts", "bearer-token-0123456789", "oss-secret-1"} <= set(secrets)
    shown = redact({"prompt": "say r8_abcdefgh and sk-zyxwvuts", "nested": [{"x": "oss-secret-1"}],
                    "openai_api_key": "anything", "max_tokens": 5, "data": "data:image/png;base64," + "A" * 400},
                   secrets)
    assert shown["prompt"] == "say [redacted] and [redacted]" and shown["nested"] == [{"x": "[redacted]"}]
    assert shown["openai_api_key"] == "[redacted]" and shown["max_tokens"] == 5
    assert shown["data"] == "<data:image/png;base64, 300 bytes>"


def test_replicas_sharing_the_link_secret_open_each_other_s_request_state() -> None:
    from server.spend import request_state_security

    env = {"EASEL_LINK_SECRET": "s" * 40}
    one, two = (request_state_security(Settings.from_env(env)) for _ in range(2))
    assert two.codec.unseal(one.codec.seal(b"asked")) == b"asked"
    assert Settings.from_env(env).spend.request_state_key != env["EASEL_LINK_SECRET"]   # derived, not reused
    assert request_state_security(Settings.from_env({})) is None       # one process: the SDK's own key
    with pytest.raises(Exception, match="EASEL_REQUEST_STATE_KEY"):
        Settings.from_env({"EASEL_REQUEST_STATE_KEY": "short"})


async def test_a_unit_whose_second_image_is_lost_after_the_first_was_stored_keeps_its_whole_booking(
        env: dict[str, str]) -> None:
    """Ideogram makes and bills both images of one request; the first is stored, the second's download is not a
    usable image. The ledger keeps the two images' estimate: re-booking at the one stored would under-count."""
    from tests.fakes.ideogram_fake import IdeogramFake

    good = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 90, 40)).save(good, "PNG")
    with IdeogramFake(api_key="ideogram-test-key-0123456789").running() as fake:
        fake.image_factory = lambda task: ((good.getvalue(), "image/png") if task["index"] == 0
                                           else (b"<html>gone</html>", "image/png"))
        vendor_env = {**env, "IDEOGRAM_API_KEY": "ideogram-test-key-0123456789", "IDEOGRAM_BASE_URL": fake.url}
        async with Client(serve(vendor_env, EASEL_BUDGET_USD_PER_DAY="1")) as client:
            result = await client.call_tool("generate_image", {"prompt": "a fox", "model": "Ideogram v3",
                                                               "count": 2})
    assert len(result.structured_content["images"]) == 1, text_of(result)
    assert "not a usable image" in text_of(result)
    assert await spent(env) == pytest.approx(0.12)                  # both images were billed: 2 x $0.06
