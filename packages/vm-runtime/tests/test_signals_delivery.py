"""Signal delivery in a Process, without running guest code: which thread takes a signal,
in what order frames nest, what an interrupted syscall becomes, what sigaction and the
masks do to pending signals (kernel/signal.c, arch/riscv/kernel/signal.c)."""

from __future__ import annotations

import struct

import pytest

from vm_runtime.linux import signals as sig
from vm_runtime.linux.arch.riscv64 import RISCV64
from vm_runtime.linux.memory import PROT_READ, PROT_WRITE
from vm_runtime.linux.process import KilledBySignal, Process

STACK, STACK_SIZE, SP = 0x100000, 0x40000, 0x13F008
UC_MCONTEXT = 128 + 176
NR_READ, NR_RESTART_SYSCALL = 63, 128


class Died(Exception):
    pass


@pytest.fixture
def proc(monkeypatch):
    p = Process(RISCV64, stderr=lambda text: None)
    p.mem.map(STACK, STACK_SIZE, PROT_READ | PROT_WRITE)
    p.sigreturn_addr = 0x5000

    def die(signo: int, message: str) -> None:
        raise Died(signo, message)

    monkeypatch.setattr(p, "die_by_signal", die)
    yield p
    p.mem.close()


def make_thread(p: Process, tid: int, mask: int = 0):
    state = p.state_class()
    state.pc = 0x10000
    state.x[2] = SP
    t = p.new_thread(state, tid, mask)
    p.threads[tid] = t
    return t


def handle(p: Process, signo: int, handler: int, flags: int = 0, mask: int = 0) -> None:
    p.sigactions[signo] = sig.SigAction(handler, flags, 0, mask)


def saved_regs(p: Process, t) -> tuple[int, ...]:
    """The registers in the frame at the thread's stack pointer (pc first)."""
    return struct.unpack("<32Q", p.mem.read(t.state.x[2] + UC_MCONTEXT, 256))


def saved_mask(p: Process, t) -> int:
    return struct.unpack("<Q", p.mem.read(t.state.x[2] + 128 + 40, 8))[0]


def test_frames_nest_lowest_signal_first(proc: Process) -> None:
    t = make_thread(proc, proc.pid)
    handle(proc, 35, 0x35000)
    handle(proc, 36, 0x36000)
    for value in (1, 2):
        proc.send_process_signal(sig.PendingSignal(36, sig.SI_QUEUE, value=value))
        proc.send_process_signal(sig.PendingSignal(35, sig.SI_QUEUE, value=value))
    proc.do_signal(t)
    # 35 first (its handler blocks 35), then 36 on top of it; the rest wait for sigreturn
    assert t.state.pc == 0x36000
    assert saved_regs(proc, t)[0] == 0x35000
    assert t.signals.mask == sig.bit(35) | sig.bit(36)
    assert [(s.signo, s.value) for s in t.signals.pending] == [(36, 2), (35, 2)]
    info = proc.mem.read(t.state.x[11], 128)
    assert struct.unpack_from("<iiiiIQ", info)[:3] == (36, 0, sig.SI_QUEUE)


def test_a_blocked_signal_waits_and_the_handler_mask_applies(proc: Process) -> None:
    t = make_thread(proc, proc.pid, mask=sig.bit(sig.SIGUSR1))
    handle(proc, sig.SIGUSR1, 0x1000, mask=sig.bit(sig.SIGTERM))
    proc.send_signal(t, sig.PendingSignal(sig.SIGUSR1))
    proc.do_signal(t)
    assert t.state.pc == 0x10000
    t.signals.mask = 0
    proc.do_signal(t)
    assert t.state.pc == 0x1000
    assert t.signals.mask == sig.bit(sig.SIGUSR1) | sig.bit(sig.SIGTERM)
    assert saved_mask(proc, t) == 0
    assert t.state.x[1] == 0x5000  # riscv64 returns through the vDSO trampoline


def test_sa_nodefer_and_sa_resethand(proc: Process) -> None:
    t = make_thread(proc, proc.pid)
    handle(proc, sig.SIGUSR1, 0x1000, sig.SA_NODEFER | sig.SA_RESETHAND)
    proc.send_signal(t, sig.PendingSignal(sig.SIGUSR1))
    proc.do_signal(t)
    assert t.state.pc == 0x1000
    assert t.signals.mask == 0
    assert proc.sigactions[sig.SIGUSR1].handler == sig.SIG_DFL


