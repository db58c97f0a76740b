"""The error hierarchy: every message says what was wrong and what to do."""

from __future__ import annotations

import copy
import pickle

import pytest

import vm_core
from vm_core import (
    AcceleratorUnavailable,
    BusError,
    BusOverlapError,
    BusUnmappedError,
    ConfigError,
    GuestMemoryError,
    MemoryMapError,
    MmioBulkAccess,
    OutOfRangeAccess,
    PermissionFault,
    RegionOverlapError,
    UnmappedAccess,
    UnsupportedError,
    VmError,
)

# One instance of every error class, and text its message must contain.
SAMPLES: list[tuple[VmError, list[str]]] = [
    (VmError("the thing broke", "fix the thing"), ["the thing broke", "fix the thing"]),
    (ConfigError("no kernel given", "pass --kernel PATH"), ["--kernel"]),
    (UnsupportedError("the V extension", "build the guest without -march=rv64gcv"), ["V ext"]),
    (AcceleratorUnavailable("kvm", "/dev/kvm does not exist"), ["'kvm'", "/dev/kvm", "--accel"]),
    (
        MemoryMapError("no region starts at 0x5000", "pass a region base", base=0x5000),
        ["0x5000"],
    ),
    (
        RegionOverlapError(
            base=0x1000, size=0x1000, name="a", other_base=0x1800, other_size=0x10, other_name="b"
        ),
        ["'a'", "'b'", "[0x1000, 0x2000)", "[0x1800, 0x1810)"],
    ),
    (
        GuestMemoryError("page 0x7000 is swapped out", "retry", addr=0x7000, size=8, access="read"),
        ["0x7000", "retry"],
    ),
    (UnmappedAccess(0x4000, 4, "read"), ["read", "4 bytes", "0x4000"]),
    (UnmappedAccess(0x3FFE, 4, "write", fault_addr=0x4000), ["write", "0x3ffe", "0x4000"]),
    (OutOfRangeAccess(-1, 1, "read"), ["1 byte ", "64-bit"]),
    (OutOfRangeAccess(0x10E, 4, "read", fault_addr=0x110, region="uart"), ["'uart'", "0x110"]),
    (PermissionFault(0x10, 4, "write", fault_addr=0x10, region="rom"), ["'rom'", "read-only"]),
    (MmioBulkAccess(0x100, 8, "exec", fault_addr=0x100, region="dev"), ["exec", "'dev'"]),
    (
        BusOverlapError(bus="pio", base=0x3F8, length=8, other_base=0x3F8, other_length=8),
        ["'pio'", "[0x3f8, 0x400)"],
    ),
    (BusUnmappedError(bus="mmio", addr=0x9000, size=4, access="read"), ["0x9000", "4-byte"]),
    (
        BusUnmappedError(
            bus="mmio", addr=0x100E, size=4, access="write", range_base=0x1000, range_length=0x10
        ),
        ["past the end", "[0x1000, 0x1010)"],
    ),
    (BusError("no device range starts at 0x10", "pass the inserted base"), ["0x10"]),
]


@pytest.mark.parametrize(("error", "fragments"), SAMPLES, ids=lambda v: type(v).__name__)
def test_messages_state_the_problem_and_the_fix(error: VmError, fragments: list[str]) -> None:
    text = str(error)
    assert text == f"{error.problem}; {error.fix}"
    assert error.problem.strip()
    assert error.fix.strip()
    assert "\n" not in text
    for fragment in fragments:
        assert fragment in text


@pytest.mark.parametrize(("error", "fragments"), SAMPLES, ids=lambda v: type(v).__name__)
def test_errors_survive_pickle_and_copy(error: VmError, fragments: list[str]) -> None:
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        assert vars(clone) == vars(error)


def test_every_exported_error_is_sampled_and_rooted_in_vm_error() -> None:
    exported = {
        obj
        for name in vm_core.__all__
        if isinstance(obj := getattr(vm_core, name), type) and issubclass(obj, Exception)
    }
    assert all(issubclass(cls, VmError) for cls in exported)
    assert exported == {type(e) for e, _ in SAMPLES}


def test_hierarchy() -> None:
    for cls in (UnmappedAccess, OutOfRangeAccess, PermissionFault, MmioBulkAccess):
        assert issubclass(cls, GuestMemoryError)
    assert issubclass(RegionOverlapError, MemoryMapError)
    assert issubclass(MemoryMapError, ConfigError)
    assert issubclass(BusOverlapError, BusError)
    assert issubclass(BusUnmappedError, BusError)


def test_memory_errors_carry_structured_fields() -> None:
    err = UnmappedAccess(0x3FFE, 4, "write", fault_addr=0x4000)
    assert (err.addr, err.size, err.access, err.fault_addr, err.region) == (
        0x3FFE,
        4,
        "write",
        0x4000,
        None,
    )
    assert UnmappedAccess(0x10, 1, "exec").fault_addr == 0x10
    unavailable = AcceleratorUnavailable("hvf", "not macOS", fix="use --accel none")
    assert (unavailable.accelerator, unavailable.reason) == ("hvf", "not macOS")
    assert str(unavailable).endswith("; use --accel none")
