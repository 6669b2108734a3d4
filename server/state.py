"""The lifespan state every tool call runs with: settings, storage, the shared documents beside it
(server.storage.docs), the provider registry, the browser-link builder (HTTP transports) and the
guarded HTTP client for reference images. Tools reach it through ``server.tools._common.state_of``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from providers import Registry
from providers._netguard import guarded_client
from server.config import Settings
from server.storage import Storage
from server.storage.docs import DocStore

__all__ = ["AppState"]


@dataclass
class AppState:
    settings: Settings
    storage: Storage
    registry: Registry
    docs: DocStore                  # shared documents in the store: job records, the spend ledger
    links: Callable[[str], str] | None = None   # image id -> signed browser link (HTTP transports); else None
    _http: httpx.AsyncClient | None = None
    # this process's jobs: a server.jobbook.JobBook, set by the lifespan. Typed loosely so that the state
    # (a lower layer, which jobbook itself takes) does not import back up from it.
    jobs: Any = None

    @property
    def http(self) -> httpx.AsyncClient:
        """Fetches reference images given as URLs, through the fetch guard (providers/_netguard.py). Made
        on first use: building its TLS context costs ~0.1 s, which start-up should not pay (bench/run.py)."""
        if self._http is None:
            self._http = guarded_client(self.settings.fetch, timeout=httpx.Timeout(30.0, connect=10.0))
        return self._http
