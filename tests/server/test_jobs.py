"""Calls that outlive EASEL_RETURN_AFTER: a running job handle, check_job, cancel_job, the job
record as a resource, and resources/updated when it ends (in-process, both protocol eras)."""

from __future__ import annotations

import base64
import json
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.shared.subscriptions import ResourceUpdated
from mcp.types import (
    CallToolResult,
    ElicitResult,
    ImageContent,
    ResourceLink,
    ResourceUpdatedNotification,
    TextContent,
)

from server.app import build_server
from server.config import Settings
from server.job_records import JobRecord, UnitRecord, record_key
from server.jobs import Job, WorkOutcome
from server.livejob import LiveJob
from server.storage import now_iso
from server.storage.docs import LocalDocs
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.replicate import TOKEN
from tests.support.results import text_of

pytestmark = pytest.mark.anyio

ERAS = ["auto", "legacy"]   # 2026-07-28 (in-process dispatch) and the initialize handshake


@pytest.fixture
def job_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "EASEL_RETURN_AFTER": "0.3"}


@pytest.fixture
def job_server(job_env: dict[str, str]):  # type: ignore[no-untyped-def]
    return build_server(Settings.from_env(job_env))


async def served_bytes(fake: FakeReplicate) -> list[bytes]:
    """What the fake made for its predictions, fetched from its own output links."""
    urls = [u for p in fake.predictions.values() for u in ([p["output"]] if isinstance(p["output"], str)
                                                            else p["output"] or [])]
    async with httpx.AsyncClient() as http:
        return [(await http.get(u)).content for u in urls]


async def start_running(client: Client, fake: FakeReplicate, count: int = 1) -> dict[str, Any]:
    fake.hold = True
    result = await client.call_tool("generate_image", {"prompt": "a lighthouse", "count": count})
    assert not result.is_error, text_of(result)
    return result.model_dump()["structured_content"] | {"_text": text_of(result)}


@pytest.mark.parametrize("mode", ERAS)
async def test_a_slow_call_answers_with_a_running_job_and_check_job_returns_the_stored_images(
        job_server, replicate_fake: FakeReplicate, mode: str) -> None:
    async with Client(job_server, mode=mode) as client:
        first = await start_running(client, replicate_fake, count=2)
        job = first["job"]
        assert job["status"] == "running" and job["done"] == 0 and job["total"] == 2
        assert job["uri"] == f"easel://jobs/{job['id']}" and first["images"] == []
        assert "check_job" in first["_text"] and job["id"] in first["_text"] and "paid for" in first["_text"]
        # what a model reads first is what to do next, not a summary of a call that has not ended
        assert first["_text"].startswith(f"Job {job['id']} is still running") and "Generated 0" not in first["_text"]

        still = await client.call_tool("check_job", {"job_id": job["id"], "wait": 0})
        assert still.structured_content["job"]["status"] == "running"

        replicate_fake.release()
        done = await client.call_tool("check_job", {"job_id": job["id"], "wait": 20})
        body = done.structured_content
        assert body["job"]["status"] == "succeeded" and body["job"]["done"] == 2
        assert len(body["images"]) == 2 and body["errors"] == []
        links = [c for c in done.content if isinstance(c, ResourceLink)]
        previews = [c for c in done.content if isinstance(c, ImageContent)]
        assert [str(link.uri) for link in links] == [i["uri"] for i in body["images"]] and len(previews) == 2
        text = text_of(done)
        assert all(i["uri"] in text and i["url"] in text for i in body["images"]) and "succeeded" in text
        stored = [base64.b64decode((await client.read_resource(i["uri"])).contents[0].blob) for i in body["images"]]
        assert sorted(stored) == sorted(await served_bytes(replicate_fake))   # byte-identical
        assert len(replicate_fake.creates) == 2


async def test_a_call_that_ends_in_time_answers_as_before_and_leaves_no_job(
        job_server, replicate_fake: FakeReplicate, job_env: dict[str, str]) -> None:
    async with Client(job_server) as client:
        result = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert not result.is_error and result.structured_content.get("job") is None
    assert "check_job" not in text_of(result)
    state = Path(job_env["EASEL_STORAGE_DIR"]) / "state"
    assert [p for p in state.rglob("*") if p.is_file()] == []   # nobody holds its id: no record kept


