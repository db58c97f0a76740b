"""The syscall layer's tables and edges: numbers against the kernel's tables, argument kinds
for --strace on every registered syscall, strace's formatting, open-flag translation between
architectures, and blocking calls that a pending guest signal interrupts."""

from __future__ import annotations

import errno
import inspect
import os
import struct
import time
from collections.abc import Iterator

import pytest

from vm_runtime.linux import signals as sig
from vm_runtime.linux import strace
from vm_runtime.linux.arch import arch_named
from vm_runtime.linux.memory import PROT_READ, PROT_WRITE
from vm_runtime.linux.process import Process, Restart, Thread
from vm_runtime.linux.syscalls import REGISTRY, SyscallDef, load_all, numbers, util
from vm_runtime.linux.syscalls.numbers import numbers_by_name

M64 = (1 << 64) - 1
BUF = 0x100000
KINDS = {"fd", "int", "hex", "ptr", "size", "oct", "str", "buf", "obuf", "sig", "oflags",
         "atflags", "prot", "mmap_flags", "fcntl_cmd", "ioctl_req", "whence"}


# -- numbers ----------------------------------------------------------------------------------------------
def test_tables_have_one_number_per_name() -> None:
    for name, table in numbers.TABLES.items():
        assert len(set(table.values())) == len(table), name


@pytest.mark.parametrize(("name", "generic", "x86_64"), [
    ("io_setup", 0, 206), ("getcwd", 17, 79), ("openat", 56, 257), ("close", 57, 3),
    ("read", 63, 0), ("write", 64, 1), ("newfstatat", 79, 262), ("fstat", 80, 5),
    ("exit", 93, 60), ("exit_group", 94, 231), ("futex", 98, 202), ("clock_gettime", 113, 228),
    ("rt_sigreturn", 139, 15), ("uname", 160, 63), ("getpid", 172, 39), ("sysinfo", 179, 99),
    ("socket", 198, 41), ("brk", 214, 12), ("clone", 220, 56), ("execve", 221, 59),
    ("mmap", 222, 9), ("accept4", 242, 288), ("wait4", 260, 61), ("prlimit64", 261, 302),
    ("renameat2", 276, 316), ("getrandom", 278, 318), ("statx", 291, 332), ("rseq", 293, 334),
    ("pidfd_open", 434, 434), ("clone3", 435, 435), ("close_range", 436, 436),
    ("faccessat2", 439, 439), ("fchmodat2", 452, 452), ("mseal", 462, 462),
])
def test_numbers_against_the_kernels_tables(name: str, generic: int, x86_64: int) -> None:
    assert numbers.GENERIC[generic] == name
    assert numbers.RISCV64[generic] == name
    assert numbers.X86_64[x86_64] == name


def test_arch_specific_numbers() -> None:
    assert numbers.RISCV64[258] == "riscv_hwprobe" and numbers.RISCV64[259] == "riscv_flush_icache"
    assert 38 not in numbers.RISCV64 and numbers.AARCH64[38] == "renameat"
    assert numbers.X86_64[158] == "arch_prctl" and numbers.X86_64[2] == "open"
    assert "open" not in numbers.GENERIC.values()
    assert numbers_by_name(numbers.X86_64)["pipe2"] == 293


# -- the registry and --strace ---------------------------------------------------------------------------
def _registry() -> dict[str, SyscallDef]:
    load_all()
    return REGISTRY


def test_every_syscall_has_an_arg_kind_per_argument() -> None:
    for name, d in _registry().items():
        params = list(inspect.signature(d.fn).parameters.values())[2:]  # after (p, t)
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                      and p.default is p.empty]
        assert len(d.args) == len(positional), f"{name}: kinds {d.args} for {positional}"
        assert set(d.args) <= KINDS, f"{name}: unknown kinds {set(d.args) - KINDS}"
        assert len(d.args) <= 6, name


def test_every_registered_syscall_has_a_number_somewhere() -> None:
    known = set().union(*(t.values() for t in numbers.TABLES.values()))
    assert set(_registry()) <= known


def test_strace_quoting() -> None:
    assert strace.quote(b"hi\n\t\"x\\") == '"hi\\n\\t\\"x\\\\"'
    assert strace.quote(b"\x7fELF\x02\x01") == '"\\177ELF\\2\\1"'
    assert strace.quote(b"\x001") == '"\\0001"'  # a digit after an escape: three digits
    assert strace.quote(b"a" * 40) == '"' + "a" * 32 + '"...'


def test_strace_flags() -> None:
    assert strace.open_flags(0) == "O_RDONLY"
    assert strace.open_flags(0o2000000 | 0o200000 | 0o4000) == \
        "O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY"
    assert strace.open_flags(0o1101) == "O_WRONLY|O_CREAT|O_TRUNC"
    assert strace.open_flags(0o40000, "aarch64") == "O_RDONLY|O_DIRECTORY"
    assert strace.flags(0x100 | 0x40000000, strace.AT_FLAGS) == "AT_SYMLINK_NOFOLLOW|0x40000000"
    assert strace.format_result(-2 & M64) == "-1 ENOENT (No such file or directory)"
    assert strace.format_result(0x1000, "hex") == "0x1000"


