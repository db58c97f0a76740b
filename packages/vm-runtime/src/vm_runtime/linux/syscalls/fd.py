"""File descriptors: read and write (plain, vectored, positioned), lseek, close, dup,
pipes, fcntl, ioctl, flock, sendfile and friends, eventfd, memfd.

Guest descriptors are host descriptors (as in qemu-user), so pipes, dup2, fork and exec need
no translation. New descriptors come from the host kernel as the guest asked for them (no
O_CLOEXEC added, unlike Python's ``os`` functions). A read or write that would block waits
in slices so that a guest signal interrupts it (``util.wait_fd``).
"""

from __future__ import annotations

import errno as _errno
import os
import select

from .. import signals as sig
from . import Errno, syscall
from . import host as _host
from .util import (
    PROT_READ,
    PROT_WRITE,
    accessible,
    check_signals,
    flags_from_host,
    flags_to_host,
    iovecs,
    s32,
    s64,
    u32,
    wait_fd,
)

EBADF, EFAULT, EINVAL, ENOTTY, EPIPE, EAGAIN = 9, 14, 22, 25, 32, 11
MAX_RW_COUNT = 0x7FFFF000
POLLIN, POLLOUT = select.POLLIN, select.POLLOUT


def _sigpipe(p, t) -> None:
    p.send_signal(t, sig.PendingSignal(sig.SIGPIPE, sig.SI_USER, pid=p.pid, uid=os.getuid()))


def _check_fd(fd: int, write: bool) -> None:
    """EBADF when ``fd`` is closed or not open for reading (writing): the kernel's answer
    before it looks at the buffer."""
    flags = _host.syscall("fcntl", fd, 3)  # F_GETFL
    if flags & 3 == (0 if write else 1) or flags & 0o10000000:  # wrong mode or O_PATH
        raise Errno(EBADF)


def _room(p, fd: int, buf: int, count: int) -> int:
    """Bytes a read may put at ``buf``: the writable prefix of count."""
    n = accessible(p, buf, min(count, MAX_RW_COUNT), PROT_WRITE)
    if n == 0 and count:
        _check_fd(fd, write=False)
        raise Errno(EFAULT)
    return n


def _payload(p, fd: int, buf: int, count: int) -> bytes:
    """The bytes a write sends: the readable prefix of count."""
    n = accessible(p, buf, min(count, MAX_RW_COUNT), PROT_READ)
    if n == 0 and count:
        _check_fd(fd, write=True)
        raise Errno(EFAULT)
    return p.mem.read(buf, n)


def do_write(p, t, fd: int, write) -> int:
    """Run a write-like host call; EPIPE also raises SIGPIPE, as the kernel does."""
    try:
        return write()
    except BrokenPipeError:
        _sigpipe(p, t)
        raise Errno(EPIPE) from None


# -- read and write ---------------------------------------------------------------------------------
@syscall("read", "fd", "obuf", "size")
def sys_read(p, t, fd: int, buf: int, count: int) -> int:
    fd = s32(fd)
    n = _room(p, fd, buf, count)
    if n:
        wait_fd(p, t, fd, POLLIN)
    data = os.read(fd, n)
    p.mem.write(buf, data)
    return len(data)


@syscall("write", "fd", "buf", "size")
def sys_write(p, t, fd: int, buf: int, count: int) -> int:
    fd = s32(fd)
    data = _payload(p, fd, buf, count)
    if data:
        wait_fd(p, t, fd, POLLOUT)
    return do_write(p, t, fd, lambda: os.write(fd, data))


@syscall("pread64", "fd", "obuf", "size", "int")
def sys_pread64(p, t, fd: int, buf: int, count: int, offset: int) -> int:
    fd = s32(fd)
    n = _room(p, fd, buf, count)
    data = os.pread(fd, n, s64(offset))
    p.mem.write(buf, data)
    return len(data)


@syscall("pwrite64", "fd", "buf", "size", "int")
def sys_pwrite64(p, t, fd: int, buf: int, count: int, offset: int) -> int:
    fd = s32(fd)
    data = _payload(p, fd, buf, count)
    return do_write(p, t, fd, lambda: os.pwrite(fd, data, s64(offset)))


