"""search_images and gallery_link: find stored images, and open the gallery.

search_images reads the catalog (server.catalog): full text over prompts (the
user's and the one sent, Chinese included), filters, newest first, paged. Its
text content lists each image's uri, url and prompt, because several frameworks
hand the model only the text; previews come along only for a few images.
"""

import base64
from collections.abc import Callable
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from providers import Registry, all_specs
from server.catalog import Filters, Page
from server.config import Settings
from server.icons import icons
from server.storage import StorageError
from server.thumbnails import thumbnail
from server.tools._common import clean_text, state_of

__all__ = ["SearchHit", "SearchResult", "register", "search_page", "search_result"]

READS = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
MAX_PREVIEWS = 4


class SearchHit(BaseModel):
    uri: str = Field(description="easel://images/… resource URI; read it for the full-size bytes")
    url: str = Field(description="a link a person can open")
    prompt: str = Field(description="the prompt as sent to the model")
    user_prompt: str | None = Field(default=None, description="the caller's prompt, when it differed")
    model: str | None = None
    provider: str | None = None
    tool: str | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    cost_usd: float | None = Field(default=None, description="estimated cost, where known")
    created: str = Field(description="when it was stored (UTC, ISO 8601)")


class SearchResult(BaseModel):
    images: list[SearchHit]
    total: int = Field(description="how many images match in all")
    next_cursor: str | None = Field(default=None, description="pass as cursor for the next page; null at the end")


def hit_of(row: dict[str, Any], storage: Any, link: Callable[[str], str] | None = None) -> SearchHit:
    """A catalog row as the result shows it; ``link`` is the application state's browser-link builder."""
    image_id = row["id"]
    url = link(image_id) if link is not None and storage.kind == "local" else storage.url_for(image_id)
    user_prompt = row.get("user_prompt") or None
    return SearchHit(uri=f"easel://images/{image_id}", url=url, prompt=row.get("prompt") or "",
                     user_prompt=user_prompt if user_prompt != row.get("prompt") else None,
                     model=row.get("model"), provider=row.get("provider"), tool=row.get("tool"),
                     width=row.get("width"), height=row.get("height"), seed=row.get("seed"),
                     cost_usd=row.get("cost"), created=row["created"])


async def search_page(storage: Any, filters: Filters, limit: int, cursor: str | None) -> Page:
    """One page from the catalog; a ToolError that says what to change otherwise."""
    search = getattr(storage, "search", None)
    if search is None:
        raise ToolError("search_images needs the catalog, which is off on this server (EASEL_CATALOG=off).")
    try:
        return await search(filters, limit, cursor, with_total=True)
    except ValueError as exc:       # a filter the catalog cannot read: the message names it
        raise ToolError(str(exc)) from None
    except StorageError as exc:
        raise ToolError(f"cursor: {exc}" if "cursor" in str(exc) else str(exc)) from None


def describe(hits: list[SearchHit], page: Page, filters: Filters) -> str:
    if not hits:
        return f"No stored images match ({filters.describe()})."
    lines = [f"{page.total} image(s) match ({filters.describe()}); newest first, showing {len(hits)}:"]
    for i, h in enumerate(hits, 1):
        prompt = h.prompt if len(h.prompt) <= 160 else h.prompt[:159] + "…"
        facts = ", ".join(str(x) for x in (h.model, f"{h.width}x{h.height}" if h.width else None,
                                             h.created[:16].replace("T", " ")) if x)
        lines.append(f"{i}. {h.uri}\n   url: {h.url}\n   prompt: {prompt}\n   ({facts})")
    if page.next_cursor:
        lines.append(f"More: call again with cursor={page.next_cursor!r}.")
    return "\n".join(lines)


async def _unknown_names(storage: Any, filters: Filters) -> str:
    """For an empty answer: each model, provider or tool filter no stored image carries, and the names that are."""
    catalog = getattr(storage, "catalog", None)
    asked = {k: v for k in ("model", "provider", "tool") if (v := getattr(filters, k))}
    if catalog is None or not asked:
        return ""
    facets = await anyio.to_thread.run_sync(catalog.facets_sync)
    notes = [f" No image has {k} {v!r}; the stored images have: {', '.join(facets[k]) or 'none'}."
             for k, v in asked.items() if v.lower() not in {f.lower() for f in facets[k]}]
    return "".join(notes)


