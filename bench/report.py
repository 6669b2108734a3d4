"""The printed table and the machine it ran on."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

from bench.common import Row, fmt


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import version

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, mcp {version('mcp')}, replicate {version('replicate')}")


def print_table(rows: list[Row]) -> None:
    header = ("metric", "median", "spread (min-max)", "target", "result")
    lines = []
    for r in rows:
        spread = (f"{fmt(min(r.values), r.unit)} - {fmt(max(r.values), r.unit)}" if len(r.values) > 1 else "")
        result = "" if r.ok is None else ("pass" if r.ok else "MISS")
        lines.append((r.metric, fmt(r.median, r.unit), spread, r.target, result))
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    sep = "  "
    print(sep.join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(sep.join("-" * w for w in widths))
    for line in lines:
        print(sep.join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    notes = [(r.metric, r.note) for r in rows if r.note]
    if notes:
        print()
        for metric, note in notes:
            print(f"  {metric.strip()}: {note}")
