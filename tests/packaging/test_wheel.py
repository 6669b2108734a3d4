"""Installable without a checkout: build the sdist and wheel, install the wheel into a clean virtual
environment as pipx would, run it with uvx as an MCP host config would, and run the installed
`easel-mcp` from outside the source tree.

The build starts from only the files the Dockerfile's build stage copies, so it also proves that
those are enough. The venv (.venv-interop/wheel) is reused while the wheel's dependencies stay the
same (installing them takes ~40 s cold); the wheel itself is reinstalled on every run, with pip check
after it, so an undeclared dependency or a module or data file left out of the wheel fails here.
"""

from __future__ import annotations

import email
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.interop.conftest import base_environ
from tests.interop.venvs import framework_python, pip_failure

pytestmark = pytest.mark.timeout(600)  # a cold build (isolated setuptools) and a cold venv
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "providers")
TOOLS = {"generate_image", "edit_image", "run_replicate_model", "get_replicate_model_schema", "illustrate_content"}


def source_files() -> set[str]:
    """Every file of the importable packages in the checkout (code and any package data)."""
    return {str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")}


def dockerfile_build_inputs() -> list[str]:
    """The sources of the Dockerfile's ``COPY`` lines that take files from the build context."""
    copies = re.findall(r"^COPY\s+(?!--from)(.+)$", (ROOT / "Dockerfile").read_text(), flags=re.M)
    return [src.rstrip("/") for line in copies for src in line.split()[:-1]]


def outside_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process that must not see the checkout or the test venv."""
    return {k: v for k, v in {**base_environ(), **(extra or {})}.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel, built the way a release is: python -m build (the wheel from the sdist)."""
    inputs = dockerfile_build_inputs()
    assert {"pyproject.toml", *PACKAGES} <= set(inputs), inputs
    src = tmp_path_factory.mktemp("src")
    for name in inputs:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    try:
        proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(src)],
                              capture_output=True, timeout=300)
    except subprocess.TimeoutExpired as exc:
        pytest.skip(f"python -m build took over 300 s (it installs setuptools; offline?): {pip_failure(exc.stderr)}")
    if proc.returncode != 0 and b"No matching distribution" in proc.stdout + proc.stderr:
        pytest.skip(f"python -m build cannot fetch setuptools here: {pip_failure(proc.stdout + proc.stderr)}")
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode(errors="replace")[-3000:]
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    [found] = dist.glob("easel_mcp-*-py3-none-any.whl")
    return found


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        [name] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(zf.read(name))


def test_the_wheel_and_sdist_carry_every_module_and_data_file(dist: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "easel-mcp = server.cli:main" in zf.read(entry_points).decode()
    assert source_files() - names == set()
    assert not {n for n in names if n.startswith("tests/")}, "the tests are not part of the wheel"
    metadata = wheel_metadata(wheel)
    assert metadata["Name"] == "easel-mcp" and metadata["Requires-Python"]
    assert "uvx easel-mcp" in metadata.get_payload(), "the PyPI page (README) says how to run it without a checkout"

    [sdist] = dist.glob("easel_mcp-*.tar.gz")
    with tarfile.open(sdist) as tf:
        top = tf.getnames()[0].split("/")[0]
        in_sdist = {n.removeprefix(top + "/") for n in tf.getnames()}
    assert source_files() | {"pyproject.toml", "README.md"} <= in_sdist


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Path:
    """The bin/ of a virtual environment holding the wheel and its declared dependencies, nothing else."""
    requires = sorted(wheel_metadata(wheel).get_all("Requires-Dist") or [])
    python = framework_python("wheel", [r for r in requires if "extra ==" not in r])
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    proc = subprocess.run([*pip, "install", "--quiet", "--force-reinstall", "--no-deps", str(wheel)],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, pip_failure(proc.stderr, 20)
    check = subprocess.run([*pip, "check"], capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    return python.parent


@pytest.fixture(scope="module")
def uvx(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """`uvx --from <wheel> easel-mcp`, as a host's config would start it (uv is in the test extra).

    The first run (--help) refreshes the wheel in uv's cache: every build has the same name and
    version, and an older cached one must not be run. It needs the package index unless uv's cache
    already has the dependencies; where it cannot reach it, the uvx tests are skipped."""
    try:
        from uv import find_uv_bin
    except ImportError:
        pytest.skip("the uv package is not installed (make test installs it with the test extra)")
    command = [str(Path(find_uv_bin()).with_name("uvx")), "--from", str(wheel), "easel-mcp"]
    try:
        proc = subprocess.run([command[0], "--refresh-package", "easel-mcp", *command[1:], "--help"],
                              cwd=tmp_path_factory.mktemp("uvx"), env=outside_env(), capture_output=True, timeout=300)
    except subprocess.TimeoutExpired as exc:
        pytest.skip(f"uvx took over 300 s to fetch the dependencies (offline?): {pip_failure(exc.stderr)}")
    if proc.returncode != 0 and (b"Failed to fetch" in proc.stderr or b"failed to lookup" in proc.stderr):
        pytest.skip(f"uvx cannot reach the package index here: {pip_failure(proc.stderr)}")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    assert b"usage: easel-mcp" in proc.stdout
    return [command[0], "--offline", *command[1:]]  # all in uv's cache now: start as fast as a host would


def test_the_installed_command_runs_from_anywhere(installed: Path, tmp_path: Path) -> None:
    help_ = subprocess.run([str(installed / "easel-mcp"), "--help"], cwd=tmp_path, env=outside_env(),
                           capture_output=True, timeout=60)
    assert help_.returncode == 0, help_.stderr.decode()
    assert b"usage: easel-mcp" in help_.stdout and b"--transport" in help_.stdout
    where = subprocess.run([str(installed / "python"), "-c", "import server; print(server.__file__)"],
                           cwd=tmp_path, env=outside_env(), capture_output=True, timeout=60, text=True)
    assert where.stdout.startswith(str(installed.parent / "lib")), where


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["pip", "uvx"])
async def test_the_installed_server_speaks_mcp_on_stdio(how: str, tmp_path: Path, env: dict[str, str],
                                                        request: pytest.FixtureRequest) -> None:
    """pip (as pipx installs it) and uvx, each started by a client from outside the checkout."""
    command = ([str(request.getfixturevalue("installed") / "easel-mcp")] if how == "pip"
               else request.getfixturevalue("uvx"))
    params = StdioServerParameters(command=command[0], args=command[1:], env=outside_env(env), cwd=str(tmp_path))
    async with Client(params) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert TOOLS <= tools
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse"})
        assert not result.is_error, result.content
        [image] = result.structured_content["images"]
        assert image["uri"] in "\n".join(block.text for block in result.content if block.type == "text")
