"""illustrate_content: a text becomes a set of matching illustrations.

This module declares the arguments and runs the pipeline; the planning lives in
``server/illustration/`` (scenes from the caller, a prompt-writing model or the
deterministic planner; prompts assembled for the chosen model).
"""

from typing import TYPE_CHECKING, Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import BaseModel, Field

from providers import GENERATE, Registry, model_names
from providers.base import ImageProvider, ModelSpec
from providers.errors import ImageGenError, InvalidRequest
from providers.types import GenerationRequest, ImageSize, ImageStyle
from server import dryrun, spend
from server.config import Settings
from server.icons import icons
from server.illustration import (
    MAX_CONTENT_CHARS,
    MAX_COUNT,
    IllustrationPlan,
    Purpose,
    Target,
    analyse,
    plan_illustrations,
    prompt_lines,
)
from server.illustration.text import one_line, shorten
from server.illustration.writer import ModelAttempt, ask_model
from server.jobs import Finished, Work, answers, error_record, run_job
from server.results import (
    CALLS,
    COST_TOTAL,
    JOB_FIELD,
    ErrorRecord,
    ImageRecord,
    JobHandle,
    build_result,
    cost_line,
    total_cost,
)
from server.tools._common import (
    CONFIRM_HELP,
    GENERATES,
    MAX_SEED,
    ArgumentError,
    clean_text,
    inline_enum,
    literal_of,
    models_description,
    state_of,
    tool_error,
)

if TYPE_CHECKING:
    from server.state import AppState

__all__ = ["IllustrateResult", "register"]

SCENES_HELP = (
    "Optional: your own scene descriptions, one per image (1-8). Write each as one concrete scene: subject, "
    "what it is doing, setting, composition, light (e.g. 'a beekeeper in a veil lifts a honey-heavy frame from "
    "a rooftop hive, city towers behind, low morning sun'). No style words: the server adds the set's style and "
    "cohesion. English for models that read only English. With scenes, count may be left out.")


class Illustration(BaseModel):
    index: int
    prompt: str = Field(description="the prompt as sent (style applied)")
    negative_prompt: str | None = None
    scene: str
    section_index: int | None = None
    subjects: list[str]
    template: str
    image: ImageRecord | None = None
    error: ErrorRecord | None = None


class PromptModelUse(BaseModel):
    model: str
    used: bool
    note: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = Field(default=None, description="null when the vendor's price is not known")


class IllustrateResult(BaseModel):
    analysis: dict[str, Any] = Field(description="language, prompt_language, scene_source (caller, language_model "
                                     "or planner), notes, title, keywords, themes, sections")
    style_cohesion: str
    dry_run: bool
    prompt_model: PromptModelUse | None = None
    illustrations: list[Illustration]
    images: list[ImageRecord]
    errors: list[ErrorRecord] = Field(default_factory=list)
    cost_usd: float | None = Field(default=None, description=COST_TOTAL)
    calls: list[dict[str, Any]] | None = Field(default=None, description=CALLS)
    job: JobHandle | None = Field(default=None, description=JOB_FIELD)


