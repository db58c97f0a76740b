"""Signal state as kernel/signal.c keeps it: pending sets, siginfo layouts, the riscv64
signal frame, struct sigaction, and the ``#!`` parser of execve."""

from __future__ import annotations

import struct

import pytest

from vm_runtime.linux import signals as sig
from vm_runtime.linux.arch import riscv64
from vm_runtime.linux.exec import parse_shebang
from vm_runtime.linux.syscalls import Errno


# -- pending sets ----------------------------------------------------------------------------------
def test_standard_signals_coalesce_realtime_signals_queue() -> None:
    q = sig.SigQueue()
    assert q.add(sig.PendingSignal(sig.SIGUSR1, value=1))
    assert not q.add(sig.PendingSignal(sig.SIGUSR1, value=2))
    assert q.add(sig.PendingSignal(35, value=1))
    assert q.add(sig.PendingSignal(35, value=2))
    assert [s.value for s in q] == [1, 1, 2]
    assert q.take(35).value == 1
    assert q.bits & sig.bit(35)  # one more instance queued
    assert q.take(35).value == 2
    assert not q.bits & sig.bit(35)


def test_lowest_signal_first_but_synchronous_ones_before_all() -> None:
    q = sig.SigQueue()
    for signo in (40, sig.SIGUSR2, sig.SIGHUP, sig.SIGSEGV):
        q.add(sig.PendingSignal(signo))
    assert q.next(0) == sig.SIGSEGV
    assert q.next(sig.bit(sig.SIGSEGV)) == sig.SIGHUP
    assert q.next(sig.bit(sig.SIGSEGV) | sig.bit(sig.SIGHUP)) == sig.SIGUSR2
    assert q.next(sig.ALL & ~sig.bit(40)) == 40
    assert q.next(sig.ALL) == 0


def test_take_without_a_queued_siginfo_makes_one() -> None:
    q = sig.SigQueue()
    q.bits = sig.bit(sig.SIGTERM)  # pending without a queue entry (as after an overflow)
    got = q.take(sig.SIGTERM)
    assert (got.signo, got.code) == (sig.SIGTERM, sig.SI_USER)
    assert q.bits == 0


def test_flush_forgets_the_masked_signals() -> None:
    q = sig.SigQueue()
    for signo in (sig.SIGUSR1, 34, 34, sig.SIGUSR2):
        q.add(sig.PendingSignal(signo))
    q.flush(sig.bit(34) | sig.bit(sig.SIGUSR1))
    assert [s.signo for s in q] == [sig.SIGUSR2]
    assert q.bits == sig.bit(sig.SIGUSR2)


def test_thread_sees_its_own_and_the_shared_pending_signals() -> None:
    shared = sig.SigQueue()
    ts = sig.ThreadSignals(shared=shared)
    ts.private.add(sig.PendingSignal(sig.SIGUSR1))
    shared.add(sig.PendingSignal(sig.SIGUSR2))
    assert [s.signo for s in ts.pending] == [sig.SIGUSR1, sig.SIGUSR2]
    ts.mask = sig.bit(sig.SIGUSR2)
    assert ts.deliverable() == sig.bit(sig.SIGUSR1)


# -- siginfo ---------------------------------------------------------------------------------------
def _fields(info: bytes) -> tuple[int, int, int]:
    return struct.unpack_from("<iii", info)


def test_siginfo_kill_layout() -> None:
    info = sig.PendingSignal(sig.SIGUSR1, sig.SI_USER, pid=1234, uid=1000).siginfo()
    assert len(info) == 128
    assert _fields(info) == (sig.SIGUSR1, 0, sig.SI_USER)
    assert struct.unpack_from("<iI", info, 16) == (1234, 1000)
    assert info[24:] == bytes(104)


def test_siginfo_fault_layout_has_the_address_at_16() -> None:
    info = sig.PendingSignal(sig.SIGSEGV, sig.SEGV_ACCERR, addr=0xDEADBEEF000).siginfo()
    assert _fields(info) == (sig.SIGSEGV, 0, sig.SEGV_ACCERR)
    assert struct.unpack_from("<Q", info, 16)[0] == 0xDEADBEEF000


def test_siginfo_rt_and_timer_layouts_carry_the_value() -> None:
    info = sig.PendingSignal(35, sig.SI_QUEUE, pid=7, uid=8, value=42).siginfo()
    assert struct.unpack_from("<iIQ", info, 16) == (7, 8, 42)
    info = sig.PendingSignal(sig.SIGALRM, sig.SI_TIMER, value=-1).siginfo()
    assert struct.unpack_from("<Q", info, 24)[0] == (1 << 64) - 1


def test_siginfo_sigchld_layout() -> None:
    info = sig.PendingSignal(sig.SIGCHLD, sig.CLD_EXITED, pid=99, uid=5, status=3).siginfo()
    assert struct.unpack_from("<iIi", info, 16) == (99, 5, 3)


