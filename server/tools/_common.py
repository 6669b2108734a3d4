"""Helpers shared by the tools: inline enums, text checks, error wording, model descriptions."""

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, cast, overload

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import WithJsonSchema

from providers import EDIT, Registry, model_names
from providers.base import Price
from providers.errors import ImageGenError, InvalidRequest
from server import dryrun, spend
from server.results import GenerateResult, build_result

if TYPE_CHECKING:
    from server.jobbook import JobBook
    from server.jobs import Work
    from server.state import AppState

GENERATES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                            open_world_hint=True)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_SEED = 2_147_483_647


class ArgumentError(ToolError):
    """A mistake in the call's arguments, found by the tool (the message names the field and what is
    allowed). The server words it like a schema violation: "Invalid arguments for <tool>: …"."""


def inline_enum(enum: type[StrEnum], description: str) -> Any:
    """An enum argument whose schema lists the values inline."""
    return WithJsonSchema({"type": "string", "enum": [m.value for m in enum], "description": description})


def literal_of(values: list[str]) -> Any:
    return Literal[tuple(values)]  # type: ignore[valid-type]


@overload
def clean_text(value: str, field: str, *, required: Literal[True]) -> str: ...
@overload
def clean_text(value: str | None, field: str, *, required: bool = False) -> str | None: ...
def clean_text(value: str | None, field: str, *, required: bool = False) -> str | None:
    """Refuse control characters; refuse blank text where text is required."""
    if value is None:
        return None
    if _CONTROL.search(value):
        raise ArgumentError(f"{field}: contains control characters; send plain text (newlines and tabs are fine).")
    value = value.strip()
    if required and not value:
        raise ArgumentError(f"{field}: must contain text.")
    return value or None


def tool_error(exc: ImageGenError) -> ToolError:
    """A provider-side error as the assistant reads it; a request refused before spending is an argument mistake."""
    return ArgumentError(str(exc)) if isinstance(exc, InvalidRequest) else ToolError(str(exc))


def models_description(registry: Registry, use: str) -> str:
    """One line per model: what it is best at, then what it takes, reads, needs and costs, each said once.

    The list is the whole catalog whatever the environment (so is the tool's model enum); models this
    server cannot run yet are marked with what to set.
    """
    lines = []
    for name in model_names(use):
        spec = registry.preferred(name, use)
        facts = [spec.summary] if spec.summary else []
        takes = [w for w, ok in (("seed", spec.supports_seed), ("negative_prompt", spec.supports_negative_prompt))
                 if ok]
        if takes:
            facts.append("takes " + ", ".join(takes))
        if spec.prompt_languages[0] == "zh":
            facts.append("reads Chinese")
        if use == EDIT:
            facts.append(_references(spec.min_input_images, spec.max_input_images))
        needed = registry.needed(name, use)
        if spec.requires and not needed:
            facts.append("uses " + ", ".join(spec.requires))
        if spec.price is not None:
            facts.append(_cost(spec.price))
        mark = f" [not configured on this server: set {needed}]" if needed else ""
        lines.append(f"- {name}: {'; '.join(facts)}{mark}")
    return "\n".join(lines)


def _references(low: int, high: int) -> str:
    if high == 1:
        return "one image"
    return f"{low}-{high} images" if low else f"up to {high} images"


def _cost(price: Price) -> str:
    if price.amount == 0:
        return "free quota"
    unit = "MP" if price.per == "megapixel" else price.per
    return f"~${price.amount:g}/{unit}" if price.currency == "USD" else f"~{price.amount:g} {price.currency}/{unit}"


DRY_RUN_HELP = ("Only show what would be sent: each provider request (endpoint, model, payload; keys redacted) and "
                "the estimated cost. Nothing is generated or spent.")
CONFIRM_HELP = ("Set true only when the user has agreed to this call's estimated cost (after a call was refused "
                "because this client cannot ask the user). A client that can ask the user is asked anyway. The "
                "daily budget still applies.")


async def dry_run_result(ctx: Context, tool: str, work: "list[Work]") -> CallToolResult:
    """A tool's dry-run answer for ``work``: the requests each unit would send and the estimate (server.spend)."""
    state = state_of(ctx)
    planned = await dryrun.dry_run(state, spend.Quote(tool, tuple(spend.units_of(work)), state.settings.spend),
                                  dryrun.describe_work(work))
    result = GenerateResult(images=[], dry_run=True, calls=planned.calls, cost_usd=planned.cost_usd)
    return build_result(result.model_dump(), [], None, planned.text)


def state_of(ctx: Context) -> "AppState":
    """The lifespan state a tool call runs with (settings, storage, registry, HTTP client)."""
    return cast("AppState", ctx.request_context.lifespan_context)


def job_book(state: "AppState") -> "JobBook":
    """This process's jobs (server.jobbook), which the lifespan starts before any call."""
    book = state.jobs
    assert book is not None, "the lifespan starts the job book"
    return cast("JobBook", book)