def register(mcp: MCPServer, settings: Settings, registry: Registry) -> None:
    gen_models = model_names(GENERATE)

    @mcp.tool(
        name="illustrate_content",
        title="Illustrate a text",
        annotations=GENERATES,
        icons=icons("illustrate"),
        description=(
            "Turn a text (article, chapter, product page, recipe, poem; English or Chinese) into "
            f"1-{MAX_COUNT} illustrations that fit it and each other. Scenes come from, in order: your `scenes` "
            "(best: you have read the text; one concrete scene per image with subject, action, setting, "
            "composition and light, no style words), a prompt-writing model if the server has one, or the "
            "server's planner (one scene per important section). The server adds the style, one shared "
            "cohesion phrase and per-model constraints, in the language the model reads. Call with "
            "dry_run=true first to see the sections found and every prompt (nothing generated). purpose: "
            "illustration, cover (one image for the whole text), thumbnail (an app or agent card from a name "
            "plus description). All images are generated concurrently; each item reports its image or error."
            "\n\nModels:\n" + models_description(registry, GENERATE)),
    )
    async def illustrate_content(
        content: Annotated[str, Field(description=f"The text to illustrate, up to {MAX_CONTENT_CHARS} "
                                      "characters.", min_length=1, max_length=MAX_CONTENT_CHARS)],
        ctx: Context,
        count: Annotated[int | None, Field(ge=1, le=MAX_COUNT, description="How many illustrations (default 3, "
                                           "or the number of scenes).")] = None,
        scenes: Annotated[list[str] | None, Field(min_length=1, max_length=MAX_COUNT,
                                                  description=SCENES_HELP)] = None,
        purpose: Annotated[Purpose, inline_enum(Purpose, "illustration, cover or thumbnail.")] = Purpose.ILLUSTRATION,
        style: Annotated[ImageStyle, inline_enum(ImageStyle, "One style for the whole set.")] = ImageStyle.ANY,
        model: Annotated[literal_of(gen_models), Field(description="Which model makes the images.")] = gen_models[0],  # type: ignore[valid-type]  # Literal built at start-up
        size: Annotated[ImageSize, inline_enum(ImageSize, "Shape of every image.")] = ImageSize.LANDSCAPE,
        name: Annotated[str | None, Field(max_length=120, description="For thumbnail: the name shown on the "
                                          "card (defaults to the text's title).")] = None,
        seed: Annotated[int | None, Field(ge=0, le=MAX_SEED, description="Varies the planned compositions "
                                          "deterministically; also sent to models that take a seed.")] = None,
        dry_run: Annotated[bool, Field(description="Only plan: return the prompts, each provider request (keys "
                                       "redacted) and the estimated cost; generate nothing.")] = False,
        confirm_spend: Annotated[bool, Field(description=CONFIRM_HELP)] = False,
    ) -> Annotated[CallToolResult, IllustrateResult] | InputRequiredResult:
        state = state_of(ctx)
        text = clean_text(content.replace("\x0b", " ").replace("\x0c", " "), "content", required=True)
        label = clean_text(name, "name") if name is not None else None
        if name is not None and not label:
            raise ArgumentError("name: it is empty after removing control characters; give the app or agent's name")
        provider: ImageProvider | None = None
        try:
            spec, provider = state.registry.resolve(model, GENERATE)
        except ImageGenError as exc:
            if not dry_run:   # a dry run still plans for a model this server cannot run yet
                raise tool_error(exc) from None
            spec = _any_spec(state.registry, model)
        target = Target.of(spec)
        wanted = count if count is not None else (len(scenes) if scenes else 3)
        try:
            analysed = await anyio.to_thread.run_sync(analyse, text)
            attempt = None
            prompt_model = state.settings.calls.prompt_model
            if scenes is None and purpose != Purpose.THUMBNAIL and prompt_model:
                if not dry_run:   # the scene-writing model is a provider request: the budget comes first
                    await spend.within_budget(ctx, "illustrate_content", [spend.Unit(spec.name, wanted, spec.price)])
                attempt = await _ask(state, prompt_model, analysed.analysis, wanted, purpose, target)
            plan = await anyio.to_thread.run_sync(lambda: plan_illustrations(
                text, wanted, purpose, seed=seed, name=label, style=style, target=target, scenes=scenes,
                model_scenes=attempt.scenes if attempt else None, notes=(attempt.note,) if attempt else (),
                analysed=analysed))
        except ValueError as exc:   # the plan refuses the arguments (scenes vs count, language): name the field
            raise ArgumentError(str(exc)) from None

        items = [Illustration(index=p.index, prompt=p.prompt, negative_prompt=p.negative_prompt, scene=p.scene,
                              section_index=p.section_index, subjects=list(p.subjects), template=p.template)
                 for p in plan.prompts]
        planned = plan.to_dict()
        model_use = _model_use(attempt)
        requests = [GenerationRequest(prompt=p.prompt, size=size, style=style,
                                      seed=seed if spec.supports_seed else None, negative_prompt=p.negative_prompt,
                                      options={"palette": list(p.palette)} if p.palette else {})
                    for p in plan.prompts]
        if dry_run:
            units = [spend.Unit(spec.name, r.count, spec.price, f"illustration {i + 1}") for i, r in enumerate(requests)]
            try:
                described = [provider.describe_calls(spec, r) if provider else [] for r in requests]
            except ImageGenError as exc:   # a builder refuses the request: say so, as the real call would
                raise tool_error(exc) from None
            shown = await dryrun.dry_run(state, spend.Quote("illustrate_content", tuple(units), state.settings.spend),
                                        described)
            result = IllustrateResult(analysis=planned["analysis"], style_cohesion=plan.style_cohesion, dry_run=True,
                                      prompt_model=model_use, illustrations=items, images=[], calls=shown.calls,
                                      cost_usd=shown.cost_usd)
            unshown = ("" if provider else f"\nRequests: not shown: {spec.name} is not configured on this server "
                       f"(set {state.registry.needed(spec.name, GENERATE)}).")
            return build_result(result.model_dump(), [], None,
                                _text(plan, spec, attempt, dry_run=True) + unshown + "\n" + shown.detail)
        assert provider is not None   # resolved above whenever this is not a dry run

        record = {"tool": "illustrate_content", "purpose": purpose.value, "style": style.value, "size": size.value,
                  "scene_source": plan.scene_source.value}
        work = [Work(spec, provider, req, label=f"illustration {i + 1}",
                     metadata={**record, "illustration": i + 1, "subjects": items[i].subjects})
                for i, req in enumerate(requests)]

        context = {"model": spec.name, "analysis": planned["analysis"], "style_cohesion": plan.style_cohesion,
                   "prompt_model": model_use.model_dump() if model_use else None,
                   "illustrations": [i.model_dump() for i in items], "plan_text": _text(plan, spec, attempt, dry_run=False)}
        booking = await spend.admit(ctx, "illustrate_content", spend.units_of(work), confirm_spend=confirm_spend)
        if isinstance(booking, InputRequiredResult):   # the user is asked first (2026-07-28 clients)
            return booking
        return await run_job(ctx, "illustrate_content", work, total=len(work), context=context, booking=booking,
                             announce=f"generating {len(work)} illustration(s) with {spec.name}")


