"""Trap kinds: why guest execution stopped. Traps are data, not errors."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TrapKind(enum.Enum):
    """Why guest code stopped; the values are the names used by vm-ir's ``trap`` op."""

    UNREACHABLE = "unreachable"
    """Code the lifter declared unreachable was reached (a lifter bug)."""
    ILLEGAL = "illegal"
    """An undefined or unsupported instruction."""
    BREAKPOINT = "breakpoint"
    """A breakpoint instruction (ebreak, brk, int3) or a debugger breakpoint."""
    SYSCALL = "syscall"
    """A system call instruction (ecall, svc, syscall)."""
    MEM_FAULT = "mem_fault"
    """A load, store or fetch that memory refused; `addr` says where."""
    MISALIGNED = "misaligned"
    """An access the architecture requires to be aligned was not."""
    DIV_BY_ZERO = "div_by_zero"
    """An integer division by zero on an architecture that traps on it (x86)."""
    HALT = "halt"
    """The CPU halted or waits for an interrupt (hlt, wfi)."""
    USER = "user"
    """A trap raised by a helper or an instrumentation hook; see `detail`."""


@dataclass(frozen=True)
class Trap:
    """A stop of guest execution: its kind, the pc of the instruction that
    caused it, and, where relevant, the faulting data address and a detail."""

    kind: TrapKind
    pc: int
    addr: int | None = None
    detail: str | None = None

    def __str__(self) -> str:
        text = f"{self.kind.value} at pc {self.pc:#x}"
        if self.addr is not None:
            text += f" (address {self.addr:#x})"
        if self.detail:
            text += f": {self.detail}"
        return text
