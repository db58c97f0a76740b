"""Fixtures for vm-cli's tests: run the `vm` command line in-process and capture what it says."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from vm_cli.main import run


@dataclass(frozen=True)
class Outcome:
    """What one `vm` command line did: its exit code and its stdout and stderr."""

    code: int
    out: str
    err: str


@pytest.fixture
def vm(capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """``vm("ir", "check", path)`` runs `vm ir check PATH` through ``main``'s error policy."""

    def call(*args: str | Path) -> Outcome:
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return call


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write("f.vmir", text)``: a file in tmp_path holding ``text``."""

    def make(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return make


@pytest.fixture
def vm_script() -> str:
    """The `vm` console script installed next to this interpreter, for subprocess tests."""
    path = shutil.which("vm", path=str(Path(sys.executable).parent))
    assert path is not None, "the vm script is not installed in this environment"
    return path
