"""run_replicate_model and get_replicate_model_schema: any Replicate model, by name.

Inputs are free-form JSON; easel:// URIs inside them become inputs Replicate can
read. Every file the model outputs is downloaded at once (Replicate deletes
outputs after an hour), through the fetch guard like every provider download:
images are stored (the same store path as the other tools) and replaced in
``result`` by their stored record; a file at an address the guard refuses stays
a URL with a note saying why; other values come back as they are. When the store fails,
the error names the images already stored and the provider link of every image that was not.
"""

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, cast

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import BaseModel, Field, WithJsonSchema

from providers import Registry, all_specs
from providers.base import Price
from providers.errors import ConfigError, ImageGenError, InvalidInput, OutputRefused, ProviderUnavailable
from providers.types import TaskHooks
from server import dryrun, spend
from server.config import Settings
from server.icons import icons
from server.images import InvalidImage
from server.inputs import InputError, resolve_images
from server.job_records import UnitRecord
from server.jobs import Finished, Job, WorkOutcome, answers, resumes
from server.results import (
    CALLS,
    COST_TOTAL,
    JOB_FIELD,
    MAX_OUTPUT_CHARS,
    JobHandle,
    build_result,
    clip,
    describe,
    total_cost,
)
from server.storage import URI_PREFIX
from server.tools._common import CONFIRM_HELP, DRY_RUN_HELP, GENERATES, ArgumentError, job_book, state_of, tool_error
from server.tools.edit import input_limits

if TYPE_CHECKING:
    from providers.replicate import ReplicateProvider
    from server.state import AppState

