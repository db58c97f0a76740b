"""System calls of the KVM backend through ctypes: ioctl, mmap and munmap of libc.

Functions of a `ctypes.CDLL` release the GIL for the duration of the call, so a
`KVM_RUN` on one thread lets other Python threads (and other vCPUs) run.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import mmap
import os
import weakref
from types import TracebackType
from typing import Self

from vm_accel.kvm.errors import KvmError, KvmIoctlError
from vm_accel.kvm.uapi import KVM_CHECK_EXTENSION, REQUEST_NAMES


class _Libc:
    """libc's ioctl, mmap and munmap, loaded on first use (importing stays possible on
    hosts without them, so that `probe` can say what is missing)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.ioctl = libc.ioctl
        self.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
        self.ioctl.restype = ctypes.c_int
        self.mmap = libc.mmap
        self.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        self.mmap.restype = ctypes.c_void_p
        self.munmap = libc.munmap
        self.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.munmap.restype = ctypes.c_int


@functools.cache
def _libc() -> _Libc:
    return _Libc()


_MAP_FAILED = ctypes.c_void_p(-1).value


def request_name(request: int) -> str:
    """The KVM_* name of an ioctl request number, or its hex value."""
    return REQUEST_NAMES.get(request, f"ioctl {request:#x}")


def ioctl(fd: int, request: int, arg: ctypes._CData | int | None = None) -> int:
    """Issue `request` on `fd`; `arg` is a ctypes object (passed by address) or an int.

    Returns the ioctl's non-negative result; raises `KvmIoctlError` (an OSError)
    naming the request and carrying errno on failure.
    """
    if arg is None:
        value: int = 0
    elif isinstance(arg, int):
        value = arg
    else:
        value = ctypes.addressof(arg)
    result: int = _libc().ioctl(fd, request, value)
    if result < 0:
        raise KvmIoctlError(request_name(request), ctypes.get_errno())
    return result


def try_ioctl(fd: int, request: int, arg: ctypes._CData | int | None = None) -> tuple[int, int]:
    """Like `ioctl`, but return ``(result, errno)`` instead of raising (errno 0 on success)."""
    value = 0 if arg is None else arg if isinstance(arg, int) else ctypes.addressof(arg)
    result: int = _libc().ioctl(fd, request, value)
    return (result, ctypes.get_errno()) if result < 0 else (result, 0)


def map_shared(fd: int, size: int) -> int:
    """mmap `size` bytes of `fd` at offset 0, shared and read-write; return the address."""
    addr = _libc().mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, 0)
    if addr is None or addr == _MAP_FAILED:
        raise KvmIoctlError("mmap of the vCPU run area", ctypes.get_errno())
    return int(addr)


def unmap(addr: int, size: int) -> None:
    """munmap a mapping made by `map_shared`."""
    if _libc().munmap(addr, size) < 0:
        raise KvmIoctlError("munmap of the vCPU run area", ctypes.get_errno())


def above(fd: int, floor: int) -> int:
    """``fd`` renumbered to the lowest free number at or above ``floor`` (close-on-exec), or
    ``fd`` itself when it is there already or nothing is free up there."""
    if fd >= floor:
        return fd
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    except OSError:
        return fd
    os.close(fd)
    return high


class KvmDescriptor:
    """An open KVM file descriptor (/dev/kvm or a VM), closed by `close()`, by leaving a
    ``with`` block, or when the object is collected, whichever comes first."""

    _closed_fix = "create a new one"

    def _own(self, fd: int) -> None:
        self._fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)

    @property
    def fd(self) -> int:
        """The descriptor, for ioctls (a `KvmError` once closed)."""
        if not self._finalizer.alive:
            raise KvmError(f"this {type(self).__name__} is closed", self._closed_fix)
        return self._fd

    @property
    def closed(self) -> bool:
        """Whether `close()` has released the descriptor."""
        return not self._finalizer.alive

    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION here: 0 when `cap` (a KVM_CAP_* number) is absent."""
        return ioctl(self.fd, KVM_CHECK_EXTENSION, cap)

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
