"""A Linux process in user-mode emulation: its address space, threads, files and signals, and
the loop that runs a thread: the engine executes guest code until a trap, and the trap is a
syscall to serve, a fault to turn into a signal, or a signal to deliver.

Signals follow kernel/signal.c. A signal is queued (``_send``) on a thread's own pending set
or on the process's shared one, or dropped when ignored; a fatal one (default action, some
thread not blocking it) ends the process at once. On the way back to guest code
(``do_signal``, the kernel's exit-to-user loop) a thread takes its deliverable signals one by
one and builds a frame for each handler, each nested in the one before; a syscall that
answered -ERESTART* becomes EINTR or runs again. Faults are forced (``force_signal``). Host
signals reach the guest through ``hostsig``: blocked in every host thread, received by one
thread with their siginfo, queued as process-directed signals. Blocking syscalls wait with
``wait`` (``Interrupted`` when a signal becomes deliverable: the call answers -ERESTARTSYS).

Threads are host threads; a guest's fork is a fork of the emulator, its execve an exec of
a fresh emulator (``exec``). A death by signal is the host process's death by the same
signal; a failure of the emulator is one ``vm: internal error`` line and status 70.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vm_core import Trap, TrapKind
from vm_telemetry import Registry

from . import hostsig
from . import signals as sig
from .arch import LinuxArch
from .hostsig import HostSignals
from .loader import AT, ElfInfo, build_stack, load_elf
from .memory import PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace
from .syscalls import REGISTRY, Errno, load_all

M64 = (1 << 64) - 1
STACK_SIZE = 8 << 20
SIGNAL_CHECK_INSNS = 200_000


class ProcessExit(Exception):
    """exit_group: the whole process ends with this status."""

    def __init__(self, status: int) -> None:
        self.status = status


class ThreadExit(Exception):
    """exit: the calling thread ends."""

    def __init__(self, status: int) -> None:
        self.status = status


class KilledBySignal(Exception):
    """A signal's default action ends the process."""

    def __init__(self, signo: int, message: str) -> None:
        self.signo = signo
        self.message = message


class Restart(Exception):
    """The syscall set the registers itself (rt_sigreturn, execve): do not write a result."""


class Interrupted(Exception):
    """A blocking wait ended because a signal became deliverable to the waiting thread."""


@dataclass
class Options:
    engine: str = "interp"
    strace: bool = False
    trace: bool = False
    stats: bool = False
    argv0: str | None = None
    #: what an execve carries over (the exec'd emulator gets them on its command line): the
    #: signal mask and the ignored signals (bit s-1 for signal s); None: the host's own
    sigmask: int | None = None
    sigign: int | None = None


@dataclass(eq=False)
class Thread:
    process: Process
    state: Any
    tid: int
    signals: sig.ThreadSignals = field(default_factory=sig.ThreadSignals)
    clear_child_tid: int = 0
    robust_list: int = 0
    #: set by rt_sigsuspend (and ppoll/pselect with a mask): the mask the next signal frame
    #: saves instead of the current one, or that comes back when no handler runs
    saved_mask: int | None = None
    #: look at the pending signals before running guest code again
    check_signals: bool = False
    #: the last syscall asked to be restarted: (-ERESTART code, number, first argument)
    restart: tuple[int, int, int] | None = None
    #: what restart_syscall runs (the kernel's restart_block)
    restart_fn: Callable[[], int] | None = None
    #: set when something this thread may be waiting for happens (a signal, a futex wake)
    wakeup: threading.Event = field(default_factory=threading.Event)