__all__ = ["register"]

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}/[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
VERSION = re.compile(r"^[0-9a-f]{64}$")
MAX_DEPTH = 20
MAX_INPUTS_JSON = 1_000_000

#: An open object without ``"additionalProperties": true``: JSON Schema allows any keys when the keyword is
#: absent, google-genai's MCP adapter crashes on the boolean form, and the OpenAI Agents SDK's strict mode
#: refuses it (docs/clients.md). The empty ``properties`` map is for Gemini, whose API has refused OBJECT
#: schemas without one. Strict mode closes this object, which is what ``inputs_json`` is for.
MODEL_INPUTS_SCHEMA = {
    "type": "object",
    "properties": {},
    "description": "The model's inputs as a JSON object, e.g. {\"prompt\": \"a red fox\", \"aspect_ratio\": \"16:9\"}. "
                   "If your client cannot send a free-form object (OpenAI strict mode, Gemini), send {} here and "
                   "the inputs as a JSON string in inputs_json.",
}


class RunResult(BaseModel):
    model_name: str
    status: str
    prediction_id: str
    result: Any = Field(description="the model's output; image files replaced by their stored records")
    metrics: dict[str, Any] | None = None
    images: list[dict[str, Any]] = Field(default_factory=list)
    cost_usd: float | None = Field(default=None, description=COST_TOTAL + "; null for a model not in the catalog")
    dry_run: bool = False
    calls: list[dict[str, Any]] | None = Field(default=None, description=CALLS)
    job: JobHandle | None = Field(default=None, description=JOB_FIELD)


async def _run(job: Job, provider: "ReplicateProvider", context: dict[str, Any],
               predict: Callable[[TaskHooks], Awaitable[dict[str, Any]]]) -> CallToolResult:
    """The prediction (created, or fetched by id when resumed), its outputs stored, the answer."""
    name, version = context["model_name"], context.get("version")
    price = catalog_price(name)

    async def settle(error: BaseException | None) -> None:
        """Give the booking back when Replicate refused the prediction; re-book it at what was stored."""
        if job.booking is not None:
            await job.booking.settle(0, costs=[s.metadata.get("cost_usd") for s in job.stored], error=error)

    try:
        try:
            prediction = await predict(job.task_hooks(0))
            unstored: list[tuple[str, str | None]] = []   # (why, provider link) of each image the store refused
            output = await _capture_outputs(prediction.get("output"), job, provider, name, prediction, depth=0,
                                            prompt=context.get("prompt", ""), unstored=unstored, price=price)
        except Exception as exc:
            await settle(exc)
            raise
        await settle(None)
        if unstored:
            raise ToolError(f"Execution error running {name}: {_unstored_text(unstored, job.stored)}")
        if _is_token_list(output) and await _is_iterator(provider, name, version):
            output = "".join(output)
    except ConfigError as exc:
        raise tool_error(exc) from None
    except InvalidInput as exc:
        fields = "; ".join(str(f) for f in exc.fields) or str(exc)
        raise ArgumentError(f"model_inputs: {name} refused them: {fields}") from None
    except ImageGenError as exc:
        raise ToolError(f"Execution error running {name}: {exc}") from None
    await job.announce()
    stored = job.stored
    records = [job.record(s).model_dump() for s in stored]
    result = RunResult(model_name=name, status=prediction["status"], prediction_id=prediction["id"],
                       result=output, metrics=prediction.get("metrics"), images=records,
                       cost_usd=total_cost([r["cost_usd"] for r in records]) if records and price else None)
    summary = f"{name} {prediction['status']} (prediction {prediction['id']}); {len(stored)} image(s) stored."
    if price is None:
        summary += f" Cost: unknown ({name} is not in the catalog, so its price is not known here)."
    return job.answer(result, stored, describe(summary, images=records, output=output))


@resumes("run_replicate_model")
async def _resume(job: Job, context: dict[str, Any]) -> CallToolResult:
    """Another process's run whose process died: its prediction fetched by id, its outputs stored."""
    provider = _replicate(job.state.registry)
    prediction_id = context["task_ids"][-1]
    return await _run(job, provider, context, lambda hooks: provider.resume_prediction(
        prediction_id, job.progress.send, hooks))


@answers("run_replicate_model")
def _answer(context: dict[str, Any], done: Finished) -> tuple[RunResult, str]:
    """A run that has no answer of its own yet (still going, failed or cancelled): the prediction, no output."""
    prediction = (context.get("task_ids") or [""])[-1]
    status = "processing" if context.get("status") == "running" else str(context.get("status"))
    result = RunResult(model_name=context["model_name"], status=status, prediction_id=prediction, result=None)
    return result, f"{context['model_name']}: {status} (prediction {prediction or 'not created yet'})."


def split_ref(model_name: str, version: str | None) -> tuple[str, str | None]:
    name, _, pinned = model_name.partition(":")
    if not MODEL_NAME.fullmatch(name):
        raise ArgumentError("model_name: must look like owner/name (letters, digits, '.', '_' or '-'), "
                            "optionally with :<64-hex version>.")
    version = version or pinned or None
    if version is not None and not VERSION.fullmatch(version):
        raise ArgumentError("version: must be a 64-character lowercase hex version id.")
    return name, version


def register(mcp: MCPServer, settings: Settings, registry: Registry) -> None:
    @mcp.tool(
        name="run_replicate_model",
        title="Run any Replicate model",
        annotations=GENERATES,
        icons=icons("run"),
        description=(
            "Run any model on Replicate with free-form inputs. Call get_replicate_model_schema first to learn "
            "its inputs. Pass them as model_inputs (an object) or as inputs_json (the same object as a JSON "
            "string); easel://images/… URIs anywhere in them are sent as files. Image outputs are stored at once "
            "and replaced in result by their record (uri, url, …); text, numbers and JSON come back as they are; "
            "token streams are joined."),
    )
    async def run_replicate_model(
        model_name: Annotated[str, Field(description="owner/name, optionally owner/name:<version>",
                                         max_length=300)],
        ctx: Context,
        model_inputs: Annotated[dict[str, Any], WithJsonSchema(MODEL_INPUTS_SCHEMA)] = {},  # noqa: B006
        # Typed plain ``str`` (not ``str | None``): the SDK would otherwise parse the JSON before we see it.
        inputs_json: Annotated[str, Field(max_length=MAX_INPUTS_JSON, description=(
            "The same inputs as one JSON object encoded in a string, for clients that cannot send a free-form "
            "object (OpenAI strict mode, Gemini); empty when model_inputs is used. Merged with model_inputs."))] = "",
        version: Annotated[str | None, Field(description="A 64-hex version id to pin (optional).")] = None,
        dry_run: Annotated[bool, Field(description=DRY_RUN_HELP)] = False,
        confirm_spend: Annotated[bool, Field(description=CONFIRM_HELP)] = False,
    ) -> Annotated[CallToolResult, RunResult] | InputRequiredResult:
        state = state_of(ctx)
        name, version = split_ref(model_name, version)
        given = merge_inputs(model_inputs, inputs_json)
        price = catalog_price(name)
        unit = spend.Unit(name, 1, price)   # one image per prediction, re-counted from what the model returns
        try:
            provider = _replicate(state.registry)
            if dry_run:
                return await _dry_run(state, provider, unit, name, version, given)
        except ImageGenError as exc:
            raise tool_error(exc) from None
        booking = await spend.admit(ctx, "run_replicate_model", [unit], confirm_spend=confirm_spend)
        if isinstance(booking, InputRequiredResult):   # the user is asked first (2026-07-28 clients)
            return booking
        try:
            inputs = await _convert_inputs(given, state, provider, depth=0)
        except (ImageGenError, ToolError) as exc:   # nothing was run: the booking goes back
            await booking.settle(0, costs=[], error=exc)
            if isinstance(exc, ToolError):
                raise
            raise tool_error(exc) from None

        context = {"model_name": name, "version": version, "prompt": _prompt_of(given)}

        async def body(job: Job, _: list[WorkOutcome]) -> CallToolResult:
            await job.progress.send(f"running {name}")
            return await _run(job, provider, context, lambda hooks: provider.run_prediction(
                name, version, inputs, job.progress.send, hooks))

        return await job_book(state).call(ctx, "run_replicate_model", total=1, context=context, body=body,
                               units=[UnitRecord(provider="replicate", model=name)], booking=booking)

    @mcp.tool(
        name="get_replicate_model_schema",
        title="Describe a Replicate model's inputs",
        icons=icons("schema"),
        annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                    open_world_hint=True),
        description="The published input and output schema of a Replicate model (latest version unless "
                    "one is given), to call run_replicate_model correctly. Costs nothing.",
    )
    async def get_replicate_model_schema(
        model_name: Annotated[str, Field(description="owner/name", max_length=300)],
        ctx: Context,
        version: Annotated[str | None, Field(description="A 64-hex version id (optional).")] = None,
    ) -> Annotated[CallToolResult, dict[str, Any]]:
        state = state_of(ctx)
        name, version = split_ref(model_name, version)
        try:
            found = await _replicate(state.registry).model_schema(name, version)
        except ImageGenError as exc:
            raise tool_error(exc) from None
        schemas = (found.get("openapi_schema") or {}).get("components", {}).get("schemas", {})
        body = {"model": name, "version": found["version"], "description": found.get("description"),
                "input": schemas.get("Input"), "output": schemas.get("Output")}
        return build_result(body, [], None, schema_text(body, schemas))


