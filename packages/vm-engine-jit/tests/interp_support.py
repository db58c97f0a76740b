"""Shared pieces of the interpreter tier's tests: a paged guest memory with direct access
(shaped like vm-runtime's AddressSpace, which this package may not import), running compiled
vm-ir functions the way the evaluator runs them, and a few RISC-V encoders.

The test modules put this directory and vm-ir's tests (for its hypothesis ``strategies``) on
``sys.path`` themselves: pytest runs with ``--import-mode=importlib``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vm_core import PermissionFault, UnmappedAccess
from vm_engine_jit import BlockTrap, HelperContext
from vm_engine_jit.interp.pygen import Returned
from vm_ir import GuestTrap, MemoryFault

VM_IR_TESTS = Path(__file__).resolve().parents[2] / "vm-ir" / "tests"
RISCV_TESTS = Path(__file__).resolve().parents[2] / "vm-frontend-riscv" / "tests"

PAGE = 0x1000
R, W, X, CODE = 1, 2, 4, 16


def import_from(directory: Path, name: str) -> Any:
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    return __import__(name)


class PagedMemory:
    """``size`` bytes from address 0 with a permission byte per 4 KiB page (R, W, X and the
    CODE bit, as AddressSpace has them) and ``direct_access()``. A refused access raises
    ``fault(addr, size, access)``: vm-ir's ``MemoryFault`` (for comparing with the evaluator)
    or vm-core's errors (``core_faults=True``, what an engine expects)."""

    def __init__(self, size: int = 0x4000, prot: int = R | W, *, core_faults: bool = False,
                 direct: bool = True) -> None:
        self.size = size
        self.data = bytearray(size)
        self.perms = bytearray([prot]) * (size // PAGE)
        self.core_faults = core_faults
        self.direct = direct
        self.on_code_write: Callable[[int, int], None] | None = None
        self.slow_loads = 0
        self.slow_stores = 0
        raw = memoryview(self.data)
        self.views = {f"{k}{8 * n}": raw.cast(c.upper() if k == "u" else c)
                      for n, c in ((1, "b"), (2, "h"), (4, "i"), (8, "q")) for k in "us"}

    @property
    def base(self) -> int:
        """The host address of guest address 0 (the LLVM JIT accesses memory there)."""
        import ctypes

        if not hasattr(self, "_pinned"):
            self._pinned = (ctypes.c_char * self.size).from_buffer(self.data)
        address = ctypes.addressof(self._pinned)
        assert address % 16 == 0, "the JIT needs 16-byte aligned guest memory"
        return address

    def direct_access(self) -> dict[str, Any] | None:
        if not self.direct:
            return None
        return {"perms": self.perms, "views": self.views, "read": R, "write_mask": W | CODE,
                "write_ok": W}

    def _fault(self, addr: int, size: int, access: str, need: int) -> Exception:
        for a in range(addr, addr + size):
            page = a // PAGE
            if page >= len(self.perms) or not self.perms[page] & need:
                if not self.core_faults:
                    return MemoryFault(addr, size, access)
                if page >= len(self.perms) or not self.perms[page] & 7:
                    return UnmappedAccess(addr, size, access, fault_addr=a)  # type: ignore[arg-type]
                return PermissionFault(addr, size, access, fault_addr=a,  # type: ignore[arg-type]
                                       region="test memory")
        raise AssertionError("no fault")

    def _ok(self, addr: int, size: int, need: int) -> bool:
        return addr + size <= self.size and all(
            self.perms[p] & need for p in range(addr // PAGE, (addr + size - 1) // PAGE + 1))

    def load(self, addr: int, size: int) -> int:
        self.slow_loads += 1
        if not self._ok(addr, size, R):
            raise self._fault(addr, size, "read", R)
        return int.from_bytes(self.data[addr:addr + size], "little")

    def store(self, addr: int, size: int, value: int) -> None:
        self.slow_stores += 1
        if not self._ok(addr, size, W):
            raise self._fault(addr, size, "write", W)
        pages = range(addr // PAGE, (addr + size - 1) // PAGE + 1)
        if any(self.perms[p] & CODE for p in pages):
            for p in pages:
                self.perms[p] &= ~CODE
            if self.on_code_write is not None:
                self.on_code_write(addr, size)
        self.data[addr:addr + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

    def fetch(self, addr: int, max_length: int) -> bytes:
        end = addr
        while end < addr + max_length and end < self.size and self.perms[end // PAGE] & X:
            end = min(addr + max_length, (end // PAGE + 1) * PAGE)
        return bytes(self.data[addr:end])

    def write(self, addr: int, data: bytes) -> None:
        """Without permission checks (a loader)."""
        self.data[addr:addr + len(data)] = data

    def read(self, addr: int, length: int) -> bytes:
        return bytes(self.data[addr:addr + length])

    def mark_code(self, addr: int, length: int) -> None:
        for p in range(addr // PAGE, (addr + max(length, 1) - 1) // PAGE + 1):
            self.perms[p] |= CODE

    def protect(self, addr: int, length: int, prot: int) -> None:
        for p in range(addr // PAGE, (addr + length - 1) // PAGE + 1):
            self.perms[p] = prot


def call_compiled(fn: Callable, args: list[int], state: Any, memory: Any,
                  ctx: Any | None = None) -> tuple:
    """Run a compiled function; its outcome as ``strategies.describe`` gives the evaluator's."""
    ctx = ctx or HelperContext(state, memory)
    try:
        result = fn(state, memory, ctx, *args)
    except BlockTrap as trap:
        return ("trapped", trap.kind, trap.addr)
    except GuestTrap as trap:
        return ("trapped", trap.kind, trap.addr)
    except MemoryFault as fault:
        return ("trapped", "mem_fault", fault.addr)
    if isinstance(result, Returned):
        return ("returned", tuple(result))
    return ("exited", result)


# -- RISC-V encodings (RV64I subset, enough for hand-written test programs) ---------------------

_REGS = {f"x{i}": i for i in range(32)}
_REGS.update({"zero": 0, "ra": 1, "sp": 2, "gp": 3, "tp": 4, "t0": 5, "t1": 6, "t2": 7,
              "s0": 8, "s1": 9, "a0": 10, "a1": 11, "a2": 12, "a3": 13, "a4": 14, "a5": 15,
              "a6": 16, "a7": 17, "t3": 28, "t4": 29, "t5": 30, "t6": 31})


def _r(name: str | int) -> int:
    return name if isinstance(name, int) else _REGS[name]


def addi(rd, rs1, imm: int) -> int:
    return ((imm & 0xFFF) << 20) | (_r(rs1) << 15) | (_r(rd) << 7) | 0x13


def add(rd, rs1, rs2) -> int:
    return (_r(rs2) << 20) | (_r(rs1) << 15) | (_r(rd) << 7) | 0x33


def lui(rd, imm20: int) -> int:
    return ((imm20 & 0xFFFFF) << 12) | (_r(rd) << 7) | 0x37


def load(op: str, rd, rs1, imm: int) -> int:
    f3 = {"lb": 0, "lh": 1, "lw": 2, "ld": 3, "lbu": 4, "lhu": 5, "lwu": 6}[op]
    return ((imm & 0xFFF) << 20) | (_r(rs1) << 15) | (f3 << 12) | (_r(rd) << 7) | 0x03


def store(op: str, rs2, rs1, imm: int) -> int:
    f3 = {"sb": 0, "sh": 1, "sw": 2, "sd": 3}[op]
    return (((imm >> 5) & 0x7F) << 25) | (_r(rs2) << 20) | (_r(rs1) << 15) | (f3 << 12) | \
        ((imm & 0x1F) << 7) | 0x23


def branch(op: str, rs1, rs2, offset: int) -> int:
    f3 = {"beq": 0, "bne": 1, "blt": 4, "bge": 5, "bltu": 6, "bgeu": 7}[op]
    o = offset & 0x1FFF
    return (((o >> 12) & 1) << 31) | (((o >> 5) & 0x3F) << 25) | (_r(rs2) << 20) | \
        (_r(rs1) << 15) | (f3 << 12) | (((o >> 1) & 0xF) << 8) | (((o >> 11) & 1) << 7) | 0x63


def jal(rd, offset: int) -> int:
    o = offset & 0x1FFFFF
    return (((o >> 20) & 1) << 31) | (((o >> 1) & 0x3FF) << 21) | (((o >> 11) & 1) << 20) | \
        (((o >> 12) & 0xFF) << 12) | (_r(rd) << 7) | 0x6F


def amoadd_w(rd, rs2, rs1) -> int:
    return (0x00 << 27) | (_r(rs2) << 20) | (_r(rs1) << 15) | (2 << 12) | (_r(rd) << 7) | 0x2F


ECALL = 0x00000073
EBREAK = 0x00100073
FENCE_I = 0x0000100F


def code(*words: int) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in words)
