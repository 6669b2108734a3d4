"""Fixtures for the interop suite: the real easel-mcp process, spoken to by other people's clients.

Each test starts `python -m server` (stdio) or an HTTP server from the checkout, pointed at the
loopback Replicate fake; the frameworks under test are the real packages, installed by `make test`
(the `test` extra) or, for a framework that pins an older `mcp`, in a cached virtual environment of
its own (tests/interop/venvs.py).
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import _VENDOR_ENV
from tests.support.processes import EASEL

ARTICLE = ("# Tides of the harbour\n\n"
           "At dawn the fishing boats leave the harbour while gulls circle the lighthouse.\n\n"
           "## The market\n\nBy noon the fish market is crowded with traders and baskets of silver sardines.\n")


def base_environ() -> dict[str, str]:
    """os.environ without the developer's EASEL_ settings and vendor keys, for module-scoped servers
    (the suite's clean_environ fixture only covers function scope)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EASEL_") and k not in _VENDOR_ENV}


@pytest.fixture
def stdio_command(env: dict[str, str]) -> tuple[str, list[str], dict[str, str]]:  # noqa: F811
    """command, args, env: how a host's config would start the server on stdio."""
    return EASEL[0], EASEL[1:], {**os.environ, **env}
