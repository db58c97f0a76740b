"""The host side of guest signals (Linux hosts).

Every signal a guest can receive from outside (Ctrl-C, kill from a shell, SIGCHLD of a child,
SIGALRM of an interval timer) arrives at the emulator, a host process. The emulator blocks
them all in every thread and one daemon thread waits until one is pending (a signalfd, which
only says so) and then takes them with ``sigtimedwait``, which gives the complete host
``siginfo_t`` (sender pid and uid, si_code, a sigqueue value, a child's status). The 64-bit
Linux ``siginfo_t`` layout is the same on every architecture, so the bytes are handed to the
guest as they are. Taking and handing over happen under one lock (``drain``), which a guest
thread also takes when it must see what is pending now: after it disarmed a timer, a signal
of that timer that came before is the guest's before the syscall returns, as under Linux.

Ending the emulator "by a signal" (a guest's default action) and stopping it (SIGTSTP) use
the real host signal with its default action, so the parent of ``vm`` (a shell, a guest
parent emulator) sees exactly what the kernel reports for a native program.

SIGPIPE stays ignored on the host (a write to a broken pipe answers EPIPE, and the syscall
layer raises the guest's SIGPIPE itself), and so does SIGXFSZ; SIGKILL and SIGSTOP cannot be
caught; 32 and 33 belong to the host's C library.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import select
import signal
import struct
import threading
from collections.abc import Callable

SIGKILL, SIGPIPE, SIGALRM, SIGCHLD, SIGSTOP, SIGXFSZ = 9, 13, 14, 17, 19, 25
SIGVTALRM, SIGPROF = 26, 27
#: the signals of the interval timers (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF)
TIMER_SIGNALS = (SIGALRM, SIGVTALRM, SIGPROF)
_NOT_FORWARDED = {SIGKILL, SIGSTOP, SIGPIPE, SIGXFSZ, 32, 33}
#: the host signals that become guest signals
FORWARDED: tuple[int, ...] = tuple(s for s in range(1, 65) if s not in _NOT_FORWARDED)
#: signals whose host disposition Python itself changed at start-up (to SIG_IGN)
_PYTHON_IGNORES = {SIGPIPE, SIGXFSZ}
_WAIT_SLICE_NS = 250_000_000
#: the emulator's own descriptors are numbered from here, out of the guest's way
FD_FLOOR = 512
_SFD_NONBLOCK, _SFD_CLOEXEC = 0o4000, 0o2000000

try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
    _libc.sigtimedwait.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    _libc.sigtimedwait.restype = ctypes.c_int
    _libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
    _libc.signal.restype = ctypes.c_void_p
    _libc.signalfd.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    _libc.signalfd.restype = ctypes.c_int
except (OSError, AttributeError):  # not a glibc-like host: Python's own calls only
    _libc = None


def _host_sigset(signals: tuple[int, ...]) -> ctypes.Array:
    buf = ctypes.create_string_buffer(128)
    assert _libc is not None
    _libc.sigemptyset(buf)
    for s in signals:
        _libc.sigaddset(buf, s)
    return buf


def set_disposition(signo: int, ignore: bool | int) -> int:
    """SIG_IGN (True) or SIG_DFL (False), or a previous answer of this function, for a host
    signal, from any thread (Python's own ``signal.signal`` works only in the main thread).
    Gives the disposition it replaced."""
    new = int(ignore)
    if _libc is not None:
        return _libc.signal(signo, new) or 0
    with contextlib.suppress(ValueError, OSError):  # pragma: no cover - non-glibc hosts
        signal.signal(signo, signal.Handlers(new) if new in (0, 1) else signal.SIG_DFL)
    return 0


def mask_bits(signals: set[signal.Signals] | set[int]) -> int:
    bits = 0
    for s in signals:
        if 1 <= int(s) <= 64:
            bits |= 1 << (int(s) - 1)
    return bits


def bits_to_signals(bits: int) -> list[int]:
    return [s for s in range(1, 65) if bits >> (s - 1) & 1 and s not in (32, 33)]


class HostSignals:
    """Receives host signals for a process and hands each one's raw siginfo to ``deliver``."""

    def __init__(self, deliver: Callable[[bytes], None],
                 report: Callable[[str], None] | None = None) -> None:
        self.deliver = deliver
        self.report = report or (lambda text: None)
        self.stopping = False
        self.thread: threading.Thread | None = None
        self.saved_mask: set[int] | None = None
        #: readable while a forwarded signal is pending (never read: ``drain`` takes them)
        self.fd: int | None = None
        self.lock = threading.Lock()

    def start(self) -> tuple[int, int]:
        """Block the forwarded signals in this thread (and so in every thread it starts) and
        start receiving. Gives the host's signal mask and ignored signals as they were, which
        a program started from a shell inherits (bit ``s - 1`` for signal ``s``)."""
        ignored = 0
        for s in FORWARDED:
            with contextlib.suppress(ValueError, OSError):
                if signal.getsignal(s) == signal.SIG_IGN:
                    ignored |= 1 << (s - 1)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        self.saved_mask = {int(s) for s in old}
        if _libc is not None:
            self._wanted = _host_sigset(FORWARDED)
            fd = _libc.signalfd(-1, self._wanted, _SFD_NONBLOCK | _SFD_CLOEXEC)
            if fd >= 0:
                self.fd = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, FD_FLOOR)
                os.close(fd)
        self._spawn()
        return mask_bits(self.saved_mask), ignored

    def _spawn(self) -> None:
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="vm-host-signals", daemon=True)
        self.thread.start()

    def after_fork(self) -> None:
        """In a forked child: the receiving thread did not survive the fork; start another
        (the signalfd now tells of the child's own signals)."""
        self.lock = threading.Lock()
        if self.thread is not None:
            self._spawn()

    def stop(self) -> None:
        """Stop receiving and give this thread its mask back (a run that returns normally)."""
        # the receiving thread sees ``stopping`` when its wait slice ends and delivers nothing
        # more; not waiting for that saves up to a slice at every exit
        self.stopping = True
        self.thread = None
        if self.fd is not None:  # the receiving thread's poll then ends at once
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        if self.saved_mask is not None:
            with contextlib.suppress(ValueError, OSError):
                signal.pthread_sigmask(signal.SIG_SETMASK, self.saved_mask)
            self.saved_mask = None

    def _loop(self) -> None:
        fd = self.fd
        if _libc is None or fd is None:  # pragma: no cover - non-glibc hosts
            self._loop_python()
            return
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not self.stopping:
            try:
                ready = poller.poll(_WAIT_SLICE_NS // 1_000_000)
            except OSError:  # the descriptor went with stop()
                return
            if ready and not self.stopping:
                if any(ev & (select.POLLNVAL | select.POLLERR) for _, ev in ready):
                    return
                self.drain()

    def drain(self, signals: tuple[int, ...] | None = None) -> None:
        """Take every forwarded signal pending now (or only ``signals``) and hand each to
        ``deliver``, under the lock that a signal taken is handed over within: once this
        returns, what was pending when it was called is the guest's. From a guest thread,
        name the signals: ``sigtimedwait`` also takes those sent to the calling thread, and
        the KVM engine kicks a thread out of guest code with one (``KICK_SIGNAL``)."""
        if _libc is None or self.fd is None:
            return
        wanted = self._wanted if signals is None else _host_sigset(signals)
        info = ctypes.create_string_buffer(128)
        now = (ctypes.c_long * 2)(0, 0)
        with self.lock:
            while not self.stopping:
                signo = _libc.sigtimedwait(wanted, info, now)
                if signo <= 0:
                    return
                try:
                    self.deliver(info.raw[:128])
                except Exception as exc:  # a bug of ours: say so, keep receiving
                    self.report(f"vm: internal error delivering host signal {signo}: {exc!r}\n")

    def _loop_python(self) -> None:  # pragma: no cover - non-glibc hosts
        while not self.stopping:
            got = signal.sigtimedwait(FORWARDED, _WAIT_SLICE_NS / 1e9)
            if got is None or self.stopping:
                continue
            raw = struct.pack("<iii4xiIi", got.si_signo, got.si_errno, got.si_code, got.si_pid,
                              got.si_uid, got.si_status).ljust(128, b"\0")
            self.deliver(raw)


def die(signo: int) -> None:
    """End this process by ``signo``'s default action (as the kernel does for a guest that
    did not catch it); never returns. Works from any thread."""
    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # as qemu-user: no host core file
    if signo != SIGKILL and signo != SIGSTOP:
        set_disposition(signo, False)
    with contextlib.suppress(OSError, ValueError):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signo])
    with contextlib.suppress(OSError, ValueError):
        signal.pthread_kill(threading.get_ident(), signo)
    with contextlib.suppress(OSError, ValueError):
        os.kill(os.getpid(), signo)
    os._exit(128 + signo)


def stop(signo: int) -> None:
    """Stop this process with the stop signal ``signo`` (as its default action would), and
    return once it is continued."""
    if signo == SIGSTOP:
        os.kill(os.getpid(), SIGSTOP)
        return
    set_disposition(signo, False)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signo])
        signal.pthread_kill(threading.get_ident(), signo)
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, [signo])


def prepare_native_exec(mask: int, ignored: int) -> Callable[[], None]:
    """Make this thread's host signal state what a native program exec'd by the guest must
    inherit (the guest's mask, its ignored signals, default actions otherwise); give the
    function that undoes it if the exec fails."""
    old_mask = signal.pthread_sigmask(signal.SIG_SETMASK, bits_to_signals(mask))
    changed = []
    for s in (*FORWARDED, *_PYTHON_IGNORES):
        changed.append((s, set_disposition(s, bool(ignored >> (s - 1) & 1))))

    def undo() -> None:
        for s, previous in changed:
            set_disposition(s, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    return undo


__all__ = ["FORWARDED", "HostSignals", "die", "prepare_native_exec", "set_disposition", "stop"]
