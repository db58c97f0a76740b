"""Linux signal state of a process: actions, per-thread masks, pending sets and siginfo.

Numbers are the generic ones (riscv64, aarch64 and x86_64 agree on 1..31 and the realtime
range 32..64). The rules follow kernel/signal.c:

- a pending set (``SigQueue``, the kernel's ``struct sigpending``) is a bit mask plus the
  queued siginfos; a standard signal already pending in a set is not queued again
  (``legacy_queue``), a real-time one queues every instance in order;
- each thread has its own set (thread-directed: tgkill, faults, SIGPIPE) and the process has
  one shared set (process-directed: kill, sigqueue, host signals); a thread takes from its own
  set first, and from a set the lowest-numbered unblocked signal, except that synchronous
  signals (SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGSYS) go first (``next_signal``);
- siginfo is the generic 128-byte ``siginfo_t`` of 64-bit Linux, laid out by si_code as the
  kernel's ``siginfo_layout`` does.

Delivery itself is in ``process``: it builds the architecture's frame.
"""

from __future__ import annotations

import signal as _host
import struct
from dataclasses import dataclass, field

NSIG = 64
SIGRTMIN = 32  # the kernel's; glibc keeps 32 and 33 for itself
SIG_DFL, SIG_IGN = 0, 1

SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = 1, 2, 3, 4, 5, 6, 7, 8
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM = 9, 10, 11, 12, 13, 14, 15
SIGSTKFLT, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU = 16, 17, 18, 19, 20, 21, 22
SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS = (
    23, 24, 25, 26, 27, 28, 29, 30, 31)

SA_NOCLDSTOP = 0x1
SA_NOCLDWAIT = 0x2
SA_SIGINFO = 0x4
SA_EXPOSE_TAGBITS = 0x800
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000
#: the flags rt_sigaction keeps (UAPI_SA_FLAGS; SA_RESTORER only where the ABI has it)
UAPI_SA_FLAGS = (SA_NOCLDSTOP | SA_NOCLDWAIT | SA_SIGINFO | SA_ONSTACK | SA_RESTART
                 | SA_NODEFER | SA_RESETHAND | SA_EXPOSE_TAGBITS)

SS_ONSTACK, SS_DISABLE = 1, 2
SS_AUTODISARM = 1 << 31
MINSIGSTKSZ = 2048

# si_code values (include/uapi/asm-generic/siginfo.h)
SI_USER, SI_KERNEL = 0, 0x80
SI_QUEUE, SI_TIMER, SI_MESGQ, SI_ASYNCIO, SI_SIGIO, SI_TKILL = -1, -2, -3, -4, -5, -6
ILL_ILLOPC, ILL_ILLOPN = 1, 2
FPE_INTDIV = 1
SEGV_MAPERR, SEGV_ACCERR = 1, 2
BUS_ADRALN = 1
TRAP_BRKPT = 1
CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED, CLD_STOPPED, CLD_CONTINUED = 1, 2, 3, 4, 5, 6

# Internal errno values a syscall returns to ask for a restart (include/linux/errno.h).
# They never reach the guest: delivery turns them into EINTR or a restarted call.
ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK = 512, 513, 514, 516
RESTART_CODES = frozenset((ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK))

_IGNORED_BY_DEFAULT = frozenset((SIGCHLD, SIGCONT, SIGURG, SIGWINCH))
_STOP = frozenset((SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU))
_CORE = frozenset((SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGSEGV, SIGBUS, SIGSYS, SIGXCPU,
                   SIGXFSZ))
_FAULT_SIGNALS = frozenset((SIGILL, SIGFPE, SIGSEGV, SIGBUS, SIGTRAP))
#: dequeued before any other signal (kernel/signal.c SYNCHRONOUS_MASK)
SYNCHRONOUS_MASK = sum(1 << (s - 1) for s in (SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGSYS))

NAMES = {getattr(_host, n).value: n for n in dir(_host)
         if n.startswith("SIG") and not n.startswith("SIG_") and n not in ("SIGRTMIN", "SIGRTMAX")
         and isinstance(getattr(_host, n), _host.Signals)}


def name(signo: int) -> str:
    return NAMES.get(signo, f"SIG{signo}" if signo < SIGRTMIN else f"SIGRT{signo - SIGRTMIN}")


def bit(signo: int) -> int:
    return 1 << (signo - 1)


UNBLOCKABLE = bit(SIGKILL) | bit(SIGSTOP)
ALL = (1 << NSIG) - 1


def valid(signo: int) -> bool:
    return 1 <= signo <= NSIG


@dataclass
class SigAction:
    handler: int = SIG_DFL
    flags: int = 0
    restorer: int = 0
    mask: int = 0


def default_ignores(signo: int) -> bool:
    return signo in _IGNORED_BY_DEFAULT


def default_stops(signo: int) -> bool:
    return signo in _STOP


def default_dumps_core(signo: int) -> bool:
    return signo in _CORE


def handler_ignores(action: SigAction, signo: int) -> bool:
    """The kernel's sig_handler_ignored: SIG_IGN, or SIG_DFL for a signal ignored by default."""
    return action.handler == SIG_IGN or (action.handler == SIG_DFL and default_ignores(signo))


def is_fatal(action: SigAction, signo: int) -> bool:
    """The kernel's sig_fatal: the default action ends the process."""
    return signo == SIGKILL or (action.handler == SIG_DFL and signo not in _IGNORED_BY_DEFAULT
                                and signo not in _STOP)


_HEAD = struct.Struct("<iii4x")


