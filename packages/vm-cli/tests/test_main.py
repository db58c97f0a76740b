"""The global options and the error policy: one line, a meaningful exit code, --debug."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import vm_ir
from vm_core import ConfigError

VERSION = "0.1.0"


def test_version_in_process(vm) -> None:
    result = vm("--version")
    assert (result.code, result.out, result.err) == (0, f"vm {VERSION}\n", "")


def test_version_through_the_installed_script(vm_script: str) -> None:
    done = subprocess.run([vm_script, "--version"], capture_output=True, text=True,
                          check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"vm {VERSION}\n", "")


def test_missing_file_through_the_installed_script(vm_script: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.vmir"
    done = subprocess.run([vm_script, "ir", "check", str(missing)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"vm: error: {missing}: no such file\n"


def test_missing_file_is_one_line(vm, tmp_path: Path) -> None:
    result = vm("ir", "run", tmp_path / "nope.vmir")
    assert result.code == 1
    assert result.err.splitlines() == [f"vm: error: {tmp_path / 'nope.vmir'}: no such file"]


def test_directory_instead_of_file(vm, tmp_path: Path) -> None:
    result = vm("ir", "check", tmp_path)
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert "is a directory" in result.err


def test_debug_shows_the_traceback_and_then_the_line(vm, tmp_path: Path) -> None:
    result = vm("--debug", "ir", "check", tmp_path / "nope.vmir")
    assert result.code == 1
    assert result.err.startswith("Traceback (most recent call last):")
    assert result.err.splitlines()[-1] == f"vm: error: {tmp_path / 'nope.vmir'}: no such file"


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["ir", "bogus"],
    ["ir", "run"],
    ["ir", "run", "f.vmir", "--args"],
])
def test_usage_errors_exit_2_in_one_line(vm, args: list[str]) -> None:
    result = vm(*args)
    assert result.code == 2
    assert result.err.startswith("vm: error: ")
    assert result.err.count("\n") == 1
    assert result.out == ""


def test_no_command_shows_the_help(vm) -> None:
    result = vm()
    assert result.code == 2
    assert "ir" in result.out and "info" in result.out


def test_help_exits_0(vm) -> None:
    result = vm("ir", "run", "--help")
    assert result.code == 0
    assert "--args" in result.out


def test_vm_error_is_an_input_error(vm, write, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(module: vm_ir.Module) -> vm_ir.Module:
        raise ConfigError("the pass pipeline is empty", "name a pass")

    monkeypatch.setattr(vm_ir, "optimize", fail)
    path = write("f.vmir", "func @f() {\nblock0:\n    ret\n}\n")
    result = vm("ir", "opt", path)
    assert (result.code, result.err) == (1, "vm: error: the pass pipeline is empty; name a pass\n")


def test_a_bug_is_an_internal_error(vm, write, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(module: vm_ir.Module) -> vm_ir.Module:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(vm_ir, "optimize", crash)
    path = write("f.vmir", "func @f() {\nblock0:\n    ret\n}\n")
    result = vm("ir", "opt", path)
    assert result.code == 70
    assert result.err.splitlines() == [
        "vm: error: internal error: ZeroDivisionError: oops; please report it with the "
        "traceback that --debug shows"]
    debug = vm("--debug", "ir", "opt", path)
    assert debug.code == 70
    assert "Traceback" in debug.err and "ZeroDivisionError: oops" in debug.err
