"""Per-architecture facts of the Linux user ABI: syscall registers, struct layouts, the
signal frame, the address-space layout. Everything else in vm_runtime.linux is shared."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# struct stat of the generic ABI (riscv64, aarch64): 128 bytes
GENERIC_STAT = struct.Struct("<QQIIIIQQqiiqqQqQqQII")
# x86_64's struct stat: 144 bytes
X86_64_STAT = struct.Struct("<QQQIIIiQqqqqQqQqQqqq")


def pack_generic_stat(st: Any) -> bytes:
    return GENERIC_STAT.pack(
        st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid, st.st_rdev, 0,
        st.st_size, st.st_blksize, 0, st.st_blocks,
        int(st.st_atime), st.st_atime_ns % 10**9, int(st.st_mtime), st.st_mtime_ns % 10**9,
        int(st.st_ctime), st.st_ctime_ns % 10**9, 0, 0)


def pack_x86_64_stat(st: Any) -> bytes:
    return X86_64_STAT.pack(
        st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid, 0, st.st_rdev,
        st.st_size, st.st_blksize, st.st_blocks,
        int(st.st_atime), st.st_atime_ns % 10**9, int(st.st_mtime), st.st_mtime_ns % 10**9,
        int(st.st_ctime), st.st_ctime_ns % 10**9, 0, 0, 0)


@dataclass(frozen=True)
class LinuxArch:
    """What differs between architectures under Linux user mode."""

    name: str
    make_frontend: Callable[[], Any]
    numbers: dict[int, str]
    address_space_size: int
    stack_top: int
    mmap_top: int
    pie_base: int
    hwcap: int
    pack_stat: Callable[[Any], bytes]
    #: state accessors
    syscall_number: Callable[[Any], int]
    syscall_args: Callable[[Any], tuple[int, ...]]
    set_syscall_result: Callable[[Any, int], None]
    syscall_insn_size: int
    get_sp: Callable[[Any], int]
    set_sp: Callable[[Any], int]
    set_tls: Callable[[Any, int], None]
    set_return_value: Callable[[Any, int], None]
    #: signal frames: (process, thread, signo, siginfo bytes, handler, flags, restorer)
    setup_frame: Callable[..., None]
    restore_frame: Callable[..., None]
    #: code of the sigreturn trampoline the kernel would provide (the vDSO's)
    sigreturn_code: bytes
    uname_machine: str


def arch_named(name: str) -> LinuxArch:
    if name == "riscv64":
        from .riscv64 import RISCV64

        return RISCV64
    raise KeyError(name)