def _in_buffers(p, fd: int, iov: int, count: int) -> tuple[list[tuple[int, int]], list[bytearray]]:
    """Host buffers for a vectored read: each iovec's writable prefix, up to the first
    one that is cut short."""
    vecs = []
    total = 0
    for base, length in iovecs(p, iov, count):
        length = min(length, MAX_RW_COUNT - total)
        n = accessible(p, base, length, PROT_WRITE)
        if n:
            vecs.append((base, n))
            total += n
        if n < length:
            if total == 0:
                _check_fd(fd, write=False)
                raise Errno(EFAULT)
            break
    return vecs, [bytearray(n) for _, n in vecs]


def _scatter(p, vecs: list[tuple[int, int]], bufs: list[bytearray], got: int) -> int:
    left = got
    for (base, _), data in zip(vecs, bufs, strict=True):
        if left <= 0:
            break
        p.mem.write(base, memoryview(data)[:left])
        left -= len(data)
    return got


def _gather(p, fd: int, iov: int, count: int) -> bytes:
    parts = []
    total = 0
    for base, length in iovecs(p, iov, count):
        length = min(length, MAX_RW_COUNT - total)
        n = accessible(p, base, length, PROT_READ)
        if n:
            parts.append(p.mem.read(base, n))
            total += n
        if n < length:
            if total == 0:
                _check_fd(fd, write=True)
                raise Errno(EFAULT)
            break
    return b"".join(parts)


@syscall("readv", "fd", "ptr", "int")
def sys_readv(p, t, fd: int, iov: int, count: int) -> int:
    fd = s32(fd)
    vecs, bufs = _in_buffers(p, fd, iov, count)
    if not bufs:
        return _zero_read(fd)
    wait_fd(p, t, fd, POLLIN)
    return _scatter(p, vecs, bufs, os.readv(fd, bufs))


def _zero_read(fd: int) -> int:
    _check_fd(fd, write=False)
    return 0


@syscall("writev", "fd", "ptr", "int")
def sys_writev(p, t, fd: int, iov: int, count: int) -> int:
    fd = s32(fd)
    data = _gather(p, fd, iov, count)
    if not data:
        _check_fd(fd, write=True)
        return 0
    wait_fd(p, t, fd, POLLOUT)
    return do_write(p, t, fd, lambda: os.write(fd, data))


def _pos(lo: int, hi: int) -> int:
    return s64(lo)  # 64-bit: the whole offset is in the low word


@syscall("preadv", "fd", "ptr", "int", "int", "int")
def sys_preadv(p, t, fd: int, iov: int, count: int, lo: int, hi: int) -> int:
    return sys_preadv2(p, t, fd, iov, count, lo, hi, 0)


@syscall("pwritev", "fd", "ptr", "int", "int", "int")
def sys_pwritev(p, t, fd: int, iov: int, count: int, lo: int, hi: int) -> int:
    return sys_pwritev2(p, t, fd, iov, count, lo, hi, 0)


@syscall("preadv2", "fd", "ptr", "int", "int", "int", "hex")
def sys_preadv2(p, t, fd: int, iov: int, count: int, lo: int, hi: int, flags: int) -> int:
    fd = s32(fd)
    vecs, bufs = _in_buffers(p, fd, iov, count)
    if not bufs:
        return _zero_read(fd)
    pos = _pos(lo, hi)
    if pos == -1:
        if flags:
            raise Errno(_errno.EOPNOTSUPP)
        wait_fd(p, t, fd, POLLIN)
        return _scatter(p, vecs, bufs, os.readv(fd, bufs))
    return _scatter(p, vecs, bufs, os.preadv(fd, bufs, pos, u32(flags)))


@syscall("pwritev2", "fd", "ptr", "int", "int", "int", "hex")
def sys_pwritev2(p, t, fd: int, iov: int, count: int, lo: int, hi: int, flags: int) -> int:
    fd = s32(fd)
    data = _gather(p, fd, iov, count)
    pos = _pos(lo, hi)
    if pos == -1:
        return do_write(p, t, fd, lambda: os.write(fd, data))
    return do_write(p, t, fd, lambda: os.pwritev(fd, [data], pos, u32(flags)))


