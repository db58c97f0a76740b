"""The KVM probe and KvmHypervisor, on this host and on simulated broken ones."""

from __future__ import annotations

import errno
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from vm_accel import kvm
from vm_accel.kvm import KVM_GET_API_VERSION, KvmHypervisor, KvmProbe, api, probe
from vm_core import AcceleratorUnavailable, Bus, Hypervisor, Vcpu, Vm

HAS_KVM = sys.platform.startswith("linux") and os.access("/dev/kvm", os.R_OK | os.W_OK)
needs_kvm = pytest.mark.skipif(not HAS_KVM, reason="this host has no usable /dev/kvm")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="probes Linux paths")


def test_request_number_is_linux_io_0xae_0x00() -> None:
    # From <linux/kvm.h>: #define KVM_GET_API_VERSION _IO(KVMIO, 0x00), KVMIO 0xAE.
    assert KVM_GET_API_VERSION == 0xAE00


@needs_kvm
def test_probe_finds_kvm_on_this_host() -> None:
    found = probe()
    assert found == KvmProbe(True, found.reason, 12, "/dev/kvm")
    assert "12" in found.reason


@needs_kvm
def test_hypervisor_on_this_host() -> None:
    hv = KvmHypervisor()
    assert hv.name == "kvm"
    assert hv.api_version == 12
    assert isinstance(hv, Hypervisor)
    with hv, hv.create_vm(mmio_bus=Bus()) as vm:
        assert isinstance(vm, Vm)
        assert isinstance(vm.create_vcpu(0), Vcpu)
    assert vm.closed
    assert hv.closed


@linux_only
def test_missing_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = str(tmp_path / "kvm")
    monkeypatch.setattr(api, "DEVICE_PATH", missing)
    found = probe()
    assert not found.usable
    assert found.api_version is None
    assert found.device_path == missing
    assert f"{missing} does not exist" in found.reason
    assert "modprobe" in found.fix
    with pytest.raises(AcceleratorUnavailable) as info:
        KvmHypervisor()
    assert info.value.accelerator == "kvm"
    assert info.value.reason == found.reason
    assert "does not exist" in str(info.value)


@linux_only
def test_permission_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: str, flags: int, mode: int = 0o777) -> int:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    monkeypatch.setattr(api.os, "open", refuse)
    found = probe("/dev/kvm")
    assert not found.usable
    assert "permission denied" in found.reason
    assert "'kvm' group" in found.fix


@linux_only
def test_something_that_is_not_kvm(tmp_path: Path) -> None:
    plain = tmp_path / "kvm"
    plain.write_bytes(b"")
    found = probe(str(plain))
    assert not found.usable
    assert "KVM_GET_API_VERSION failed" in found.reason
    assert "not a KVM device" in found.reason


@linux_only
def test_wrong_api_version_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "kvm"
    plain.write_bytes(b"")
    closed: list[int] = []
    real_close = os.close

    def fake_ioctl(fd: int, request: int, *args: object) -> int:
        assert request == 0xAE00
        return 11

    def tracking_close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    import fcntl

    monkeypatch.setattr(fcntl, "ioctl", fake_ioctl)
    monkeypatch.setattr(api.os, "close", tracking_close)
    found = probe(str(plain))
    assert not found.usable
    assert found.api_version == 11
    assert "version 11" in found.reason
    assert "12" in found.reason
    assert len(closed) == 1  # the descriptor is closed on every path


def test_not_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api.sys, "platform", "darwin")
    found = probe()
    assert not found.usable
    assert "Linux" in found.reason
    assert "'darwin'" in found.reason
    with pytest.raises(AcceleratorUnavailable, match="Linux"):
        KvmHypervisor()


def test_entry_point_names_the_hypervisor() -> None:
    (ep,) = [ep for ep in entry_points(group="vm.accelerators") if ep.name == "kvm"]
    assert ep.load() is KvmHypervisor
    assert kvm.KvmHypervisor is KvmHypervisor


@needs_kvm
def test_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    readme = Path(__file__).resolve().parents[1] / "README.md"
    example = re.search(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert example is not None
    exec(compile(example.group(1), str(readme), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "kvm 12" in out
    assert f"guest wrote {41 + 1}" in out
    assert "kind=<VcpuExitKind.HALT" in out
    assert f"pc={0x1000 + 7}" in out
