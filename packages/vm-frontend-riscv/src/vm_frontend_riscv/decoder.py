"""RV64GC + Zicsr/Zifencei/Zba/Zbb/Zbc/Zbs decoding from the pattern tables.

`decode(word)` looks at the low two bits: ``11`` selects the 32-bit table
(`insn32.decode`), anything else the 16-bit compressed table
(`insn16.decode`), whose patterns each name the 32-bit operation they expand
to. The result is an `Insn`: ``name`` is the mnemonic as written (``c.addi``),
``op`` the operation a lifter implements (``addi``), ``args`` the arguments of
that operation with the same names in both forms (``rd rs1 rs2 rs3 imm rm csr
aq rl shamt pred succ fm``). ``None`` means an illegal instruction: no
pattern matched, a reserved code point matched, or a reserved value
(`RESERVED_ARGS`: rounding modes 101 and 110) was used.

The tables are compiled once, at import; decoded words are cached.

    >>> insn = decode(0x00a00093)
    >>> insn.name, insn.op, dict(insn.args), insn.size, insn.ext
    ('addi', 'addi', {'rd': 1, 'rs1': 0, 'imm': 10}, 4, 'I')
    >>> insn = decode(0x4501)  # c.li a0, 0
    >>> insn.name, insn.op, dict(insn.args), insn.size, insn.ext
    ('c.li', 'addi', {'rd': 10, 'rs1': 0, 'imm': 0}, 2, 'C')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

from vm_core.decodetree import DecodeTable, parse_table

__all__ = [
    "EXTENSIONS",
    "OP_EXT",
    "RESERVED_ARGS",
    "TABLE16",
    "TABLE32",
    "Insn",
    "decode",
    "decode_bytes",
    "insn_size",
]


def _load(name: str) -> DecodeTable:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return parse_table(text, f"vm_frontend_riscv/{name}")


TABLE32: DecodeTable = _load("insn32.decode")
TABLE16: DecodeTable = _load("insn16.decode")

EXTENSIONS = ("I", "M", "A", "F", "D", "C", "Zicsr", "Zifencei", "Zba", "Zbb", "Zbc", "Zbs")
"""The extensions the tables cover, as `Insn.ext` spells them."""

OP_EXT: Mapping[str, str] = {p.name: str(p.ext) for p in TABLE32.patterns if not p.illegal}
"""The extension of each 32-bit operation (so ``c.fld`` is C *and*, through its op, D)."""

RESERVED_ARGS: Mapping[str, frozenset[int]] = {"rm": frozenset({0b101, 0b110})}
"""Argument values that make an otherwise matching encoding illegal."""


@dataclass(frozen=True, slots=True)
class Insn:
    """One decoded instruction.

    name: the mnemonic as encoded (``c.addi``, ``addi``); op: the 32-bit operation it
    performs (``addi`` for both); args: that operation's arguments (read-only);
    size: 2 or 4 bytes; ext: the extension the encoding belongs to (``C`` for every
    compressed one: `OP_EXT` gives the op's, e.g. ``D`` for ``c.fld``); raw: the word.
    """

    name: str
    op: str
    args: Mapping[str, int]
    size: int
    ext: str
    raw: int

    def __getitem__(self, key: str) -> int:
        return self.args[key]

    def get(self, key: str, default: int = 0) -> int:
        return self.args.get(key, default)


def insn_size(halfword: int) -> int:
    """The length in bytes of the instruction whose first 16 bits are `halfword` (2 or 4)."""
    return 4 if halfword & 3 == 3 else 2


@lru_cache(maxsize=1 << 16)
def _decode32(word: int) -> Insn | None:
    m = TABLE32.decode(word)
    if m is None:
        return None
    for key, bad in RESERVED_ARGS.items():
        if m.fields.get(key, -1) in bad:
            return None
    op = m.extra.get("op", m.name)
    return Insn(m.name, str(op), MappingProxyType(m.fields), 4, str(m.ext), word)


@lru_cache(maxsize=1 << 16)
def _decode16(word: int) -> Insn | None:
    m = TABLE16.decode(word)
    if m is None:
        return None
    return Insn(m.name, str(m.extra["op"]), MappingProxyType(m.fields), 2, str(m.ext), word)


def decode(word: int) -> Insn | None:
    """Decode one instruction; `word` holds at least its first 2 or 4 bytes (little end first).

    Returns None for an illegal instruction.
    """
    if word & 3 != 3:
        return _decode16(word & 0xFFFF)
    return _decode32(word & 0xFFFFFFFF)


def decode_bytes(data: bytes | bytearray | memoryview, offset: int = 0) -> Insn | None:
    """Decode the instruction at `data[offset:]`; None if illegal or cut short."""
    if len(data) - offset < 2:
        return None
    half = data[offset] | (data[offset + 1] << 8)
    if half & 3 != 3:
        return decode(half)
    if len(data) - offset < 4:
        return None
    return decode(half | (data[offset + 2] << 16) | (data[offset + 3] << 24))
