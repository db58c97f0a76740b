"""The ctypes structures and request numbers against the sizes and values of the C headers.

Expected numbers are read off <linux/kvm.h> and <asm/kvm.h> (x86_64) by hand:
struct sizes from their fields, request numbers from the _IO/_IOR/_IOW/_IOWR
encoding (dir << 30 | size << 16 | 0xAE << 8 | nr).
"""

from __future__ import annotations

import ctypes

import pytest

from vm_accel.kvm import uapi


@pytest.mark.parametrize(
    ("struct", "size"),
    [
        (uapi.kvm_regs, 18 * 8),  # 16 GPRs, rip, rflags
        (uapi.kvm_segment, 24),
        (uapi.kvm_dtable, 16),
        (uapi.kvm_sregs, 312),  # 8 segments, 2 tables, 7 u64, 4 u64 bitmap
        (uapi.kvm_fpu, 416),
        (uapi.kvm_msr_entry, 16),
        (uapi.kvm_msrs, 8),
        (uapi.kvm_cpuid_entry2, 40),
        (uapi.kvm_cpuid2, 8),
        (uapi.kvm_userspace_memory_region, 32),
        (uapi.kvm_dirty_log, 16),
    ],
)
def test_struct_sizes(struct: type[ctypes.Structure], size: int) -> None:
    assert ctypes.sizeof(struct) == size


def test_kvm_run_layout() -> None:
    run = uapi.kvm_run
    assert run.immediate_exit.offset == 1
    assert run.exit_reason.offset == 8
    assert run.cr8.offset == 16
    assert run.u.offset == 32  # the exit union
    assert ctypes.sizeof(uapi._exit_union) == 256
    assert run.kvm_valid_regs.offset == 32 + 256
    assert uapi._exit_io.port.offset == 2
    assert uapi._exit_io.data_offset.offset == 8
    assert uapi._exit_mmio.len.offset == 16
    assert uapi._exit_mmio.is_write.offset == 20
    assert uapi._exit_internal.data.offset == 8
    assert uapi._exit_fail_entry.cpu.offset == 8


def test_sregs_layout() -> None:
    s = uapi.kvm_sregs
    assert s.gdt.offset == 8 * 24
    assert s.cr0.offset == 8 * 24 + 2 * 16
    assert s.efer.offset == s.cr0.offset + 5 * 8
    assert s.interrupt_bitmap.offset == 312 - 32


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KVM_GET_API_VERSION", 0xAE00),
        ("KVM_CREATE_VM", 0xAE01),
        ("KVM_CHECK_EXTENSION", 0xAE03),
        ("KVM_GET_VCPU_MMAP_SIZE", 0xAE04),
        ("KVM_GET_SUPPORTED_CPUID", 0xC008AE05),
        ("KVM_CREATE_VCPU", 0xAE41),
        ("KVM_GET_DIRTY_LOG", 0x4010AE42),
        ("KVM_SET_USER_MEMORY_REGION", 0x4020AE46),
        ("KVM_SET_TSS_ADDR", 0xAE47),
        ("KVM_RUN", 0xAE80),
        ("KVM_GET_REGS", 0x8090AE81),
        ("KVM_SET_REGS", 0x4090AE82),
        ("KVM_GET_SREGS", 0x8138AE83),
        ("KVM_SET_SREGS", 0x4138AE84),
        ("KVM_GET_MSRS", 0xC008AE88),
        ("KVM_SET_MSRS", 0x4008AE89),
        ("KVM_GET_FPU", 0x81A0AE8C),
        ("KVM_SET_FPU", 0x41A0AE8D),
        ("KVM_SET_CPUID2", 0x4008AE90),
    ],
)
def test_request_numbers(name: str, value: int) -> None:
    assert getattr(uapi, name) == value
    assert uapi.REQUEST_NAMES[value] == name


def test_exit_reason_names() -> None:
    assert uapi.EXIT_REASON_NAMES[2] == "KVM_EXIT_IO"
    assert uapi.EXIT_REASON_NAMES[17] == "KVM_EXIT_INTERNAL_ERROR"
    assert uapi.EXIT_REASON_NAMES[0] == "KVM_EXIT_UNKNOWN"
