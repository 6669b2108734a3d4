"""langchain-mcp-adapters against the real server, from a virtual environment of its own (it pins mcp<2).

LangChain gives a model the ToolMessage's content blocks; the structured content goes to the
artifact, which the model never sees. So the text blocks must carry the images' URIs and urls and a
dry run's prompts. Every tool must also convert with LangChain's convert_to_openai_tool.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.replicate_fake import FakeReplicate
from tests.interop.conftest import ARTICLE, base_environ
from tests.interop.expect import missing_images, missing_prompts
from tests.interop.venvs import framework_python
from tests.support.replicate import FAST, TOKEN

HERE = Path(__file__).resolve().parent
REQUIREMENTS = ["langchain-mcp-adapters==0.3.2", "langchain-core>=1.3,<2"]


@pytest.fixture(scope="module")
def langchain_python() -> Path:
    return framework_python("langchain", REQUIREMENTS)


@pytest.fixture(scope="module")
def langchain_run(langchain_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One run of the client (it starts the server once), shared by the tests below."""
    tmp = tmp_path_factory.mktemp("langchain")
    article = tmp / "article.md"
    article.write_text(ARTICLE, encoding="utf-8")
    with FakeReplicate(token=TOKEN).running() as fake:
        env = {"EASEL_STORAGE_DIR": str(tmp / "images"), "REPLICATE_API_TOKEN": TOKEN,
               "REPLICATE_BASE_URL": fake.url, **FAST}
        proc = subprocess.run([str(langchain_python), str(HERE / "langchain_client.py"), sys.executable, str(article)],
                              env={**base_environ(), **env}, cwd=HERE.parents[1], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    yield json.loads(proc.stdout)


def text_blocks(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "\n".join(block["text"] for block in content if isinstance(block, dict) and block.get("type") == "text")


@pytest.mark.timeout(600)  # covers a first-time install of the framework's venv (≤ 300 s)
def test_every_tool_converts_with_convert_to_openai_tool(langchain_run: dict[str, Any]) -> None:
    tools = langchain_run["tools"]
    assert {"generate_image", "illustrate_content", "run_replicate_model"} <= set(tools)
    failed = {name: result["openai"]["error"] for name, result in tools.items() if "error" in result["openai"]}
    assert failed == {}
    parameters = tools["run_replicate_model"]["openai"]["schema"]["function"]["parameters"]
    assert "model_inputs" in parameters["properties"]


@pytest.mark.timeout(600)
def test_the_text_a_langchain_tool_returns_carries_the_image_urls(langchain_run: dict[str, Any]) -> None:
    message = langchain_run["generate_image"]
    assert message["status"] == "success", message
    structured = message["artifact"]["structured_content"]
    assert len(structured["images"]) == 2
    text = text_blocks(message)
    assert missing_images(text, structured) == [], text


@pytest.mark.timeout(600)
def test_with_resource_links_off_no_block_points_a_model_at_an_easel_uri(langchain_run: dict[str, Any]) -> None:
    """LangChain turns each resource_link into an image block whose url is easel://…, which no model
    API can fetch; docs/clients.md gives EASEL_RESOURCE_LINKS=off for LangChain. With it, the
    blocks are the text (with every URI and url) and the previews as inline data."""
    message = langchain_run["generate_image_links_off"]
    assert message["status"] == "success", message
    blocks = [block for block in message["content"] if block.get("type") != "text"]
    assert [block for block in blocks if "easel://" in json.dumps(block)] == []
    assert [(block["type"], bool(block.get("base64"))) for block in blocks] == [("image", True)] * 2
    assert missing_images(text_blocks(message), message["artifact"]["structured_content"]) == []


@pytest.mark.timeout(600)
def test_the_text_a_langchain_tool_returns_carries_the_dry_run_prompts(langchain_run: dict[str, Any]) -> None:
    message = langchain_run["dry_run"]
    text = text_blocks(message)
    assert missing_prompts(text, message["artifact"]["structured_content"]) == [], text
