"""Spend across stateless HTTP replicas (real easel-mcp processes): the question to the user is asked by one
replica and answered on another (2026-07-28 clients), and the day's ledger is one for both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import ElicitResult

from tests.support.processes import bearer, http_server
from tests.support.results import text_of

pytestmark = pytest.mark.anyio

AUTH = "easel-team-token-6f1d0c2b9a7e4453"


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each request to the next replica in turn, as a load balancer without session affinity does."""

    def __init__(self, bases: list[str]) -> None:
        self.ports = [int(b.rsplit(":", 1)[1]) for b in bases]
        self.sent: list[int] = []
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self.ports[len(self.sent) % len(self.ports)]
        self.sent.append(port)
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def accept(context: Any, params: Any) -> ElicitResult:
    accept.asked.append(params.message)  # type: ignore[attr-defined]
    return ElicitResult(action="accept", content={"approve": True})


def replicas(env: dict[str, str], tmp_path: Path, key_a: str | None = None, key_b: str | None = None) -> Any:
    shared = {**env, "EASEL_STORAGE_DIR": str(tmp_path / "store"), "EASEL_AUTH_TOKEN": AUTH,
              "EASEL_BUDGET_USD_PER_DAY": "0.10", "EASEL_CONFIRM_ABOVE_USD": "0.05"}
    a = {**shared, **({"EASEL_REQUEST_STATE_KEY": key_a} if key_a else {})}
    b = {**shared, **({"EASEL_REQUEST_STATE_KEY": key_b} if key_b else {})}
    return http_server(["--transport", "http", "--stateless"], a), http_server(["--transport", "http", "--stateless"], b)


async def test_one_replica_asks_another_takes_the_answer_and_both_keep_one_ledger(
        env: dict[str, str], tmp_path: Path, replicate_fake: Any) -> None:
    accept.asked = []  # type: ignore[attr-defined]
    one, two = replicas(env, tmp_path)
    with one as a, two as b:
        balancer = RoundRobin([a, b])
        async with httpx2.AsyncClient(transport=balancer, headers=bearer(AUTH), timeout=60) as http, \
                Client(streamable_http_client(f"{a}/mcp", http_client=http), elicitation_callback=accept) as client:
            asked = await client.call_tool("generate_image", {"prompt": "a fox", "count": 2})       # $0.08
            assert not asked.is_error, text_of(asked)
            over = await client.call_tool("generate_image", {"prompt": "a fox"})                    # + $0.04
    assert len(accept.asked) == 1 and "$0.08" in accept.asked[0]  # type: ignore[attr-defined]
    assert set(balancer.sent) == set(balancer.ports)                 # both replicas served this conversation
    assert len(replicate_fake.creates) == 2
    assert over.is_error and "$0.02 remains" in text_of(over)         # the other replica's booking counted


async def test_replicas_with_different_request_state_keys_cannot_take_each_other_s_answers(
        env: dict[str, str], tmp_path: Path, replicate_fake: Any) -> None:
    accept.asked = []  # type: ignore[attr-defined]
    one, two = replicas(env, tmp_path, key_a="a" * 40, key_b="b" * 40)
    with one as a, two as b:
        async with httpx2.AsyncClient(transport=RoundRobin([a, b]), headers=bearer(AUTH), timeout=60) as http, \
                Client(streamable_http_client(f"{a}/mcp", http_client=http), elicitation_callback=accept) as client:
            with pytest.raises(MCPError, match="requestState"):   # the SDK refuses state sealed elsewhere
                await client.call_tool("generate_image", {"prompt": "a fox", "count": 2})
    assert len(accept.asked) == 1 and replicate_fake.creates == []  # type: ignore[attr-defined]