class Process:
    """One emulated Linux process (one host process: fork forks the emulator too)."""

    def __init__(self, arch: LinuxArch, options: Options | None = None,
                 stderr: Callable[[str], None] | None = None) -> None:
        load_all()
        self.arch = arch
        self.options = options or Options()
        self.mem = AddressSpace(arch.address_space_size)
        self.state_class: type
        if self.options.engine == "kvm":  # guest code runs natively under KVM
            from .kvm import KvmEngine

            if arch.state_class is None:
                raise ValueError(f"{arch.name} programs cannot run under KVM")
            self.frontend = None
            self.engine: Any = KvmEngine(self.mem)
            self.state_class = arch.state_class
        else:
            self.frontend = arch.make_frontend()
            self.engine = self._make_engine()
            self.mem.on_code_write = self.engine.invalidate
            self.engine.on_translate = lambda block: self.mem.mark_code(block.pc, block.length)
            if self.options.trace:
                self.engine.trace = self._trace_block
            self.state_class = _state_class(self.frontend)
        self.brk_start = 0
        self.brk = 0
        self.exe = ""
        self.pid = os.getpid()
        self.sigactions = [sig.SigAction() for _ in range(sig.NSIG + 1)]
        self.threads: dict[int, Thread] = {}
        self.lock = threading.RLock()
        #: guards the pending sets, masks and actions against the other threads
        self.siglock = threading.RLock()
        self.shared_pending = sig.SigQueue()
        self.futex_lock = threading.Lock()
        #: the kernel's mmap_lock: one thread at a time places, maps, unmaps or protects
        #: (without it, two threads' mmap calls can both find the same free range)
        self.mm_lock = threading.Lock()
        self.futex_waiters: dict[int, list] = {}
        self.reported_enosys: set[str] = set()
        self.sigreturn_addr = 0
        self.write_stderr = stderr or _write_stderr
        #: kept for callers that look for host signals here: they arrive as queued signals
        self.host_signals: list[int] = []
        self.host = HostSignals(self.on_host_signal, self.write_stderr)
        if hasattr(self.engine, "forward_signal"):
            self.engine.forward_signal = self.on_host_signal
        self.numbers = arch.numbers
        self.started = time.perf_counter()
        self.syscall_numbers = {name: nr for nr, name in arch.numbers.items()}
        self.vfork_gate: int | None = None
        #: the main thread has exited (pthread_exit) while others run: its exit status
        self.leader_status: int | None = None
        self.exit_cond = threading.Condition(self.lock)
        #: this emulator is a fork of another (it ends with os._exit, as a C program would)
        self.forked = False

    def _trace_block(self, pc: int, block: Any) -> None:
        """--trace: each newly translated block, disassembled, on stderr."""
        lines = [f"block {pc:#x}: {block.insns} instruction(s)"]
        addr = pc
        for _ in range(block.insns):
            text, size = self.frontend.disassemble(self.mem, addr)
            lines.append(f"  {addr:#x}:  {text}")
            if size == 0:
                break
            addr += size
        self.write_stderr("\n".join(lines) + "\n")

    def _make_engine(self) -> Any:
        from vm_engine_jit import InterpEngine

        engine = self.options.engine
        if engine not in ("interp", "jit", "auto"):
            raise Errno(38)
        if engine != "interp":
            try:  # loads llvmlite only when asked for
                from vm_engine_jit.jit import JitEngine
            except ImportError as exc:
                if engine == "jit":
                    raise
                self.write_stderr(f"vm: the JIT is not available ({exc}); interpreting\n")
            else:
                return JitEngine(self.frontend)
        return InterpEngine(self.frontend)

    def new_thread(self, state: Any, tid: int, mask: int = 0) -> Thread:
        """A thread of this process (not yet in ``threads``)."""
        return Thread(self, state, tid, sig.ThreadSignals(mask=mask, shared=self.shared_pending))

    # -- start-up --------------------------------------------------------------------------------
    def load(self, info: ElfInfo, argv: list[bytes], envp: list[bytes]) -> Thread:
        """Map the program, the stack and the signal trampoline; make the main thread."""
        arch = self.arch
        program = load_elf(info, self.mem, arch.pie_base)
        self.exe = os.path.abspath(info.path)
        self.brk_start = self.brk = program.brk
        stack_base = arch.stack_top - STACK_SIZE
        self.mem.map(stack_base, STACK_SIZE, PROT_READ | PROT_WRITE, "[stack]")
        # the sigreturn trampoline (the kernel's vDSO provides one): one page below the stack gap
        tramp = self.mem.find_free(0x1000, arch.mmap_top)
        assert tramp is not None
        self.mem.map(tramp, 0x1000, PROT_READ | PROT_WRITE, "[vdso]")
        self.mem.write(tramp, arch.sigreturn_code)
        self.mem.protect(tramp, 0x1000, PROT_READ | PROT_EXEC)
        self.sigreturn_addr = tramp
        auxv = [(AT["PHDR"], program.phdr), (AT["PHENT"], program.phent),
                (AT["PHNUM"], program.phnum), (AT["PAGESZ"], 4096), (AT["BASE"], 0),
                (AT["FLAGS"], 0), (AT["ENTRY"], program.entry), (AT["UID"], os.getuid()),
                (AT["EUID"], os.geteuid()), (AT["GID"], os.getgid()), (AT["EGID"], os.getegid()),
                (AT["HWCAP"], getattr(self.engine, "hwcap", arch.hwcap)), (AT["CLKTCK"], 100),
                (AT["SECURE"], 0),
                (AT["HWCAP2"], 0)]
        minsigstksz = getattr(self.engine, "minsigstksz", 0)
        if minsigstksz:  # the signal frame's size where it depends on the CPU (x86 XSAVE)
            auxv.append((AT["MINSIGSTKSZ"], minsigstksz))
        sp, _ = build_stack(self.mem, arch.stack_top, argv, envp, auxv,
                            os.fsencode(info.path))
        state = self.state_class()
        if hasattr(state, "res_addr"):
            state.res_addr = M64
        state.pc = program.entry
        arch.set_sp(state, sp)
        thread = self.new_thread(state, self.pid)
        self.threads[thread.tid] = thread
        return thread

    # -- running ---------------------------------------------------------------------------------
    def run(self, thread: Thread) -> int:
        """Run ``thread`` (the main thread) until the process exits; give the exit status.
        A death by signal re-raises the signal on the host process after one line on
        stderr, so the parent sees exactly what the kernel would report. A failure of the
        emulator itself ends it with one ``vm: internal error`` line and status 70."""
        status = 0
        try:
            self.start_signals(thread)
            try:
                self.run_thread(thread)
            except ThreadExit as done:  # the main thread left with exit(); others may run on
                status = self.leader_exit(thread, done.status)
            except ProcessExit as done:
                status = done.status & 0xFF
            except KilledBySignal as killed:
                self.die_by_signal(killed.signo, killed.message)
        except Exception as exc:
            self.internal_error(exc)
        if self.forked or any(t is not thread for t in list(self.threads.values())):
            self.exit_process(status)  # other threads must not run on: end the host process
        self.host.stop()
        return status

    def start_signals(self, thread: Thread) -> None:
        """Take over the host's signals; the guest starts with the mask and ignored signals
        it inherits (from the host, or from the guest that exec'd it)."""
        host_mask, host_ignored = self.host.start()
        opts = self.options
        mask = host_mask if opts.sigmask is None else opts.sigmask
        ignored = host_ignored if opts.sigign is None else opts.sigign
        thread.signals.mask = mask & sig.ALL & ~sig.UNBLOCKABLE
        for signo in range(1, sig.NSIG + 1):
            if ignored & sig.bit(signo) and signo not in (sig.SIGKILL, sig.SIGSTOP):
                self.sigactions[signo] = sig.SigAction(sig.SIG_IGN)
        if ignored & sig.bit(sig.SIGCHLD):
            hostsig.set_disposition(sig.SIGCHLD, True)  # children are reaped automatically

    def leader_exit(self, thread: Thread, status: int) -> int:
        """The main thread called exit: as on Linux the process lives on until its last
        thread exits, and then reports the main thread's status."""
        with self.lock:
            self.leader_status = status
            while self.threads:
                self.exit_cond.wait(0.5)
        return status

    def thread_exited(self, thread: Thread, status: int) -> None:
        """A thread other than the host's main one ended with exit()."""
        with self.lock:
            if self.threads:
                return
            if self.leader_status is not None:
                self.exit_cond.notify_all()
                return
        self.exit_process(status)  # the last thread of a forked child

    def run_thread(self, thread: Thread) -> None:
        engine = self.engine
        mem = self.mem
        state = thread.state
        # an engine that can be kicked (``kick``) is, when a signal comes; another returns
        # now and then to look
        slice_ = None if getattr(engine, "kick", None) is not None else SIGNAL_CHECK_INSNS
        while True:
            trap = engine.run(state, mem, max_insns=slice_)
            if trap is not None:
                self.handle_trap(thread, trap)
                thread.check_signals = True  # a syscall may have changed masks or queued one
            if thread.check_signals:
                self.do_signal(thread)

    def handle_trap(self, thread: Thread, trap: Trap) -> None:
        kind = trap.kind
        if kind is TrapKind.SYSCALL:
            self.syscall(thread)
            return
        thread.state.pc = trap.pc
        translate = self.arch.trap_signal
        chosen = translate(trap, thread.state, self.mem) if translate is not None else None
        if chosen is not None:
            signo, code, addr = chosen
            self.force_signal(thread, sig.PendingSignal(signo, code, addr))
        elif kind is TrapKind.MEM_FAULT:
            addr = trap.addr if trap.addr is not None else trap.pc
            code = sig.SEGV_ACCERR if self.mem.is_mapped(addr, 1) else sig.SEGV_MAPERR
            self.force_signal(thread, sig.PendingSignal(sig.SIGSEGV, code, addr))
        elif kind is TrapKind.ILLEGAL:
            self.force_signal(thread, sig.PendingSignal(sig.SIGILL, sig.ILL_ILLOPC, trap.pc))
        elif kind is TrapKind.BREAKPOINT:
            self.force_signal(thread, sig.PendingSignal(sig.SIGTRAP, sig.TRAP_BRKPT, trap.pc))
        elif kind is TrapKind.MISALIGNED:
            addr = trap.addr if trap.addr is not None else trap.pc
            self.force_signal(thread, sig.PendingSignal(sig.SIGBUS, sig.BUS_ADRALN, addr))
        elif kind is TrapKind.DIV_BY_ZERO:
            self.force_signal(thread, sig.PendingSignal(sig.SIGFPE, sig.FPE_INTDIV, trap.pc))
        else:
            raise KilledBySignal(sig.SIGILL, f"guest stopped: {trap}")

    # -- syscalls --------------------------------------------------------------------------------
    def syscall(self, thread: Thread) -> None:
        arch = self.arch
        state = thread.state
        nr = arch.syscall_number(state)
        args = arch.syscall_args(state)
        name = self.numbers.get(nr)
        definition = REGISTRY.get(name) if name is not None else None
        state.pc = (state.pc + arch.syscall_insn_size) & M64
        if definition is None:
            label = name or "unknown"
            if label not in self.reported_enosys:
                self.reported_enosys.add(label)
                self.write_stderr(f"vm: unsupported syscall {label} ({nr}) returns ENOSYS\n")
            result = -38
            if self.options.strace:
                self.write_stderr(f"{label}({', '.join(hex(a) for a in args[:3])}) = -1 ENOSYS\n")
        else:
            try:
                result = definition.fn(self, thread, *args[:len(definition.args)])
            except Restart:
                if self.options.strace:
                    self.write_stderr(f"{name}(...) = ?\n")
                return
            except Errno as e:
                result = -e.code
            except Interrupted:
                result = -sig.ERESTARTSYS
            except OSError as e:
                result = -(e.errno or 5)
            except (ValueError, OverflowError):
                result = -22
            except MemoryError:
                result = -12
            except _guest_memory_errors():
                result = -14
            except (ProcessExit, ThreadExit, KilledBySignal):
                raise
            except Exception as exc:  # a bug of ours: loud, but the guest goes on
                self.write_stderr(f"vm: internal error in syscall {name}: {exc!r}\n")
                result = -38
            if self.options.strace:
                from .strace import format_call

                self.write_stderr(format_call(self, definition, args, result) + "\n")
            if -result in sig.RESTART_CODES:
                thread.restart = (-result, nr, args[0])
        arch.set_syscall_result(state, result)

    # -- waiting -----------------------------------------------------------------------------------
    def signal_pending(self, thread: Thread) -> bool:
        """A signal this thread does not block is pending (the kernel's signal_pending)."""
        return bool(thread.signals.deliverable())

    def wait(self, thread: Thread, ready: Callable[[], Any], deadline: float | None = None,
             interruptible: bool = True, ignore: int = 0) -> Any:
        """Block ``thread`` until ``ready()`` gives something other than None (returned),
        the ``time.monotonic()`` deadline passes (None returned), or a signal outside
        ``ignore`` becomes deliverable to it (``Interrupted`` raised). ``thread.wakeup``
        ends a wait early; a syscall that ``Interrupted`` leaves answers -ERESTARTSYS."""
        event = thread.wakeup
        while True:
            event.clear()
            got = ready()
            if got is not None:
                return got
            if interruptible and thread.signals.deliverable() & ~ignore:
                raise Interrupted
            if deadline is None:
                event.wait(WAIT_SLICE)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                event.wait(min(left, WAIT_SLICE))

    def wake_all(self) -> None:
        """Every thread looks at its signals again: one that waits wakes, one that runs guest
        code is kicked out of it (a process-wide signal may be its to take now)."""
        for t in list(self.threads.values()):
            t.check_signals = True
            t.wakeup.set()
            self.kick(t)

    def kick(self, thread: Thread) -> None:
        """Make ``thread`` leave guest code soon (an engine running guest code on a CPU of
        its own, such as KVM, does not look at ``check_signals`` by itself)."""
        kick = getattr(self.engine, "kick", None)
        if kick is not None and thread is not _current_thread(self):
            kick(thread.state)

    # -- sending signals ---------------------------------------------------------------------------
    def send_signal(self, thread: Thread, pending: sig.PendingSignal) -> None:
        """A thread-directed signal (tgkill, SIGPIPE)."""
        self._send(pending, thread)

    def send_process_signal(self, pending: sig.PendingSignal) -> None:
        """A process-directed signal (kill, sigqueue, a host signal)."""
        self._send(pending, None)

    def _send(self, pending: sig.PendingSignal, target: Thread | None) -> None:
        """The kernel's __send_signal_locked and complete_signal."""
        signo = pending.signo
        with self.siglock:
            action = self.sigactions[signo]
            threads = list(self.threads.values())
            if signo == sig.SIGCONT or signo in _STOP_SIGNALS:  # prepare_signal
                flush = _STOP_MASK if signo == sig.SIGCONT else sig.bit(sig.SIGCONT)
                self.shared_pending.flush(flush)
                for t in threads:
                    t.signals.private.flush(flush)
            leader = target or self.threads.get(self.pid) or (threads[0] if threads else None)
            blocked = leader is not None and bool(leader.signals.mask & sig.bit(signo))
            if signo != sig.SIGKILL and not blocked and sig.handler_ignores(action, signo):
                return  # an ignored signal is dropped, not queued
            queue = target.signals.private if target is not None else self.shared_pending
            if not queue.add(pending):
                return  # a standard signal already pending: coalesced
            # who takes it: the target, or the main thread, or any thread that does not block it
            candidates = [target] if target is not None else (
                ([leader] if leader is not None else []) + threads)
            chosen = next((t for t in candidates
                           if t is not None and not t.signals.mask & sig.bit(signo)), None)
            fatal = chosen is not None and sig.is_fatal(action, signo)
            for t in (threads if target is None else [target]):
                t.check_signals = True
                if not t.signals.mask & sig.bit(signo):
                    t.wakeup.set()
                    self.kick(t)
        if fatal:  # the whole process dies now, whichever thread would have taken it
            self.die_by_signal(signo, "")

    def on_host_signal(self, raw: bytes) -> None:
        """A host signal arrived (on the receiving thread): it becomes the guest's."""
        signo, _errno, code = struct.unpack_from("<iii", raw)
        pid = struct.unpack_from("<i", raw, 16)[0]
        if signo == sig.SIGCHLD:
            self.wake_all()  # wait4 and waitid look again
        if code == sig.SI_USER and pid == self.pid:
            return  # our own kill() of a group we are in: already queued when it was sent
        if signo == sig.SIGCHLD and code in (sig.CLD_STOPPED, sig.CLD_CONTINUED) and (
                self.sigactions[sig.SIGCHLD].flags & sig.SA_NOCLDSTOP):
            return
        self.send_process_signal(sig.PendingSignal.from_siginfo(signo, raw))

    def force_signal(self, thread: Thread, pending: sig.PendingSignal) -> None:
        """A synchronous fault (the kernel's force_sig_fault): a blocked or ignored fault, or
        one without a handler, kills the process; otherwise its handler runs before any
        other signal's."""
        signo = pending.signo
        pending.fault = True
        with self.siglock:
            action = self.sigactions[signo]
            ts = thread.signals
            if ts.mask & sig.bit(signo) or action.handler in (sig.SIG_IGN, sig.SIG_DFL):
                self.sigactions[signo] = sig.SigAction()
                ts.mask &= ~sig.bit(signo)
                raise KilledBySignal(signo, self.fault_message(thread, pending))
            ts.private.add(pending)
            thread.check_signals = True

    def fault_message(self, thread: Thread, pending: sig.PendingSignal) -> str:
        pc = thread.state.pc
        text = f"guest {sig.name(pending.signo)} at pc={pc:#x}"
        if pending.signo in (sig.SIGSEGV, sig.SIGBUS):
            text += f" addr={pending.addr:#x}"
        return text

    # -- delivering signals ------------------------------------------------------------------------
    def do_signal(self, thread: Thread) -> None:
        """On the way back to guest code (the kernel's exit_to_user_mode loop): set up a
        frame for every deliverable signal, each nested in the one before; settle a syscall
        that asked to be restarted; put back a mask that rt_sigsuspend replaced."""
        thread.check_signals = False
        ts = thread.signals
        restart = thread.restart
        if restart is None and thread.saved_mask is None and not ts.deliverable():
            return
        thread.restart = None
        while True:
            with self.siglock:
                pending = self._dequeue(thread)
                if pending is None:
                    break
                signo = pending.signo
                action = self.sigactions[signo]
                if action.handler == sig.SIG_IGN:
                    continue
                if action.handler == sig.SIG_DFL:
                    if sig.default_ignores(signo):
                        continue
                    if not sig.default_stops(signo):
                        message = self.fault_message(thread, pending) if pending.fault else ""
                        raise KilledBySignal(signo, message)
                    stop = True
                else:
                    stop = False
                    ka = sig.SigAction(action.handler, action.flags, action.restorer,
                                       action.mask)
                    if ka.flags & sig.SA_RESETHAND:
                        self.sigactions[signo] = sig.SigAction()
            if stop:
                hostsig.stop(signo)
                continue
            if restart is not None:
                self._restart(thread, restart, ka)
                restart = None
            self._setup_frame(thread, pending, ka)
        if restart is not None:
            self._restart(thread, restart, None)
        if thread.saved_mask is not None:  # no handler ran: the wait's mask goes away
            ts.mask, thread.saved_mask = thread.saved_mask, None

    def _dequeue(self, thread: Thread) -> sig.PendingSignal | None:
        ts = thread.signals
        signo = ts.private.next(ts.mask)
        if signo:
            return ts.private.take(signo)
        signo = ts.shared.next(ts.mask)
        if signo:
            return ts.shared.take(signo)
        return None

    def _restart(self, thread: Thread, restart: tuple[int, int, int],
                 action: sig.SigAction | None) -> None:
        """What an interrupted syscall returns: -EINTR when a handler runs (unless it has
        SA_RESTART and the call allows it), or the call again (arch/*/kernel/signal.c)."""
        code, nr, arg0 = restart
        state = thread.state
        if action is not None:
            if code in (sig.ERESTART_RESTARTBLOCK, sig.ERESTARTNOHAND) or (
                    code == sig.ERESTARTSYS and not action.flags & sig.SA_RESTART):
                self.arch.set_syscall_result(state, -4)  # EINTR
                return
        elif code == sig.ERESTART_RESTARTBLOCK:
            nr = self.syscall_numbers.get("restart_syscall", nr)
        rewind = self.arch.rewind_syscall
        if rewind is not None:
            rewind(state, nr, arg0)
        else:
            state.pc = (state.pc - self.arch.syscall_insn_size) & M64
            self.arch.set_syscall_result(state, arg0)

    def _setup_frame(self, thread: Thread, pending: sig.PendingSignal,
                     action: sig.SigAction) -> None:
        """Build the signal frame and enter the handler (setup_rt_frame, signal_delivered)."""
        arch = self.arch
        state = thread.state
        ts = thread.signals
        signo = pending.signo
        sp = arch.get_sp(state)
        uc_stack = (ts.ss_sp, ts.altstack_flags(sp) | (ts.ss_flags & sig.SS_AUTODISARM),
                    ts.ss_size)
        top = sp
        if action.flags & sig.SA_ONSTACK and ts.ss_size and not ts.on_altstack(sp):
            top = ts.ss_sp + ts.ss_size
        saved_mask = ts.mask if thread.saved_mask is None else thread.saved_mask
        restorer = self.sigreturn_addr
        if arch.has_sa_restorer and action.flags & sig.SA_RESTORER:
            restorer = action.restorer
        try:
            frame_size = max(arch.sigframe_size, getattr(self.engine, "minsigstksz", 0))
            if ts.on_altstack(sp) and not ts.on_altstack(sp - frame_size):
                raise ValueError("the alternate signal stack overflows")
            arch.setup_frame(self.mem, state, signo, pending.siginfo(), action.handler,
                             restorer, saved_mask, uc_stack, top)
        except (ValueError, *_guest_memory_errors()):
            self._force_sigsegv(thread, signo, top)
            return
        thread.saved_mask = None
        if hasattr(state, "res_addr"):
            state.res_addr = M64
        if ts.ss_flags & sig.SS_AUTODISARM:
            ts.reset_altstack()
        with self.siglock:
            mask = ts.mask | action.mask
            if not action.flags & sig.SA_NODEFER:
                mask |= sig.bit(signo)
            ts.mask = mask & ~sig.UNBLOCKABLE

    def _force_sigsegv(self, thread: Thread, signo: int, sp: int) -> None:
        """The frame could not be written (the kernel's force_sigsegv)."""
        if signo == sig.SIGSEGV:
            self.sigactions[sig.SIGSEGV] = sig.SigAction()
        self.force_signal(thread, sig.PendingSignal(sig.SIGSEGV, sig.SI_KERNEL, sp))

    # -- the end -----------------------------------------------------------------------------------
    def die_by_signal(self, signo: int, message: str) -> None:
        """End the host process with ``signo`` (after ``message``), as the guest would die."""
        if message:
            self.write_stderr(message + "\n")
        if self.options.stats:
            self.print_stats()
        hostsig.die(signo)

    def exit_process(self, status: int) -> None:
        """exit_group from any thread: end the host process now."""
        if self.options.stats:
            self.print_stats()
        os._exit(status & 0xFF)

    def internal_error(self, exc: BaseException) -> None:
        """A failure of the emulator, not of the guest: one line, status 70."""
        self.write_stderr(f"vm: internal error: {exc!r}\n")
        if os.environ.get("VM_DEBUG"):
            import traceback

            self.write_stderr("".join(traceback.format_exception(exc)))
        os._exit(70)

    def print_stats(self) -> None:
        """One line from the engine's counters as vm-telemetry metrics."""
        if hasattr(self.engine, "stats_line"):
            self.write_stderr(self.engine.stats_line(time.perf_counter() - self.started))
            return
        registry = self.engine.stats.publish(Registry("vm"))
        m = registry.value
        elapsed = time.perf_counter() - self.started
        insns = m("guest_instructions")
        mips = insns / elapsed / 1e6 if elapsed > 0 else 0.0
        exits = {dict(k)["reason"]: v for k, v in registry.family("exits").items()}
        self.write_stderr(
            f"vm stats: {insns} guest instructions in {elapsed:.3f}s ({mips:.2f} MIPS); "
            f"{m('dispatches')} dispatches, {m('blocks_translated')} blocks translated in "
            f"{m('translate_seconds'):.3f}s CPU, {m('blocks_compiled')} compiled "
            f"({m('regions_compiled')} regions; {m('compile_seconds'):.3f}s CPU in LLVM), "
            f"{m('invalidations')} invalidated; code cache {m('code_cache_hits')} hits, "
            f"{m('code_cache_misses')} misses, {m('code_cache_evictions')} evictions, "
            f"{m('code_cache_bytes')} bytes; {m('native_instructions')} instructions native; "
            f"exits {exits}\n")

    def own_fds(self) -> set[int]:
        """Host descriptors of the emulator's own (the engine's, a vfork child's gate, the
        host-signal descriptor): not the guest's, which must not close them (EBADF, as for
        any descriptor it never had)."""
        own_fds = getattr(self.engine, "own_fds", None)
        fds = set(own_fds()) if own_fds is not None else set()
        if self.vfork_gate is not None:
            fds.add(self.vfork_gate)
        if self.host.fd is not None:
            fds.add(self.host.fd)
        return fds

    # -- fork ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def forking(self):
        """Hold the locks other threads may hold, so that a forked child gets them free."""
        fork_locks = getattr(self.engine, "fork_locks", None)
        locks = [self.lock, self.siglock, self.futex_lock, self.mm_lock, *_engine_locks(),
                 *(fork_locks() if fork_locks is not None else ())]
        for lock in locks:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(locks):
                lock.release()

    def after_fork_child(self, thread: Thread) -> None:
        """In the child of a fork: only the forking thread is left, with no pending signals."""
        self.forked = True
        self.pid = os.getpid()
        self.lock = threading.RLock()
        self.siglock = threading.RLock()
        self.futex_lock = threading.Lock()
        self.mm_lock = threading.Lock()
        self.exit_cond = threading.Condition(self.lock)
        self.futex_waiters = {}
        self.leader_status = None
        self.shared_pending.clear()
        thread.signals.private.clear()
        thread.tid = self.pid
        thread.wakeup = threading.Event()
        thread.restart = None
        self.threads = {thread.tid: thread}
        self.host.after_fork()
        after_fork = getattr(self.engine, "after_fork", None)
        if after_fork is not None:
            after_fork()


