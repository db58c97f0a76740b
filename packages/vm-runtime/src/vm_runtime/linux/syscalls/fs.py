"""Files and directories on the host filesystem: open, stat and statx, directories and
getdents64, names (link, rename, unlink, symlink, readlink), permissions and owners,
times, statfs, the working directory and umask, extended attributes, getrandom.

Guest file descriptors are host file descriptors (as in qemu-user), and the host's paths are
the guest's. Most calls go straight to the host kernel (``host.syscall``) with their
buffers copied, so errors and their precedence are the kernel's own; what differs per
architecture goes through ``p.arch`` (struct stat) or ``util`` (open flags). /proc/self/exe
names the guest program.
"""

from __future__ import annotations

import os
import struct

from . import Errno, syscall
from . import host as _host
from .util import (
    AT_FDCWD,
    PATH_MAX,
    PROT_WRITE,
    dirfd,
    flags_to_host,
    guest_path,
    proc_self,
    s32,
    s64,
    u32,
)

AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_SYMLINK_FOLLOW = 0x100, 0x200, 0x400
AT_NO_AUTOMOUNT, AT_EMPTY_PATH, AT_STATX_SYNC_TYPE = 0x800, 0x1000, 0x6000
EBADF, EFAULT, EINVAL, ENOENT, ERANGE = 9, 14, 22, 2, 34
STATX_SIZE = 256  # struct statx: the same on every architecture
STATFS_SIZE = 120  # struct statfs of 64-bit Linux (generic and x86_64 agree)
DIRENT_BUFFER_MAX = 1 << 20


def _path_or_null(p, addr: int) -> bytes | None:
    return None if addr == 0 else guest_path(p, addr)


# -- opening ------------------------------------------------------------------------------------------
@syscall("openat", "fd", "str", "oflags", "oct")
def sys_openat(p, t, dfd: int, path: int, flags: int, mode: int) -> int:
    return _host.syscall("openat", s32(dfd), guest_path(p, path), flags_to_host(p, flags),
                         u32(mode))


@syscall("open", "str", "oflags", "oct")
def sys_open(p, t, path: int, flags: int, mode: int) -> int:
    return sys_openat(p, t, AT_FDCWD, path, flags, mode)


@syscall("creat", "str", "oct")
def sys_creat(p, t, path: int, mode: int) -> int:
    return sys_openat(p, t, AT_FDCWD, path, 0o1101, mode)  # O_CREAT|O_WRONLY|O_TRUNC


@syscall("openat2", "fd", "str", "ptr", "size")
def sys_openat2(p, t, dfd: int, path: int, how: int, size: int) -> int:
    if size < 24:
        raise Errno(EINVAL)
    raw = bytearray(p.mem.read(how, min(size, 4096)))
    if any(raw[24:]):
        raise Errno(7)  # E2BIG: fields this kernel does not know
    flags = int.from_bytes(raw[:8], "little")
    raw[:8] = (flags_to_host(p, flags) | (flags & ~0xFFFFFFFF)).to_bytes(8, "little")
    buf = _host.buffer(24, bytes(raw[:24]))
    return _host.syscall("openat2", s32(dfd), guest_path(p, path), buf, 24)


# -- metadata ----------------------------------------------------------------------------------------
def _stat(p, dfd: int, name: bytes, flags: int) -> os.stat_result:
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH):
        raise Errno(EINVAL)
    if not name and flags & AT_EMPTY_PATH:
        fd = s32(dfd)
        return os.stat(".") if fd == AT_FDCWD else os.fstat(fd)
    return os.stat(name, dir_fd=dirfd(dfd), follow_symlinks=not flags & AT_SYMLINK_NOFOLLOW)


def _put_stat(p, addr: int, st: os.stat_result) -> int:
    p.mem.write(addr, p.arch.pack_stat(st))
    return 0


@syscall("fstat", "fd", "ptr")
def sys_fstat(p, t, fd: int, addr: int) -> int:
    return _put_stat(p, addr, os.fstat(s32(fd)))