@syscall("lseek", "fd", "int", "whence")
def sys_lseek(p, t, fd: int, offset: int, whence: int) -> int:
    return os.lseek(s32(fd), s64(offset), u32(whence))


# -- opening, closing, duplicating ----------------------------------------------------------------
@syscall("close", "fd")
def sys_close(p, t, fd: int) -> int:
    fd = s32(fd)
    if fd in p.own_fds():
        raise Errno(EBADF)
    os.close(fd)
    return 0


@syscall("close_range", "fd", "fd", "hex")
def sys_close_range(p, t, first: int, last: int, flags: int) -> int:
    """The host's close_range over [first, last] less the emulator's own descriptors (a
    child about to exec closes everything above stderr so)."""
    first, last, flags = u32(first), u32(last), u32(flags)
    if first > last:
        raise Errno(EINVAL)
    for fd in sorted(fd for fd in p.own_fds() if first <= fd <= last):
        if fd > first:
            _host.syscall("close_range", first, fd - 1, flags)
        first = fd + 1
    if first <= last and first <= 0xFFFFFFFF:
        return _host.syscall("close_range", first, last, flags)
    return 0


@syscall("dup", "fd")
def sys_dup(p, t, fd: int) -> int:
    return _host.syscall("dup", s32(fd))


@syscall("dup2", "fd", "fd")
def sys_dup2(p, t, old: int, new: int) -> int:
    old, new = s32(old), s32(new)
    if old == new:
        _host.syscall("fcntl", old, 1)  # EBADF for a bad descriptor
        return new
    return sys_dup3(p, t, old, new, 0)


@syscall("dup3", "fd", "fd", "oflags")
def sys_dup3(p, t, old: int, new: int, flags: int) -> int:
    if s32(new) in p.own_fds():  # not over the emulator's own (as if beyond the limit)
        raise Errno(EBADF)
    return _host.syscall("dup3", s32(old), s32(new), flags_to_host(p, flags))


def _pipe(p, fds: int, flags: int) -> int:
    if not p.mem.check(fds, 8, PROT_WRITE):
        raise Errno(EFAULT)
    out = _host.buffer(8)
    _host.syscall("pipe2", out, flags_to_host(p, flags))
    p.mem.write(fds, _host.raw(out, 8))
    return 0


@syscall("pipe2", "ptr", "oflags")
def sys_pipe2(p, t, fds: int, flags: int) -> int:
    return _pipe(p, fds, flags)


@syscall("pipe", "ptr")
def sys_pipe(p, t, fds: int) -> int:
    return _pipe(p, fds, 0)


# -- fcntl ------------------------------------------------------------------------------------------
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_GETLK, F_SETLK, F_SETLKW = range(8)
F_SETOWN, F_GETOWN, F_SETSIG, F_GETSIG = 8, 9, 10, 11
F_SETOWN_EX, F_GETOWN_EX, F_GETOWNER_UIDS = 15, 16, 17
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
F_SETLEASE, F_GETLEASE, F_NOTIFY, F_DUPFD_CLOEXEC = 1024, 1025, 1026, 1030
F_SETPIPE_SZ, F_GETPIPE_SZ, F_ADD_SEALS, F_GET_SEALS = 1031, 1032, 1033, 1034
F_GET_RW_HINT, F_SET_RW_HINT, F_GET_FILE_RW_HINT, F_SET_FILE_RW_HINT = 1035, 1036, 1037, 1038
FLOCK_SIZE = 32  # struct flock on 64-bit Linux: short, short, off_t, off_t, pid_t (+ padding)

#: commands whose argument is a plain integer, passed as they are
_FCNTL_INT = {F_DUPFD, F_GETFD, F_SETFD, F_SETOWN, F_GETOWN, F_SETSIG, F_GETSIG, F_SETLEASE,
              F_GETLEASE, F_NOTIFY, F_DUPFD_CLOEXEC, F_SETPIPE_SZ, F_GETPIPE_SZ, F_ADD_SEALS,
              F_GET_SEALS}


