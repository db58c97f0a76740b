"""`vm run --accel`: KVM runs x86_64 programs only; a mismatch or a missing device is one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RISCV_HELLO = ROOT / "examples" / "riscv64" / "hello"


def vm_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "vm_cli", "run", *args], capture_output=True,
                          text=True, env=full, timeout=300, check=False)


def test_kvm_with_a_riscv64_program_is_a_usage_error() -> None:
    done = vm_run("--accel", "kvm", str(RISCV_HELLO))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vm: error: ")
    assert "x86_64" in lines[0] and "riscv64" in lines[0]
    assert done.stdout == ""


def test_auto_emulates_a_riscv64_program_even_without_kvm(tmp_path: Path) -> None:
    done = vm_run("--accel", "auto", "--engine", "interp", str(RISCV_HELLO), "x",
                  env={"VM_KVM_DEVICE": str(tmp_path / "missing")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Hello from a riscv64 guest!\n")


def test_unknown_accelerator_is_rejected() -> None:
    done = vm_run("--accel", "hvf", str(RISCV_HELLO))
    assert done.returncode == 2
    assert "--accel" in done.stderr


@pytest.mark.parametrize("accel", ["kvm", "none"])
def test_trace_and_accel_kvm_do_not_go_together_or_are_fine(accel: str) -> None:
    done = vm_run("--accel", accel, "--trace", str(RISCV_HELLO))
    if accel == "kvm":  # the program is refused first: KVM cannot run it at all
        assert done.returncode == 2
    else:
        assert done.returncode == 0
