"""Signal syscalls: rt_sigaction, rt_sigprocmask, rt_sigreturn, sigaltstack, rt_sigpending,
rt_sigsuspend, rt_sigtimedwait, rt_sigqueueinfo, rt_tgsigqueueinfo, restart_syscall, and the
interval timers (setitimer, getitimer, alarm), whose expiry is the host's SIGALRM.

Each follows kernel/signal.c (and kernel/time/itimer.c): the order of its checks, which
errors it gives, and what it writes when it fails.
"""

from __future__ import annotations

import contextlib
import signal as _hostsignal
import struct
import time

from .. import hostsig
from .. import signals as sig
from ..process import Interrupted, Restart
from . import Errno, syscall
from .util import s32 as _s32

EPERM, ESRCH, EINTR, EAGAIN, ENOMEM, EFAULT, EINVAL = 1, 3, 4, 11, 12, 14, 22
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
SIGSET_SIZE = 8


# -- actions and masks ---------------------------------------------------------------------------
def _sigaction_layout(p) -> struct.Struct:
    # struct sigaction of the kernel: handler, flags, [restorer,] mask
    return _WITH_RESTORER if p.arch.has_sa_restorer else _WITHOUT_RESTORER


_WITH_RESTORER = struct.Struct("<QQQQ")
_WITHOUT_RESTORER = struct.Struct("<QQQ")


def pack_sigaction(p, a: sig.SigAction) -> bytes:
    flags = a.flags & _uapi_flags(p)
    if p.arch.has_sa_restorer:
        return _WITH_RESTORER.pack(a.handler, flags, a.restorer, a.mask)
    return _WITHOUT_RESTORER.pack(a.handler, flags, a.mask)


def unpack_sigaction(p, data: bytes) -> sig.SigAction:
    if p.arch.has_sa_restorer:
        handler, flags, restorer, mask = _WITH_RESTORER.unpack(data)
    else:
        handler, flags, mask = _WITHOUT_RESTORER.unpack(data)
        restorer = 0
    return sig.SigAction(handler, flags & _uapi_flags(p), restorer, mask & ~sig.UNBLOCKABLE)


def _uapi_flags(p) -> int:
    return sig.UAPI_SA_FLAGS | (sig.SA_RESTORER if p.arch.has_sa_restorer else 0)


@syscall("rt_sigaction", "sig", "ptr", "ptr", "size")
def sys_rt_sigaction(p, t, signo: int, act: int, oldact: int, size: int) -> int:
    if size != SIGSET_SIZE:
        raise Errno(EINVAL)
    layout = _sigaction_layout(p)
    new = unpack_sigaction(p, p.mem.read(act, layout.size)) if act else None
    signo = _s32(signo)
    if not sig.valid(signo) or (new is not None and signo in (sig.SIGKILL, sig.SIGSTOP)):
        raise Errno(EINVAL)
    with p.siglock:
        old = p.sigactions[signo]
        if new is not None:
            p.sigactions[signo] = new
            if sig.handler_ignores(new, signo):  # pending instances go away (do_sigaction)
                bit = sig.bit(signo)
                p.shared_pending.flush(bit)
                for thread in list(p.threads.values()):
                    thread.signals.private.flush(bit)
    if new is not None and signo == sig.SIGCHLD:
        from ..hostsig import set_disposition

        # SIG_IGN for SIGCHLD means the kernel reaps children: let the host's do it
        set_disposition(sig.SIGCHLD, new.handler == sig.SIG_IGN)
    if oldact:
        p.mem.write(oldact, pack_sigaction(p, old))
    return 0


@syscall("rt_sigprocmask", "int", "ptr", "ptr", "size")
def sys_rt_sigprocmask(p, t, how: int, new: int, old: int, size: int) -> int:
    if size != SIGSET_SIZE:
        raise Errno(EINVAL)
    ts = t.signals
    previous = ts.mask
    if new:
        value = struct.unpack("<Q", p.mem.read(new, 8))[0] & ~sig.UNBLOCKABLE
        how = _s32(how)
        with p.siglock:
            if how == SIG_BLOCK:
                mask = ts.mask | value
            elif how == SIG_UNBLOCK:
                mask = ts.mask & ~value
            elif how == SIG_SETMASK:
                mask = value
            else:
                raise Errno(EINVAL)
            set_blocked(p, t, mask)
    if old:
        p.mem.write(old, struct.pack("<Q", previous))
    return 0


def set_blocked(p, t, mask: int) -> None:
    """The kernel's __set_current_blocked: newly blocked process-wide signals go to another
    thread that can take them (retarget_shared_pending)."""
    ts = t.signals
    newly = mask & ~ts.mask
    ts.mask = mask & ~sig.UNBLOCKABLE
    t.check_signals = True
    if newly & p.shared_pending.bits:
        p.wake_all()


