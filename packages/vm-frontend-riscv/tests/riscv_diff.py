"""Differential testing harness: generated RV64GC + Zb* programs, run by our frontend and
interpreter and by unicorn's riscv64 CPU (QEMU's), from the same initial state.

The generator (`programs`) writes each instruction from the bit layouts of the RISC-V
unprivileged spec (not from our decode tables), and keeps a program runnable and
comparable on both sides:

- straight-line code with forward control flow only (conditional branches, ``jal``,
  ``jalr`` and the compressed jumps, each skipping a short body), ending at ``END``;
- loads and stores address one 8 KiB data region through the base registers x2 (sp) and
  x8, which nothing but ``c.addi16sp`` (tracked) writes, or through a temporary set just
  before; AMOs, LR and SC through an aligned temporary;
- CSR writes of ``frm`` use known values (or make ``frm`` unknown), so that an instruction
  with the dynamic rounding mode is only generated where ``frm`` is valid;
- each f register carries a *tag* saying how both sides may read it (see `Tag`).

Unicorn 2.1.4 (QEMU 5.0) differs from the spec in ways the harness absorbs, each checked
against the spec and documented in `test_diff_unicorn.py`'s docstring:
single-precision results are not always NaN-boxed and operands are not checked for
boxing (the f tags), no Zb* extension (a code hook executes those instructions from the
spec's pseudo-code, `ZB_SPEC`), fmin/fmax with one signaling NaN and fma with inf*0 + a
quiet NaN (a code hook gives the spec's result there, `QUIRKS`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1
BOX = 0xFFFFFFFF00000000

CODE = 0x10000
CODE_SIZE = 0x3000
DATA = 0x20000
DATA_SIZE = 0x2000
BASES = (2, 8)
"""Base registers of the data region: only a tracked ``c.addi16sp`` writes them."""
EBREAK = 0x00100073
NO_RESERVATION = M64

# ---------------------------------------------------------------------------------------------
# Encoders: the unprivileged spec's "Base Instruction Formats" and "RVC Instruction Formats".
# ---------------------------------------------------------------------------------------------


def scatter(value: int, top: int, layout: str) -> int:
    """Place bits of ``value`` from bit ``top`` down as the spec writes them: ``"12|10:5"``."""
    word, pos = 0, top
    for part in layout.split("|"):
        hi, _, lo = part.partition(":")
        for bit in range(int(hi), int(lo or hi) - 1, -1):
            word |= ((value >> bit) & 1) << pos
            pos -= 1
    return word


def r_type(opc: int, f3: int, f7: int, rd: int, rs1: int, rs2: int) -> int:
    return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc


def i_type(opc: int, f3: int, rd: int, rs1: int, imm: int) -> int:
    return (imm & 0xFFF) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc


def s_type(opc: int, f3: int, rs1: int, rs2: int, imm: int) -> int:
    return scatter(imm, 31, "11:5") | rs2 << 20 | rs1 << 15 | f3 << 12 | scatter(imm, 11, "4:0") | opc


def b_type(f3: int, rs1: int, rs2: int, imm: int) -> int:
    return (scatter(imm, 31, "12|10:5") | rs2 << 20 | rs1 << 15 | f3 << 12
            | scatter(imm, 11, "4:1|11") | 0b1100011)


def u_type(opc: int, rd: int, imm: int) -> int:
    return (imm & 0xFFFFF000) | rd << 7 | opc


def j_type(rd: int, imm: int) -> int:
    return scatter(imm, 31, "20|10:1|11|19:12") | rd << 7 | 0b1101111


def r4_type(opc: int, fmt: int, rd: int, rs1: int, rs2: int, rs3: int, rm: int) -> int:
    return rs3 << 27 | fmt << 25 | rs2 << 20 | rs1 << 15 | rm << 12 | rd << 7 | opc


OP, OP32, OPIMM, OPIMM32 = 0b0110011, 0b0111011, 0b0010011, 0b0011011
LOAD, STORE, LOADFP, STOREFP = 0b0000011, 0b0100011, 0b0000111, 0b0100111
SYSTEM, AMO, OPFP, MISCMEM = 0b1110011, 0b0101111, 0b1010011, 0b0001111
LUI, AUIPC, JALR = 0b0110111, 0b0010111, 0b1100111
FMA_OPC = {"fmadd": 0b1000011, "fmsub": 0b1000111, "fnmsub": 0b1001011, "fnmadd": 0b1001111}


def c_q(f3: int, quadrant: int) -> int:
    return f3 << 13 | quadrant


# ---------------------------------------------------------------------------------------------
# Instruction tables (name -> encoding constants), written from the spec's opcode listings.
# ---------------------------------------------------------------------------------------------

R_OPS: dict[str, tuple[int, int, int, str]] = {
    # name: (opcode, funct3, funct7, extension)
    "add": (OP, 0, 0, "I"), "sub": (OP, 0, 0x20, "I"), "sll": (OP, 1, 0, "I"),
    "slt": (OP, 2, 0, "I"), "sltu": (OP, 3, 0, "I"), "xor": (OP, 4, 0, "I"),
    "srl": (OP, 5, 0, "I"), "sra": (OP, 5, 0x20, "I"), "or": (OP, 6, 0, "I"),
    "and": (OP, 7, 0, "I"),
    "addw": (OP32, 0, 0, "I"), "subw": (OP32, 0, 0x20, "I"), "sllw": (OP32, 1, 0, "I"),
    "srlw": (OP32, 5, 0, "I"), "sraw": (OP32, 5, 0x20, "I"),
    "mul": (OP, 0, 1, "M"), "mulh": (OP, 1, 1, "M"), "mulhsu": (OP, 2, 1, "M"),
    "mulhu": (OP, 3, 1, "M"), "div": (OP, 4, 1, "M"), "divu": (OP, 5, 1, "M"),
    "rem": (OP, 6, 1, "M"), "remu": (OP, 7, 1, "M"),
    "mulw": (OP32, 0, 1, "M"), "divw": (OP32, 4, 1, "M"), "divuw": (OP32, 5, 1, "M"),
    "remw": (OP32, 6, 1, "M"), "remuw": (OP32, 7, 1, "M"),
    "add.uw": (OP32, 0, 0b0000100, "Zba"),
    "sh1add": (OP, 2, 0b0010000, "Zba"), "sh2add": (OP, 4, 0b0010000, "Zba"),
    "sh3add": (OP, 6, 0b0010000, "Zba"), "sh1add.uw": (OP32, 2, 0b0010000, "Zba"),
    "sh2add.uw": (OP32, 4, 0b0010000, "Zba"), "sh3add.uw": (OP32, 6, 0b0010000, "Zba"),
    "andn": (OP, 7, 0b0100000, "Zbb"), "orn": (OP, 6, 0b0100000, "Zbb"),
    "xnor": (OP, 4, 0b0100000, "Zbb"), "max": (OP, 6, 0b0000101, "Zbb"),
    "maxu": (OP, 7, 0b0000101, "Zbb"), "min": (OP, 4, 0b0000101, "Zbb"),
    "minu": (OP, 5, 0b0000101, "Zbb"), "rol": (OP, 1, 0b0110000, "Zbb"),
    "ror": (OP, 5, 0b0110000, "Zbb"), "rolw": (OP32, 1, 0b0110000, "Zbb"),
    "rorw": (OP32, 5, 0b0110000, "Zbb"),
    "clmul": (OP, 1, 0b0000101, "Zbc"), "clmulr": (OP, 2, 0b0000101, "Zbc"),
    "clmulh": (OP, 3, 0b0000101, "Zbc"),
    "bclr": (OP, 1, 0b0100100, "Zbs"), "bext": (OP, 5, 0b0100100, "Zbs"),
    "binv": (OP, 1, 0b0110100, "Zbs"), "bset": (OP, 1, 0b0010100, "Zbs"),
}

I_OPS: dict[str, tuple[int, int]] = {
    "addi": (OPIMM, 0), "slti": (OPIMM, 2), "sltiu": (OPIMM, 3), "xori": (OPIMM, 4),
    "ori": (OPIMM, 6), "andi": (OPIMM, 7), "addiw": (OPIMM32, 0),
}

SHIFT_OPS: dict[str, tuple[int, int, int, int, str]] = {
    # name: (opcode, funct3, the bits above shamt, shamt width, extension)
    "slli": (OPIMM, 1, 0b000000, 6, "I"), "srli": (OPIMM, 5, 0b000000, 6, "I"),
    "srai": (OPIMM, 5, 0b010000, 6, "I"),
    "slliw": (OPIMM32, 1, 0b0000000, 5, "I"), "srliw": (OPIMM32, 5, 0b0000000, 5, "I"),
    "sraiw": (OPIMM32, 5, 0b0100000, 5, "I"),
    "slli.uw": (OPIMM32, 1, 0b000010, 6, "Zba"), "rori": (OPIMM, 5, 0b011000, 6, "Zbb"),
    "roriw": (OPIMM32, 5, 0b0110000, 5, "Zbb"),
    "bclri": (OPIMM, 1, 0b010010, 6, "Zbs"), "bexti": (OPIMM, 5, 0b010010, 6, "Zbs"),
    "binvi": (OPIMM, 1, 0b011010, 6, "Zbs"), "bseti": (OPIMM, 1, 0b001010, 6, "Zbs"),
}

UNARY_OPS: dict[str, tuple[int, int, int]] = {
    # name: (opcode, funct3, imm[11:0]) -- rs2 is part of the immediate
    "clz": (OPIMM, 1, 0x600), "ctz": (OPIMM, 1, 0x601), "cpop": (OPIMM, 1, 0x602),
    "sext.b": (OPIMM, 1, 0x604), "sext.h": (OPIMM, 1, 0x605),
    "clzw": (OPIMM32, 1, 0x600), "ctzw": (OPIMM32, 1, 0x601), "cpopw": (OPIMM32, 1, 0x602),
    "zext.h": (OP32, 4, 0x080), "orc.b": (OPIMM, 5, 0x287), "rev8": (OPIMM, 5, 0x6B8),
}

BRANCHES = {"beq": 0, "bne": 1, "blt": 4, "bge": 5, "bltu": 6, "bgeu": 7}
LOADS = {"lb": (0, 1), "lh": (1, 2), "lw": (2, 4), "ld": (3, 8), "lbu": (4, 1), "lhu": (5, 2),
         "lwu": (6, 4)}
STORES = {"sb": (0, 1), "sh": (1, 2), "sw": (2, 4), "sd": (3, 8)}
AMO_F5 = {"amoswap": 0b00001, "amoadd": 0b00000, "amoxor": 0b00100, "amoand": 0b01100,
          "amoor": 0b01000, "amomin": 0b10000, "amomax": 0b10100, "amominu": 0b11000,
          "amomaxu": 0b11100}
CSRS = {"fflags": 0x001, "frm": 0x002, "fcsr": 0x003}
CSR_OPS = {"csrrw": 1, "csrrs": 2, "csrrc": 3, "csrrwi": 5, "csrrsi": 6, "csrrci": 7}

FP_ARITH = {"fadd": 0b00000, "fsub": 0b00001, "fmul": 0b00010, "fdiv": 0b00011}
FP_SGNJ_MINMAX = {"fsgnj": (0b00100, 0), "fsgnjn": (0b00100, 1), "fsgnjx": (0b00100, 2),
                  "fmin": (0b00101, 0), "fmax": (0b00101, 1)}
FP_CMP = {"feq": 2, "flt": 1, "fle": 0}
INT_NAMES = ("w", "wu", "l", "lu")
FMT = {"s": 0, "d": 1}


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

F32_SPECIAL = [0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7FA00000, 0xFFC00001,
               0x7F800001, 0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF, 0x3F800000,
               0xBF800000, 0x4F000000, 0x5F000000, 0xCF000000, 0xDF000000, 0x3F000000,
               0x3EFFFFFF, 0x40490FDB, 0x4EFFFFFF, 0x33800000]
F64_SPECIAL = [0, 1 << 63, 0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000,
               0x7FF4000000000000, 0xFFF8000000000001, 0x7FF0000000000001, 1,
               0x800FFFFFFFFFFFFF, 0x0010000000000000, 0x7FEFFFFFFFFFFFFF, 0x3FF0000000000000,
               0xBFF0000000000000, 0x41E0000000000000, 0x43E0000000000000, 0xC3E0000000000000,
               0xC1E0000000000000, 0x41DFFFFFFFC00000, 0x3FE0000000000000, 0x3FDFFFFFFFFFFFFF,
               0x400921FB54442D18, 0x43F0000000000000, 0x3CA0000000000000, 0x36A0000000000000]
INT_EDGES = [0, 1, 2, 3, M64, M64 - 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFF80000000,
             0x7FFFFFFFFFFFFFFF, 1 << 63, 1 << 32, 31, 32, 63, 64, 0xFF, 0x8000, 0xFFFF8000,
             0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x00FF00FF00FF00FF]


def int_values() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(INT_EDGES), st.integers(0, M64),
                     st.integers(-300, 300).map(lambda v: v & M64),
                     st.integers(-(1 << 31), (1 << 31) - 1).map(lambda v: v & M64))


def random_f32(rng: random.Random) -> int:
    if rng.random() < 0.5:
        return rng.choice(F32_SPECIAL) ^ (rng.getrandbits(1) << 31 if rng.random() < 0.3 else 0)
    exp = rng.choice([0, 1, 126, 127, 128, 150, 157, 158, 190, 254, 255, rng.randrange(256)])
    return rng.getrandbits(1) << 31 | exp << 23 | rng.getrandbits(23)


def random_f64(rng: random.Random) -> int:
    if rng.random() < 0.5:
        return rng.choice(F64_SPECIAL) ^ (rng.getrandbits(1) << 63 if rng.random() < 0.3 else 0)
    exp = rng.choice([0, 1, 1022, 1023, 1024, 1075, 1054, 1086, 1087, 2046, 2047,
                      rng.randrange(2048)])
    return rng.getrandbits(1) << 63 | exp << 52 | rng.getrandbits(52)


def data_bytes(seed: int) -> bytes:
    """The data region's initial contents: a mix of floats, integers and noise per 8 bytes."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < DATA_SIZE:
        kind = rng.randrange(6)
        if kind == 0:
            word = rng.getrandbits(64)
        elif kind == 1:
            word = random_f64(rng)
        elif kind == 2:
            word = random_f32(rng) | random_f32(rng) << 32
        elif kind == 3:
            word = BOX | random_f32(rng)
        elif kind == 4:
            word = rng.choice(INT_EDGES)
        else:
            word = rng.randrange(-5, 5) & M64
        out += word.to_bytes(8, "little")
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# f register tags
# ---------------------------------------------------------------------------------------------


