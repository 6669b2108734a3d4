"""A job's record as the store keeps it (``jobs/<id>/record.json``; server.jobbook runs the jobs).

The record holds what any process needs to answer for a job and to resume it: the tool, the
context its answer is built from, one entry per unit of work (the request with reference images
given by their source only, the provider's task ids, the stored image ids, the error), the
status, times, and the owner with its lease. No keys, no image bytes.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from providers.types import AspectRatio, GenerationRequest, ImageSize, ImageStyle, InputImage, OutputFormat
from server.jobs import Work
from server.results import JobHandle
from server.storage.docs import DocStore

__all__ = ["CANCELLED", "FAILED", "JOB_PREFIX", "PARTIAL", "RUNNING", "RUNNING_PREFIX", "SUCCEEDED", "JobRecord", "UnitRecord",
           "answer_context", "cancel_key", "claim_key", "job_status", "job_text", "job_uri", "load_record", "record_key", "request_of", "running_key", "units_of", "with_job"]

JOB_PREFIX = "easel://jobs/"
_JOB_ID = re.compile(r"[0-9a-f]{32}")
RUNNING, SUCCEEDED, PARTIAL, FAILED, CANCELLED = "running", "succeeded", "partial", "failed", "cancelled"


def job_uri(job_id: str) -> str:
    return JOB_PREFIX + job_id


class UnitRecord(BaseModel):
    """One unit of work as the record keeps it: enough to answer for it and to resume it."""

    label: str = ""
    provider: str
    model: str = Field(description="the public model name")
    request: dict[str, Any] = Field(default_factory=dict, description="the request, reference images by source")
    metadata: dict[str, Any] = Field(default_factory=dict)
    task_ids: list[str] = Field(default_factory=list, description="the provider's task ids, once known")
    images: list[str] = Field(default_factory=list, description="stored image ids")
    error: dict[str, str] | None = None
    finished: bool = False


class JobRecord(BaseModel):
    id: str
    tool: str
    status: str = RUNNING
    created: str
    updated: str
    ended: str | None = None
    total: int
    done: int = 0
    owner: str
    lease_until: float = Field(description="Unix time the owner's lease ends unless renewed")
    epoch: int = 0
    context: dict[str, Any] = Field(default_factory=dict, description="what the tool's answer is built from")
    units: list[UnitRecord] = Field(default_factory=list)
    error: str | None = None
    result: dict[str, Any] | None = Field(default=None, description="the final answer (structured, text)")

    def handle(self) -> JobHandle:
        return JobHandle(id=self.id, uri=job_uri(self.id), status=self.status, done=self.done, total=self.total)

    def public(self) -> dict[str, Any]:
        """The record as easel://jobs/<id> shows it: no final answer (its links are in check_job's result)."""
        return self.model_dump(exclude={"result"})


def units_of(work: list[Work]) -> list[UnitRecord]:
    return [UnitRecord(label=w.label, provider=w.spec.provider, model=w.spec.name, request=_request_json(w.request),
                       metadata=w.metadata) for w in work]


def _request_json(request: GenerationRequest) -> dict[str, Any]:
    body = asdict(request)
    body["input_images"] = [{"mime_type": i.mime_type, "source": i.source} for i in request.input_images]
    return body


def request_of(body: dict[str, Any]) -> GenerationRequest:
    enums = {"size": ImageSize, "style": ImageStyle, "aspect_ratio": AspectRatio, "output_format": OutputFormat}
    fields: dict[str, Any] = {k: (enums[k](v) if k in enums and v is not None else v) for k, v in body.items()}
    fields["input_images"] = tuple(InputImage(data=None, mime_type=i["mime_type"], source=i.get("source", ""))
                                   for i in body.get("input_images") or [])
    return GenerationRequest(**fields)


def job_status(images: int, errors: int) -> str:
    return SUCCEEDED if not errors else PARTIAL if images else FAILED



def record_key(job_id: str) -> str:
    return f"jobs/{job_id}/record.json"


def claim_key(job_id: str, epoch: int) -> str:
    """Created (create-if-absent) by the process that takes the job over for ``epoch``: one winner."""
    return f"jobs/{job_id}/claim-{epoch}"


def cancel_key(job_id: str) -> str:
    """A cancel_job received by a replica that does not run the job; the owner acts on it."""
    return f"jobs/{job_id}/cancel"


RUNNING_PREFIX = "jobs-running/"


def running_key(job_id: str) -> str:
    """Present while the job runs, so that looking for orphans does not read every job ever made."""
    return RUNNING_PREFIX + job_id


async def load_record(docs: DocStore, job_id: str) -> JobRecord | None:
    """A job's record from the store; None when there is none (StorageError for an id that cannot be a key)."""
    if not _JOB_ID.fullmatch(job_id):
        return None
    data = await docs.read(record_key(job_id))
    return JobRecord.model_validate_json(data) if data else None


def answer_context(record: JobRecord) -> dict[str, Any]:
    """What a tool's answer is built from: its own context, and the provider task ids known so far."""
    return {**record.context, "status": record.status, "task_ids": [t for u in record.units for t in u.task_ids]}


def with_job(result: CallToolResult, record: JobRecord) -> CallToolResult:
    """``result`` with ``job`` set in its structured content and the job's state said in its text."""
    structured = dict(result.structured_content or {})
    structured["job"] = record.handle().model_dump()
    content = list(result.content)
    if content and isinstance(content[0], TextContent) and record.status == RUNNING:
        # the tool's first line sums up a finished call ("Generated 0 image(s) …"): while the job runs, the job
        # line takes its place, first, so a model reads what to do next before what is stored so far
        _, _, so_far = content[0].text.partition("\n")
        content[0] = TextContent(type="text", text=job_text(record) + ("\n" + so_far if so_far else ""))
    elif content and isinstance(content[0], TextContent):
        content[0] = TextContent(type="text", text=content[0].text + "\n" + job_text(record))
    else:
        content.insert(0, TextContent(type="text", text=job_text(record)))
    return CallToolResult(content=content, structured_content=structured, is_error=result.is_error)


def job_text(record: JobRecord) -> str:
    if record.status == RUNNING:
        return (f"Job {record.id} is still running ({record.done} of {record.total} image(s) stored so far); the "
                "images are being paid for and will be stored. Call check_job with job_id "
                f"\"{record.id}\" to get them (it waits up to 50 s), or cancel_job to stop.")
    said = {SUCCEEDED: "succeeded", PARTIAL: "finished with some failures", FAILED: "failed",
            CANCELLED: "was cancelled"}[record.status]
    return f"Job {record.id} {said}: {record.done} of {record.total} image(s) stored." + (
        f" {record.error}" if record.error and record.status == FAILED else "")
