"""Registers, special registers, FPU, MSRs and CPUID round-trip; dirty log; errors; no leaks."""

from __future__ import annotations

import errno
import fcntl
import os

import pytest
from kvm_guest_support import (
    CODE,
    DIRTY_WRITER,
    MSR_LSTAR,
    MSR_STAR,
    enter_protected_mode,
    machine,
    needs_kvm,
)

from vm_accel.kvm import REGISTER_NAMES, KvmError, KvmHypervisor, KvmIoctlError
from vm_core import PAGE_SIZE, RamRegion, VcpuExitKind

pytestmark = needs_kvm

MSR_SYSENTER_CS, MSR_KERNEL_GS_BASE, MSR_TSC_AUX = 0x174, 0xC000_0102, 0xC000_0103


def test_regs_round_trip() -> None:
    with machine() as m:
        values = {name: (i + 1) * 0x1111_0000_0101 for i, name in enumerate(REGISTER_NAMES[:16])}
        values["rip"] = 0x1234
        values["rflags"] = 0x2 | 0x1 | 0x40  # fixed bit, CF, ZF
        m.vcpu.set_registers(values)
        got = m.vcpu.get_registers()
        assert {name: got[name] for name in values} == values
        regs = m.vcpu.get_regs()
        assert (regs.rax, regs.r15, regs.rip) == (values["rax"], values["r15"], 0x1234)
        m.vcpu.set_registers({"rbx": 5})  # the others stay
        again = m.vcpu.get_registers()
        assert again["rbx"] == 5
        assert again["rcx"] == values["rcx"]


def test_sregs_round_trip_and_named_special_registers() -> None:
    with machine() as m:
        enter_protected_mode(m.vcpu, CODE)
        sregs = m.vcpu.get_sregs()
        assert (sregs.cs.selector, sregs.cs.db, sregs.cr0 & 1) == (0x08, 1, 1)
        sregs.fs.base = 0x7000_0000
        sregs.gdt.base, sregs.gdt.limit = 0x5000, 0x2F
        m.vcpu.set_sregs(sregs)
        again = m.vcpu.get_sregs()
        assert (again.fs.base, again.gdt.base, again.gdt.limit) == (0x7000_0000, 0x5000, 0x2F)
        m.vcpu.set_registers({"gs_base": 0x1234_5000, "cr2": 0xDEAD_0000})
        regs = m.vcpu.get_registers()
        assert (regs["gs_base"], regs["cr2"], regs["fs_base"]) == (
            0x1234_5000,
            0xDEAD_0000,
            0x7000_0000,
        )
        assert regs["cs"] == 0x08
        assert set(regs) == set(REGISTER_NAMES)


def test_unknown_register_name() -> None:
    with machine() as m, pytest.raises(KvmError, match="unknown x86_64 register name"):
        m.vcpu.set_registers({"pc": 0})


def test_fpu_round_trip() -> None:
    with machine() as m:
        fpu = m.vcpu.get_fpu()
        pattern = bytes(range(16))
        fpu.xmm[3][:] = pattern
        fpu.fpr[7][:10] = pattern[:10]
        fpu.fcw = 0x27F  # x87 default but double precision
        m.vcpu.set_fpu(fpu)
        again = m.vcpu.get_fpu()
        assert bytes(again.xmm[3]) == pattern
        assert bytes(again.fpr[7][:10]) == pattern[:10]
        assert again.fcw == 0x27F
        # MXCSR is not checked: the nested PVM host this was written on reads it back
        # as 0 whatever was set (see the README).


def test_msrs_round_trip() -> None:
    with machine() as m:
        listed = set(m.hv.msr_index_list())
        values = {
            MSR_SYSENTER_CS: 0x10,
            MSR_LSTAR: 0xFFFF_FFFF_8000_1000,
            MSR_STAR: 0x0023_0010_0000_0000,
            MSR_KERNEL_GS_BASE: 0x7FFF_1234_0000,
        }
        assert set(values) <= listed
        m.vcpu.set_msrs(values)
        assert m.vcpu.get_msrs(values) == values


def test_msr_kvm_refuses() -> None:
    with machine() as m, pytest.raises(KvmError, match="KVM_SET_MSRS refused MSR 0xdeadbeef"):
        m.vcpu.set_msrs({MSR_SYSENTER_CS: 0x10, 0xDEAD_BEEF: 1})


