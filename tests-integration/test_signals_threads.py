"""Signals, threads, fork/exec/wait and guest death under `vm run`, against qemu-riscv64-static.

Where the output is deterministic the same guest runs under qemu and under `vm run` in the
same test and stdout and exit status must be identical; where it cannot be compared (a
``#!`` script whose interpreter is a guest program, which qemu-user cannot exec without
binfmt_misc; the emulator's own failure), the test asserts what Linux documents.

Host signals: a test starts the guest (`vm run`, or qemu) as its child, waits for the line
that says the guest is ready, and sends the signal to that process (or, like Ctrl-C at a
terminal, to its process group); the guest's handler must see it (SI_USER, from its parent),
or the process must die of it (a negative return code).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guestlib

ARCH = "riscv64"
VM_TIMEOUT = 600.0
READY_TIMEOUT = 120.0  # the emulator's start-up and the guest's own until its "ready" line

pytestmark = pytest.mark.slow


def vm_argv(binary: str | os.PathLike[str], args: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "vm_cli", "run", "--engine", "interp", os.fspath(binary),
            *args]


def qemu_argv(binary: str | os.PathLike[str], args: Sequence[str] = ()) -> list[str]:
    return [guestlib.qemu(ARCH), os.fspath(binary), *args]


def run_vm(binary: str | os.PathLike[str], args: Sequence[str] = (), stdin: bytes = b"",
           env: dict[str, str] | None = None, cwd: Path | None = None) -> guestlib.Run:
    return guestlib.run(vm_argv(binary, args), stdin=stdin, env=env, cwd=cwd,
                        timeout=VM_TIMEOUT)


def assert_same(what: str, qemu: guestlib.Run, vm: guestlib.Run) -> None:
    assert (vm.rc, vm.stdout) == (qemu.rc, qemu.stdout), (
        f"{what}: vm differs from qemu\n--- qemu ---\n{qemu.describe()}\n--- vm ---\n"
        f"{vm.describe()}")
    assert b"Traceback" not in vm.stderr, vm.describe()


# -- guests compared with qemu ----------------------------------------------------------------
GUESTS: dict[str, list[str]] = {
    "signals": [],
    "mmap_prot": ["{tmp}"],
    "fork_exec_pipe": [],
    "atomics_threads": [],
    "sig_host": [],
    "alarm_timer": [],
    "threads_signals": [],
    "sa_restart": [],
    "exec_state": ["{tmp}"],
    "futex_ops": [],
}
#: guests that exec themselves: under qemu through guestlib.exec_env's wrapper
EXECS = {"fork_exec_pipe", "exec_state"}


@pytest.mark.parametrize("name", sorted(GUESTS))
def test_guest_matches_qemu(name: str, tmp_path: Path) -> None:
    binary = guestlib.guest(ARCH, name)
    runs = {}
    for who in ("qemu", "vm"):
        scratch = tmp_path / who
        scratch.mkdir()
        args = [a.replace("{tmp}", str(scratch)) for a in GUESTS[name]]
        if who == "qemu":
            env = guestlib.exec_env(ARCH) if name in EXECS else None
            runs[who] = guestlib.run_qemu(ARCH, binary, args, env=env, cwd=scratch)
        else:
            runs[who] = run_vm(binary, args, cwd=scratch)
    assert_same(name, runs["qemu"], runs["vm"])
    assert runs["vm"].stdout.decode().endswith(f"{name}: ok\n")


def test_atomics_threads_is_stable() -> None:
    """20 runs (VM_STABILITY_RUNS), as many at once as there are CPUs: the same output
    every time (futex waits and wakes under contention, pthread_join, condvars)."""
    binary = guestlib.guest(ARCH, "atomics_threads")
    expected = guestlib.run_qemu(ARCH, binary)
    runs = int(os.environ.get("VM_STABILITY_RUNS", "20"))
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(lambda _: run_vm(binary), range(runs)))
    for i, got in enumerate(results):
        assert (got.rc, got.stdout) == (expected.rc, expected.stdout), (
            f"run {i + 1} of {runs} differs\n{got.describe()}")


# -- exec: what qemu-user cannot show ------------------------------------------------------------
def test_shebang_scripts_run_their_guest_interpreter(tmp_path: Path) -> None:
    """binfmt_script: argv = interpreter, its one argument, the script's path, the script's
    arguments; a script may be the interpreter of another."""
    binary = guestlib.guest(ARCH, "exec_state")
    got = run_vm(binary, ["script", str(tmp_path)])
    assert got.rc == 0, got.describe()
    assert got.stdout.decode().splitlines() == [
        "  [interpreter] argc 5: [a path] [args one-argument with spaces] [script] [a1] [a 2]",
        "  exited 3",
        "  [interpreter] argc 6: [a path] [args one-argument with spaces] [script] [nested] "
        "[a1] [a 2]",
        "  exited 3",
        "exec_state: ok",
    ]


# -- host signals --------------------------------------------------------------------------------
class Guest:
    """A guest started as a child of the test, read line by line."""

    def __init__(self, argv: list[str], new_session: bool = False) -> None:
        # unbuffered: readline must not read ahead what communicate() reads later
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=dict(guestlib.DEFAULT_ENV),
                                     start_new_session=new_session, bufsize=0)
        self.lines: list[str] = []

    def expect(self, prefix: str) -> str:
        """The next line of output, which must start with ``prefix``."""
        assert self.proc.stdout is not None
        line = _readline(self.proc.stdout, READY_TIMEOUT).decode()
        self.lines.append(line)
        assert line.startswith(prefix), f"expected {prefix!r}, got {line!r}: {self.finish()}"
        return line

    def send(self, signo: int, group: bool = False) -> None:
        if group:
            os.killpg(self.proc.pid, signo)
        else:
            self.proc.send_signal(signo)

    def finish(self) -> guestlib.Run:
        try:
            out, err = self.proc.communicate(timeout=READY_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return guestlib.Run(self.proc.returncode, "".join(self.lines).encode() + out, err)


def _readline(stream, timeout: float) -> bytes:
    box: list[bytes] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(stream.readline)
        try:
            box.append(future.result(timeout=timeout))
        except TimeoutError:
            pytest.fail(f"no output within {timeout} s", pytrace=False)
    return box[0]


def _both(make_argv, drive) -> dict[str, guestlib.Run]:
    """Run ``drive(Guest)`` against qemu and against `vm run`; give both runs."""
    binary = guestlib.guest(ARCH, "sig_host")
    runs = {}
    for who, argv in (("qemu", qemu_argv), ("vm", vm_argv)):
        guest = Guest(argv(binary, make_argv), new_session=True)
        try:
            drive(guest)
        finally:
            runs[who] = guest.finish()
    return runs


@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
def test_host_signals_reach_the_handler(group: bool) -> None:
    """SIGINT (Ctrl-C: to the process group), SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT
    sent while the guest computes without syscalls: each handler runs, with SI_USER from
    the parent."""
    names = ["INT", "TERM", "HUP", "USR1", "USR2", "QUIT"]

    def drive(guest: Guest) -> None:
        for name in names:
            guest.expect(f"ready {name}")
            guest.send(getattr(signal, f"SIG{name}"), group=group)
            guest.expect(f"got SIG{name}: yes, code SI_USER, from the parent: yes")

    runs = _both(["wait", *names], drive)
    assert_same("sig_host wait", runs["qemu"], runs["vm"])
    assert runs["vm"].rc == 0


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                                   signal.SIGUSR1, signal.SIGALRM],
                         ids=lambda s: signal.Signals(s).name)
def test_host_signal_default_action_kills(signo: int) -> None:
    def drive(guest: Guest) -> None:
        guest.expect("ready")
        guest.send(signo, group=signo == signal.SIGINT)

    runs = _both(["default"], drive)
    assert runs["qemu"].rc == -signo
    assert runs["vm"].rc == -signo, runs["vm"].describe()
    assert b"Traceback" not in runs["vm"].stderr


def test_host_signal_blocked_stays_pending() -> None:
    def drive(guest: Guest) -> None:
        guest.expect("ready")
        guest.send(signal.SIGINT)

    runs = _both(["blocked"], drive)
    assert_same("sig_host blocked", runs["qemu"], runs["vm"])
    assert "after unblocking: handler ran 1, from the parent: yes" in runs["vm"].stdout.decode()


def test_sigstop_and_sigcont_from_outside() -> None:
    """A stopped emulator is a stopped process (its parent sees it), and it goes on after
    SIGCONT: the guest still answers the next signal."""
    binary = guestlib.guest(ARCH, "sig_host")
    guest = Guest(vm_argv(binary, ["wait", "USR1"]))
    try:
        guest.expect("ready USR1")
        guest.send(signal.SIGSTOP)
        _, status = os.waitpid(guest.proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGSTOP
        guest.send(signal.SIGCONT)
        guest.send(signal.SIGUSR1)
        # (waitpid above reaped nothing: the process is still the Popen's)
        guest.expect("got SIGUSR1: yes, code SI_USER, from the parent: yes")
    finally:
        run = guest.finish()
    assert run.rc == 0, run.describe()


# -- guest death -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,signo", [("segv", signal.SIGSEGV), ("abort", signal.SIGABRT),
                                        ("ill", signal.SIGILL)])
def test_guest_death_by_signal(mode: str, signo: int) -> None:
    """The emulator dies of the guest's signal, after one line for a fault; a shell that
    waits for it sees the same status as for qemu."""
    binary = guestlib.guest(ARCH, "sig_host")
    vm = run_vm(binary, [mode])
    qemu = guestlib.run_qemu(ARCH, binary, [mode])
    assert qemu.rc == -signo
    assert vm.rc == -signo, vm.describe()
    assert vm.stdout == qemu.stdout
    err = vm.stderr.decode()
    if mode == "segv":
        assert re.fullmatch(r"guest SIGSEGV at pc=0x[0-9a-f]+ addr=0x10\n", err), err
    elif mode == "ill":
        assert re.fullmatch(r"guest SIGILL at pc=0x[0-9a-f]+\n", err), err
    else:
        assert err == "", err
    shell = guestlib.run(["sh", "-c", '"$@"; echo "status $?"', "sh",
                          *vm_argv(binary, [mode])], timeout=VM_TIMEOUT)
    assert shell.stdout.decode().endswith(f"status {128 + signo}\n"), shell.describe()


def test_internal_error_is_one_line_and_status_70(tmp_path: Path) -> None:
    """A failure of the emulator itself (here: a trap handler that raises) ends `vm` with
    one ``vm: internal error`` line and status 70, never a traceback."""
    binary = guestlib.guest(ARCH, "hello")
    code = ("import sys\n"
            "from vm_runtime.linux import process\n"
            "def broken(self, thread, trap):\n"
            "    raise RuntimeError('broken on purpose')\n"
            "process.Process.handle_trap = broken\n"
            "from vm_runtime.linux.__main__ import main\n"
            f"sys.exit(main(['--', {os.fspath(binary)!r}]))\n")
    got = guestlib.run([sys.executable, "-c", code], timeout=VM_TIMEOUT)
    assert got.rc == 70, got.describe()
    assert got.stderr.decode() == "vm: internal error: RuntimeError('broken on purpose')\n"