_STOP_SIGNALS = frozenset((sig.SIGSTOP, sig.SIGTSTP, sig.SIGTTIN, sig.SIGTTOU))
_STOP_MASK = sum(sig.bit(s) for s in _STOP_SIGNALS)
#: the longest a blocked thread sleeps before it looks again by itself
WAIT_SLICE = 0.1


def _current_thread(process: Process) -> Thread | None:
    """The guest thread the calling host thread runs (None: another host thread)."""
    return process.threads.get(threading.get_native_id())


def _write_stderr(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, text.encode(errors="replace"))


def _engine_locks() -> list[Any]:
    try:
        from vm_engine_jit.interp.pygen import ATOMIC_LOCK
    except ImportError:  # pragma: no cover - another engine
        return []
    return [ATOMIC_LOCK]


def _state_class(frontend: Any) -> type:
    from vm_engine_jit import state_class

    return state_class(frontend.state_layout)


def _guest_memory_errors() -> tuple[type[BaseException], ...]:
    from vm_core import GuestMemoryError

    return (GuestMemoryError,)


__all__ = [
    "WAIT_SLICE",
    "Interrupted",
    "KilledBySignal",
    "Options",
    "Process",
    "ProcessExit",
    "Restart",
    "Thread",
    "ThreadExit",
    "sys",
]
