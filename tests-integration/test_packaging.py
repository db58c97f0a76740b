"""Every package builds into a wheel of its own, and vm-ir's wheel stands alone.

``uv build --all-packages --wheel`` must give one wheel per workspace package,
each with its ``py.typed``. The vm-ir wheel must declare no requirements and
work when it is the only thing installed in a fresh virtual environment
(DESIGN.md: "``pip install vm-ir`` gives a standalone IR ... and nothing else").

These tests are slow (they build wheels and a virtual environment) and need
``uv``, which runs them (``uv run pytest``); they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("packaging")]

ROOT = Path(__file__).resolve().parent.parent
DISTS = sorted(
    tomllib.loads(p.read_text(encoding="utf-8"))["project"]["name"]
    for p in ROOT.glob("packages/*/pyproject.toml")
)

# Exactly the example DESIGN.md and the vm-ir README promise to work.
VM_IR_EXAMPLE = '''\
import vm_ir
m = vm_ir.parse("""
func @add(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = add v0, v1
    ret v2
}
""")
assert vm_ir.verify(m) == [], vm_ir.verify(m)
r = vm_ir.evaluate(m, "add", [40, 2])
assert r == vm_ir.Returned((42,)), r
print("ok")
'''

# Run in the fresh environment: which vm_* packages can it import?
VM_IMPORTABLE = f"""\
import importlib.util, pkgutil
found = {{m.name for m in pkgutil.iter_modules() if m.name.startswith("vm_")}}
found |= {{n for n in {[d.replace("-", "_") for d in DISTS]!r} if importlib.util.find_spec(n)}}
print(" ".join(sorted(found)))
"""


def _uv() -> str:
    # `uv run` tells the processes it starts where it is.
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv not found: run the tests with `uv run pytest`"
    return uv


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Distribution name -> wheel, built from the working tree."""
    out = tmp_path_factory.mktemp("wheels")
    # --offline: the build backend (hatchling) is in uv's cache since `uv sync`.
    _run(_uv(), "build", "--all-packages", "--wheel", "--offline", "-o", out, cwd=ROOT)
    found = {}
    for wheel in sorted(out.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            name = HeaderParser().parsestr(archive.read(metadata).decode())["Name"]
        found[name] = wheel
    return found


def test_one_wheel_per_package(wheels: dict[str, Path]) -> None:
    assert sorted(wheels) == DISTS
    assert len(wheels) == 13


@pytest.mark.parametrize("dist", DISTS)
def test_wheel_has_its_package_and_py_typed(wheels: dict[str, Path], dist: str) -> None:
    package = dist.replace("-", "_")
    with zipfile.ZipFile(wheels[dist]) as archive:
        names = set(archive.namelist())
    assert f"{package}/__init__.py" in names
    assert f"{package}/py.typed" in names
    [dist_info] = {n.split("/")[0] for n in names} - {package}
    assert dist_info.startswith(f"{package}-") and dist_info.endswith(".dist-info")


def test_vm_ir_wheel_requires_nothing(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["vm-ir"]) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(archive.read(metadata).decode())
    assert headers.get_all("Requires-Dist") is None


def test_vm_ir_wheel_works_alone(wheels: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(_uv(), "venv", "--python", sys.executable, venv, cwd=tmp_path)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run(_uv(), "pip", "install", "--no-index", "--python", python, wheels["vm-ir"], cwd=tmp_path)

    # -I: ignore PYTHONPATH, the user's site-packages and the current directory.
    imports = _run(python, "-I", "-c", VM_IMPORTABLE, cwd=tmp_path)
    assert imports.stdout.split() == ["vm_ir"]

    script = tmp_path / "example.py"
    script.write_text(VM_IR_EXAMPLE)
    result = _run(python, "-I", script, cwd=tmp_path)
    assert result.stdout == "ok\n"
