"""Files and directories on the host filesystem. Guest file descriptors are host file
descriptors (as in qemu-user), so pipes, dup2, fork and exec need no translation."""

from __future__ import annotations

import os
import stat as _stat
import struct
import termios

from . import Errno, syscall

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_EMPTY_PATH = 0x100, 0x200, 0x400, 0x1000
EBADF, EFAULT, EINVAL, ENOTTY, ENOENT, ESPIPE = 9, 14, 22, 25, 2, 29
IOV_MAX = 1024


def s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def s64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def guest_path(p, addr: int) -> bytes:
    path = p.mem.read_cstring(addr, 4096)
    return _proc_self(p, path)


def _proc_self(p, path: bytes) -> bytes:
    """/proc/self/exe must name the guest program, not the emulator."""
    if path in (b"/proc/self/exe", f"/proc/{p.pid}/exe".encode()):
        return os.fsencode(p.exe)
    return path


def dirfd(fd: int) -> int | None:
    fd = s32(fd)
    return None if fd == AT_FDCWD else fd


# -- reading and writing ---------------------------------------------------------------------------
@syscall("read", "fd", "ptr", "size")
def sys_read(p, t, fd: int, buf: int, count: int) -> int:
    if not p.mem.check(buf, count, 2):
        raise Errno(EFAULT)
    data = os.read(s32(fd), min(count, 1 << 24))
    p.mem.write(buf, data)
    return len(data)


@syscall("write", "fd", "buf", "size")
def sys_write(p, t, fd: int, buf: int, count: int) -> int:
    data = p.mem.read(buf, count)
    try:
        return os.write(s32(fd), data)
    except BrokenPipeError:
        _sigpipe(p, t)
        raise Errno(32) from None


def _sigpipe(p, t) -> None:
    from .. import signals as sig

    p.send_signal(t, sig.PendingSignal(sig.SIGPIPE, 0, pid=p.pid))


@syscall("pread64", "fd", "ptr", "size", "int")
def sys_pread64(p, t, fd: int, buf: int, count: int, offset: int) -> int:
    if not p.mem.check(buf, count, 2):
        raise Errno(EFAULT)
    data = os.pread(s32(fd), count, s64(offset))
    p.mem.write(buf, data)
    return len(data)


@syscall("pwrite64", "fd", "buf", "size", "int")
def sys_pwrite64(p, t, fd: int, buf: int, count: int, offset: int) -> int:
    return os.pwrite(s32(fd), p.mem.read(buf, count), s64(offset))


def _iovecs(p, iov: int, count: int) -> list[tuple[int, int]]:
    if count > IOV_MAX:
        raise Errno(EINVAL)
    raw = p.mem.read(iov, 16 * count)
    return [struct.unpack_from("<QQ", raw, 16 * i) for i in range(count)]


@syscall("readv", "fd", "ptr", "int")
def sys_readv(p, t, fd: int, iov: int, count: int) -> int:
    total = 0
    for base, length in _iovecs(p, iov, count):
        if length == 0:
            continue
        if not p.mem.check(base, length, 2):
            raise Errno(EFAULT)
        data = os.read(s32(fd), length)
        p.mem.write(base, data)
        total += len(data)
        if len(data) < length:
            break
    return total


@syscall("writev", "fd", "ptr", "int")
def sys_writev(p, t, fd: int, iov: int, count: int) -> int:
    data = b"".join(p.mem.read(base, length) for base, length in _iovecs(p, iov, count))
    try:
        return os.write(s32(fd), data)
    except BrokenPipeError:
        _sigpipe(p, t)
        raise Errno(32) from None


@syscall("lseek", "fd", "int", "int")
def sys_lseek(p, t, fd: int, offset: int, whence: int) -> int:
    return os.lseek(s32(fd), s64(offset), whence)


# -- opening and closing ---------------------------------------------------------------------------
@syscall("openat", "fd", "str", "oflags", "oct")
def sys_openat(p, t, dfd: int, path: int, flags: int, mode: int) -> int:
    return os.open(guest_path(p, path), flags & 0xFFFFFFFF, mode & 0o7777, dir_fd=dirfd(dfd))


@syscall("close", "fd")
def sys_close(p, t, fd: int) -> int:
    fd = s32(fd)
    if fd == p.vfork_gate:
        raise Errno(EBADF)
    os.close(fd)
    return 0


# -- metadata ------------------------------------------------------------------------------------
@syscall("fstat", "fd", "ptr")
def sys_fstat(p, t, fd: int, addr: int) -> int:
    p.mem.write(addr, p.arch.pack_stat(os.fstat(s32(fd))))
    return 0