@syscall("fcntl", "fd", "fcntl_cmd", "hex")
def sys_fcntl(p, t, fd: int, cmd: int, arg: int) -> int:
    fd = s32(fd)
    cmd = u32(cmd)
    if cmd == F_GETFL:
        return flags_from_host(p, _host.syscall("fcntl", fd, F_GETFL))
    if cmd == F_SETFL:
        return _host.syscall("fcntl", fd, F_SETFL, flags_to_host(p, arg))
    if cmd in _FCNTL_INT:
        return _host.syscall("fcntl", fd, cmd, u32(arg) if cmd != F_SETOWN else s32(arg))
    if cmd in (F_GETLK, F_SETLK, F_OFD_GETLK, F_OFD_SETLK):
        return _flock_struct(p, fd, cmd, arg)
    if cmd in (F_SETLKW, F_OFD_SETLKW):
        nowait = F_SETLK if cmd == F_SETLKW else F_OFD_SETLK
        while True:
            try:
                return _flock_struct(p, fd, nowait, arg)
            except OSError as e:
                if e.errno not in (_errno.EAGAIN, _errno.EACCES):
                    raise
            _pause(p, t)
    if cmd in (F_GETOWN_EX, F_SETOWN_EX):
        buf = _host.buffer(8, p.mem.read(arg, 8))
        result = _host.syscall("fcntl", fd, cmd, buf)
        if cmd == F_GETOWN_EX:
            p.mem.write(arg, _host.raw(buf, 8))
        return result
    if cmd in (F_GET_RW_HINT, F_SET_RW_HINT, F_GET_FILE_RW_HINT, F_SET_FILE_RW_HINT):
        buf = _host.buffer(8, p.mem.read(arg, 8))
        result = _host.syscall("fcntl", fd, cmd, buf)
        p.mem.write(arg, _host.raw(buf, 8))
        return result
    _host.syscall("fcntl", fd, F_GETFD)  # EBADF first
    raise Errno(EINVAL)


def _flock_struct(p, fd: int, cmd: int, arg: int) -> int:
    buf = _host.buffer(FLOCK_SIZE, p.mem.read(arg, FLOCK_SIZE))
    result = _host.syscall("fcntl", fd, cmd, buf)
    if cmd in (F_GETLK, F_OFD_GETLK):
        p.mem.write(arg, _host.raw(buf, FLOCK_SIZE))
    return result


def _pause(p, t) -> None:
    """Wait a little for a lock, letting a guest signal interrupt (and restart) the call."""
    import time

    check_signals(p, t, restart=True)
    time.sleep(0.01)
    check_signals(p, t, restart=True)


LOCK_NB = 4


@syscall("flock", "fd", "int")
def sys_flock(p, t, fd: int, op: int) -> int:
    fd = s32(fd)
    op = u32(op)
    if op & LOCK_NB or op & ~LOCK_NB == 8:  # non-blocking or LOCK_UN
        return _host.syscall("flock", fd, op)
    while True:
        try:
            return _host.syscall("flock", fd, op | LOCK_NB)
        except BlockingIOError:
            _pause(p, t)


# -- ioctl ------------------------------------------------------------------------------------------
# Terminal and generic descriptor ioctls. Their numbers and structures are the same on riscv64,
# aarch64 and x86_64 (asm-generic/ioctls.h and termbits.h), so each is passed to the host with
# its argument copied: request -> (bytes read from the guest, bytes written back), or None for
# an argument passed by value.
TCGETS, TCSETS, TCSETSW, TCSETSF = 0x5401, 0x5402, 0x5403, 0x5404
TCSBRK, TCXONC, TCFLSH, TIOCEXCL, TIOCNXCL, TIOCSCTTY = 0x5409, 0x540A, 0x540B, 0x540C, 0x540D, 0x540E
TIOCGPGRP, TIOCSPGRP, TIOCOUTQ, TIOCSTI, TIOCGWINSZ, TIOCSWINSZ = (0x540F, 0x5410, 0x5411,
                                                                  0x5412, 0x5413, 0x5414)
