"""A Linux process in user-mode emulation: its address space, threads, files and signals, and
the loop that runs a thread: the engine executes guest code until a trap, and the trap is a
syscall to serve, a fault to turn into a signal, or a signal to deliver.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vm_core import Trap, TrapKind

from . import signals as sig
from .arch import LinuxArch
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


@dataclass
class Options:
    engine: str = "interp"
    strace: bool = False
    trace: bool = False
    stats: bool = False
    argv0: str | None = None


@dataclass
class Thread:
    process: Process
    state: Any
    tid: int
    signals: sig.ThreadSignals = field(default_factory=sig.ThreadSignals)
    clear_child_tid: int = 0
    robust_list: int = 0
    #: set by rt_sigsuspend: the mask the next signal frame saves instead of the current one
    saved_mask: int | None = None


class Process:
    """One emulated Linux process (one host process: fork forks the emulator too)."""

    def __init__(self, arch: LinuxArch, options: Options | None = None,
                 stderr: Callable[[str], None] | None = None) -> None:
        load_all()
        self.arch = arch
        self.options = options or Options()
        self.frontend = arch.make_frontend()
        self.mem = AddressSpace(arch.address_space_size)
        self.engine = self._make_engine()
        self.mem.on_code_write = self.engine.invalidate
        self.engine.on_translate = lambda block: self.mem.mark_code(block.pc, block.length)
        self.state_class = _state_class(self.frontend)
        self.brk_start = 0
        self.brk = 0
        self.exe = ""
        self.pid = os.getpid()
        self.sigactions = [sig.SigAction() for _ in range(sig.NSIG + 1)]
        self.threads: dict[int, Thread] = {}
        self.lock = threading.RLock()
        self.futex_lock = threading.Lock()
        self.futex_waiters: dict[int, list] = {}
        self.reported_enosys: set[str] = set()
        self.sigreturn_addr = 0
        self.write_stderr = stderr or (lambda text: os.write(2, text.encode()))
        self.host_signals: list[int] = []
        self.numbers = arch.numbers
        self.vfork_gate: int | None = None

    def _make_engine(self) -> Any:
        from vm_engine_jit import InterpEngine

        if self.options.engine not in ("interp", "auto"):
            raise Errno(38)
        return InterpEngine(self.frontend)

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
                (AT["HWCAP"], arch.hwcap), (AT["CLKTCK"], 100), (AT["SECURE"], 0),
                (AT["HWCAP2"], 0)]
        sp, _ = build_stack(self.mem, arch.stack_top, argv, envp, auxv,
                            os.fsencode(info.path))
        state = self.state_class()
        if hasattr(state, "res_addr"):
            state.res_addr = M64
        state.pc = program.entry
        arch.set_sp(state, sp)
        thread = Thread(self, state, self.pid)
        self.threads[thread.tid] = thread
        return thread

    # -- running ---------------------------------------------------------------------------------
    def run(self, thread: Thread) -> int:
        """Run ``thread`` (the main thread) until the process exits; give the exit status.
        A death by signal re-raises the signal on the host process after one line on
        stderr, so the parent sees exactly what the kernel would report."""
        self._install_host_handlers()
        try:
            self.run_thread(thread)
            return 0
        except ProcessExit as done:
            return done.status & 0xFF
        except KilledBySignal as killed:
            self.die_by_signal(killed.signo, killed.message)
            return 128 + killed.signo

    def run_thread(self, thread: Thread) -> None:
        engine = self.engine
        mem = self.mem
        state = thread.state
        while True:
            trap = engine.run(state, mem, max_insns=SIGNAL_CHECK_INSNS)
            if trap is not None:
                try:
                    self.handle_trap(thread, trap)
                except ThreadExit:
                    if thread.tid == self.pid and len(self.threads) <= 1:
                        raise ProcessExit(0) from None
                    raise
            if thread.signals.pending or self.host_signals:
                self.deliver_signals(thread)
            if thread.saved_mask is not None:  # rt_sigsuspend woke for nothing to handle
                thread.signals.mask, thread.saved_mask = thread.saved_mask, None

    def handle_trap(self, thread: Thread, trap: Trap) -> None:
        state = thread.state
        kind = trap.kind
        if kind is TrapKind.SYSCALL:
            self.syscall(thread)
            return
        if kind is TrapKind.MEM_FAULT:
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
            raise KilledBySignal(sig.SIGSYS, f"guest stopped: {trap}")
        del state

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
        arch.set_syscall_result(state, result)

    # -- signals ---------------------------------------------------------------------------------
    def _install_host_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signo in (sig.SIGINT, sig.SIGTERM, sig.SIGHUP, sig.SIGUSR1, sig.SIGUSR2,
                      sig.SIGALRM, sig.SIGQUIT, sig.SIGWINCH, sig.SIGCHLD):
            try:
                import signal as host

                host.signal(signo, self._on_host_signal)
            except (OSError, ValueError):
                pass

    def _on_host_signal(self, signo: int, frame: Any) -> None:
        action = self.sigactions[signo]
        if action.handler == sig.SIG_IGN:
            return
        if action.handler == sig.SIG_DFL and sig.default_ignores(signo):
            return
        self.host_signals.append(signo)

    def send_signal(self, thread: Thread, pending: sig.PendingSignal) -> None:
        thread.signals.pending.append(pending)

    def force_signal(self, thread: Thread, pending: sig.PendingSignal) -> None:
        """A synchronous fault: delivered now, even if blocked or ignored (the kernel's
        force_sig: a blocked or ignored fault kills the process)."""
        action = self.sigactions[pending.signo]
        blocked = thread.signals.mask & sig.bit(pending.signo)
        if blocked or action.handler in (sig.SIG_IGN, sig.SIG_DFL):
            raise KilledBySignal(pending.signo, self.fault_message(thread, pending))
        self.enter_handler(thread, pending, action)

    def fault_message(self, thread: Thread, pending: sig.PendingSignal) -> str:
        pc = thread.state.pc
        text = f"guest {sig.name(pending.signo)} at pc={pc:#x}"
        if pending.signo in (sig.SIGSEGV, sig.SIGBUS):
            text += f" addr={pending.addr:#x}"
        return text

    def deliver_signals(self, thread: Thread) -> None:
        while self.host_signals and thread.tid == self.pid:
            signo = self.host_signals.pop(0)
            thread.signals.pending.append(sig.PendingSignal(signo, sig.SI_USER, pid=0))
        for pending in list(thread.signals.pending):
            if thread.signals.mask & sig.bit(pending.signo) and pending.signo not in (
                    sig.SIGKILL, sig.SIGSTOP):
                continue
            thread.signals.pending.remove(pending)
            action = self.sigactions[pending.signo]
            if action.handler == sig.SIG_IGN:
                continue
            if action.handler == sig.SIG_DFL:
                if sig.default_ignores(pending.signo) or sig.default_stops(pending.signo):
                    continue
                raise KilledBySignal(pending.signo, "")
            self.enter_handler(thread, pending, action)
            return  # one frame at a time; the rest after the handler runs a block

    def enter_handler(self, thread: Thread, pending: sig.PendingSignal,
                      action: sig.SigAction) -> None:
        state = thread.state
        ts = thread.signals
        sp = self.arch.get_sp(state)
        ss_sp, ss_flags, ss_size = ts.altstack
        on_alt = ss_flags != sig.SS_DISABLE and ss_sp < sp <= ss_sp + ss_size
        if action.flags & sig.SA_ONSTACK and ss_flags != sig.SS_DISABLE and not on_alt:
            sp = ss_sp + ss_size
        saved_altstack = (ss_sp, sig.SS_ONSTACK if on_alt else ss_flags, ss_size)
        restorer = action.restorer if action.flags & sig.SA_RESTORER else self.sigreturn_addr
        saved_mask = ts.mask if thread.saved_mask is None else thread.saved_mask
        thread.saved_mask = None
        self.arch.setup_frame(self.mem, state, pending.signo, pending.siginfo(), action.handler,
                              restorer, saved_mask, saved_altstack, sp)
        ts.mask |= action.mask
        if not action.flags & sig.SA_NODEFER:
            ts.mask |= sig.bit(pending.signo)
        ts.mask &= ~sig.UNBLOCKABLE
        if action.flags & sig.SA_RESETHAND:
            self.sigactions[pending.signo] = sig.SigAction()

    def die_by_signal(self, signo: int, message: str) -> None:
        """End the host process with ``signo`` (after ``message``), as the guest would die."""
        import signal as host

        if message:
            self.write_stderr(message + "\n")
        if self.options.stats:
            self.print_stats()
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        for step in (lambda: host.signal(signo, host.SIG_DFL),
                     lambda: host.pthread_sigmask(host.SIG_UNBLOCK, [signo]),
                     lambda: os.kill(os.getpid(), signo)):
            with contextlib.suppress(OSError, ValueError):  # SIGKILL/SIGSTOP refuse some steps
                step()
        os._exit(128 + signo)

    def exit_process(self, status: int) -> None:
        """exit_group from any thread: end the host process now."""
        if self.options.stats:
            self.print_stats()
        os._exit(status & 0xFF)

    def print_stats(self) -> None:
        s = self.engine.stats
        self.write_stderr(
            f"vm stats: {s.insns} guest instructions, {s.blocks_executed} blocks executed, "
            f"{s.blocks_translated} translated in {s.translate_seconds:.3f}s, "
            f"{s.invalidations} invalidated, exits {s.exits}\n")


def _state_class(frontend: Any) -> type:
    from vm_engine_jit import state_class

    return state_class(frontend.state_layout)


def _guest_memory_errors() -> tuple[type[BaseException], ...]:
    from vm_core import GuestMemoryError

    return (GuestMemoryError,)


__all__ = ["KilledBySignal", "Options", "Process", "ProcessExit", "Restart", "Thread",
           "ThreadExit", "sys"]
