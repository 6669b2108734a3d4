"""MCP prompts: the slash commands a host shows, and completions for their arguments.

Each prompt returns one user message that tells the assistant which easel tool to call, with
which arguments, and how to write the image prompt for it (reference: a scene, subject
first, 30-80 words, in English; words to render go in quotes for lettering models). Prompt
arguments are strings in MCP; those with a fixed set of values complete, and so do stored
image ids in ``easel://images/{image_id}``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from mcp import MCPError
from mcp.server.mcpserver import MCPServer
from mcp.types import Completion, CompletionArgument, PromptReference, ResourceTemplateReference
from pydantic import Field

from providers import GENERATE, model_names
from providers.types import ImageSize, ImageStyle
from server.icons import icons
from server.storage import URI_PREFIX, Storage, StorageError

__all__ = ["register_prompts"]

log = logging.getLogger("easel.prompts")

MAX_COMPLETIONS = 100   # the protocol's limit per completion response

#: Where a social image is shown -> the semantic size that fits it (platforms crop the rest).
PLATFORMS = {
    "link preview (Open Graph)": ImageSize.WIDE, "X / Twitter post": ImageSize.WIDE,
    "YouTube thumbnail": ImageSize.WIDE, "LinkedIn post": ImageSize.LANDSCAPE,
    "Instagram post": ImageSize.SQUARE, "Instagram / TikTok story": ImageSize.TALL,
    "Pinterest pin": ImageSize.PORTRAIT,
}
MARKS = ["logo", "wordmark", "app icon", "favicon", "emblem"]
SETTINGS = ["seamless white studio backdrop", "light grey gradient backdrop", "marble kitchen counter",
            "wooden desk by a window", "outdoors in soft morning light", "flat lay on linen"]


def _refuse(message: str) -> MCPError:
    """A bad prompt argument: -32602 with the message (other exceptions reach the host as a bare
    "Error rendering prompt")."""
    return MCPError(code=-32602, message=message)


def _pick(value: str, allowed: list[str], field: str) -> str:
    value = value.strip()
    if value not in allowed:
        raise _refuse(f"{field}: {value[:60]!r} is not one of {', '.join(allowed)}.")
    return value


def _count(value: str, field: str, high: int) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= high:
        raise _refuse(f"{field}: must be a whole number from 1 to {high}, not {value[:20]!r}.")
    return int(value)


def _preferred(*names: str) -> str:
    """The first of ``names`` this catalog has, else the default generation model."""
    available = model_names(GENERATE)
    return next((n for n in names if n in available), available[0])


def register_prompts(mcp: MCPServer, storage: Storage) -> None:
    styles = [s.value for s in ImageStyle]
    sizes = [s.value for s in ImageSize]
    models = model_names(GENERATE)

    @mcp.prompt(name="illustrate_article", title="Illustrate an article", icons=icons("illustrate"),
                description="Turn an article, post or chapter into a set of matching illustrations.")
    def illustrate_article(
        article: Annotated[str, Field(description="The text to illustrate (pasted in full).")],
        count: Annotated[str, Field(description="How many illustrations, 1-10.")] = "3",
        style: Annotated[str, Field(description="One visual style for the set (see completions).")] = "any",
    ) -> str:
        n, style = _count(count, "count", 10), _pick(style, styles, "style")
        return (f"Illustrate the article below with {n} image(s). Call the illustrate_content tool with the whole "
                f"article as content, count={n}, style=\"{style}\" and purpose=\"illustration\". When it answers, "
                "show me each image's url with one line on the passage it illustrates, and list any that failed."
                f"\n\nArticle:\n{article.strip()}")

    @mcp.prompt(name="product_shot", title="Product photo", icons=icons("generate"),
                description="Catalogue-style photos of a product on a backdrop or in a setting.")
    def product_shot(
        product: Annotated[str, Field(description="The product: what it is, material, colour, any label text.")],
        setting: Annotated[str, Field(description="Backdrop or scene (see completions).")] = SETTINGS[0],
        size: Annotated[str, Field(description="square, landscape, portrait, wide or tall.")] = "square",
        count: Annotated[str, Field(description="How many variations, 1-4.")] = "2",
        model: Annotated[str, Field(description="Which model (see completions).")] = "",
    ) -> str:
        n, size = _count(count, "count", 4), _pick(size, sizes, "size")
        model = _pick(model, models, "model") if model.strip() else _preferred("Flux 1.1 Pro")
        return (f"Make {n} product photo(s) of: {product.strip()}\n\n"
                f"Call generate_image with model=\"{model}\", size=\"{size}\", count={n}, style=\"realistic_image\" "
                "and a prompt you write in English as one scene of 30-80 words, product first: the product with "
                "its exact shape, materials, colours and any label text as given (text to appear in quotes), "
                f"placed on or in: {setting.strip()}; a three-quarter view at eye level with an 85 mm lens look, "
                "soft diffused key light with a gentle contact shadow, crisp focus on the product, clean "
                "commercial catalogue photography. Add no other products, hands or lettering the product does not "
                "have. Then show me each image's url.")

    @mcp.prompt(name="logo", title="Logo or icon", icons=icons("logo"),
                description="A logo, wordmark, app icon or favicon for a brand or project.")
    def logo(
        brand: Annotated[str, Field(description="The name, exactly as it should be spelled.")],
        description: Annotated[str, Field(description="What it is and how it should feel.")] = "",
        kind: Annotated[str, Field(description="logo, wordmark, app icon, favicon or emblem.")] = "logo",
        colors: Annotated[str, Field(description="Colours to use, e.g. 'navy and coral'.")] = "",
    ) -> str:
        kind = _pick(kind, MARKS, "kind")
        lettered = kind in ("logo", "wordmark", "emblem")
        model = _preferred("Ideogram v3", "Recraft v3") if lettered else _preferred("Recraft v3", "Ideogram v3")
        about = f" ({description.strip()})" if description.strip() else ""
        palette = colors.strip() or "two or three flat colours"
        text = (f"the name \"{brand.strip()}\" in clean, well-kerned letters, spelled exactly" if lettered else
                "a single bold symbol with no letters, readable at 32 pixels, inside a rounded square")
        return (f"Design a {kind} for {brand.strip()}{about}.\n\n"
                f"Call generate_image with model=\"{model}\", size=\"square\", count=4, style=\"any\" and a prompt "
                f"in English like: a flat vector {kind} for {brand.strip()}: {text}; simple geometric shapes, "
                f"{palette}, centred on a plain white background, generous margins, no gradients, no mockup, "
                "no extra words. Then show me the four urls side by side and ask which to refine "
                "(edit_image can change one of them).")

    @mcp.prompt(name="social_card", title="Social media card", icons=icons("social"),
                description="A shareable image with a headline, sized for the platform it is posted on.")
    def social_card(
        title: Annotated[str, Field(description="The headline to show on the card.")],
        platform: Annotated[str, Field(description="Where it will be posted (see completions).")]
        = "link preview (Open Graph)",
        subtitle: Annotated[str, Field(description="A short second line (optional).")] = "",
        style: Annotated[str, Field(description="Visual style (see completions).")] = "any",
    ) -> str:
        platform, style = _pick(platform, list(PLATFORMS), "platform"), _pick(style, styles, "style")
        size = PLATFORMS[platform].value
        model = _preferred("Ideogram v3", "Recraft v3")
        second = f" and, smaller below it, \"{subtitle.strip()}\"" if subtitle.strip() else ""
        return (f"Make a {platform} image for the headline \"{title.strip()}\".\n\n"
                f"Call generate_image with model=\"{model}\", size=\"{size}\", count=2, style=\"{style}\" and a "
                f"prompt in English: a bold graphic background that evokes the subject of the headline, with the "
                f"headline \"{title.strip()}\" in large, high-contrast letters{second}, spelled exactly; keep all "
                "text inside the central 80% (platforms crop the edges), no other words, no logos. Then show me "
                "both urls.")

    choices: dict[tuple[str, str], list[str]] = {
        ("illustrate_article", "style"): styles, ("illustrate_article", "count"): [str(i) for i in range(1, 11)],
        ("product_shot", "setting"): SETTINGS, ("product_shot", "size"): sizes, ("product_shot", "model"): models,
        ("product_shot", "count"): ["1", "2", "3", "4"], ("logo", "kind"): MARKS,
        ("social_card", "platform"): list(PLATFORMS), ("social_card", "style"): styles,
    }

    @mcp.completion()
    async def complete(ref: Any, argument: CompletionArgument, context: Any) -> Completion | None:
        typed = argument.value.strip().lower()
        if isinstance(ref, PromptReference):
            values = choices.get((ref.name, argument.name))
        elif isinstance(ref, ResourceTemplateReference) and ref.uri.startswith(URI_PREFIX) \
                and argument.name == "image_id":
            values = await _recent_ids(storage)
        else:
            values = None
        if values is None:
            return None
        matches = [v for v in values if v.lower().startswith(typed)] or \
                  [v for v in values if typed in v.lower()]
        return Completion(values=matches[:MAX_COMPLETIONS], total=len(matches),
                          has_more=len(matches) > MAX_COMPLETIONS)


async def _recent_ids(storage: Storage) -> list[str]:
    try:
        records, _ = await storage.list_recent(MAX_COMPLETIONS, None)
    except StorageError as exc:
        log.info("no image id completions: %s", exc)
        return []
    return [str(r["id"]) for r in records if isinstance(r, dict) and "id" in r]