def test_raw_siginfo_is_kept_with_the_signal_number_forced() -> None:
    raw = struct.pack("<iii4xiIQ", 99, 0, sig.SI_QUEUE, 10, 20, 0x1122334455667788)
    pending = sig.PendingSignal.from_siginfo(sig.SIGUSR2, raw.ljust(128, b"\0"))
    assert (pending.code, pending.pid, pending.uid) == (sig.SI_QUEUE, 10, 20)
    info = pending.siginfo()
    assert _fields(info)[0] == sig.SIGUSR2
    assert info[4:32] == raw[4:32]


@pytest.mark.parametrize("signo,code,layout", [
    (sig.SIGSEGV, sig.SEGV_MAPERR, "fault"), (sig.SIGILL, sig.ILL_ILLOPC, "fault"),
    (sig.SIGTRAP, sig.TRAP_BRKPT, "fault"), (sig.SIGCHLD, sig.CLD_KILLED, "chld"),
    (sig.SIGSEGV, sig.SI_USER, "kill"), (sig.SIGSEGV, sig.SI_KERNEL, "kill"),
    (sig.SIGUSR1, sig.SI_TKILL, "rt"), (sig.SIGUSR1, sig.SI_QUEUE, "rt"),
    (sig.SIGALRM, sig.SI_TIMER, "timer"), (sig.SIGIO, sig.SI_SIGIO, "poll"),
])
def test_siginfo_layout_follows_the_kernel(signo: int, code: int, layout: str) -> None:
    assert sig.siginfo_layout(signo, code) == layout


def test_default_actions() -> None:
    assert sig.default_ignores(sig.SIGCHLD) and sig.default_ignores(sig.SIGWINCH)
    assert sig.default_stops(sig.SIGTSTP) and not sig.default_stops(sig.SIGCONT)
    assert sig.is_fatal(sig.SigAction(), sig.SIGTERM)
    assert sig.is_fatal(sig.SigAction(), 40)
    assert not sig.is_fatal(sig.SigAction(), sig.SIGCHLD)
    assert not sig.is_fatal(sig.SigAction(handler=0x1000), sig.SIGTERM)
    assert sig.is_fatal(sig.SigAction(handler=0x1000), sig.SIGKILL)
    assert sig.handler_ignores(sig.SigAction(sig.SIG_IGN), sig.SIGTERM)
    assert sig.handler_ignores(sig.SigAction(), sig.SIGURG)


def test_altstack_flags() -> None:
    ts = sig.ThreadSignals()
    assert ts.altstack_flags(0x5000) == sig.SS_DISABLE
    ts.ss_sp, ts.ss_size = 0x1000, 0x2000
    assert ts.on_altstack(0x3000) and not ts.on_altstack(0x1000)
    assert ts.altstack_flags(0x2000) == sig.SS_ONSTACK
    assert ts.altstack_flags(0x8000) == 0
    ts.ss_flags = sig.SS_AUTODISARM
    assert not ts.on_altstack(0x2000)


# -- the riscv64 frame ----------------------------------------------------------------------------
class _Mem:
    def __init__(self) -> None:
        self.data = bytearray(1 << 16)

    def write(self, addr: int, data: bytes) -> None:
        self.data[addr:addr + len(data)] = data

    def read(self, addr: int, length: int) -> bytes:
        return bytes(self.data[addr:addr + length])


class _State:
    def __init__(self) -> None:
        self.pc = 0x10000
        self.x = [0] + [0x1000 + i for i in range(1, 32)]
        self.x[2] = 0xF008  # sp, not 16-aligned
        self.f = [0x4000_0000_0000_0000 + i for i in range(32)]
        self.frm = 3
        self.fflags = 0x15


# glibc's riscv ucontext_t: __uc_flags 0, uc_link 8, uc_stack 16 (ss_sp, ss_flags, ss_size),
# uc_sigmask 40 (its 128-byte sigset), uc_mcontext 176: __gregs[32] (REG_PC 0), then
# __fpregs (the D state: __f[32] and __fcsr), 16-aligned.
UC_STACK, UC_SIGMASK, UC_MCONTEXT = 16, 40, 176