def test_dirty_log_shows_the_pages_the_guest_wrote() -> None:
    with machine() as m:
        data = RamRegion(0x10_0000, 16 * PAGE_SIZE, "data")
        try:
            slot = m.vm.map_ram(data, log_dirty=True)
            assert m.vm.get_dirty_log(slot) == bytes(2)  # 16 pages, none written yet
            m.load(CODE, DIRTY_WRITER)
            enter_protected_mode(m.vcpu, CODE)
            assert m.vcpu.run().kind is VcpuExitKind.HALT
            assert data.view[0x3000] == 1
            assert data.view[0x7010] == 2
            assert m.vm.dirty_pages(slot) == [0x10_3000, 0x10_7000]
            assert m.vm.get_dirty_log(slot) == bytes(2)  # reading cleared it
            m.vm.unmap_ram(slot)
            assert slot not in m.vm.slots
        finally:
            m.vm.close()
            data.close()


def test_dirty_log_needs_the_flag() -> None:
    with machine() as m, pytest.raises(KvmError, match="log_dirty=True"):
        m.vm.get_dirty_log(0)


def test_overlapping_slot_is_refused_with_errno() -> None:
    with machine() as m:
        clash = RamRegion(0x1000, PAGE_SIZE, "clash")
        try:
            with pytest.raises(KvmIoctlError) as info:
                m.vm.map_ram(clash)
            assert info.value.errno == errno.EEXIST
            assert isinstance(info.value, OSError)
            assert "KVM_SET_USER_MEMORY_REGION" in str(info.value)
            assert "'clash'" in str(info.value)
        finally:
            clash.close()


def test_bad_sregs_is_an_ioctl_error() -> None:
    with machine() as m:
        sregs = m.vcpu.get_sregs()
        sregs.cr0 = 1 << 31  # paging without protection: invalid
        with pytest.raises(KvmIoctlError, match="KVM_SET_SREGS") as info:
            m.vcpu.set_sregs(sregs)
        assert info.value.errno == errno.EINVAL


def test_check_extension() -> None:
    from vm_accel.kvm import uapi

    with KvmHypervisor() as hv:
        assert hv.check_extension(uapi.KVM_CAP_USER_MEMORY) == 1
        assert hv.check_extension(0xFFFF) == 0
        with hv.create_vm() as vm:
            assert vm.check_extension(uapi.KVM_CAP_NR_MEMSLOTS) > 0


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _run_areas() -> int:
    with open("/proc/self/maps") as maps:
        return sum("kvm-vcpu" in line for line in maps)


def test_close_releases_every_fd_and_mapping() -> None:
    before, areas = _fds(), _run_areas()
    hv = KvmHypervisor()
    vm = hv.create_vm()
    vcpus = [vm.create_vcpu(i) for i in range(3)]
    assert len(_fds() - before) == 1 + 1 + 3
    assert _run_areas() == areas + 3
    vcpus[1].close()
    assert vcpus[1].closed
    assert len(_fds() - before) == 1 + 1 + 2
    vm.close()
    assert all(v.closed for v in vcpus)
    hv.close()
    assert _fds() == before
    assert _run_areas() == areas
    with pytest.raises(KvmError, match="closed"):
        vcpus[0].get_regs()
    vm.close()  # twice is fine
    hv.close()


def test_fd_floor_numbers_every_descriptor_above_it() -> None:
    before = _fds()
    free_low = os.open("/dev/null", os.O_RDONLY)  # the lowest free number, for comparison
    os.close(free_low)
    with KvmHypervisor(fd_floor=700) as hv, hv.create_vm() as vm:
        vm.create_vcpu(0)
        vm.create_vcpu(1)
        ours = {int(fd) for fd in _fds() - before}
        assert len(ours) == 4 and min(ours) >= 700, ours
        assert fcntl.fcntl(min(ours), fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        probe = os.open("/dev/null", os.O_RDONLY)  # nothing was left behind down there
        os.close(probe)
        assert probe == free_low
    assert _fds() == before


def test_vcpu_index_twice() -> None:
    with KvmHypervisor() as hv, hv.create_vm() as vm:
        vm.create_vcpu(0)
        with pytest.raises(KvmError, match="already exists"):
            vm.create_vcpu(0)
