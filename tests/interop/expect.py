"""What the issue requires a model to see in a tool's text content, checked the same way for every client.

LangChain and the OpenAI Agents SDK (by default) hand the model only the text blocks of a result, so
the text must carry what the model needs to act on: each image's easel:// URI and its openable url,
and each prompt as sent. These take the structured content the server returned (the reference) and
the text a framework produced (what its model would read).
"""

from __future__ import annotations

from typing import Any


def missing_images(text: str, structured: dict[str, Any]) -> list[str]:
    """The URIs and URLs of ``structured['images']`` that do not appear in ``text``."""
    wanted = [value for image in structured.get("images", []) for value in (image["uri"], image["url"])]
    return [value for value in wanted if value not in text]


def missing_prompts(text: str, structured: dict[str, Any]) -> list[str]:
    """The planned prompts of an illustrate_content result that do not appear in ``text``."""
    prompts = [item["prompt"] for item in structured.get("illustrations", [])]
    assert prompts, f"the structured content has no planned prompts: {structured}"
    return [prompt for prompt in prompts if prompt not in text]
