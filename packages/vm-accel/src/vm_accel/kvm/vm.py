"""`KvmVm`: a KVM virtual machine, its memory slots and its vCPUs."""

from __future__ import annotations

import ctypes
import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vm_accel.kvm import uapi
from vm_accel.kvm.errors import KvmError, KvmIoctlError
from vm_accel.kvm.ioctl import KvmDescriptor, above, ioctl, try_ioctl
from vm_accel.kvm.vcpu import KvmVcpu
from vm_core import PAGE_SIZE, Bus, RamRegion

if TYPE_CHECKING:
    from vm_accel.kvm.hypervisor import KvmHypervisor

TSS_ADDRESS = 0xFFFB_D000
"""Where KVM_SET_TSS_ADDR puts the three pages Intel VT-x needs to run real mode
without unrestricted guest; keep guest RAM and devices out of [TSS_ADDRESS, +0x3000)."""


@dataclass(frozen=True)
class MemorySlot:
    """A RAM region exposed to the guest: its slot number and KVM_MEM_* flags."""

    slot: int
    region: RamRegion
    flags: int

    @property
    def pages(self) -> int:
        """Number of 4 KiB pages (bits in the dirty bitmap)."""
        return (self.region.size + PAGE_SIZE - 1) // PAGE_SIZE


class KvmVm(KvmDescriptor):
    """A KVM VM (from `KvmHypervisor.create_vm`): memory slots, vCPUs, dirty logging."""

    _closed_fix = "create a new VM"

    def __init__(
        self, hypervisor: KvmHypervisor, fd: int, *, mmio_bus: Bus | None, pio_bus: Bus | None
    ) -> None:
        self.hypervisor = hypervisor
        self._own(fd)
        self.mmio_bus = Bus("mmio") if mmio_bus is None else mmio_bus
        self.pio_bus = Bus("pio", limit=1 << 16) if pio_bus is None else pio_bus
        self._slots: dict[int, MemorySlot] = {}
        self._vcpus: dict[int, KvmVcpu] = {}
        self.tss_address: int | None = None
        if self.check_extension(uapi.KVM_CAP_SET_TSS_ADDR):
            _, err = try_ioctl(fd, uapi.KVM_SET_TSS_ADDR, TSS_ADDRESS)
            if not err:
                self.tss_address = TSS_ADDRESS

    # -- memory ----------------------------------------------------------------

    @property
    def slots(self) -> dict[int, MemorySlot]:
        """The mapped slots by number (a copy)."""
        return dict(self._slots)

    def map_ram(self, region: RamRegion, *, log_dirty: bool = False) -> int:
        """Expose `region`'s host bytes at guest-physical ``region.base``; return the slot.

        With `log_dirty`, KVM records the pages the guest writes (`get_dirty_log`).
        A ``readonly`` region becomes a read-only slot: guest stores to it exit as MMIO.
        """
        if region.closed:
            raise KvmError(f"RAM region {region.name!r} is closed", "map a live region")
        slot = next(i for i in range(len(self._slots) + 1) if i not in self._slots)
        flags = uapi.KVM_MEM_LOG_DIRTY_PAGES if log_dirty else 0
        if region.readonly:
            flags |= uapi.KVM_MEM_READONLY
        self._set_region(slot, flags, region.base, region.size, region.host_address, region.name)
        self._slots[slot] = MemorySlot(slot, region, flags)
        return slot

    def unmap_ram(self, slot: int) -> None:
        """Remove slot `slot` from the guest's physical address space."""
        entry = self._slot(slot)
        self._set_region(slot, 0, entry.region.base, 0, 0, entry.region.name)
        del self._slots[slot]

    def _slot(self, slot: int) -> MemorySlot:
        entry = self._slots.get(slot)
        if entry is None:
            raise KvmError(
                f"memory slot {slot} is not mapped (mapped: {sorted(self._slots)})",
                "pass a slot number returned by map_ram",
            )
        return entry

    def _set_region(
        self, slot: int, flags: int, base: int, size: int, host: int, name: str
    ) -> None:
        desc = uapi.kvm_userspace_memory_region(slot, flags, base, size, host)
        _, err = try_ioctl(self.fd, uapi.KVM_SET_USER_MEMORY_REGION, desc)
        if err:
            fix = (
                "RAM must not overlap another slot and base and size must be page aligned"
                if err in (errno.EINVAL, errno.EEXIST)
                else ""
            )
            context = f"for {name!r} at {base:#x} (+{size:#x}), slot {slot}"
            raise KvmIoctlError("KVM_SET_USER_MEMORY_REGION", err, fix, context)

    def get_dirty_log(self, slot: int) -> bytes:
        """KVM_GET_DIRTY_LOG: the bitmap of pages written since the last call, then cleared.

        Bit ``i % 8`` of byte ``i // 8`` is page ``i`` of the slot (from its base).
        The slot must have been mapped with ``log_dirty=True``.
        """
        entry = self._slot(slot)
        if not entry.flags & uapi.KVM_MEM_LOG_DIRTY_PAGES:
            raise KvmError(
                f"memory slot {slot} ({entry.region.name!r}) does not log dirty pages",
                "map it with map_ram(region, log_dirty=True)",
            )
        words = (entry.pages + 63) // 64
        bitmap = (ctypes.c_uint64 * words)()
        log = uapi.kvm_dirty_log(slot, 0, ctypes.addressof(bitmap))
        ioctl(self.fd, uapi.KVM_GET_DIRTY_LOG, log)
        return bytes(bitmap)[: (entry.pages + 7) // 8]

    def dirty_pages(self, slot: int) -> list[int]:
        """The guest-physical addresses of the pages `get_dirty_log` reports as written."""
        base = self._slot(slot).region.base
        bitmap = self.get_dirty_log(slot)
        return [
            base + (i * 8 + bit) * PAGE_SIZE
            for i, byte in enumerate(bitmap)
            if byte
            for bit in range(8)
            if byte >> bit & 1
        ]

    # -- vCPUs -----------------------------------------------------------------

    def create_vcpu(self, index: int, *, cpuid: bool = True) -> KvmVcpu:
        """KVM_CREATE_VCPU number `index` and map its run area.

        With `cpuid` (the default) the vCPU gets KVM's whole supported CPUID
        table (KVM_GET_SUPPORTED_CPUID -> KVM_SET_CPUID2); without it the guest
        sees no CPUID features, and KVM refuses EFER.LME (long mode).
        """
        if index in self._vcpus and not self._vcpus[index].closed:
            raise KvmError(f"vCPU {index} already exists", "use another index or close it first")
        fd = above(ioctl(self.fd, uapi.KVM_CREATE_VCPU, index), self.hypervisor.fd_floor)
        vcpu = KvmVcpu(self, index, fd)
        self._vcpus[index] = vcpu
        if cpuid:
            vcpu.set_cpuid(self.hypervisor.supported_cpuid())
        return vcpu

    @property
    def vcpus(self) -> dict[int, KvmVcpu]:
        """The open vCPUs by index (a copy)."""
        return {i: v for i, v in self._vcpus.items() if not v.closed}

    def close(self) -> None:
        """Close every vCPU and the VM; the RAM regions stay the caller's."""
        for vcpu in self._vcpus.values():
            vcpu.close()
        self._vcpus.clear()
        self._slots.clear()
        super().close()

    def __repr__(self) -> str:
        state = (
            "closed" if self.closed else f"{len(self._slots)} slot(s), {len(self.vcpus)} vCPU(s)"
        )
        return f"KvmVm({state})"
