"""docs/models.md lists every model in the catalog, with the catalog's price."""

from __future__ import annotations

from pathlib import Path

from providers import all_specs

DOC = (Path(__file__).parents[2] / "docs" / "models.md").read_text().split("### Prices")[0]   # the model table
ROWS = {line.split("|")[1].strip().removesuffix(" (default)").removesuffix(" (edit default)"): line
        for line in DOC.splitlines() if line.startswith("| ") and not line.startswith("| model")}


def test_every_model_has_a_row_with_its_price_or_says_unknown() -> None:
    for spec in all_specs():
        row = ROWS.get(spec.name)
        assert row is not None, f"docs/models.md has no row for {spec.name}"
        if spec.price is None:
            assert "unknown" in row or "billed by" in row, spec.name
        elif spec.price.amount == 0:
            assert "free quota" in row, spec.name
        else:
            assert f"{spec.price.amount:g}/" in row and spec.price.checked in row, spec.name
