"""KVM backend (Linux, x86_64): hypervisor, VMs, memory slots, vCPUs and typed exits.

The device path `probe` uses by default is `vm_accel.kvm.api.DEVICE_PATH`.
"""

from vm_accel.kvm.api import (
    KVM_API_VERSION,
    KVM_GET_API_VERSION,
    KvmProbe,
    probe,
)
from vm_accel.kvm.errors import KvmError, KvmIoctlError
from vm_accel.kvm.exits import (
    DebugExit,
    ExceptionExit,
    FailEntryExit,
    HaltExit,
    HypercallExit,
    InternalErrorExit,
    InterruptedExit,
    IoExit,
    KvmExit,
    MmioExit,
    ShutdownExit,
    UnknownExit,
)
from vm_accel.kvm.hypervisor import KvmHypervisor
from vm_accel.kvm.signals import KICK_SIGNAL
from vm_accel.kvm.vcpu import REGISTER_NAMES, KvmVcpu
from vm_accel.kvm.vm import KvmVm, MemorySlot

__all__ = [
    "KICK_SIGNAL",
    "KVM_API_VERSION",
    "KVM_GET_API_VERSION",
    "REGISTER_NAMES",
    "DebugExit",
    "ExceptionExit",
    "FailEntryExit",
    "HaltExit",
    "HypercallExit",
    "InternalErrorExit",
    "InterruptedExit",
    "IoExit",
    "KvmError",
    "KvmExit",
    "KvmHypervisor",
    "KvmIoctlError",
    "KvmProbe",
    "KvmVcpu",
    "KvmVm",
    "MemorySlot",
    "MmioExit",
    "ShutdownExit",
    "UnknownExit",
    "probe",
]