async def search_result(state: Any, filters: Filters, limit: int, cursor: str | None, *,
                        previews: bool) -> CallToolResult:
    """The search_images answer (browse_images gives the same one to hosts without apps)."""
    page = await search_page(state.storage, filters, limit, cursor)
    hits = [hit_of(row, state.storage, state.links) for row in page.rows]
    result = SearchResult(images=hits, total=page.total or 0, next_cursor=page.next_cursor)
    text = describe(hits, page, filters) + ("" if hits else await _unknown_names(state.storage, filters))
    content: list[Any] = [TextContent(type="text", text=text)]
    content += [ResourceLink(type="resource_link", uri=h.uri, name=h.uri.rsplit("/", 1)[-1],
                             mime_type=row.get("mime_type"), description=h.prompt[:200])
                for h, row in zip(hits, page.rows, strict=True)]
    if previews and state.settings.results.preview and len(hits) <= MAX_PREVIEWS:
        for h in hits:
            try:
                thumb = await thumbnail(state.storage, h.uri.rsplit("/", 1)[-1])
            except Exception:  # the image's record is there but its bytes are not readable: no preview
                continue
            content.append(ImageContent(type="image", data=base64.b64encode(thumb).decode(), mime_type="image/jpeg"))
    return CallToolResult(content=content, structured_content=result.model_dump())


def register(mcp: MCPServer, settings: Settings, registry: Registry) -> None:
    models = sorted({s.name for s in all_specs()})
    providers = sorted({s.provider for s in all_specs()})

    @mcp.tool(
        name="search_images",
        title="Search stored images",
        annotations=READS,
        icons=icons("search"),
        description=(
            "Find images made earlier, newest first: full-text search over their prompts (English or "
            "Chinese; the caller's prompt and the prompt as sent), with optional filters by model, provider, "
            "tool, date range and size. Each hit has its easel://images/… URI (pass it to edit_image or read "
            "it), a url a person can open, and its prompt. Use it for requests like 'the lighthouse picture "
            "from last week'."),
    )
    async def search_images(
        ctx: Context,
        query: Annotated[str | None, Field(max_length=500, description=(
            "Words to find in the prompts, e.g. 'lighthouse dusk' or '灯塔'. Every word must match; "
            "leave it out to list everything."))] = None,
        model: Annotated[str | None, Field(max_length=100, description=(
            "Only images made by this model, e.g. " + ", ".join(repr(m) for m in models[:3]) + "."))] = None,
        provider: Annotated[str | None, Field(max_length=40, description=(
            "Only images from this provider: " + ", ".join(providers) + "."))] = None,
        tool: Annotated[str | None, Field(max_length=40, description=(
            "Only images made by this tool: generate_image, edit_image, illustrate_content, "
            "run_replicate_model."))] = None,
        since: Annotated[str | None, Field(max_length=40, description=(
            "Made on or after this date (YYYY-MM-DD, UTC) or ISO time."))] = None,
        until: Annotated[str | None, Field(max_length=40, description=(
            "Made on or before this date (YYYY-MM-DD, the whole day, UTC) or ISO time."))] = None,
        size: Annotated[str | None, Field(max_length=20, description=(
            "Shape (square, landscape, portrait, wide, tall) or exact pixels WIDTHxHEIGHT."))] = None,
        limit: Annotated[int, Field(ge=1, le=50, description="How many images per page (1-50).")] = 10,
        cursor: Annotated[str | None, Field(max_length=200, description=(
            "next_cursor of the previous page, to get the next one."))] = None,
        previews: Annotated[bool, Field(description=(
            f"Attach a small preview of each image (only when the page has at most {MAX_PREVIEWS} images)."
        ))] = True,
    ) -> Annotated[CallToolResult, SearchResult]:
        filters = Filters(query=clean_text(query, "query"), model=clean_text(model, "model"),
                          provider=clean_text(provider, "provider"), tool=clean_text(tool, "tool"),
                          since=clean_text(since, "since"), until=clean_text(until, "until"),
                          size=clean_text(size, "size"))
        return await search_result(state_of(ctx), filters, limit, clean_text(cursor, "cursor"), previews=previews)

    @mcp.tool(
        name="gallery_link",
        title="Link to the image gallery",
        annotations=READS,
        icons=icons("gallery"),
        description=(
            "A signed link to this server's image gallery: a web page where the user can browse, search, "
            "download and delete every stored image. Give the link to the user; it expires."),
    )
    async def gallery_link(ctx: Context) -> str:
        make = getattr(mcp, "gallery_link", None)
        if make is None:   # stdio: no web server in this process
            return ("This server speaks MCP over stdio and serves no web pages itself. To browse the images, "
                    "run `easel-mcp gallery` in a terminal on this machine: it serves the gallery on "
                    "127.0.0.1 and prints a link to open. (search_images finds images from here.)")
        hours = settings.gallery.link_ttl / 3600
        return (f"Gallery: {make()}\nOpen it in a browser; the link works for {hours:g} hour(s). It shows every "
                "stored image with its prompt, and lets you search, download, copy URIs and delete.")
