"""generate_image: a prompt becomes 1-4 stored images."""


from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import Field

from providers import GENERATE, Registry, model_names
from providers.errors import ImageGenError
from providers.types import GenerationRequest, ImageSize, ImageStyle
from server import spend
from server.config import Settings
from server.icons import icons
from server.jobs import Finished, Work, answers, images_answer, run_job, split_count
from server.prompts import apply_style
from server.results import GenerateResult
from server.tools._common import (
    CONFIRM_HELP,
    DRY_RUN_HELP,
    GENERATES,
    MAX_SEED,
    clean_text,
    dry_run_result,
    inline_enum,
    literal_of,
    models_description,
    state_of,
    tool_error,
)

__all__ = ["register"]

def register(mcp: MCPServer, settings: Settings, registry: Registry) -> None:
    gen_models = model_names(GENERATE)

    @mcp.tool(
        name="generate_image",
        title="Generate images",
        annotations=GENERATES,
        icons=icons("generate"),
        description=(
            "Generate 1-4 images from a text prompt. Each image is stored before the answer; the result "
            "has an easel://images/… resource link per image (read it for full size), a url a person can "
            "open, and a small preview.\n\nModels:\n" + models_description(registry, GENERATE) +
            "\n\nseed and negative_prompt work with the models marked as taking them; other models refuse "
            "them rather than ignore them. Models with native styles (Recraft v3, Ideogram) take the style "
            "directly; the others get it as a prompt prefix."),
    )
    async def generate_image(
        prompt: Annotated[str, Field(description="What to draw. Plain text, up to "
                                     f"{settings.calls.max_prompt_chars} characters.",
                                     min_length=1, max_length=settings.calls.max_prompt_chars)],
        ctx: Context,
        model: Annotated[literal_of(gen_models), Field(description="Which model makes the image.")] = gen_models[0],  # type: ignore[valid-type]  # Literal built at start-up
        size: Annotated[ImageSize, inline_enum(ImageSize, "Shape: square 1:1, landscape 4:3, portrait 3:4, "
                                                          "wide 16:9, tall 9:16.")] = ImageSize.SQUARE,
        style: Annotated[ImageStyle, inline_enum(ImageStyle, "Visual style; any adds nothing.")] = ImageStyle.ANY,
        count: Annotated[int, Field(ge=1, le=4, description="How many images (1-4), made concurrently.")] = 1,
        seed: Annotated[int | None, Field(ge=0, le=MAX_SEED, description="Seed for repeatable results "
                                          "(models marked 'takes seed'). With count > 1, image i uses seed + i, each made "
                                          "by its own provider call, so that image's seed with count 1 makes it "
                                          "again.")] = None,
        negative_prompt: Annotated[str | None, Field(max_length=settings.calls.max_prompt_chars,
                                                     description="What to avoid (models marked "
                                                     "'takes negative_prompt').")] = None,
        dry_run: Annotated[bool, Field(description=DRY_RUN_HELP)] = False,
        confirm_spend: Annotated[bool, Field(description=CONFIRM_HELP)] = False,
    ) -> Annotated[CallToolResult, GenerateResult] | InputRequiredResult:
        state = state_of(ctx)
        text = clean_text(prompt, "prompt", required=True)
        negative = clean_text(negative_prompt, "negative_prompt")
        try:
            spec, provider = state.registry.resolve(model, GENERATE)
            base = GenerationRequest(prompt=apply_style(text, style, native=spec.native_style), size=size,
                                     style=style, seed=seed, negative_prompt=negative)
            spec.check(base)
        except ImageGenError as exc:
            raise tool_error(exc) from None
        record = {"tool": "generate_image", "user_prompt": text, "size": size.value, "style": style.value}
        requests = split_count(spec, base, count)
        work = [Work(spec, provider, req if seed is None else _reseed(req, seed + i),
                     label=f"image {i + 1} of {len(requests)}" if len(requests) > 1 else "", metadata=record)
                for i, req in enumerate(requests)]

        if dry_run:
            return await dry_run_result(ctx, "generate_image", work)
        booking = await spend.admit(ctx, "generate_image", spend.units_of(work), confirm_spend=confirm_spend)
        if isinstance(booking, InputRequiredResult):   # the user is asked first (2026-07-28 clients)
            return booking
        return await run_job(ctx, "generate_image", work, total=count, context={"model": spec.name},
                             announce=f"submitting {count} image(s) to {spec.name}", booking=booking)


@answers("generate_image")
def _answer(context: dict[str, Any], done: Finished) -> tuple[GenerateResult, str]:
    failed = f"; {len(done.errors)} failed." if done.errors else "."
    return images_answer(done, f"Generated {len(done.images)} image(s) with {context['model']}{failed}")


def _reseed(request: GenerationRequest, seed: int) -> GenerationRequest:
    from dataclasses import replace

    return replace(request, seed=seed % (MAX_SEED + 1))
