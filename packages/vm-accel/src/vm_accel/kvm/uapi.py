"""The KVM user-space API for x86_64 as ctypes types, request numbers and constants.

Written by hand from the Linux UAPI headers <linux/kvm.h> and <asm/kvm.h>
(x86_64, API version 12): field names, order and widths follow the C structures,
so `ctypes.sizeof` of each type equals the C ``sizeof`` (the tests check the
sizes and offsets the headers imply). Only what vm-accel uses is declared.
Classes and the _IO* helpers keep the C names on purpose, so that they can be
looked up in the headers.
"""

from __future__ import annotations

import ctypes
from typing import ClassVar

u8 = ctypes.c_uint8
u16 = ctypes.c_uint16
u32 = ctypes.c_uint32
u64 = ctypes.c_uint64

# ---------------------------------------------------------------------------
# ioctl request numbers (<asm-generic/ioctl.h>: nr 8 bits, type 8, size 14, dir 2)
# ---------------------------------------------------------------------------

_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2


def _ioc(direction: int, kind: int, nr: int, size: int) -> int:
    assert 0 <= size < (1 << 14), size
    return (direction << 30) | (size << 16) | (kind << 8) | nr


def _IO(kind: int, nr: int) -> int:
    return _ioc(_IOC_NONE, kind, nr, 0)


def _IOR(kind: int, nr: int, size: int) -> int:
    return _ioc(_IOC_READ, kind, nr, size)


def _IOW(kind: int, nr: int, size: int) -> int:
    return _ioc(_IOC_WRITE, kind, nr, size)


def _IOWR(kind: int, nr: int, size: int) -> int:
    return _ioc(_IOC_READ | _IOC_WRITE, kind, nr, size)


KVMIO = 0xAE

# ---------------------------------------------------------------------------
# Structures of <asm/kvm.h> (x86_64)
# ---------------------------------------------------------------------------

GPR_NAMES = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    "rip", "rflags",
)  # fmt: skip


class kvm_regs(ctypes.Structure):
    """General-purpose registers (KVM_GET_REGS / KVM_SET_REGS), 144 bytes."""

    _fields_: ClassVar = [(name, u64) for name in GPR_NAMES]


class kvm_segment(ctypes.Structure):
    """A segment register with its hidden descriptor part, 24 bytes."""

    _fields_: ClassVar = [
        ("base", u64),
        ("limit", u32),
        ("selector", u16),
        ("type", u8),
        ("present", u8),
        ("dpl", u8),
        ("db", u8),
        ("s", u8),
        ("l", u8),
        ("g", u8),
        ("avl", u8),
        ("unusable", u8),
        ("padding", u8),
    ]


class kvm_dtable(ctypes.Structure):
    """A descriptor-table register (GDTR, IDTR), 16 bytes."""

    _fields_: ClassVar = [("base", u64), ("limit", u16), ("padding", u16 * 3)]


SEGMENT_NAMES = ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt")
CONTROL_NAMES = ("cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base")
KVM_NR_INTERRUPTS = 256