@syscall("newfstatat", "fd", "str", "ptr", "int")
def sys_newfstatat(p, t, dfd: int, path: int, addr: int, flags: int) -> int:
    name = guest_path(p, path)
    if not name and flags & AT_EMPTY_PATH:
        st = os.fstat(s32(dfd))
    else:
        st = os.stat(name, dir_fd=dirfd(dfd), follow_symlinks=not flags & AT_SYMLINK_NOFOLLOW)
    p.mem.write(addr, p.arch.pack_stat(st))
    return 0


@syscall("readlinkat", "fd", "str", "ptr", "size")
def sys_readlinkat(p, t, dfd: int, path: int, buf: int, size: int) -> int:
    name = p.mem.read_cstring(path, 4096)
    if name in (b"/proc/self/exe", f"/proc/{p.pid}/exe".encode()):
        target = os.fsencode(p.exe)
    else:
        target = os.readlink(name, dir_fd=dirfd(dfd))
    data = target[:size]
    p.mem.write(buf, data)
    return len(data)


# -- ioctl -----------------------------------------------------------------------------------------
TCGETS, TCSETS, TCSETSW, TCSETSF = 0x5401, 0x5402, 0x5403, 0x5404
TIOCGWINSZ, TIOCSWINSZ, FIONREAD, TIOCGPGRP, TIOCSPGRP = 0x5413, 0x5414, 0x541B, 0x540F, 0x5410


@syscall("ioctl", "fd", "hex", "hex")
def sys_ioctl(p, t, fd: int, request: int, arg: int) -> int:
    import fcntl

    fd = s32(fd)
    request &= 0xFFFFFFFF
    if request == TCGETS:
        try:
            attrs = termios.tcgetattr(fd)
        except termios.error:
            os.fstat(fd)  # EBADF for a bad descriptor, else not a terminal
            raise Errno(ENOTTY) from None
        iflag, oflag, cflag, lflag, _ispeed, _ospeed, cc = attrs
        ccs = bytes(c if isinstance(c, int) else c[0] for c in cc)[:19].ljust(19, b"\0")
        p.mem.write(arg, struct.pack("<IIIIB", iflag, oflag, cflag, lflag, 0) + ccs)
        return 0
    if request in (TCSETS, TCSETSW, TCSETSF):
        iflag, oflag, cflag, lflag, _line = struct.unpack("<IIIIB", p.mem.read(arg, 17))
        ccs = list(p.mem.read(arg + 17, 19))
        try:
            old = termios.tcgetattr(fd)
        except termios.error:
            raise Errno(ENOTTY) from None
        cc = [bytes([c]) if isinstance(old[6][i], bytes) else c for i, c in
              enumerate(ccs[:len(old[6])])]
        when = {TCSETS: termios.TCSANOW, TCSETSW: termios.TCSADRAIN,
                TCSETSF: termios.TCSAFLUSH}[request]
        termios.tcsetattr(fd, when, [iflag, oflag, cflag, lflag, old[4], old[5], cc])
        return 0
    if request == TIOCGWINSZ:
        try:
            data = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
        except OSError as e:
            raise Errno(e.errno or ENOTTY) from None
        p.mem.write(arg, data)
        return 0
    if request == FIONREAD:
        data = fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4)
        p.mem.write(arg, data)
        return 0
    if request == TIOCGPGRP:
        p.mem.write(arg, struct.pack("<i", os.tcgetpgrp(fd)))
        return 0
    if request == TIOCSPGRP:
        os.tcsetpgrp(fd, struct.unpack("<i", p.mem.read(arg, 4))[0])
        return 0
    os.fstat(fd)
    raise Errno(ENOTTY)


# -- misc ------------------------------------------------------------------------------------------
@syscall("getcwd", "ptr", "size")
def sys_getcwd(p, t, buf: int, size: int) -> int:
    cwd = os.getcwdb() + b"\0"
    if len(cwd) > size:
        raise Errno(34)  # ERANGE
    p.mem.write(buf, cwd)
    return len(cwd)


@syscall("getrandom", "ptr", "size", "int")
def sys_getrandom(p, t, buf: int, count: int, flags: int) -> int:
    count = min(count, 1 << 25)
    p.mem.write(buf, os.urandom(count))
    return count


__all__ = ["AT_EMPTY_PATH", "_stat", "dirfd", "guest_path", "s32", "s64"]
