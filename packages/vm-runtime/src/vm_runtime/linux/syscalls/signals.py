"""Signal syscalls: rt_sigaction, rt_sigprocmask, rt_sigreturn, sigaltstack, rt_sigpending,
rt_sigsuspend, rt_sigtimedwait."""

from __future__ import annotations

import struct
import time

from .. import signals as sig
from ..process import Restart
from . import Errno, syscall

EINVAL, EFAULT, EINTR, EAGAIN, ENOMEM, EPERM = 22, 14, 4, 11, 12, 1
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
MINSIGSTKSZ = 2048


@syscall("rt_sigaction", "sig", "ptr", "ptr", "size")
def sys_rt_sigaction(p, t, signo: int, act: int, oldact: int, size: int) -> int:
    if not 1 <= signo <= sig.NSIG or size != 8:
        raise Errno(EINVAL)
    if act and signo in (sig.SIGKILL, sig.SIGSTOP):
        raise Errno(EINVAL)
    current = p.sigactions[signo]
    if oldact:
        p.mem.write(oldact, p.arch_sigaction_pack(current) if hasattr(p, "arch_sigaction_pack")
                    else _pack(current))
    if act:
        handler, flags, restorer, mask = _unpack(p.mem.read(act, 32))
        p.sigactions[signo] = sig.SigAction(handler, flags, restorer, mask & ~sig.UNBLOCKABLE)
    return 0


def _pack(a: sig.SigAction) -> bytes:
    # generic struct sigaction (riscv64, aarch64): handler, flags, [restorer,] mask
    return struct.pack("<QQQQ", a.handler, a.flags, a.restorer, a.mask)


def _unpack(data: bytes) -> tuple[int, int, int, int]:
    handler, flags, restorer, mask = struct.unpack("<QQQQ", data)
    return handler, flags, restorer, mask


@syscall("rt_sigprocmask", "int", "ptr", "ptr", "size")
def sys_rt_sigprocmask(p, t, how: int, new: int, old: int, size: int) -> int:
    if size != 8:
        raise Errno(EINVAL)
    ts = t.signals
    if old:
        p.mem.write(old, struct.pack("<Q", ts.mask))
    if new:
        value = struct.unpack("<Q", p.mem.read(new, 8))[0]
        if how == SIG_BLOCK:
            ts.mask |= value
        elif how == SIG_UNBLOCK:
            ts.mask &= ~value
        elif how == SIG_SETMASK:
            ts.mask = value
        else:
            raise Errno(EINVAL)
        ts.mask &= ~sig.UNBLOCKABLE
    return 0


@syscall("rt_sigreturn")
def sys_rt_sigreturn(p, t) -> int:
    mask, altstack = p.arch.restore_frame(p.mem, t.state)
    t.signals.mask = mask & ~sig.UNBLOCKABLE
    ss_sp, ss_flags, ss_size = altstack
    if t.signals.altstack[1] != sig.SS_DISABLE or ss_flags != sig.SS_DISABLE:
        t.signals.altstack = (ss_sp, ss_flags & ~sig.SS_ONSTACK if ss_flags != sig.SS_DISABLE
                              else ss_flags, ss_size)
    raise Restart


@syscall("sigaltstack", "ptr", "ptr")
def sys_sigaltstack(p, t, new: int, old: int) -> int:
    ts = t.signals
    ss_sp, ss_flags, ss_size = ts.altstack
    sp = p.arch.get_sp(t.state)
    on = ss_flags != sig.SS_DISABLE and ss_sp < sp <= ss_sp + ss_size
    if old:
        p.mem.write(old, struct.pack("<QiIQ", ss_sp, sig.SS_ONSTACK if on else ss_flags, 0,
                                     ss_size))
    if new:
        nsp, nflags, _pad, nsize = struct.unpack("<QiIQ", p.mem.read(new, 24))
        if on:
            raise Errno(EPERM)
        if nflags not in (0, sig.SS_DISABLE, sig.SS_ONSTACK) and nflags & ~(1 << 31) not in (
                0, sig.SS_DISABLE):
            raise Errno(EINVAL)
        if nflags == sig.SS_DISABLE:
            ts.altstack = (0, sig.SS_DISABLE, 0)
        else:
            if nsize < MINSIGSTKSZ:
                raise Errno(ENOMEM)
            ts.altstack = (nsp, 0, nsize)
    return 0


@syscall("rt_sigpending", "ptr", "size")
def sys_rt_sigpending(p, t, addr: int, size: int) -> int:
    bits = 0
    for pending in t.signals.pending:
        bits |= sig.bit(pending.signo)
    p.mem.write(addr, struct.pack("<Q", bits & t.signals.mask))
    return 0


@syscall("rt_sigsuspend", "ptr", "size")
def sys_rt_sigsuspend(p, t, mask_addr: int, size: int) -> int:
    new = struct.unpack("<Q", p.mem.read(mask_addr, 8))[0]
    t.saved_mask = t.signals.mask  # the handler's frame restores this mask, as the kernel does
    t.signals.mask = new & ~sig.UNBLOCKABLE
    while not _deliverable(p, t):
        time.sleep(0.005)
    raise Errno(EINTR)  # the run loop delivers the signal after writing this result


def _deliverable(p, t) -> bool:
    if p.host_signals:
        return True
    return any(not t.signals.mask & sig.bit(s.signo) for s in t.signals.pending)


@syscall("rt_sigtimedwait", "ptr", "ptr", "ptr", "size")
def sys_rt_sigtimedwait(p, t, set_addr: int, info: int, timeout: int, size: int) -> int:
    wanted = struct.unpack("<Q", p.mem.read(set_addr, 8))[0]
    deadline = None
    if timeout:
        sec, nsec = struct.unpack("<qq", p.mem.read(timeout, 16))
        deadline = time.monotonic() + sec + nsec / 1e9
    while True:
        while p.host_signals:
            p.send_signal(t, sig.PendingSignal(p.host_signals.pop(0)))
        for pending in list(t.signals.pending):
            if wanted & sig.bit(pending.signo):
                t.signals.pending.remove(pending)
                if info:
                    p.mem.write(info, pending.siginfo())
                return pending.signo
        if deadline is not None and time.monotonic() >= deadline:
            raise Errno(EAGAIN)
        time.sleep(0.002)