async def test_return_after_counts_from_the_start_of_the_call_as_the_host_timer_does(
        job_env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    """A handshake-era spend question is answered inside the call: the time the user took counts against the host's
    timeout, so it counts against EASEL_RETURN_AFTER too. A user slower than EASEL_RETURN_AFTER gets a job handle at
    once rather than EASEL_RETURN_AFTER more seconds of waiting."""
    async def slow_user(context: Any, params: Any) -> ElicitResult:
        await anyio.sleep(2.5)
        return ElicitResult(action="accept", content={"approve": True})

    env = {**job_env, "EASEL_RETURN_AFTER": "2", "EASEL_CONFIRM_ABOVE_USD": "0.01"}
    async with Client(build_server(Settings.from_env(env)), mode="legacy", elicitation_callback=slow_user) as client:
        first = await client.call_tool("generate_image", {"prompt": "a lighthouse"})   # the fake answers at once
        job = first.structured_content["job"]
        assert job is not None and job["status"] == "running", text_of(first)
        done = await client.call_tool("check_job", {"job_id": job["id"], "wait": 20})
    assert done.structured_content["job"]["status"] == "succeeded" and len(done.structured_content["images"]) == 1


async def test_cancel_job_cancels_the_prediction_and_keeps_the_job_cancelled(
        job_server, replicate_fake: FakeReplicate) -> None:
    async with Client(job_server) as client:
        job = (await start_running(client, replicate_fake))["job"]
        await replicate_fake.wait_until(lambda: len(replicate_fake.creates) == 1, timeout=10)
        result = await client.call_tool("cancel_job", {"job_id": job["id"]})
        assert not result.is_error, text_of(result)
        assert result.structured_content["job"]["status"] == "cancelled" and "cancelled" in text_of(result)
        [pid] = replicate_fake.cancels
        assert replicate_fake.predictions[pid]["status"] == "canceled"
        again = await client.call_tool("check_job", {"job_id": job["id"], "wait": 0})
        assert again.structured_content["job"]["status"] == "cancelled"


async def test_bad_job_arguments_get_one_clear_line_each(job_server) -> None:
    async with Client(job_server) as client:
        unknown = await client.call_tool("check_job", {"job_id": "0" * 32})
        wrong = await client.call_tool("cancel_job", {"job_id": "../../etc"})
        too_long = await client.call_tool("check_job", {"job_id": "0" * 32, "wait": 600})
    assert unknown.is_error and text_of(unknown).startswith("job_id: no job") and "\n" not in text_of(unknown)
    assert wrong.is_error and text_of(wrong).startswith("job_id: no job")
    assert too_long.is_error and "wait" in text_of(too_long) and "50" in text_of(too_long)


async def test_the_job_record_reads_as_json_without_secrets(job_server, replicate_fake: FakeReplicate) -> None:
    async with Client(job_server) as client:
        job = (await start_running(client, replicate_fake))["job"]
        await replicate_fake.wait_until(lambda: len(replicate_fake.creates) == 1, timeout=10)
        with anyio.fail_after(10):   # the record learns the prediction id as soon as Replicate answers
            while not (record := await read_job(client, job["uri"]))["units"][0]["task_ids"]:
                await anyio.sleep(0.02)
        [pid] = replicate_fake.predictions
        assert record["id"] == job["id"] and record["status"] == "running" and record["tool"] == "generate_image"
        assert record["units"][0]["task_ids"] == [pid] and record["units"][0]["model"] == "Flux 1.1 Pro"
        assert record["units"][0]["request"]["prompt"].endswith("a lighthouse") and record["lease_until"] > 0
        assert TOKEN not in json.dumps(record) and "result" not in record
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        assert "easel://jobs/{job_id}" in templates
        replicate_fake.release()
        await client.call_tool("check_job", {"job_id": job["id"], "wait": 20})
        ended = await read_job(client, job["uri"])
        assert ended["status"] == "succeeded" and len(ended["units"][0]["images"]) == 1 and ended["ended"]


async def read_job(client: Client, uri: str) -> dict[str, Any]:
    return json.loads((await client.read_resource(uri)).contents[0].text)


async def test_a_listening_client_hears_when_its_job_ends(job_server, replicate_fake: FakeReplicate) -> None:
    """2026-07-28: subscriptions/listen for the job's URI, served by the SDK from our bus."""
    async with Client(job_server) as client:
        job = (await start_running(client, replicate_fake))["job"]
        async with client.listen(resource_subscriptions=[job["uri"]]) as sub:
            replicate_fake.release()
            with anyio.fail_after(20):
                event = await sub.__anext__()
        assert event == ResourceUpdated(uri=job["uri"])


async def test_a_subscribed_handshake_era_client_gets_resources_updated(
        job_server, replicate_fake: FakeReplicate) -> None:
    """The initialize handshake: resources/subscribe, then notifications/resources/updated."""
    heard: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            heard.append(str(message.params.uri))

    async with Client(job_server, mode="legacy", message_handler=on_message) as client:
        job = (await start_running(client, replicate_fake))["job"]
        with warnings.catch_warnings():   # deprecated for 2026 servers; this is the handshake era
            warnings.simplefilter("ignore")
            await client.subscribe_resource(job["uri"])
        replicate_fake.release()
        with anyio.fail_after(20):
            while job["uri"] not in heard:
                await anyio.sleep(0.02)


async def test_a_job_handed_over_at_shutdown_keeps_its_prediction_and_the_next_server_finishes_it(
        job_env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    """Closing the connection ends the lifespan: a job that already answered is left running at the vendor
    (not cancelled), its lease lapses at once, and the next server on the store resumes it by id."""
    env = {**job_env, "EASEL_JOB_LEASE": "1.5", "EASEL_JOB_RENEW": "0.2"}
    async with Client(build_server(Settings.from_env(env))) as client:
        job = (await start_running(client, replicate_fake))["job"]
        await replicate_fake.wait_until(lambda: len(replicate_fake.creates) == 1, timeout=10)
        with anyio.fail_after(10):
            while not (await read_job(client, job["uri"]))["units"][0]["task_ids"]:
                await anyio.sleep(0.02)
    assert replicate_fake.cancels == []
    replicate_fake.release()
    async with Client(build_server(Settings.from_env(env))) as client:
        with anyio.fail_after(30):
            while (done := await client.call_tool("check_job", {"job_id": job["id"], "wait": 2})
                   ).structured_content["job"]["status"] == "running":
                pass
        assert done.structured_content["job"]["status"] == "succeeded", text_of(done)
        [image] = done.structured_content["images"]
        data = base64.b64decode((await client.read_resource(image["uri"])).contents[0].blob)
    assert [data] == await served_bytes(replicate_fake) and len(replicate_fake.creates) == 1


async def test_a_server_stopping_while_a_create_request_is_held_records_its_prediction_before_handing_over(
        job_env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    """Replicate holds a create for up to EASEL_WAIT_WINDOW (Prefer: wait) before it says the prediction's id. A
    server stopped in that window must still record the id when the create answers, or the next server cannot
    fetch the prediction already paid for and the user is told to pay for it again."""
    env = {**job_env, "EASEL_JOB_LEASE": "1.5", "EASEL_JOB_RENEW": "0.2"}
    async with Client(build_server(Settings.from_env(env))) as client:
        job = (await start_running(client, replicate_fake))["job"]
        await replicate_fake.wait_until(lambda: len(replicate_fake.creates) == 1, timeout=10)
        assert (await read_job(client, job["uri"]))["units"][0]["task_ids"] == []   # the create is still held
    assert replicate_fake.cancels == []
    replicate_fake.release()
    async with Client(build_server(Settings.from_env(env))) as client:
        with anyio.fail_after(30):
            while (done := await client.call_tool("check_job", {"job_id": job["id"], "wait": 2})
                   ).structured_content["job"]["status"] == "running":
                pass
        assert done.structured_content["job"]["status"] == "succeeded", text_of(done)
        [image] = done.structured_content["images"]
        data = base64.b64decode((await client.read_resource(image["uri"])).contents[0].blob)
    assert [data] == await served_bytes(replicate_fake) and len(replicate_fake.creates) == 1


async def test_cancel_job_on_another_replica_reaches_the_provider_and_stops_the_owner(
        job_env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    env = {**job_env, "EASEL_JOB_RENEW": "0.2"}
    async with Client(build_server(Settings.from_env(env))) as owner:
        job = (await start_running(owner, replicate_fake))["job"]
        await replicate_fake.wait_until(lambda: len(replicate_fake.creates) == 1, timeout=10)
        with anyio.fail_after(10):
            while not (await read_job(owner, job["uri"]))["units"][0]["task_ids"]:
                await anyio.sleep(0.02)
        async with Client(build_server(Settings.from_env(env))) as other:
            asked = await other.call_tool("cancel_job", {"job_id": job["id"]})
            assert not asked.is_error, text_of(asked)
            pid = replicate_fake.cancels[0]                    # the other replica cancelled the prediction
            # (the owner may cancel it again when it reads the note, if a renewal falls in between)
            assert set(replicate_fake.cancels) == {pid}
            ended = await other.call_tool("check_job", {"job_id": job["id"], "wait": 20})
        assert ended.structured_content["job"]["status"] == "cancelled", text_of(ended)
        assert replicate_fake.predictions[pid]["status"] == "canceled"


async def test_run_replicate_model_is_resumed_by_its_prediction_id(
        job_env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    version = replicate_fake.add_model("acme/painter", output="images", count=2)
    env = {**job_env, "EASEL_JOB_LEASE": "1.5", "EASEL_JOB_RENEW": "0.2"}
    replicate_fake.hold = True
    async with Client(build_server(Settings.from_env(env))) as client:
        first = await client.call_tool("run_replicate_model", {"model_name": f"acme/painter:{version}",
                                                               "model_inputs": {"prompt": "a fox"}})
        job = first.structured_content["job"]
        assert job["status"] == "running" and first.structured_content["status"] == "processing", text_of(first)
        with anyio.fail_after(10):
            while not (await read_job(client, job["uri"]))["units"][0]["task_ids"]:
                await anyio.sleep(0.02)
    replicate_fake.release()
    async with Client(build_server(Settings.from_env(env))) as client:
        with anyio.fail_after(30):
            while (done := await client.call_tool("check_job", {"job_id": job["id"], "wait": 2})
                   ).structured_content["job"]["status"] == "running":
                pass
        body = done.structured_content
        assert body["job"]["status"] == "succeeded" and body["status"] == "succeeded", text_of(done)
        [pid] = replicate_fake.predictions
        assert body["prediction_id"] == pid and len(body["images"]) == 2
        assert [r["uri"] for r in body["result"]] == [i["uri"] for i in body["images"]]
        stored = [base64.b64decode((await client.read_resource(i["uri"])).contents[0].blob) for i in body["images"]]
        record = await read_job(client, job["uri"])
    assert sorted(stored) == sorted(await served_bytes(replicate_fake)) and len(replicate_fake.creates) == 1
    assert record["units"][0]["task_ids"] == [pid] and record["epoch"] == 1


async def test_on_oss_a_job_is_recorded_claimed_and_resumed_through_the_bucket(
        job_env: dict[str, str], replicate_fake: FakeReplicate, tmp_path: Path) -> None:
    """Two servers with nothing local in common share only the bucket: records, the running mark and the
    claim (an OSS create with x-oss-forbid-overwrite) all go through it."""
    from tests.fakes.oss_fake import FakeOSS
    from tests.support.oss import AK, BUCKET, SECRET

    with FakeOSS(access_key_id=AK, access_key_secret=SECRET, buckets=(BUCKET,)).running() as oss:
        env = {**job_env, "EASEL_STORAGE": "oss", "OSS_ACCESS_KEY_ID": AK, "OSS_ACCESS_KEY_SECRET": SECRET,
               "OSS_ENDPOINT": oss.endpoint, "OSS_BUCKET": BUCKET, "OSS_BASE_PATH": "shared",
               "EASEL_JOB_LEASE": "1.5", "EASEL_JOB_RENEW": "0.2", "EASEL_CATALOG": "off"}
        first = {**env, "EASEL_STORAGE_DIR": str(tmp_path / "a")}
        second = {**env, "EASEL_STORAGE_DIR": str(tmp_path / "b")}
        async with Client(build_server(Settings.from_env(first))) as client:
            job = (await start_running(client, replicate_fake))["job"]
            with anyio.fail_after(10):
                while not (await read_job(client, job["uri"]))["units"][0]["task_ids"]:
                    await anyio.sleep(0.02)
            assert oss.get(f"shared/state/jobs/{job['id']}/record.json") is not None
            assert oss.get(f"shared/state/jobs-running/{job['id']}") is not None
        replicate_fake.release()
        async with Client(build_server(Settings.from_env(second))) as client:
            with anyio.fail_after(30):
                while (done := await client.call_tool("check_job", {"job_id": job["id"], "wait": 2})
                       ).structured_content["job"]["status"] == "running":
                    pass
            assert done.structured_content["job"]["status"] == "succeeded", text_of(done)
        assert oss.get(f"shared/state/jobs/{job['id']}/claim-1") is not None
        assert oss.get(f"shared/state/jobs-running/{job['id']}") is None
        assert not (tmp_path / "a" / "state").exists() and not (tmp_path / "b" / "state").exists()
        assert len(replicate_fake.creates) == 1


class HeldDocs(LocalDocs):
    """Local documents whose next write, once ``hold`` is set, waits for ``go`` (a write caught in flight)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.hold, self.held, self.go = False, anyio.Event(), anyio.Event()

    async def write_many(self, docs: dict[str, bytes], *, durable: bool = True) -> None:
        if self.hold:
            self.hold = False
            self.held.set()
            await self.go.wait()
        await super().write_many(docs, durable=durable)


async def test_a_lease_renewal_in_flight_as_the_call_answers_in_time_does_not_bring_its_record_back(
        settings: Settings, tmp_path: Path) -> None:
    """A call that answers in time deletes its record just after answering. A lease renewal whose write is
    still in flight must not land after that delete: the record would stay for ever, with nobody holding
    its id and no running mark that would ever clear it."""
    docs = HeldDocs(tmp_path / "state")

    class Book:
        owner = "this-process"

        def __init__(self, docs: LocalDocs) -> None:
            self.docs = docs

        async def announce(self, job_id: str, *, new_images: bool) -> None:
            raise AssertionError("a call that answered in time is announced to nobody")

    book = Book(docs)
    record = JobRecord(id="j1", tool="generate_image", created=now_iso(), updated=now_iso(), total=1,
                       owner=book.owner, lease_until=time.time() + 60,
                       units=[UnitRecord(provider="replicate", model="flux-schnell")])
    live = LiveJob(book, record, Job(None, "generate_image", 1, state=SimpleNamespace(settings=settings)), [])
    await live.task(0, "p1")                     # the vendor named its task: record and running mark written
    assert await docs.read(record_key("j1")) is not None and await docs.list("jobs-running/") == ["jobs-running/j1"]
    answer = CallToolResult(content=[TextContent(type="text", text="Generated 1 image.")],
                            structured_content={"images": []})

    async def body(job: Job, outcomes: list[WorkOutcome]) -> CallToolResult:
        return answer

    docs.hold = True
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(live.save)             # the lease renewal
            await docs.held.wait()
            tg.start_soon(live.run, body)        # the call ends in time
            await live.ended.wait()
            assert live.result is answer         # it answers at once, not after the renewal's write
            with anyio.move_on_after(1):         # the clean-up runs on (it must wait for the renewal)
                while await docs.list("jobs-running/"):
                    await anyio.sleep(0.01)
            docs.go.set()
    assert await docs.read(record_key("j1")) is None and await docs.list("jobs-running/") == []
