"""illustrate_content: a text becomes a set of matching illustrations.

The analysis (server/illustrate.py) is deterministic and runs in a worker
thread; generation reuses the generate_image machinery: one job per
illustration, all concurrent under each provider's limits, each item reporting
its own image or its own error.
"""

from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from providers import GENERATE, Registry, model_names
from providers.errors import ImageGenError, InvalidRequest
from providers.types import GenerationRequest, ImageSize, ImageStyle
from server.config import Settings
from server.generation import Job, Progress, run_jobs
from server.illustrate import (
    MAX_CONTENT_CHARS, MAX_COUNT, THUMBNAIL_NEGATIVE_PROMPT, THUMBNAIL_PALETTE, Purpose, plan_illustrations,
    thumbnail_prompt_v2,
)
from server.prompts import apply_style
from server.icons import icons
from server.results import ErrorRecord, ImageRecord, Previews, build_result, image_record
from server.tools._common import (
    GENERATES, MAX_SEED, clean_text, inline_enum, literal_of, models_description, state_of, summarize, tool_error,
)

__all__ = ["IllustrateResult", "register"]


class Illustration(BaseModel):
    index: int
    prompt: str = Field(description="the prompt as sent (style applied)")
    section_index: int | None = None
    subjects: list[str]
    template: str
    image: ImageRecord | None = None
    error: ErrorRecord | None = None


class IllustrateResult(BaseModel):
    analysis: dict[str, Any] = Field(description="language, title, keywords, themes, sections used")
    style_cohesion: str
    dry_run: bool
    illustrations: list[Illustration]
    images: list[ImageRecord]
    errors: list[ErrorRecord] = Field(default_factory=list)


def register(mcp: MCPServer, settings: Settings, registry: Registry) -> None:
    gen_models = model_names(GENERATE)

    @mcp.tool(
        name="illustrate_content",
        title="Illustrate a text",
        annotations=GENERATES,
        icons=icons("illustrate"),
        description=(
            "Turn a text (article, chapter, product description, newsletter; English or Chinese) into "
            f"1-{MAX_COUNT} illustrations that fit it and each other. The text is analysed on the server "
            "(sections, subjects, themes) into distinct prompts sharing one visual style; all images are "
            "generated concurrently and each item reports its own image or error. purpose: illustration "
            "(scenes for sections/themes), cover (one striking image for the whole text), thumbnail (a bold "
            "card from a name plus description). dry_run=true returns the prompts without generating (free)."
            "\n\nModels:\n" + models_description(registry, GENERATE)),
    )
    async def illustrate_content(
        content: Annotated[str, Field(description=f"The text to illustrate, up to {MAX_CONTENT_CHARS} "
                                      "characters.", min_length=1, max_length=MAX_CONTENT_CHARS)],
        ctx: Context,
        count: Annotated[int, Field(ge=1, le=MAX_COUNT, description="How many illustrations.")] = 3,
        purpose: Annotated[Purpose, inline_enum(Purpose, "illustration, cover or thumbnail.")] = Purpose.ILLUSTRATION,
        style: Annotated[ImageStyle, inline_enum(ImageStyle, "One style for the whole set.")] = ImageStyle.ANY,
        model: Annotated[literal_of(gen_models), Field(description="Which model makes the images.")] = gen_models[0],
        size: Annotated[ImageSize, inline_enum(ImageSize, "Shape of every image.")] = ImageSize.LANDSCAPE,
        name: Annotated[str | None, Field(max_length=120, description="For thumbnail: the name shown on the "
                                          "card (defaults to the text's title).")] = None,
        seed: Annotated[int | None, Field(ge=0, le=MAX_SEED, description="Varies the planned compositions "
                                          "deterministically; also sent to models that take a seed.")] = None,
        dry_run: Annotated[bool, Field(description="Only plan: return the prompts, generate nothing.")] = False,
    ) -> Annotated[CallToolResult, IllustrateResult]:
        state = state_of(ctx)
        text = clean_text(content.replace("\x0b", " ").replace("\x0c", " "), "content", required=True)
        label = clean_text(name, "name")
        try:
            plan = await anyio.to_thread.run_sync(
                lambda: plan_illustrations(text, count, purpose, seed=seed, name=label))
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        try:
            spec, provider = state.registry.resolve(model, GENERATE) if not dry_run else (
                _any_spec(state.registry, model), None)
        except ImageGenError as exc:
            raise tool_error(exc) from None

        thumbnail = purpose == Purpose.THUMBNAIL
        requests = []
        for p in plan.prompts:
            prompt = p.prompt
            options: dict[str, Any] = {}
            if thumbnail and spec.supports_palette:
                prompt = thumbnail_prompt_v2(label or plan.analysis.title or text.splitlines()[0][:60], text)
                options["palette"] = list(THUMBNAIL_PALETTE)
            requests.append(GenerationRequest(
                prompt=apply_style(prompt, style, native=spec.native_style), size=size, style=style,
                seed=seed if spec.supports_seed else None,
                negative_prompt=THUMBNAIL_NEGATIVE_PROMPT if thumbnail and spec.supports_negative_prompt else None,
                options=options))
        planned = plan.to_dict()
        items = [Illustration(index=p.index, prompt=r.prompt, section_index=p.section_index,
                              subjects=list(p.subjects), template=p.template)
                 for p, r in zip(plan.prompts, requests, strict=True)]
        if dry_run:
            result = IllustrateResult(analysis=planned["analysis"], style_cohesion=plan.style_cohesion,
                                      dry_run=True, illustrations=items, images=[])
            return build_result(result.model_dump(), [], None, f"Planned {len(items)} prompt(s) "
                                f"({plan.analysis.language}); nothing generated.")

        record = {"tool": "illustrate_content", "purpose": purpose.value, "style": style.value, "size": size.value}
        jobs = [Job(spec, provider, req, label=f"illustration {i + 1}",
                    record={**record, "illustration": i + 1, "subjects": items[i].subjects})
                for i, req in enumerate(requests)]
        progress = Progress(ctx, total=len(jobs), interval=state.settings.progress_interval)
        await progress.send(f"generating {len(jobs)} illustration(s) with {spec.name}")
        previews = Previews(state.settings)
        outcomes = await run_jobs(jobs, state.storage, progress, max_pixels=state.settings.max_image_pixels,
                                  previews=previews)
        images, errors = summarize("illustrate_content", outcomes)
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome.images:
                item.image = image_record(outcome.images[0])
            if outcome.error is not None:
                item.error = ErrorRecord(item=f"illustration {item.index + 1}", kind=type(outcome.error).__name__,
                                         message=str(outcome.error))
        result = IllustrateResult(analysis=planned["analysis"], style_cohesion=plan.style_cohesion, dry_run=False,
                                  illustrations=items, images=[image_record(i) for i in images], errors=errors)
        summary = (f"Illustrated the text ({plan.analysis.language}) with {len(images)} image(s) from {spec.name}"
                   + (f"; {len(errors)} failed" if errors else "") + ": " + ", ".join(i.uri for i in images))
        return build_result(result.model_dump(), images, previews, summary)


def _any_spec(registry: Registry, model: str):  # type: ignore[no-untyped-def]
    specs = registry.candidates(model, GENERATE)
    if not specs:
        raise InvalidRequest(f"model: unknown model {model!r}.")
    return specs[0]