@dataclass(eq=False)
class PendingSignal:
    """One queued signal and its siginfo. ``raw``, when given, is a complete siginfo (from
    rt_sigqueueinfo or the host kernel) used as it is, with si_signo forced."""

    signo: int
    code: int = SI_USER
    addr: int = 0
    pid: int = 0
    uid: int = 0
    status: int = 0
    value: int = 0
    errno: int = 0
    raw: bytes | None = None
    #: a synchronous fault of the receiving thread (its death prints where it happened)
    fault: bool = False

    def siginfo(self) -> bytes:
        """The generic 128-byte siginfo_t."""
        if self.raw is not None:
            return (struct.pack("<i", self.signo) + self.raw[4:128]).ljust(128, b"\0")
        head = _HEAD.pack(self.signo, self.errno, self.code)
        layout = siginfo_layout(self.signo, self.code)
        if layout == "fault":
            body = struct.pack("<Q", self.addr & (1 << 64) - 1)
        elif layout == "chld":
            body = struct.pack("<iIi4xqq", self.pid, self.uid, self.status, 0, 0)
        elif layout in ("rt", "timer"):
            body = struct.pack("<iIQ", self.pid, self.uid, self.value & (1 << 64) - 1)
        elif layout == "poll":
            body = struct.pack("<qi", self.addr, self.status)
        else:
            body = struct.pack("<iI", self.pid, self.uid)
        return (head + body).ljust(128, b"\0")

    @classmethod
    def from_siginfo(cls, signo: int, raw: bytes) -> PendingSignal:
        """A signal carrying the siginfo ``raw`` (a guest's or the host kernel's)."""
        _signo, errno, code = _HEAD.unpack_from(raw)
        pid, uid = struct.unpack_from("<iI", raw, 16)
        return cls(signo, code, pid=pid, uid=uid, errno=errno, raw=bytes(raw[:128]))


def siginfo_layout(signo: int, code: int) -> str:
    """Which union member of siginfo_t a (signal, si_code) pair uses."""
    if SI_USER < code < SI_KERNEL:
        if signo in _FAULT_SIGNALS:
            return "fault"
        if signo == SIGCHLD:
            return "chld"
        if signo == SIGSYS:
            return "sys"
        return "poll" if signo == SIGIO else "kill"
    if code == SI_TIMER:
        return "timer"
    if code == SI_SIGIO:
        return "poll"
    if code < 0:
        return "rt"
    return "kill"


class SigQueue:
    """A pending set: the kernel's ``struct sigpending`` (a mask and the queued siginfos)."""

    __slots__ = ("bits", "items")

    def __init__(self) -> None:
        self.bits = 0
        self.items: list[PendingSignal] = []

    def add(self, pending: PendingSignal) -> bool:
        """Queue ``pending``; False when a standard signal was already pending (coalesced)."""
        b = bit(pending.signo)
        if pending.signo < SIGRTMIN and self.bits & b:
            return False
        self.items.append(pending)
        self.bits |= b
        return True

    def next(self, blocked: int) -> int:
        """The signal to take next outside ``blocked`` (0: none)."""
        x = self.bits & ~blocked
        if not x:
            return 0
        if x & SYNCHRONOUS_MASK:
            x &= SYNCHRONOUS_MASK
        return (x & -x).bit_length()

    def take(self, signo: int) -> PendingSignal:
        """Remove the first queued instance of ``signo`` (the kernel's collect_signal)."""
        found = None
        more = False
        for i, item in enumerate(self.items):
            if item.signo == signo:
                found = self.items.pop(i)
                more = any(s.signo == signo for s in self.items[i:])
                break
        if not more:
            self.bits &= ~bit(signo)
        return found if found is not None else PendingSignal(signo, SI_USER)

    def flush(self, mask: int) -> None:
        """Forget every pending signal in ``mask``."""
        if self.bits & mask:
            self.items = [s for s in self.items if not bit(s.signo) & mask]
            self.bits &= ~mask

    def clear(self) -> None:
        self.bits = 0
        self.items = []

    def __iter__(self):
        return iter(list(self.items))

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class ThreadSignals:
    """A thread's signal state: its mask, its own pending set, the process's shared pending
    set, and its alternate stack (``sas_ss_sp``, ``sas_ss_size``, ``sas_ss_flags``)."""

    mask: int = 0
    private: SigQueue = field(default_factory=SigQueue)
    shared: SigQueue = field(default_factory=SigQueue)
    ss_sp: int = 0
    ss_size: int = 0
    ss_flags: int = 0

    @property
    def pending(self) -> list[PendingSignal]:
        """Every signal pending for this thread: its own, then the process's."""
        return self.private.items + self.shared.items

    def pending_bits(self) -> int:
        return self.private.bits | self.shared.bits

    def deliverable(self) -> int:
        """Pending signals this thread does not block (a bit mask)."""
        return (self.private.bits | self.shared.bits) & ~self.mask

    # -- the alternate stack (kernel's on_sig_stack / sas_ss_flags) ----------------------------------
    @property
    def altstack(self) -> tuple[int, int, int]:
        """(ss_sp, ss_flags, ss_size) as sigaltstack reports it outside any handler."""
        flags = SS_DISABLE if not self.ss_size else 0
        return (self.ss_sp, flags | (self.ss_flags & SS_AUTODISARM), self.ss_size)

    def on_altstack(self, sp: int) -> bool:
        if self.ss_flags & SS_AUTODISARM:
            return False
        return self.ss_sp < sp <= self.ss_sp + self.ss_size

    def altstack_flags(self, sp: int) -> int:
        if not self.ss_size:
            return SS_DISABLE
        return SS_ONSTACK if self.on_altstack(sp) else 0

    def reset_altstack(self) -> None:
        self.ss_sp = self.ss_size = self.ss_flags = 0


def sigset_to_list(bits: int) -> list[int]:
    return [s for s in range(1, NSIG + 1) if bits & bit(s)]