class Tag:
    """How an f register may be read on both sides.

    B: the same 64 bits on both sides, a NaN-boxed single: readable as single and double.
    S: a single-precision result: the low 32 bits agree, our register is NaN-boxed, unicorn's
       upper half may not be (it does not box): readable as a single only.
    D: the same 64 bits on both sides, not known to be boxed: readable as 64 bits only
       (and by the transfer instructions fsw and fmv.x.w, which ignore boxing).
    X: S on one path and D on another (after a conditional branch): not readable.
    """

    B, S, D, X = "B", "S", "D", "X"

    @staticmethod
    def merge(a: str, b: str) -> str:
        if a == b:
            return a
        pair = {a, b}
        if pair == {"B", "D"}:
            return "D"
        if pair == {"B", "S"}:
            return "S"
        return "X"


SINGLE_OK = frozenset("BS")
DOUBLE_OK = frozenset("BD")
TRANSFER_OK = frozenset("BSD")


# ---------------------------------------------------------------------------------------------
# Programs
# ---------------------------------------------------------------------------------------------


@dataclass
class Ins:
    """One instruction: its name, size, and encoding (given its pc and the label addresses)."""

    name: str
    size: int
    encode: Callable[[int, dict[int, int]], int]
    #: a unicorn code hook for this instruction (Zb* semantics, quirk fix-ups)
    uc_hook: Callable[[Any, int], bool] | None = None
    #: the label this instruction defines at its own address (a branch target)
    label: int | None = None