def catalog_price(model: str) -> Price | None:
    """The catalog's price for a Replicate model id (e.g. black-forest-labs/flux-1.1-pro), or None when it is not
    a catalog model or its price is unpublished."""
    return next((s.price for s in all_specs() if s.provider == "replicate" and s.provider_model == model), None)


async def _dry_run(state: "AppState", provider: "ReplicateProvider", unit: spend.Unit, name: str,
                   version: str | None, given: dict[str, Any]) -> CallToolResult:
    """The prediction that would be created (easel:// URIs are sent as files at run time) and its estimate."""
    quote = spend.Quote("run_replicate_model", (unit,), state.settings.spend)
    planned = await dryrun.dry_run(state, quote, [[provider.describe_prediction(name, version, given)]])
    result = RunResult(model_name=name, status="not run", prediction_id="", result=None, dry_run=True,
                       calls=planned.calls, cost_usd=planned.cost_usd)
    return build_result(result.model_dump(), [], None, planned.text)


def _replicate(registry: Registry) -> "ReplicateProvider":
    """The provider named "replicate" is always providers.replicate's class (the registry builds it)."""
    return cast("ReplicateProvider", registry.provider("replicate"))


def merge_inputs(model_inputs: dict[str, Any], inputs_json: str) -> dict[str, Any]:
    """model_inputs and inputs_json together; a key given twice with different values is refused."""
    if not inputs_json.strip():
        return model_inputs
    try:
        parsed = json.loads(inputs_json)
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"inputs_json: not valid JSON ({exc.msg} at character {exc.pos}); send one JSON "
                            "object, e.g. {\"prompt\": \"a red fox\"}.") from None
    if not isinstance(parsed, dict):
        raise ArgumentError(f"inputs_json: must be a JSON object, not {type(parsed).__name__}.")
    clash = sorted(k for k in parsed.keys() & model_inputs.keys() if parsed[k] != model_inputs[k])
    if clash:
        raise ArgumentError(f"inputs_json: {', '.join(clash)} also given in model_inputs with another value; "
                            "give each input once.")
    return {**model_inputs, **parsed}


