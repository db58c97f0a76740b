"""Linux signal state of a process: actions, per-thread masks and pending signals.

Numbers are the generic ones (riscv64, aarch64 and x86_64 agree on 1..31 and the realtime
range). Delivery itself is in ``process``: it builds the architecture's frame.
"""

from __future__ import annotations

import signal as _host
import struct
from dataclasses import dataclass, field

NSIG = 64
SIG_DFL, SIG_IGN = 0, 1

SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = 1, 2, 3, 4, 5, 6, 7, 8
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM = 9, 10, 11, 12, 13, 14, 15
SIGSTKFLT, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU = 16, 17, 18, 19, 20, 21, 22
SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS = (
    23, 24, 25, 26, 27, 28, 29, 30, 31)

SA_SIGINFO = 0x4
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000
SA_RESTORER = 0x04000000

SS_ONSTACK, SS_DISABLE = 1, 2

# si_code values
SI_USER, SI_TKILL, SI_KERNEL = 0, -6, 0x80
SEGV_MAPERR, SEGV_ACCERR = 1, 2
BUS_ADRALN = 1
ILL_ILLOPC = 1
TRAP_BRKPT = 1
FPE_INTDIV = 1

_IGNORED_BY_DEFAULT = {SIGCHLD, SIGCONT, SIGURG, SIGWINCH}
_STOP = {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU}

NAMES = {getattr(_host, n).value: n for n in dir(_host)
         if n.startswith("SIG") and not n.startswith("SIG_") and n not in ("SIGRTMIN", "SIGRTMAX")
         and isinstance(getattr(_host, n), _host.Signals)}


def name(signo: int) -> str:
    return NAMES.get(signo, f"SIG{signo}" if signo < 32 else f"SIGRT{signo - 32}")


def bit(signo: int) -> int:
    return 1 << (signo - 1)


UNBLOCKABLE = bit(SIGKILL) | bit(SIGSTOP)


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


@dataclass
class PendingSignal:
    signo: int
    code: int = SI_USER
    addr: int = 0
    pid: int = 0
    uid: int = 0
    status: int = 0

    def siginfo(self) -> bytes:
        """The generic 128-byte siginfo_t."""
        head = struct.pack("<iii", self.signo, 0, self.code) + b"\0" * 4
        if self.signo in (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP) and self.code > 0:
            body = struct.pack("<Q", self.addr)
        elif self.signo == SIGCHLD:
            body = struct.pack("<iii", self.pid, self.uid, self.status)
        else:
            body = struct.pack("<ii", self.pid, self.uid)
        return (head + body).ljust(128, b"\0")


@dataclass
class ThreadSignals:
    mask: int = 0
    pending: list[PendingSignal] = field(default_factory=list)
    altstack: tuple[int, int, int] = (0, SS_DISABLE, 0)  # ss_sp, ss_flags, ss_size