FIONREAD, TIOCNOTTY, FIONBIO, TIOCGSID = 0x541B, 0x5422, 0x5421, 0x5429
FIONCLEX, FIOCLEX, FIOASYNC = 0x5450, 0x5451, 0x5452
TCGETS2, TCSETS2, TCSETSW2, TCSETSF2 = 0x802C542A, 0x402C542B, 0x402C542C, 0x402C542D
TIOCGPTN, TIOCSPTLCK, TIOCGPTPEER = 0x80045430, 0x40045431, 0x5441
TERMIOS_SIZE, TERMIOS2_SIZE = 36, 44

IOCTLS: dict[int, tuple[int, int] | None] = {
    TCGETS: (0, TERMIOS_SIZE), TCSETS: (TERMIOS_SIZE, 0), TCSETSW: (TERMIOS_SIZE, 0),
    TCSETSF: (TERMIOS_SIZE, 0), TCGETS2: (0, TERMIOS2_SIZE), TCSETS2: (TERMIOS2_SIZE, 0),
    TCSETSW2: (TERMIOS2_SIZE, 0), TCSETSF2: (TERMIOS2_SIZE, 0),
    TIOCGWINSZ: (0, 8), TIOCSWINSZ: (8, 0), FIONREAD: (0, 4), TIOCOUTQ: (0, 4),
    TIOCGPGRP: (0, 4), TIOCSPGRP: (4, 0), TIOCGSID: (0, 4), TIOCSTI: (1, 0),
    FIONBIO: (4, 0), FIOASYNC: (4, 0), TIOCGPTN: (0, 4), TIOCSPTLCK: (4, 0),
    TCSBRK: None, TCXONC: None, TCFLSH: None, TIOCSCTTY: None, TIOCNOTTY: None,
    TIOCEXCL: None, TIOCNXCL: None, FIONCLEX: None, FIOCLEX: None, TIOCGPTPEER: None,
}


@syscall("ioctl", "fd", "ioctl_req", "hex")
def sys_ioctl(p, t, fd: int, request: int, arg: int) -> int:
    fd = s32(fd)
    request = u32(request)
    if request not in IOCTLS:
        _host.syscall("fcntl", fd, F_GETFD)  # EBADF first
        raise Errno(ENOTTY)
    sizes = IOCTLS[request]
    if sizes is None:
        if request == TIOCGPTPEER:
            arg = flags_to_host(p, arg)
        return _host.syscall("ioctl", fd, request, arg)
    size_in, size_out = sizes
    buf = _host.buffer(max(size_in, size_out), p.mem.read(arg, size_in) if size_in else b"")
    if size_out and not p.mem.check(arg, size_out, PROT_WRITE):
        _host.syscall("fcntl", fd, F_GETFD)
        raise Errno(EFAULT)
    result = _host.syscall("ioctl", fd, request, buf)
    if size_out:
        p.mem.write(arg, _host.raw(buf, size_out))
    return result


# -- whole-file operations ------------------------------------------------------------------------------
@syscall("ftruncate", "fd", "int")
def sys_ftruncate(p, t, fd: int, length: int) -> int:
    return _host.syscall("ftruncate", s32(fd), s64(length))


@syscall("fallocate", "fd", "hex", "int", "int")
def sys_fallocate(p, t, fd: int, mode: int, offset: int, length: int) -> int:
    return _host.syscall("fallocate", s32(fd), u32(mode), s64(offset), s64(length))


@syscall("fadvise64", "fd", "int", "int", "int")
def sys_fadvise64(p, t, fd: int, offset: int, length: int, advice: int) -> int:
    return _host.syscall("fadvise64", s32(fd), s64(offset), s64(length), u32(advice))


@syscall("readahead", "fd", "int", "size")
def sys_readahead(p, t, fd: int, offset: int, count: int) -> int:
    return _host.syscall("readahead", s32(fd), s64(offset), count)