def test_riscv64_frame_is_the_kernels_rt_sigframe() -> None:
    mem, st = _Mem(), _State()
    info = sig.PendingSignal(sig.SIGILL, sig.ILL_ILLOPC, addr=0x10000).siginfo()
    riscv64.setup_frame(mem, st, sig.SIGILL, info, 0x20000, 0x30000, 0x1234, (0x8000, 0, 0x100),
                        0xF008)
    frame = (0xF008 - riscv64.FRAME_SIZE) & ~15
    assert riscv64.FRAME_SIZE == 1088
    assert (st.pc, st.x[1], st.x[2]) == (0x20000, 0x30000, frame)
    assert (st.x[10], st.x[11], st.x[12]) == (sig.SIGILL, frame, frame + 128)
    assert mem.read(frame, 128) == info
    uc = frame + 128
    assert struct.unpack("<QQ", mem.read(uc, 16)) == (0, 0)
    assert struct.unpack("<QiIQ", mem.read(uc + UC_STACK, 24)) == (0x8000, 0, 0, 0x100)
    assert struct.unpack("<Q", mem.read(uc + UC_SIGMASK, 8))[0] == 0x1234
    gregs = struct.unpack("<32Q", mem.read(uc + UC_MCONTEXT, 256))
    assert gregs[0] == 0x10000 and gregs[1] == 0x1001 and gregs[2] == 0xF008
    assert gregs[31] == 0x1000 + 31
    fp = struct.unpack("<32QI", mem.read(uc + UC_MCONTEXT + 256, 260))
    assert fp[:32] == tuple(0x4000_0000_0000_0000 + i for i in range(32))
    assert fp[32] == (3 << 5) | 0x15
    assert mem.read(uc + UC_MCONTEXT + 256 + 260, 528 - 260) == bytes(268)


def test_riscv64_sigreturn_restores_what_the_handler_left() -> None:
    mem, st = _Mem(), _State()
    riscv64.setup_frame(mem, st, sig.SIGUSR1, bytes(128), 0x20000, 0x30000, 0x55, (0, 2, 0),
                        0xF008)
    uc = st.x[2] + 128
    # the handler moves the pc on and sets a0, changes the rounding mode, then clobbers regs
    mem.write(uc + UC_MCONTEXT, struct.pack("<Q", 0x10004))
    mem.write(uc + UC_MCONTEXT + 10 * 8, struct.pack("<Q", 0x5EED))
    mem.write(uc + UC_MCONTEXT + 256 + 256, struct.pack("<I", 1 << 5))
    st.x = [0] * 32
    st.x[2] = uc - 128
    st.f = [0] * 32
    mask, stack = riscv64.restore_frame(mem, st)
    assert (mask, stack) == (0x55, (0, 2, 0))
    assert st.pc == 0x10004 and st.x[10] == 0x5EED and st.x[2] == 0xF008
    assert st.x[31] == 0x1000 + 31
    assert st.f[5] == 0x4000_0000_0000_0005
    assert (st.frm, st.fflags) == (1, 0)


def test_riscv64_sigreturn_refuses_reserved_fp_words() -> None:
    mem, st = _Mem(), _State()
    riscv64.setup_frame(mem, st, sig.SIGUSR1, bytes(128), 0x20000, 0x30000, 0, (0, 2, 0), 0xF008)
    uc = st.x[2] + 128
    mem.write(uc + UC_MCONTEXT + 256 + 516, b"\1")
    before = st.pc
    with pytest.raises(ValueError):
        riscv64.restore_frame(mem, st)
    assert st.pc == before  # nothing restored


def test_riscv64_syscall_rewind() -> None:
    st = _State()
    st.pc = 0x10004
    riscv64.rewind_syscall(st, 63, 0x77)
    assert (st.pc, st.x[17], st.x[10]) == (0x10000, 63, 0x77)


# -- struct sigaction -----------------------------------------------------------------------------
class _P:
    def __init__(self, arch) -> None:
        self.arch = arch


def test_riscv64_sigaction_has_no_restorer() -> None:
    from vm_runtime.linux.syscalls.signals import pack_sigaction, unpack_sigaction

    p = _P(riscv64.RISCV64)
    raw = struct.pack("<QQQ", 0x1234, sig.SA_SIGINFO | sig.SA_RESTART | 0x400,
                      sig.bit(sig.SIGUSR2) | sig.bit(sig.SIGKILL))
    action = unpack_sigaction(p, raw)
    assert action.handler == 0x1234
    assert action.flags == sig.SA_SIGINFO | sig.SA_RESTART  # unknown flag bits cleared
    assert action.mask == sig.bit(sig.SIGUSR2)  # SIGKILL cannot be blocked
    assert pack_sigaction(p, action) == struct.pack("<QQQ", 0x1234, action.flags, action.mask)


# -- #! lines -----------------------------------------------------------------------------------
@pytest.mark.parametrize("line,expected", [
    (b"#!/bin/sh\n", (b"/bin/sh", b"")),
    (b"#! /usr/bin/env  python3 -u \nx", (b"/usr/bin/env", b"python3 -u")),
    (b"#!\t/bin/interp\targ\twith tab\n", (b"/bin/interp", b"arg\twith tab")),
    (b"#!/bin/sh", (b"/bin/sh", b"")),
])
def test_shebang(line: bytes, expected: tuple[bytes, bytes]) -> None:
    assert parse_shebang(line) == expected


def test_shebang_errors() -> None:
    with pytest.raises(Errno) as e:
        parse_shebang(b"#!   \n")
    assert e.value.code == 8  # ENOEXEC
    with pytest.raises(Errno):
        parse_shebang(b"#!/" + b"a" * 300)  # the interpreter's name does not fit
    assert parse_shebang(b"#!/bin/sh " + b"a" * 300)[0] == b"/bin/sh"  # an argument may
