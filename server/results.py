"""Shaping tool results: structured content, resource links, the text, previews.

Every image tool answers the same way: ``structuredContent`` that matches the
declared output schema, one ``resource_link`` per image, a text block, and
(unless EASEL_PREVIEW=off) a small JPEG preview per image that fits in an
assistant's context.

The text block stands on its own. LangChain and the OpenAI Agents SDK (by default)
give the model only the text content; Claude's API connector drops images; some hosts
drop ``resource_link``. So the text (``describe``) repeats what the model needs to act:
each image's easel:// URI and a url a person can open, each prompt as sent, each
per-item error, and a model's own output (clipped, with a note saying so).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from server.storage import StoredImage

__all__ = ["JOB_FIELD", "ErrorRecord", "GenerateResult", "ImageRecord", "JobHandle", "build_result", "clip", "cost_line",
           "describe", "image_record", "money", "total_cost"]


#: How much of a model's own output (text or JSON) the text content carries. Claude Code cuts tool
#: output at 25k tokens; a few thousand characters keep room for the rest of the conversation.
MAX_OUTPUT_CHARS = 6000
_NO_OUTPUT = object()



class ImageRecord(BaseModel):
    uri: str = Field(description="easel://images/… resource URI; read it for the full-size bytes")
    url: str = Field(description="a link a person can open")
    mime_type: str
    width: int
    height: int
    bytes: int
    sha256: str
    prompt: str = Field(description="the prompt as sent to the model")
    model: str
    provider: str
    provider_model: str
    seed: int | None = None
    prediction_id: str | None = None
    stored_in: str = Field(description="local or oss")
    note: str | None = None
    cost_usd: float | None = Field(default=None, description="estimated USD this image cost, from the catalog "
                                   "price (per megapixel: at its real size); null when the price is unknown")


class ErrorRecord(BaseModel):
    item: str = Field(description="which image or job failed")
    kind: str = Field(description="error class, e.g. RateLimited, GenerationFailed")
    message: str


class JobHandle(BaseModel):
    """A call that was still running when it answered (EASEL_RETURN_AFTER), or a check_job answer."""

    id: str = Field(description="pass it to check_job or cancel_job")
    uri: str = Field(description="easel://jobs/<id>: the job record as JSON")
    status: str = Field(description="running, succeeded, partial, failed or cancelled")
    done: int = Field(description="images stored so far")
    total: int = Field(description="images asked for")


#: The ``job`` field of every image tool's result (GenerateResult, IllustrateResult, run_replicate_model's).
JOB_FIELD = ("set when the call answered before its work ended (or by check_job): call check_job with job.id "
             "for the rest")

COST_TOTAL = ("estimated USD of the call's stored images (dry_run: of the whole call); null when any part's price "
              "is unknown")
CALLS = "dry_run only: each provider request that would be sent (method, url, model, payload; secrets redacted)"


class GenerateResult(BaseModel):
    images: list[ImageRecord]
    errors: list[ErrorRecord] = Field(default_factory=list)
    job: JobHandle | None = Field(default=None, description=JOB_FIELD)
    cost_usd: float | None = Field(default=None, description=COST_TOTAL)
    dry_run: bool = False
    calls: list[dict[str, Any]] | None = Field(default=None, description=CALLS)


def image_record(stored: StoredImage, link: Callable[[str], str] | None = None) -> ImageRecord:
    """What a result says about a stored image. ``link`` (image id -> signed browser link, from the
    application state when the server runs over HTTP) replaces a local image's storage URL."""
    m = stored.metadata
    url = link(stored.image_id) if link is not None and stored.stored_in == "local" else stored.url  # OSS keeps its own
    return ImageRecord(uri=stored.uri, url=url, mime_type=stored.mime_type,
                       width=int(m.get("width") or 0), height=int(m.get("height") or 0),
                       bytes=stored.size, sha256=stored.sha256, prompt=str(m.get("prompt", "")),
                       model=str(m.get("model", "")), provider=str(m.get("provider", "")),
                       provider_model=str(m.get("provider_model", "")), seed=m.get("seed"),
                       prediction_id=m.get("prediction_id"), stored_in=stored.stored_in, note=stored.note,
                       cost_usd=_number(m.get("cost_usd")))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def money(usd: float) -> str:
    """A dollar amount as people read it: two decimals at least, up to four when they matter ($0.10, $0.039)."""
    text = f"{usd:.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def total_cost(costs: Sequence[float | None]) -> float | None:
    """A call's cost from its images' costs: None when any is unknown (docs/spend.md)."""
    if any(c is None for c in costs):
        return None
    return round(sum(c for c in costs if c is not None), 6)


