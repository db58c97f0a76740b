"""Small guests of our own in real, protected and long mode: port I/O, MMIO, HLT, syscall.

Each result the guest reports is compared with a value the test computes
itself (sums in Python, bytes the test's device answered).
"""

from __future__ import annotations

import struct

from kvm_guest_support import (
    CODE,
    CPUID_LEAF0,
    CR4_OSFXSR,
    LONG_MODE,
    MMIO_BASE,
    MSR_LSTAR,
    MSR_SFMASK,
    MSR_STAR,
    PROTECTED_MODE,
    REAL_MODE,
    SPIN,
    SSE_AT_CPL0,
    SYSCALL,
    SYSCALL_ENTRY,
    USER_HLT,
    enter_long_mode,
    enter_protected_mode,
    enter_real_mode,
    machine,
    needs_kvm,
)

from vm_accel.kvm import HaltExit, InternalErrorExit, IoExit, MmioExit, ShutdownExit
from vm_core import BusUnmappedError, VcpuExitKind

pytestmark = needs_kvm


def test_real_mode_out_in_hlt_with_run_once() -> None:
    with machine() as m:
        m.load(CODE, REAL_MODE)
        enter_real_mode(m.vcpu, CODE)
        assert m.vcpu.run_once() == IoExit(port=0x10, size=1, count=1, is_out=True, data=b"A")
        assert m.vcpu.run_once() == IoExit(port=0x11, size=1, count=1, is_out=False)
        m.vcpu.complete(b"\x07")  # what the guest's `in` reads
        assert m.vcpu.run_once() == IoExit(0x10, 1, 1, True, bytes([0x07 + 1]))
        total = sum(range(101)).to_bytes(2, "little")
        assert m.vcpu.run_once() == IoExit(0x12, 2, 1, True, total)
        assert m.vcpu.run_once() == HaltExit()
        assert m.vcpu.get_regs().rip == CODE + len(REAL_MODE)


def test_real_mode_through_the_buses() -> None:
    with machine() as m:
        m.load(CODE, REAL_MODE)
        m.ports.answers[0x1] = 0x30  # port 0x11
        enter_real_mode(m.vcpu, CODE)
        result = m.vcpu.run()
        assert result.kind is VcpuExitKind.HALT
        assert result.pc == CODE + len(REAL_MODE)
        assert m.ports.reads == [(0x1, 1)]
        assert m.ports.writes == [(0x0, 1, 0x41), (0x0, 1, 0x31), (0x2, 2, sum(range(101)))]


def test_protected_mode_loop_and_mmio() -> None:
    with machine() as m:
        m.load(CODE, PROTECTED_MODE)
        m.mmio.answers[0x10] = 0xCAFE_F00D
        enter_protected_mode(m.vcpu, CODE)
        result = m.vcpu.run()
        assert result.kind is VcpuExitKind.HALT, result
        total = sum(range(1001))
        assert m.ports.writes == [(0x0, 4, total), (0x1, 4, 0xCAFE_F00D)]
        assert m.mmio.writes == [(0x0, 1, 0x55), (0x4, 4, total)]
        assert m.mmio.reads == [(0x10, 4)]


def test_mmio_events_from_run_once() -> None:
    with machine() as m:
        m.load(CODE, PROTECTED_MODE)
        enter_protected_mode(m.vcpu, CODE)
        assert isinstance(m.vcpu.run_once(), IoExit)
        assert m.vcpu.run_once() == MmioExit(MMIO_BASE, 1, True, b"\x55")
        total = sum(range(1001))
        assert m.vcpu.run_once() == MmioExit(MMIO_BASE + 4, 4, True, total.to_bytes(4, "little"))
        assert m.vcpu.run_once() == MmioExit(MMIO_BASE + 0x10, 4, False)
        m.vcpu.complete(0x1234_5678)
        assert m.vcpu.run_once() == IoExit(0x11, 4, 1, True, (0x1234_5678).to_bytes(4, "little"))


def test_long_mode_loop_and_8_byte_mmio() -> None:
    with machine() as m:
        m.load(CODE, LONG_MODE)
        m.mmio.answers[8] = 0xFFFF_FFFF_FFFF_FFFF  # +1 wraps to 0 in 64 bits
        enter_long_mode(m, CODE)
        m.vcpu.set_registers({"rdi": MMIO_BASE})
        result = m.vcpu.run()
        assert result.kind is VcpuExitKind.HALT, result
        total = sum(i * i for i in range(1, 1001))
        assert m.ports.writes == [(0, 4, total & 0xFFFF_FFFF), (0, 4, total >> 32)]
        assert m.mmio.writes == [(0, 8, 0x1122_3344_5566_7788), (0x10, 8, 0)]
        assert m.mmio.reads == [(8, 8)]
        sregs = m.vcpu.get_sregs()
        assert sregs.cs.l == 1
        assert sregs.efer & 0x500 == 0x500  # LME | LMA


def test_unmapped_port_is_a_bus_error() -> None:
    with machine() as m:
        m.load(CODE, b"\xe6\x80")  # out %al,$0x80   (no device there)
        enter_real_mode(m.vcpu, CODE)
        try:
            m.vcpu.run()
        except BusUnmappedError as e:
            assert e.addr == 0x80
        else:
            raise AssertionError("run() returned for an access to an unmapped port")


