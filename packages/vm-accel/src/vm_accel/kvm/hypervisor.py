"""`KvmHypervisor`: the KVM backend of the `vm_core.Hypervisor` protocol."""

from __future__ import annotations

from vm_accel.kvm.api import probe
from vm_core import AcceleratorUnavailable, Bus, Vm


class KvmHypervisor:
    """KVM on Linux. Constructing one proves /dev/kvm is usable; VMs are not implemented yet."""

    name = "kvm"

    def __init__(self, device_path: str | None = None) -> None:
        found = probe(device_path)
        if not found.usable:
            raise AcceleratorUnavailable("kvm", found.reason, found.fix)
        assert found.api_version is not None
        self.api_version: int = found.api_version
        self.device_path: str = found.device_path

    def create_vm(self, *, mmio_bus: Bus | None = None, pio_bus: Bus | None = None) -> Vm:
        """Not implemented yet: raises NotImplementedError."""
        raise NotImplementedError(
            "KVM virtual machines arrive with issue 5; this build of vm-accel can only "
            f"probe {self.device_path} (API version {self.api_version})"
        )

    def __repr__(self) -> str:
        return f"KvmHypervisor({self.device_path!r}, api_version={self.api_version})"