@syscall("fsync", "fd")
def sys_fsync(p, t, fd: int) -> int:
    return _host.syscall("fsync", s32(fd))


@syscall("fdatasync", "fd")
def sys_fdatasync(p, t, fd: int) -> int:
    return _host.syscall("fdatasync", s32(fd))


@syscall("syncfs", "fd")
def sys_syncfs(p, t, fd: int) -> int:
    return _host.syscall("syncfs", s32(fd))


@syscall("sync")
def sys_sync(p, t) -> int:
    os.sync()
    return 0


@syscall("sync_file_range", "fd", "int", "int", "hex")
def sys_sync_file_range(p, t, fd: int, offset: int, nbytes: int, flags: int) -> int:
    return _host.syscall("sync_file_range", s32(fd), s64(offset), s64(nbytes), u32(flags))


# -- copying between descriptors --------------------------------------------------------------------------
def _offset_in(p, addr: int) -> object:
    return None if not addr else _host.buffer(8, p.mem.read(addr, 8))


def _offset_out(p, addr: int, buf) -> None:
    if addr:
        p.mem.write(addr, _host.raw(buf, 8))


@syscall("sendfile", "fd", "fd", "ptr", "size")
def sys_sendfile(p, t, out_fd: int, in_fd: int, offset: int, count: int) -> int:
    out_fd, in_fd = s32(out_fd), s32(in_fd)
    off = _offset_in(p, offset)
    if offset and not p.mem.check(offset, 8, PROT_WRITE):
        raise Errno(EFAULT)
    wait_fd(p, t, out_fd, POLLOUT)
    result = do_write(p, t, out_fd, lambda: _host.syscall("sendfile", out_fd, in_fd, off,
                                                           min(count, MAX_RW_COUNT)))
    _offset_out(p, offset, off)
    return result


@syscall("copy_file_range", "fd", "ptr", "fd", "ptr", "size", "hex")
def sys_copy_file_range(p, t, fd_in: int, off_in: int, fd_out: int, off_out: int, length: int,
                        flags: int) -> int:
    a, b = _offset_in(p, off_in), _offset_in(p, off_out)
    result = _host.syscall("copy_file_range", s32(fd_in), a, s32(fd_out), b, length, u32(flags))
    _offset_out(p, off_in, a)
    _offset_out(p, off_out, b)
    return result


@syscall("splice", "fd", "ptr", "fd", "ptr", "size", "hex")
def sys_splice(p, t, fd_in: int, off_in: int, fd_out: int, off_out: int, length: int,
               flags: int) -> int:
    fd_in, fd_out = s32(fd_in), s32(fd_out)
    a, b = _offset_in(p, off_in), _offset_in(p, off_out)
    if not flags & 2:  # SPLICE_F_NONBLOCK
        wait_fd(p, t, fd_in, POLLIN)
    result = do_write(p, t, fd_out, lambda: _host.syscall("splice", fd_in, a, fd_out, b, length,
                                                           u32(flags)))
    _offset_out(p, off_in, a)
    _offset_out(p, off_out, b)
    return result


@syscall("tee", "fd", "fd", "size", "hex")
def sys_tee(p, t, fd_in: int, fd_out: int, length: int, flags: int) -> int:
    fd_in = s32(fd_in)
    if not flags & 2:
        wait_fd(p, t, fd_in, POLLIN)
    return _host.syscall("tee", fd_in, s32(fd_out), length, u32(flags))


# -- descriptors of special files ---------------------------------------------------------------------------
@syscall("eventfd2", "int", "oflags")
def sys_eventfd2(p, t, initval: int, flags: int) -> int:
    return _host.syscall("eventfd2", u32(initval), flags_to_host(p, flags))


@syscall("eventfd", "int")
def sys_eventfd(p, t, initval: int) -> int:
    return _host.syscall("eventfd2", u32(initval), 0)


@syscall("memfd_create", "str", "hex")
def sys_memfd_create(p, t, name: int, flags: int) -> int:
    raw = p.mem.read_cstring(name, 256)
    return _host.syscall("memfd_create", raw, u32(flags))


__all__ = ["IOCTLS", "do_write"]
