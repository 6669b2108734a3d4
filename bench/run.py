"""``make bench`` runs this file: the benchmark itself is the ``bench`` package (bench/__main__.py
parses the options; one module per figure). ``python -m bench`` does the same."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)          # import ``bench`` as a package; its modules never shadow the stdlib

from bench.__main__ import main  # noqa: E402

if __name__ == "__main__":
    main()