class kvm_sregs(ctypes.Structure):
    """Special registers (KVM_GET_SREGS / KVM_SET_SREGS), 312 bytes."""

    _fields_: ClassVar = [
        *[(name, kvm_segment) for name in SEGMENT_NAMES],
        ("gdt", kvm_dtable),
        ("idt", kvm_dtable),
        *[(name, u64) for name in CONTROL_NAMES],
        ("interrupt_bitmap", u64 * ((KVM_NR_INTERRUPTS + 63) // 64)),
    ]


class kvm_fpu(ctypes.Structure):
    """x87 and SSE state (KVM_GET_FPU / KVM_SET_FPU), 416 bytes."""

    _fields_: ClassVar = [
        ("fpr", (u8 * 16) * 8),
        ("fcw", u16),
        ("fsw", u16),
        ("ftwx", u8),
        ("pad1", u8),
        ("last_opcode", u16),
        ("last_ip", u64),
        ("last_dp", u64),
        ("xmm", (u8 * 16) * 16),
        ("mxcsr", u32),
        ("pad2", u32),
    ]


class kvm_msr_entry(ctypes.Structure):
    """One MSR: index and value, 16 bytes."""

    _fields_: ClassVar = [("index", u32), ("reserved", u32), ("data", u64)]


class kvm_msrs(ctypes.Structure):
    """Header of a variable-length MSR list: ``entries[nmsrs]`` follow (8 bytes)."""

    _fields_: ClassVar = [("nmsrs", u32), ("pad", u32)]


def msr_list_type(n: int) -> type[ctypes.Structure]:
    """A `kvm_msrs` with room for `n` entries."""

    class kvm_msrs_n(ctypes.Structure):
        _fields_: ClassVar = [("nmsrs", u32), ("pad", u32), ("entries", kvm_msr_entry * n)]

    return kvm_msrs_n


class kvm_msr_list(ctypes.Structure):
    """Header of KVM_GET_MSR_INDEX_LIST's answer: ``indices[nmsrs]`` (u32) follow."""

    _fields_: ClassVar = [("nmsrs", u32)]


class kvm_cpuid_entry2(ctypes.Structure):
    """One CPUID leaf/subleaf and its four result registers, 40 bytes."""

    _fields_: ClassVar = [
        ("function", u32),
        ("index", u32),
        ("flags", u32),
        ("eax", u32),
        ("ebx", u32),
        ("ecx", u32),
        ("edx", u32),
        ("padding", u32 * 3),
    ]


KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1  # sic, the header's spelling


class kvm_cpuid2(ctypes.Structure):
    """Header of a variable-length CPUID table: ``entries[nent]`` follow (8 bytes)."""

    _fields_: ClassVar = [("nent", u32), ("padding", u32)]


def cpuid_table_type(n: int) -> type[ctypes.Structure]:
    """A `kvm_cpuid2` with room for `n` entries."""

    class kvm_cpuid2_n(ctypes.Structure):
        _fields_: ClassVar = [("nent", u32), ("padding", u32), ("entries", kvm_cpuid_entry2 * n)]

    return kvm_cpuid2_n


# ---------------------------------------------------------------------------
# Structures of <linux/kvm.h>
# ---------------------------------------------------------------------------

KVM_MEM_LOG_DIRTY_PAGES = 1 << 0
KVM_MEM_READONLY = 1 << 1


class kvm_userspace_memory_region(ctypes.Structure):
    """A memory slot (KVM_SET_USER_MEMORY_REGION), 32 bytes."""

    _fields_: ClassVar = [
        ("slot", u32),
        ("flags", u32),
        ("guest_phys_addr", u64),
        ("memory_size", u64),
        ("userspace_addr", u64),
    ]


class kvm_dirty_log(ctypes.Structure):
    """KVM_GET_DIRTY_LOG's argument: the slot and a pointer to its bitmap, 16 bytes."""

    _fields_: ClassVar = [("slot", u32), ("padding1", u32), ("dirty_bitmap", u64)]


class _exit_hw(ctypes.Structure):
    _fields_: ClassVar = [("hardware_exit_reason", u64)]


class _exit_fail_entry(ctypes.Structure):
    _fields_: ClassVar = [("hardware_entry_failure_reason", u64), ("cpu", u32)]


class _exit_ex(ctypes.Structure):
    _fields_: ClassVar = [("exception", u32), ("error_code", u32)]


KVM_EXIT_IO_IN = 0
KVM_EXIT_IO_OUT = 1


class _exit_io(ctypes.Structure):
    _fields_: ClassVar = [
        ("direction", u8),
        ("size", u8),
        ("port", u16),
        ("count", u32),
        ("data_offset", u64),  # from the start of kvm_run
    ]


class _exit_debug(ctypes.Structure):
    """struct kvm_debug_exit_arch (x86)."""

    _fields_: ClassVar = [("exception", u32), ("pad", u32), ("pc", u64), ("dr6", u64), ("dr7", u64)]


class _exit_mmio(ctypes.Structure):
    _fields_: ClassVar = [("phys_addr", u64), ("data", u8 * 8), ("len", u32), ("is_write", u8)]


class _exit_hypercall(ctypes.Structure):
    _fields_: ClassVar = [
        ("nr", u64),
        ("args", u64 * 6),
        ("ret", u64),
        ("longmode", u32),
        ("pad", u32),
    ]


class _exit_internal(ctypes.Structure):
    _fields_: ClassVar = [("suberror", u32), ("ndata", u32), ("data", u64 * 16)]


class _exit_system_event(ctypes.Structure):
    _fields_: ClassVar = [("type", u32), ("ndata", u32), ("data", u64 * 16)]


class _exit_union(ctypes.Union):
    _fields_: ClassVar = [
        ("hw", _exit_hw),
        ("fail_entry", _exit_fail_entry),
        ("ex", _exit_ex),
        ("io", _exit_io),
        ("debug", _exit_debug),
        ("mmio", _exit_mmio),
        ("hypercall", _exit_hypercall),
        ("internal", _exit_internal),
        ("system_event", _exit_system_event),
        ("padding", ctypes.c_char * 256),
    ]


class kvm_run(ctypes.Structure):
    """The head of the shared vCPU run area (mmap of the vCPU fd at offset 0).

    The exit union sits at offset 32 and is 256 bytes; the synced-register area
    (``kvm_sync_regs``, KVM_CAP_SYNC_REGS) follows the two masks, at
    ``SYNC_REGS_OFFSET``; its first member is a ``kvm_regs``.
    """

    _anonymous_ = ("u",)
    _fields_: ClassVar = [
        ("request_interrupt_window", u8),
        ("immediate_exit", u8),
        ("padding1", u8 * 6),
        ("exit_reason", u32),
        ("ready_for_interrupt_injection", u8),
        ("if_flag", u8),
        ("flags", u16),
        ("cr8", u64),
        ("apic_base", u64),
        ("u", _exit_union),
        ("kvm_valid_regs", u64),
        ("kvm_dirty_regs", u64),
    ]


#: where ``kvm_run.s`` (the synced registers) starts in the run area
SYNC_REGS_OFFSET = 304
#: ``kvm_valid_regs`` / ``kvm_dirty_regs`` bit of the general-purpose registers (x86)
KVM_SYNC_X86_REGS = 1 << 0


# ---------------------------------------------------------------------------
# Exit reasons and sub-codes
# ---------------------------------------------------------------------------

KVM_EXIT_UNKNOWN = 0
KVM_EXIT_EXCEPTION = 1
KVM_EXIT_IO = 2
KVM_EXIT_HYPERCALL = 3
KVM_EXIT_DEBUG = 4
KVM_EXIT_HLT = 5
KVM_EXIT_MMIO = 6
KVM_EXIT_IRQ_WINDOW_OPEN = 7
KVM_EXIT_SHUTDOWN = 8
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_INTR = 10
KVM_EXIT_NMI = 16
KVM_EXIT_INTERNAL_ERROR = 17
KVM_EXIT_SYSTEM_EVENT = 24
KVM_EXIT_X86_RDMSR = 29
KVM_EXIT_X86_WRMSR = 30

EXIT_REASON_NAMES = {
    value: name
    for name, value in globals().items()
    if name.startswith("KVM_EXIT_") and not name.startswith("KVM_EXIT_IO_")
}
"""KVM_EXIT_* number -> its name, for messages."""

KVM_INTERNAL_ERROR_EMULATION = 1
KVM_INTERNAL_ERROR_SIMUL_EX = 2
KVM_INTERNAL_ERROR_DELIVERY_EV = 3
KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4

INTERNAL_ERROR_NAMES = {
    KVM_INTERNAL_ERROR_EMULATION: "instruction emulation failed",
    KVM_INTERNAL_ERROR_SIMUL_EX: "simultaneous exceptions",
    KVM_INTERNAL_ERROR_DELIVERY_EV: "exit while delivering an event",
    KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: "unexpected exit reason",
}

KVM_SYSTEM_EVENT_SHUTDOWN = 1
KVM_SYSTEM_EVENT_RESET = 2
KVM_SYSTEM_EVENT_CRASH = 3

# ---------------------------------------------------------------------------
# Capabilities (KVM_CHECK_EXTENSION)
# ---------------------------------------------------------------------------

KVM_CAP_IRQCHIP = 0
KVM_CAP_HLT = 1
KVM_CAP_USER_MEMORY = 3
KVM_CAP_SET_TSS_ADDR = 4
KVM_CAP_EXT_CPUID = 7
KVM_CAP_NR_VCPUS = 9
KVM_CAP_NR_MEMSLOTS = 10
KVM_CAP_SYNC_MMU = 16
KVM_CAP_SET_IDENTITY_MAP_ADDR = 37
KVM_CAP_SYNC_REGS = 74
KVM_CAP_READONLY_MEM = 81
KVM_CAP_IMMEDIATE_EXIT = 136

# ---------------------------------------------------------------------------
# Request numbers
# ---------------------------------------------------------------------------

# on /dev/kvm
KVM_GET_API_VERSION = _IO(KVMIO, 0x00)
KVM_CREATE_VM = _IO(KVMIO, 0x01)
KVM_GET_MSR_INDEX_LIST = _IOWR(KVMIO, 0x02, ctypes.sizeof(kvm_msr_list))
KVM_CHECK_EXTENSION = _IO(KVMIO, 0x03)
KVM_GET_VCPU_MMAP_SIZE = _IO(KVMIO, 0x04)
KVM_GET_SUPPORTED_CPUID = _IOWR(KVMIO, 0x05, ctypes.sizeof(kvm_cpuid2))
# on a VM
KVM_CREATE_VCPU = _IO(KVMIO, 0x41)
KVM_GET_DIRTY_LOG = _IOW(KVMIO, 0x42, ctypes.sizeof(kvm_dirty_log))
KVM_SET_USER_MEMORY_REGION = _IOW(KVMIO, 0x46, ctypes.sizeof(kvm_userspace_memory_region))
KVM_SET_TSS_ADDR = _IO(KVMIO, 0x47)
KVM_SET_IDENTITY_MAP_ADDR = _IOW(KVMIO, 0x48, ctypes.sizeof(u64))
# on a vCPU
KVM_RUN = _IO(KVMIO, 0x80)
KVM_GET_REGS = _IOR(KVMIO, 0x81, ctypes.sizeof(kvm_regs))
KVM_SET_REGS = _IOW(KVMIO, 0x82, ctypes.sizeof(kvm_regs))
KVM_GET_SREGS = _IOR(KVMIO, 0x83, ctypes.sizeof(kvm_sregs))
KVM_SET_SREGS = _IOW(KVMIO, 0x84, ctypes.sizeof(kvm_sregs))
KVM_GET_MSRS = _IOWR(KVMIO, 0x88, ctypes.sizeof(kvm_msrs))
KVM_SET_MSRS = _IOW(KVMIO, 0x89, ctypes.sizeof(kvm_msrs))
KVM_GET_FPU = _IOR(KVMIO, 0x8C, ctypes.sizeof(kvm_fpu))
KVM_SET_FPU = _IOW(KVMIO, 0x8D, ctypes.sizeof(kvm_fpu))
KVM_SET_CPUID2 = _IOW(KVMIO, 0x90, ctypes.sizeof(kvm_cpuid2))
KVM_GET_CPUID2 = _IOWR(KVMIO, 0x91, ctypes.sizeof(kvm_cpuid2))

REQUEST_NAMES = {
    value: name
    for name, value in globals().items()
    if name.startswith("KVM_")
    and isinstance(value, int)
    and name[4:7] in ("GET", "SET", "CRE", "RUN", "CHE")
}
"""Request number -> its name, for error messages."""
