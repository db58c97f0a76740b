"""Trap kinds are a contract with vm-ir's `trap` op."""

from __future__ import annotations

import dataclasses

import pytest

from vm_core import Trap, TrapKind

# The names vm-ir's `trap` op uses; written out here, not derived from TrapKind.
IR_TRAP_NAMES = [
    "unreachable",
    "illegal",
    "breakpoint",
    "syscall",
    "mem_fault",
    "misaligned",
    "div_by_zero",
    "halt",
    "user",
]


def test_trap_kind_values_are_exactly_the_ir_names() -> None:
    assert sorted(k.value for k in TrapKind) == sorted(IR_TRAP_NAMES)
    for name in IR_TRAP_NAMES:
        assert TrapKind(name).value == name
        assert TrapKind[name.upper()] is TrapKind(name)


def test_trap_is_frozen_data() -> None:
    trap = Trap(TrapKind.MEM_FAULT, pc=0x1000, addr=0xDEAD, detail="store")
    assert trap == Trap(TrapKind.MEM_FAULT, 0x1000, 0xDEAD, "store")
    with pytest.raises(dataclasses.FrozenInstanceError):
        trap.pc = 0  # type: ignore[misc]
    assert Trap(TrapKind.HALT, 4).addr is None


def test_trap_text() -> None:
    assert str(Trap(TrapKind.SYSCALL, 0x10)) == "syscall at pc 0x10"
    assert str(Trap(TrapKind.MEM_FAULT, 0x10, 0x20, "store")) == (
        "mem_fault at pc 0x10 (address 0x20): store"
    )
