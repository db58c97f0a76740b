"""Waiting on descriptors: ppoll, pselect6 (and x86_64's poll and select), epoll, and the
descriptors made to be waited on (timerfd, inotify).

The host kernel does the waiting, in slices of at most ``POLL_SLICE_MS``, and between slices
a guest signal ends the wait with EINTR (these calls are never restarted after a handler, as
on Linux). A signal mask argument (ppoll, pselect6, epoll_pwait) replaces the thread's mask
for the wait; when a signal interrupts it, the handler runs under that mask and its frame
saves the old one (as rt_sigsuspend does), otherwise the old mask is back on return.
"""

from __future__ import annotations

import ctypes
import struct
import time

from .. import signals as sig
from . import Errno, syscall
from . import host as _host
from .util import (
    EFAULT,
    EINVAL,
    POLL_SLICE_MS,
    PROT_WRITE,
    flags_to_host,
    guest_path,
    interrupt,
    pending_signal,
    read_timespec,
    s32,
    u32,
    write_timespec,
)

POLLFD_SIZE = 8  # struct pollfd: int fd; short events, revents (every architecture)
EP_MAX_EVENTS = 0x7FFFFFFF // 16


def _set_mask(p, t, addr: int, size: int) -> int | None:
    """Install the wait's signal mask; give the mask to restore (None: no change)."""
    if not addr:
        return None
    if size != 8:
        raise Errno(EINVAL)
    new = struct.unpack("<Q", p.mem.read(addr, 8))[0]
    old = t.signals.mask
    t.signals.mask = new & ~sig.UNBLOCKABLE
    return old


def _restore_mask(t, old: int | None, interrupted: bool) -> None:
    if old is None:
        return
    if interrupted:
        t.saved_mask = old  # the handler's frame saves it; the run loop restores it otherwise
    else:
        t.signals.mask = old


def _wait(p, t, timeout: float | None, attempt, old_mask: int | None):
    """Call ``attempt(ms)`` (one host wait of up to ms milliseconds; None when nothing was
    ready) until it gives a result, the timeout passes (then ``attempt(0)``'s empty answer
    stands) or a guest signal interrupts; restores the signal mask on the way out."""
    interrupted = False
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is None:
                ms = POLL_SLICE_MS
            else:
                left = deadline - time.monotonic()
                ms = max(0, min(POLL_SLICE_MS, int(left * 1000 + 0.999)))
            try:
                result = attempt(ms)
            except InterruptedError:
                result = None
            if result is not None:
                return result
            if pending_signal(p, t):
                interrupted = True
                interrupt(p, t, restart=False)
            if deadline is not None and time.monotonic() >= deadline:
                return None
    finally:
        _restore_mask(t, old_mask, interrupted)


def _remaining(deadline: float | None) -> float:
    return 0.0 if deadline is None else max(0.0, deadline - time.monotonic())


