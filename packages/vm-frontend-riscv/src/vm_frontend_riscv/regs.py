"""RISC-V register names: integer and floating-point ABI names, and CSR names.

Names follow the RISC-V ELF psABI (x registers, f registers) and the
privileged specification (CSRs). ``XREG_NAMES[n]`` / ``FREG_NAMES[n]`` is the
ABI name of register n; `CSR_NAMES` maps a CSR number to its name.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CSR_NAMES", "CSR_NUMBERS", "FREG_NAMES", "XREG_NAMES", "csr_name"]

XREG_NAMES: tuple[str, ...] = (
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2",
    "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
    "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7",
    "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
)  # fmt: skip

FREG_NAMES: tuple[str, ...] = (
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7",
    "fs0", "fs1", "fa0", "fa1", "fa2", "fa3", "fa4", "fa5",
    "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7",
    "fs8", "fs9", "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
)  # fmt: skip


def _csrs() -> dict[int, str]:
    names: dict[int, str] = {
        # Unprivileged floating-point CSRs.
        0x001: "fflags", 0x002: "frm", 0x003: "fcsr",
        # User-level interrupt handling (N extension).
        0x000: "ustatus", 0x004: "uie", 0x005: "utvec",
        0x040: "uscratch", 0x041: "uepc", 0x042: "ucause", 0x043: "utval", 0x044: "uip",
        # Counters and timers (read-only shadows).
        0xC00: "cycle", 0xC01: "time", 0xC02: "instret",
        0xC80: "cycleh", 0xC81: "timeh", 0xC82: "instreth",
        # Supervisor.
        0x100: "sstatus", 0x102: "sedeleg", 0x103: "sideleg", 0x104: "sie",
        0x105: "stvec", 0x106: "scounteren",
        0x140: "sscratch", 0x141: "sepc", 0x142: "scause", 0x143: "stval", 0x144: "sip",
        0x180: "satp",
        # Machine information, trap setup and handling.
        0xF11: "mvendorid", 0xF12: "marchid", 0xF13: "mimpid", 0xF14: "mhartid",
        0x300: "mstatus", 0x301: "misa", 0x302: "medeleg", 0x303: "mideleg",
        0x304: "mie", 0x305: "mtvec", 0x306: "mcounteren",
        0x340: "mscratch", 0x341: "mepc", 0x342: "mcause", 0x343: "mtval", 0x344: "mip",
        # Machine counters.
        0xB00: "mcycle", 0xB02: "minstret", 0xB80: "mcycleh", 0xB82: "minstreth",
        # Debug and trace.
        0x7A0: "tselect", 0x7A1: "tdata1", 0x7A2: "tdata2", 0x7A3: "tdata3",
        0x7B0: "dcsr", 0x7B1: "dpc", 0x7B2: "dscratch",
    }  # fmt: skip
    for n in range(3, 32):
        names[0xC00 + n] = f"hpmcounter{n}"
        names[0xC80 + n] = f"hpmcounter{n}h"
        names[0xB00 + n] = f"mhpmcounter{n}"
        names[0xB80 + n] = f"mhpmcounter{n}h"
        names[0x320 + n] = f"mhpmevent{n}"
    for n in range(4):
        names[0x3A0 + n] = f"pmpcfg{n}"
    for n in range(16):
        names[0x3B0 + n] = f"pmpaddr{n}"
    return names


CSR_NAMES: Mapping[int, str] = _csrs()
"""CSR number -> name, for the CSRs a disassembler names."""

CSR_NUMBERS: Mapping[str, int] = {name: num for num, name in CSR_NAMES.items()}
"""CSR name -> number."""


def csr_name(number: int) -> str:
    """The CSR's name, or its number in decimal when it has none."""
    return CSR_NAMES.get(number, str(number))