def test_strace_line_of_a_real_call() -> None:
    lines: list[str] = []
    p = Process(arch_named("riscv64"), stderr=lines.append)
    p.options.strace = True
    try:
        p.mem.map(BUF, 0x10000, PROT_READ | PROT_WRITE)
        t = _thread(p)
        p.mem.write(BUF, b"/nonexistent/vm-test\0")
        _call(p, t, "openat", -100, BUF, 0o2000000, 0)
        p.mem.write(BUF + 0x100, b"hello\n")
        _call(p, t, "write", 12345, BUF + 0x100, 6)
    finally:
        p.mem.close()
    assert lines == [
        'openat(AT_FDCWD, "/nonexistent/vm-test", O_RDONLY|O_CLOEXEC) = '
        "-1 ENOENT (No such file or directory)\n",
        'write(12345, "hello\\n", 6) = -1 EBADF (Bad file descriptor)\n',
    ]


# -- open flags between architectures -----------------------------------------------------------------
def test_open_flags_translate_between_arm64_and_generic() -> None:
    class Arm:
        class arch:
            name = "aarch64"

    generic = {"O_DIRECTORY": 0o200000, "O_NOFOLLOW": 0o400000, "O_DIRECT": 0o40000,
               "O_LARGEFILE": 0o100000}
    arm = {"O_DIRECTORY": 0o40000, "O_NOFOLLOW": 0o100000, "O_DIRECT": 0o200000,
           "O_LARGEFILE": 0o400000}
    assert util.o_table("riscv64") == generic and util.o_table("x86_64") == generic
    assert util.o_table("aarch64") == arm
    common = 0o2000000 | 0o4000 | 0o100 | 2  # O_CLOEXEC|O_NONBLOCK|O_CREAT|O_RDWR
    for name in generic:
        host = util.flags_to_host(Arm, arm[name] | common)
        assert host == generic[name] | common, name  # the host here is x86_64 or generic
        assert util.flags_from_host(Arm, host) == arm[name] | common


# -- blocking calls and signals -----------------------------------------------------------------------
def _thread(p: Process) -> Thread:
    state = p.state_class()
    t = p.new_thread(state, p.pid) if hasattr(p, "new_thread") else Thread(p, state, p.pid)
    p.threads[t.tid] = t
    return t


def _call(p: Process, t: Thread, name: str, *args: int) -> int:
    state = t.state
    state.x[17] = numbers_by_name(p.numbers)[name]
    for i, a in enumerate(args):
        state.x[10 + i] = a & M64
    state.pc = 0x1000
    p.syscall(t)
    v = state.x[10]
    return v - (1 << 64) if v >> 63 else v


@pytest.fixture
def proc() -> Iterator[tuple[Process, Thread]]:
    p = Process(arch_named("riscv64"))
    p.mem.map(BUF, 0x10000, PROT_READ | PROT_WRITE)
    yield p, _thread(p)
    p.mem.close()


def _pend(p: Process, t: Thread, signo: int, flags: int = 0) -> None:
    p.sigactions[signo] = sig.SigAction(0x4000, flags, 0, 0)
    p.send_signal(t, sig.PendingSignal(signo, sig.SI_USER, pid=os.getpid()))


def _interrupted(result: int, restartable: bool) -> bool:
    """EINTR, or the code a run loop that settles restarts itself gets."""
    codes = {-errno.EINTR}
    if hasattr(sig, "RESTART_CODES"):
        codes.add(-(sig.ERESTARTSYS if restartable else sig.ERESTARTNOHAND))
    return result in codes


def test_a_signal_interrupts_a_blocking_read(proc) -> None:
    p, t = proc
    r, w = os.pipe()
    try:
        _pend(p, t, sig.SIGUSR1)
        start = time.monotonic()
        assert _interrupted(_call(p, t, "read", r, BUF, 10), restartable=True)
        assert time.monotonic() - start < 5
    finally:
        os.close(r)
        os.close(w)


def test_an_sa_restart_handler_restarts_a_read(proc) -> None:
    p, t = proc
    r, w = os.pipe()
    try:
        _pend(p, t, sig.SIGUSR2, sig.SA_RESTART)
        t.state.x[10] = r
        try:
            result = _call(p, t, "read", r, BUF, 10)
        except Restart:  # pragma: no cover - the dispatcher catches it
            raise
        if hasattr(sig, "RESTART_CODES"):
            assert result == -sig.ERESTARTSYS  # the run loop restarts it after the handler
        else:
            assert t.state.pc == 0x1000 and result == r  # rewound, a0 untouched
    finally:
        os.close(r)
        os.close(w)


def test_a_signal_interrupts_ppoll_but_a_blocked_one_does_not(proc) -> None:
    p, t = proc
    r, w = os.pipe()
    try:
        fds = BUF
        p.mem.write(fds, struct.pack("<ihh", r, 1, 0))
        p.mem.write(BUF + 0x100, struct.pack("<qq", 0, 50_000_000))
        p.mem.write(BUF + 0x200, struct.pack("<Q", sig.bit(sig.SIGUSR1)))  # the wait's mask
        _pend(p, t, sig.SIGUSR1)
        assert _call(p, t, "ppoll", fds, 1, BUF + 0x100, BUF + 0x200, 8) == 0  # timed out
        assert t.signals.mask == 0  # the old mask is back
        p.mem.write(BUF + 0x100, struct.pack("<qq", 5, 0))
        assert _interrupted(_call(p, t, "ppoll", fds, 1, BUF + 0x100, 0, 8), restartable=False)
    finally:
        os.close(r)
        os.close(w)
