"""Loopback fake of the OpenAI-compatible chat completions API, as DashScope's compatible mode
(``/compatible-mode/v1/chat/completions``, beside ``/api/v1`` on the same host) and ModelScope's
API-Inference (``/v1/chat/completions``) serve it.

* Bearer key, else 401 ``{"error": {"message", "type": "invalid_request_error", "code": "invalid_api_key"}}``.
* JSON body with ``model`` and a non-empty ``messages`` list, else 400.
* Reply: ``{"id", "object": "chat.completion", "model", "choices": [{"index": 0, "message":
  {"role": "assistant", "content"}, "finish_reason": "stop"}], "usage": {"prompt_tokens",
  "completion_tokens", "total_tokens"}}``.

Knobs: ``reply`` (a string, or a function of the request body returning one), ``delay``
(seconds before answering, for timeouts), ``status`` (answer with this HTTP error).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes._server import LoopbackServer, Waitable

__all__ = ["ChatFake", "scenes_reply"]


def scenes_reply(*scenes: str) -> str:
    return json.dumps({"scenes": list(scenes)}, ensure_ascii=False)


class ChatFake(Waitable):
    def __init__(self, api_key: str = "chat-test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.reply: str | Callable[[dict[str, Any]], str] = scenes_reply("a lighthouse on a cliff at dusk")
        self.delay = 0.0
        self.status: int | None = None
        self.requests: list[tuple[str, dict[str, Any]]] = []   # (path, body)
        self.url = ""

    async def _chat(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                           "code": "invalid_api_key"}}, status_code=401)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("model") or not body.get("messages"):
            return JSONResponse({"error": {"message": "model and messages are required",
                                           "type": "invalid_request_error", "code": "invalid_parameter"}},
                                status_code=400)
        with self.cond:
            self.requests.append((request.url.path, body))
            self.cond.notify_all()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status is not None:
            return JSONResponse({"error": {"message": "injected", "type": "server_error", "code": "internal"}},
                                status_code=self.status)
        text = self.reply(body) if callable(self.reply) else self.reply
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text) // 4,
                      "total_tokens": prompt_tokens + len(text) // 4}})

    @contextmanager
    def running(self) -> Iterator[ChatFake]:
        app = Starlette(routes=[Route("/compatible-mode/v1/chat/completions", self._chat, methods=["POST"]),
                                Route("/v1/chat/completions", self._chat, methods=["POST"])])
        server = LoopbackServer(app)
        with server.running():
            self.url = server.url
            yield self