def test_cpuid_table_is_what_the_guest_sees() -> None:
    with machine() as m:
        entries = m.hv.supported_cpuid()
        (leaf0,) = [e for e in entries if e.function == 0]
        ebx, edx, ecx = struct.unpack("<3I", b"vm-accel-kvm")
        leaf0.ebx, leaf0.edx, leaf0.ecx = ebx, edx, ecx
        m.vcpu.set_cpuid(entries)
        (seen,) = [e for e in m.vcpu.get_cpuid() if e.function == 0]
        assert (seen.ebx, seen.edx, seen.ecx) == (ebx, edx, ecx)
        m.load(CODE, CPUID_LEAF0)
        enter_protected_mode(m.vcpu, CODE)
        assert m.vcpu.run().kind is VcpuExitKind.HALT
        assert b"".join(v.to_bytes(4, "little") for _, _, v in m.ports.writes) == b"vm-accel-kvm"


def test_user_mode_syscall_reaches_lstar_and_exits_by_out() -> None:
    entry = 0x2000
    with machine() as m:
        m.load(CODE, SYSCALL)
        m.load(entry, SYSCALL_ENTRY)
        enter_long_mode(m, CODE, user=True)
        # STAR: kernel CS 0x08 (SS 0x10), user base 0x10 (CS 0x23 / SS 0x1b); no flags masked
        m.vcpu.set_msrs({MSR_LSTAR: entry, MSR_STAR: (0x08 << 32) | (0x10 << 48), MSR_SFMASK: 0})
        event = m.vcpu.run_once()
        assert event == IoExit(0x10, 1, 1, True, bytes([60]))  # %al = syscall number
        regs = m.vcpu.get_registers()
        assert regs["rip"] == entry + 2  # after the `out`
        assert regs["rcx"] == CODE + 7  # syscall's return address: after `syscall`
        assert regs["rax"] == 60


def test_sse_at_cpl0_runs_or_is_a_clear_emulation_failure() -> None:
    # On VMX/SVM this simply runs. On a nested PVM host, CPL0 code goes through KVM's
    # instruction emulator, which has no SSE: KVM reports an emulation failure, and
    # the exit must say so with the instruction's bytes.
    with machine() as m:
        m.load(CODE, SSE_AT_CPL0)
        enter_long_mode(m, CODE)
        sregs = m.vcpu.get_sregs()
        sregs.cr4 |= CR4_OSFXSR
        m.vcpu.set_sregs(sregs)
        event = m.vcpu.run_once()
        if isinstance(event, InternalErrorExit):
            assert event.suberror == 1  # KVM_INTERNAL_ERROR_EMULATION
            code = event.instruction_bytes
            assert code is not None
            assert code.startswith(SSE_AT_CPL0[:4])
            assert m.vcpu.get_regs().rip == CODE
            m.vcpu.set_registers({"rip": CODE})
            result = m.vcpu.run()
            assert result.kind is VcpuExitKind.FAILED
            assert result.detail is not None
            assert "emulation failed" in result.detail
            assert "66 0f ef c0" in result.detail
        else:
            assert event == HaltExit()


def test_hlt_at_cpl3_is_a_triple_fault_without_an_idt() -> None:
    with machine() as m:
        m.load(CODE, USER_HLT)
        enter_long_mode(m, CODE, user=True)
        assert m.vcpu.run_once() == ShutdownExit()
        assert m.vcpu.run().kind is VcpuExitKind.SHUTDOWN


def test_spin_then_interrupt_pending_before_run() -> None:
    with machine() as m:
        m.load(CODE, SPIN)
        enter_long_mode(m, CODE, user=True)
        m.vcpu.interrupt()  # no run in progress: the next run returns at once
        result = m.vcpu.run()
        assert result.kind is VcpuExitKind.INTERRUPTED
        assert m.vcpu.kvm_run.immediate_exit == 0


def test_synced_registers_are_read_and_written_through_the_run_area() -> None:
    """With ``enable_sync_regs``, registers come from and go to the run area: what the guest
    computed is there after an exit (as KVM_GET_REGS says), and what is written there is
    what the guest runs on (here: a skipped `xor`/`mov` and a loop counter of our own)."""
    from vm_accel.kvm import uapi
    from vm_accel.kvm.ioctl import ioctl

    with machine() as m:
        m.load(CODE, REAL_MODE)
        enter_real_mode(m.vcpu, CODE)
        assert m.vcpu.enable_sync_regs()
        assert m.vcpu.run_once() == IoExit(0x10, 1, 1, True, b"A")
        assert m.vcpu.run_once() == IoExit(0x11, 1, 1, False)
        m.vcpu.complete(b"\x07")
        assert m.vcpu.run_once() == IoExit(0x10, 1, 1, True, b"\x08")
        regs = m.vcpu.get_regs()
        by_ioctl = uapi.kvm_regs()
        ioctl(m.vcpu.fd, uapi.KVM_GET_REGS, by_ioctl)
        assert bytes(regs) == bytes(by_ioctl)
        assert (regs.rax & 0xFF, regs.rip) == (0x08, CODE + 10)  # after the second `out`
        regs.rip += 5  # over `xor %ax,%ax` and `mov $100,%cx`
        regs.rax, regs.rcx = 1000, 3
        m.vcpu.set_regs(regs)
        assert m.vcpu.get_regs().rcx == 3  # read back before the vCPU ran
        assert m.vcpu.run_once() == IoExit(0x12, 2, 1, True, (1000 + 3 + 2 + 1).to_bytes(2, "little"))
        assert m.vcpu.run_once() == HaltExit()
        assert m.vcpu.get_regs().rip == CODE + len(REAL_MODE)
