"""Builds the MCP server: lifespan state, tools, and the easel:// resources.

``build_server(settings)`` is the one entry point: the CLI runs it on a
transport, tests connect to it in memory. The lifespan owns the provider
registry (and so every vendor client); storage is built with the server, since
listing resources has no request context.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.types import CallToolResult, ListResourcesResult, Resource, ResourceLink, ResourceTemplate
from pydantic import ValidationError

from providers import Registry
from providers.errors import ImageGenError
from server.auth import auth_options
from server.config import Settings
from server.icons import icons
from server.job_records import JOB_PREFIX, load_record
from server.jobbook import CALL_STARTED, JobBook
from server.links import LinkSigner
from server.spend import request_state_security
from server.state import AppState
from server.storage import URI_PREFIX, ImageNotFound, Storage, StorageError
from server.storage.docs import DocStore, docs_for
from server.storage.local import LocalStorage

__all__ = ["AppState", "EaselServer", "build_server", "make_storage", "with_catalog"]

log = logging.getLogger("easel")
call_log = logging.getLogger("easel.calls")   # one line per tool call

INSTRUCTIONS = """easel-mcp makes images. generate_image turns a prompt into 1-4 images; \
edit_image changes or combines reference images; illustrate_content turns a text into a set of \
matching illustrations; run_replicate_model runs any Replicate model. Every image is stored and \
returned as an easel://images/... resource link (read it for full size), a url a person can open, \
and a small preview. Read easel://images/{id}/metadata for the prompt, model and seed."""


def make_storage(settings: Settings) -> Storage:
    if settings.storage.backend == "oss":
        from server.storage.oss import make_oss_storage  # imported only when configured

        return make_oss_storage(settings.storage.oss, settings.storage.dir)
    local = LocalStorage(settings.storage.dir)
    local.check_writable()
    return local


def with_catalog(store: Storage, settings: Settings) -> Storage:
    """The store wrapped with its searchable catalog (server.catalog), unless EASEL_CATALOG=off."""
    if not settings.gallery.catalog or not hasattr(store, "record_months"):
        return store
    import sqlite3

    from server.catalog import Catalog, CatalogedStorage

    try:
        catalog = Catalog.in_dir(settings.storage.dir)
    except (sqlite3.Error, OSError) as exc:   # e.g. a full disk: images still work, search and gallery do not
        log.warning("no catalog (%s): listing reads the store directly; search_images and the gallery are off", exc)
        return store
    return CatalogedStorage(store, catalog, sync_interval=settings.gallery.catalog_sync, retention_days=settings.gallery.retention_days)


