"""`make prompts`: each evaluation text's first line beside the prompts the planner writes,
for an English-only model (Flux) and a Chinese-reading one (Wanx), so a person can read them
in a minute."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from providers import all_specs  # noqa: E402
from server.illustration import Target, plan_illustrations  # noqa: E402
from tests.server.illustration.eval_texts import EVAL  # noqa: E402


def main() -> None:
    specs = {s.name: s for s in all_specs()}
    flux, wanx = Target.of(specs["Flux 1.1 Pro"]), Target.of(specs["Wanx 2.1 T2I Plus (DashScope)"])
    for name, text, _, _ in EVAL:
        first = next(line for line in text.splitlines() if line.strip())
        print(f"== {name}: {first[:70]}")
        targets = [flux] + ([wanx] if any("\u4e00" <= ch <= "\u9fff" for ch in text) else [])
        for target in targets:
            plan = plan_illustrations(text, 2, target=target)
            for p in plan.prompts:
                print(textwrap.fill(f"[{target.name.split(' ')[0]}] {p.prompt}", 110, subsequent_indent="    "))
        print()


if __name__ == "__main__":
    main()
