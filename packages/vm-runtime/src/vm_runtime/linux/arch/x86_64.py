"""x86_64 Linux: rax holds the syscall number, rdi, rsi, rdx, r10, r8, r9 the arguments, rax
the result; `syscall` is two bytes and clobbers rcx and r11. The signal frame is struct
rt_sigframe of arch/x86/kernel/signal_64.c: the return address (sa_restorer), struct ucontext
with struct sigcontext (asm/sigcontext.h) and the signal mask, the siginfo, and the FPU state
that sigcontext.fpstate points to: the thread's XSAVE image (standard format, its first 512
bytes the FXSAVE image), with Linux's ``_fpx_sw_bytes`` in the FXSAVE image's software bytes
and FP_XSTATE_MAGIC2 after it (uc_flags UC_FP_XSTATE); or, without XSAVE, the FXSAVE image
alone.

There is no x86 interpreter: x86_64 programs run under KVM (``vm_runtime.linux.kvm``), and the
CPU state below is what the accelerator engine loads into and reads back from the vCPU. Its
FPU/SSE state lives in the vCPU; ``fpu_read``/``fpu_write`` reach it through the engine.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from ..syscalls.numbers import X86_64 as NUMBERS
from . import LinuxArch, pack_x86_64_stat

M64 = (1 << 64) - 1

GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")

USER_CS, USER_DS = 0x33, 0x2B  # the selectors Linux gives 64-bit user code
RFLAGS_FIXED = 1 << 1
#: what sigreturn takes from the frame (arch/x86/kernel/signal.c FIX_EFLAGS)
FIX_EFLAGS = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000
#: cleared on entry to a handler: DF, RF, TF
HANDLER_CLEARS = 0x400 | 0x10000 | 0x100
UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS = 0x1, 0x2, 0x4

# an FXSAVE image in its initial state (x87 control word 0x37f, MXCSR 0x1f80): what a signal
# handler starts with (the kernel's fpu__clear_user_states)
FXSAVE_SIZE = 512
INIT_FXSAVE = struct.pack("<HH", 0x37F, 0).ljust(24, b"\0") + struct.pack("<II", 0x1F80, 0xFFFF) \
    + bytes(FXSAVE_SIZE - 32)
MXCSR_MASK = 0xFFFF
# struct _fpx_sw_bytes, in bytes 464..511 of the FXSAVE image: magic1, extended_size,
# xfeatures, xstate_size (asm/sigcontext.h); FP_XSTATE_MAGIC2 follows the XSAVE image
_SW_BYTES = struct.Struct("<IIQI")
SW_BYTES_OFFSET = 464
FP_XSTATE_MAGIC1, FP_XSTATE_MAGIC2 = 0x46505853, 0x46505845
XSAVE_HEADER = 512  # XSTATE_BV, XCOMP_BV, then 48 reserved bytes
XSAVE_MIN = 576

# struct rt_sigframe: pretcode (8), struct ucontext (304), struct siginfo (128)
UC_OFFSET = 8
UC_STACK = 16  # within ucontext: ss_sp, ss_flags (int + pad), ss_size
UC_MCONTEXT = 40  # struct sigcontext, 256 bytes
SIGCONTEXT_SIZE = 256
UC_SIGMASK = UC_MCONTEXT + SIGCONTEXT_SIZE  # 296
INFO_OFFSET = UC_OFFSET + UC_SIGMASK + 8  # 312
FRAME_SIZE = INFO_OFFSET + 128  # 440
REDZONE = 128
# sigcontext: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags, cs, gs, fs, ss,
# err, trapno, oldmask, cr2, fpstate, reserved1[8]
_SIGCONTEXT = struct.Struct("<18QHHHHQQQQQ64x")
_SC_ORDER = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp", "rbx",
             "rdx", "rax", "rcx", "rsp")
_UC_HEAD = struct.Struct("<QQQiIQ")  # uc_flags, uc_link, ss_sp, ss_flags, pad, ss_size

HWCAP = 0x178BFBFF  # what Linux reports in AT_HWCAP on x86_64: CPUID.1:EDX of a modern CPU


class X86State:
    """An x86_64 thread's registers while it is outside the vCPU (a syscall, a fault)."""

    __slots__ = (*GPRS, "pc", "rflags", "fs_base", "gs_base", "trapno", "err", "cr2",
                 "fpu_read", "fpu_write", "xfeatures", "vcpu", "inherit_xsave", "fs_dirty")

    def __init__(self) -> None:
        for name in GPRS:
            setattr(self, name, 0)
        self.pc = 0
        self.rflags = RFLAGS_FIXED
        self.fs_base = 0
        self.gs_base = 0
        #: the last exception: vector, error code, faulting address (for sigcontext)
        self.trapno = 0
        self.err = 0
        self.cr2 = 0
        #: set by the engine: read and write the FPU state of this thread's vCPU, the XSAVE
        #: image of ``xfeatures`` (XCR0), or with none the 512-byte FXSAVE image (``fpu_write``
        #: also takes a bare FXSAVE image: the other features then start afresh)
        self.fpu_read: Callable[[], bytes] | None = None
        self.fpu_write: Callable[[bytes], None] | None = None
        self.xfeatures = 0
        #: the engine's per-thread vCPU (None until the thread first runs)
        self.vcpu: Any = None
        #: a new thread starts with its parent's FPU state (the engine's full XSAVE image)
        self.inherit_xsave: bytes | None = None
        #: fs_base or gs_base changed in Python: the engine writes the segment registers
        self.fs_dirty = True

    def copy(self) -> X86State:
        """The registers of a new thread (clone): the vCPU is not shared."""
        new = X86State()
        for name in (*GPRS, "pc", "rflags", "fs_base", "gs_base"):
            setattr(new, name, getattr(self, name))
        if self.vcpu is not None and self.fpu_read is not None:
            new.inherit_xsave = self.vcpu.xsave_image()
        return new


