"""Fixtures for tool tests: a fake Replicate on loopback and a server pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.app import build_server
from server.config import Settings
from tests.fakes.replicate_fake import FakeReplicate

TOKEN = "r8_secret_test_token_0123456789"

FAST = {
    "EASEL_POLL_INTERVAL": "0.01", "EASEL_POLL_MAX": "0.05", "EASEL_WAIT_WINDOW": "1",
    "EASEL_PROGRESS_INTERVAL": "0.05", "EASEL_MAX_RETRIES": "2",
}


@pytest.fixture
def replicate_fake() -> Iterator[FakeReplicate]:
    with FakeReplicate(token=TOKEN).running() as fake:
        yield fake


@pytest.fixture
def env(tmp_path: Path, replicate_fake: FakeReplicate) -> dict[str, str]:
    return {"EASEL_STORAGE_DIR": str(tmp_path / "images"), "REPLICATE_API_TOKEN": TOKEN,
            "REPLICATE_BASE_URL": replicate_fake.url, **FAST}


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


@pytest.fixture
def server(settings: Settings):  # type: ignore[no-untyped-def]
    return build_server(settings)
