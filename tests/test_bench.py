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
        "cold", "warmup", "overhead", "download", "concurrency", "http", "team", "memory", "storage", "catalog"}
    assert sections and all(name in proc.stdout for name in sections), proc.stdout


def test_an_unknown_section_is_refused_by_name() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--only", "cold,warp"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "warp" in proc.stderr, proc.stderr


def test_the_download_team_and_warmup_figures_run_quick_and_print_their_rows() -> None:
    """The real servers, the fake pacing its downloads, two stateless replicas of easel-mcp and two of
    the reference server (over HTTP, previews on): one quick run of each."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--runs", "1",
                           "--only", "warmup,download,team"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    for row in ("first generate_image after start + 1 s idle, warm-up on",
                "time to image, 1 MiB photo-like JPEG at 100 Mbit/s: easel-mcp (p50)",
                "easel-mcp - reference, small flat JPEG sent at once",
                "20 concurrent generate_image on 2 replicas / one",
                "20 concurrent calls on 2 reference replicas / one",
                "easel-mcp - reference, burst / one",
                "CPU time per image, per reference replica",
                "peak RSS growth per replica, 10 x 1.0 MiB in flight"):
        assert row in proc.stdout, proc.stdout
