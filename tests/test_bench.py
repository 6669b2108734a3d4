"""`make bench` still starts: bench/run.py imports every figure module of the package and offers
every section (the figures themselves are measured by `make bench`, never asserted in tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_bench_entry_imports_every_figure_and_lists_every_section() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    sections = {p.stem for p in (ROOT / "bench").glob("*.py")} & {
        "cold", "overhead", "concurrency", "http", "memory", "storage", "catalog"}
    assert sections and all(name in proc.stdout for name in sections), proc.stdout


def test_an_unknown_section_is_refused_by_name() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--only", "cold,warp"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "warp" in proc.stderr, proc.stderr