@pytest.mark.parametrize("flags,code,pc,a0,a7", [
    (sig.SA_RESTART, sig.ERESTARTSYS, 0x10000, 7, NR_READ),
    (0, sig.ERESTARTSYS, 0x10004, -4, NR_READ),
    (sig.SA_RESTART, sig.ERESTARTNOHAND, 0x10004, -4, NR_READ),
    (sig.SA_RESTART, sig.ERESTARTNOINTR, 0x10000, 7, NR_READ),
    (sig.SA_RESTART, sig.ERESTART_RESTARTBLOCK, 0x10004, -4, NR_READ),
])
def test_interrupted_syscall_with_a_handler(proc: Process, flags: int, code: int, pc: int,
                                             a0: int, a7: int) -> None:
    t = make_thread(proc, proc.pid)
    t.state.pc = 0x10004  # just after the ecall
    t.state.x[17] = NR_READ
    t.state.x[10] = (-code) & (1 << 64) - 1
    t.restart = (code, NR_READ, 7)
    handle(proc, sig.SIGUSR1, 0x1000, flags)
    proc.send_signal(t, sig.PendingSignal(sig.SIGUSR1))
    proc.do_signal(t)
    regs = saved_regs(proc, t)
    assert (regs[0], regs[10], regs[17]) == (pc, a0 & (1 << 64) - 1, a7)


@pytest.mark.parametrize("code,a7", [(sig.ERESTARTSYS, NR_READ), (sig.ERESTARTNOHAND, NR_READ),
                                     (sig.ERESTART_RESTARTBLOCK, NR_RESTART_SYSCALL)])
def test_interrupted_syscall_without_a_handler_runs_again(proc: Process, code: int,
                                                          a7: int) -> None:
    t = make_thread(proc, proc.pid)
    t.state.pc = 0x10004
    t.state.x[17] = NR_READ
    t.restart = (code, NR_READ, 7)
    # an ignored signal that was pending (queued while blocked) ends the wait, nothing runs
    t.signals.private.add(sig.PendingSignal(sig.SIGCHLD))
    proc.do_signal(t)
    assert (t.state.pc, t.state.x[10], t.state.x[17]) == (0x10000, 7, a7)


def test_sigsuspend_mask_is_saved_by_the_frame_or_comes_back(proc: Process) -> None:
    t = make_thread(proc, proc.pid)
    t.saved_mask = sig.bit(sig.SIGUSR1)
    t.signals.mask = 0
    t.restart = (sig.ERESTARTNOHAND, 133, 0x1234)
    handle(proc, sig.SIGUSR1, 0x1000)
    proc.send_signal(t, sig.PendingSignal(sig.SIGUSR1))
    proc.do_signal(t)
    assert saved_mask(proc, t) == sig.bit(sig.SIGUSR1)
    assert t.saved_mask is None
    assert saved_regs(proc, t)[10] == (-4) & (1 << 64) - 1  # EINTR

    t2 = make_thread(proc, proc.pid + 1)
    t2.saved_mask = sig.bit(sig.SIGUSR2)
    proc.do_signal(t2)
    assert t2.signals.mask == sig.bit(sig.SIGUSR2) and t2.saved_mask is None


def test_process_signal_goes_to_a_thread_that_does_not_block_it(proc: Process) -> None:
    main = make_thread(proc, proc.pid, mask=sig.bit(sig.SIGUSR1))
    worker = make_thread(proc, proc.pid + 1)
    handle(proc, sig.SIGUSR1, 0x1000)
    proc.send_process_signal(sig.PendingSignal(sig.SIGUSR1))
    assert worker.wakeup.is_set() and worker.check_signals
    proc.do_signal(main)
    assert main.state.pc == 0x10000
    proc.do_signal(worker)
    assert worker.state.pc == 0x1000


def test_thread_directed_signal_stays_with_its_thread(proc: Process) -> None:
    main = make_thread(proc, proc.pid, mask=sig.bit(sig.SIGUSR1))
    worker = make_thread(proc, proc.pid + 1)
    handle(proc, sig.SIGUSR1, 0x1000)
    proc.send_signal(main, sig.PendingSignal(sig.SIGUSR1, sig.SI_TKILL))
    proc.do_signal(worker)
    assert worker.state.pc == 0x10000
    assert main.signals.private.bits == sig.bit(sig.SIGUSR1)


def test_ignored_signals_are_dropped_unless_blocked(proc: Process) -> None:
    t = make_thread(proc, proc.pid)
    proc.send_process_signal(sig.PendingSignal(sig.SIGCHLD))
    proc.sigactions[sig.SIGUSR1] = sig.SigAction(sig.SIG_IGN)
    proc.send_process_signal(sig.PendingSignal(sig.SIGUSR1))
    assert proc.shared_pending.bits == 0
    t.signals.mask = sig.bit(sig.SIGUSR1)
    proc.send_process_signal(sig.PendingSignal(sig.SIGUSR1))
    assert proc.shared_pending.bits == sig.bit(sig.SIGUSR1)


def test_sigaction_sig_ign_flushes_pending(proc: Process) -> None:
    from vm_runtime.linux.syscalls.signals import sys_rt_sigaction

    t = make_thread(proc, proc.pid, mask=sig.bit(sig.SIGUSR1))
    handle(proc, sig.SIGUSR1, 0x1000)
    proc.send_process_signal(sig.PendingSignal(sig.SIGUSR1))
    proc.send_signal(t, sig.PendingSignal(sig.SIGUSR1))
    proc.mem.write(STACK, struct.pack("<QQQ", sig.SIG_IGN, 0, 0))
    assert sys_rt_sigaction(proc, t, sig.SIGUSR1, STACK, 0, 8) == 0
    assert t.signals.pending_bits() == 0


