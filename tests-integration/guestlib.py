"""Test guests and their references: built guests, qemu-user, Debian's busybox.

Tests that run guest programs import this module (tests-integration is not a
package, and pytest runs with --import-mode=importlib, so a test puts this
directory on sys.path first)::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import guestlib

    def test_int_m_matches_qemu():
        binary = guestlib.guest("riscv64", "int_m")
        expected = guestlib.run_qemu("riscv64", binary)
        ...  # run the same binary under `vm run` and compare with `expected`

Every helper that needs a host tool calls ``pytest.skip`` with the reason and
the command that installs it; the repository's conftest.py turns those skips
into failures in CI (VM_STRICT_TOOLS=1), where .ci/run installs everything.

- ``guest(arch, name)``: the built guest (``build/guests/<arch>/<name>``),
  compiled first if it is missing or out of date and the cross compiler is here;
- ``run_qemu(arch, binary, args, stdin, env, cwd)``: run under
  ``qemu-<arch>-static``, returning ``Run(rc, stdout, stderr)`` (a tuple);
- ``busybox(arch)``: Debian trixie's busybox-static, as tools/fetch_debian.py
  extracted it;
- ``exec_env(arch)``: what a guest that execs another guest needs under qemu
  without binfmt_misc (see fork_exec_pipe.c).

Runs are deterministic by construction: a fixed, minimal environment unless the
test passes its own, no terminal, stdin from the bytes given (empty by default).
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUESTS_SRC = ROOT / "tests-integration" / "guests"
BUILD_GUESTS = ROOT / "build" / "guests"
BUILD_DEBIAN = ROOT / "build" / "debian"

# The environment every guest run gets unless a test passes its own.
DEFAULT_ENV: Mapping[str, str] = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": "/"}
DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class GuestArch:
    """One guest architecture: its qemu-user, its Debian name, its compiler package."""

    name: str
    qemu: str
    debian: str
    cc: str
    cc_packages: str


ARCHES: dict[str, GuestArch] = {
    "riscv64": GuestArch(
        "riscv64",
        "qemu-riscv64-static",
        "riscv64",
        "riscv64-linux-gnu-gcc",
        "gcc-riscv64-linux-gnu libc6-dev-riscv64-cross",
    ),
    "aarch64": GuestArch(
        "aarch64",
        "qemu-aarch64-static",
        "arm64",
        "aarch64-linux-gnu-gcc",
        "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
    ),
    "x86_64": GuestArch("x86_64", "qemu-x86_64-static", "amd64", "gcc", "gcc libc6-dev"),
}


class Run(NamedTuple):
    """What a guest run did: exit status (negative: killed by that signal), output bytes."""

    rc: int
    stdout: bytes
    stderr: bytes

    def describe(self) -> str:
        """A readable summary for assertion messages."""
        return (
            f"exit status {self.rc}\n--- stdout ---\n{self.stdout.decode(errors='replace')}"
            f"\n--- stderr ---\n{self.stderr.decode(errors='replace')}"
        )


def _load_tool(name: str) -> ModuleType:
    module_name = f"vm_tools_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while loading
    spec.loader.exec_module(module)
    return module


def build_guests_tool() -> ModuleType:
    """tools/build_guests.py, imported."""
    return _load_tool("build_guests")


def fetch_debian_tool() -> ModuleType:
    """tools/fetch_debian.py, imported."""
    return _load_tool("fetch_debian")


def arch_info(arch: str) -> GuestArch:
    if arch not in ARCHES:
        raise ValueError(f"unknown guest architecture {arch!r} (one of {', '.join(ARCHES)})")
    return ARCHES[arch]


def require_tool(name: str, install: str) -> str:
    """The full path of a host tool, or a skip that says how to install it."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install {install})")
    return found


def qemu(arch: str) -> str:
    """The path of qemu-<arch>-static, or a skip."""
    return require_tool(arch_info(arch).qemu, "qemu-user-static")


def guest_names() -> list[str]:
    """Every guest program, by name."""
    return sorted(p.stem for p in GUESTS_SRC.glob("*.c"))


