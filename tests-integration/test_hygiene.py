"""Repository hygiene as ordinary tests: declared dependencies, layering, ruff.

- ``tools/check_deps.py`` passes on the repository and reports each kind of
  problem on small fake workspaces;
- ``lint-imports`` passes on the repository, and the repository's own contracts
  (copied with the root pyproject.toml) catch violations in fake packages;
- ``ruff check .`` passes on the repository.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Our import names, as the layering contracts list them; the fake packages reuse them.
_CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
OURS: list[str] = _CONFIG["tool"]["importlinter"]["root_packages"]


def _load_check_deps() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_deps", ROOT / "tools" / "check_deps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_deps = _load_check_deps()


def _run(args: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        assert found, f"{name} is not installed: run `uv sync --all-packages` (dev group)"
        path = Path(found)
    return path


# --- tools/check_deps.py ------------------------------------------------------


def _package(root: Path, dist: str, deps: list[str], source: str = "") -> None:
    """A workspace member packages/<dist> whose src/<import>/__init__.py is ``source``."""
    home = root / "packages" / dist
    src = home / "src" / dist.replace("-", "_")
    src.mkdir(parents=True)
    listed = ", ".join(f'"{d}"' for d in deps)
    (home / "pyproject.toml").write_text(
        f'[project]\nname = "{dist}"\nversion = "0.1.0"\ndependencies = [{listed}]\n'
    )
    (src / "__init__.py").write_text(textwrap.dedent(source))


def _workspace(root: Path) -> Path:
    """A correct fake workspace; tests add one broken package each."""
    _package(root, "vm-ir", [], "import dataclasses\nfrom . import ops\n")
    _package(root, "vm-core", [], "from vm_core import memory\n")
    _package(
        root,
        "vm-cli",
        ["vm-core", "vm-ir>=0.1", "pytest>=8"],
        """
        from typing import TYPE_CHECKING

        import pytest
        import vm_core.memory

        if TYPE_CHECKING:
            from vm_ir import Module
        """,
    )
    return root


def test_check_deps_passes_on_the_repository() -> None:
    problems = check_deps.check(ROOT)
    assert problems == [], "\n".join(problems)


def test_check_deps_command_line(tmp_path: Path) -> None:
    script = ROOT / "tools" / "check_deps.py"
    ok = _run([sys.executable, script, _workspace(tmp_path)], cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("\n") == 1, ok.stdout

    _package(tmp_path, "vm-aot", [], "import vm_ir\n")
    bad = _run([sys.executable, script, tmp_path], cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        "packages/vm-aot: imports vm_ir but does not declare vm-ir",
        "check_deps: 1 problem(s)",
    ]


def test_check_deps_accepts_a_correct_workspace(tmp_path: Path) -> None:
    assert check_deps.check(_workspace(tmp_path)) == []


@pytest.mark.parametrize(
    ("dist", "deps", "source", "expected"),
    [
        pytest.param(
            "vm-runtime",
            ["vm-core"],
            "import vm_core\nimport vm_ir.types\n",
            ["packages/vm-runtime: imports vm_ir but does not declare vm-ir"],
            id="undeclared-workspace-import",
        ),
        pytest.param(
            "vm-runtime",
            ["vm-core", "vm-ir"],
            "from vm_core import Bus\n",
            ["packages/vm-runtime: declares vm-ir but never imports vm_ir"],
            id="unused-workspace-dependency",
        ),
        pytest.param(
            "vm-runtime",
            ["vm-runtime"],
            "import vm_runtime.machines\n",
            ["packages/vm-runtime: declares itself (vm-runtime) as a dependency"],
            id="depends-on-itself",
        ),
        pytest.param(
            "vm-runtime",
            [],
            "import pytest\n",
            ["packages/vm-runtime: imports pytest but does not declare pytest"],
            id="undeclared-third-party-import",
        ),
        pytest.param(
            "vm-runtime",
            ["Hypothesis>=6"],
            "import os\n",
            ["packages/vm-runtime: declares hypothesis but never imports it"],
            id="unused-third-party-dependency",
        ),
        pytest.param(
            "vm-runtime",
            [],
            "import no_such_module_for_vm_tests\n",
            [
                "packages/vm-runtime: imports no_such_module_for_vm_tests, which is not the "
                "standard library, not ours and not provided by any installed distribution "
                "(first at src/vm_runtime/__init__.py:1)"
            ],
            id="unknown-module",
        ),
    ],
)
def test_check_deps_reports(
    tmp_path: Path, dist: str, deps: list[str], source: str, expected: list[str]
) -> None:
    _package(_workspace(tmp_path), dist, deps, source)
    assert check_deps.check(tmp_path) == expected


def test_check_deps_keeps_vm_ir_standalone(tmp_path: Path) -> None:
    _package(
        tmp_path,
        "vm-ir",
        ["pytest", "vm-telemetry"],
        "import json\nimport pytest\nfrom vm_telemetry import metrics\n",
    )
    _package(tmp_path, "vm-telemetry", [], "import json\n")
    assert check_deps.check(tmp_path) == [
        "packages/vm-ir: declares dependencies (pytest, vm-telemetry) but vm-ir must have none",
        "packages/vm-ir: imports pytest but vm-ir may import only the standard library",
        "packages/vm-ir: imports vm_telemetry but vm-ir may import only the standard library",
    ]


def test_check_deps_counts_optional_dependencies_as_declared(tmp_path: Path) -> None:
    _package(
        _workspace(tmp_path),
        "vm-gpu",
        [],
        "try:\n    import pytest\nexcept ImportError:\n    pass\n",
    )
    pyproject = tmp_path / "packages" / "vm-gpu" / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[project.optional-dependencies]\ntest = ["pytest"]\n'
    )
    assert check_deps.check(tmp_path) == []


def test_check_deps_ignores_relative_imports_and_reports_syntax_errors(tmp_path: Path) -> None:
    _package(
        _workspace(tmp_path), "vm-devices", [], "from .uart import Uart\nfrom . import virtio\n"
    )
    (tmp_path / "packages/vm-devices/src/vm_devices/broken.py").write_text("def (:\n")
    [problem] = check_deps.check(tmp_path)
    assert problem.startswith("packages/vm-devices: cannot parse src/vm_devices/broken.py: ")


# --- lint-imports: the layering contracts of the root pyproject.toml ------------


@pytest.mark.slow
def test_lint_imports_passes_on_the_repository() -> None:
    result = _run([_tool("lint-imports"), "--no-cache", "--no-logo"], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def _fake_layers(root: Path, imports: dict[str, str]) -> Path:
    """Empty stand-ins for all our packages under ``root``, plus the given imports.

    ``imports`` maps a package to the module it imports. The repository's
    pyproject.toml is copied next to them, so its contracts are what is checked.
    """
    for name in OURS:
        (root / name).mkdir()
        (root / name / "__init__.py").write_text(
            f"import {imports[name]}\n" if name in imports else ""
        )
    config = root / "contracts.toml"
    shutil.copy(ROOT / "pyproject.toml", config)
    return config


def _lint_fake(tmp_path: Path, imports: dict[str, str]) -> subprocess.CompletedProcess[str]:
    config = _fake_layers(tmp_path, imports)
    return _run(
        [_tool("lint-imports"), "--no-cache", "--no-logo", config],
        cwd=tmp_path,
        PYTHONPATH=str(tmp_path),
        COLUMNS="1000",  # one line per contract in its report
    )


@pytest.mark.slow
def test_lint_imports_accepts_imports_that_follow_the_layers(tmp_path: Path) -> None:
    result = _lint_fake(
        tmp_path,
        {
            "vm_cli": "rich",
            "vm_runtime": "vm_frontend_riscv",
            "vm_aot": "vm_engine_jit",
            "vm_engine_jit": "llvmlite",
            "vm_frontend_riscv": "vm_ir",
            "vm_core": "vm_telemetry",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("imports", "contract"),
    [
        pytest.param({"vm_core": "vm_cli"}, "Layers of DESIGN.md", id="low-imports-high"),
        pytest.param(
            {"vm_frontend_arm": "vm_frontend_riscv"}, "Layers of DESIGN.md", id="siblings"
        ),
        pytest.param({"vm_ir": "vm_telemetry"}, "vm_ir imports nothing of ours", id="vm-ir"),
        pytest.param({"vm_runtime": "llvmlite"}, "llvmlite only in", id="llvmlite"),
        pytest.param({"vm_gpu": "rich"}, "rich only in vm_cli", id="rich"),
        pytest.param(
            {"vm_aot": "vm_devices"}, "never a concrete frontend or device", id="concrete-device"
        ),
    ],
)
def test_lint_imports_catches_a_violation(
    tmp_path: Path, imports: dict[str, str], contract: str
) -> None:
    result = _lint_fake(tmp_path, imports)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    broken = [line for line in output.splitlines() if line.endswith(" BROKEN")]
    assert len(broken) == 1 and contract in broken[0], output
    [(importer, imported)] = imports.items()
    assert f"{importer} -> {imported}" in output, output


# --- ruff ------------------------------------------------------------------------


@pytest.mark.slow
def test_ruff_check_passes_on_the_repository() -> None:
    result = _run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