@answers("illustrate_content")
def _answer(context: dict[str, Any], done: Finished) -> tuple[IllustrateResult, str]:
    """Each illustration with its image or its error, so far or in the end (any process can answer)."""
    items = [Illustration.model_validate(i) for i in context["illustrations"]]
    shown = {s.image_id: r for s, r in zip(done.images, done.records, strict=True)}
    for item, outcome in zip(items, done.outcomes, strict=True):
        if outcome.images:
            item.image = shown[outcome.images[0].image_id]
        if outcome.error is not None:
            item.error = error_record(f"illustration {item.index + 1}", outcome.error)
    result = IllustrateResult(analysis=context["analysis"], style_cohesion=context["style_cohesion"], dry_run=False,
                              prompt_model=context["prompt_model"], illustrations=items, images=done.records,
                              errors=done.errors, cost_usd=total_cost([r.cost_usd for r in done.records]))
    summary = (f"Illustrated the text with {len(done.images)} image(s) from {context['model']}"
               + (f"; {len(done.errors)} failed." if done.errors else "."))
    return result, "\n".join([summary, *_outcome_lines(items), cost_line([r.cost_usd for r in done.records]),
                               context["plan_text"]])


async def _ask(state: "AppState", prompt_model: tuple[str, str], analysis: Any, count: int, purpose: Purpose,
               target: Target) -> ModelAttempt:
    provider_name, model = prompt_model
    lang = target.writes(analysis.language)
    try:
        provider = state.registry.provider(provider_name)
    except ImageGenError as exc:
        return ModelAttempt(f"{provider_name}:{model}", None, f"{provider_name} is not usable ({exc}); "
                            "the planner wrote the scenes")
    return await ask_model(provider, f"{provider_name}:{model}", model, analysis, count, purpose, lang,
                           state.settings.calls.prompt_timeout)


def _model_use(attempt: ModelAttempt | None) -> PromptModelUse | None:
    if attempt is None:
        return None
    reply = attempt.reply
    return PromptModelUse(model=attempt.name, used=attempt.scenes is not None, note=attempt.note,
                          input_tokens=reply.input_tokens if reply else None,
                          output_tokens=reply.output_tokens if reply else None,
                          cost_usd=reply.cost_usd if reply else None)


def _outcome_lines(items: list[Illustration]) -> list[str]:
    """Each illustration's image (URI, a url a person can open, size) or why it failed, numbered like the
    prompts below it: a caller that sees only text (LangChain, the Agents SDK) needs nothing else."""
    lines = []
    for item in items:
        n = item.index + 1
        if (r := item.image) is not None:
            lines += [f"Illustration {n}: {r.uri}", f"  url: {r.url}",
                      f"  {r.width}x{r.height}, {r.mime_type}" + (f", seed {r.seed}" if r.seed is not None else "")]
            if r.note:
                lines.append(f"  note: {r.note}")
        if (e := item.error) is not None:
            lines.append(f"Illustration {n} failed ({e.kind}): {e.message}")
    return lines


def _text(plan: IllustrationPlan, spec: ModelSpec, attempt: ModelAttempt | None, *, dry_run: bool) -> str:
    """What a caller that sees only text needs: where the scenes came from and every prompt as sent."""
    source = {"caller": "your scenes", "language_model": "the prompt-writing model",
              "planner": "the server's planner"}[plan.scene_source.value]
    head = (f"Planned {len(plan.prompts)} prompt(s) for {spec.name} from {source}"
            f" (text: {plan.analysis.language}, prompts: {plan.language})")
    if dry_run:
        if attempt is not None and attempt.reply is not None:
            cost = attempt.reply.cost_usd
            head += (f"; nothing generated, but the prompt model was called ("
                     f"{'$%.4f' % cost if cost is not None else 'cost unknown'}, "
                     f"{(attempt.reply.input_tokens or 0) + (attempt.reply.output_tokens or 0)} tokens)")
        else:
            head += "; nothing generated, nothing spent"
    notes = "".join(f"\nNote: {n}" for n in plan.notes)
    sections = ""
    if dry_run:   # what a caller writing its own scenes needs to know
        sections = "\nSections found:\n" + "\n".join(
            f"[{s.index + 1}] {s.title + ': ' if s.title else ''}{shorten(one_line(s.text), 100)}"
            for s in plan.analysis.sections[:12])
    return f"{head}.{notes}{sections}\nPrompts as sent:\n{prompt_lines(plan)}"


def _any_spec(registry: Registry, model: str) -> ModelSpec:
    specs = registry.candidates(model, GENERATE)
    if not specs:
        raise InvalidRequest(f"model: unknown model {model!r}.")
    return specs[0]