@dataclass
class Program:
    """A generated program: the initial state, the instructions from ``start`` to ``end``
    (where an ebreak follows), and the f register tags at the end (how to compare them)."""

    start: int
    x: list[int]
    f: list[int]
    fflags: int
    frm: int
    data_seed: int
    insns: list[Ins]
    ftags: list[str]
    final_tags: list[str] = field(default_factory=list)
    #: run our side compiled (the interpreter's Python code) or evaluated (vm-ir's evaluator)
    compiled: bool = True
    words: list[tuple[int, int, int]] = field(default_factory=list)  # (pc, word, size)
    end: int = 0

    def __repr__(self) -> str:
        return f"Program(\n{self.listing()}\ninitial state:\n{self.initial_state()})"

    def code(self) -> bytes:
        out = bytearray()
        for _pc, word, size in self.words:
            out += word.to_bytes(size, "little")
        return bytes(out + EBREAK.to_bytes(4, "little"))

    def listing(self) -> str:
        from vm_frontend_riscv.disasm import disassemble

        lines = []
        for (pc, word, size), ins in zip(self.words, self.insns, strict=True):
            hexw = f"{word:08x}" if size == 4 else f"    {word:04x}"
            lines.append(f"  {pc:#x}: {hexw}  {disassemble(word, pc):<32} ; {ins.name}")
        lines.append(f"  {self.end:#x}: end")
        return "\n".join(lines)

    def initial_state(self) -> str:
        xs = " ".join(f"x{i}={v:#x}" for i, v in enumerate(self.x) if i)
        fs = " ".join(f"f{i}={v:#x}/{t}" for i, (v, t) in enumerate(zip(self.f, self.ftags,
                                                                           strict=True)))
        return (f"{xs}\n{fs}\nfflags={self.fflags:#x} frm={self.frm} "
                f"data_seed={self.data_seed} compiled={self.compiled}")


END_LABEL = -1


