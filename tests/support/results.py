"""Reading what a tool call left behind: its text (all some clients show a model) and the store."""

from __future__ import annotations

from pathlib import Path


def text_of(result) -> str:  # type: ignore[no-untyped-def]
    """The text blocks of a tool result, joined (error messages live there)."""
    from mcp.types import TextContent

    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


def files_in(root: Path) -> list[Path]:
    """Files in the store under ``root``, leaving out the catalog (an index of the store, not something
    stored); none when it does not exist."""
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".catalog.")] if root.exists() else []