class EaselServer(MCPServer):
    """MCPServer serving stored images straight from storage, with their own mime types."""

    storage: Storage
    docs: DocStore
    easel_settings: Settings
    draining: bool = False    # set on SIGTERM: new tool calls are refused

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight: set[anyio.CancelScope] = set()
        self._idle: anyio.Event | None = None

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        """Every tool call: refused while draining, cancellable by ``drain``, logged as one line."""
        started, outcome, result = time.monotonic(), "ok", None
        scope = anyio.CancelScope()
        began = CALL_STARTED.set(started)   # EASEL_RETURN_AFTER counts from here, as the host's timer does
        try:
            if self.draining:
                outcome = "error:ShuttingDown"
                raise ToolError("easel-mcp is shutting down and takes no new calls; retry in a moment.")
            self.in_flight.add(scope)
            with scope:
                try:
                    result = await super().call_tool(name, arguments, context)
                except UnexpectedToolError:
                    raise
                except ToolError as exc:
                    raise ToolError(_tool_error_text(name, exc)) from exc.__cause__
            if scope.cancelled_caught:
                outcome = "cancelled"
                raise ToolError("easel-mcp is shutting down: the call was cancelled, and its provider jobs "
                                "with it; retry it.")
            if getattr(result, "is_error", False):
                outcome = "error:ToolResult"
            if not self.easel_settings.results.resource_links and isinstance(result, CallToolResult):
                # for frameworks that turn a link into an image the model's API cannot fetch
                result.content = [c for c in result.content if not isinstance(c, ResourceLink)]
            return result
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"
            raise
        except Exception as exc:
            outcome = "error:" + _error_kind(exc) if outcome == "ok" else outcome
            raise
        finally:
            CALL_STARTED.reset(began)
            self.in_flight.discard(scope)
            if self._idle is not None and not self.in_flight:
                self._idle.set()
            _log_call(self, name, arguments, context, result, outcome, started)

    async def drain(self, grace: float) -> None:
        """Graceful stop: refuse new calls, give running ones ``grace`` seconds, then cancel the rest
        (cancelling a call cancels its provider jobs) and wait, bounded, for that to finish."""
        self.draining = True
        for wait, cancel in ((grace, False), (15.0, True)):
            if not self.in_flight:
                return
            if cancel:
                log.warning("shutting down: cancelling %d tool call(s) still running after %gs",
                            len(self.in_flight), grace)
                for scope in list(self.in_flight):
                    scope.cancel()
            self._idle = anyio.Event()
            with anyio.move_on_after(wait):
                await self._idle.wait()

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        return [*await super().list_resource_templates(),
                ResourceTemplate(uri_template=URI_PREFIX + "{image_id}", name="stored-image", icons=icons("image"),
                                 description="A stored image: full-size bytes with its mime type."),
                ResourceTemplate(uri_template=URI_PREFIX + "{image_id}/metadata", name="stored-image-metadata",
                                 mime_type="application/json", icons=icons("schema"),
                                 description="How the image was made: prompt as sent, model, seed, size."),
                ResourceTemplate(uri_template=JOB_PREFIX + "{job_id}", name="job", mime_type="application/json",
                                 icons=icons("schema"),
                                 description="A long call's job record: status, images stored so far, provider "
                                             "task ids, errors, times (check_job answers with the images).")]

    async def _handle_list_resources(self, ctx: Any, params: Any) -> ListResourcesResult:
        cursor = getattr(params, "cursor", None) if params else None
        try:
            records, next_cursor = await self.storage.list_recent(self.easel_settings.results.list_limit, cursor)
        except StorageError as exc:
            from mcp import MCPError
            raise MCPError(code=-32602, message=str(exc)) from None
        resources = [Resource(uri=r["uri"], name=r["id"], mime_type=r.get("mime_type"),
                              description=str(r.get("prompt", ""))[:200], size=r.get("bytes"))
                     for r in records if isinstance(r, dict) and "uri" in r and "id" in r]
        return ListResourcesResult(resources=[*await self.list_resources(), *resources],
                                   next_cursor=next_cursor)

    async def read_resource(self, uri: Any, context: Any = None) -> Iterable[ReadResourceContents] | Any:
        text = str(uri)
        if text.startswith(JOB_PREFIX):
            try:
                record = await load_record(self.docs, text[len(JOB_PREFIX):])
            except StorageError as exc:   # a malformed id is a bad key
                raise ResourceNotFoundError(f"Unknown resource {text[:120]}: {exc}") from None
            if record is None:
                raise ResourceNotFoundError(f"No job {text[len(JOB_PREFIX):][:80]!r} on this server.")
            return [ReadResourceContents(content=json.dumps(record.public(), ensure_ascii=False),
                                         mime_type="application/json")]
        if not text.startswith(URI_PREFIX):
            return await super().read_resource(uri, context)
        image_id, _, rest = text[len(URI_PREFIX):].partition("/")
        try:
            if rest == "metadata":
                meta = await self.storage.metadata(image_id)
                return [ReadResourceContents(content=json.dumps(meta, ensure_ascii=False), mime_type="application/json")]
            if rest:
                raise ImageNotFound(f"Unknown resource {text[:120]}")
            data, mime = await self.storage.get(image_id)
        except StorageError as exc:  # ImageNotFound included: malformed ids never reach a backend
            raise ResourceNotFoundError(str(exc)) from None
        return [ReadResourceContents(content=data, mime_type=mime)]


def build_server(settings: Settings, *, storage: Storage | None = None,
                 links: LinkSigner | None = None) -> EaselServer:
    """The server. ``links`` signs browser links to stored images (HTTP transports, server.http.link_signer);
    without it, results keep the storage's own URLs (file:// for local storage)."""
    from server.mcp_prompts import register_prompts
    from server.tools import register_tools

    store = with_catalog(storage or make_storage(settings), settings)
    docs = docs_for(store, settings.storage.dir)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[AppState]:
        registry = Registry(settings.providers.configs)
        state = AppState(settings=settings, storage=store, registry=registry, docs=docs,
                         links=links.url if links is not None else None)
        state.jobs = JobBook(state, bus)
        try:
            async with anyio.create_task_group() as tg:
                background = getattr(store, "run_background", None)   # e.g. late OSS uploads
                if background is not None:
                    tg.start_soon(background)
                await tg.start(state.jobs.serve)   # jobs outlive their calls, not the server (docs/jobs.md)
                if settings.calls.warmup:
                    from server.warmup import warm_up
                    tg.start_soon(warm_up, registry, settings)
                try:
                    yield state
                finally:
                    with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                        await state.jobs.shutdown()
                    tg.cancel_scope.cancel()
        finally:
            if state._http is not None:
                await state._http.aclose()
            await registry.aclose()

    auth = auth_options(settings)   # bearer token on /mcp and /sse (HTTP transports; stdio ignores it)
    from server.tools.browse import make_apps  # browse_images as an MCP App (ui:// resource)

    bus = InMemorySubscriptionBus()   # ours, so a job that ends after its call can still notify listeners
    server = EaselServer("easel-mcp", title="easel-mcp image generation", instructions=INSTRUCTIONS,
                         version=_version(), lifespan=lifespan, icons=icons("server"),
                         extensions=[make_apps(settings)], subscriptions=bus,
                         request_state_security=request_state_security(settings), **auth)
    server.storage = store
    server.docs = docs
    server.easel_settings = settings
    register_tools(server, settings)
    register_prompts(server, store)
    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("easel-mcp")
    except PackageNotFoundError:
        return "0.0.0"


