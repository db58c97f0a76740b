"""The KVM device and its version check (`probe`); the rest of the API is in `uapi`."""

from __future__ import annotations

import errno
import os
import sys
from dataclasses import dataclass

DEVICE_PATH = "/dev/kvm"
"""Where the KVM device lives; `probe` reads it at call time."""

KVMIO = 0xAE
"""The ioctl type byte of every KVM request."""

KVM_API_VERSION = 12
"""The only KVM API version Linux has shipped since 2.6.22; anything else is refused."""


def _io(kind: int, nr: int) -> int:
    """Linux's ``_IO(type, nr)``: an ioctl request with no argument."""
    return (kind << 8) | nr


KVM_GET_API_VERSION = _io(KVMIO, 0x00)

_NOT_USABLE_FIX = "run without --accel to use the software engines"


@dataclass(frozen=True)
class KvmProbe:
    """What `probe` found: whether KVM is usable, why (not), and how to fix it."""

    usable: bool
    reason: str
    api_version: int | None
    device_path: str
    fix: str = ""


def probe(device_path: str | None = None) -> KvmProbe:
    """Open the KVM device read-write, ask its API version, and close it again.

    Never raises for a host without KVM: the answer says precisely what is
    missing (no Linux, no device, no permission, wrong API version).
    """
    path = DEVICE_PATH if device_path is None else device_path

    def unusable(reason: str, fix: str, version: int | None = None) -> KvmProbe:
        return KvmProbe(False, reason, version, path, fix)

    if not sys.platform.startswith("linux"):
        return unusable(
            f"KVM needs a Linux host, and this host is {sys.platform!r}",
            "use HVF on macOS or WHPX on Windows, or run without --accel",
        )
    import fcntl  # POSIX only, hence not at module level

    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return unusable(
            f"{path} does not exist: the kvm module is not loaded, virtualization is "
            "disabled in the firmware, or this VM or container does not expose it",
            "load kvm_intel or kvm_amd (modprobe), enable VT-x/AMD-V, or pass "
            f"{path} into the container; otherwise {_NOT_USABLE_FIX}",
        )
    except PermissionError:
        return unusable(
            f"permission denied opening {path} read-write",
            "add your user to the 'kvm' group (sudo usermod -aG kvm $USER, then log in "
            f"again) or grant access to {path}; otherwise {_NOT_USABLE_FIX}",
        )
    except OSError as e:
        return unusable(
            f"cannot open {path}: {os.strerror(e.errno) if e.errno else e}",
            f"check that {path} is the KVM device; otherwise {_NOT_USABLE_FIX}",
        )
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as e:
        detail = "not a KVM device" if e.errno == errno.ENOTTY else os.strerror(e.errno or 0)
        return unusable(
            f"KVM_GET_API_VERSION failed on {path}: {detail}",
            f"point vm at the real KVM device; otherwise {_NOT_USABLE_FIX}",
        )
    finally:
        os.close(fd)
    if version != KVM_API_VERSION:
        return unusable(
            f"{path} speaks KVM API version {version}, and vm-accel needs {KVM_API_VERSION}",
            f"use a Linux kernel with the standard KVM API; otherwise {_NOT_USABLE_FIX}",
            version,
        )
    return KvmProbe(True, f"{path} answers KVM API version {version}", version, path)