@syscall("newfstatat", "fd", "str", "ptr", "atflags")
def sys_newfstatat(p, t, dfd: int, path: int, addr: int, flags: int) -> int:
    return _put_stat(p, addr, _stat(p, dfd, guest_path(p, path), u32(flags)))


@syscall("stat", "str", "ptr")
def sys_stat(p, t, path: int, addr: int) -> int:
    return _put_stat(p, addr, _stat(p, AT_FDCWD, guest_path(p, path), 0))


@syscall("lstat", "str", "ptr")
def sys_lstat(p, t, path: int, addr: int) -> int:
    return _put_stat(p, addr, _stat(p, AT_FDCWD, guest_path(p, path), AT_SYMLINK_NOFOLLOW))


@syscall("statx", "fd", "str", "atflags", "hex", "ptr")
def sys_statx(p, t, dfd: int, path: int, flags: int, mask: int, addr: int) -> int:
    if not p.mem.check(addr, STATX_SIZE, PROT_WRITE):
        raise Errno(EFAULT)
    buf = _host.buffer(STATX_SIZE)
    _host.syscall("statx", s32(dfd), _path_or_null(p, path), u32(flags), u32(mask), buf)
    p.mem.write(addr, _host.raw(buf, STATX_SIZE))
    return 0


@syscall("statfs", "str", "ptr")
def sys_statfs(p, t, path: int, addr: int) -> int:
    buf = _host.buffer(STATFS_SIZE)
    _host.syscall("statfs", guest_path(p, path), buf)
    p.mem.write(addr, _host.raw(buf, STATFS_SIZE))
    return 0


@syscall("fstatfs", "fd", "ptr")
def sys_fstatfs(p, t, fd: int, addr: int) -> int:
    buf = _host.buffer(STATFS_SIZE)
    _host.syscall("fstatfs", s32(fd), buf)
    p.mem.write(addr, _host.raw(buf, STATFS_SIZE))
    return 0


@syscall("readlinkat", "fd", "str", "obuf", "size")
def sys_readlinkat(p, t, dfd: int, path: int, buf: int, size: int) -> int:
    size = s32(size)
    if size <= 0:
        raise Errno(EINVAL)
    name = p.mem.read_cstring(path, PATH_MAX)
    exe = proc_self(p, name)
    if exe is not name:
        data = exe[:size]
    else:
        host_buf = _host.buffer(min(size, PATH_MAX))
        n = _host.syscall("readlinkat", s32(dfd), name, host_buf, min(size, PATH_MAX))
        data = _host.raw(host_buf, n)
    p.mem.write(buf, data)
    return len(data)


@syscall("readlink", "str", "obuf", "size")
def sys_readlink(p, t, path: int, buf: int, size: int) -> int:
    return sys_readlinkat(p, t, AT_FDCWD, path, buf, size)


# -- directories ------------------------------------------------------------------------------------
@syscall("getdents64", "fd", "ptr", "size")
def sys_getdents64(p, t, fd: int, dirp: int, count: int) -> int:
    """The host's own entries (struct linux_dirent64 is the same everywhere), so d_off and
    d_type are the file system's."""
    size = min(u32(count), DIRENT_BUFFER_MAX)
    if not p.mem.check(dirp, min(size, 512), PROT_WRITE):
        _host.syscall("fcntl", s32(fd), 1)  # EBADF first
        raise Errno(EFAULT)
    buf = _host.buffer(size)
    n = _host.syscall("getdents64", s32(fd), buf, size)
    p.mem.write(dirp, _host.raw(buf, n))
    return n


@syscall("getdents", "fd", "ptr", "size")
def sys_getdents(p, t, fd: int, dirp: int, count: int) -> int:
    """x86_64's old getdents: struct linux_dirent, with d_type in the record's last byte. A
    record is as long as its linux_dirent64 (ALIGN(20 + namelen, 8) both), so the host's
    getdents64 records convert one for one."""
    size = min(u32(count), DIRENT_BUFFER_MAX)
    buf = _host.buffer(size)
    n = _host.syscall("getdents64", s32(fd), buf, size)
    raw = _host.raw(buf, n)
    out = bytearray(n)
    pos = 0
    while pos < n:
        ino, off, reclen, dtype = struct.unpack_from("<QqHB", raw, pos)
        name = raw[pos + 19:pos + reclen].split(b"\0", 1)[0]
        struct.pack_into("<QqH", out, pos, ino, off, reclen)
        out[pos + 18:pos + 18 + len(name)] = name
        out[pos + reclen - 1] = dtype
        pos += reclen
    p.mem.write(dirp, bytes(out))
    return n


