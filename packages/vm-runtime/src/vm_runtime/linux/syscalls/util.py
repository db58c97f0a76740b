"""What the file, descriptor, poll and socket syscalls share: argument conversions, guest
paths, open-flag translation between architectures, guest buffers, and blocking calls that
a guest signal interrupts.

Blocking calls: a call that may wait (a read from an empty pipe, accept, ppoll, flock) first
asks the host whether the descriptor is ready, and otherwise waits in short slices, looking
for a guest signal between them. A signal that has a handler makes the call fail with EINTR,
or, when the handler has SA_RESTART and the call is one the kernel restarts, rewinds the guest
pc to the syscall instruction so that the call runs again after the handler returns (the
kernel's -ERESTARTSYS).
"""

from __future__ import annotations

import errno as _errno
import os
import select
import struct
from typing import NoReturn

from .. import signals as sig
from . import Errno
from . import host as _host

M64 = (1 << 64) - 1
AT_FDCWD = -100
EFAULT, EINVAL, EINTR, EBADF = _errno.EFAULT, _errno.EINVAL, _errno.EINTR, _errno.EBADF
POLL_SLICE_MS = 50
IOV_MAX = 1024
PATH_MAX = 4096
PROT_READ, PROT_WRITE = 1, 2


def s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def s64(v: int) -> int:
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def u32(v: int) -> int:
    return v & 0xFFFFFFFF


# -- paths --------------------------------------------------------------------------------------
def guest_path(p, addr: int) -> bytes:
    """A path argument: EFAULT for a bad pointer, ENAMETOOLONG past PATH_MAX, and
    /proc/self/exe naming the guest program instead of the emulator."""
    try:
        path = p.mem.read_cstring(addr, PATH_MAX)
    except ValueError:
        raise Errno(_errno.ENAMETOOLONG) from None
    return proc_self(p, path)


def proc_self(p, path: bytes) -> bytes:
    if path in (b"/proc/self/exe", b"/proc/thread-self/exe", f"/proc/{p.pid}/exe".encode()):
        return os.fsencode(p.exe)
    return path


def dirfd(fd: int) -> int | None:
    """A dirfd argument for os functions: None for AT_FDCWD."""
    fd = s32(fd)
    return None if fd == AT_FDCWD else fd


# -- open flags -----------------------------------------------------------------------------------
# Four O_ flags differ between arm64 and the generic/x86_64 values (arch/arm64/include/uapi/asm/
# fcntl.h against include/uapi/asm-generic/fcntl.h); every other flag is the same everywhere.
_GENERIC_O = {"O_DIRECT": 0o40000, "O_LARGEFILE": 0o100000, "O_DIRECTORY": 0o200000,
              "O_NOFOLLOW": 0o400000}
_ARM64_O = {"O_DIRECTORY": 0o40000, "O_NOFOLLOW": 0o100000, "O_DIRECT": 0o200000,
            "O_LARGEFILE": 0o400000}
_O_TABLES = {"aarch64": _ARM64_O}
O_NONBLOCK, O_CLOEXEC, O_ACCMODE, O_APPEND = 0o4000, 0o2000000, 3, 0o2000


def o_table(arch_name: str) -> dict[str, int]:
    return _O_TABLES.get(arch_name, _GENERIC_O)


def _translate(flags: int, src: dict[str, int], dst: dict[str, int]) -> int:
    if src is dst:
        return flags
    out = flags
    for bit in src.values():
        out &= ~bit
    for name, bit in src.items():
        if flags & bit:
            out |= dst[name]
    return out


def flags_to_host(p, flags: int) -> int:
    """Guest open flags (open, fcntl F_SETFL, pipe2 ...) as the host kernel's."""
    return _translate(flags & 0xFFFFFFFF, o_table(p.arch.name), o_table(_host.HOST_ARCH))


def flags_from_host(p, flags: int) -> int:
    return _translate(flags & 0xFFFFFFFF, o_table(_host.HOST_ARCH), o_table(p.arch.name))


def guest_o(p, name: str) -> int:
    """The guest's value of an O_ flag that differs between architectures."""
    return o_table(p.arch.name)[name]


# -- guest buffers ----------------------------------------------------------------------------------
def accessible(p, addr: int, length: int, need: int) -> int:
    """How many bytes from ``addr`` (at most ``length``) the guest may access with ``need``
    (PROT_READ or PROT_WRITE): the kernel copies up to the first bad page."""
    mem = p.mem
    if length <= 0 or addr < 0 or addr >= mem.size:
        return 0
    end = min(addr + length, mem.size)
    if mem.check(addr, end - addr, need):
        return end - addr
    page = addr >> 12
    perms = mem.perms
    while perms[page] & need:
        page += 1
    return max(0, (page << 12) - addr)