def _args(st: X86State) -> tuple[int, ...]:
    if st.rax == 56:  # clone(flags, stack, parent_tid, child_tid, tls): the generic order
        return (st.rdi, st.rsi, st.rdx, st.r8, st.r10, st.r9)  # is (.., parent_tid, tls, child_tid)
    return (st.rdi, st.rsi, st.rdx, st.r10, st.r8, st.r9)


def _set_result(st: X86State, value: int) -> None:
    st.rax = value & M64


def _set_sp(st: X86State, value: int) -> None:
    st.rsp = value & M64


def _set_tls(st: X86State, value: int) -> None:
    st.fs_base = value & M64
    st.fs_dirty = True


def _fpu_image(state: X86State) -> bytes:
    if state.fpu_read is None:
        return INIT_FXSAVE
    return bytes(state.fpu_read())


def setup_frame(mem, state: X86State, signo: int, siginfo: bytes, handler: int, restorer: int,
                sigmask: int, uc_stack: tuple[int, int, int], sp: int) -> None:
    """Push an rt_sigframe below ``sp`` (and the red zone when still on the interrupted
    stack) with the FPU state below it, and enter ``handler(signo, &info, &uc)`` returning to
    ``restorer`` (get_sigframe and x64_setup_rt_frame)."""
    if sp == state.rsp:
        sp -= REDZONE
    image = bytearray(_fpu_image(state))
    uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
    if state.xfeatures and len(image) >= XSAVE_MIN:  # copy_fpstate_to_sigframe
        _SW_BYTES.pack_into(image, SW_BYTES_OFFSET, FP_XSTATE_MAGIC1, len(image) + 4,
                            state.xfeatures, len(image))
        image += struct.pack("<I", FP_XSTATE_MAGIC2)
        uc_flags |= UC_FP_XSTATE
    fp = (sp - len(image)) & ~63
    frame = ((fp - FRAME_SIZE) & ~15) - 8
    ss_sp, ss_flags, ss_size = uc_stack
    regs = [getattr(state, n) for n in _SC_ORDER]
    sc = _SIGCONTEXT.pack(*regs, state.pc, state.rflags, USER_CS, 0, 0, USER_DS, state.err,
                          state.trapno, sigmask & 0xFFFFFFFFFFFFFFFF, state.cr2, fp)
    head = _UC_HEAD.pack(uc_flags, 0, ss_sp, ss_flags, 0, ss_size)
    body = (struct.pack("<Q", restorer & M64) + head + sc + struct.pack("<Q", sigmask)
            + bytes(siginfo[:128]).ljust(128, b"\0"))
    assert len(body) == FRAME_SIZE
    mem.write(fp, bytes(image))
    mem.write(frame, body)
    if state.fpu_write is not None:  # the handler starts afresh (fpu__clear_user_states)
        state.fpu_write(INIT_FXSAVE)
    state.rdi = signo
    state.rsi = frame + INFO_OFFSET
    state.rdx = frame + UC_OFFSET
    state.rax = 0
    state.rsp = frame
    state.pc = handler & M64
    state.rflags &= ~HANDLER_CLEARS & M64
    state.trapno = state.err = state.cr2 = 0