def schema_text(body: dict[str, Any], schemas: dict[str, Any]) -> str:
    """A model's inputs as an assistant reads them: one line per input (type, allowed values, default,
    required, description), in the model's own order; the JSON Schema itself is in structuredContent."""
    head = f"{body['model']} (version {body['version']})" + (f": {body['description']}" if body["description"] else "")
    schema = body.get("input") or {}
    required = set(schema.get("required") or [])
    props = schema.get("properties") or {}
    lines = [head, "Inputs (send them as model_inputs, or as one JSON string in inputs_json):"]
    order = sorted(props, key=lambda k: (props[k].get("x-order", 1_000_000), list(props).index(k)))
    for key in order:
        lines.append(f"- {key}: " + _describe_field(_resolve(props[key], schemas), key in required))
    if not props:
        lines.append("- (none published)")
    output = _resolve(body.get("output") or {}, schemas)
    lines.append("Output: " + _type_of(output, schemas) + "; files that are images are stored and returned "
                 "as easel:// URIs.")
    lines.append("The full JSON Schemas are in the result's structuredContent (fields input and output).")
    return clip("\n".join(lines), MAX_OUTPUT_CHARS, "the result's structuredContent (field input)")


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """Cog puts enums behind ``allOf: [{"$ref": "#/components/schemas/<name>"}]``: fold them in."""
    out = {k: v for k, v in schema.items() if k not in ("allOf", "$ref")}
    parts = list(schema.get("allOf") or []) + ([{"$ref": schema["$ref"]}] if "$ref" in schema else [])
    for part in parts:
        ref = part.get("$ref", "") if isinstance(part, dict) else ""
        target = schemas.get(ref.rsplit("/", 1)[-1], {}) if ref.startswith("#/components/schemas/") else part
        if isinstance(target, dict):
            out = {**target, **out}
    return out


def _type_of(schema: dict[str, Any], schemas: dict[str, Any]) -> str:
    kind = schema.get("type") or "any"
    if schema.get("format") == "uri":
        kind = "file (uri)"
    if kind == "array":
        kind = "list of " + _type_of(_resolve(schema.get("items") or {}, schemas), schemas)
    return str(kind)