@syscall("rt_sigreturn")
def sys_rt_sigreturn(p, t) -> int:
    from ..process import _guest_memory_errors

    state = t.state
    t.restart_fn = None  # a restarted call now answers EINTR (do_no_restart_syscall)
    try:
        mask, uc_stack = p.arch.restore_frame(p.mem, state)
    except (ValueError, *_guest_memory_errors()):
        p.force_signal(t, sig.PendingSignal(sig.SIGSEGV, sig.SI_KERNEL, p.arch.get_sp(state)))
        return 0
    with p.siglock:
        set_blocked(p, t, mask)
    # restore_altstack: with the restored stack pointer, errors ignored
    with contextlib.suppress(Errno):
        _do_sigaltstack(p, t, uc_stack, p.arch.get_sp(state))
    raise Restart


# -- the alternate stack -----------------------------------------------------------------------------
_STACK_T = struct.Struct("<QiIQ")  # ss_sp, ss_flags, (pad), ss_size


@syscall("sigaltstack", "ptr", "ptr")
def sys_sigaltstack(p, t, new: int, old: int) -> int:
    ts = t.signals
    sp = p.arch.get_sp(t.state)
    request = None
    if new:
        nsp, nflags, _pad, nsize = _STACK_T.unpack(p.mem.read(new, _STACK_T.size))
        request = (nsp, nflags & 0xFFFFFFFF, nsize)
    report = _STACK_T.pack(ts.ss_sp, ts.altstack_flags(sp) | (ts.ss_flags & sig.SS_AUTODISARM),
                           0, ts.ss_size)
    if request is not None:
        _do_sigaltstack(p, t, request, sp)
    if old:
        p.mem.write(old, report)
    return 0


def _do_sigaltstack(p, t, request: tuple[int, int, int], sp: int) -> None:
    ts = t.signals
    ss_sp, ss_flags, ss_size = request
    if ts.on_altstack(sp):
        raise Errno(EPERM)
    mode = ss_flags & ~sig.SS_AUTODISARM
    if mode not in (sig.SS_DISABLE, sig.SS_ONSTACK, 0):
        raise Errno(EINVAL)
    if mode == sig.SS_DISABLE:
        ss_sp = ss_size = 0
    elif ss_size < sig.MINSIGSTKSZ:
        raise Errno(ENOMEM)
    ts.ss_sp, ts.ss_size, ts.ss_flags = ss_sp, ss_size, ss_flags


# -- pending signals and waiting for them ---------------------------------------------------------------
@syscall("rt_sigpending", "ptr", "size")
def sys_rt_sigpending(p, t, addr: int, size: int) -> int:
    if size > SIGSET_SIZE:
        raise Errno(EINVAL)
    bits = t.signals.pending_bits() & t.signals.mask
    p.mem.write(addr, struct.pack("<Q", bits)[:size])
    return 0


@syscall("rt_sigsuspend", "ptr", "size")
def sys_rt_sigsuspend(p, t, mask_addr: int, size: int) -> int:
    if size != SIGSET_SIZE:
        raise Errno(EINVAL)
    new = struct.unpack("<Q", p.mem.read(mask_addr, 8))[0]
    _suspend(p, t, new)


def _suspend(p, t, new_mask: int) -> None:
    with p.siglock:
        t.saved_mask = t.signals.mask  # the handler's frame saves it, as the kernel's does
        set_blocked(p, t, new_mask)
    with contextlib.suppress(Interrupted):
        p.wait(t, lambda: None)
    raise Errno(sig.ERESTARTNOHAND)


@syscall("pause")
def sys_pause(p, t) -> int:
    with contextlib.suppress(Interrupted):
        p.wait(t, lambda: None)
    raise Errno(sig.ERESTARTNOHAND)


def read_timespec(p, addr: int) -> float:
    sec, nsec = struct.unpack("<qq", p.mem.read(addr, 16))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise Errno(EINVAL)
    return sec + nsec / 1e9


@syscall("rt_sigtimedwait", "ptr", "ptr", "ptr", "size")
def sys_rt_sigtimedwait(p, t, set_addr: int, info: int, timeout: int, size: int) -> int:
    if size != SIGSET_SIZE:
        raise Errno(EINVAL)
    wanted = struct.unpack("<Q", p.mem.read(set_addr, 8))[0] & ~sig.UNBLOCKABLE
    deadline = None
    if timeout:
        deadline = time.monotonic() + read_timespec(p, timeout)
    ts = t.signals
    blocked = ~wanted & sig.ALL

    def take() -> sig.PendingSignal | None:
        with p.siglock:
            for queue in (ts.private, ts.shared):
                signo = queue.next(blocked)
                if signo:
                    return queue.take(signo)
        return None

    try:
        got = p.wait(t, take, deadline, ignore=wanted)
    except Interrupted:
        raise Errno(EINTR) from None  # another signal's handler runs now
    if got is None:
        raise Errno(EAGAIN)
    if info:
        p.mem.write(info, got.siginfo())
    return got.signo


@syscall("restart_syscall")
def sys_restart_syscall(p, t) -> int:
    fn, t.restart_fn = t.restart_fn, None
    if fn is None:
        raise Errno(EINTR)
    return fn()


