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
        st.st_atime_ns // 10**9, st.st_atime_ns % 10**9, st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9,
        st.st_ctime_ns // 10**9, st.st_ctime_ns % 10**9, 0, 0)


def pack_x86_64_stat(st: Any) -> bytes:
    return X86_64_STAT.pack(
        st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid, 0, st.st_rdev,
        st.st_size, st.st_blksize, st.st_blocks,
        st.st_atime_ns // 10**9, st.st_atime_ns % 10**9, st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9,
        st.st_ctime_ns // 10**9, st.st_ctime_ns % 10**9, 0, 0, 0)


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
    #: signal frames. ``setup_frame(mem, state, signo, siginfo, handler, restorer, sigmask,
    #: uc_stack, sp)`` writes the kernel's rt_sigframe below ``sp`` (siginfo: 128 bytes;
    #: uc_stack: (ss_sp, ss_flags, ss_size)) and enters the handler; it writes memory before
    #: it changes any register, and a guest memory error means the frame could not be written.
    #: ``restore_frame(mem, state)`` is rt_sigreturn: it restores the registers from the frame
    #: at the stack pointer and gives (sigmask, uc_stack); it raises on a bad frame.
    setup_frame: Callable[..., None]
    restore_frame: Callable[..., tuple[int, tuple[int, int, int]]]
    #: code of the sigreturn trampoline the kernel would provide (the vDSO's)
    sigreturn_code: bytes
    uname_machine: str
    #: struct sigaction has sa_restorer, and a handler with SA_RESTORER returns through it
    #: (aarch64, x86_64); without it (riscv64) handlers return through the vDSO trampoline
    has_sa_restorer: bool = True
    #: bytes the signal frame takes below the stack pointer (the kernel's frame size)
    sigframe_size: int = 1024
    #: ``rewind_syscall(state, nr, arg0)``: make the syscall instruction just executed run
    #: again as syscall ``nr`` with first argument ``arg0`` (the kernel's syscall restart);
    #: None: pc back by ``syscall_insn_size``, the number register kept, arg0 written back
    #: through ``set_syscall_result`` (right where the result register is the first argument)
    rewind_syscall: Callable[[Any, int, int], None] | None = None
    #: the CPU state class of an architecture that runs under an accelerator (x86_64 under
    #: KVM) instead of an emulation engine built from ``make_frontend``'s state layout
    state_class: type | None = None
    #: ``trap_signal(trap, state, mem)``: the (signo, si_code, si_addr) a fault trap becomes
    #: on this architecture, or None for the generic choice (``Process.handle_trap``)
    trap_signal: Callable[[Any, Any, Any], tuple[int, int, int] | None] | None = None


def arch_named(name: str) -> LinuxArch:
    if name == "riscv64":
        from .riscv64 import RISCV64

        return RISCV64
    if name == "x86_64":
        from .x86_64 import X86_64

        return X86_64
    raise KeyError(name)
