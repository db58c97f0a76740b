"""The host signal that kicks a vCPU thread out of KVM_RUN.

`KvmVcpu.interrupt()` sets ``kvm_run.immediate_exit`` and sends `KICK_SIGNAL`
(SIGUSR1, as QEMU does) to the thread inside `run()`; KVM_RUN then returns
EINTR. A signal only interrupts a system call when a handler is installed
(the default action of SIGUSR1 ends the process, and an ignored signal is
dropped), and Python installs handlers only from the main thread: so the
handler, which does nothing, is installed when a `KvmHypervisor` or a vCPU is
created on the main thread. A handler the application installed itself is
kept, and works as well.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

KICK_SIGNAL: signal.Signals = getattr(signal, "SIGUSR1", signal.SIGINT)
"""SIGUSR1 (SIGINT only stands in on hosts without it, which have no KVM either)."""


def _ignore_kick(signum: int, frame: FrameType | None) -> None:
    """Does nothing: the signal exists only to make KVM_RUN return EINTR."""


def kick_handler_installed() -> bool:
    """Whether `KICK_SIGNAL` has a handler, so that it interrupts KVM_RUN."""
    current = signal.getsignal(KICK_SIGNAL)
    return current not in (signal.SIG_DFL, signal.SIG_IGN, None)


def install_kick_handler() -> bool:
    """Install the no-op handler of `KICK_SIGNAL` if there is none and this is the
    main thread; return whether a handler is in place afterwards."""
    if not hasattr(signal, "SIGUSR1"):  # not a POSIX host: nothing to kick with
        return False
    if not kick_handler_installed() and threading.current_thread() is threading.main_thread():
        signal.signal(KICK_SIGNAL, _ignore_kick)
    return kick_handler_installed()
