"""The host kernel, called directly: raw Linux syscalls through libc's ``syscall()``.

Guest file descriptors are host file descriptors, and most structures the guest passes
(``struct statx``, ``linux_dirent64``, ``struct flock``, ``sockaddr``, ``termios``, ``pollfd``,
``timespec``) have one layout on every 64-bit Linux architecture. For those a syscall is
passed through: its guest buffers are copied into host buffers, the host kernel does the
work, and what it wrote is copied back. That keeps the kernel's own semantics (flags,
error precedence, d_off and d_type, close-on-exec as the guest asked for it) without
re-implementing them, unlike Python's ``os`` functions, which add O_CLOEXEC to every new
descriptor.

This is the Linux host layer of user-mode emulation; a macOS or Windows host would need a
different one.
"""

from __future__ import annotations

import ctypes
import os

from .numbers import TABLES, numbers_by_name

_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64",
             "riscv64": "riscv64"}
HOST_ARCH = _MACHINES.get(os.uname().machine.lower(), "x86_64")
HOST_NUMBERS: dict[str, int] = numbers_by_name(TABLES[HOST_ARCH])

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

Arg = int | bytes | None | ctypes.Array | ctypes._SimpleCData  # type: ignore[name-defined]


def _c(arg: Arg) -> object:
    if arg is None:
        return ctypes.c_void_p(0)
    if isinstance(arg, int):
        arg &= (1 << 64) - 1
        return ctypes.c_long(arg - (1 << 64) if arg >> 63 else arg)
    if isinstance(arg, bytes):
        return ctypes.c_char_p(arg)
    if isinstance(arg, ctypes.Array):
        return arg  # passed as a pointer to its first element
    return ctypes.byref(arg)


def syscall(name: str, *args: Arg) -> int:
    """Call the host's syscall ``name``; raise OSError on failure (EINTR included)."""
    nr = HOST_NUMBERS[name]
    result = _syscall(ctypes.c_long(nr), *[_c(a) for a in args])
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def buffer(size: int, init: bytes = b"") -> ctypes.Array:
    """A zeroed host buffer of ``size`` bytes (at least one), starting with ``init``."""
    buf = ctypes.create_string_buffer(max(size, 1))
    if init:
        ctypes.memmove(buf, init, min(len(init), size))
    return buf


def address(buf: ctypes.Array) -> int:
    return ctypes.addressof(buf)


def raw(buf: ctypes.Array, size: int | None = None) -> bytes:
    return buf.raw if size is None else buf.raw[:size]


__all__ = ["HOST_ARCH", "address", "buffer", "raw", "syscall"]
