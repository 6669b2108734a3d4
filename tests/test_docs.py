"""The docs keep up with the code: every variable the code reads is in docs/configuration.md, and
every page the README and docs/ link to exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIABLE = re.compile(r"\b(?:EASEL_[A-Z0-9_]*[A-Z0-9]|OSS_[A-Z_]*[A-Z]|[A-Z]+_(?:API_KEY|API_TOKEN|BASE_URL))\b")
NOT_VARIABLES = {"DEFAULT_BASE_URL"}


def variables_in_code() -> set[str]:
    found: set[str] = set()
    for package in ("server", "providers"):
        for path in (ROOT / package).rglob("*.py"):
            found |= set(VARIABLE.findall(path.read_text(encoding="utf-8")))
    return found - NOT_VARIABLES


def test_every_variable_the_code_reads_is_in_the_configuration_page() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", page))
    missing = sorted(variables_in_code() - documented)
    assert len(variables_in_code()) > 40 and not missing, f"docs/configuration.md does not mention {missing}"


def test_every_local_link_in_the_readme_and_docs_leads_to_a_file() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
