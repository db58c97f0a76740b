"""Small x86 guests of our own for the KVM tests, and the CPU setup each mode needs.

Guest code is machine code written as bytes with its assembly (AT&T syntax, as
GNU as and objdump print it) beside each instruction. The machine: RAM at 0,
code at `CODE`, stack below `STACK`, long-mode page tables at `PML4`; port
0x10 is where guests report results.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from vm_accel.kvm import KvmHypervisor, KvmVcpu, KvmVm
from vm_accel.kvm.uapi import kvm_segment
from vm_core import Bus, RamRegion

HAS_KVM = sys.platform.startswith("linux") and os.access("/dev/kvm", os.R_OK | os.W_OK)
needs_kvm = pytest.mark.skipif(not HAS_KVM, reason="this host has no usable /dev/kvm")

RAM_SIZE = 0x10_0000
CODE = 0x1000
STACK = 0x8000
PML4 = 0x1_0000
MMIO_BASE = 0x0800_0000
"""Guest-physical address of the test's MMIO device (no RAM there)."""

# CR0, CR4, EFER and RFLAGS bits (Intel SDM vol. 3, 2.5 and 2.2.1)
CR0_PE, CR0_ET, CR0_PG = 1 << 0, 1 << 4, 1 << 31
CR4_PAE, CR4_OSFXSR = 1 << 5, 1 << 9
EFER_SCE, EFER_LME, EFER_LMA = 1 << 0, 1 << 8, 1 << 10
RFLAGS_FIXED, RFLAGS_IOPL3 = 1 << 1, 3 << 12
# page-table entry bits
PTE_P, PTE_W, PTE_U, PTE_PS = 1 << 0, 1 << 1, 1 << 2, 1 << 7

MSR_STAR, MSR_LSTAR, MSR_SFMASK = 0xC000_0081, 0xC000_0082, 0xC000_0084


def code(*parts: bytes) -> bytes:
    return b"".join(parts)


# fmt: off
REAL_MODE = code(                   # 16-bit, at 0000:1000
    b"\xb0\x41",                    # mov    $0x41,%al
    b"\xe6\x10",                    # out    %al,$0x10
    b"\xe4\x11",                    # in     $0x11,%al
    b"\x04\x01",                    # add    $0x1,%al
    b"\xe6\x10",                    # out    %al,$0x10
    b"\x31\xc0",                    # xor    %ax,%ax
    b"\xb9\x64\x00",                # mov    $100,%cx
    b"\x01\xc8",                    # 1: add %cx,%ax
    b"\xe2\xfc",                    # loop   1b
    b"\xe7\x12",                    # out    %ax,$0x12
    b"\xf4",                        # hlt
)

PROTECTED_MODE = code(              # 32-bit, flat segments, CPL0
    b"\x31\xc0",                    # xor    %eax,%eax
    b"\xb9\xe8\x03\x00\x00",        # mov    $1000,%ecx
    b"\x01\xc8",                    # 1: add %ecx,%eax
    b"\xe2\xfc",                    # loop   1b
    b"\xe7\x10",                    # out    %eax,$0x10
    b"\xc6\x05\x00\x00\x00\x08\x55",  # movb $0x55,0x8000000      (MMIO store, 1 byte)
    b"\xa3\x04\x00\x00\x08",        # mov    %eax,0x8000004       (MMIO store, 4 bytes)
    b"\xa1\x10\x00\x00\x08",        # mov    0x8000010,%eax       (MMIO load, 4 bytes)
    b"\xe7\x11",                    # out    %eax,$0x11
    b"\xf4",                        # hlt
)

LONG_MODE = code(                   # 64-bit, CPL0; %rdi = MMIO_BASE
    b"\x31\xc0",                    # xor    %eax,%eax
    b"\xb9\xe8\x03\x00\x00",        # mov    $1000,%ecx
    b"\x48\x89\xca",                # 1: mov %rcx,%rdx
    b"\x48\x0f\xaf\xd1",            # imul   %rcx,%rdx
    b"\x48\x01\xd0",                # add    %rdx,%rax
    b"\xe2\xf4",                    # loop   1b
    b"\xe7\x10",                    # out    %eax,$0x10           (low half of the sum)
    b"\x48\xc1\xe8\x20",            # shr    $32,%rax
    b"\xe7\x10",                    # out    %eax,$0x10           (high half)
    b"\x48\xb8\x88\x77\x66\x55\x44\x33\x22\x11",  # movabs $0x1122334455667788,%rax
    b"\x48\x89\x07",                # mov    %rax,(%rdi)          (MMIO store, 8 bytes)
    b"\x48\x8b\x5f\x08",            # mov    0x8(%rdi),%rbx       (MMIO load, 8 bytes)
    b"\x48\x83\xc3\x01",            # add    $1,%rbx
    b"\x48\x89\x5f\x10",            # mov    %rbx,0x10(%rdi)      (MMIO store, 8 bytes)
    b"\xf4",                        # hlt
)

