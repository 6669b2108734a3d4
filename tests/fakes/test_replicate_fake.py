"""Self-tests for FakeReplicate, driven by the real replicate 1.0.7 client and plain httpx."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import replicate
from PIL import Image
from replicate.exceptions import ModelError, ReplicateError
from replicate.helpers import FileOutput

from tests.fakes.replicate_fake import INSUFFICIENT_CREDIT, RATE_LIMITED, FakeReplicate

TOKEN = "r8_test"
FLUX = "black-forest-labs/flux-1.1-pro"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate(token=TOKEN).running() as f:
        yield f


def make_client(fake: FakeReplicate, token: str = TOKEN) -> replicate.Client:
    client = replicate.Client(api_token=token, base_url=fake.url)
    client.poll_interval = 0.01
    return client


def api(fake: FakeReplicate, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {**AUTH, **kw.pop("headers", {})}
    return httpx.request(method, fake.url + path, headers=headers, timeout=10, **kw)


def v1_calls(fake: FakeReplicate) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if r.path.startswith("/v1/")]


# ------------------------------------------------------------------ sync mode and polling
def test_sync_wait_returns_output_in_one_request(fake: FakeReplicate) -> None:
    out = make_client(fake).run(FLUX, input={"prompt": "a cat", "output_format": "png"})
    assert v1_calls(fake) == [("POST", f"/v1/models/{FLUX}/predictions")]
    (create,) = fake.creates
    assert create.prefer == "wait" and create.status == 201
    assert create.json == {"input": {"prompt": "a cat", "output_format": "png"}}
    assert isinstance(out, str) and re.fullmatch(
        rf"{fake.url}/files/[a-z0-9]{{26}}/out-0\.png", out)
    resp = httpx.get(out)
    assert resp.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(resp.content)).format == "PNG"
    assert len(fake.downloads) == 1


def test_create_response_shape_and_headers(fake: FakeReplicate) -> None:
    resp = api(fake, "POST", f"/v1/models/{FLUX}/predictions", json={"input": {"prompt": "x"}},
               headers={"Prefer": "wait=5"})
    assert resp.status_code == 201
    assert resp.headers["preference-applied"] == "wait=5"
    assert resp.headers["ratelimit-remaining"] == "599" and resp.headers["ratelimit-reset"] == "1"
    body = resp.json()
    assert set(body) == {"id", "model", "version", "input", "logs", "output", "error", "status",
                         "created_at", "started_at", "completed_at", "data_removed", "source",
                         "metrics", "urls"}
    assert re.fullmatch(r"[a-z0-9]{26}", body["id"])
    assert (body["model"], body["version"], body["status"]) == (FLUX, "hidden", "succeeded")
    assert body["logs"] == "" and body["error"] is None and body["data_removed"] is False
    assert body["source"] == "api" and set(body["metrics"]) == {"predict_time", "total_time"}
    assert set(body["urls"]) == {"get", "cancel", "web", "stream"}
    for key in ("created_at", "started_at", "completed_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body[key])
    assert body["output"].endswith(".webp")  # flux default output_format


def test_no_prefer_returns_starting_then_polling_succeeds(fake: FakeReplicate) -> None:
    client = make_client(fake)
    pred = client.models.predictions.create(FLUX, input={"prompt": "x"}, wait=False)
    assert pred.status == "starting" and pred.output is None
    assert fake.creates[0].prefer is None
    pred.wait()
    assert pred.status == "succeeded" and pred.output.startswith(fake.url)


def test_latency_beyond_wait_window_returns_starting_and_polls(fake: FakeReplicate) -> None:
    fake.latency = 1.4
    client = make_client(fake)
    started = time.monotonic()
    out = client.run(FLUX, input={"prompt": "slow"}, wait=1)
    assert 1.0 <= time.monotonic() - started < 5
    assert fake.creates[0].prefer == "wait=1"
    polls = [r for r in fake.requests
             if r.method == "GET" and r.path.startswith("/v1/predictions/")]
    assert polls and isinstance(out, str)
    (pred,) = fake.predictions.values()
    assert pred["status"] == "succeeded"


def test_wait_returns_as_soon_as_prediction_finishes(fake: FakeReplicate) -> None:
    fake.latency_for[FLUX] = 0.2
    started = time.monotonic()
    make_client(fake).run(FLUX, input={"prompt": "x"}, wait=30)
    assert time.monotonic() - started < 5
    assert len(v1_calls(fake)) == 1


def test_bad_prefer_header_is_400(fake: FakeReplicate) -> None:
    for value in ("wait=61", "wait=0", "respond-async", "wait=abc"):
        resp = api(fake, "POST", f"/v1/models/{FLUX}/predictions",
                   json={"input": {"prompt": "x"}}, headers={"Prefer": value})
        assert resp.status_code == 400, value
        assert resp.headers["content-type"] == "application/problem+json"
    assert fake.predictions == {}


# ------------------------------------------------------------------ errors
def test_401_with_wrong_token(fake: FakeReplicate) -> None:
    with pytest.raises(ReplicateError) as exc:
        make_client(fake, token="r8_wrong").run(FLUX, input={"prompt": "x"})
    assert exc.value.status == 401 and exc.value.title == "Unauthenticated"
    resp = httpx.get(fake.url + "/v1/predictions/abc")
    assert resp.status_code == 401 and resp.headers["content-type"] == "application/problem+json"
    assert resp.json() == {"title": "Unauthenticated", "status": 401,
                           "detail": "You did not pass a valid authentication token"}


def test_402_injected_once(fake: FakeReplicate) -> None:
    fake.inject(402, INSUFFICIENT_CREDIT, method="POST", path_prefix="/v1/models/")
    client = make_client(fake)
    with pytest.raises(ReplicateError) as exc:
        client.run(FLUX, input={"prompt": "x"})
    assert exc.value.status == 402 and exc.value.title == "Insufficient credit"
    assert fake.predictions == {}
    assert isinstance(client.run(FLUX, input={"prompt": "x"}), str)  # consumed after one use


def test_404_unknown_model_and_prediction(fake: FakeReplicate) -> None:
    with pytest.raises(ReplicateError) as exc:
        make_client(fake).run("nobody/nothing", input={"prompt": "x"})
    assert exc.value.status == 404
    assert exc.value.detail == "The requested resource could not be found."
    resp = api(fake, "GET", "/v1/predictions/doesnotexist")
    assert resp.status_code == 404 and resp.json() == {"detail": "Not found.", "status": 404}
    assert api(fake, "GET", "/v1/models/nobody/nothing").status_code == 404


def test_422_collects_every_invalid_field(fake: FakeReplicate) -> None:
    bad = {"width": 5000, "height": 100, "aspect_ratio": "7:3", "seed": "42", "steps": 4}
    with pytest.raises(ReplicateError) as exc:
        make_client(fake).run(FLUX, input=bad)
    assert exc.value.status == 422 and exc.value.title == "Input validation failed"
    resp = api(fake, "POST", f"/v1/models/{FLUX}/predictions", json={"input": bad})
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"
    enum_msg = ('aspect_ratio must be one of the following: "custom", "1:1", "16:9", "3:2", '
                '"2:3", "4:5", "5:4", "9:16", "3:4", "4:3"')
    expected = [
        {"type": "required", "field": "input", "description": "prompt is required"},
        {"type": "number_lte", "field": "input.width",
         "description": "Must be less than or equal to 1440"},
        {"type": "number_gte", "field": "input.height",
         "description": "Must be greater than or equal to 256"},
        {"type": "enum", "field": "input.aspect_ratio", "description": enum_msg},
        {"type": "invalid_type", "field": "input.seed",
         "description": "Invalid type. Expected: integer, given: string"},
        {"type": "additional_property_not_allowed", "field": "input",
         "description": "Additional property steps is not allowed"},
    ]
    assert resp.json() == {
        "detail": "".join(f"- {e['field']}: {e['description']}\n" for e in expected),
        "status": 422, "title": "Input validation failed", "invalid_fields": expected}
    assert fake.predictions == {}


def test_422_on_extra_top_level_key(fake: FakeReplicate) -> None:
    resp = api(fake, "POST", f"/v1/models/{FLUX}/predictions",
               json={"input": {"prompt": "x"}, "model": FLUX})
    assert resp.status_code == 422
    assert resp.json()["invalid_fields"] == [{
        "type": "additional_property_not_allowed", "field": "",
        "description": "Additional property model is not allowed"}]


def test_429_on_create_is_not_retried(fake: FakeReplicate) -> None:
    fake.inject(429, RATE_LIMITED, headers={"Retry-After": "1"}, method="POST")
    with pytest.raises(ReplicateError) as exc:
        make_client(fake).run(FLUX, input={"prompt": "x"})
    assert exc.value.status == 429
    assert exc.value.detail == "Request was throttled. Expected available in 1 second."
    assert len(fake.creates) == 1 and fake.creates[0].status == 429


def test_5xx_with_empty_body_and_get_retry(fake: FakeReplicate) -> None:
    fake.inject(500, method="POST")
    client = make_client(fake)
    with pytest.raises(ReplicateError) as exc:
        client.run(FLUX, input={"prompt": "x"})
    assert exc.value.status == 500 and exc.value.detail is None
    pred = client.models.predictions.create(FLUX, input={"prompt": "x"})
    fake.inject(503, times=2, method="GET", path_prefix="/v1/predictions/")
    assert client.predictions.get(pred.id).id == pred.id  # GETs are retried on 503
    assert [r.status for r in fake.requests if r.method == "GET"] == [503, 503, 200]


def test_failed_prediction_raises_model_error(fake: FakeReplicate) -> None:
    fake.fail_predictions(1, error="NSFW content detected")
    client = make_client(fake)
    with pytest.raises(ModelError) as exc:
        client.run(FLUX, input={"prompt": "x"})
    assert str(exc.value) == "NSFW content detected"
    assert exc.value.prediction.status == "failed" and exc.value.prediction.output is None
    assert isinstance(client.run(FLUX, input={"prompt": "x"}), str)  # only the next one fails


def test_injected_reset_raises_httpx_error(fake: FakeReplicate) -> None:
    client = make_client(fake)
    pred = client.models.predictions.create(FLUX, input={"prompt": "x"})
    fake.inject_reset(path_prefix="/v1/predictions/")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.predictions.get(pred.id)
    assert client.predictions.get(pred.id).id == pred.id


def test_injected_delay_causes_read_timeout(fake: FakeReplicate) -> None:
    fake.inject_delay(0.5, path_prefix="/v1/predictions/")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(fake.url + "/v1/predictions/x", headers=AUTH, timeout=0.2)


# ------------------------------------------------------------------ cancel, hold, concurrency
@pytest.mark.anyio
async def test_cancel_flips_status_and_is_recorded(fake: FakeReplicate) -> None:
    fake.hold = True
    client = make_client(fake)
    pred = await client.models.predictions.async_create(FLUX, input={"prompt": "x"})
    await fake.wait_until(lambda: fake.predictions[pred.id]["status"] == "processing", timeout=5)
    await pred.async_cancel()
    assert pred.status == "canceled"
    await fake.wait_until(lambda: len(fake.cancels) == 1, timeout=5)
    assert fake.cancels == [pred.id] and fake.in_flight_now == 0
    assert (await client.predictions.async_get(pred.id)).status == "canceled"


@pytest.mark.anyio
async def test_hold_release_and_max_in_flight(fake: FakeReplicate) -> None:
    fake.hold = True
    client = make_client(fake)
    preds = [await client.models.predictions.async_create(FLUX, input={"prompt": str(i)})
             for i in range(3)]
    await fake.wait_until(lambda: fake.in_flight_now == 3, timeout=5)
    assert fake.release(preds[0].id) == 1
    await fake.wait_until(lambda: fake.predictions[preds[0].id]["status"] == "succeeded", timeout=5)
    assert fake.in_flight_now == 2
    assert fake.release() == 2
    await fake.wait_until(lambda: fake.in_flight_now == 0, timeout=5)
    assert fake.max_in_flight_predictions == 3
    for p in preds:
        await p.async_wait()
        assert p.status == "succeeded"


@pytest.mark.anyio
async def test_async_run_polls_when_wait_false(fake: FakeReplicate) -> None:
    fake.latency = 0.2
    out = await make_client(fake).async_run(FLUX, input={"prompt": "x"}, wait=False)
    assert isinstance(out, str) and out.startswith(fake.url)
    assert fake.creates[0].prefer is None


# ------------------------------------------------------------------ versioned models
def test_versioned_model_via_run_with_version_lookup(fake: FakeReplicate) -> None:
    version = fake.add_model("acme/painter", output="images", input_schema={
        "type": "object", "required": ["prompt"],
        "properties": {"prompt": {"type": "string"},
                       "num_outputs": {"type": "integer", "minimum": 1, "maximum": 4}}})
    assert re.fullmatch(r"[0-9a-f]{64}", version)
    out = make_client(fake).run(f"acme/painter:{version}", input={"prompt": "x", "num_outputs": 3})
    assert isinstance(out, list) and len(out) == 3
    assert v1_calls(fake) == [("POST", "/v1/predictions"),
                              ("GET", f"/v1/models/acme/painter/versions/{version}")]
    assert fake.creates[0].json == {"input": {"prompt": "x", "num_outputs": 3}, "version": version}
    (pred,) = fake.predictions.values()
    assert pred["version"] == version and pred["model"] == "acme/painter"
    assert len({httpx.get(u).content for u in out}) == 3  # every image has its own bytes


def test_versioned_model_rejections(fake: FakeReplicate) -> None:
    fake.add_model("acme/painter", output="image")
    client = make_client(fake)
    with pytest.raises(ReplicateError) as exc:  # community model on the official route
        client.run("acme/painter", input={"prompt": "x"})
    assert exc.value.status == 422 and exc.value.title == "Invalid version or not permitted"
    resp = api(fake, "POST", "/v1/predictions", json={"version": "0" * 64, "input": {}})
    assert resp.status_code == 422 and resp.json() == {
        "title": "Invalid version or not permitted", "status": 422,
        "detail": "The specified version does not exist (or perhaps you don't have permission "
                  "to use it?)"}


def test_model_and_version_objects(fake: FakeReplicate) -> None:
    client = make_client(fake)
    model = client.models.get(FLUX)
    assert (model.owner, model.name, model.visibility, model.run_count) == (
        "black-forest-labs", "flux-1.1-pro", "public", 0)
    schemas = model.latest_version.openapi_schema["components"]["schemas"]
    assert schemas["Input"]["required"] == ["prompt"]
    assert schemas["Output"]["format"] == "uri"
    version_id = fake.add_model("acme/llm", output="iterator")
    version = replicate.version.Versions(client, model="acme/llm").get(version_id)
    assert version.cog_version == "0.9.4"
    output_schema = version.openapi_schema["components"]["schemas"]["Output"]
    assert output_schema["x-cog-array-type"] == "iterator"


def test_iterator_output_sync(fake: FakeReplicate) -> None:
    version = fake.add_model("acme/llm", output="iterator")
    out = make_client(fake).run(f"acme/llm:{version}", input={"prompt": "hello there"})
    assert not isinstance(out, list | str)
    assert "".join(out) == "fake output: hello there "


@pytest.mark.anyio
async def test_iterator_output_async_polling(fake: FakeReplicate) -> None:
    version = fake.add_model("acme/llm", output="iterator")
    fake.latency = 0.1
    out = await make_client(fake).async_run(f"acme/llm:{version}", input={"prompt": "hi"},
                                            wait=False)
    assert "".join([tok async for tok in out]) == "fake output: hi "


def test_dict_text_and_callable_outputs(fake: FakeReplicate) -> None:
    client = make_client(fake)
    v_dict = fake.add_model("acme/seg", output="dict")
    v_text = fake.add_model("acme/cap", output="text")
    v_fn = fake.add_model("acme/fn", output=lambda p: {"echo": p["input"]["prompt"]})
    seg = client.run(f"acme/seg:{v_dict}", input={"prompt": "a dog"})
    assert set(seg) == {"image", "mask", "caption"} and seg["caption"] == "a caption for a dog"
    assert client.run(f"acme/cap:{v_text}", input={"prompt": "a dog"}) == "fake output: a dog"
    assert client.run(f"acme/fn:{v_fn}", input={"prompt": "z"}) == {"echo": "z"}


# ------------------------------------------------------------------ outputs and files
def test_data_mode_outputs_become_file_output(fake: FakeReplicate) -> None:
    fake.output_mode = "data"
    client = make_client(fake)
    out = client.run("google/nano-banana", input={"prompt": "x"})
    assert isinstance(out, FileOutput) and out.url.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(out.read())).format == "JPEG"
    other = client.run("google/nano-banana", input={"prompt": "x"})
    assert other.read() != out.read()


def test_image_factory_and_expired_files(fake: FakeReplicate) -> None:
    fake.image_factory = lambda pred: (b"not an image at all", "text/plain")
    client = make_client(fake)
    url = client.run(FLUX, input={"prompt": "x", "output_format": "jpg"})
    assert url.endswith("/out-0.jpg")
    resp = httpx.get(url)
    assert resp.content == b"not an image at all" and resp.headers["content-type"].startswith(
        "text/plain")
    fake.expire_files = True
    assert httpx.get(url).status_code == 404


def test_files_upload_and_use_as_input(fake: FakeReplicate) -> None:
    client = make_client(fake)
    uploaded = client.files.create(io.BytesIO(b"\x89PNG fake bytes"), metadata={"k": "v"})
    assert uploaded.size == 15 and uploaded.metadata == {"k": "v"}
    assert uploaded.urls["get"] == f"{fake.url}/v1/files/{uploaded.id}"
    assert fake.files[uploaded.id].content == b"\x89PNG fake bytes"
    meta = api(fake, "GET", f"/v1/files/{uploaded.id}").json()
    assert meta["checksums"]["sha256"] == uploaded.checksums["sha256"]
    out = client.run("google/nano-banana-pro",
                     input={"prompt": "edit", "image_input": [uploaded.urls["get"]]})
    assert isinstance(out, str)
    assert fake.file_inputs == [uploaded.id]


def test_file_objects_in_input_are_uploaded_by_client(fake: FakeReplicate) -> None:
    out = make_client(fake).run("stability-ai/stable-diffusion-3.5-medium",
                                input={"prompt": "x", "image": io.BytesIO(b"img")})
    assert isinstance(out, str)
    assert [r.path for r in fake.requests if r.method == "POST"][0] == "/v1/files"
    (file_id,) = fake.files
    assert fake.file_inputs == [file_id]


def test_upload_over_limit_is_413(fake: FakeReplicate) -> None:
    fake.max_upload_bytes = 10
    with pytest.raises(ReplicateError) as exc:
        make_client(fake).files.create(io.BytesIO(b"x" * 11))
    assert exc.value.status == 413 and exc.value.detail == "Files must be less than 100MB in size"
    assert fake.files == {}


def test_uri_inputs_are_checked(fake: FakeReplicate) -> None:
    resp = api(fake, "POST", "/v1/models/google/nano-banana/predictions",
               json={"input": {"prompt": "x", "image_input": ["/tmp/local.png", 3]}})
    assert resp.status_code == 422
    assert [(f["type"], f["field"]) for f in resp.json()["invalid_fields"]] == [
        ("format", "input.image_input.0"), ("invalid_type", "input.image_input.1")]
    assert json.loads(resp.content)["status"] == 422


# ------------------------------------------------------------------ array outputs of official models
def test_models_whose_published_output_is_an_array_answer_with_one(fake: FakeReplicate) -> None:
    def output(model: str, inp: dict[str, Any]) -> Any:
        created = api(fake, "POST", f"/v1/models/{model}/predictions", json={"input": inp},
                      headers={"Prefer": "wait"}).json()
        return created["output"]

    assert isinstance(output(FLUX, {"prompt": "a"}), str)
    assert len(output("bytedance/seedream-4", {"prompt": "a"})) == 1
    assert len(output("bytedance/seedream-4", {"prompt": "a", "sequential_image_generation": "auto",
                                               "max_images": 3})) == 3
    assert len(output("openai/gpt-image-1.5", {"prompt": "a", "number_of_images": 2})) == 2
    bad = api(fake, "POST", "/v1/models/qwen/qwen-image-edit-plus/predictions", json={"input": {"prompt": "a"}})
    assert bad.status_code == 422 and "image is required" in bad.text
