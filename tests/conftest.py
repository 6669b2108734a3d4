"""Suite-wide fixtures: anyio backend, a clean environment, no real network, and the loopback
Replicate fake with a server pointed at it (``replicate_fake``, ``env``, ``settings``, ``server``)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.app import build_server
from server.config import Settings
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.replicate import FAST, TOKEN


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


_VENDOR_ENV = (
    "REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", "REPLICATE_POLL_INTERVAL",
    "MODELSCOPE_API_KEY", "MODELSCOPE_BASE_URL", "DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL",
    "IDEOGRAM_API_KEY", "IDEOGRAM_BASE_URL",
    "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_ENDPOINT", "OSS_BUCKET",
    "OSS_BASE_PATH", "OSS_CUSTOM_DOMAIN", "OSS_REGION",
)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's keys or settings."""
    for name in list(os.environ):
        if name.startswith("EASEL_") or name in _VENDOR_ENV:
            monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address, *args, **kwargs):  # type: ignore[no-untyped-def]
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
        if not (host.startswith("127.") or host in ("::1", "localhost")):
            raise OSError(f"test tried to reach {host!r}: tests stay on loopback")
    return _real_connect(self, address, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def no_network() -> None:
    """A guard in the spirit of ALLOW_MODEL_REQUESTS=False: only loopback is reachable."""
    socket.socket.connect = _loopback_only  # type: ignore[method-assign]


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