def _tool_error_text(tool: str, exc: ToolError) -> str:
    """One wording per kind of failure, without the SDK's "Error executing tool <name>: " prefix.

    Argument mistakes, whether the schema caught them (pydantic) or the tool did (``ArgumentError``:
    blank prompt, too many images, a model that takes no seed), read "Invalid arguments for <tool>: …".
    Anything else the tool reports (the provider refused, ran out of credit, …) is its own sentence.
    """
    from server.tools._common import ArgumentError

    raised = exc.__cause__
    if isinstance(raised, ValidationError):
        return _invalid_arguments(tool, raised)
    text = str(raised) if isinstance(raised, ToolError) else str(exc)
    if isinstance(raised, ArgumentError):
        return f"Invalid arguments for {tool}: {text}"
    return text


def _invalid_arguments(tool: str, exc: ValidationError) -> str:
    """Pydantic's report, rewritten for an assistant: each field, what is allowed, what was sent
    (clipped), without the error-type tags and documentation links."""
    problems = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(part) for part in err["loc"]) or "arguments"
        problem = f"{field}: {err['msg']}"
        if err["type"] != "missing" and not isinstance(err.get("input"), dict | list):
            sent = repr(err.get("input"))
            problem += f" (got {sent if len(sent) <= 60 else sent[:57] + '...'})"
        problems.append(problem)
    return f"Invalid arguments for {tool}: " + "; ".join(problems) + "."


def _error_kind(exc: BaseException) -> str:
    """What went wrong, for the call log: the SDK wraps the tool's ToolError in its own, and a tool's
    ToolError carries the provider error as its cause (or, raised ``from None``, as its context)."""
    from server.tools._common import ArgumentError

    if isinstance(exc, UnexpectedToolError):
        return "Unexpected"
    inner: BaseException | None = exc
    argument = False
    for _ in range(4):
        if inner is None:
            break
        inner = inner.__cause__ or inner.__context__
        if isinstance(inner, ValidationError):
            return "InvalidArguments"
        if isinstance(inner, ImageGenError):
            return type(inner).__name__
        argument = argument or isinstance(inner, ArgumentError)
    return "InvalidArguments" if argument else type(exc).__name__


def _log_call(server: EaselServer, name: str, arguments: dict[str, Any], context: Any, result: Any,
              outcome: str, started: float) -> None:
    """One line per call: ids, tool, model, provider, duration, outcome. No secrets, no image bytes,
    prompts clipped to 200 characters, no other argument values."""
    try:
        request_id = context.request_context.request_id
    except Exception:   # no request context (direct call)
        request_id = None
    structured = getattr(result, "structured_content", None) or {}
    images = [i for i in structured.get("images") or [] if isinstance(i, dict)] if isinstance(structured, dict) else []
    model = (images[0].get("model") if images else None) or arguments.get("model")
    if model is None:
        model = ((server._tool_input_schema(name) or {}).get("properties", {}).get("model") or {}).get("default")
    model = str(model)[:80] if model is not None else None
    provider = images[0].get("provider") if images else None
    if provider is None and model is not None:
        from providers import all_specs

        specs = sorted((s for s in all_specs() if s.name == model), key=lambda s: s.preference)
        keyed = [s for s in specs if (cfg := server.easel_settings.providers.configs.get(s.provider)) and cfg.api_key]
        provider = (keyed or specs)[0].provider if specs else None
    prompt = arguments.get("prompt") or arguments.get("content")
    fields: dict[str, Any] = {
        "request_id": str(request_id) if request_id is not None else uuid.uuid4().hex,
        "tool": name[:80], "model": model, "provider": provider,
        "duration_ms": round((time.monotonic() - started) * 1000), "outcome": outcome,
        "images": len(images), "errors": len(structured.get("errors") or []) if isinstance(structured, dict) else 0,
    }
    if isinstance(prompt, str):
        fields["prompt"] = prompt if len(prompt) <= 200 else prompt[:199] + "…"
        fields["prompt_chars"] = len(prompt)
    call_log.log(logging.INFO if outcome == "ok" else logging.WARNING,
                 "tool %s %s in %d ms", fields["tool"], outcome, fields["duration_ms"], extra=fields)