@syscall("mkdirat", "fd", "str", "oct")
def sys_mkdirat(p, t, dfd: int, path: int, mode: int) -> int:
    return _host.syscall("mkdirat", s32(dfd), guest_path(p, path), u32(mode))


@syscall("mkdir", "str", "oct")
def sys_mkdir(p, t, path: int, mode: int) -> int:
    return sys_mkdirat(p, t, AT_FDCWD, path, mode)


@syscall("mknodat", "fd", "str", "oct", "hex")
def sys_mknodat(p, t, dfd: int, path: int, mode: int, dev: int) -> int:
    return _host.syscall("mknodat", s32(dfd), guest_path(p, path), u32(mode), u32(dev))


@syscall("mknod", "str", "oct", "hex")
def sys_mknod(p, t, path: int, mode: int, dev: int) -> int:
    return sys_mknodat(p, t, AT_FDCWD, path, mode, dev)


@syscall("unlinkat", "fd", "str", "atflags")
def sys_unlinkat(p, t, dfd: int, path: int, flags: int) -> int:
    return _host.syscall("unlinkat", s32(dfd), guest_path(p, path), u32(flags))


@syscall("unlink", "str")
def sys_unlink(p, t, path: int) -> int:
    return sys_unlinkat(p, t, AT_FDCWD, path, 0)


@syscall("rmdir", "str")
def sys_rmdir(p, t, path: int) -> int:
    return sys_unlinkat(p, t, AT_FDCWD, path, AT_REMOVEDIR)


@syscall("getcwd", "obuf", "size")
def sys_getcwd(p, t, buf: int, size: int) -> int:
    size = min(size, PATH_MAX)
    host_buf = _host.buffer(size)
    n = _host.syscall("getcwd", host_buf, size)
    p.mem.write(buf, _host.raw(host_buf, n))
    return n


@syscall("chdir", "str")
def sys_chdir(p, t, path: int) -> int:
    os.chdir(guest_path(p, path))
    return 0


@syscall("fchdir", "fd")
def sys_fchdir(p, t, fd: int) -> int:
    os.fchdir(s32(fd))
    return 0


@syscall("chroot", "str")
def sys_chroot(p, t, path: int) -> int:
    return _host.syscall("chroot", guest_path(p, path))


# -- names ----------------------------------------------------------------------------------------
@syscall("renameat2", "fd", "str", "fd", "str", "hex")
def sys_renameat2(p, t, olddfd: int, old: int, newdfd: int, new: int, flags: int) -> int:
    return _host.syscall("renameat2", s32(olddfd), guest_path(p, old), s32(newdfd),
                         guest_path(p, new), u32(flags))


@syscall("renameat", "fd", "str", "fd", "str")
def sys_renameat(p, t, olddfd: int, old: int, newdfd: int, new: int) -> int:
    return sys_renameat2(p, t, olddfd, old, newdfd, new, 0)


@syscall("rename", "str", "str")
def sys_rename(p, t, old: int, new: int) -> int:
    return sys_renameat2(p, t, AT_FDCWD, old, AT_FDCWD, new, 0)


@syscall("linkat", "fd", "str", "fd", "str", "atflags")
def sys_linkat(p, t, olddfd: int, old: int, newdfd: int, new: int, flags: int) -> int:
    return _host.syscall("linkat", s32(olddfd), guest_path(p, old), s32(newdfd),
                         guest_path(p, new), u32(flags))


@syscall("link", "str", "str")
def sys_link(p, t, old: int, new: int) -> int:
    return sys_linkat(p, t, AT_FDCWD, old, AT_FDCWD, new, 0)


