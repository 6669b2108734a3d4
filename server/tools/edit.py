"""edit_image: a prompt plus reference images becomes a new stored image (each model has its own limit)."""

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import Field

from providers import EDIT, Registry, model_names
from providers.errors import ImageGenError
from providers.types import AspectRatio, GenerationRequest, OutputFormat
from server import spend
from server.config import Settings
from server.icons import icons
from server.inputs import InputError, InputLimits, resolve_images
from server.jobs import Finished, Work, answers, images_answer, run_job
from server.results import GenerateResult
from server.tools._common import (
    CONFIRM_HELP,
    DRY_RUN_HELP,
    GENERATES,
    ArgumentError,
    clean_text,
    dry_run_result,
    inline_enum,
    literal_of,
    models_description,
    state_of,
    tool_error,
)

__all__ = ["register"]


def input_limits(settings: Settings) -> InputLimits:
    return InputLimits(max_bytes=settings.inputs.max_bytes, max_pixels=settings.inputs.max_pixels,
                       input_dirs=settings.inputs.input_dirs)


def register(mcp: MCPServer, settings: Settings, registry: Registry) -> None:
    edit_models = model_names(EDIT)

    @mcp.tool(
        name="edit_image",
        title="Edit or combine images",
        annotations=GENERATES,
        icons=icons("edit"),
        description=(
            "Edit, restyle or combine reference images with a text instruction (or generate from the "
            "prompt alone when no images are given). Each image reference may be an easel://images/… URI, "
            "an https URL, a data: URI (e.g. an image attached in chat), or a local path inside a directory "
            f"the operator allowed. Inputs must be PNG, JPEG, WebP or GIF, at most "
            f"{settings.inputs.max_bytes // (1024 * 1024)} MiB and {settings.inputs.max_pixels // 1_000_000} "
            "megapixels each; they are checked before anything is spent.\n\nModels:\n"
            + models_description(registry, EDIT)),
    )
    async def edit_image(
        prompt: Annotated[str, Field(description="What to do with the images, or what to draw.",
                                     min_length=1, max_length=settings.calls.max_prompt_chars)],
        ctx: Context,
        images: Annotated[list[str], Field(description="Reference images (easel:// URI, https URL, data: URI "
                                           "or allowed local path). May be empty.", max_length=14)] = [],  # noqa: B006
        model: Annotated[literal_of(edit_models), Field(description="Which model edits.")] = edit_models[0],  # type: ignore[valid-type]  # Literal built at start-up
        aspect_ratio: Annotated[AspectRatio, inline_enum(AspectRatio, "Output shape; match_input_image keeps "
                                                         "the first image's shape. A model without this ratio "
                                                         "uses its nearest one.")] = AspectRatio.MATCH_INPUT_IMAGE,
        output_format: Annotated[OutputFormat, inline_enum(OutputFormat, "jpg or png.")] = OutputFormat.JPG,
        dry_run: Annotated[bool, Field(description=DRY_RUN_HELP)] = False,
        confirm_spend: Annotated[bool, Field(description=CONFIRM_HELP)] = False,
    ) -> Annotated[CallToolResult, GenerateResult] | InputRequiredResult:
        state = state_of(ctx)
        text = clean_text(prompt, "prompt", required=True)
        try:
            spec, provider = state.registry.resolve(model, EDIT)
            if len(images) > spec.max_input_images:
                raise ArgumentError(f"images: {spec.name} accepts at most {spec.max_input_images} images; "
                                    f"{len(images)} were given.")
            inputs = await resolve_images(images, storage=state.storage, limits=input_limits(state.settings),
                                          client=state.http)
            request = GenerationRequest(prompt=text, input_images=tuple(inputs), aspect_ratio=aspect_ratio,
                                        output_format=output_format)
            spec.check(request)
        except InputError as exc:
            raise ArgumentError(str(exc)) from None
        except ImageGenError as exc:
            raise tool_error(exc) from None
        record = {"tool": "edit_image", "user_prompt": text, "inputs": [i.source for i in inputs],
                  "aspect_ratio": aspect_ratio.value, "output_format": output_format.value}
        work = [Work(spec, provider, request, metadata=record)]
        if dry_run:
            return await dry_run_result(ctx, "edit_image", work)
        booking = await spend.admit(ctx, "edit_image", spend.units_of(work), confirm_spend=confirm_spend)
        if isinstance(booking, InputRequiredResult):   # the user is asked first (2026-07-28 clients)
            return booking
        return await run_job(
            ctx, "edit_image", work, total=1, booking=booking,
            context={"model": spec.name, "inputs": len(inputs)},
            announce=f"sending {len(inputs)} reference image(s) to {spec.name}")


@answers("edit_image")
def _answer(context: dict[str, Any], done: Finished) -> tuple[GenerateResult, str]:
    return images_answer(done, f"Edited with {context['model']} ({context['inputs']} reference image(s)): "
                               f"{len(done.images)} image(s).")