def restore_frame(mem, state: X86State) -> tuple[int, tuple[int, int, int]]:
    """rt_sigreturn: the frame's ucontext is at rsp (the handler's `ret` popped pretcode)."""
    uc = state.rsp
    data = mem.read(uc, UC_SIGMASK + 8)
    _flags, _link, ss_sp, ss_flags, _pad, ss_size = _UC_HEAD.unpack_from(data)
    values = _SIGCONTEXT.unpack_from(data, UC_MCONTEXT)
    (sigmask,) = struct.unpack_from("<Q", data, UC_SIGMASK)
    fpstate = values[26]
    image = None
    if fpstate:
        image = _frame_fpstate(mem, fpstate, state.xfeatures)
        (mxcsr,) = struct.unpack_from("<I", image, 24)
        if mxcsr & ~MXCSR_MASK:
            raise ValueError("sigreturn: reserved MXCSR bits set")
    for name, value in zip(_SC_ORDER, values[:16], strict=True):
        setattr(state, name, value)
    state.pc = values[16]
    state.rflags = (state.rflags & ~FIX_EFLAGS) | (values[17] & FIX_EFLAGS)
    if state.fpu_write is not None:
        state.fpu_write(image if image is not None else INIT_FXSAVE)
    return sigmask, (ss_sp, ss_flags, ss_size)


def _frame_fpstate(mem, fpstate: int, xfeatures: int) -> bytes:
    """The FPU state a frame holds (fpu__restore_sig): its XSAVE image where the software
    bytes and FP_XSTATE_MAGIC2 say there is one of the thread's features (a bad header is
    a failed sigreturn), else its FXSAVE image alone."""
    legacy = mem.read(fpstate, FXSAVE_SIZE)
    magic1, extended, _features, size = _SW_BYTES.unpack_from(legacy, SW_BYTES_OFFSET)
    if not xfeatures or magic1 != FP_XSTATE_MAGIC1 or size < XSAVE_MIN \
            or extended != size + 4 or size > 4096:
        return legacy
    tail = mem.read(fpstate + size, 4)
    if struct.unpack("<I", tail)[0] != FP_XSTATE_MAGIC2:
        return legacy
    image = bytearray(mem.read(fpstate, size))
    xstate_bv, xcomp_bv = struct.unpack_from("<QQ", image, XSAVE_HEADER)
    if xcomp_bv or any(image[XSAVE_HEADER + 16:XSAVE_MIN]):
        raise ValueError("sigreturn: a bad XSAVE header")
    struct.pack_into("<Q", image, XSAVE_HEADER, xstate_bv & xfeatures)
    return bytes(image)


SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV = 4, 5, 7, 8, 11
SI_KERNEL, ILL_ILLOPN, BUS_ADRALN, TRAP_TRACE = 0x80, 2, 1, 2
SEGV_MAPERR, SEGV_ACCERR = 1, 2
FPE_INTDIV, FPE_FLTDIV, FPE_FLTOVF, FPE_FLTUND, FPE_FLTRES, FPE_FLTINV = 1, 3, 4, 5, 6, 7