class Gen:
    """Draws one program's instructions, keeping track of what both sides can agree on."""

    def __init__(self, draw: Callable, x: list[int], ftags: list[str], frm: int,
                 focus: str | None = None) -> None:
        self.draw = draw
        self.focus = focus
        self.x_known: dict[int, int] = {r: x[r] for r in BASES}
        self.ftags = ftags
        self.frm: frozenset[int] = frozenset({frm})
        self.insns: list[Ins] = []
        self.locked: set[int] = set()  # x registers the current gadget must not overwrite
        self.depth = 0
        self.next_label = 0

    # -- drawing helpers -------------------------------------------------------------------------
    def pick(self, seq):
        return self.draw(st.sampled_from(list(seq)))

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.one_of(st.sampled_from([lo, hi, max(lo, min(hi, 0))]),
                                   st.integers(lo, hi)))

    def wreg(self, allow_zero: bool = True) -> int:
        """An x register this instruction may write."""
        regs = [r for r in range(0 if allow_zero else 1, 32)
                if r not in BASES and r not in self.locked]
        return self.pick(regs)

    def cwreg(self) -> int:
        """x9..x15: an rd' register that may be written (x8 is a base)."""
        return self.pick([r for r in range(9, 16) if r not in self.locked])

    def rreg(self) -> int:
        return self.draw(st.integers(0, 31))

    def creg(self) -> int:
        return self.draw(st.integers(8, 15))

    def emit(self, name: str, word: int | Callable[[int, dict[int, int]], int], size: int = 4,
             uc_hook=None) -> Ins:
        encode = word if callable(word) else (lambda pc, labels, w=word: w)
        ins = Ins(name, size, encode, uc_hook)
        self.insns.append(ins)
        return ins

    def new_label(self) -> int:
        self.next_label += 1
        return self.next_label

    # -- f registers -----------------------------------------------------------------------------
    def fsrc(self, ok: frozenset[str], want_single: bool, among: range = range(32)) -> int:
        """An f register readable as ``ok`` says (one is made if there is none)."""
        regs = [r for r in among if self.ftags[r] in ok]
        if regs:
            return self.pick(regs)
        r = self.pick(among)
        src = self.rreg()
        if want_single:
            self.emit("fmv.w.x", r_type(OPFP, 0, 0b1111000, r, src, 0))
            self.ftags[r] = Tag.S
        else:
            self.emit("fmv.d.x", r_type(OPFP, 0, 0b1111001, r, src, 0))
            self.ftags[r] = Tag.D
        return r

    def fdst(self) -> int:
        return self.draw(st.integers(0, 31))

    def rm(self) -> int:
        """A rounding mode: a static one, or dynamic (111) where frm is known to be valid."""
        choices = [0, 1, 2, 3, 4]
        if max(self.frm) <= 4:
            choices += [7, 7]
        return self.pick(choices)

    # -- memory ------------------------------------------------------------------------------------
    def mem_imm(self, base_value: int, size: int, lo: int, hi: int, scale: int = 1,
                align: int = 1) -> int | None:
        """An offset in [lo, hi] (a multiple of ``scale``) putting the access inside DATA."""
        first = max(lo, DATA - base_value)
        last = min(hi, DATA + DATA_SIZE - size - base_value)
        cands_lo = -(-first // scale)
        cands_hi = last // scale
        if cands_lo > cands_hi:
            return None
        if align > 1:
            opts = [k * scale for k in range(cands_lo, cands_hi + 1)
                    if (base_value + k * scale) % align == 0]
            return self.pick(opts) if opts else None
        return self.integer(cands_lo, cands_hi) * scale

    def address_reg(self, size: int) -> tuple[int, int, int]:
        """(register, its value, offset) for a load or store of ``size`` bytes: a base, or a
        temporary set by an ``addi`` from a base just before."""
        if self.draw(st.booleans()):
            base = self.pick(BASES)
            imm = self.mem_imm(self.x_known[base], size, -2048, 2047)
            assert imm is not None
            return base, self.x_known[base], imm
        base = self.pick(BASES)
        t = self.wreg(allow_zero=False)
        off = self.integer(-2048, 2047)
        value = (self.x_known[base] + off) & M64
        self.emit("addi", i_type(OPIMM, 0, t, base, off))
        imm = self.mem_imm(value, size, -2048, 2047)
        if imm is None:  # the temporary landed out of reach: make it the address itself
            off = self.mem_imm(self.x_known[base], size, -2048, 2047)
            self.insns.pop()
            self.emit("addi", i_type(OPIMM, 0, t, base, off))
            return t, (self.x_known[base] + off) & M64, 0
        return t, value, imm

    def aligned_reg(self, align: int) -> int:
        """A temporary holding an ``align``-aligned address inside DATA (set by an addi)."""
        base = self.pick(BASES)
        off = self.mem_imm(self.x_known[base], align, -2048, 2047, align=align)
        t = self.wreg(allow_zero=False)
        self.emit("addi", i_type(OPIMM, 0, t, base, off))
        return t

    # -- the program -------------------------------------------------------------------------------
    def item(self) -> None:
        if self.focus is not None and self.draw(st.booleans()):
            name = self.focus
        else:
            name = self.pick(GENERATOR_NAMES)
        GENERATORS[name](self, name)

    def items(self, n: int) -> None:
        for _ in range(n):
            self.item()

    def body(self, skippable: bool) -> None:
        """Generate a branch body of 1..3 items. Skippable bodies merge their tag and frm
        changes with the path that skips them; dead bodies (after a jump) are forgotten."""
        saved_tags, saved_frm, saved_x = list(self.ftags), self.frm, dict(self.x_known)
        self.depth += 1
        self.items(self.draw(st.integers(1, 3)))
        self.depth -= 1
        if skippable:
            self.ftags[:] = [Tag.merge(a, b) for a, b in zip(saved_tags, self.ftags, strict=True)]
            self.frm = self.frm | saved_frm
            assert self.x_known == saved_x
        else:
            self.ftags[:] = saved_tags
            self.frm = saved_frm
            self.x_known = saved_x


# -- generators, by instruction name (the decoder's names) ----------------------------------------
GENERATORS: dict[str, Callable[[Gen, str], None]] = {}


def gen(*names: str):
    def register(fn):
        for n in names:
            assert n not in GENERATORS, n
            GENERATORS[n] = fn
        return fn

    return register


def _zb_hook(name: str, rd: int, rs1: int, rs2: int | None, imm: int | None):
    """A unicorn hook running a Zb* instruction from the spec's pseudo-code."""
    spec = ZB_SPEC[name]

    def hook(uc, addr: int) -> bool:
        xs = uc_x_reader(uc)
        a = xs(rs1)
        b = imm if imm is not None else xs(rs2)
        if rd:
            uc_write_x(uc, rd, spec(a, b) & M64)
        return True

    return hook


@gen(*R_OPS)
def gen_r(g: Gen, name: str) -> None:
    opc, f3, f7, ext = R_OPS[name]
    rd, rs1, rs2 = g.wreg(), g.rreg(), g.rreg()
    hook = _zb_hook(name, rd, rs1, rs2, None) if ext.startswith("Zb") else None
    g.emit(name, r_type(opc, f3, f7, rd, rs1, rs2), uc_hook=hook)


@gen(*I_OPS)
def gen_i(g: Gen, name: str) -> None:
    opc, f3 = I_OPS[name]
    g.emit(name, i_type(opc, f3, g.wreg(), g.rreg(), g.integer(-2048, 2047)))


@gen(*SHIFT_OPS)
def gen_shift(g: Gen, name: str) -> None:
    opc, f3, top, width, ext = SHIFT_OPS[name]
    rd, rs1, sh = g.wreg(), g.rreg(), g.integer(0, (1 << width) - 1)
    hook = _zb_hook(name, rd, rs1, None, sh) if ext.startswith("Zb") else None
    g.emit(name, i_type(opc, f3, rd, rs1, top << width | sh), uc_hook=hook)


@gen(*UNARY_OPS)
def gen_unary(g: Gen, name: str) -> None:
    opc, f3, imm = UNARY_OPS[name]
    rd, rs1 = g.wreg(), g.rreg()
    g.emit(name, i_type(opc, f3, rd, rs1, imm), uc_hook=_zb_hook(name, rd, rs1, None, 0))


@gen("lui", "auipc")
def gen_upper(g: Gen, name: str) -> None:
    imm = g.integer(-(1 << 19), (1 << 19) - 1) << 12
    g.emit(name, u_type(LUI if name == "lui" else AUIPC, g.wreg(), imm))


@gen(*LOADS)
def gen_load(g: Gen, name: str) -> None:
    f3, size = LOADS[name]
    reg, _value, imm = g.address_reg(size)
    g.emit(name, i_type(LOAD, f3, g.wreg(), reg, imm))


@gen(*STORES)
def gen_store(g: Gen, name: str) -> None:
    f3, size = STORES[name]
    reg, _value, imm = g.address_reg(size)
    g.emit(name, s_type(STORE, f3, reg, g.rreg(), imm))


# -- control flow ---------------------------------------------------------------------------------
def _branch_to(g: Gen, name: str, make: Callable[[int], int], size: int, skippable: bool,
               reach: int) -> None:
    """Emit a jump over a generated body to the label after it; ``reach``: the largest
    offset the encoding holds (a short reach gets a body without nested jumps)."""
    label = g.new_label()

    def encode(pc: int, labels: dict[int, int]) -> int:
        off = labels[label] - pc
        assert 0 < off <= reach, f"{name}: offset {off} out of reach"
        return make(off)

    g.emit(name, encode, size)
    depth = g.depth
    if reach < 1024:
        g.depth = max(g.depth, MAX_DEPTH - 1)
    if g.depth < MAX_DEPTH:
        g.body(skippable)
    g.depth = depth
    g.insns.append(Ins("label", 0, lambda pc, labels: 0, label=label))


MAX_DEPTH = 2


@gen(*BRANCHES)
def gen_branch(g: Gen, name: str) -> None:
    rs1, rs2 = g.rreg(), g.rreg()
    _branch_to(g, name, lambda off: b_type(BRANCHES[name], rs1, rs2, off), 4, True, 4094)


@gen("c.beqz", "c.bnez")
def gen_cbranch(g: Gen, name: str) -> None:
    rs1 = g.creg()
    f3 = 6 if name == "c.beqz" else 7

    def make(off: int) -> int:
        return (c_q(f3, 1) | scatter(off, 12, "8|4:3") | (rs1 - 8) << 7
                | scatter(off, 6, "7:6|2:1|5"))

    _branch_to(g, name, make, 2, True, 254)


@gen("jal")
def gen_jal(g: Gen, name: str) -> None:
    rd = g.wreg()
    _branch_to(g, name, lambda off: j_type(rd, off), 4, False, (1 << 20) - 2)


@gen("c.j")
def gen_cj(g: Gen, name: str) -> None:
    _branch_to(g, name, lambda off: c_q(5, 1) | scatter(off, 12, "11|4|9:8|10|6|7|3:1|5"), 2,
               False, 2046)


@gen("jalr", "c.jr", "c.jalr")
def gen_jalr(g: Gen, name: str) -> None:
    """auipc t, 0 [; addi t, t, off]; jalr rd, imm(t) / c.jr t / c.jalr t."""
    t = g.wreg(allow_zero=False)
    g.locked.add(t)
    label = g.new_label()
    auipc_at: list[int] = []

    def enc_auipc(pc: int, labels: dict[int, int]) -> int:
        auipc_at.append(pc)
        return u_type(AUIPC, t, 0)

    g.emit("auipc", enc_auipc)
    odd = g.draw(st.booleans())  # jalr clears bit 0 of the target
    if name == "jalr":
        rd = g.wreg()
        g.locked.discard(t)

        def enc(pc: int, labels: dict[int, int]) -> int:
            return i_type(JALR, 0, rd, t, labels[label] - auipc_at[-1] + odd)

        g.emit(name, enc)
    else:
        def enc_addi(pc: int, labels: dict[int, int]) -> int:
            return i_type(OPIMM, 0, t, t, labels[label] - auipc_at[-1] + odd)

        g.emit("addi", enc_addi)
        g.locked.discard(t)
        word = c_q(4, 2) | (1 << 12 if name == "c.jalr" else 0) | t << 7
        g.emit(name, word, 2)
    if g.depth < MAX_DEPTH:
        g.body(False)
    g.insns.append(Ins("label", 0, lambda pc, labels: 0, label=label))


# -- system ---------------------------------------------------------------------------------------
@gen("fence")
def gen_fence(g: Gen, name: str) -> None:
    pred, succ = g.integer(0, 15), g.integer(0, 15)
    fm = g.pick([0, 0, 0, 8, 1, 15])  # fm other than 0000 and TSO: reserved, executes as fence
    if fm == 8 and pred == succ == 3:
        fm = 0
    g.emit(name, fm << 28 | pred << 24 | succ << 20 | g.rreg() << 15 | g.rreg() << 7 | MISCMEM)


@gen("fence.tso")
def gen_fence_tso(g: Gen, name: str) -> None:
    g.emit(name, 0b1000 << 28 | 0b0011 << 24 | 0b0011 << 20 | MISCMEM)


@gen("fence.i")
def gen_fence_i(g: Gen, name: str) -> None:
    g.emit(name, 1 << 12 | MISCMEM)


def _frm_after(kind: str, csr: str, old: frozenset[int], value: int | None) -> frozenset[int]:
    """The possible frm values after a CSR instruction (value None: unknown)."""
    if csr == "fflags" or (kind != "w" and value == 0):
        return old
    if value is None:
        return frozenset(range(8))
    bits = value & 7 if csr == "frm" else (value >> 5) & 7
    if kind == "w":
        return frozenset({bits})
    if kind == "s":
        return frozenset(v | bits for v in old)
    return frozenset(v & ~bits for v in old)


@gen(*CSR_OPS)
def gen_csr(g: Gen, name: str) -> None:
    csr = g.pick(CSRS)
    f3 = CSR_OPS[name]
    kind = name[4]
    rd = g.wreg()
    if name.endswith("i"):
        value = g.integer(0, 31)
        g.emit(name, i_type(SYSTEM, f3, rd, value, CSRS[csr]))
    else:
        how = g.pick(["x0", "known", "any"])
        if how == "x0":
            src, value = 0, 0
        elif how == "known":
            src = g.wreg(allow_zero=False)
            value = g.draw(st.one_of(st.integers(0, 0xFF), st.integers(-2048, 2047))) & M64
            g.emit("addi", i_type(OPIMM, 0, src, 0, value if value < 2048 else value - (1 << 64)))
        else:
            src, value = g.rreg(), None
            if src == 0:
                value = 0
        g.emit(name, i_type(SYSTEM, f3, rd, src, CSRS[csr]))
    g.frm = _frm_after(kind, csr, g.frm, value)


# -- A --------------------------------------------------------------------------------------------
def _amo_word(name: str, rd: int, rs1: int, rs2: int, aq: int, rl: int) -> int:
    op, width = name.split(".")
    f5 = {"lr": 0b00010, "sc": 0b00011, **AMO_F5}[op]
    return r_type(AMO, 2 if width == "w" else 3, f5 << 2 | aq << 1 | rl, rd, rs1, rs2)


@gen(*(f"{op}.{w}" for op in AMO_F5 for w in "wd"))
def gen_amo(g: Gen, name: str) -> None:
    t = g.aligned_reg(4 if name.endswith(".w") else 8)
    g.emit(name, _amo_word(name, g.wreg(), t, g.rreg(), g.integer(0, 1), g.integer(0, 1)))


@gen("lr.w", "lr.d", "sc.w", "sc.d")
def gen_lrsc(g: Gen, name: str) -> None:
    """Mostly an LR/SC pair on one address with a few instructions between; sometimes an SC
    alone, or to another address, or an LR alone."""
    width = name[-1]
    align = 4 if width == "w" else 8
    t = g.aligned_reg(align)
    shape = g.pick(["pair", "pair", "pair", "alone", "other"])
    if name.startswith("lr") or shape != "alone":
        g.locked.add(t)
        g.emit(f"lr.{width}", _amo_word(f"lr.{width}", g.wreg(), t, 0, g.integer(0, 1),
                                        g.integer(0, 1)))
        if name.startswith("lr") and shape == "alone":
            g.locked.discard(t)
            return
        for _ in range(g.integer(0, 2)):
            gen_r(g, g.pick(["add", "xor", "sub", "mul", "sltu"]))
        if g.draw(st.booleans()):  # a store in between, maybe to the same word
            gen_store(g, g.pick(STORES))
        g.locked.discard(t)
    if shape == "other":
        t = g.aligned_reg(align)
    g.emit(f"sc.{width}", _amo_word(f"sc.{width}", g.wreg(), t, g.rreg(), g.integer(0, 1),
                                    g.integer(0, 1)))


# -- F and D --------------------------------------------------------------------------------------
def _fp_quirk_hook(kind: str, fmt: str, rd: int, rs1: int, rs2: int, rs3: int = 0):
    quirk = QUIRKS[kind]

    def hook(uc, addr: int) -> bool:
        fr = uc_f_reader(uc)
        ops = [fr(r) for r in (rs1, rs2, rs3)]
        if fmt == "s":
            ops = [v & M32 for v in ops]
        fixed = quirk(kind, fmt, *ops)
        if fixed is None:
            return False  # unicorn gets it right
        value, flags = fixed
        uc_write_f(uc, rd, value | (BOX if fmt == "s" else 0))
        uc_or_fflags(uc, flags)
        return True

    return hook


def _fp_result_tag(fmt: str) -> str:
    return Tag.S if fmt == "s" else Tag.D


def _src_ok(fmt: str) -> frozenset[str]:
    return SINGLE_OK if fmt == "s" else DOUBLE_OK


@gen(*(f"{op}.{fmt}" for op in FP_ARITH for fmt in "sd"), "fsqrt.s", "fsqrt.d")
def gen_fp_arith(g: Gen, name: str) -> None:
    op, fmt = name.split(".")
    rs1 = g.fsrc(_src_ok(fmt), fmt == "s")
    rs2 = 0 if op == "fsqrt" else g.fsrc(_src_ok(fmt), fmt == "s")
    f5 = 0b01011 if op == "fsqrt" else FP_ARITH[op]
    rd = g.fdst()
    g.emit(name, r_type(OPFP, g.rm(), f5 << 2 | FMT[fmt], rd, rs1, rs2))
    g.ftags[rd] = _fp_result_tag(fmt)


@gen(*(f"{op}.{fmt}" for op in FMA_OPC for fmt in "sd"))
def gen_fma(g: Gen, name: str) -> None:
    op, fmt = name.split(".")
    rs1, rs2, rs3 = (g.fsrc(_src_ok(fmt), fmt == "s") for _ in range(3))
    rd = g.fdst()
    g.emit(name, r4_type(FMA_OPC[op], FMT[fmt], rd, rs1, rs2, rs3, g.rm()),
           uc_hook=_fp_quirk_hook("fma", fmt, rd, rs1, rs2, rs3))
    g.ftags[rd] = _fp_result_tag(fmt)


@gen(*(f"{op}.{fmt}" for op in FP_SGNJ_MINMAX for fmt in "sd"))
def gen_fp_sgnj(g: Gen, name: str) -> None:
    op, fmt = name.split(".")
    f5, f3 = FP_SGNJ_MINMAX[op]
    rs1, rs2 = g.fsrc(_src_ok(fmt), fmt == "s"), g.fsrc(_src_ok(fmt), fmt == "s")
    rd = g.fdst()
    hook = _fp_quirk_hook(op, fmt, rd, rs1, rs2) if op in ("fmin", "fmax") else None
    g.emit(name, r_type(OPFP, f3, f5 << 2 | FMT[fmt], rd, rs1, rs2), uc_hook=hook)
    g.ftags[rd] = _fp_result_tag(fmt)


@gen(*(f"{op}.{fmt}" for op in FP_CMP for fmt in "sd"), "fclass.s", "fclass.d")
def gen_fp_to_x(g: Gen, name: str) -> None:
    op, fmt = name.split(".")
    rs1 = g.fsrc(_src_ok(fmt), fmt == "s")
    if op == "fclass":
        word = r_type(OPFP, 1, 0b11100 << 2 | FMT[fmt], g.wreg(), rs1, 0)
    else:
        rs2 = g.fsrc(_src_ok(fmt), fmt == "s")
        word = r_type(OPFP, FP_CMP[op], 0b10100 << 2 | FMT[fmt], g.wreg(), rs1, rs2)
    g.emit(name, word)


@gen(*(f"fcvt.{i}.{fmt}" for i in INT_NAMES for fmt in "sd"))
def gen_fcvt_to_int(g: Gen, name: str) -> None:
    _, to, fmt = name.split(".")
    rs1 = g.fsrc(_src_ok(fmt), fmt == "s")
    g.emit(name, r_type(OPFP, g.rm(), 0b11000 << 2 | FMT[fmt], g.wreg(), rs1,
                        INT_NAMES.index(to)))


@gen(*(f"fcvt.{fmt}.{i}" for i in INT_NAMES for fmt in "sd"))
def gen_fcvt_from_int(g: Gen, name: str) -> None:
    _, fmt, frm_ = name.split(".")
    rd = g.fdst()
    g.emit(name, r_type(OPFP, g.rm(), 0b11010 << 2 | FMT[fmt], rd, g.rreg(),
                        INT_NAMES.index(frm_)))
    g.ftags[rd] = _fp_result_tag(fmt)


@gen("fcvt.s.d", "fcvt.d.s")
def gen_fcvt_fp(g: Gen, name: str) -> None:
    to_single = name == "fcvt.s.d"
    rs1 = g.fsrc(DOUBLE_OK if to_single else SINGLE_OK, not to_single)
    rd = g.fdst()
    f7 = 0b0100000 if to_single else 0b0100001
    g.emit(name, r_type(OPFP, g.rm(), f7, rd, rs1, 1 if to_single else 0))
    g.ftags[rd] = Tag.S if to_single else Tag.D


@gen("fmv.x.w", "fmv.x.d", "fmv.w.x", "fmv.d.x")
def gen_fmv(g: Gen, name: str) -> None:
    fmt = FMT["s" if name in ("fmv.x.w", "fmv.w.x") else "d"]
    if name.startswith("fmv.x"):
        rs1 = g.fsrc(TRANSFER_OK if fmt == 0 else DOUBLE_OK, fmt == 0)
        g.emit(name, r_type(OPFP, 0, 0b11100 << 2 | fmt, g.wreg(), rs1, 0))
    else:
        rd = g.fdst()
        g.emit(name, r_type(OPFP, 0, 0b11110 << 2 | fmt, rd, g.rreg(), 0))
        g.ftags[rd] = Tag.S if fmt == 0 else Tag.D


@gen("flw", "fld")
def gen_fload(g: Gen, name: str) -> None:
    size = 4 if name == "flw" else 8
    reg, _value, imm = g.address_reg(size)
    rd = g.fdst()
    g.emit(name, i_type(LOADFP, 2 if size == 4 else 3, rd, reg, imm))
    # unicorn NaN-boxes flw's result (unlike arithmetic results), so both sides agree
    g.ftags[rd] = Tag.B if size == 4 else Tag.D


@gen("fsw", "fsd")
def gen_fstore(g: Gen, name: str) -> None:
    size = 4 if name == "fsw" else 8
    reg, _value, imm = g.address_reg(size)
    rs2 = g.fsrc(TRANSFER_OK if size == 4 else DOUBLE_OK, size == 4)
    g.emit(name, s_type(STOREFP, 2 if size == 4 else 3, reg, rs2, imm))


# -- C --------------------------------------------------------------------------------------------
@gen("c.addi4spn")
def gen_c_addi4spn(g: Gen, name: str) -> None:
    imm = g.integer(1, 255) * 4
    g.emit(name, c_q(0, 0) | scatter(imm, 12, "5:4|9:6|2|3") | (g.cwreg() - 8) << 2, 2)


@gen("c.lw", "c.ld", "c.fld", "c.sw", "c.sd", "c.fsd")
def gen_c_mem(g: Gen, name: str) -> None:
    f3, scale, store = {"c.fld": (1, 8, False), "c.lw": (2, 4, False), "c.ld": (3, 8, False),
                        "c.fsd": (5, 8, True), "c.sw": (6, 4, True), "c.sd": (7, 8, True)}[name]
    imm = g.mem_imm(g.x_known[8], scale, 0, 31 * scale, scale)
    assert imm is not None
    low = "2|6" if scale == 4 else "7:6"
    if name == "c.fsd":
        reg = g.fsrc(DOUBLE_OK, False, range(8, 16))
    elif name == "c.fld":
        reg = g.draw(st.integers(8, 15))
        g.ftags[reg] = Tag.D
    elif store:
        reg = g.creg()
    else:
        reg = g.cwreg()
    g.emit(name, c_q(f3, 0) | scatter(imm, 12, "5:3") | 0 << 7 | scatter(imm, 6, low)
           | (reg - 8) << 2, 2)


def hint(g: Gen) -> bool:
    """Whether to draw the HINT form of a compressed instruction (rd=x0, a zero immediate):
    the spec reserves those for hints, which execute as the instruction they are."""
    return g.draw(st.integers(0, 7)) == 0


@gen("c.nop")
def gen_c_nop(g: Gen, name: str) -> None:
    imm = g.pick([v for v in range(-32, 32) if v]) if hint(g) else 0
    g.emit(name, c_q(0, 1) | scatter(imm, 12, "5") | scatter(imm, 6, "4:0"), 2)


@gen("c.addi", "c.addiw", "c.li")
def gen_c_ci(g: Gen, name: str) -> None:
    f3 = {"c.addi": 0, "c.addiw": 1, "c.li": 2}[name]
    rd = g.wreg(allow_zero=False)
    imm = g.integer(-32, 31)
    if name == "c.addi" and imm == 0 and not hint(g):
        imm = 1
    if name == "c.li" and hint(g):
        rd = 0
    g.emit(name, c_q(f3, 1) | scatter(imm, 12, "5") | rd << 7 | scatter(imm, 6, "4:0"), 2)


@gen("c.addi16sp")
def gen_c_addi16sp(g: Gen, name: str) -> None:
    sp = g.x_known[2]
    lo = max(-32, (DATA + 0x600 - sp) // 16)
    hi = min(31, (DATA + DATA_SIZE - 0x600 - sp) // 16)
    opts = [k for k in range(lo, hi + 1) if k]
    if g.depth or not opts:  # sp must stay known on every path
        gen_c_nop(g, "c.nop")
        return
    imm = g.pick(opts) * 16
    g.emit(name, c_q(3, 1) | scatter(imm, 12, "9") | 2 << 7 | scatter(imm, 6, "4|6|8:7|5"), 2)
    g.x_known[2] = sp + imm


@gen("c.lui")
def gen_c_lui(g: Gen, name: str) -> None:
    rd = 0 if hint(g) else g.wreg(allow_zero=False)
    imm = g.pick([v for v in range(-32, 32) if v])
    g.emit(name, c_q(3, 1) | scatter(imm, 12, "5") | rd << 7 | scatter(imm, 6, "4:0"), 2)


@gen("c.srli", "c.srai", "c.andi")
def gen_c_cb_alu(g: Gen, name: str) -> None:
    f2 = {"c.srli": 0, "c.srai": 1, "c.andi": 2}[name]
    imm = g.integer(-32, 31) if name == "c.andi" else g.integer(0, 63)
    g.emit(name, c_q(4, 1) | scatter(imm, 12, "5") | f2 << 10 | (g.cwreg() - 8) << 7
           | scatter(imm, 6, "4:0"), 2)


@gen("c.sub", "c.xor", "c.or", "c.and", "c.subw", "c.addw")
def gen_c_ca(g: Gen, name: str) -> None:
    b12, f2 = {"c.sub": (0, 0), "c.xor": (0, 1), "c.or": (0, 2), "c.and": (0, 3),
               "c.subw": (1, 0), "c.addw": (1, 1)}[name]
    g.emit(name, c_q(4, 1) | b12 << 12 | 3 << 10 | (g.cwreg() - 8) << 7 | f2 << 5
           | (g.creg() - 8) << 2, 2)


@gen("c.slli")
def gen_c_slli(g: Gen, name: str) -> None:
    sh = g.integer(0, 63)
    rd = 0 if hint(g) else g.wreg(allow_zero=False)
    g.emit(name, c_q(0, 2) | scatter(sh, 12, "5") | rd << 7 | scatter(sh, 6, "4:0"), 2)


@gen("c.lwsp", "c.ldsp", "c.fldsp", "c.swsp", "c.sdsp", "c.fsdsp")
def gen_c_sp(g: Gen, name: str) -> None:
    f3, scale, layout = {"c.fldsp": (1, 8, "5|4:3|8:6"), "c.lwsp": (2, 4, "5|4:2|7:6"),
                         "c.ldsp": (3, 8, "5|4:3|8:6"), "c.fsdsp": (5, 8, "5:3|8:6"),
                         "c.swsp": (6, 4, "5:2|7:6"), "c.sdsp": (7, 8, "5:3|8:6")}[name]
    imm = g.mem_imm(g.x_known[2], scale, 0, 63 * scale, scale)
    assert imm is not None
    if name in ("c.lwsp", "c.ldsp", "c.fldsp"):
        if name == "c.fldsp":
            reg = g.fdst()
            g.ftags[reg] = Tag.D
        else:
            reg = g.wreg(allow_zero=False)
        word = c_q(f3, 2) | scatter(imm, 12, layout.split("|", 1)[0]) | reg << 7 \
            | scatter(imm, 6, layout.split("|", 1)[1])
    else:
        reg = g.fsrc(DOUBLE_OK, False) if name == "c.fsdsp" else g.rreg()
        word = c_q(f3, 2) | scatter(imm, 12, layout) | reg << 2
    g.emit(name, word, 2)


@gen("c.mv", "c.add")
def gen_c_cr(g: Gen, name: str) -> None:
    rs2 = g.draw(st.integers(1, 31))
    rd = 0 if hint(g) else g.wreg(allow_zero=False)
    g.emit(name, c_q(4, 2) | (1 << 12 if name == "c.add" else 0) | rd << 7 | rs2 << 2, 2)


GENERATOR_NAMES = sorted(GENERATORS)

NOT_GENERATED = frozenset({"ecall", "ebreak", "c.ebreak", "illegal"})
"""Decoder names the differential test leaves to the trap tests (they stop the program)."""


# ---------------------------------------------------------------------------------------------
# The spec's pseudo-code for Zb* (unicorn 2.1.4 has none of it) and the quirk fix-ups
# ---------------------------------------------------------------------------------------------


def _sx(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _zx32(v: int) -> int:
    return v & M32


def _rotl(v: int, n: int, bits: int) -> int:
    n %= bits
    m = (1 << bits) - 1
    return ((v << n) | (v >> (bits - n))) & m


def _clmul(a: int, b: int) -> int:  # the spec: for i in 0..xlen-1: if (rs2 >> i) & 1: x ^= rs1 << i
    x = 0
    for i in range(64):
        if (b >> i) & 1:
            x ^= a << i
    return x & M64


def _clmulh(a: int, b: int) -> int:  # for i in 1..xlen: if (rs2 >> i) & 1: x ^= rs1 >> (xlen-i)
    x = 0
    for i in range(1, 64):
        if (b >> i) & 1:
            x ^= a >> (64 - i)
    return x


def _clmulr(a: int, b: int) -> int:  # for i in 0..xlen-1: if (rs2 >> i) & 1: x ^= rs1 >> (xlen-i-1)
    x = 0
    for i in range(64):
        if (b >> i) & 1:
            x ^= a >> (63 - i)
    return x


def _clz(v: int, bits: int) -> int:
    for i in range(bits - 1, -1, -1):
        if (v >> i) & 1:
            return bits - 1 - i
    return bits


def _ctz(v: int, bits: int) -> int:
    for i in range(bits):
        if (v >> i) & 1:
            return i
    return bits


ZB_SPEC: dict[str, Callable[[int, int], int]] = {
    "add.uw": lambda a, b: b + _zx32(a),
    "sh1add": lambda a, b: b + (a << 1), "sh2add": lambda a, b: b + (a << 2),
    "sh3add": lambda a, b: b + (a << 3),
    "sh1add.uw": lambda a, b: b + (_zx32(a) << 1), "sh2add.uw": lambda a, b: b + (_zx32(a) << 2),
    "sh3add.uw": lambda a, b: b + (_zx32(a) << 3),
    "slli.uw": lambda a, sh: _zx32(a) << sh,
    "andn": lambda a, b: a & ~b, "orn": lambda a, b: a | ~b, "xnor": lambda a, b: ~(a ^ b),
    "max": lambda a, b: a if _sx(a, 64) > _sx(b, 64) else b,
    "maxu": lambda a, b: max(a, b),
    "min": lambda a, b: a if _sx(a, 64) < _sx(b, 64) else b,
    "minu": lambda a, b: min(a, b),
    "rol": lambda a, b: _rotl(a, b & 63, 64), "ror": lambda a, b: _rotl(a, -(b & 63), 64),
    "rori": lambda a, sh: _rotl(a, -sh, 64),
    "rolw": lambda a, b: _sx(_rotl(a & M32, b & 31, 32), 32),
    "rorw": lambda a, b: _sx(_rotl(a & M32, -(b & 31), 32), 32),
    "roriw": lambda a, sh: _sx(_rotl(a & M32, -sh, 32), 32),
    "clz": lambda a, _: _clz(a, 64), "ctz": lambda a, _: _ctz(a, 64),
    "cpop": lambda a, _: bin(a).count("1"),
    "clzw": lambda a, _: _clz(a & M32, 32), "ctzw": lambda a, _: _ctz(a & M32, 32),
    "cpopw": lambda a, _: bin(a & M32).count("1"),
    "sext.b": lambda a, _: _sx(a, 8), "sext.h": lambda a, _: _sx(a, 16),
    "zext.h": lambda a, _: a & 0xFFFF,
    "orc.b": lambda a, _: sum((0xFF if (a >> (8 * i)) & 0xFF else 0) << (8 * i)
                              for i in range(8)),
    "rev8": lambda a, _: int.from_bytes(a.to_bytes(8, "little"), "big"),
    "clmul": _clmul, "clmulh": _clmulh, "clmulr": _clmulr,
    "bclr": lambda a, b: a & ~(1 << (b & 63)), "bclri": lambda a, sh: a & ~(1 << sh),
    "bext": lambda a, b: (a >> (b & 63)) & 1, "bexti": lambda a, sh: (a >> sh) & 1,
    "binv": lambda a, b: a ^ (1 << (b & 63)), "binvi": lambda a, sh: a ^ (1 << sh),
    "bset": lambda a, b: a | (1 << (b & 63)), "bseti": lambda a, sh: a | (1 << sh),
}


def _fp_fields(fmt: str) -> tuple[int, int, int]:
    return (8, 23, 0x7FC00000) if fmt == "s" else (11, 52, 0x7FF8000000000000)


def _is_nan(v: int, fmt: str) -> bool:
    e, m, _ = _fp_fields(fmt)
    return (v >> m) & ((1 << e) - 1) == (1 << e) - 1 and v & ((1 << m) - 1) != 0


def _is_snan(v: int, fmt: str) -> bool:
    _, m, _ = _fp_fields(fmt)
    return _is_nan(v, fmt) and not (v >> (m - 1)) & 1


def _is_inf(v: int, fmt: str) -> bool:
    e, m, _ = _fp_fields(fmt)
    return (v >> m) & ((1 << e) - 1) == (1 << e) - 1 and v & ((1 << m) - 1) == 0


def _is_zero(v: int, fmt: str) -> bool:
    e, m, _ = _fp_fields(fmt)
    return v & ((1 << (e + m)) - 1) == 0


NV = 0x10


def _quirk_minmax(kind: str, fmt: str, a: int, b: int, _c: int) -> tuple[int, int] | None:
    """F/D 2.2 fmin/fmax (IEEE 754-2019 minimumNumber/maximumNumber): with exactly one NaN
    operand the result is the other operand, and a signaling NaN sets NV. Unicorn gives the
    canonical NaN when that NaN is signaling."""
    if _is_nan(a, fmt) == _is_nan(b, fmt) or not (_is_snan(a, fmt) or _is_snan(b, fmt)):
        return None
    return (b if _is_nan(a, fmt) else a), NV


def _quirk_fma(kind: str, fmt: str, a: int, b: int, c: int) -> tuple[int, int] | None:
    """The F chapter: fused multiply-add "must set the invalid operation exception flag when
    the multiplicands are inf and zero, even when the addend is a quiet NaN"; the result is
    the canonical NaN. Unicorn leaves NV clear."""
    inf_zero = (_is_inf(a, fmt) and _is_zero(b, fmt)) or (_is_zero(a, fmt) and _is_inf(b, fmt))
    if not (inf_zero and _is_nan(c, fmt) and not _is_snan(c, fmt)):
        return None
    return _fp_fields(fmt)[2], NV


QUIRKS = {"fmin": _quirk_minmax, "fmax": _quirk_minmax, "fma": _quirk_fma}

QUIRK_COUNTS: dict[str, int] = {}
"""How often each unicorn hook fired and changed the outcome (for the curious: -s shows it)."""


# ---------------------------------------------------------------------------------------------
# The hypothesis strategy
# ---------------------------------------------------------------------------------------------


def f_initial() -> st.SearchStrategy[tuple[int, str]]:
    """An initial f register value and its tag: boxed singles, doubles, unboxed patterns."""
    f32 = st.one_of(st.sampled_from(F32_SPECIAL), st.integers(0, M32))
    f64 = st.one_of(st.sampled_from(F64_SPECIAL), st.integers(0, M64))
    return st.one_of(
        f32.map(lambda v: (BOX | v, Tag.B)),
        f64.map(lambda v: (v, Tag.D)),
        f32.map(lambda v: (v, Tag.D)),  # a single that is not NaN-boxed (upper half zero)
        st.tuples(f32, st.integers(0, M32).filter(lambda h: h != M32)).map(
            lambda p: (p[1] << 32 | p[0], Tag.D)),
    )


@st.composite
def programs(draw, max_items: int = 20, focus: str | None = None) -> Program:
    """A program of up to ``max_items`` generated items (an item is an instruction with what
    it needs: an address, a skipped body); with ``focus``, half of them are that instruction."""
    xs = [0] + [draw(int_values()) for _ in range(31)]
    for r in BASES:
        xs[r] = DATA + 8 * draw(st.integers(0x800 // 8, (DATA_SIZE - 0x800) // 8 - 1))
    fregs = [draw(f_initial()) for _ in range(32)]
    fvals, ftags = [v for v, _ in fregs], [t for _, t in fregs]
    fflags = draw(st.one_of(st.just(0), st.integers(0, 31)))
    frm = draw(st.integers(0, 4))
    page_end = CODE + 0x1000
    start = draw(st.one_of(st.just(CODE), st.integers((page_end - 0x40) // 2,
                                                      page_end // 2 - 1).map(lambda v: v * 2)))
    g = Gen(draw, xs, list(ftags), frm, focus)
    g.items(draw(st.integers(1, max_items)))
    prog = Program(start, xs, fvals, fflags, frm, draw(st.integers(0, 1 << 32)), g.insns,
                   ftags=list(ftags), final_tags=g.ftags, compiled=draw(st.booleans()))
    _layout(prog)
    return prog


def _layout(prog: Program) -> None:
    labels: dict[int, int] = {}
    pc = prog.start
    for ins in prog.insns:
        if ins.label is not None:
            labels[ins.label] = pc
        pc += ins.size
    prog.end = pc
    labels[END_LABEL] = pc
    real = [ins for ins in prog.insns if ins.size]
    words = []
    pc = prog.start
    for ins in real:
        word = ins.encode(pc, labels)
        assert 0 <= word < (1 << (8 * ins.size)), (ins.name, hex(word))
        words.append((pc, word, ins.size))
        pc += ins.size
    prog.insns = real
    prog.words = words


# ---------------------------------------------------------------------------------------------
# Running: ours and unicorn's
# ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    x: list[int]
    f: list[int]
    fflags: int
    frm: int
    data: bytes
    stop: str


_FRONTEND: Any = None


def run_ours(prog: Program) -> Outcome:
    from vm_core import GuestMemory, TrapKind
    from vm_engine_jit import InterpEngine, state_class
    from vm_frontend_riscv.frontend import RiscvFrontend

    global _FRONTEND
    if _FRONTEND is None:
        _FRONTEND = RiscvFrontend()
    mem = GuestMemory()
    mem.add_ram(CODE, CODE_SIZE, name="code")
    mem.add_ram(DATA, DATA_SIZE, name="data")
    mem.write(prog.start, prog.code())
    mem.write(DATA, data_bytes(prog.data_seed))
    state = state_class(_FRONTEND.state_layout)()
    state.x[:] = prog.x
    state.f[:] = prog.f
    state.fflags, state.frm, state.pc = prog.fflags, prog.frm, prog.start
    state.res_addr = NO_RESERVATION
    try:  # hot_runs=1 compiles every block; a large value leaves them all to the evaluator
        engine = InterpEngine(_FRONTEND, hot_runs=1 if prog.compiled else 1 << 30)
    except TypeError:  # an engine without tiers
        engine = InterpEngine(_FRONTEND)
    trap = engine.run(state, mem, max_insns=100_000)
    ok = trap is not None and trap.kind is TrapKind.BREAKPOINT and trap.pc == prog.end
    stop = "end" if ok else f"stopped: {trap}"
    out = Outcome(list(state.x), list(state.f), state.fflags, state.frm,
                  mem.read(DATA, DATA_SIZE), stop)
    mem.close()
    return out


def uc_x_reader(uc):
    from unicorn.riscv_const import UC_RISCV_REG_X0

    return lambda r: uc.reg_read(UC_RISCV_REG_X0 + r) if r else 0


def uc_f_reader(uc):
    from unicorn.riscv_const import UC_RISCV_REG_F0

    return lambda r: uc.reg_read(UC_RISCV_REG_F0 + r)


def uc_write_x(uc, r: int, v: int) -> None:
    from unicorn.riscv_const import UC_RISCV_REG_X0

    uc.reg_write(UC_RISCV_REG_X0 + r, v)


def uc_write_f(uc, r: int, v: int) -> None:
    from unicorn.riscv_const import UC_RISCV_REG_F0

    uc.reg_write(UC_RISCV_REG_F0 + r, v)


def uc_or_fflags(uc, flags: int) -> None:
    from unicorn.riscv_const import UC_RISCV_REG_FFLAGS

    uc.reg_write(UC_RISCV_REG_FFLAGS, uc.reg_read(UC_RISCV_REG_FFLAGS) | flags)


MSTATUS_FS = 3 << 13


def run_unicorn(prog: Program) -> Outcome:
    import unicorn
    from unicorn import riscv_const as rv

    uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV64)
    uc.mem_map(CODE, CODE_SIZE)
    uc.mem_map(DATA, DATA_SIZE)
    uc.mem_write(prog.start, prog.code())
    uc.mem_write(DATA, data_bytes(prog.data_seed))
    uc.reg_write(rv.UC_RISCV_REG_MSTATUS, uc.reg_read(rv.UC_RISCV_REG_MSTATUS) | MSTATUS_FS)
    for r in range(1, 32):
        uc.reg_write(rv.UC_RISCV_REG_X0 + r, prog.x[r])
    for r in range(32):
        uc.reg_write(rv.UC_RISCV_REG_F0 + r, prog.f[r])
    uc.reg_write(rv.UC_RISCV_REG_FCSR, prog.frm << 5 | prog.fflags)
    hooks = {pc: ins.uc_hook for (pc, _w, _s), ins in zip(prog.words, prog.insns, strict=True)
             if ins.uc_hook is not None}
    names = {pc: ins.name for (pc, _w, _s), ins in zip(prog.words, prog.insns, strict=True)}

    def on_code(uc, addr, size, _user):
        hook = hooks.get(addr)
        if hook is not None and hook(uc, addr):
            QUIRK_COUNTS[names[addr]] = QUIRK_COUNTS.get(names[addr], 0) + 1
            uc.reg_write(rv.UC_RISCV_REG_PC, addr + size)

    if hooks:
        uc.hook_add(unicorn.UC_HOOK_CODE, on_code, begin=prog.start, end=prog.end - 1)
    stop = "end"
    try:
        uc.emu_start(prog.start, prog.end, count=100_000)
    except unicorn.UcError as exc:
        stop = f"unicorn: {exc} at pc {uc.reg_read(rv.UC_RISCV_REG_PC):#x}"
    if stop == "end" and uc.reg_read(rv.UC_RISCV_REG_PC) != prog.end:
        stop = f"unicorn stopped at pc {uc.reg_read(rv.UC_RISCV_REG_PC):#x}"
    return Outcome([0] + [uc.reg_read(rv.UC_RISCV_REG_X0 + r) for r in range(1, 32)],
                   [uc.reg_read(rv.UC_RISCV_REG_F0 + r) for r in range(32)],
                   uc.reg_read(rv.UC_RISCV_REG_FFLAGS), uc.reg_read(rv.UC_RISCV_REG_FRM),
                   bytes(uc.mem_read(DATA, DATA_SIZE)), stop)


def differences(prog: Program, ours: Outcome, ref: Outcome) -> list[str]:
    """What differs, as lines; f registers compared as their tags allow."""
    diffs = []
    if ours.stop != ref.stop:
        diffs.append(f"stop: ours {ours.stop}, unicorn {ref.stop}")
    for r in range(32):
        if ours.x[r] != ref.x[r]:
            diffs.append(f"x{r}: ours {ours.x[r]:#x}, unicorn {ref.x[r]:#x}")
    tags = prog.final_tags
    for r in range(32):
        a, b, tag = ours.f[r], ref.f[r], tags[r]
        if tag in (Tag.B, Tag.D):
            same = a == b
        elif tag == Tag.S:
            same = a & M32 == b & M32 and a >> 32 == M32
        else:  # X: either path's rule
            same = a == b or (a & M32 == b & M32 and a >> 32 == M32)
        if not same:
            diffs.append(f"f{r} ({tag}): ours {a:#018x}, unicorn {b:#018x}")
    if ours.fflags != ref.fflags:
        diffs.append(f"fflags: ours {ours.fflags:#x}, unicorn {ref.fflags:#x}")
    if ours.frm != ref.frm:
        diffs.append(f"frm: ours {ours.frm}, unicorn {ref.frm}")
    if ours.data != ref.data:
        at = [i for i in range(0, DATA_SIZE, 8) if ours.data[i:i + 8] != ref.data[i:i + 8]]
        for i in at[:8]:
            diffs.append(f"data {DATA + i:#x}: ours {ours.data[i:i + 8].hex()}, "
                         f"unicorn {ref.data[i:i + 8].hex()}")
    return diffs


def check(prog: Program) -> None:
    """Run ``prog`` both ways; AssertionError with the listing and the differences."""
    ours, ref = run_ours(prog), run_unicorn(prog)
    diffs = differences(prog, ours, ref)
    if diffs:
        raise AssertionError(
            "ours and unicorn differ:\n  " + "\n  ".join(diffs)
            + f"\nprogram:\n{prog.listing()}\ninitial state:\n{prog.initial_state()}")
