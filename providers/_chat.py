"""The OpenAI-compatible chat completions call shared by DashScope's compatible mode and
ModelScope's API-Inference (private mechanics; each vendor module says where its endpoint is).

``POST {url}`` with ``{"model", "messages", "temperature", "response_format": {"type": "json_object"}}``;
the reply's ``choices[0].message.content`` is the text and ``usage.prompt_tokens`` /
``completion_tokens`` the token counts. Errors go through the vendor's own mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx

from providers.errors import ProviderUnavailable
from providers.types import ChatReply

__all__ = ["openai_chat"]


async def openai_chat(http: httpx.AsyncClient, url: str | httpx.URL, *, api_key: str, model: str,
                      messages: list[dict[str, str]], timeout: float, provider: str,
                      map_errors: Callable[[], AbstractContextManager[None]],
                      cost: Callable[[int | None, int | None], float | None] = lambda i, o: None) -> ChatReply:
    payload: dict[str, Any] = {"model": model, "messages": messages, "temperature": 0.4,
                               "response_format": {"type": "json_object"}}
    with map_errors():
        response = await http.post(url, json=payload, timeout=timeout,
                                   headers={"Authorization": f"Bearer {api_key}"})
        response.raise_for_status()
    try:
        body = response.json()
        text = body["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ProviderUnavailable("The chat model sent a reply without choices[0].message.content.",
                                  provider=provider, status=response.status_code) from None
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    tokens_in = usage.get("prompt_tokens") if isinstance(usage.get("prompt_tokens"), int) else None
    tokens_out = usage.get("completion_tokens") if isinstance(usage.get("completion_tokens"), int) else None
    return ChatReply(text=str(text or ""), model=model, input_tokens=tokens_in, output_tokens=tokens_out,
                     cost_usd=cost(tokens_in, tokens_out))