CPUID_LEAF0 = code(                 # 32-bit: report the vendor string of CPUID leaf 0
    b"\x31\xc0",                    # xor    %eax,%eax
    b"\x0f\xa2",                    # cpuid
    b"\x89\xd8",                    # mov    %ebx,%eax
    b"\xe7\x10",                    # out    %eax,$0x10
    b"\x89\xd0",                    # mov    %edx,%eax
    b"\xe7\x10",                    # out    %eax,$0x10
    b"\x89\xc8",                    # mov    %ecx,%eax
    b"\xe7\x10",                    # out    %eax,$0x10
    b"\xf4",                        # hlt
)

DIRTY_WRITER = code(                # 32-bit: write two pages of the data slot, read a third
    b"\xc7\x05\x00\x30\x10\x00\x01\x00\x00\x00",  # movl $1,0x103000
    b"\xc6\x05\x10\x70\x10\x00\x02",  # movb $2,0x107010
    b"\xa1\x00\x50\x10\x00",        # mov    0x105000,%eax
    b"\xf4",                        # hlt
)

SPIN = code(                        # 64-bit, any CPL
    b"\xeb\xfe",                    # 1: jmp 1b
)

HANDSHAKE = code(                   # 64-bit, CPL3: %rsi = my flag, %rdi = the other's flag
    b"\xc7\x06\x01\x00\x00\x00",    # movl   $1,(%rsi)
    b"\x83\x3f\x01",                # 1: cmpl $1,(%rdi)
    b"\x75\xfb",                    # jne    1b
    b"\xe6\x10",                    # out    %al,$0x10
    b"\xf4",                        # hlt
)

SYSCALL = code(                     # 64-bit, CPL3
    b"\xb8\x3c\x00\x00\x00",        # mov    $60,%eax
    b"\x0f\x05",                    # syscall
    b"\xf4",                        # hlt
)

SYSCALL_ENTRY = code(               # at MSR_LSTAR: the user-mode runner's stub
    b"\xe6\x10",                    # out    %al,$0x10
    b"\xf4",                        # hlt
)

SSE_AT_CPL0 = code(                 # 64-bit, CPL0, CR4.OSFXSR set
    b"\x66\x0f\xef\xc0",            # pxor   %xmm0,%xmm0
    b"\xf4",                        # hlt
)

USER_HLT = code(                    # 64-bit, CPL3
    b"\xf4",                        # hlt   (privileged: #GP, no IDT -> triple fault)
)
# fmt: on


@dataclass
class Device:
    """A bus device that records accesses and answers reads from `answers` (by offset)."""

    answers: dict[int, int] = field(default_factory=dict)
    writes: list[tuple[int, int, int]] = field(default_factory=list)
    reads: list[tuple[int, int]] = field(default_factory=list)

    def read(self, offset: int, size: int) -> int:
        self.reads.append((offset, size))
        return self.answers.get(offset, 0)

    def write(self, offset: int, size: int, value: int) -> None:
        self.writes.append((offset, size, value))


@dataclass
class Machine:
    """One VM with RAM at 0, one vCPU, a port device at 0x10..0x1f and an MMIO device."""

    hv: KvmHypervisor
    vm: KvmVm
    ram: RamRegion
    vcpu: KvmVcpu
    ports: Device
    mmio: Device

    def load(self, addr: int, data: bytes) -> None:
        self.ram.view[addr : addr + len(data)] = data