def _describe_field(schema: dict[str, Any], required: bool) -> str:
    parts = [_type_of(schema, {})]
    if "enum" in schema:
        parts.append("one of " + ", ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"]))
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        parts.append(f"{'' if low is None else low}..{'' if high is None else high}")
    if "default" in schema:
        parts.append("default " + json.dumps(schema["default"], ensure_ascii=False))
    if required:
        parts.append("required")
    text = ", ".join(parts)
    desc = str(schema.get("description") or "").strip()
    return text + (f". {desc if len(desc) <= 300 else desc[:299] + '…'}" if desc else "")


async def _convert_inputs(value: Any, state: "AppState", provider: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ArgumentError("model_inputs: nested too deeply.")
    if isinstance(value, str) and value.startswith(URI_PREFIX):
        try:
            [image] = await resolve_images([value], storage=state.storage, limits=input_limits(state.settings),
                                           client=state.http, field="model_inputs")
        except InputError as exc:
            raise ArgumentError(str(exc)) from None
        return await provider.image_reference(image.data, image.mime_type, None)
    if isinstance(value, dict):
        return {k: await _convert_inputs(v, state, provider, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [await _convert_inputs(v, state, provider, depth + 1) for v in value]
    return value


def _is_file(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith(("https://", "http://")) or value.startswith("data:"))


def _prompt_of(inputs: dict[str, Any]) -> str:
    """The model's prompt input, recorded with its images so search_images finds them by it."""
    prompt = inputs.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def _unstored_text(unstored: list[tuple[str, str | None]], stored: list[Any]) -> str:
    """One line: why the first image was not stored, where the others still are, and which were stored."""
    (text, _), *others = unstored
    if others:
        links = ", ".join(link or "(sent inline, no other copy)" for _, link in others)
        text += f" {len(others)} more output image(s) could not be stored either; they are at: {links}."
    if stored:
        text += " Stored: " + ", ".join(f"{URI_PREFIX}{s.image_id}" for s in stored) + "."
    return text


async def _capture_outputs(value: Any, job: Job, provider: Any, model: str, prediction: dict[str, Any],
                           depth: int, prompt: str, unstored: list[tuple[str, str | None]],
                           price: Price | None) -> Any:
    if depth > MAX_DEPTH:
        return value
    if _is_file(value):
        try:
            data, mime = await provider.fetch_output(value)
        except OutputRefused as exc:   # a model may name any address: the guard said no, the rest still counts
            return {"url": value, "stored": False, "note": str(exc)}
        meta = {"tool": "run_replicate_model", "model": model, "provider": "replicate", "provider_model": model,
                "prediction_id": prediction["id"], "parameters": None, "prompt": prompt, "seed": None}
        link = None if value.startswith("data:") else value
        try:
            image = await job.store(data, meta, provider="replicate", task_id=prediction["id"], source_url=link,
                                    price=price)
        except ProviderUnavailable as exc:   # the store failed: the other files are still paid for, say each
            unstored.append((str(exc), link))
            return {"url": link, "stored": False, "note": str(exc)}
        except InvalidImage:
            return {"url": value if not value.startswith("data:") else None, "mime_type": mime, "bytes": len(data),
                    "stored": False, "note": "not an image; Replicate deletes outputs after an hour"}
        return job.record(image).model_dump()
    if isinstance(value, dict):
        return {k: await _capture_outputs(v, job, provider, model, prediction, depth + 1, prompt, unstored, price)
                for k, v in value.items()}
    if isinstance(value, list):
        return [await _capture_outputs(v, job, provider, model, prediction, depth + 1, prompt, unstored, price)
                for v in value]
    return value


def _is_token_list(output: Any) -> bool:
    return isinstance(output, list) and bool(output) and all(isinstance(o, str) for o in output)


async def _is_iterator(provider: Any, model: str, version: str | None) -> bool:
    """Token streams are joined only when the published Output schema says so."""
    try:
        found = await provider.model_schema(model, version)
    except ImageGenError:
        return False
    out = (found.get("openapi_schema") or {}).get("components", {}).get("schemas", {}).get("Output") or {}
    return out.get("x-cog-array-type") == "iterator" and out.get("x-cog-array-display") == "concatenate"
