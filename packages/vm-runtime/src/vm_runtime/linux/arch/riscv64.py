"""riscv64 Linux: a7 holds the syscall number, a0..a5 the arguments, a0 the result; the
signal frame is struct rt_sigframe of arch/riscv/kernel/signal.c (siginfo, then ucontext
with the integer registers and the D-extension state)."""

from __future__ import annotations

import struct

from vm_frontend_riscv.frontend import RiscvFrontend

from ..syscalls.numbers import RISCV64 as NUMBERS
from . import LinuxArch, pack_generic_stat

M64 = (1 << 64) - 1

# struct rt_sigframe (arch/riscv/kernel/signal.c): siginfo, then struct ucontext
# (arch/riscv/include/uapi/asm/ucontext.h):
#   0 uc_flags, 8 uc_link, 16 uc_stack (ss_sp, ss_flags, ss_size), 40 uc_sigmask (8 bytes),
#   48 __unused[120], 176 uc_mcontext (16-aligned struct sigcontext):
#     sc_regs: pc, x1..x31 (struct user_regs_struct, 256 bytes);
#     sc_fpregs: union __riscv_fp_state (528 bytes: the Q state's size), of which the kernel
#       writes the D state (f0..f31 as 64-bit values, then fcsr) and zeroes the rest; the
#       last 12 bytes (q.reserved / sc_extdesc.reserved and the end header) must be zero on
#       sigreturn.
SIGINFO_SIZE = 128
UC_OFFSET = SIGINFO_SIZE
UC_STACK = 16
UC_SIGMASK = 40
UC_MCONTEXT = 176
GREGS_SIZE = 32 * 8
FPSTATE_SIZE = 528
FP_D_SIZE = 32 * 8 + 4
FP_RESERVED = GREGS_SIZE + 516  # within sigcontext: the words that must be zero
FRAME_SIZE = UC_OFFSET + UC_MCONTEXT + GREGS_SIZE + FPSTATE_SIZE  # 1088, a multiple of 16
_UC_HEAD = struct.Struct("<QQQiIQQ")  # flags, link, ss_sp, ss_flags, pad, ss_size, sigmask

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
                sigmask: int, uc_stack: tuple[int, int, int], sp: int) -> None:
    """Push an rt_sigframe below ``sp`` and enter ``handler(signo, &info, &uc)`` with ra at
    ``restorer``, as setup_rt_frame does (every register the handler does not get keeps its
    value, so a handler sees the interrupted code's gp, tp and FP state)."""
    frame = (sp - FRAME_SIZE) & ~15
    uc = frame + UC_OFFSET
    ss_sp, ss_flags, ss_size = uc_stack
    x = state.x
    head = _UC_HEAD.pack(0, 0, ss_sp, ss_flags, 0, ss_size, sigmask)
    gregs = struct.pack("<32Q", state.pc, *x[1:32])
    fcsr = ((state.frm & 7) << 5) | (state.fflags & 0x1F)
    fp = struct.pack("<32QI", *state.f, fcsr)
    mem.write(frame, bytes(siginfo[:SIGINFO_SIZE]).ljust(SIGINFO_SIZE, b"\0")
              + head.ljust(UC_MCONTEXT, b"\0") + gregs + fp.ljust(FPSTATE_SIZE, b"\0"))
    x[10] = signo
    x[11] = frame
    x[12] = uc
    x[1] = restorer & M64
    x[2] = frame
    state.pc = handler & M64


def restore_frame(mem, state) -> tuple[int, tuple[int, int, int]]:
    """rt_sigreturn: restore the registers from the frame at sp; give the saved mask and
    uc_stack. A frame that cannot be read, or whose reserved FP words are not zero, raises
    ValueError or a guest memory error (the kernel's badframe) and changes nothing."""
    frame = state.x[2]
    uc = frame + UC_OFFSET
    data = mem.read(uc, UC_MCONTEXT + GREGS_SIZE + FPSTATE_SIZE)
    _flags, _link, ss_sp, ss_flags, _pad, ss_size, sigmask = _UC_HEAD.unpack_from(data)
    regs = struct.unpack_from("<32Q", data, UC_MCONTEXT)
    fp = struct.unpack_from("<32QI", data, UC_MCONTEXT + GREGS_SIZE)
    if any(data[UC_MCONTEXT + FP_RESERVED:UC_MCONTEXT + GREGS_SIZE + FPSTATE_SIZE]):
        raise ValueError("sigreturn: reserved words of the FP state are not zero")
    state.pc = regs[0]
    x = state.x
    for i in range(1, 32):
        x[i] = regs[i]
    f = state.f
    for i in range(32):
        f[i] = fp[i]
    state.fflags = fp[32] & 0x1F
    state.frm = (fp[32] >> 5) & 7
    return sigmask, (ss_sp, ss_flags, ss_size)


def rewind_syscall(state, nr: int, arg0: int) -> None:
    """Run the ecall again: pc back to it, a7 = nr, a0 = the original a0."""
    state.pc = (state.pc - 4) & M64
    state.x[17] = nr & M64
    state.x[10] = arg0 & M64


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
    has_sa_restorer=False,
    sigframe_size=FRAME_SIZE,
    rewind_syscall=rewind_syscall,
)
