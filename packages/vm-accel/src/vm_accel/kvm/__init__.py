"""KVM backend (Linux): probing /dev/kvm works; VMs and vCPUs are not implemented yet.

The device path `probe` uses by default is `vm_accel.kvm.api.DEVICE_PATH`.
"""

from vm_accel.kvm.api import (
    KVM_API_VERSION,
    KVM_GET_API_VERSION,
    KvmProbe,
    probe,
)
from vm_accel.kvm.hypervisor import KvmHypervisor

__all__ = [
    "KVM_API_VERSION",
    "KVM_GET_API_VERSION",
    "KvmHypervisor",
    "KvmProbe",
    "probe",
]
