"""Virtual environments of their own for frameworks that cannot share the test venv.

langchain-mcp-adapters pins ``mcp<2`` while the server needs ``mcp>=2.3``, so its client runs from
``.venv-interop/<name>`` (gitignored at the repository root), made on first use and reused while its
requirements stay the same. An install that fails or takes too long (offline, a yanked release)
skips the test that needs it, with pip's own last words; nothing else does.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / ".venv-interop"
INSTALL_TIMEOUT = 300  # seconds for one pip install; a warm pip cache needs ~20


def pip_failure(stderr: bytes | str | None, lines: int = 6) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else (stderr or "")
    kept = [line.strip() for line in text.splitlines() if line.strip() and "is ignored: it is neither" not in line]
    return " | ".join(kept[-lines:])


def framework_python(name: str, requirements: list[str]) -> Path:
    """The python of ``.venv-interop/<name>`` with ``requirements`` installed (made once, then reused)."""
    key = hashlib.sha256("\n".join([sys.version, *sorted(requirements)]).encode()).hexdigest()
    home = ROOT / name
    python = home / "bin" / "python"
    stamp = home / ".requirements-sha256"
    if stamp.exists() and stamp.read_text() == key and python.exists():
        return python
    building = ROOT / f"{name}.building"
    shutil.rmtree(building, ignore_errors=True)
    ROOT.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True, capture_output=True, timeout=120)
    # Made under another name and renamed at the end, so an interrupted install is never reused.
    try:
        proc = subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "--quiet",
                               "--disable-pip-version-check", *requirements],
                              capture_output=True, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(building, ignore_errors=True)
        pytest.skip(f"installing {' '.join(requirements)} took over {INSTALL_TIMEOUT} s "
                    f"(offline or a slow index?): {pip_failure(exc.stderr)}")
    if proc.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        pytest.skip(f"{' '.join(requirements)} cannot be installed here (pip exit {proc.returncode}): "
                    f"{pip_failure(proc.stderr)}")
    shutil.rmtree(home, ignore_errors=True)
    building.rename(home)  # venv scripts use absolute paths; python -m pip and python itself do not care
    stamp.write_text(key)
    return python
