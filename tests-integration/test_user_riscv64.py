"""`vm run` against qemu-riscv64-static: the same riscv64 program, the same arguments, input
and environment, in the same test; stdout and exit status must be byte-identical.

Two sets: every guest program of tests-integration/guests (bench_cpu with one iteration),
and Debian's busybox-static running shell scripts and applets (busybox_cases.py, shared with
the x86_64 KVM suite) over small files that each test prepares twice, once for each run, in
its own scratch directory.

Each case runs under every engine (``ENGINES``: interp, jit and auto). `vm run` runs as a
subprocess (``python -m vm_cli run --engine E``) so that a guest that dies by a signal, forks
or execs does so as it would on its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guestlib
from busybox_cases import BUSYBOX_CASES, Case, prepare

ARCH = "riscv64"
VM_TIMEOUT = 600.0

pytestmark = pytest.mark.slow


#: every case runs under each engine: the interpreter, the JIT and the default (auto: the JIT)
ENGINES = ["interp", "jit", "auto"]


def run_vm(binary: str | os.PathLike[str], args: list[str], stdin: bytes = b"",
           env: dict[str, str] | None = None, cwd: Path | None = None,
           engine: str = "interp") -> guestlib.Run:
    """``binary args`` under `vm run --engine ENGINE`, with guestlib's fixed environment."""
    argv = [sys.executable, "-m", "vm_cli", "run", "--engine", engine, os.fspath(binary), *args]
    return guestlib.run(argv, stdin=stdin, env=env, cwd=cwd, timeout=VM_TIMEOUT)


assert_same = guestlib.assert_same


# -- the guest programs -----------------------------------------------------------------------------
# Arguments and environments are the reference test's (test_guests_reference.CASES: "{tmp}" is
# a scratch directory of the run's own; an environment {} means guestlib.exec_env under qemu,
# which needs it to exec a guest, and the default environment under `vm run`), but bench_cpu
# runs one iteration.
OVERRIDES: dict[str, tuple[list[str], dict[str, str] | None]] = {"bench_cpu": (["1"], None)}


def guest_case(name: str) -> tuple[list[str], dict[str, str] | None]:
    import test_guests_reference as reference

    return OVERRIDES.get(name, reference.CASES[name])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", guestlib.guest_names())
def test_guest_matches_qemu(name: str, engine: str, tmp_path: Path) -> None:
    binary = guestlib.guest(ARCH, name)
    args, env = guest_case(name)
    runs = {}
    for who in ("qemu", "vm"):
        scratch = tmp_path / who
        scratch.mkdir()
        argv = [a.replace("{tmp}", str(scratch)) for a in args]
        if who == "qemu":
            qenv = guestlib.exec_env(ARCH) if env == {} else env
            runs[who] = guestlib.run_qemu(ARCH, binary, argv, env=qenv, cwd=scratch)
        else:
            runs[who] = run_vm(binary, argv, env=env or None, cwd=scratch, engine=engine)
    assert_same(name, runs["qemu"], runs["vm"])


# -- busybox --------------------------------------------------------------------------------------------
def test_enough_busybox_cases() -> None:
    assert len(BUSYBOX_CASES) >= 30
    assert len({c.id for c in BUSYBOX_CASES}) == len(BUSYBOX_CASES)


@pytest.fixture(scope="module")
def applet_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """PATH for the busybox runs: a directory of one host script per applet first.

    busybox sh runs most applets by exec'ing itself (/proc/self/exe). Under `vm run` that is
    the riscv64 busybox again; under qemu-user without binfmt_misc the exec fails and sh
    falls back to a PATH search, which would find the host's own tools (GNU gzip, coreutils)
    and compare vm with them. These scripts make that search find the riscv64 applet under
    qemu instead, as guestlib.exec_env does for the guest programs. `vm run` never uses them.
    """
    binary = guestlib.busybox(ARCH)
    listed = guestlib.run_qemu(ARCH, binary, ["--list"])
    assert listed.rc == 0, listed.describe()
    bindir = tmp_path_factory.mktemp("busybox-applets")
    qemu = guestlib.qemu(ARCH)
    for name in listed.stdout.decode().split():
        script = bindir / name
        script.write_text(f'#!/bin/sh\nexec {qemu} {binary} {name} "$@"\n')
        script.chmod(0o755)
    return f"{bindir}:{guestlib.DEFAULT_ENV['PATH']}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", BUSYBOX_CASES, ids=[c.id for c in BUSYBOX_CASES])
def test_busybox_matches_qemu(case: Case, engine: str, tmp_path: Path,
                              applet_path: str) -> None:
    binary = guestlib.busybox(ARCH)
    env = {**guestlib.DEFAULT_ENV, "PATH": applet_path}
    runs = {}
    for who in ("qemu", "vm"):
        work = tmp_path / who
        work.mkdir()
        prepare(work)
        if case.setup is not None:
            case.setup(work)
        if who == "qemu":
            runs[who] = guestlib.run_qemu(ARCH, binary, case.args, stdin=case.stdin, env=env,
                                          cwd=work)
        else:
            runs[who] = run_vm(binary, case.args, stdin=case.stdin, env=env, cwd=work,
                               engine=engine)
    assert_same(f"busybox {case.id}", runs["qemu"], runs["vm"])