# -- poll -------------------------------------------------------------------------------------------
def _poll(p, t, fds: int, nfds: int, timeout: float | None, old_mask: int | None) -> int:
    nfds = u32(nfds)
    if nfds > 1 << 20:
        _restore_mask(t, old_mask, False)
        raise Errno(EINVAL)
    try:
        raw = p.mem.read(fds, nfds * POLLFD_SIZE)
        if not p.mem.check(fds, nfds * POLLFD_SIZE, PROT_WRITE):
            raise Errno(EFAULT)
    except Exception:
        _restore_mask(t, old_mask, False)
        raise
    buf = _host.buffer(nfds * POLLFD_SIZE, raw)
    def attempt(ms: int) -> int | None:
        ts = _host.buffer(16, struct.pack("<qq", ms // 1000, (ms % 1000) * 1_000_000))
        n = _host.syscall("ppoll", buf, nfds, ts, None, 8)
        return n if n > 0 else None

    n = _wait(p, t, timeout, attempt, old_mask)
    p.mem.write(fds, _host.raw(buf, nfds * POLLFD_SIZE))
    return n or 0


@syscall("ppoll", "ptr", "int", "ptr", "ptr", "size")
def sys_ppoll(p, t, fds: int, nfds: int, tsp: int, sigmask: int, size: int) -> int:
    timeout = read_timespec(p, tsp)
    deadline = None if timeout is None else time.monotonic() + timeout
    old = _set_mask(p, t, sigmask, size)
    try:
        return _poll(p, t, fds, nfds, timeout, old)
    finally:
        if tsp:
            write_timespec(p, tsp, _remaining(deadline))


@syscall("poll", "ptr", "int", "int")
def sys_poll(p, t, fds: int, nfds: int, timeout_ms: int) -> int:
    ms = s32(timeout_ms)
    return _poll(p, t, fds, nfds, None if ms < 0 else ms / 1000, None)


# -- select ---------------------------------------------------------------------------------------------
def _select(p, t, nfds: int, sets: tuple[int, int, int], timeout: float | None,
            old_mask: int | None) -> int:
    nfds = s32(nfds)
    try:
        if nfds < 0:
            raise Errno(EINVAL)
        nbytes = (nfds + 63) // 64 * 8
        originals = [p.mem.read(a, nbytes) if a else None for a in sets]
        for a in sets:
            if a and not p.mem.check(a, nbytes, PROT_WRITE):
                raise Errno(EFAULT)
    except Exception:
        _restore_mask(t, old_mask, False)
        raise
    bufs = [None if o is None else _host.buffer(nbytes, o) for o in originals]
    def attempt(ms: int) -> int | None:
        for b, o in zip(bufs, originals, strict=True):
            if b is not None:
                _refill(b, o)
        ts = _host.buffer(16, struct.pack("<qq", ms // 1000, (ms % 1000) * 1_000_000))
        n = _host.syscall("pselect6", nfds, bufs[0], bufs[1], bufs[2], ts, None)
        return n if n > 0 else None

    n = _wait(p, t, timeout, attempt, old_mask)
    for a, b in zip(sets, bufs, strict=True):
        if a and b is not None:
            p.mem.write(a, _host.raw(b, nbytes) if n else bytes(nbytes))
    return n or 0


def _refill(buf, data: bytes) -> None:
    ctypes.memmove(buf, data, len(data))


@syscall("pselect6", "int", "ptr", "ptr", "ptr", "ptr", "ptr")
def sys_pselect6(p, t, nfds: int, r: int, w: int, e: int, tsp: int, sig6: int) -> int:
    timeout = read_timespec(p, tsp)
    deadline = None if timeout is None else time.monotonic() + timeout
    old = None
    if sig6:
        mask_addr, size = struct.unpack("<QQ", p.mem.read(sig6, 16))
        old = _set_mask(p, t, mask_addr, size)
    try:
        return _select(p, t, nfds, (r, w, e), timeout, old)
    finally:
        if tsp:
            write_timespec(p, tsp, _remaining(deadline))


@syscall("select", "int", "ptr", "ptr", "ptr", "ptr")
def sys_select(p, t, nfds: int, r: int, w: int, e: int, tvp: int) -> int:
    timeout = None
    if tvp:
        sec, usec = struct.unpack("<qq", p.mem.read(tvp, 16))
        if sec < 0 or usec < 0:
            raise Errno(EINVAL)
        timeout = sec + usec / 1e6
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        return _select(p, t, nfds, (r, w, e), timeout, None)
    finally:
        if tvp:
            left = _remaining(deadline)
            p.mem.write(tvp, struct.pack("<qq", int(left), int(left % 1 * 1e6)))


# -- epoll ----------------------------------------------------------------------------------------------
# struct epoll_event is packed on x86_64 (12 bytes) and naturally aligned elsewhere (16).
_EVENT_LAYOUTS = {"x86_64": struct.Struct("<IQ")}
_GENERIC_EVENT = struct.Struct("<I4xQ")


def _event_layout(arch: str) -> struct.Struct:
    return _EVENT_LAYOUTS.get(arch, _GENERIC_EVENT)


@syscall("epoll_create1", "oflags")
def sys_epoll_create1(p, t, flags: int) -> int:
    return _host.syscall("epoll_create1", flags_to_host(p, flags))


@syscall("epoll_create", "int")
def sys_epoll_create(p, t, size: int) -> int:
    if s32(size) <= 0:
        raise Errno(EINVAL)
    return _host.syscall("epoll_create1", 0)


@syscall("epoll_ctl", "fd", "int", "fd", "ptr")
def sys_epoll_ctl(p, t, epfd: int, op: int, fd: int, event: int) -> int:
    guest, host = _event_layout(p.arch.name), _event_layout(_host.HOST_ARCH)
    buf = None
    if u32(op) != 2:  # EPOLL_CTL_DEL ignores the event
        events, data = guest.unpack(p.mem.read(event, guest.size))
        buf = _host.buffer(host.size, host.pack(events, data))
    return _host.syscall("epoll_ctl", s32(epfd), u32(op), s32(fd), buf)


def _epoll_wait(p, t, epfd: int, events: int, maxevents: int, timeout: float | None,
                old_mask: int | None) -> int:
    guest, host = _event_layout(p.arch.name), _event_layout(_host.HOST_ARCH)
    maxevents = s32(maxevents)
    try:
        if maxevents <= 0 or maxevents > EP_MAX_EVENTS:
            raise Errno(EINVAL)
        if not p.mem.check(events, maxevents * guest.size, PROT_WRITE):
            raise Errno(EFAULT)
    except Exception:
        _restore_mask(t, old_mask, False)
        raise
    count = min(maxevents, 1024)
    buf = _host.buffer(count * host.size)

    def attempt(ms: int) -> int | None:
        n = _host.syscall("epoll_pwait", s32(epfd), buf, count, ms, None, 8)
        return n if n > 0 else None

    n = _wait(p, t, timeout, attempt, old_mask) or 0
    raw = _host.raw(buf, n * host.size)
    out = b"".join(guest.pack(*host.unpack_from(raw, i * host.size)) for i in range(n))
    p.mem.write(events, out)
    return n


def _ms(timeout_ms: int) -> float | None:
    ms = s32(timeout_ms)
    return None if ms < 0 else ms / 1000


@syscall("epoll_wait", "fd", "ptr", "int", "int")
def sys_epoll_wait(p, t, epfd: int, events: int, maxevents: int, timeout_ms: int) -> int:
    return _epoll_wait(p, t, epfd, events, maxevents, _ms(timeout_ms), None)


@syscall("epoll_pwait", "fd", "ptr", "int", "int", "ptr", "size")
def sys_epoll_pwait(p, t, epfd: int, events: int, maxevents: int, timeout_ms: int,
                    sigmask: int, size: int) -> int:
    old = _set_mask(p, t, sigmask, size)
    return _epoll_wait(p, t, epfd, events, maxevents, _ms(timeout_ms), old)


@syscall("epoll_pwait2", "fd", "ptr", "int", "ptr", "ptr", "size")
def sys_epoll_pwait2(p, t, epfd: int, events: int, maxevents: int, tsp: int, sigmask: int,
                     size: int) -> int:
    timeout = read_timespec(p, tsp)
    old = _set_mask(p, t, sigmask, size)
    return _epoll_wait(p, t, epfd, events, maxevents, timeout, old)


# -- timerfd and inotify -------------------------------------------------------------------------------
ITIMERSPEC_SIZE = 32


@syscall("timerfd_create", "int", "oflags")
def sys_timerfd_create(p, t, clock: int, flags: int) -> int:
    return _host.syscall("timerfd_create", u32(clock), flags_to_host(p, flags))


@syscall("timerfd_settime", "fd", "hex", "ptr", "ptr")
def sys_timerfd_settime(p, t, fd: int, flags: int, new: int, old: int) -> int:
    new_buf = _host.buffer(ITIMERSPEC_SIZE, p.mem.read(new, ITIMERSPEC_SIZE))
    old_buf = _host.buffer(ITIMERSPEC_SIZE) if old else None
    result = _host.syscall("timerfd_settime", s32(fd), u32(flags), new_buf, old_buf)
    if old:
        p.mem.write(old, _host.raw(old_buf, ITIMERSPEC_SIZE))
    return result


@syscall("timerfd_gettime", "fd", "ptr")
def sys_timerfd_gettime(p, t, fd: int, cur: int) -> int:
    buf = _host.buffer(ITIMERSPEC_SIZE)
    result = _host.syscall("timerfd_gettime", s32(fd), buf)
    p.mem.write(cur, _host.raw(buf, ITIMERSPEC_SIZE))
    return result


@syscall("inotify_init1", "oflags")
def sys_inotify_init1(p, t, flags: int) -> int:
    return _host.syscall("inotify_init1", flags_to_host(p, flags))


@syscall("inotify_init")
def sys_inotify_init(p, t) -> int:
    return _host.syscall("inotify_init1", 0)


@syscall("inotify_add_watch", "fd", "str", "hex")
def sys_inotify_add_watch(p, t, fd: int, path: int, mask: int) -> int:
    return _host.syscall("inotify_add_watch", s32(fd), guest_path(p, path), u32(mask))


@syscall("inotify_rm_watch", "fd", "int")
def sys_inotify_rm_watch(p, t, fd: int, wd: int) -> int:
    return _host.syscall("inotify_rm_watch", s32(fd), s32(wd))


__all__ = ["EP_MAX_EVENTS"]
