"""`KvmHypervisor`: the KVM backend of the `vm_core.Hypervisor` protocol."""

from __future__ import annotations

import ctypes
import errno
import os

from vm_accel.kvm import uapi
from vm_accel.kvm.api import probe
from vm_accel.kvm.errors import KvmIoctlError
from vm_accel.kvm.ioctl import KvmDescriptor, above, ioctl, try_ioctl
from vm_accel.kvm.signals import install_kick_handler
from vm_accel.kvm.vm import KvmVm
from vm_core import AcceleratorUnavailable, Bus

_MAX_CPUID_ENTRIES = 4096


class KvmHypervisor(KvmDescriptor):
    """KVM on Linux: holds an open /dev/kvm and makes VMs.

    Constructing one proves /dev/kvm is usable (else `AcceleratorUnavailable`
    with the probe's one-line reason) and, on the main thread, installs the
    handler of `vm_accel.kvm.signals.KICK_SIGNAL` that `KvmVcpu.interrupt` needs.
    """

    name = "kvm"
    _closed_fix = "create a new KvmHypervisor"

    def __init__(self, device_path: str | None = None, *, fd_floor: int = 0) -> None:
        found = probe(device_path)
        if not found.usable:
            raise AcceleratorUnavailable("kvm", found.reason, found.fix)
        assert found.api_version is not None
        self.api_version: int = found.api_version
        self.device_path: str = found.device_path
        try:
            fd = os.open(self.device_path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:  # it went away between the probe and now
            raise AcceleratorUnavailable(
                "kvm", f"cannot open {self.device_path}: {os.strerror(e.errno or 0)}"
            ) from None
        #: the descriptors of this hypervisor, its VMs and their vCPUs are numbered from here
        #: (a user-mode runner keeps its own out of the way of the guest's)
        self.fd_floor = fd_floor
        fd = above(fd, fd_floor)
        self._own(fd)
        self.vcpu_mmap_size: int = ioctl(fd, uapi.KVM_GET_VCPU_MMAP_SIZE)
        self._supported_cpuid: list[uapi.kvm_cpuid_entry2] | None = None
        install_kick_handler()

    def supported_cpuid(self) -> list[uapi.kvm_cpuid_entry2]:
        """KVM_GET_SUPPORTED_CPUID: the CPUID leaves KVM can offer a guest (copies)."""
        if self._supported_cpuid is None:
            n = 64
            while True:
                table = uapi.cpuid_table_type(n)()
                table.nent = n
                _, err = try_ioctl(self.fd, uapi.KVM_GET_SUPPORTED_CPUID, table)
                if err == errno.E2BIG and n < _MAX_CPUID_ENTRIES:
                    n *= 2
                    continue
                if err:
                    raise KvmIoctlError("KVM_GET_SUPPORTED_CPUID", err)
                break
            self._supported_cpuid = list(table.entries[: table.nent])
        return [_copy_entry(e) for e in self._supported_cpuid]

    def msr_index_list(self) -> list[int]:
        """KVM_GET_MSR_INDEX_LIST: the MSRs that KVM_GET_MSRS / KVM_SET_MSRS accept."""
        n = 256
        while True:

            class Table(ctypes.Structure):
                _fields_ = [("nmsrs", ctypes.c_uint32), ("indices", ctypes.c_uint32 * n)]

            table = Table(nmsrs=n)
            _, err = try_ioctl(self.fd, uapi.KVM_GET_MSR_INDEX_LIST, table)
            if err == errno.E2BIG and n < 65536:
                n = max(n * 2, table.nmsrs)
                continue
            if err:
                raise KvmIoctlError("KVM_GET_MSR_INDEX_LIST", err)
            return list(table.indices[: table.nmsrs])

    def create_vm(self, *, mmio_bus: Bus | None = None, pio_bus: Bus | None = None) -> KvmVm:
        """KVM_CREATE_VM: a VM whose MMIO and port I/O exits go to these buses.

        A bus left out is replaced by an empty one, so every such access raises
        `BusUnmappedError` from `KvmVcpu.run`.
        """
        fd = above(ioctl(self.fd, uapi.KVM_CREATE_VM, 0), self.fd_floor)
        return KvmVm(self, fd, mmio_bus=mmio_bus, pio_bus=pio_bus)

    def close(self) -> None:
        """Close /dev/kvm; VMs already created keep working until closed themselves."""
        super().close()

    def __repr__(self) -> str:
        return f"KvmHypervisor({self.device_path!r}, api_version={self.api_version})"


def _copy_entry(entry: uapi.kvm_cpuid_entry2) -> uapi.kvm_cpuid_entry2:
    return uapi.kvm_cpuid_entry2.from_buffer_copy(entry)
