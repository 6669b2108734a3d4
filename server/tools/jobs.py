"""check_job and cancel_job: the calls that answered before their work ended (docs/jobs.md), and the
``resources/subscribe`` handlers that let handshake-era clients hear when a job ends.

A long call answers with ``job = {id, uri, status, done, total}`` (server.jobbook); these tools take
the id. Any replica answers for any job from its record in the store.
"""

from typing import Annotated, Any

from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from providers import Registry
from server.config import Settings
from server.icons import icons
from server.job_records import JOB_PREFIX
from server.tools._common import job_book, state_of

__all__ = ["register", "register_subscriptions"]

MAX_WAIT = 50   # seconds: under the ~60 s at which hosts give up on a request
JOB_ID = Field(description="The job's id, from a result's job.id (32 hexadecimal characters).", min_length=1,
               max_length=64)


def register(mcp: MCPServer, settings: Settings, registry: Registry) -> None:
    @mcp.tool(
        name="check_job",
        title="Check a running job",
        icons=icons("job"),
        annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                    open_world_hint=False),
        description=(
            "Get the result of a call that answered before its work ended (its result had job.status "
            "\"running\"). Waits up to `wait` seconds for the job to end, then answers in the original tool's "
            "shape: the images stored so far (uri, url, preview) and job.status: running (call again), "
            "succeeded, partial (some images failed), failed or cancelled. Costs nothing."),
    )
    async def check_job(
        job_id: Annotated[str, JOB_ID],
        ctx: Context,
        wait: Annotated[float, Field(ge=0, le=MAX_WAIT, description=f"Seconds to wait for the job to end, 0-{MAX_WAIT}; "
                                     "it answers as soon as the job ends.")] = 20,
    ) -> Annotated[CallToolResult, dict[str, Any]]:
        return await job_book(state_of(ctx)).check(job_id.strip(), wait)

    @mcp.tool(
        name="cancel_job",
        title="Cancel a running job",
        icons=icons("cancel-job"),
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                    open_world_hint=True),
        description=(
            "Stop a running job: its provider tasks are cancelled (Replicate and DashScope stop them; ModelScope "
            "cannot cancel, so a ModelScope task may still finish unseen). Images already stored stay stored; the "
            "answer lists them, with job.status \"cancelled\" (or how the job had already ended)."),
    )
    async def cancel_job(job_id: Annotated[str, JOB_ID], ctx: Context) -> Annotated[CallToolResult, dict[str, Any]]:
        return await job_book(state_of(ctx)).cancel(job_id.strip())


def register_subscriptions(mcp: MCPServer) -> None:
    """``resources/subscribe`` for easel://jobs/<id> (handshake-era clients): the session hears
    ``notifications/resources/updated`` when the job ends. 2026 clients use ``subscriptions/listen``
    instead, which the SDK serves itself. (``_lowlevel_server``: MCPServer offers no public hook.)"""

    async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        uri = str(params.uri)
        if uri.startswith(JOB_PREFIX):
            ctx.lifespan_context.jobs.sessions.setdefault(uri, set()).add(ctx.session)
        return types.EmptyResult()

    async def unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        ctx.lifespan_context.jobs.sessions.get(str(params.uri), set()).discard(ctx.session)
        return types.EmptyResult()

    lowlevel = mcp._lowlevel_server
    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)