# -- sigqueue -------------------------------------------------------------------------------------
def _guest_siginfo(p, signo: int, addr: int) -> sig.PendingSignal:
    raw = p.mem.read(addr, 128)
    return sig.PendingSignal.from_siginfo(signo, raw)


@syscall("rt_sigqueueinfo", "int", "sig", "ptr")
def sys_rt_sigqueueinfo(p, t, pid: int, signo: int, uinfo: int) -> int:
    pid = _s32(pid)
    signo = _s32(signo)
    pending = _guest_siginfo(p, signo, uinfo)
    # not even root may pretend to be the kernel, or kill()/tgkill(), which add the source
    if (pending.code >= 0 or pending.code == sig.SI_TKILL) and pid != p.pid:
        raise Errno(EPERM)
    if not 0 <= signo <= sig.NSIG:
        raise Errno(EINVAL)
    if pid == p.pid:
        if signo:
            p.send_process_signal(pending)
        return 0
    if pid <= 0:
        raise Errno(ESRCH)
    _host_sigqueue(pid, signo, pending)
    return 0


@syscall("rt_tgsigqueueinfo", "int", "int", "sig", "ptr")
def sys_rt_tgsigqueueinfo(p, t, tgid: int, tid: int, signo: int, uinfo: int) -> int:
    tgid, tid, signo = _s32(tgid), _s32(tid), _s32(signo)
    if tgid <= 0 or tid <= 0:
        raise Errno(EINVAL)
    pending = _guest_siginfo(p, signo, uinfo)
    if (pending.code >= 0 or pending.code == sig.SI_TKILL) and tgid != p.pid:
        raise Errno(EPERM)
    if not 0 <= signo <= sig.NSIG:
        raise Errno(EINVAL)
    target = p.threads.get(tid)
    if tgid != p.pid or target is None:
        raise Errno(ESRCH)
    if signo:
        p.send_signal(target, pending)
    return 0


def _host_sigqueue(pid: int, signo: int, pending: sig.PendingSignal) -> None:
    """sigqueue to another process: the host kernel carries the siginfo."""
    from . import host

    buf = host.buffer(128, pending.siginfo())
    host.syscall("rt_sigqueueinfo", pid, signo, buf)


# -- interval timers (kernel/time/itimer.c); the host's timers raise the host's SIGALRM,
# SIGVTALRM and SIGPROF, which reach the guest like any host signal ---------------------------------
_TIMERS = {0: _hostsignal.ITIMER_REAL, 1: _hostsignal.ITIMER_VIRTUAL, 2: _hostsignal.ITIMER_PROF}
_ITIMERVAL = struct.Struct("<qqqq")  # it_interval (sec, usec), it_value (sec, usec)


def _timeval(seconds: float) -> tuple[int, int]:
    usec = round(seconds * 1_000_000)
    return usec // 1_000_000, usec % 1_000_000


def _pack_itimer(value: float, interval: float) -> bytes:
    return _ITIMERVAL.pack(*_timeval(interval), *_timeval(value))


@syscall("getitimer", "int", "ptr")
def sys_getitimer(p, t, which: int, addr: int) -> int:
    timer = _TIMERS.get(_s32(which))
    if timer is None:
        raise Errno(EINVAL)
    value, interval = _hostsignal.getitimer(timer)
    p.mem.write(addr, _pack_itimer(value, interval))
    return 0


@syscall("setitimer", "int", "ptr", "ptr")
def sys_setitimer(p, t, which: int, new: int, old: int) -> int:
    timer = _TIMERS.get(_s32(which))
    if new:
        isec, iusec, vsec, vusec = _ITIMERVAL.unpack(p.mem.read(new, _ITIMERVAL.size))
    else:  # a NULL new value disarms the timer
        isec = iusec = vsec = vusec = 0
    if timer is None:
        raise Errno(EINVAL)
    if not (0 <= iusec < 1_000_000 and 0 <= vusec < 1_000_000 and isec >= 0 and vsec >= 0):
        raise Errno(EINVAL)
    value, interval = _hostsignal.setitimer(timer, vsec + vusec / 1e6, isec + iusec / 1e6)
    # a signal of the timer it replaced is the guest's before this returns
    p.host.drain(hostsig.TIMER_SIGNALS)
    if old:
        p.mem.write(old, _pack_itimer(value, interval))
    return 0


@syscall("alarm", "int")
def sys_alarm(p, t, seconds: int) -> int:
    seconds &= 0xFFFFFFFF
    old, _ = _hostsignal.setitimer(_hostsignal.ITIMER_REAL, float(seconds))
    p.host.drain(hostsig.TIMER_SIGNALS)
    sec, usec = _timeval(old)
    # a remaining fraction counts as a second (alarm_setitimer)
    if (not sec and usec) or usec >= 500_000:
        sec += 1
    return sec


__all__ = ["pack_sigaction", "set_blocked", "unpack_sigaction"]