def guest(arch: str, name: str) -> Path:
    """The built guest ``name`` for ``arch``, built (or rebuilt) first when needed.

    With the cross compiler installed, an out-of-date guest is rebuilt (the
    build is incremental and safe to run from several test workers at once).
    Without it, an existing build is used as it is, and a missing one skips.
    """
    info = arch_info(arch)
    tool = build_guests_tool()
    path: Path = tool.output_path(arch, name)
    if shutil.which(info.cc) is None:
        if path.is_file():
            return path
        pytest.skip(
            f"{path.relative_to(ROOT)} is not built and {info.cc} is not installed "
            f"(apt-get install {info.cc_packages}; then "
            f"uv run python tools/build_guests.py --arch {arch})"
        )
    try:
        built, _ = tool.build_one(tool.ARCHES[arch], name)
    except tool.BuildError as error:
        pytest.fail(f"guest {name} ({arch}) does not build: {error}", pytrace=False)
    return built


def busybox(arch: str) -> Path:
    """Debian trixie's busybox-static for ``arch``, or a skip naming the fetch command."""
    tree = BUILD_DEBIAN / arch_info(arch).debian / "busybox-static"
    for candidate in (tree / "usr" / "bin" / "busybox", tree / "bin" / "busybox"):
        if candidate.is_file():
            return candidate
    pytest.skip(
        f"Debian's busybox-static for {arch} is not fetched: run "
        f"`uv run python tools/fetch_debian.py --arch {arch_info(arch).debian} busybox-static`"
    )


def exec_env(arch: str) -> dict[str, str]:
    """Environment for a guest that execs a guest, under qemu without binfmt_misc.

    The guest (fork_exec_pipe) then execs ``qemu-<arch>-static PROGRAM ARGS``
    instead of ``PROGRAM ARGS``; its output is the same. A `vm run` of the
    same guest needs no such help and gets DEFAULT_ENV alone.
    """
    return {**DEFAULT_ENV, "VM_GUEST_EXEC_WRAPPER": qemu(arch)}


def run(
    argv: Sequence[str | os.PathLike[str]],
    stdin: bytes | str = b"",
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Run:
    """Run a command as the guest runs do: fixed environment, stdin from bytes."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    done = subprocess.run(
        [os.fspath(a) for a in argv],
        input=data,
        capture_output=True,
        env=dict(DEFAULT_ENV if env is None else env),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def run_qemu(
    arch: str,
    binary: str | os.PathLike[str],
    args: Sequence[str | os.PathLike[str]] = (),
    stdin: bytes | str = b"",
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Run:
    """Run ``binary args`` under qemu-<arch>-static; returns (rc, stdout, stderr).

    ``binary`` is passed as the guest's argv[0] exactly as given (give an
    absolute path where the guest re-executes itself).
    """
    return run([qemu(arch), binary, *args], stdin=stdin, env=env, cwd=cwd, timeout=timeout)


def run_native(
    binary: str | os.PathLike[str],
    args: Sequence[str | os.PathLike[str]] = (),
    stdin: bytes | str = b"",
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Run:
    """Run an x86_64 guest natively (the reference for x86_64, as DESIGN.md says)."""
    return run([binary, *args], stdin=stdin, env=env, cwd=cwd, timeout=timeout)


def assert_same(what: str, reference: Run, vm: Run, reference_name: str = "qemu") -> None:
    """Fail unless ``vm`` exited as ``reference`` did with the same stdout, showing a diff of
    the two outputs and the end of vm's stderr."""
    if (vm.rc, vm.stdout) == (reference.rc, reference.stdout):
        return
    diff = "".join(difflib.unified_diff(
        reference.stdout.decode(errors="replace").splitlines(keepends=True),
        vm.stdout.decode(errors="replace").splitlines(keepends=True), reference_name, "vm"))
    pytest.fail(f"{what}: vm differs from {reference_name}\nexit status: {reference_name} "
                f"{reference.rc}, vm {vm.rc}\n--- stdout diff ---\n{diff}\n--- vm stderr ---\n"
                f"{vm.stderr.decode(errors='replace')[-3000:]}", pytrace=False)
