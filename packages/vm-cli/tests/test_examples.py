"""The example programs under examples/ at the repository root do what their READMEs say."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_collatz_27_takes_111_steps(vm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = vm("ir", "run", "examples/ir/collatz.vmir", "--args", "27")
    assert (result.code, result.out) == (0, "111\n"), result.err


@pytest.mark.parametrize(("n", "steps"), [(0, 0), (1, 0), (2, 1), (3, 7), (6, 8), (97, 118)])
def test_collatz_small_numbers(vm, n: int, steps: int) -> None:
    result = vm("ir", "run", ROOT / "examples/ir/collatz.vmir", "--args", str(n))
    assert (result.code, result.out) == (0, f"{steps}\n")


def test_collatz_optimised_still_takes_111_steps(vm, tmp_path: Path) -> None:
    optimised = vm("ir", "opt", ROOT / "examples/ir/collatz.vmir")
    assert optimised.code == 0, optimised.err
    (tmp_path / "opt.vmir").write_text(optimised.out, encoding="utf-8")
    assert vm("ir", "run", tmp_path / "opt.vmir", "--args", "27").out == "111\n"


def test_collatz_through_the_installed_script(vm_script: str) -> None:
    done = subprocess.run([vm_script, "ir", "run", "examples/ir/collatz.vmir", "--args",
                           "27"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "111\n", "")
