"""Jobs across real easel-mcp processes sharing one store: a job survives the SIGKILL of the process
running it (after its call answered with a handle, or before) and is finished by the next server
(over stdio), paid for once and stored once; and a stateless HTTP replica answers check_job for a
job another replica runs."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters

from tests.fakes.replicate_fake import FakeReplicate
from tests.support.processes import EASEL, easel, http_server
from tests.support.results import files_in, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def shared_env(env: dict[str, str]) -> dict[str, str]:
    """Short leases so an orphan is found within a second or two; return early at 0.5 s."""
    return {**env, "EASEL_RETURN_AFTER": "0.5", "EASEL_JOB_LEASE": "1.5", "EASEL_JOB_RENEW": "0.3"}


async def served(fake: FakeReplicate) -> list[bytes]:
    async with httpx.AsyncClient() as http:
        return [(await http.get(p["output"])).content for p in fake.predictions.values()]


def record_of(env: dict[str, str], job_id: str) -> dict[str, Any]:
    path = Path(env["EASEL_STORAGE_DIR"]) / "state" / "jobs" / job_id / "record.json"
    return json.loads(path.read_text()) if path.exists() else {}


def stored_images(env: dict[str, str]) -> list[Path]:
    return [p for p in files_in(Path(env["EASEL_STORAGE_DIR"])) if p.suffix in (".jpg", ".png", ".webp")]


async def until(check: Any, timeout: float = 20) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.05)


async def test_a_job_survives_the_death_of_its_process_and_the_next_server_finishes_it(
        shared_env: dict[str, str], replicate_fake: FakeReplicate, tmp_path: Path) -> None:
    replicate_fake.hold = True
    with easel(["--transport", "http"], shared_env, tmp_path / "first.log") as (proc, base):
        async with Client(f"{base}/mcp") as client:
            first = await client.call_tool("generate_image", {"prompt": "a lighthouse"})
        job = first.structured_content["job"]
        assert job["status"] == "running", text_of(first)
        await until(lambda: record_of(shared_env, job["id"]).get("units", [{}])[0].get("task_ids"))
        os.kill(proc.pid, signal.SIGKILL)         # mid-job: the prediction exists, nothing is stored
        proc.wait(10)
    assert len(replicate_fake.creates) == 1 and stored_images(shared_env) == []
    replicate_fake.release()                      # Replicate finishes it while no server is running

    params = StdioServerParameters(command=EASEL[0], args=EASEL[1:], env={**os.environ, **shared_env})
    async with Client(params) as client:
        deadline = time.monotonic() + 30
        while True:                               # the orphan's lease lapses; the new server claims it
            result = await client.call_tool("check_job", {"job_id": job["id"], "wait": 5})
            status = result.structured_content["job"]["status"]
            if status != "running" or time.monotonic() > deadline:
                break
        assert status == "succeeded", text_of(result)
        [image] = result.structured_content["images"]
        data = base64.b64decode((await client.read_resource(image["uri"])).contents[0].blob)
    assert [data] == await served(replicate_fake)  # byte-identical to what was paid for
    assert len(replicate_fake.creates) == 1       # paid once: fetched by id, not submitted again
    assert len(stored_images(shared_env)) == 1   # stored once
    record = record_of(shared_env, job["id"])
    assert record["status"] == "succeeded" and record["epoch"] == 1 and record["units"][0]["images"] == [image["uri"]
                                                                                                       .rsplit("/", 1)[-1]]


async def test_a_stateless_replica_answers_for_a_job_another_replica_runs(
        shared_env: dict[str, str], replicate_fake: FakeReplicate) -> None:
    replicate_fake.hold = True
    with http_server(["--transport", "http", "--stateless"], shared_env) as a, \
            http_server(["--transport", "http", "--stateless"], shared_env) as b:
        async with Client(f"{a}/mcp") as on_a:
            job = (await on_a.call_tool("generate_image", {"prompt": "a lighthouse"})).structured_content["job"]
        async with Client(f"{b}/mcp") as on_b:
            running = await on_b.call_tool("check_job", {"job_id": job["id"], "wait": 0})
            assert running.structured_content["job"]["status"] == "running" and "check_job" in text_of(running)
            replicate_fake.release()
            done = await on_b.call_tool("check_job", {"job_id": job["id"], "wait": 30})
            body = done.structured_content
            assert body["job"]["status"] == "succeeded", text_of(done)
            [image] = body["images"]
            data = base64.b64decode((await on_b.read_resource(image["uri"])).contents[0].blob)
            assert image["uri"] in text_of(done) and image["url"] in text_of(done)
            record = json.loads((await on_b.read_resource(job["uri"])).contents[0].text)
    assert [data] == await served(replicate_fake) and len(replicate_fake.creates) == 1
    assert record["status"] == "succeeded" and record["epoch"] == 0   # replica A kept it: nobody claimed it


async def test_a_call_killed_before_it_answers_leaves_its_job_to_the_next_server(
        shared_env: dict[str, str], replicate_fake: FakeReplicate, tmp_path: Path) -> None:
    """Until the call answers, its record and running mark are renamed into place without fsync: that survives
    the death of the process (the kernel keeps what was written), which is all they are for until then. Killed
    after the vendor named its task and before the call answered, the job is found by the next server, which
    fetches the prediction by id and stores it: paid once, stored once."""
    env = {**shared_env, "EASEL_RETURN_AFTER": "120"}   # the call would wait: nobody ever holds the job's id
    running = Path(env["EASEL_STORAGE_DIR"]) / "state" / "jobs-running"
    replicate_fake.hold = True
    outcome: list[BaseException] = []

    async def call(base: str) -> None:
        try:
            async with Client(f"{base}/mcp") as client:
                await client.call_tool("generate_image", {"prompt": "a lighthouse"})
        except Exception as exc:   # the server died under the call
            outcome.append(exc)

    with easel(["--transport", "http", "--stateless"], env, tmp_path / "first.log") as (proc, base):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, base)
            await until(lambda: running.is_dir() and any(running.iterdir()))
            [mark] = running.iterdir()
            await until(lambda: record_of(env, mark.name).get("units", [{}])[0].get("task_ids"))
            os.kill(proc.pid, signal.SIGKILL)     # the call has not answered: no fsync has happened
            proc.wait(10)
            await until(lambda: bool(outcome))   # the call failed with the connection
    assert len(replicate_fake.creates) == 1 and stored_images(env) == []
    replicate_fake.release()

    params = StdioServerParameters(command=EASEL[0], args=EASEL[1:], env={**os.environ, **env})
    async with Client(params) as client:
        with anyio.fail_after(60):
            while (result := await client.call_tool("check_job", {"job_id": mark.name, "wait": 5})
                   ).structured_content["job"]["status"] == "running":
                pass
        assert result.structured_content["job"]["status"] == "succeeded", text_of(result)
        [image] = result.structured_content["images"]
        data = base64.b64decode((await client.read_resource(image["uri"])).contents[0].blob)
    assert [data] == await served(replicate_fake) and len(replicate_fake.creates) == 1
    assert len(stored_images(env)) == 1 and record_of(env, mark.name)["epoch"] == 1