@syscall("symlinkat", "str", "fd", "str")
def sys_symlinkat(p, t, target: int, newdfd: int, new: int) -> int:
    return _host.syscall("symlinkat", p.mem.read_cstring(target, PATH_MAX), s32(newdfd),
                         guest_path(p, new))


@syscall("symlink", "str", "str")
def sys_symlink(p, t, target: int, new: int) -> int:
    return sys_symlinkat(p, t, target, AT_FDCWD, new)


# -- permissions, owners, times, sizes ----------------------------------------------------------------
@syscall("faccessat", "fd", "str", "oct")
def sys_faccessat(p, t, dfd: int, path: int, mode: int) -> int:
    return _host.syscall("faccessat", s32(dfd), guest_path(p, path), u32(mode))


@syscall("faccessat2", "fd", "str", "oct", "atflags")
def sys_faccessat2(p, t, dfd: int, path: int, mode: int, flags: int) -> int:
    return _host.syscall("faccessat2", s32(dfd), guest_path(p, path), u32(mode), u32(flags))


@syscall("access", "str", "oct")
def sys_access(p, t, path: int, mode: int) -> int:
    return sys_faccessat(p, t, AT_FDCWD, path, mode)


@syscall("fchmod", "fd", "oct")
def sys_fchmod(p, t, fd: int, mode: int) -> int:
    return _host.syscall("fchmod", s32(fd), u32(mode))


@syscall("fchmodat", "fd", "str", "oct")
def sys_fchmodat(p, t, dfd: int, path: int, mode: int) -> int:
    return _host.syscall("fchmodat", s32(dfd), guest_path(p, path), u32(mode))


@syscall("fchmodat2", "fd", "str", "oct", "atflags")
def sys_fchmodat2(p, t, dfd: int, path: int, mode: int, flags: int) -> int:
    return _host.syscall("fchmodat2", s32(dfd), guest_path(p, path), u32(mode), u32(flags))


@syscall("chmod", "str", "oct")
def sys_chmod(p, t, path: int, mode: int) -> int:
    return sys_fchmodat(p, t, AT_FDCWD, path, mode)


@syscall("fchown", "fd", "int", "int")
def sys_fchown(p, t, fd: int, uid: int, gid: int) -> int:
    return _host.syscall("fchown", s32(fd), u32(uid), u32(gid))


@syscall("fchownat", "fd", "str", "int", "int", "atflags")
def sys_fchownat(p, t, dfd: int, path: int, uid: int, gid: int, flags: int) -> int:
    return _host.syscall("fchownat", s32(dfd), guest_path(p, path), u32(uid), u32(gid),
                         u32(flags))


@syscall("chown", "str", "int", "int")
def sys_chown(p, t, path: int, uid: int, gid: int) -> int:
    return sys_fchownat(p, t, AT_FDCWD, path, uid, gid, 0)


@syscall("lchown", "str", "int", "int")
def sys_lchown(p, t, path: int, uid: int, gid: int) -> int:
    return sys_fchownat(p, t, AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW)


@syscall("truncate", "str", "int")
def sys_truncate(p, t, path: int, length: int) -> int:
    return _host.syscall("truncate", guest_path(p, path), s64(length))


@syscall("utimensat", "fd", "str", "ptr", "atflags")
def sys_utimensat(p, t, dfd: int, path: int, times: int, flags: int) -> int:
    """times: struct timespec[2] (UTIME_NOW, UTIME_OMIT in tv_nsec) or NULL; a NULL path
    means the descriptor itself."""
    buf = None if times == 0 else _host.buffer(32, p.mem.read(times, 32))
    return _host.syscall("utimensat", s32(dfd), _path_or_null(p, path), buf, u32(flags))


