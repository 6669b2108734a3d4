"""Shared state documents (job records, the spend ledger) in the local store and in OSS.

Both backends are driven for real: files on disk, and the real oss2 client against FakeOSS,
which answers ``x-oss-forbid-overwrite`` with 409 FileAlreadyExists as OSS does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from server.config import Settings
from server.storage import StorageError
from server.storage.docs import DocStore, LocalDocs, OssDocs, docs_for
from server.storage.local import LocalStorage
from server.storage.oss import make_oss_storage
from tests.fakes.oss_fake import FakeOSS
from tests.support.oss import AK, BUCKET, SECRET

pytestmark = pytest.mark.anyio


@pytest.fixture
def fake() -> Iterator[FakeOSS]:
    with FakeOSS(access_key_id=AK, access_key_secret=SECRET, buckets=(BUCKET,)).running() as f:
        yield f


def _oss_settings(fake: FakeOSS, tmp_path: Path) -> Settings:
    return Settings.from_env({"EASEL_STORAGE": "oss", "OSS_ACCESS_KEY_ID": AK, "OSS_ACCESS_KEY_SECRET": SECRET,
                              "OSS_ENDPOINT": fake.endpoint, "OSS_BUCKET": BUCKET, "OSS_BASE_PATH": "team",
                              "EASEL_STORAGE_DIR": str(tmp_path), "EASEL_OSS_BACKOFF": "0.01"})


@pytest.fixture(params=["local", "oss"])
async def docs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocStore]:
    if request.param == "local":
        yield docs_for(LocalStorage(tmp_path), tmp_path)
        return
    with FakeOSS(access_key_id=AK, access_key_secret=SECRET, buckets=(BUCKET,)).running() as f:
        yield docs_for(make_oss_storage(_oss_settings(f, tmp_path).storage.oss, tmp_path), tmp_path)


async def test_write_read_replace_delete(docs: DocStore) -> None:
    assert await docs.read("jobs/j1.json") is None
    await docs.write("jobs/j1.json", b'{"status":"running"}')
    await docs.write("jobs/j1.json", b'{"status":"succeeded"}')
    assert await docs.read("jobs/j1.json") == b'{"status":"succeeded"}'
    await docs.delete("jobs/j1.json")
    await docs.delete("jobs/j1.json")     # absent: no error
    assert await docs.read("jobs/j1.json") is None


async def test_write_many_and_delete_many(docs: DocStore) -> None:
    """A job's record and running mark go in one call (not fsynced before the call answers), and go together."""
    await docs.write_many({"jobs/j3/record.json": b"{}", "jobs-running/j3": b"owner"}, durable=False)
    assert await docs.read("jobs/j3/record.json") == b"{}"
    assert await docs.list("jobs-running/") == ["jobs-running/j3"]
    await docs.write_many({"jobs/j3/record.json": b'{"done":1}'}, durable=True)
    assert await docs.read("jobs/j3/record.json") == b'{"done":1}'
    await docs.delete_many(["jobs-running/j3", "jobs/j3/record.json", "jobs/absent.json"])
    assert await docs.read("jobs/j3/record.json") is None
    assert await docs.list("jobs-running/") == []


async def test_a_durable_local_write_flushes_the_files_and_their_directories(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a caller holds a job's id, its record and running mark must survive a power cut: the files are
    fsynced and so are the directories their renames went into (the rename is lost otherwise). Before that,
    nothing is fsynced: a rename survives the process's death without."""
    docs = LocalDocs(tmp_path)
    synced: list[tuple[int, int]] = []
    fsync = os.fsync

    def watched(fd: int) -> None:
        st = os.fstat(fd)
        synced.append((st.st_dev, st.st_ino))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", watched)
    await docs.write_many({"jobs/j4/record.json": b"{}", "jobs-running/j4": b"owner"}, durable=False)
    assert synced == []
    await docs.write_many({"jobs/j4/record.json": b'{"done":1}', "jobs-running/j4": b"owner"}, durable=True)
    ids = {(st.st_dev, st.st_ino) for st in (os.stat(tmp_path / p) for p in (
        "jobs/j4/record.json", "jobs-running/j4", "jobs/j4", "jobs-running"))}
    assert set(synced) == ids and len(synced) == 4


async def test_create_only_once_even_when_raced(docs: DocStore) -> None:
    wins: list[bytes] = []

    async def claim(n: int) -> None:
        if await docs.create("jobs/j2/claim-1", f"owner-{n}".encode()):
            wins.append(f"owner-{n}".encode())

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(claim, n)
    assert len(wins) == 1
    assert await docs.read("jobs/j2/claim-1") == wins[0]
    assert await docs.create("jobs/j2/claim-2", b"x") is True


async def test_list_by_prefix_sorted(docs: DocStore) -> None:
    for key in ("ledger/2026-12-01/b.json", "ledger/2026-12-01/a.json", "ledger/2026-12-02/c.json",
                "jobs/x.json"):
        assert await docs.create(key, b"{}")
    assert await docs.list("ledger/2026-12-01/") == ["ledger/2026-12-01/a.json", "ledger/2026-12-01/b.json"]
    assert await docs.list("ledger/") == ["ledger/2026-12-01/a.json", "ledger/2026-12-01/b.json",
                                          "ledger/2026-12-02/c.json"]
    assert await docs.list("jobs/x") == ["jobs/x.json"]
    assert await docs.list("nothing/") == []


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/../b", "sp ace", "", "a/" + "x" * 200])
async def test_bad_keys_are_refused(docs: DocStore, key: str) -> None:
    with pytest.raises(StorageError, match="invalid state document key"):
        await docs.write(key, b"x")


async def test_local_documents_live_in_the_store_and_leave_no_temporary_files(tmp_path: Path) -> None:
    docs = docs_for(LocalStorage(tmp_path / "images"), tmp_path / "unused")
    assert isinstance(docs, LocalDocs)
    await docs.write("jobs/a.json", b"1")
    await docs.create("jobs/a.json", b"2")
    assert (tmp_path / "images" / "state" / "jobs" / "a.json").read_bytes() == b"1"
    assert sorted(os.listdir(tmp_path / "images" / "state" / "jobs")) == ["a.json"]


async def test_oss_documents_go_to_the_bucket_under_the_base_path(fake: FakeOSS, tmp_path: Path) -> None:
    store = make_oss_storage(_oss_settings(fake, tmp_path).storage.oss, tmp_path)   # OSS with local fallback
    docs = docs_for(store, tmp_path)
    assert isinstance(docs, OssDocs)
    assert await docs.create("ledger/2026-12-01/b1.json", b'{"usd":0.04}')
    assert fake.get("team/state/ledger/2026-12-01/b1.json").data == b'{"usd":0.04}'
    assert not (tmp_path / "state").exists()     # shared state never falls back to local disk
    assert await docs.create("ledger/2026-12-01/b1.json", b"again") is False
    assert fake.get("team/state/ledger/2026-12-01/b1.json").data == b'{"usd":0.04}'


def test_two_processes_racing_to_create_on_local_disk(tmp_path: Path) -> None:
    code = (
        "import anyio, sys\n"
        "from pathlib import Path\n"
        "from server.storage.docs import LocalDocs\n"
        "docs = LocalDocs(Path(sys.argv[1]))\n"
        "won = sum(anyio.run(docs.create, f'claims/{i}', sys.argv[2].encode()) for i in range(200))\n"
        "print(won)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), name], stdout=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    wins = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(wins) == 200                      # every claim won exactly once across both processes
    owners = {(tmp_path / "claims" / str(i)).read_text() for i in range(200)}
    assert owners <= {"a", "b"}