def test_fatal_signal_kills_at_once(proc: Process) -> None:
    make_thread(proc, proc.pid)
    with pytest.raises(Died) as died:
        proc.send_process_signal(sig.PendingSignal(sig.SIGTERM))
    assert died.value.args == (sig.SIGTERM, "")


def test_fatal_signal_blocked_everywhere_stays_pending(proc: Process) -> None:
    t = make_thread(proc, proc.pid, mask=sig.bit(sig.SIGTERM))
    proc.send_process_signal(sig.PendingSignal(sig.SIGTERM))
    assert proc.shared_pending.bits == sig.bit(sig.SIGTERM)
    t.signals.mask = 0
    with pytest.raises(KilledBySignal):
        proc.do_signal(t)


def test_fault_without_handler_dies_with_one_line(proc: Process) -> None:
    t = make_thread(proc, proc.pid)
    t.state.pc = 0x10abc
    with pytest.raises(KilledBySignal) as killed:
        proc.force_signal(t, sig.PendingSignal(sig.SIGSEGV, sig.SEGV_MAPERR, 0x10))
    assert killed.value.message == "guest SIGSEGV at pc=0x10abc addr=0x10"


def test_blocked_fault_kills_even_with_a_handler(proc: Process) -> None:
    t = make_thread(proc, proc.pid, mask=sig.bit(sig.SIGILL))
    handle(proc, sig.SIGILL, 0x1000)
    with pytest.raises(KilledBySignal):
        proc.force_signal(t, sig.PendingSignal(sig.SIGILL, sig.ILL_ILLOPC, 0x10000))
    assert proc.sigactions[sig.SIGILL].handler == sig.SIG_DFL


def test_fault_is_delivered_before_other_pending_signals(proc: Process) -> None:
    t = make_thread(proc, proc.pid)
    handle(proc, sig.SIGHUP, 0x1000)
    handle(proc, sig.SIGSEGV, 0x2000)
    t.signals.mask = sig.bit(sig.SIGHUP)
    proc.send_signal(t, sig.PendingSignal(sig.SIGHUP))
    t.signals.mask = 0
    proc.force_signal(t, sig.PendingSignal(sig.SIGSEGV, sig.SEGV_ACCERR, 0x4000))
    proc.do_signal(t)
    assert t.state.pc == 0x1000  # SIGHUP nested on top of the SIGSEGV frame
    assert saved_regs(proc, t)[0] == 0x2000


def test_sa_onstack_runs_on_the_alternate_stack(proc: Process) -> None:
    t = make_thread(proc, proc.pid)
    alt = STACK + 0x1000
    t.signals.ss_sp, t.signals.ss_size = alt, 0x8000
    handle(proc, sig.SIGUSR1, 0x1000, sig.SA_ONSTACK)
    proc.send_signal(t, sig.PendingSignal(sig.SIGUSR1))
    proc.do_signal(t)
    frame = t.state.x[2]
    assert alt < frame < alt + 0x8000
    ss_sp, ss_flags, _, ss_size = struct.unpack("<QiIQ", proc.mem.read(frame + 128 + 16, 24))
    assert (ss_sp, ss_flags, ss_size) == (alt, 0, 0x8000)  # the interrupted code was not on it


def test_alternate_stack_overflow_is_sigsegv(proc: Process) -> None:
    t = make_thread(proc, proc.pid)
    alt = STACK + 0x1000
    t.signals.ss_sp, t.signals.ss_size = alt, 0x800
    t.state.x[2] = alt + 0x400  # already on it, with too little room for a frame
    handle(proc, sig.SIGUSR1, 0x1000, sig.SA_ONSTACK)
    proc.send_signal(t, sig.PendingSignal(sig.SIGUSR1))
    with pytest.raises(KilledBySignal) as killed:
        proc.do_signal(t)
    assert killed.value.signo == sig.SIGSEGV


def test_stop_signals_flush_sigcont_and_back(proc: Process) -> None:
    t = make_thread(proc, proc.pid, mask=sig.ALL & ~sig.UNBLOCKABLE)
    handle(proc, sig.SIGCONT, 0x1000)
    handle(proc, sig.SIGTSTP, 0x2000)
    proc.send_process_signal(sig.PendingSignal(sig.SIGCONT))
    proc.send_process_signal(sig.PendingSignal(sig.SIGTSTP))
    assert proc.shared_pending.bits == sig.bit(sig.SIGTSTP)
    proc.send_process_signal(sig.PendingSignal(sig.SIGCONT))
    assert proc.shared_pending.bits == sig.bit(sig.SIGCONT)
    del t