@contextmanager
def machine(*, log_dirty: bool = False) -> Iterator[Machine]:
    ports, mmio = Device(), Device()
    pio_bus, mmio_bus = Bus("pio", limit=1 << 16), Bus("mmio")
    pio_bus.insert(ports, 0x10, 0x10)
    mmio_bus.insert(mmio, MMIO_BASE, 0x1000)
    hv = KvmHypervisor()
    vm = hv.create_vm(mmio_bus=mmio_bus, pio_bus=pio_bus)
    ram = RamRegion(0, RAM_SIZE, "ram")
    try:
        vm.map_ram(ram, log_dirty=log_dirty)
        yield Machine(hv, vm, ram, vm.create_vcpu(0), ports, mmio)
    finally:
        vm.close()
        hv.close()
        ram.close()


def segment(selector: int, *, code: bool, dpl: int = 0, bits: int = 32) -> kvm_segment:
    """A flat (base 0, 4 GiB) present segment descriptor, as KVM_SET_SREGS takes it."""
    seg = kvm_segment()
    seg.base, seg.limit, seg.selector = 0, 0xFFFF_FFFF, selector
    seg.type = 0xB if code else 0x3  # execute/read accessed, or read/write accessed
    seg.present, seg.dpl, seg.s, seg.g = 1, dpl, 1, 1
    seg.l = 1 if code and bits == 64 else 0
    seg.db = 0 if code and bits == 64 else 1
    return seg


def enter_real_mode(vcpu: KvmVcpu, rip: int) -> None:
    """CS = 0 so that execution starts at physical `rip` (the reset state has CS base 0xffff0000)."""
    sregs = vcpu.get_sregs()
    sregs.cs.selector, sregs.cs.base = 0, 0
    vcpu.set_sregs(sregs)
    vcpu.set_registers({"rip": rip, "rflags": RFLAGS_FIXED, "rsp": STACK})


def enter_protected_mode(vcpu: KvmVcpu, rip: int) -> None:
    """32-bit flat protected mode at CPL0 with paging off, set directly through the sregs."""
    sregs = vcpu.get_sregs()
    sregs.cs = segment(0x08, code=True)
    for name in ("ds", "es", "fs", "gs", "ss"):
        setattr(sregs, name, segment(0x10, code=False))
    sregs.cr0 = CR0_PE | CR0_ET
    vcpu.set_sregs(sregs)
    vcpu.set_registers({"rip": rip, "rflags": RFLAGS_FIXED, "rsp": STACK})


def build_page_tables(ram: RamRegion, *, user: bool) -> None:
    """Identity-map the first GiB with 2 MiB pages: PML4 -> PDPT -> one PD of 512 entries."""
    u = PTE_U if user else 0
    view = ram.view
    struct.pack_into("<Q", view, PML4, (PML4 + 0x1000) | PTE_P | PTE_W | u)
    struct.pack_into("<Q", view, PML4 + 0x1000, (PML4 + 0x2000) | PTE_P | PTE_W | u)
    for i in range(512):
        struct.pack_into("<Q", view, PML4 + 0x2000 + 8 * i, (i << 21) | PTE_P | PTE_W | PTE_PS | u)


def enter_long_mode(
    m: Machine, rip: int, *, user: bool = False, vcpu: KvmVcpu | None = None
) -> None:
    """64-bit mode set directly through the sregs: CR0.PG|PE, CR4.PAE, EFER.LME|LMA,
    a 64-bit CS; with `user`, CS and SS at DPL3 (CPL3) and RFLAGS.IOPL = 3 so
    that `in`/`out` are allowed."""
    vcpu = m.vcpu if vcpu is None else vcpu
    build_page_tables(m.ram, user=user)
    dpl = 3 if user else 0
    sregs = vcpu.get_sregs()
    sregs.cs = segment(0x10 | dpl if user else 0x08, code=True, dpl=dpl, bits=64)
    for name in ("ds", "es", "fs", "gs", "ss"):
        setattr(sregs, name, segment(0x18 | dpl if user else 0x10, code=False, dpl=dpl))
    sregs.cr3 = PML4
    sregs.cr4 = CR4_PAE
    sregs.cr0 = CR0_PG | CR0_PE | CR0_ET
    sregs.efer = EFER_LME | EFER_LMA | EFER_SCE
    vcpu.set_sregs(sregs)
    rflags = RFLAGS_FIXED | (RFLAGS_IOPL3 if user else 0)
    vcpu.set_registers({"rip": rip, "rflags": rflags, "rsp": STACK})
