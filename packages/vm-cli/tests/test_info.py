"""`vm info`: packages, entry points, KVM, host; as tables and as JSON."""

from __future__ import annotations

import importlib.metadata
import json
from importlib.metadata import EntryPoint

import pytest

from vm_cli import info


def test_tables_list_the_packages_and_the_kvm_accelerator(vm) -> None:
    result = vm("info")
    assert result.code == 0, result.err
    out = result.out
    assert "vm-ir" in out and "vm-cli" in out
    kvm_rows = [line for line in out.splitlines() if "vm_accel.kvm:KvmHypervisor" in line]
    assert len(kvm_rows) == 1 and "kvm" in kvm_rows[0] and "yes" in kvm_rows[0]
    assert "KVM usable" in out
    assert "Python" in out


def test_json_lists_the_13_packages(vm) -> None:
    result = vm("info", "--json")
    assert result.code == 0
    report = json.loads(result.out)
    assert [p["name"] for p in report["packages"]] == list(info.PACKAGES)
    assert len(report["packages"]) == 13
    assert all(p["version"] for p in report["packages"])
    assert report["frontends"] == [
        {"name": "riscv64", "target": "vm_frontend_riscv.frontend:RiscvFrontend",
         "package": "vm-frontend-riscv", "loads": True, "error": None}]
    [kvm] = [a for a in report["accelerators"] if a["name"] == "kvm"]
    assert kvm == {"name": "kvm", "target": "vm_accel.kvm:KvmHypervisor",
                   "package": "vm-accel", "loads": True, "error": None}
    assert isinstance(report["kvm"]["usable"], bool) and report["kvm"]["reason"]
    assert report["host"]["python"].startswith("3.")


def test_a_package_that_is_not_installed() -> None:
    assert info._package("vm-not-a-package") == info.Package("vm-not-a-package", None)


def test_a_plugin_that_does_not_load(vm, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint("broken", "vm_no_such_module:Frontend", info.FRONTENDS)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [broken])
    [plugin] = info.collect().frontends
    assert plugin.name == "broken" and not plugin.loads
    assert plugin.error is not None and plugin.error.startswith("ModuleNotFoundError")
    result = vm("info")
    assert result.code == 0
    assert "ModuleNotFoundError" in result.out
