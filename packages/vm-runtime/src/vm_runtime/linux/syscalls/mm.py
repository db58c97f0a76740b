"""Memory syscalls: brk, mmap, munmap, mprotect, mremap, madvise, msync, mincore, mlock."""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable

from ..memory import PAGE_MASK, PROT_EXEC, PROT_READ, PROT_WRITE, page_align_up
from . import Errno, syscall

ENOMEM, EINVAL, EBADF, EACCES, EEXIST = 12, 22, 9, 13, 17
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_FIXED_NOREPLACE = 0x100000
MAP_TYPE = 0x0F
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2


def _mm_locked(fn: Callable[..., int]) -> Callable[..., int]:
    """Run a syscall that changes the address space under the process's ``mm_lock`` (the
    kernel's mmap_lock): another thread's mmap must not find free what this one is placing,
    nor a fork copy a change half made."""

    @functools.wraps(fn)
    def locked(p, t, *args: int) -> int:
        with p.mm_lock:
            return fn(p, t, *args)

    return locked


@syscall("brk", "hex", ret="hex")
@_mm_locked
def sys_brk(p, t, addr: int) -> int:
    if addr == 0 or addr < p.brk_start:
        return p.brk
    old_top = page_align_up(p.brk)
    new_top = page_align_up(addr)
    if new_top > old_top:
        if not p.mem.is_free(old_top, new_top - old_top):
            return p.brk
        p.mem.map(old_top, new_top - old_top, PROT_READ | PROT_WRITE, "[heap]")
    elif new_top < old_top:
        p.mem.unmap(new_top, old_top - new_top)
    p.brk = addr
    return p.brk


def _place(p, addr: int, length: int, flags: int) -> int:
    if flags & MAP_FIXED:
        if addr & PAGE_MASK:
            raise Errno(EINVAL)
        if addr + length > p.mem.size:
            raise Errno(ENOMEM)
        return addr
    if flags & MAP_FIXED_NOREPLACE:
        if addr & PAGE_MASK:
            raise Errno(EINVAL)
        if not p.mem.is_free(addr, length):
            raise Errno(EEXIST)
        return addr
    if addr and not addr & PAGE_MASK and addr + length <= p.arch.mmap_top and p.mem.is_free(
            addr, length):
        return addr  # the hint is free: use it
    where = p.mem.find_free(length, p.arch.mmap_top, above=max(p.brk_start, 0x10000))
    if where is None:
        raise Errno(ENOMEM)
    return where


@syscall("mmap", "hex", "size", "prot", "mmap_flags", "fd", "hex", ret="hex")
@_mm_locked
def sys_mmap(p, t, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    if length == 0 or offset & PAGE_MASK:
        raise Errno(EINVAL)
    if flags & MAP_TYPE not in (MAP_SHARED, MAP_PRIVATE, 0x03):
        raise Errno(EINVAL)
    length = page_align_up(length)
    if length > p.mem.size:
        raise Errno(ENOMEM)
    fd = fd if fd < 1 << 31 else fd - (1 << 32)
    data = b""
    if not flags & MAP_ANONYMOUS:
        try:
            st = os.fstat(fd)
        except OSError:
            raise Errno(EBADF) from None
        import stat as _stat

        if _stat.S_ISDIR(st.st_mode):
            raise Errno(19)  # ENODEV
        try:
            data = os.pread(fd, length, offset)
        except OSError as e:
            raise Errno(e.errno or EACCES) from None
        if flags & MAP_TYPE == MAP_SHARED and prot & PROT_WRITE:
            mode = _fd_access(fd)
            if mode != os.O_RDWR:
                raise Errno(EACCES)
    where = _place(p, addr, length, flags)
    _make_private(p, where, length)
    p.mem.map(where, length, prot & (PROT_READ | PROT_WRITE | PROT_EXEC),
              _mapping_name(fd) if not flags & MAP_ANONYMOUS else "")
    if flags & MAP_TYPE == MAP_SHARED:
        _map_shared(p, where, length, -1 if flags & MAP_ANONYMOUS else fd, offset, len(data))
    elif data:
        p.mem.write_unchecked(where, data)
    return where


# -- shared mappings ------------------------------------------------------------------------------
# A MAP_SHARED mapping must be shared for real: with the file (writes reach it, its changes show)
# and with children after fork. So the host maps the file (or shared anonymous memory) over that
# part of the guest address space, and puts private anonymous memory back when the guest unmaps
# it. ``p.shared_maps`` holds (start, end, host-writable) of each such range.

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                       ctypes.c_long)
_HOST_MAP_FIXED, _HOST_MAP_NORESERVE = 0x10, 0x4000
_MAP_FAILED = ctypes.c_void_p(-1).value