def iovecs(p, iov: int, count: int) -> list[tuple[int, int]]:
    """struct iovec[count] (the same on every 64-bit architecture)."""
    count = s32(count)
    if count < 0 or count > IOV_MAX:
        raise Errno(EINVAL)
    raw = p.mem.read(iov, 16 * count)
    out = [struct.unpack_from("<QQ", raw, 16 * i) for i in range(count)]
    total = 0
    for _, length in out:
        if length >> 63:
            raise Errno(EINVAL)
        total += length
    if total > 0x7FFFFFFFFFFFFFFF:
        raise Errno(EINVAL)
    return out


def read_timespec(p, addr: int) -> float | None:
    """A struct timespec as seconds; None for NULL; EINVAL for a bad one."""
    if not addr:
        return None
    sec, nsec = struct.unpack("<qq", p.mem.read(addr, 16))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise Errno(EINVAL)
    return sec + nsec / 1e9


def write_timespec(p, addr: int, seconds: float) -> None:
    seconds = max(seconds, 0.0)
    sec = int(seconds)
    p.mem.write(addr, struct.pack("<qq", sec, min(int((seconds - sec) * 1e9), 999_999_999)))


# -- blocking calls and guest signals ----------------------------------------------------------------
def pending_signal(p, t) -> int:
    """Nonzero when a signal would interrupt a blocking call of thread ``t`` now."""
    deliverable = getattr(t.signals, "deliverable", None)
    if deliverable is not None:
        return deliverable()
    if p.host_signals and t.tid == p.pid:
        return p.host_signals[0]
    mask = t.signals.mask
    for pending in t.signals.pending:
        signo = pending.signo
        if mask & sig.bit(signo) and signo not in (sig.SIGKILL, sig.SIGSTOP):
            continue
        action = p.sigactions[signo]
        if action.handler == sig.SIG_IGN:
            continue
        if action.handler == sig.SIG_DFL and (sig.default_ignores(signo)
                                              or sig.default_stops(signo)):
            continue
        return signo
    return 0


def interrupt(p, t, restart: bool) -> NoReturn:
    """Leave a blocking call because a signal is pending. ``restart``: the kernel would run
    the call again after an SA_RESTART handler (-ERESTARTSYS: read, write, accept, flock);
    otherwise (-ERESTARTNOHAND: poll, select, epoll_wait) a handler makes it fail with EINTR.
    Where the run loop settles restarts itself (signals.RESTART_CODES), the code is returned
    for it to do so; otherwise EINTR, or the pc rewound to the syscall for SA_RESTART."""
    if hasattr(sig, "RESTART_CODES"):
        raise Errno(sig.ERESTARTSYS if restart else sig.ERESTARTNOHAND)
    from ..process import Restart

    signo = pending_signal(p, t)
    action = p.sigactions[signo]
    if restart and action.flags & sig.SA_RESTART and action.handler not in (sig.SIG_DFL,
                                                                            sig.SIG_IGN):
        t.state.pc = (t.state.pc - p.arch.syscall_insn_size) & M64
        raise Restart
    raise Errno(EINTR)


def check_signals(p, t, restart: bool = True) -> None:
    if pending_signal(p, t):
        interrupt(p, t, restart)


def is_nonblocking(fd: int) -> bool:
    try:
        return bool(_host.syscall("fcntl", fd, 3) & O_NONBLOCK)  # F_GETFL
    except OSError:
        return True  # a bad descriptor: let the call itself fail


def wait_fd(p, t, fd: int, events: int, restart: bool = True) -> None:
    """Return once ``fd`` is ready for ``events`` (select.POLLIN / POLLOUT), or at once if it
    is non-blocking or bad (the call then answers EAGAIN or EBADF itself); a guest signal
    interrupts the wait."""
    if fd < 0:
        return
    poller = select.poll()
    poller.register(fd, events)
    if poller.poll(0) or is_nonblocking(fd):
        return
    while True:
        check_signals(p, t, restart)
        if poller.poll(POLL_SLICE_MS):
            return


__all__ = ["AT_FDCWD", "accessible", "check_signals", "dirfd", "flags_from_host",
           "flags_to_host", "guest_path", "interrupt", "iovecs", "pending_signal", "s32", "s64",
           "wait_fd"]