def _timevals(p, addr: int):
    """struct timeval[2] (utimes, futimesat) as the struct timespec[2] utimensat takes."""
    if not addr:
        return None
    a_sec, a_usec, m_sec, m_usec = struct.unpack("<qqqq", p.mem.read(addr, 32))
    if not (0 <= a_usec < 1_000_000 and 0 <= m_usec < 1_000_000):
        raise Errno(EINVAL)
    return _host.buffer(32, struct.pack("<qqqq", a_sec, a_usec * 1000, m_sec, m_usec * 1000))


@syscall("futimesat", "fd", "str", "ptr")
def sys_futimesat(p, t, dfd: int, path: int, times: int) -> int:
    return _host.syscall("utimensat", s32(dfd), _path_or_null(p, path), _timevals(p, times), 0)


@syscall("utimes", "str", "ptr")
def sys_utimes(p, t, path: int, times: int) -> int:
    return sys_futimesat(p, t, AT_FDCWD, path, times)


@syscall("utime", "str", "ptr")
def sys_utime(p, t, path: int, times: int) -> int:
    """struct utimbuf: actime, modtime in whole seconds."""
    buf = None
    if times:
        actime, modtime = struct.unpack("<qq", p.mem.read(times, 16))
        buf = _host.buffer(32, struct.pack("<qqqq", actime, 0, modtime, 0))
    return _host.syscall("utimensat", AT_FDCWD, guest_path(p, path), buf, 0)


@syscall("umask", "oct")
def sys_umask(p, t, mask: int) -> int:
    return os.umask(mask & 0o777)


# -- extended attributes ------------------------------------------------------------------------------
def _xattr_get(p, call: str, target, name: int, value: int, size: int) -> int:
    size = min(size, 1 << 16)
    buf = _host.buffer(size)
    n = _host.syscall(call, target, p.mem.read_cstring(name, 256), buf if size else None, size)
    if size:
        p.mem.write(value, _host.raw(buf, n))
    return n


def _xattr_list(p, call: str, target, out: int, size: int) -> int:
    size = min(size, 1 << 16)
    buf = _host.buffer(size)
    n = _host.syscall(call, target, buf if size else None, size)
    if size:
        p.mem.write(out, _host.raw(buf, n))
    return n


def _xattr_set(p, call: str, target, name: int, value: int, size: int, flags: int) -> int:
    data = p.mem.read(value, min(size, 1 << 16))
    return _host.syscall(call, target, p.mem.read_cstring(name, 256), _host.buffer(len(data), data),
                         len(data), u32(flags))


for _prefix, _target in (("", "str"), ("l", "str"), ("f", "fd")):
    def _make(prefix: str, kind: str) -> None:
        def target(p, arg):
            return s32(arg) if kind == "fd" else guest_path(p, arg)

        syscall(f"{prefix}getxattr", kind, "str", "ptr", "size")(
            lambda p, t, a, name, value, size: _xattr_get(p, f"{prefix}getxattr", target(p, a),
                                                          name, value, size))
        syscall(f"{prefix}listxattr", kind, "ptr", "size")(
            lambda p, t, a, out, size: _xattr_list(p, f"{prefix}listxattr", target(p, a), out,
                                                   size))
        syscall(f"{prefix}setxattr", kind, "str", "ptr", "size", "hex")(
            lambda p, t, a, name, value, size, flags: _xattr_set(
                p, f"{prefix}setxattr", target(p, a), name, value, size, flags))
        syscall(f"{prefix}removexattr", kind, "str")(
            lambda p, t, a, name: _host.syscall(f"{prefix}removexattr", target(p, a),
                                                p.mem.read_cstring(name, 256)))

    _make(_prefix, _target)


# -- misc ------------------------------------------------------------------------------------------
@syscall("getrandom", "obuf", "size", "hex")
def sys_getrandom(p, t, buf: int, count: int, flags: int) -> int:
    count = min(count, 1 << 25)
    if not p.mem.check(buf, count, PROT_WRITE):
        raise Errno(EFAULT)
    host_buf = _host.buffer(count)
    n = _host.syscall("getrandom", host_buf, count, u32(flags))
    p.mem.write(buf, _host.raw(host_buf, n))
    return n


__all__ = ["AT_EMPTY_PATH", "dirfd", "guest_path", "s32", "s64"]