def _host_mmap(p, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> None:
    result = _libc.mmap(p.mem.base + addr, length, prot, flags | _HOST_MAP_FIXED, fd, offset)
    if result == _MAP_FAILED or result != p.mem.base + addr:
        raise Errno(ctypes.get_errno() or ENOMEM)


def _shared(p) -> list[tuple[int, int, bool]]:
    if not hasattr(p, "shared_maps"):
        p.shared_maps = []
    return p.shared_maps


def _map_shared(p, where: int, length: int, fd: int, offset: int, file_bytes: int) -> None:
    if fd < 0:
        _host_mmap(p, where, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        _shared(p).append((where, where + length, True))
        return
    # only the file's own pages: touching a host file page past its end would be a host SIGBUS
    span = min(length, page_align_up(file_bytes))
    if span == 0:
        return
    writable = _fd_access(fd) == os.O_RDWR
    host_prot = PROT_READ | (PROT_WRITE if writable else 0)
    _host_mmap(p, where, span, host_prot, MAP_SHARED, fd, offset)
    _shared(p).append((where, where + span, writable))


def _make_private(p, addr: int, length: int) -> None:
    """Put private anonymous memory back under [addr, addr+length) where a shared mapping was."""
    end = addr + length
    keep = []
    for start, stop, writable in _shared(p):
        if stop <= addr or start >= end:
            keep.append((start, stop, writable))
            continue
        lo, hi = max(start, addr), min(stop, end)
        _host_mmap(p, lo, hi - lo, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | _HOST_MAP_NORESERVE, -1, 0)
        if start < lo:
            keep.append((start, lo, writable))
        if hi < stop:
            keep.append((hi, stop, writable))
    p.shared_maps = keep


def _write_refused(p, addr: int, length: int, prot: int) -> bool:
    """A shared mapping of a file opened read-only cannot become writable (EACCES)."""
    if not prot & PROT_WRITE:
        return False
    end = addr + length
    return any(not w and start < end and addr < stop for start, stop, w in _shared(p))


def _fd_access(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE


def _mapping_name(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@syscall("munmap", "hex", "size")
@_mm_locked
def sys_munmap(p, t, addr: int, length: int) -> int:
    if addr & PAGE_MASK or length == 0:
        raise Errno(EINVAL)
    length = page_align_up(length)
    if addr + length > p.mem.size:
        raise Errno(EINVAL)
    _make_private(p, addr, length)
    p.mem.unmap(addr, length)
    return 0


@syscall("mprotect", "hex", "size", "prot")
@_mm_locked
def sys_mprotect(p, t, addr: int, length: int, prot: int) -> int:
    if addr & PAGE_MASK:
        raise Errno(EINVAL)
    length = page_align_up(length)
    if length == 0:
        return 0
    if _write_refused(p, addr, length, prot):
        raise Errno(EACCES)
    if addr + length > p.mem.size or not p.mem.protect(addr, length,
                                                        prot & (PROT_READ | PROT_WRITE | PROT_EXEC)):
        raise Errno(ENOMEM)
    return 0


@syscall("mremap", "hex", "size", "size", "int", "hex", ret="hex")
@_mm_locked
def sys_mremap(p, t, old: int, old_size: int, new_size: int, flags: int, new_addr: int) -> int:
    if old & PAGE_MASK or new_size == 0:
        raise Errno(EINVAL)
    old_size = page_align_up(old_size)
    new_size = page_align_up(new_size)
    mem = p.mem
    if not mem.is_mapped(old, max(old_size, 1)):
        raise Errno(14)  # EFAULT
    prot = mem.prot_at(old)
    if flags & MREMAP_FIXED:
        if not flags & MREMAP_MAYMOVE or new_addr & PAGE_MASK:
            raise Errno(EINVAL)
        return _move(p, old, old_size, new_size, new_addr, prot)
    if new_size <= old_size:
        if new_size < old_size:
            _make_private(p, old + new_size, old_size - new_size)
            mem.unmap(old + new_size, old_size - new_size)
        return old
    if old + new_size <= p.arch.mmap_top and mem.is_free(old + old_size, new_size - old_size):
        mem.map(old + old_size, new_size - old_size, prot)
        return old
    if not flags & MREMAP_MAYMOVE:
        raise Errno(ENOMEM)
    where = mem.find_free(new_size, p.arch.mmap_top, above=max(p.brk_start, 0x10000))
    if where is None:
        raise Errno(ENOMEM)
    return _move(p, old, old_size, new_size, where, prot)


def _move(p, old: int, old_size: int, new_size: int, new: int, prot: int) -> int:
    mem = p.mem
    keep = min(old_size, new_size)
    data = bytes(mem.mm[old:old + keep])
    _make_private(p, old, old_size)
    _make_private(p, new, new_size)
    mem.unmap(old, old_size)
    mem.map(new, new_size, prot)
    mem.write_unchecked(new, data)
    return new


@syscall("madvise", "hex", "size", "int")
@_mm_locked
def sys_madvise(p, t, addr: int, length: int, advice: int) -> int:
    if addr & PAGE_MASK:
        raise Errno(EINVAL)
    if advice == 4 and length:  # MADV_DONTNEED: private anonymous pages read as zero again
        length = page_align_up(length)
        if p.mem.is_mapped(addr, length):
            p.mem.zero(addr, length)
    return 0


@syscall("msync", "hex", "size", "int")
def sys_msync(p, t, addr: int, length: int, flags: int) -> int:
    return 0


@syscall("mlock", "hex", "size")
def sys_mlock(p, t, addr: int, length: int) -> int:
    return 0


@syscall("munlock", "hex", "size")
def sys_munlock(p, t, addr: int, length: int) -> int:
    return 0


@syscall("mincore", "hex", "size", "ptr")
def sys_mincore(p, t, addr: int, length: int, vec: int) -> int:
    if addr & PAGE_MASK:
        raise Errno(EINVAL)
    pages = page_align_up(length) >> 12
    if not p.mem.is_mapped(addr, max(length, 1)):
        raise Errno(ENOMEM)
    p.mem.write(vec, b"\x01" * pages)
    return 0