def trap_signal(trap: Any, state: X86State, mem: Any) -> tuple[int, int, int] | None:
    """The signal Linux sends for each x86 exception (arch/x86/kernel/traps.c and
    fault.c); ``state.trapno`` is the vector the engine saw."""
    vector = state.trapno
    pc = trap.pc
    if vector == 14:  # #PF: si_addr is CR2; ACCERR where something is mapped
        addr = trap.addr if trap.addr is not None else state.cr2
        mapped = 0 <= addr < mem.size and mem.is_mapped(addr, 1)
        return SIGSEGV, SEGV_ACCERR if mapped else SEGV_MAPERR, addr
    if vector == 0:
        return SIGFPE, FPE_INTDIV, pc
    if vector == 6:
        return SIGILL, ILL_ILLOPN, pc
    if vector == 3:  # int3: rip is after it
        return SIGTRAP, SI_KERNEL, 0
    if vector == 1:
        return SIGTRAP, TRAP_TRACE, pc
    if vector in (4, 5, 10, 13):  # #OF, #BR, #TS, #GP (also an in/out of the guest's own)
        return SIGSEGV, SI_KERNEL, 0
    if vector in (11, 12):  # #NP, #SS
        return SIGBUS, SI_KERNEL, 0
    if vector == 17:
        return SIGBUS, BUS_ADRALN, 0
    if vector in (16, 19):  # x87 and SIMD floating-point exceptions (fpu__exception_code)
        image = _fpu_image(state)
        if vector == 19:
            (mxcsr,) = struct.unpack_from("<I", image, 24)
            err = ~(mxcsr >> 7) & mxcsr
        else:
            cwd, swd = struct.unpack_from("<HH", image, 0)
            err = swd & ~cwd
        for bit, code in ((0x001, FPE_FLTINV), (0x004, FPE_FLTDIV), (0x008, FPE_FLTOVF),
                          (0x012, FPE_FLTUND), (0x020, FPE_FLTRES)):
            if err & bit:
                return SIGFPE, code, pc
        return SIGFPE, 0, pc
    return None


def rewind_syscall(state: X86State, nr: int, arg0: int) -> None:
    """Run the `syscall` again: rip back over it, rax = nr (the kernel's orig_ax)."""
    state.pc = (state.pc - 2) & M64
    state.rax = nr & M64
    state.rdi = arg0 & M64


def _no_frontend() -> Any:
    from vm_core import VmError

    raise VmError("there is no x86_64 emulator: x86_64 programs run only under KVM",
                  "run with --accel kvm on a Linux host with /dev/kvm")


# `syscall` with rax = 15 (rt_sigreturn): mov $15,%eax; syscall
SIGRETURN_CODE = bytes.fromhex("b80f000000" "0f05")

X86_64 = LinuxArch(
    name="x86_64",
    make_frontend=_no_frontend,
    numbers=NUMBERS,
    address_space_size=1 << 34,
    stack_top=0x3FFFFF000,
    mmap_top=0x3F7000000,
    pie_base=0x2AAAAA000,
    hwcap=HWCAP,
    pack_stat=pack_x86_64_stat,
    syscall_number=lambda st: st.rax,
    syscall_args=_args,
    set_syscall_result=_set_result,
    syscall_insn_size=2,
    get_sp=lambda st: st.rsp,
    set_sp=_set_sp,
    set_tls=_set_tls,
    set_return_value=_set_result,
    setup_frame=setup_frame,
    restore_frame=restore_frame,
    sigreturn_code=SIGRETURN_CODE,
    uname_machine="x86_64",
    has_sa_restorer=True,
    sigframe_size=FRAME_SIZE + FXSAVE_SIZE + REDZONE + 64,
    rewind_syscall=rewind_syscall,
    state_class=X86State,
    trap_signal=trap_signal,
)
