"""Self-tests of the ModelScope, DashScope and Ideogram loopback fakes, driven by httpx."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import anyio
import httpx
import pytest

from tests.fakes._images import image_size, make_png
from tests.fakes.dashscope_fake import (
    DASHSCOPE_401_BODY,
    DASHSCOPE_403_ASYNC_BODY,
    DASHSCOPE_403_SYNC_BODY,
    DASHSCOPE_429_BODY,
    DASHSCOPE_500_BODY,
    DASHSCOPE_503_BODY,
    DASHSCOPE_CANCEL_REFUSED_BODY,
    DashScopeFake,
)
from tests.fakes.ideogram_fake import (
    IDEOGRAM_401_BODY,
    IDEOGRAM_429_BODY,
    IDEOGRAM_500_BODY,
    IDEOGRAM_SAFETY_BODY,
    IdeogramFake,
)
from tests.fakes.modelscope_fake import (
    MODELSCOPE_401_BODY,
    MODELSCOPE_429_BODY,
    MODELSCOPE_429_HEADERS,
    MODELSCOPE_500_BODY,
    MODELSCOPE_TASK_NOT_FOUND,
    ModelScopeFake,
    Recorded,
    VendorFake,
)

KEY = "test-key"
MAX_POLLS = 20
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def strip_rid(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


def mp(*pairs: tuple[str, Any], **fields: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """Multipart parts for httpx: text fields as (None, value), forcing multipart/form-data."""
    parts = [(k, (None, str(v))) for k, v in pairs]
    parts += [(k, (None, str(v))) for k, v in fields.items()]
    return parts


# ---------------------------------------------------------------------------
# Drivers: one per vendor, so the common knobs can be tested once
# ---------------------------------------------------------------------------

class Driver:
    name: str
    fake_cls: type[VendorFake]
    submit_path: str
    body_401: dict[str, Any]
    body_429: dict[str, Any]
    body_500: dict[str, Any]

    def submit(self, client: httpx.Client, key: str | None = KEY, **kw: Any) -> httpx.Response:
        raise NotImplementedError

    def finish(self, client: httpx.Client, submitted: httpx.Response) -> dict[str, Any]:
        """Poll until terminal; returns {"status": word, "urls": [...], "error": str|None,
        "statuses": [every status seen]}."""
        raise NotImplementedError

    def run(self, client: httpx.Client, **kw: Any) -> dict[str, Any]:
        response = self.submit(client, **kw)
        return self.finish(client, response)


class ModelScopeDriver(Driver):
    name = "modelscope"
    fake_cls = ModelScopeFake
    submit_path = "/v1/images/generations"
    body_401, body_429, body_500 = MODELSCOPE_401_BODY, MODELSCOPE_429_BODY, MODELSCOPE_500_BODY

    def submit(self, client: httpx.Client, key: str | None = KEY, **kw: Any) -> httpx.Response:
        headers = {"X-ModelScope-Async-Mode": "true"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        body = {"model": "Qwen/Qwen-Image", "prompt": "a lighthouse at dusk", "size": "1024x1024"}
        body.update(kw)
        return client.post(self.submit_path, json=body, headers=headers)

    def poll(self, client: httpx.Client, task_id: str, key: str = KEY,
             task_type: str | None = "image_generation") -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        if task_type is not None:
            headers["X-ModelScope-Task-Type"] = task_type
        return client.get(f"/v1/tasks/{task_id}", headers=headers)

    def finish(self, client: httpx.Client, submitted: httpx.Response) -> dict[str, Any]:
        assert submitted.status_code == 200, submitted.text
        task_id = submitted.json()["task_id"]
        statuses = []
        for _ in range(MAX_POLLS):
            reply = self.poll(client, task_id)
            assert reply.status_code == 200
            body = reply.json()
            statuses.append(body["task_status"])
            if body["task_status"] == "SUCCEED":
                return {"status": "ok", "urls": body["output_images"], "error": None,
                        "statuses": statuses, "task_id": task_id}
            if body["task_status"] == "FAILED":
                return {"status": "failed", "urls": [], "error": body["errors"]["message"],
                        "statuses": statuses, "task_id": task_id}
        raise AssertionError(f"task did not finish: {statuses}")


class DashScopeDriver(Driver):
    name = "dashscope"
    fake_cls = DashScopeFake
    submit_path = "/api/v1/services/aigc/text2image/image-synthesis"
    body_401, body_429, body_500 = DASHSCOPE_401_BODY, DASHSCOPE_429_BODY, DASHSCOPE_500_BODY

    def submit(self, client: httpx.Client, key: str | None = KEY, async_header: bool = True,
               path: str | None = None, **kw: Any) -> httpx.Response:
        headers = {}
        if async_header:
            headers["X-DashScope-Async"] = "enable"
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        body: dict[str, Any] = {"model": "wanx2.1-t2i-turbo",
                                "input": {"prompt": "a lighthouse at dusk"},
                                "parameters": {"size": "1024*1024", "n": 1}}
        for k, v in kw.items():
            if k in ("model",):
                body[k] = v
            elif k in ("input", "parameters"):
                body[k] = v
            else:
                body["parameters"][k] = v
        return client.post(path or self.submit_path, json=body, headers=headers)

    def poll(self, client: httpx.Client, task_id: str, key: str = KEY) -> httpx.Response:
        return client.get(f"/api/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"})

    def finish(self, client: httpx.Client, submitted: httpx.Response) -> dict[str, Any]:
        assert submitted.status_code == 200, submitted.text
        first = submitted.json()["output"]
        assert first["task_status"] == "PENDING"
        task_id = first["task_id"]
        statuses = []
        for _ in range(MAX_POLLS):
            reply = self.poll(client, task_id)
            assert reply.status_code == 200  # failures too: DashScope answers 200
            out = reply.json()["output"]
            statuses.append(out["task_status"])
            if out["task_status"] == "SUCCEEDED":
                return {"status": "ok", "urls": [r["url"] for r in out["results"]],
                        "error": None, "statuses": statuses, "task_id": task_id,
                        "body": reply.json()}
            if out["task_status"] in ("FAILED", "CANCELED", "UNKNOWN"):
                return {"status": out["task_status"].lower(), "urls": [],
                        "error": out.get("message"), "code": out.get("code"),
                        "statuses": statuses, "task_id": task_id}
        raise AssertionError(f"task did not finish: {statuses}")


class IdeogramDriver(Driver):
    name = "ideogram"
    fake_cls = IdeogramFake
    submit_path = "/v1/ideogram-v3/generate"
    body_401, body_429, body_500 = IDEOGRAM_401_BODY, IDEOGRAM_429_BODY, IDEOGRAM_500_BODY

    def submit(self, client: httpx.Client, key: str | None = KEY, **kw: Any) -> httpx.Response:
        headers = {} if key is None else {"Api-Key": key}
        fields = {"prompt": "a lighthouse at dusk", "aspect_ratio": "1x1"}
        fields.update(kw)
        return client.post(self.submit_path, files=mp(**fields), headers=headers)

    def finish(self, client: httpx.Client, submitted: httpx.Response) -> dict[str, Any]:
        if submitted.status_code != 200:
            return {"status": "failed", "urls": [], "error": submitted.json().get("detail"),
                    "statuses": [submitted.status_code]}
        body = submitted.json()
        return {"status": "ok", "urls": [d["url"] for d in body["data"]], "error": None,
                "statuses": [200], "body": body}


DRIVERS = [ModelScopeDriver(), DashScopeDriver(), IdeogramDriver()]
ASYNC_DRIVERS = DRIVERS[:2]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[VendorFake, httpx.Client]]]:
    """One running fake (and one client) per vendor for the whole module; every test
    gets the fake reset() before and after."""
    out: dict[str, tuple[VendorFake, httpx.Client]] = {}
    with contextlib.ExitStack() as stack:
        for d in DRIVERS:
            f = d.fake_cls(api_key=KEY)
            stack.enter_context(f.running())
            c = stack.enter_context(httpx.Client(base_url=f.url or "", timeout=10))
            out[d.name] = (f, c)
        yield out


def _fresh(servers: dict[str, tuple[VendorFake, httpx.Client]],
           name: str) -> Iterator[tuple[Any, httpx.Client]]:
    f, c = servers[name]
    f.reset()
    yield f, c
    f.reset()  # also ends any hold a failed test left behind


@pytest.fixture(params=DRIVERS, ids=lambda d: d.name)
def driver(request: pytest.FixtureRequest) -> Driver:
    return request.param


@pytest.fixture
def pair(driver: Driver, servers: dict[str, tuple[VendorFake, httpx.Client]]
         ) -> Iterator[tuple[VendorFake, httpx.Client]]:
    yield from _fresh(servers, driver.name)


@pytest.fixture
def fake(pair: tuple[VendorFake, httpx.Client]) -> VendorFake:
    return pair[0]


@pytest.fixture
def client(pair: tuple[VendorFake, httpx.Client]) -> httpx.Client:
    return pair[1]


@pytest.fixture
def ms(servers: dict[str, tuple[VendorFake, httpx.Client]]
       ) -> Iterator[tuple[ModelScopeFake, httpx.Client]]:
    yield from _fresh(servers, "modelscope")


@pytest.fixture
def ds(servers: dict[str, tuple[VendorFake, httpx.Client]]
       ) -> Iterator[tuple[DashScopeFake, httpx.Client]]:
    yield from _fresh(servers, "dashscope")


@pytest.fixture
def ig(servers: dict[str, tuple[VendorFake, httpx.Client]]
       ) -> Iterator[tuple[IdeogramFake, httpx.Client]]:
    yield from _fresh(servers, "ideogram")


# ---------------------------------------------------------------------------
# Common knobs, every vendor
# ---------------------------------------------------------------------------

def test_happy_path_downloads_distinct_pngs(driver: Driver, fake: VendorFake,
                                            client: httpx.Client) -> None:
    first = driver.run(client)
    second = driver.run(client)
    assert first["status"] == second["status"] == "ok"
    blobs = []
    for url in first["urls"] + second["urls"]:
        assert url.startswith(f"{fake.url}/")
        got = client.get(url)  # no auth: result URLs are public
        assert got.status_code == 200
        assert got.headers["content-type"] == "image/png"
        assert got.content.startswith(PNG_MAGIC)
        assert image_size(got.content) == (64, 64)
        blobs.append(hashlib.sha256(got.content).hexdigest())
    assert len(blobs) == 2 and len(set(blobs)) == 2
    assert fake.in_flight == 0 and fake.max_in_flight == 1
    submits = [r for r in fake.requests if r.path == driver.submit_path]
    assert len(submits) == 2 and all(isinstance(r, Recorded) for r in submits)
    assert all(r.status == 200 for r in submits)


def test_requests_are_recorded_with_lowercase_headers(driver: Driver, fake: VendorFake,
                                                      client: httpx.Client) -> None:
    driver.submit(client)
    rec = fake.requests[0]
    assert rec.method == "POST" and rec.path == driver.submit_path
    assert all(k == k.lower() for k in rec.headers)
    if driver.name == "ideogram":
        assert rec.headers["api-key"] == KEY
        assert rec.headers["content-type"].startswith("multipart/form-data")
        assert rec.form == {"prompt": "a lighthouse at dusk", "aspect_ratio": "1x1"}
    else:
        assert rec.headers["authorization"] == f"Bearer {KEY}"
        assert rec.json is not None and rec.form is None


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_bad_or_missing_key_is_401_with_vendor_body(driver: Driver, fake: VendorFake,
                                                    client: httpx.Client, key: str | None) -> None:
    response = driver.submit(client, key=key)
    assert response.status_code == 401
    assert strip_rid(response.json()) == driver.body_401
    assert fake.tasks == {}


@pytest.mark.parametrize("status", [429, 500, 503])
def test_injected_status_then_recovery(driver: Driver, fake: VendorFake, client: httpx.Client,
                                       status: int) -> None:
    fake.inject(status, times=2, method="POST", path_prefix=driver.submit_path)
    for _ in range(2):
        response = driver.submit(client)
        assert response.status_code == status
        body = strip_rid(response.json())
        if status == 429:
            assert body == driver.body_429
        elif driver.name == "dashscope" and status == 503:
            assert body == DASHSCOPE_503_BODY
        else:
            assert body == driver.body_500
    assert driver.run(client)["status"] == "ok"
    statuses = [r.status for r in fake.requests if r.path == driver.submit_path]
    assert statuses == [status, status, 200]


def test_injection_with_custom_body_and_headers(driver: Driver, fake: VendorFake,
                                                client: httpx.Client) -> None:
    fake.inject(429, body={"custom": True}, headers={"Retry-After": "7"})
    response = driver.submit(client)
    assert response.status_code == 429
    assert response.json() == {"custom": True}
    assert response.headers["retry-after"] == "7"


def test_injection_matches_method_and_path(driver: Driver, fake: VendorFake,
                                           client: httpx.Client) -> None:
    fake.inject(503, method="GET", path_prefix="/nowhere")
    assert driver.run(client)["status"] == "ok"      # untouched
    assert client.get("/nowhere/x").status_code == 503


def test_reset_drops_connection_without_response(driver: Driver, fake: VendorFake,
                                                 client: httpx.Client) -> None:
    fake.inject_reset(path_prefix=driver.submit_path)
    with pytest.raises(httpx.TransportError):
        driver.submit(client)
    reset = fake.requests[-1]
    assert reset.reset and reset.status is None
    assert fake.tasks == {}
    assert driver.run(client)["status"] == "ok"       # the next request is served


def test_fail_tasks_surfaces_vendor_failure(driver: Driver, fake: VendorFake,
                                            client: httpx.Client) -> None:
    fake.fail_tasks(1, message="model exploded")
    failed = driver.run(client)
    assert failed["status"] == "failed"
    assert failed["error"] == "model exploded"
    assert driver.run(client)["status"] == "ok"       # only the next one fails
    assert fake.in_flight == 0


def test_image_factory_override(driver: Driver, fake: VendorFake, client: httpx.Client) -> None:
    seen: list[dict[str, Any]] = []

    def factory(task: dict[str, Any]) -> tuple[bytes, str]:
        seen.append(task)
        return f"jpeg-{task['id']}-{task['index']}".encode(), "image/jpeg"

    fake.image_factory = factory
    result = driver.run(client)
    assert result["status"] == "ok" and len(result["urls"]) == 1
    got = client.get(result["urls"][0])
    assert got.headers["content-type"] == "image/jpeg"
    assert got.content == f"jpeg-{seen[0]['id']}-0".encode()
    assert seen[0]["prompt"] == "a lighthouse at dusk"
    assert urlsplit(result["urls"][0]).path.endswith(".jpg")


def test_image_size_none_uses_requested_dimensions(driver: Driver, fake: VendorFake,
                                                   client: httpx.Client) -> None:
    fake.image_size = None
    over = {"modelscope": {"size": "640x512"}, "dashscope": {"size": "640*512"},
            "ideogram": {"aspect_ratio": "16x9"}}[driver.name]
    result = driver.run(client, **over)
    expected = (1312, 736) if driver.name == "ideogram" else (640, 512)
    assert image_size(client.get(result["urls"][0]).content) == expected


@pytest.mark.parametrize("driver", ASYNC_DRIVERS, ids=lambda d: d.name)
@pytest.mark.parametrize(("steps", "expected"), [
    (0, []),
    (1, ["RUNNING"]),
    (3, ["PENDING", "RUNNING", "RUNNING"]),
])
def test_steps_before_done(driver: Driver, fake: VendorFake, client: httpx.Client,
                           steps: int, expected: list[str]) -> None:
    fake.steps_before_done = steps
    result = driver.run(client)
    assert result["status"] == "ok"
    assert result["statuses"][:-1] == expected
    assert result["statuses"][-1] == ("SUCCEED" if driver.name == "modelscope" else "SUCCEEDED")


@pytest.mark.parametrize("driver", ASYNC_DRIVERS, ids=lambda d: d.name)
def test_hold_keeps_tasks_running_until_release(driver: Driver, fake: VendorFake,
                                                client: httpx.Client) -> None:
    fake.hold = True
    submitted = [driver.submit(client) for _ in range(3)]
    ids = [s.json()["task_id"] if driver.name == "modelscope" else s.json()["output"]["task_id"]
           for s in submitted]
    assert fake.in_flight == 3 and fake.max_in_flight == 3
    for _ in range(5):
        for task_id in ids:
            reply = driver.poll(client, task_id)  # type: ignore[attr-defined]
            body = reply.json()
            status = (body["task_status"] if driver.name == "modelscope"
                      else body["output"]["task_status"])
            assert status == "RUNNING"
    fake.release()
    for s in submitted:
        assert driver.finish(client, s)["status"] == "ok"
    assert fake.in_flight == 0 and fake.max_in_flight == 3


@pytest.mark.anyio
@pytest.mark.parametrize("driver", ASYNC_DRIVERS, ids=lambda d: d.name)
async def test_wait_until_sees_task_completion(driver: Driver, fake: VendorFake) -> None:
    assert fake.url is not None

    def work() -> None:
        with httpx.Client(base_url=fake.url or "", timeout=10) as c:
            driver.run(c)

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, work)
        await fake.wait_until(
            lambda: any(t["state"] == "SUCCEEDED" for t in fake.tasks.values()), timeout=10)
    assert fake.in_flight == 0


# ---------------------------------------------------------------------------
# ModelScope
# ---------------------------------------------------------------------------

MS = ModelScopeDriver()


def test_modelscope_submit_shape_and_quota_headers(ms: tuple[ModelScopeFake, httpx.Client]) -> None:
    fake, client = ms
    response = MS.submit(client, image_url="https://example.com/in.png", seed=7, steps=30,
                         guidance=3.5, negative_prompt="blurry")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"task_id", "request_id"}
    assert response.headers["x-request-id"] == body["request_id"]
    assert response.headers["modelscope-ratelimit-requests-limit"] == "2000"
    assert response.headers["modelscope-ratelimit-requests-remaining"] == "1999"
    assert response.headers["modelscope-ratelimit-model-requests-remaining"] == "199"
    task = fake.tasks[body["task_id"]]
    assert task["image_url"] == "https://example.com/in.png"
    assert fake.requests[0].json["image_url"] == "https://example.com/in.png"
    assert fake.requests[0].headers["x-modelscope-async-mode"] == "true"


def test_modelscope_success_is_spelled_succeed(ms: tuple[ModelScopeFake, httpx.Client]) -> None:
    fake, client = ms
    fake.steps_before_done = 0
    task_id = MS.submit(client).json()["task_id"]
    body = MS.poll(client, task_id).json()
    assert body["task_status"] == "SUCCEED"
    assert body["output_images"] == [f"{fake.url}/img/{task_id}-0.png"]
    assert "request_id" in body


def test_modelscope_requires_async_header(ms: tuple[ModelScopeFake, httpx.Client]) -> None:
    fake, client = ms
    response = client.post(MS.submit_path, json={"model": "m", "prompt": "p"},
                           headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 400
    assert "errors" in response.json()
    assert fake.tasks == {}


def test_modelscope_poll_without_task_type_is_task_not_found(
        ms: tuple[ModelScopeFake, httpx.Client]) -> None:
    _, client = ms
    task_id = MS.submit(client).json()["task_id"]
    for task_type in (None, "text_generation"):
        reply = MS.poll(client, task_id, task_type=task_type)
        assert reply.status_code == 200
        assert strip_rid(reply.json()) == MODELSCOPE_TASK_NOT_FOUND
    assert MS.finish(client, MS.submit(client))["status"] == "ok"


def test_modelscope_unknown_and_expired_tasks(ms: tuple[ModelScopeFake, httpx.Client]) -> None:
    fake, client = ms
    reply = MS.poll(client, "no-such-task")
    assert reply.status_code == 200 and strip_rid(reply.json()) == MODELSCOPE_TASK_NOT_FOUND
    task_id = MS.submit(client).json()["task_id"]
    fake.expire(task_id)
    assert strip_rid(MS.poll(client, task_id).json()) == MODELSCOPE_TASK_NOT_FOUND
    assert fake.in_flight == 0


def test_modelscope_poll_needs_auth(ms: tuple[ModelScopeFake, httpx.Client]) -> None:
    _, client = ms
    task_id = MS.submit(client).json()["task_id"]
    reply = MS.poll(client, task_id, key="nope")
    assert reply.status_code == 401 and strip_rid(reply.json()) == MODELSCOPE_401_BODY


def test_modelscope_failed_task_shape(ms: tuple[ModelScopeFake, httpx.Client]) -> None:
    fake, client = ms
    fake.steps_before_done = 0
    fake.fail_tasks(message="NSFW content detected")
    task_id = MS.submit(client).json()["task_id"]
    body = MS.poll(client, task_id).json()
    assert body["task_status"] == "FAILED"
    assert body["errors"] == {"message": "NSFW content detected"}
    assert "output_images" not in body and "request_id" in body


@pytest.mark.parametrize("override", [
    {"model": ""},
    {"model": None},
    {"prompt": ""},
    {"prompt": "x" * 2000},
    {"negative_prompt": "x" * 2000},
    {"size": "1024*1024"},
    {"size": "1024:1024"},
    {"size": "32x32"},
    {"size": "4096x1024"},
    {"seed": -1},
    {"seed": 2**31},
    {"seed": "7"},
    {"steps": 0},
    {"steps": 101},
    {"guidance": 1.0},
    {"guidance": 25},
    {"image_url": ""},
], ids=lambda o: json.dumps(o)[:40])
def test_modelscope_validation(ms: tuple[ModelScopeFake, httpx.Client],
                               override: dict[str, Any]) -> None:
    fake, client = ms
    response = MS.submit(client, **override)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["errors"]["message"], str)
    assert fake.tasks == {}


@pytest.mark.parametrize("override", [
    {"size": "64x64"}, {"size": "2048x2048"}, {"seed": 0}, {"seed": 2**31 - 1},
    {"steps": 1}, {"steps": 100}, {"guidance": 1.5}, {"guidance": 20},
    {"image_url": ["https://a/1.png", "data:image/png;base64,AAAA"]},
], ids=lambda o: json.dumps(o)[:40])
def test_modelscope_validation_boundaries_accepted(ms: tuple[ModelScopeFake, httpx.Client],
                                                   override: dict[str, Any]) -> None:
    _, client = ms
    assert MS.submit(client, **override).status_code == 200


def test_modelscope_quota_exhaustion_429(ms: tuple[ModelScopeFake, httpx.Client]) -> None:
    fake, client = ms
    fake.model_quota_limit = 1
    assert MS.submit(client).status_code == 200
    response = MS.submit(client)
    assert response.status_code == 429
    assert strip_rid(response.json()) == MODELSCOPE_429_BODY
    assert response.headers["modelscope-ratelimit-model-requests-remaining"] == "0"
    assert MS.submit(client, model="other/model").status_code == 200


def test_modelscope_injected_429_has_zero_remaining_headers(
        ms: tuple[ModelScopeFake, httpx.Client]) -> None:
    fake, client = ms
    fake.inject(429)
    response = MS.submit(client)
    for name, value in MODELSCOPE_429_HEADERS.items():
        assert response.headers[name] == value


def test_modelscope_unknown_model_404(ms: tuple[ModelScopeFake, httpx.Client]) -> None:
    fake, client = ms
    fake.known_models = {"Qwen/Qwen-Image"}
    assert MS.submit(client, model="nobody/nothing").status_code == 404
    assert MS.submit(client).status_code == 200


def test_modelscope_expired_image_is_gone(ms: tuple[ModelScopeFake, httpx.Client]) -> None:
    fake, client = ms
    result = MS.run(client)
    fake.expire(result["task_id"])
    assert client.get(result["urls"][0]).status_code == 404


# ---------------------------------------------------------------------------
# DashScope
# ---------------------------------------------------------------------------

DS = DashScopeDriver()


def test_dashscope_success_shape(ds: tuple[DashScopeFake, httpx.Client]) -> None:
    fake, client = ds
    result = DS.run(client, n=2, seed=42)
    assert result["status"] == "ok"
    body = result["body"]
    out = body["output"]
    assert out["task_metrics"] == {"TOTAL": 2, "SUCCEEDED": 2, "FAILED": 0}
    assert body["usage"] == {"image_count": 2}
    assert {"submit_time", "scheduled_time", "end_time", "request_id"} <= set(out) | set(body)
    task_id = result["task_id"]
    expected = [f"{fake.url}/r/{task_id}-{i}.png" for i in range(2)]
    assert [r["url"] for r in out["results"]] == expected
    assert all(r["orig_prompt"] == "a lighthouse at dusk" and r["actual_prompt"]
               for r in out["results"])
    digests = {hashlib.sha256(client.get(u).content).hexdigest() for u in result["urls"]}
    assert len(digests) == 2


def test_dashscope_prompt_extend_false_has_no_actual_prompt(
        ds: tuple[DashScopeFake, httpx.Client]) -> None:
    _, client = ds
    result = DS.run(client, prompt_extend=False)
    assert "actual_prompt" not in result["body"]["output"]["results"][0]


def test_dashscope_missing_n_makes_four_images(ds: tuple[DashScopeFake, httpx.Client]) -> None:
    fake, client = ds
    response = DS.submit(client, parameters={"size": "1024*1024"})
    result = DS.finish(client, response)
    assert len(result["urls"]) == 4
    assert result["body"]["usage"] == {"image_count": 4}
    assert fake.n_defaulted == [result["task_id"]]
    assert fake.tasks[result["task_id"]]["n_defaulted"] is True
    DS.run(client, n=1)
    assert fake.n_defaulted == [result["task_id"]]


def test_dashscope_requires_async_header(ds: tuple[DashScopeFake, httpx.Client]) -> None:
    fake, client = ds
    response = DS.submit(client, async_header=False)
    assert response.status_code == 403
    assert strip_rid(response.json()) == DASHSCOPE_403_SYNC_BODY
    assert fake.tasks == {}


@pytest.mark.parametrize(("kw", "fragment"), [
    ({"model": ""}, "Model"),
    ({"input": {"prompt": ""}}, "prompt"),
    ({"input": {}}, "prompt"),
    ({"size": "1024x1024"}, "size"),
    ({"size": "256*256"}, "range"),
    ({"size": "2048*1024"}, "range"),
    ({"n": 0}, "n must"),
    ({"n": 5}, "n must"),
    ({"seed": -1}, "seed"),
    ({"seed": 2147483648}, "seed"),
    ({"model": "qwen-image", "size": "1024*1024"}, "not supported"),
    ({"model": "qwen-image", "size": "1328*1328", "n": 2}, "n must be 1"),
    ({"model": "wan2.5-t2i-preview", "size": "512*512"}, "range"),
], ids=lambda v: json.dumps(v)[:40] if isinstance(v, dict) else v)
def test_dashscope_validation(ds: tuple[DashScopeFake, httpx.Client], kw: dict[str, Any],
                              fragment: str) -> None:
    fake, client = ds
    response = DS.submit(client, **kw)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "InvalidParameter" and fragment in body["message"]
    assert "request_id" in body
    assert fake.tasks == {}


@pytest.mark.parametrize("kw", [
    {"size": "512*512"}, {"size": "1440*1440"}, {"n": 4}, {"seed": 0}, {"seed": 2147483647},
    {"model": "qwen-image", "size": "1328*1328", "n": 1},
    {"model": "wan2.5-t2i-preview", "size": "1280*1280"},
], ids=lambda v: json.dumps(v)[:40])
def test_dashscope_validation_accepts(ds: tuple[DashScopeFake, httpx.Client],
                                      kw: dict[str, Any]) -> None:
    _, client = ds
    assert DS.submit(client, **kw).status_code == 200


def test_dashscope_failure_is_http_200_failed(ds: tuple[DashScopeFake, httpx.Client]) -> None:
    fake, client = ds
    fake.fail_tasks(message="Output data may contain inappropriate content.",
                    code="DataInspectionFailed")
    result = DS.run(client)
    assert result["status"] == "failed"
    assert result["code"] == "DataInspectionFailed"
    assert result["error"] == "Output data may contain inappropriate content."
    fake.fail_tasks()
    assert DS.run(client)["code"] == "InternalError.Algo"


def test_dashscope_unknown_task_is_200_unknown(ds: tuple[DashScopeFake, httpx.Client]) -> None:
    _, client = ds
    reply = DS.poll(client, "ffff-0000")
    assert reply.status_code == 200
    assert reply.json()["output"] == {"task_id": "ffff-0000", "task_status": "UNKNOWN"}


def test_dashscope_expire_makes_task_unknown_and_urls_403(
        ds: tuple[DashScopeFake, httpx.Client]) -> None:
    fake, client = ds
    result = DS.run(client)
    assert client.get(result["urls"][0]).status_code == 200
    fake.expire(result["task_id"])
    assert DS.poll(client, result["task_id"]).json()["output"]["task_status"] == "UNKNOWN"
    gone = client.get(result["urls"][0])
    assert gone.status_code == 403 and b"Request has expired" in gone.content
    pending = DS.submit(client).json()["output"]["task_id"]
    assert fake.in_flight == 1
    fake.expire(pending)
    assert fake.in_flight == 0


def test_dashscope_cancel_pending_task(ds: tuple[DashScopeFake, httpx.Client]) -> None:
    fake, client = ds
    task_id = DS.submit(client).json()["output"]["task_id"]
    assert fake.in_flight == 1
    reply = client.post(f"/api/v1/tasks/{task_id}/cancel",
                        headers={"Authorization": f"Bearer {KEY}"})
    assert reply.status_code == 200 and set(reply.json()) == {"request_id"}
    assert fake.cancels == [task_id] and fake.in_flight == 0
    assert DS.poll(client, task_id).json()["output"]["task_status"] == "CANCELED"


def test_dashscope_cancel_refused_once_running(ds: tuple[DashScopeFake, httpx.Client]) -> None:
    fake, client = ds
    fake.steps_before_done = 3
    task_id = DS.submit(client).json()["output"]["task_id"]
    DS.poll(client, task_id)  # PENDING
    DS.poll(client, task_id)  # RUNNING
    reply = client.post(f"/api/v1/tasks/{task_id}/cancel",
                        headers={"Authorization": f"Bearer {KEY}"})
    assert reply.status_code == 400
    assert strip_rid(reply.json()) == DASHSCOPE_CANCEL_REFUSED_BODY
    assert fake.cancels == []
    unauth = client.post(f"/api/v1/tasks/{task_id}/cancel")
    assert unauth.status_code == 401


def test_dashscope_poll_needs_auth(ds: tuple[DashScopeFake, httpx.Client]) -> None:
    _, client = ds
    task_id = DS.submit(client).json()["output"]["task_id"]
    reply = DS.poll(client, task_id, key="nope")
    assert reply.status_code == 401 and strip_rid(reply.json()) == DASHSCOPE_401_BODY


I2I = "/api/v1/services/aigc/image2image/image-synthesis"


def test_dashscope_image2image(ds: tuple[DashScopeFake, httpx.Client]) -> None:
    fake, client = ds
    good = {"function": "description_edit", "prompt": "make it night",
            "base_image_url": "https://example.com/a.png"}
    result = DS.finish(client, DS.submit(client, path=I2I, model="wanx2.1-imageedit", input=good))
    assert result["status"] == "ok" and len(result["urls"]) == 1
    assert fake.tasks[result["task_id"]]["kind"] == "image2image"
    for bad in ({**good, "function": "paint"},
                {k: v for k, v in good.items() if k != "base_image_url"},
                {**good, "function": "description_edit_with_mask"}):
        response = DS.submit(client, path=I2I, model="wanx2.1-imageedit", input=bad)
        assert response.status_code == 400 and response.json()["code"] == "InvalidParameter"


MM = "/api/v1/services/aigc/multimodal-generation/generation"


def mm_body(**params: Any) -> dict[str, Any]:
    return {"model": "qwen-image-edit", "input": {"messages": [{"role": "user", "content": [
        {"image": "https://example.com/a.png"}, {"text": "add a red hat"}]}]},
        "parameters": params}


def test_dashscope_multimodal_sync(ds: tuple[DashScopeFake, httpx.Client]) -> None:
    fake, client = ds
    auth = {"Authorization": f"Bearer {KEY}"}
    reply = client.post(MM, json=mm_body(n=2, size="1024*768"), headers=auth)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    choice = body["output"]["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    urls = [c["image"] for c in choice["message"]["content"]]
    assert len(urls) == 2 and body["usage"]["image_count"] == 2
    assert all(client.get(u).content.startswith(PNG_MAGIC) for u in urls)
    assert fake.in_flight == 0 and fake.max_in_flight == 1
    # the async header is refused on this sync-only endpoint
    refused = client.post(MM, json=mm_body(), headers={**auth, "X-DashScope-Async": "enable"})
    assert refused.status_code == 403 and strip_rid(refused.json()) == DASHSCOPE_403_ASYNC_BODY
    assert client.post(MM, json=mm_body(n=7), headers=auth).status_code == 400
    no_text = mm_body()
    no_text["input"]["messages"][0]["content"] = [{"image": "https://example.com/a.png"}]
    assert client.post(MM, json=no_text, headers=auth).status_code == 400
    assert client.post(MM, json=mm_body(), headers={"Authorization": "Bearer x"}).status_code == 401
    fake.fail_tasks(message="Input data may contain inappropriate content.",
                    code="DataInspectionFailed")
    failed = client.post(MM, json=mm_body(), headers=auth)
    assert failed.status_code == 400 and failed.json()["code"] == "DataInspectionFailed"


@pytest.mark.anyio
async def test_dashscope_multimodal_hold_counts_in_flight() -> None:
    fake = DashScopeFake()
    fake.hold = True
    with fake.running():
        async with httpx.AsyncClient(base_url=fake.url or "", timeout=10) as client:
            results: list[int] = []

            async def call() -> None:
                reply = await client.post(MM, json=mm_body(),
                                          headers={"Authorization": f"Bearer {KEY}"})
                results.append(reply.status_code)

            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                tg.start_soon(call)
                await fake.wait_until(lambda: fake.in_flight == 2, timeout=10)
                assert results == []
                fake.release()
            assert results == [200, 200] and fake.max_in_flight == 2 and fake.in_flight == 0


# ---------------------------------------------------------------------------
# Ideogram
# ---------------------------------------------------------------------------

IG = IdeogramDriver()
GEN = "/v1/ideogram-v3/generate"


def ig_post(client: httpx.Client, path: str = GEN, parts: Any = None,
            **fields: Any) -> httpx.Response:
    parts = list(parts or []) + mp(**fields)
    return client.post(path, files=parts, headers={"Api-Key": KEY})


def test_ideogram_response_shape(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    fake, client = ig
    reply = ig_post(client, prompt="a red fox", aspect_ratio="16x9", num_images=3, seed=1234,
                    rendering_speed="TURBO", magic_prompt="OFF", style_type="REALISTIC",
                    negative_prompt="blur")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert isinstance(body["created"], str) and len(body["data"]) == 3
    for item in body["data"]:
        assert set(item) == {"url", "prompt", "resolution", "is_image_safe", "seed", "style_type"}
        assert item["resolution"] == "1312x736" and item["is_image_safe"] is True
        assert item["seed"] == 1234 and item["style_type"] == "REALISTIC"
        assert item["prompt"] == "a red fox"
        query = parse_qs(urlsplit(item["url"]).query)
        assert set(query) == {"exp", "sig"} and int(query["exp"][0]) > 0
    digests = {hashlib.sha256(client.get(d["url"]).content).hexdigest() for d in body["data"]}
    assert len(digests) == 3


def test_ideogram_defaults(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    _, client = ig
    body = ig_post(client, prompt="plain").json()
    assert len(body["data"]) == 1
    item = body["data"][0]
    assert item["resolution"] == "1024x1024" and item["style_type"] == "GENERAL"
    assert 0 <= item["seed"] <= 2147483647
    assert ig_post(client, prompt="p", resolution="1280x800").json()["data"][0]["resolution"] \
        == "1280x800"


def test_ideogram_magic_prompt_on_rewrites(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    _, client = ig
    item = ig_post(client, prompt="a cat", magic_prompt="ON").json()["data"][0]
    assert item["prompt"].startswith("a cat") and item["prompt"] != "a cat"


def test_ideogram_requires_multipart(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    fake, client = ig
    as_json = client.post(GEN, json={"prompt": "p"}, headers={"Api-Key": KEY})
    as_urlencoded = client.post(GEN, data={"prompt": "p"}, headers={"Api-Key": KEY})
    assert as_json.status_code == 400 and as_urlencoded.status_code == 400
    assert fake.requests[1].form == {"prompt": "p"}  # recorded, still refused
    assert fake.tasks == {}


def test_ideogram_bearer_is_not_accepted(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    _, client = ig
    reply = client.post(GEN, files=mp(prompt="p"), headers={"Authorization": f"Bearer {KEY}"})
    assert reply.status_code == 401 and reply.json() == IDEOGRAM_401_BODY


@pytest.mark.parametrize("fields", [
    {"prompt": ""},
    {"aspect_ratio": "1:1"},
    {"aspect_ratio": "7x5"},
    {"aspect_ratio": "1x1", "resolution": "1024x1024"},
    {"resolution": "4096x4096"},
    {"resolution": "1024*1024"},
    {"rendering_speed": "FAST"},
    {"magic_prompt": "on"},
    {"style_type": "ANIME"},
    {"num_images": 0},
    {"num_images": 9},
    {"num_images": "two"},
    {"seed": -1},
    {"seed": 2147483648},
    {"color_palette": "EMBER"},
    {"color_palette": "{}"},
    {"color_palette": json.dumps({"name": "EMBER", "members": []})},
    {"color_palette": json.dumps({"name": "NEON"})},
    {"color_palette": json.dumps({"members": []})},
    {"color_palette": json.dumps({"members": [{"color_hex": "red", "color_weight": 0.5}]})},
    {"color_palette": json.dumps({"members": [{"color_hex": "#FF0000", "color_weight": 0.01}]})},
    {"color_palette": json.dumps({"members": [{"color_hex": "#FF0000", "color_weight": 1.5}]})},
    {"style_codes": "XYZ"},
    {"style_codes": "0A1B2C3D", "style_type": "GENERAL"},
], ids=lambda f: json.dumps(f)[:50])
def test_ideogram_validation(ig: tuple[IdeogramFake, httpx.Client], fields: dict[str, Any]) -> None:
    fake, client = ig
    base = {"prompt": "a cat"}
    base.update(fields)
    reply = ig_post(client, **base)
    assert reply.status_code == 400, reply.text
    assert isinstance(reply.json()["detail"], str)
    assert fake.tasks == {}


@pytest.mark.parametrize("fields", [
    {"aspect_ratio": a} for a in ("1x3", "3x1", "1x2", "2x1", "9x16", "16x9", "10x16", "16x10",
                                  "2x3", "3x2", "3x4", "4x3", "4x5", "5x4", "1x1")
] + [
    {"rendering_speed": s} for s in ("FLASH", "TURBO", "DEFAULT", "QUALITY")
] + [
    {"magic_prompt": "AUTO"}, {"style_type": "FICTION"}, {"style_type": "DESIGN"},
    {"num_images": 8}, {"seed": 0}, {"seed": 2147483647},
    {"color_palette": json.dumps({"name": "ULTRAMARINE"})},
    {"color_palette": json.dumps({"members": [{"color_hex": "#AbCdEf", "color_weight": 0.05},
                                              {"color_hex": "#000000", "color_weight": 1.0}]})},
    {"style_codes": "0A1B2C3D"},
], ids=lambda f: json.dumps(f)[:50])
def test_ideogram_validation_accepts(ig: tuple[IdeogramFake, httpx.Client],
                                     fields: dict[str, Any]) -> None:
    fake, client = ig
    reply = ig_post(client, prompt="a cat", **fields)
    assert reply.status_code == 200, reply.text
    for key, value in fields.items():
        assert fake.requests[-1].form[key] == str(value)


def test_ideogram_repeated_style_codes(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    fake, client = ig
    parts = mp(("style_codes", "0A1B2C3D"), ("style_codes", "DEADBEEF"))
    assert ig_post(client, parts=parts, prompt="p").status_code == 200
    assert fake.requests[-1].form["style_codes"] == ["0A1B2C3D", "DEADBEEF"]


def test_ideogram_safety_422(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    fake, client = ig
    reply = ig_post(client, prompt="something Unsafe here")
    assert reply.status_code == 422 and reply.json() == IDEOGRAM_SAFETY_BODY
    assert fake.tasks == {}


def test_ideogram_unsafe_images_have_no_url(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    fake, client = ig
    fake.unsafe_images(1)
    data = ig_post(client, prompt="p", num_images=2).json()["data"]
    assert data[0]["is_image_safe"] is False and data[0]["url"] is None
    assert data[1]["is_image_safe"] is True and data[1]["url"]


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_ideogram_download_signature_checked(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    _, client = ig
    url = ig_post(client, prompt="p").json()["data"][0]["url"]
    assert client.get(url).status_code == 200
    exp = parse_qs(urlsplit(url).query)["exp"][0]
    assert client.get(_with_query(url, sig="0" * 64)).status_code == 403
    assert client.get(_with_query(url, exp=str(int(exp) + 3600))).status_code == 403
    assert client.get(url.split("?")[0]).status_code == 403
    assert client.get(_with_query(url, exp="soon")).status_code == 403


def test_ideogram_expired_url_refused(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    fake, client = ig
    fake.url_ttl = -10
    url = ig_post(client, prompt="p").json()["data"][0]["url"]
    reply = client.get(url)
    assert reply.status_code == 403 and b"expired" in reply.content


def test_ideogram_clock_moves_past_exp(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    fake, client = ig
    url = ig_post(client, prompt="p").json()["data"][0]["url"]
    real_clock = fake.clock
    fake.clock = lambda: real_clock() + 7200
    assert client.get(url).status_code == 403


def test_ideogram_edit(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    fake, client = ig
    image = make_png(1, (96, 80))
    mask = make_png(2, (96, 80))
    edit = "/v1/ideogram-v3/edit"
    reply = ig_post(client, edit, parts=[("image", ("a.png", image, "image/png")),
                                         ("mask", ("m.png", mask, "image/png"))],
                    prompt="add a hat", num_images=2)
    assert reply.status_code == 200, reply.text
    assert [d["resolution"] for d in reply.json()["data"]] == ["96x80", "96x80"]
    rec = fake.requests[-1]
    assert rec.files["image"][0].data == image and rec.files["mask"][0].filename == "m.png"
    no_mask = ig_post(client, edit, parts=[("image", ("a.png", image, "image/png"))], prompt="x")
    assert no_mask.status_code == 400
    no_image = ig_post(client, edit, parts=[("mask", ("m.png", mask, "image/png"))], prompt="x")
    assert no_image.status_code == 400
    mismatch = ig_post(client, edit, parts=[("image", ("a.png", image, "image/png")),
                                            ("mask", ("m.png", make_png(3), "image/png"))],
                       prompt="x")
    assert mismatch.status_code == 400 and "same size" in mismatch.json()["detail"]
    no_prompt = ig_post(client, edit, parts=[("image", ("a.png", image, "image/png")),
                                             ("mask", ("m.png", mask, "image/png"))])
    assert no_prompt.status_code == 400


def test_ideogram_remix(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    _, client = ig
    remix = "/v1/ideogram-v3/remix"
    image = [("image", ("a.png", make_png(5), "image/png"))]
    ok = ig_post(client, remix, parts=image, prompt="as watercolor", image_weight=70,
                 aspect_ratio="3x2")
    assert ok.status_code == 200 and ok.json()["data"][0]["resolution"] == "1248x832"
    assert ig_post(client, remix, parts=image, prompt="p", image_weight=0).status_code == 400
    assert ig_post(client, remix, parts=image, prompt="p", image_weight=101).status_code == 400
    assert ig_post(client, remix, prompt="no image").status_code == 400


def test_ideogram_latency_is_server_side(ig: tuple[IdeogramFake, httpx.Client]) -> None:
    fake, client = ig
    fake.latency = 0.2
    with pytest.raises(httpx.ReadTimeout):
        client.post(GEN, files=mp(prompt="p"), headers={"Api-Key": KEY}, timeout=0.05)
    # the server finished the slow request on its own; wait for it, bounded
    fake.wait_until_sync(lambda: fake.in_flight == 0 and fake.requests[-1].status == 200, 5)
    fake.latency = 0.0
    assert ig_post(client, prompt="p").status_code == 200


@pytest.mark.anyio
async def test_ideogram_concurrency_limit_429() -> None:
    fake = IdeogramFake()
    fake.max_concurrent = 2
    fake.hold = True
    with fake.running():
        async with httpx.AsyncClient(base_url=fake.url or "", timeout=10) as client:
            statuses: list[int] = []

            async def call() -> None:
                reply = await client.post(GEN, files=mp(prompt="p"), headers={"Api-Key": KEY})
                statuses.append(reply.status_code)

            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                tg.start_soon(call)
                await fake.wait_until(lambda: fake.in_flight == 2, timeout=10)
                over = await client.post(GEN, files=mp(prompt="p"), headers={"Api-Key": KEY})
                assert over.status_code == 429 and over.json() == IDEOGRAM_429_BODY
                assert fake.rejected_concurrency == 1
                fake.release()
            assert statuses == [200, 200]
            assert fake.max_in_flight == 2 and fake.in_flight == 0