def cost_line(costs: Sequence[float | None]) -> str:
    """The short line a result's text carries about what its images cost."""
    if not costs:
        return "Cost: nothing was stored, so nothing is counted."
    total = total_cost(costs)
    if total is not None:
        return f"Estimated cost: {money(total)} for {len(costs)} image(s)."
    known = [c for c in costs if c is not None]
    return (f"Estimated cost: unknown ({len(costs) - len(known)} image(s) of a model without a published price"
            + (f"; the rest: {money(sum(known))}" if known else "") + ").")


def describe(summary: str, *, images: Iterable[ImageRecord | Mapping[str, Any]] = (),
             errors: Iterable[ErrorRecord | Mapping[str, Any]] = (), output: Any = _NO_OUTPUT,
             max_output_chars: int = MAX_OUTPUT_CHARS) -> str:
    """The text content of a result: the summary, then one block per image (URI, openable url, prompt
    as sent, size), one line per failed item, and the model's output when there is one.

    A prompt shared by every image (``count`` > 1) is written once, above them.
    """
    records = [r if isinstance(r, ImageRecord) else ImageRecord.model_validate(r) for r in images]
    lines = [summary]
    prompts = {r.prompt for r in records if r.prompt}
    shared = len(records) > 1 and len(prompts) == 1
    if shared:
        lines.append(f"Prompt as sent: {next(iter(prompts))}")
    for n, r in enumerate(records, 1):
        lines.append(f"Image {n}: {r.uri}")
        lines.append(f"  url: {r.url}")
        if r.prompt and not shared:
            lines.append(f"  prompt as sent: {r.prompt}")
        facts = [f"{r.width}x{r.height}", r.mime_type] + ([f"seed {r.seed}"] if r.seed is not None else []) + (
            [f"~{money(r.cost_usd)}"] if r.cost_usd is not None else [])
        lines.append("  " + ", ".join(facts))
        if r.note:
            lines.append(f"  note: {r.note}")
    for e in errors:
        err = e if isinstance(e, ErrorRecord) else ErrorRecord.model_validate(e)
        lines.append(f"Failed: {err.item} ({err.kind}): {err.message}")
    if records:
        lines.append(cost_line([r.cost_usd for r in records]))
    if output is not _NO_OUTPUT:
        lines.append(_output_text(output, max_output_chars))
    return "\n".join(lines)


def clip(text: str, limit: int, where: str) -> str:
    """``text`` cut to ``limit`` characters, with a note saying how much is left out and where it is."""
    if len(text) <= limit:
        return text
    return (text[:limit] + f"\n[clipped: showing {limit} of {len(text)} characters; the whole of it is in {where}]")


def _output_text(output: Any, limit: int) -> str:
    """A model's output: text as it is, anything else as JSON, each stored image shortened to its URI
    (its url is in the image's own block above)."""
    where = "the result's structuredContent (field result)"
    if output is None:
        return "Output: none"
    if isinstance(output, str):
        return f"Output (text, {len(output)} characters):\n" + clip(output, limit, where)
    compact = json.dumps(_short_records(output), ensure_ascii=False, indent=1, default=str)
    return "Output (JSON):\n" + clip(compact, limit, where)


def _short_records(value: Any) -> Any:
    if isinstance(value, dict):
        if "uri" in value and "url" in value and "sha256" in value:   # a stored image's record
            return value["uri"]
        return {k: _short_records(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short_records(v) for v in value]
    return value


def build_result(structured: dict[str, Any], images: list[StoredImage],
                 previews: Mapping[str, tuple[bytes, str]] | None, summary: str) -> CallToolResult:
    """The tool result: ``summary`` is the whole text block (see ``describe`` for one that stands on its own);
    ``previews`` maps an image id to its preview (bytes, mime), as server.previews made it."""
    content: list[Any] = [TextContent(type="text", text=summary)]
    for stored in images:
        content.append(ResourceLink(type="resource_link", uri=stored.uri, name=stored.image_id,
                                    mime_type=stored.mime_type,
                                    description=str(stored.metadata.get("prompt", ""))[:200]))
    for stored in images:
        made = previews.get(stored.image_id) if previews is not None else None
        if made is not None:
            preview, mime = made
            content.append(ImageContent(type="image", data=base64.b64encode(preview).decode(), mime_type=mime))
    return CallToolResult(content=content, structured_content=structured)
