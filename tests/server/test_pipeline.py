"""The shape of the house: one pipeline for every image tool, links from the application state, no circles.

The import checks read the source (every import, also those inside functions; only ``if TYPE_CHECKING:``
blocks are left out, since they never run), so a circle is caught before it bites at start-up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from mcp import Client

from server.app import build_server
from server.config import Settings
from server.links import LinkSigner
from tests.fakes.replicate_fake import FakeReplicate
from tests.support.results import text_of

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module name an import statement in ``path`` names (``from a import b`` names a and a.b)."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module and not node.level:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph(package: str) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in (ROOT / package).rglob("*.py")}
    return {name: {d for d in _imports(path) if d in modules and d != name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                found.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_server() -> None:
    graph = _graph("server")
    assert "server.jobs" in graph and "server.auth" in graph and "server.previews" in graph
    assert _cycles(graph) == []


def test_imports_run_server_to_providers_only() -> None:
    for path in (ROOT / "providers").rglob("*.py"):
        assert not {d for d in _imports(path) if d == "server" or d.startswith("server.")}, path


def test_the_route_of_an_image_runs_one_way() -> None:
    """download -> check -> store + preview -> result: result shaping and previews never reach back into the
    pipeline, and the tools reach providers only through it (no tool stores or previews on its own)."""
    graph = _graph("server")
    assert not {d for d in graph["server.results"] | graph["server.previews"] if d.startswith("server.")} - {
        "server.config", "server.images", "server.storage"}
    for tool in ("generate", "edit", "illustrate", "run_model"):
        deps = graph[f"server.tools.{tool}"]
        assert "server.jobs" in deps and "server.previews" not in deps, tool
        assert "server.storage.local" not in deps and "server.images.make_preview" not in deps, tool


@pytest.mark.parametrize("tool", ["generate_image", "run_replicate_model"])
async def test_links_come_from_the_application_state(settings: Settings, replicate_fake: FakeReplicate,
                                                     tool: str) -> None:
    """Built with a link signer (as the HTTP transports build it), every tool's result carries a signed
    browser link that the signer accepts; built without one, the storage's own file:// URL."""
    signer = LinkSigner(b"k" * 32, "https://img.example.com", ttl=3600)
    args = ({"prompt": "a fox"} if tool == "generate_image" else
            {"model_name": "black-forest-labs/flux-1.1-pro", "model_inputs": {"prompt": "a fox"}})
    urls = []
    for links in (signer, None):
        async with Client(build_server(settings, links=links)) as client:
            result = await client.call_tool(tool, args)
        assert not result.is_error, text_of(result)
        [image] = result.structured_content["images"]
        assert image["url"] in text_of(result)
        urls.append(image["url"])
    signed, plain = urls
    image_id = signed.removeprefix("https://img.example.com/images/").split("?")[0]
    assert signed.startswith("https://img.example.com/images/") and plain.startswith("file://")
    exp, sig = (part.split("=", 1)[1] for part in signed.split("?", 1)[1].split("&"))
    assert signer.verify(image_id, exp, sig) is None
    assert signer.verify(image_id, exp, "0" * 64) == "invalid"


async def test_search_hits_carry_links_from_the_application_state(settings: Settings,
                                                                  replicate_fake: FakeReplicate) -> None:
    signer = LinkSigner(b"k" * 32, "https://img.example.com", ttl=3600)
    async with Client(build_server(settings, links=signer)) as client:
        made = await client.call_tool("generate_image", {"prompt": "a lighthouse at dusk"})
        found = await client.call_tool("search_images", {"query": "lighthouse"})
    assert not found.is_error, text_of(found)
    [hit] = found.structured_content["images"]
    assert hit["uri"] == made.structured_content["images"][0]["uri"]
    assert hit["url"].startswith("https://img.example.com/images/") and hit["url"] in text_of(found)


async def test_run_replicate_model_tells_clients_the_resource_list_changed(server) -> None:
    heard: list[object] = []

    async def on_message(message: object) -> None:
        heard.append(message)

    async with Client(server, mode="legacy", message_handler=on_message) as client:
        result = await client.call_tool("run_replicate_model", {"model_name": "black-forest-labs/flux-1.1-pro",
                                                                "model_inputs": {"prompt": "a fox"}})
        assert not result.is_error and result.structured_content["images"]
    assert any("ResourceListChanged" in type(getattr(m, "root", m)).__name__ or
               "resources/list_changed" in str(m) for m in heard)
