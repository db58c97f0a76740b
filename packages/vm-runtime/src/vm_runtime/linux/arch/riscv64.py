"""riscv64 Linux: a7 holds the syscall number, a0..a5 the arguments, a0 the result; the
signal frame is struct rt_sigframe of arch/riscv/kernel/signal.c (siginfo, then ucontext
with the integer registers and the D-extension state)."""

from __future__ import annotations

import struct

from vm_frontend_riscv.frontend import RiscvFrontend

from ..syscalls.numbers import RISCV64 as NUMBERS
from . import LinuxArch, pack_generic_stat

M64 = (1 << 64) - 1

SIGINFO_SIZE = 128
UC_OFFSET = SIGINFO_SIZE
UC_STACK = 16  # stack_t within ucontext
UC_SIGMASK = 40
UC_MCONTEXT = 176  # 16-aligned after the 128-byte sigmask area
GREGS_SIZE = 32 * 8
FPSTATE_SIZE = 528  # union __riscv_fp_state (its largest member, the Q state)
FRAME_SIZE = UC_OFFSET + UC_MCONTEXT + GREGS_SIZE + FPSTATE_SIZE

# hwcap: one bit per single-letter extension, bit (letter - 'a')
HWCAP = sum(1 << (ord(c) - ord("a")) for c in "imafdc")


def _args(st) -> tuple[int, ...]:
    x = st.x
    return (x[10], x[11], x[12], x[13], x[14], x[15])


def _set_result(st, value: int) -> None:
    st.x[10] = value & M64


def _set_sp(st, value: int) -> None:
    st.x[2] = value & M64


def _set_tls(st, value: int) -> None:
    st.x[4] = value & M64


def setup_frame(mem, state, signo: int, siginfo: bytes, handler: int, restorer: int,
                sigmask: int, altstack: tuple[int, int, int], sp: int) -> None:
    """Push an rt_sigframe at ``sp`` and enter ``handler(signo, &info, &uc)``."""
    frame = (sp - FRAME_SIZE) & ~15
    uc = frame + UC_OFFSET
    ss_sp, ss_flags, ss_size = altstack
    header = struct.pack("<QQQiIQQ", 0, 0, ss_sp, ss_flags, 0, ss_size, sigmask)
    gregs = [state.pc] + [state.x[i] for i in range(1, 32)]
    fp = struct.pack("<32QI", *state.f, (state.frm << 5) | state.fflags)
    mem.write(frame, siginfo.ljust(SIGINFO_SIZE, b"\0"))
    mem.write(uc, header.ljust(UC_MCONTEXT, b"\0"))
    mem.write(uc + UC_MCONTEXT, struct.pack("<32Q", *gregs) + fp.ljust(FPSTATE_SIZE, b"\0"))
    state.x[10] = signo
    state.x[11] = frame
    state.x[12] = uc
    state.x[1] = restorer
    state.x[2] = frame
    state.pc = handler


def restore_frame(mem, state) -> tuple[int, tuple[int, int, int]]:
    """rt_sigreturn: restore the registers saved at sp; give the saved mask and altstack."""
    frame = state.x[2]
    uc = frame + UC_OFFSET
    _flags, _link, ss_sp, ss_flags, _pad, ss_size, sigmask = struct.unpack(
        "<QQQiIQQ", mem.read(uc, 48))
    regs = struct.unpack("<32Q", mem.read(uc + UC_MCONTEXT, GREGS_SIZE))
    fp = struct.unpack("<32QI", mem.read(uc + UC_MCONTEXT + GREGS_SIZE, 260))
    state.pc = regs[0]
    for i in range(1, 32):
        state.x[i] = regs[i]
    for i in range(32):
        state.f[i] = fp[i]
    state.fflags = fp[32] & 0x1F
    state.frm = (fp[32] >> 5) & 7
    return sigmask, (ss_sp, ss_flags, ss_size)


RISCV64 = LinuxArch(
    name="riscv64",
    make_frontend=RiscvFrontend,
    numbers=NUMBERS,
    address_space_size=1 << 38,
    stack_top=0x3FFFFFF000,
    mmap_top=0x3FF7000000,
    pie_base=0x2AAAAAA000,
    hwcap=HWCAP,
    pack_stat=pack_generic_stat,
    syscall_number=lambda st: st.x[17],
    syscall_args=_args,
    set_syscall_result=_set_result,
    syscall_insn_size=4,
    get_sp=lambda st: st.x[2],
    set_sp=_set_sp,
    set_tls=_set_tls,
    set_return_value=_set_result,
    setup_frame=setup_frame,
    restore_frame=restore_frame,
    # li a7, 139 (rt_sigreturn); ecall
    sigreturn_code=struct.pack("<II", 0x08B00893, 0x00000073),
    uname_machine="riscv64",
)
