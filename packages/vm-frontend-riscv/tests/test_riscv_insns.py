"""Instructions through the frontend and the interpreter, against the spec, where unicorn cannot
be the reference: precise traps (faults in mid-block, misaligned atomics, illegal encodings,
ecall/ebreak, reserved rounding modes), NaN-boxing of single-precision operands, and the
regressions the differential tests found.

Each case gives the instruction words (encoded from the spec's layouts by the differential
harness's encoders), the initial state and the result the spec prescribes, and runs both ways
our interpreter executes a block: evaluated (vm-ir's evaluator, a block's first runs) and
compiled (the Python the interpreter generates for hot blocks).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vm_core import GuestMemory, Trap, TrapKind
from vm_engine_jit import InterpEngine, state_class
from vm_frontend_riscv.frontend import EXTENSIONS, RiscvFrontend


def _harness():
    name = "riscv_diff_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("riscv_diff.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


H = _harness()
r_type, i_type, s_type, u_type, r4_type = H.r_type, H.i_type, H.s_type, H.u_type, H.r4_type
OP, OPIMM, OPIMM32, LOAD, STORE = H.OP, H.OPIMM, H.OPIMM32, H.LOAD, H.STORE
LOADFP, STOREFP, AMO, OPFP, SYSTEM = H.LOADFP, H.STOREFP, H.AMO, H.OPFP, H.SYSTEM

CODE, DATA, DATA_SIZE = 0x10000, 0x20000, 0x2000
UNMAPPED = 0x40000
M64 = (1 << 64) - 1
BOX = 0xFFFFFFFF00000000
CANON_S, CANON_D = BOX | 0x7FC00000, 0x7FF8000000000000
ONE_S, TWO_S, MINUS_ONE_S = 0x3F800000, 0x40000000, 0xBF800000
NV, DZ, NX = 0x10, 0x08, 0x01
EBREAK = 0x00100073


def addi(rd: int, rs1: int, imm: int) -> int:
    return i_type(OPIMM, 0, rd, rs1, imm)


def ld(rd: int, rs1: int, imm: int = 0) -> int:
    return i_type(LOAD, 3, rd, rs1, imm)


def sd(rs2: int, rs1: int, imm: int = 0) -> int:
    return s_type(STORE, 3, rs1, rs2, imm)


def fp(f5: int, fmt: int, rd: int, rs1: int, rs2: int, rm: int = 0) -> int:
    return r_type(OPFP, rm, f5 << 2 | fmt, rd, rs1, rs2)


def amo(f5: int, width: int, rd: int, rs1: int, rs2: int) -> int:
    return r_type(AMO, 2 if width == 4 else 3, f5 << 2, rd, rs1, rs2)


@dataclass
class Run:
    trap: Trap | None
    state: Any
    mem: GuestMemory

    def data(self, addr: int, n: int = 8) -> bytes:
        return self.mem.read(addr, n)


FRONTEND = RiscvFrontend()


def run(words: list[int], *, compiled: bool, x: dict[int, int] | None = None,
        f: dict[int, int] | None = None, fflags: int = 0, frm: int = 0, start: int = CODE,
        code_size: int = 0x1000, data: bytes | None = None, frontend: Any = FRONTEND,
        end: bool = True, tail: bytes = b"") -> Run:
    """Run ``words`` (2- or 4-byte instructions as their low bits say) from ``start``, then an
    ebreak (unless ``end`` is false), then ``tail``; data RAM at DATA (filled with 0x5a unless
    given), nothing at UNMAPPED."""
    mem = GuestMemory()
    mem.add_ram(CODE, code_size, name="code")
    mem.add_ram(DATA, DATA_SIZE, name="data")
    code = b"".join(w.to_bytes(4 if w & 3 == 3 else 2, "little") for w in words)
    if end:
        code += EBREAK.to_bytes(4, "little")
    mem.write(start, code + tail)
    mem.write(DATA, data if data is not None else b"\x5a" * DATA_SIZE)
    state = state_class(frontend.state_layout)()
    for r, v in (x or {}).items():
        state.x[r] = v & M64
    for r, v in (f or {}).items():
        state.f[r] = v
    state.fflags, state.frm, state.pc = fflags, frm, start
    state.res_addr = M64
    engine = InterpEngine(frontend, hot_runs=1 if compiled else 1 << 30)
    return Run(engine.run(state, mem, max_insns=1000), state, mem)


def pc_of(words: list[int], index: int, start: int = CODE) -> int:
    """The address of ``words[index]``."""
    return start + sum(4 if w & 3 == 3 else 2 for w in words[:index])


TIERS = pytest.mark.parametrize("compiled", [False, True], ids=["evaluated", "compiled"])


def trapped(r: Run, kind: TrapKind, pc: int) -> None:
    assert r.trap is not None and r.trap.kind is kind and r.trap.pc == pc, r.trap


def ended(r: Run, words: list[int], start: int = CODE) -> None:
    trapped(r, TrapKind.BREAKPOINT, pc_of(words, len(words), start))


# ---------------------------------------------------------------------------------------------
# Faults in mid-block: earlier instructions done, the faulting one and later ones not
# ---------------------------------------------------------------------------------------------

C_LOADS = {  # compressed loads through x8 (rd' = x9) or sp, offset 0
    "c.lw": 0b010 << 13 | 1 << 2, "c.ld": 0b011 << 13 | 1 << 2,
    "c.lwsp": 0b010 << 13 | 9 << 7 | 2, "c.ldsp": 0b011 << 13 | 9 << 7 | 2,
}
LOAD_WORDS = {name: i_type(LOAD, f3, 9, 8, 0) for name, (f3, _) in H.LOADS.items()}
LOAD_WORDS |= {"flw": i_type(LOADFP, 2, 9, 8, 0), "fld": i_type(LOADFP, 3, 9, 8, 0),
               "c.fld": 0b001 << 13 | 1 << 2, "c.fldsp": 0b001 << 13 | 9 << 7 | 2, **C_LOADS}


@TIERS
@pytest.mark.parametrize("name", sorted(LOAD_WORDS))
def test_load_fault_in_mid_block_is_precise(name: str, compiled: bool) -> None:
    words = [addi(5, 0, 7), sd(5, 10), fp(0b00011, 1, 3, 1, 2),  # x5, memory, fflags (DZ)
             LOAD_WORDS[name],
             addi(6, 0, 1), fp(0b00011, 1, 4, 1, 2)]
    r = run(words, compiled=compiled, x={8: UNMAPPED, 2: UNMAPPED, 9: 99, 10: DATA},
            f={1: 0x3FF0000000000000, 2: 0, 9: 99})
    trapped(r, TrapKind.MEM_FAULT, pc_of(words, 3))
    assert r.trap.addr == UNMAPPED
    assert r.state.x[5] == 7 and r.data(DATA) == (7).to_bytes(8, "little")
    assert r.state.f[3] == 0x7FF0000000000000 and r.state.fflags == DZ
    assert r.state.x[9] == 99 and r.state.f[9] == 99  # the load's rd untouched
    assert r.state.x[6] == 0 and r.state.f[4] == 0  # later instructions not run


STORE_WORDS = {name: s_type(STORE, f3, 8, 9, 0) for name, (f3, _) in H.STORES.items()}
STORE_WORDS |= {"fsw": s_type(STOREFP, 2, 8, 9, 0), "fsd": s_type(STOREFP, 3, 8, 9, 0),
                "c.sw": 0b110 << 13 | 1 << 2, "c.sd": 0b111 << 13 | 1 << 2,
                "c.fsd": 0b101 << 13 | 1 << 2, "c.swsp": 0b110 << 13 | 9 << 2 | 2,
                "c.sdsp": 0b111 << 13 | 9 << 2 | 2, "c.fsdsp": 0b101 << 13 | 9 << 2 | 2}
STORE_SIZE = {"sb": 1, "sh": 2, "sw": 4, "sd": 8, "fsw": 4, "fsd": 8, "c.sw": 4, "c.sd": 8,
              "c.fsd": 8, "c.swsp": 4, "c.sdsp": 8, "c.fsdsp": 8}


@TIERS
@pytest.mark.parametrize("name", sorted(STORE_WORDS))
def test_store_fault_in_mid_block_is_precise(name: str, compiled: bool) -> None:
    """A store reaching past the end of RAM (one byte inside, the rest not: all of it for a
    byte store) faults and writes nothing."""
    size = STORE_SIZE[name]
    at = DATA + DATA_SIZE - size + 1 if size > 1 else DATA + DATA_SIZE
    words = [addi(5, 0, 7), sd(5, 10), STORE_WORDS[name], addi(6, 0, 1), sd(6, 10, 8)]
    r = run(words, compiled=compiled, x={8: at, 2: at, 9: -1, 10: DATA}, f={9: M64})
    trapped(r, TrapKind.MEM_FAULT, pc_of(words, 2))
    assert r.trap.addr == DATA + DATA_SIZE
    assert r.data(DATA) == (7).to_bytes(8, "little")
    assert r.data(DATA + DATA_SIZE - 8) == b"\x5a" * 8  # nothing of the store landed
    assert r.state.x[6] == 0 and r.data(DATA + 8) == b"\x5a" * 8


@TIERS
def test_fault_after_a_not_taken_branch_and_in_a_later_block(compiled: bool) -> None:
    words = [addi(5, 0, 1), H.b_type(0, 5, 0, 8), addi(6, 0, 2),  # beq x5, x0: not taken
             addi(7, 0, 3), ld(9, 8), addi(11, 0, 4)]
    r = run(words, compiled=compiled, x={8: UNMAPPED + 8})
    trapped(r, TrapKind.MEM_FAULT, pc_of(words, 4))
    assert (r.state.x[5], r.state.x[6], r.state.x[7], r.state.x[11]) == (1, 2, 3, 0)


@TIERS
def test_fault_in_a_loop_reports_the_iteration_it_happened_in(compiled: bool) -> None:
    """A loop storing upwards until it leaves RAM: the fault comes in the 9th iteration, with
    the registers as that iteration left them before the store (a compiled block that loops
    on itself runs many iterations per call)."""
    words = [sd(5, 8), addi(8, 8, 8), addi(5, 5, 1), 0xBFD5]  # c.j -12 (back to the sd)
    r = run(words, compiled=compiled, x={8: DATA + DATA_SIZE - 64, 5: 100}, end=False)
    trapped(r, TrapKind.MEM_FAULT, CODE)
    assert r.trap.addr == DATA + DATA_SIZE
    assert r.state.x[8] == DATA + DATA_SIZE and r.state.x[5] == 108
    assert r.data(DATA + DATA_SIZE - 8) == (107).to_bytes(8, "little")


@TIERS
def test_amo_fault_leaves_rd(compiled: bool) -> None:
    words = [addi(5, 0, 1), amo(0b00000, 8, 9, 8, 5), addi(6, 0, 1)]
    r = run(words, compiled=compiled, x={8: UNMAPPED, 9: 99})
    trapped(r, TrapKind.MEM_FAULT, pc_of(words, 1))
    assert (r.state.x[5], r.state.x[9], r.state.x[6]) == (1, 99, 0)


AMO_NAMES = [f"{op}.{w}" for op in ("lr", "sc", *H.AMO_F5) for w in "wd"]


MISALIGNED = [(name, offset) for name in AMO_NAMES for offset in (1, 2, 4, 6)
              if offset % (4 if name.endswith(".w") else 8)]


@TIERS
@pytest.mark.parametrize(("name", "offset"), MISALIGNED)
def test_misaligned_amo_lr_sc_trap(name: str, offset: int, compiled: bool) -> None:
    """The A chapter: a misaligned AMO, LR or SC raises an address-misaligned exception (the
    alternative it allows, an access fault, is not what vm-ir gives). SC traps even with no
    reservation (unicorn's SC does not: see test_diff_unicorn.py, quirk 6)."""
    word = H._amo_word(name, 9, 8, 0 if name.startswith("lr") else 5, 0, 0)
    words = [addi(6, 0, 1), word, addi(7, 0, 1)]
    r = run(words, compiled=compiled, x={8: DATA + 64 + offset, 5: 0x1234, 9: 99})
    trapped(r, TrapKind.MISALIGNED, pc_of(words, 1))
    assert r.trap.addr == DATA + 64 + offset
    assert (r.state.x[6], r.state.x[9], r.state.x[7]) == (1, 99, 0)
    assert r.data(DATA + 64, 16) == b"\x5a" * 16


@TIERS
def test_sc_after_lr_on_another_address_fails_without_writing(compiled: bool) -> None:
    words = [H._amo_word("lr.d", 9, 8, 0, 0, 0), H._amo_word("sc.d", 10, 11, 5, 0, 0),
             H._amo_word("sc.d", 12, 8, 5, 0, 0)]  # the reservation is gone after any SC
    r = run(words, compiled=compiled, x={8: DATA, 11: DATA + 8, 5: 0x1234})
    ended(r, words)
    assert r.state.x[9] == 0x5A5A5A5A5A5A5A5A
    assert r.state.x[10] == 1 and r.state.x[12] == 1
    assert r.data(DATA, 16) == b"\x5a" * 16


@TIERS
def test_lr_sc_pair_succeeds(compiled: bool) -> None:
    words = [H._amo_word("lr.w", 9, 8, 0, 1, 0), addi(5, 5, 1),
             H._amo_word("sc.w", 10, 8, 5, 0, 1)]
    r = run(words, compiled=compiled, x={8: DATA + 4, 5: 0xFFFF_FFFF_7FFF_FFFF})
    ended(r, words)
    assert r.state.x[9] == 0x5A5A5A5A and r.state.x[10] == 0
    assert r.data(DATA, 12) == b"\x5a" * 4 + (0x80000000).to_bytes(4, "little") + b"\x5a" * 4


# ---------------------------------------------------------------------------------------------
# Illegal instructions, ecall, ebreak: the trap at the instruction, earlier effects done
# ---------------------------------------------------------------------------------------------

ILLEGAL = {
    "all zeros (c.unimp)": 0x0000,
    "all ones": 0xFFFFFFFF,
    "c.addi4spn nzuimm=0": 0x0004,
    "c.lwsp rd=x0": 0x4002,
    "c.ldsp rd=x0": 0x6002,
    "c.jr rs1=x0": 0x8002,
    "c.addiw rd=x0": 0x2005,
    "c.lui imm=0": 0x6281,
    "c.addi16sp imm=0": 0x6101,
    "fadd.s rm=101": fp(0, 0, 1, 2, 3, rm=5),
    "fmadd.d rm=110": r4_type(0b1000011, 1, 1, 2, 3, 4, 6),
    "fcvt.w.d rm=101": fp(0b11000, 1, 5, 2, 0, rm=5),
    "fsqrt.s rs2!=0": fp(0b01011, 0, 1, 2, 1),
    "fcvt.w.s rs2=4": fp(0b11000, 0, 5, 2, 4),
    "fmv.x.w funct3=010": fp(0b11100, 0, 5, 2, 0, rm=2),
    "fmt=10 (Q, not implemented)": fp(0, 3, 1, 2, 3),
    "slli funct6=000001": i_type(OPIMM, 1, 5, 6, 0b000001 << 6 | 3),
    "srai funct6=010001": i_type(OPIMM, 5, 5, 6, 0b010001 << 6 | 3),
    "slliw shamt[5]=1": i_type(OPIMM32, 1, 5, 6, 0x20 | 3),
    "roriw shamt[5]=1": i_type(OPIMM32, 5, 5, 6, 0b0110000 << 5 | 0x20),
    "lr.w rs2!=0": amo(0b00010, 4, 5, 8, 1),
    "amo funct5=00101": amo(0b00101, 8, 5, 8, 6),
    "amo width=b": r_type(AMO, 0, 0, 5, 8, 6),
    "load funct3=111": i_type(LOAD, 7, 5, 8, 0),
    "store funct3=100": s_type(STORE, 4, 8, 5, 0),
    "csrrw mstatus": i_type(SYSTEM, 1, 5, 6, 0x300),
    "csrrs misa": i_type(SYSTEM, 2, 5, 0, 0x301),
    "csrrw x0, cycle (read-only)": i_type(SYSTEM, 1, 0, 5, 0xC00),
    "csrrsi time, 1 (read-only)": i_type(SYSTEM, 6, 5, 1, 0xC01),
    "csrrc instret, x5 (read-only)": i_type(SYSTEM, 3, 5, 5, 0xC02),
    "mret": 0x30200073,
    "sret": 0x10200073,
    "ecall with rd!=0": 0x00000073 | 5 << 7,
    "opcode 48-bit+": 0x0000001F,
}


@TIERS
@pytest.mark.parametrize("name", sorted(ILLEGAL))
def test_illegal_encodings_trap_at_their_pc(name: str, compiled: bool) -> None:
    words = [addi(7, 0, 5), addi(6, 0, 1), ILLEGAL[name], addi(6, 0, 2)]
    r = run(words, compiled=compiled, x={8: DATA, 5: 3}, f={1: 77})
    trapped(r, TrapKind.ILLEGAL, pc_of(words, 2))
    assert (r.state.x[7], r.state.x[6], r.state.x[5], r.state.f[1]) == (5, 1, 3, 77)


@TIERS
def test_extension_off_makes_its_instructions_illegal(compiled: bool) -> None:
    no_zbb = RiscvFrontend(EXTENSIONS - {"Zbb"})
    words = [addi(6, 0, 1), r_type(OP, 7, 0b0100000, 5, 6, 7)]  # andn
    r = run(words, compiled=compiled, frontend=no_zbb)
    trapped(r, TrapKind.ILLEGAL, pc_of(words, 1))
    assert r.state.x[6] == 1 and r.state.x[5] == 0


@TIERS
@pytest.mark.parametrize(("word", "kind"), [(0x00000073, TrapKind.SYSCALL),
                                            (EBREAK, TrapKind.BREAKPOINT),
                                            (0x9002, TrapKind.BREAKPOINT)],
                         ids=["ecall", "ebreak", "c.ebreak"])
def test_ecall_and_ebreak_trap_at_their_pc(word: int, kind: TrapKind, compiled: bool) -> None:
    words = [0x0001, addi(6, 0, 1), word, addi(6, 0, 2)]
    r = run(words, compiled=compiled, end=False)
    trapped(r, kind, pc_of(words, 2))
    assert r.state.x[6] == 1


RM_OPS = {  # instructions with a rounding mode, rd = f3 or x5
    "fadd.s": fp(0, 0, 3, 1, 2), "fsqrt.d": fp(0b01011, 1, 3, 1, 0),
    "fmadd.s": r4_type(0b1000011, 0, 3, 1, 2, 1, 0), "fnmsub.d": r4_type(0b1001011, 1, 3, 1, 2, 1, 0),
    "fcvt.w.s": fp(0b11000, 0, 5, 1, 0), "fcvt.lu.d": fp(0b11000, 1, 5, 1, 3),
    "fcvt.s.l": fp(0b11010, 0, 3, 6, 2), "fcvt.d.w": fp(0b11010, 1, 3, 6, 0),
    "fcvt.s.d": fp(0b01000, 0, 3, 1, 1), "fcvt.d.s": fp(0b01000, 1, 3, 1, 0),
}


@TIERS
@pytest.mark.parametrize("name", sorted(RM_OPS))
@pytest.mark.parametrize("frm", [5, 6, 7])
def test_dynamic_rounding_with_reserved_frm_is_illegal(name: str, frm: int,
                                                        compiled: bool) -> None:
    """rm=111 reads frm; frm 101..111 is reserved: the instruction is illegal at run time
    (even the exact conversions, whose rm is still an operand)."""
    words = [addi(7, 0, 1), RM_OPS[name] | 7 << 12, addi(7, 0, 2)]
    r = run(words, compiled=compiled, frm=frm, f={1: BOX | ONE_S, 2: BOX | ONE_S, 3: 33},
            x={5: 55, 6: 3}, fflags=0)
    trapped(r, TrapKind.ILLEGAL, pc_of(words, 1))
    assert r.state.x[7] == 1 and r.state.f[3] == 33 and r.state.x[5] == 55
    assert r.state.fflags == 0 and r.state.frm == frm


@TIERS
def test_frm_written_in_the_block_is_what_a_dynamic_rm_reads(compiled: bool) -> None:
    """csrwi frm, 5 then a dynamic-rm fadd in the same block: illegal; csrwi frm, 2 (RDN):
    the sum rounds down."""
    fadd = fp(0, 0, 3, 1, 2, rm=7)
    words = [i_type(SYSTEM, 5, 0, 5, 0x002), fadd]
    r = run(words, compiled=compiled, f={1: BOX | ONE_S, 2: BOX | ONE_S})
    trapped(r, TrapKind.ILLEGAL, pc_of(words, 1))
    words = [i_type(SYSTEM, 5, 0, 2, 0x002), fadd, i_type(SYSTEM, 2, 5, 0, 0x003)]
    r = run(words, compiled=compiled, f={1: BOX | ONE_S, 2: BOX | 0x33800000})  # 1 + 2^-24
    ended(r, words)
    assert r.state.f[3] == BOX | ONE_S and r.state.x[5] == 2 << 5 | NX


# ---------------------------------------------------------------------------------------------
# Fetch faults
# ---------------------------------------------------------------------------------------------


@TIERS
def test_jump_to_unmapped_code_faults_at_the_target(compiled: bool) -> None:
    words = [addi(6, 0, 1), i_type(0b1100111, 0, 1, 8, 0)]  # jalr ra, 0(x8)
    r = run(words, compiled=compiled, x={8: UNMAPPED})
    trapped(r, TrapKind.MEM_FAULT, UNMAPPED)
    assert r.state.x[6] == 1 and r.state.x[1] == pc_of(words, 2)


@TIERS
def test_instruction_straddling_into_unmapped_page_faults_at_its_pc(compiled: bool) -> None:
    start = CODE + 0x1000 - 8
    words = [0x0505, addi(6, 0, 1)]  # c.addi x10, 1; addi x6, x0, 1; then half an addi
    r = run(words, compiled=compiled, start=start, end=False,
            tail=(addi(7, 0, 1) & 0xFFFF).to_bytes(2, "little"))
    trapped(r, TrapKind.MEM_FAULT, start + 6)
    assert r.state.x[10] == 1 and r.state.x[6] == 1 and r.state.x[7] == 0


# ---------------------------------------------------------------------------------------------
# NaN-boxing (F/D 2.2, "NaN Boxing of Narrower Values"): an operand that is not a boxed single
# is the canonical NaN, except for the transfer instructions (fsw, fmv.x.w), which ignore it.
# ---------------------------------------------------------------------------------------------

UNBOXED = [ONE_S, 0xFFFFFFFE_3F800000, 0x7FFFFFFF_3F800000]


@TIERS
@pytest.mark.parametrize("unboxed", UNBOXED, ids=hex)
@pytest.mark.parametrize(("name", "word", "dest", "expected", "flags"), [
    ("fadd.s", fp(0, 0, 3, 1, 2), "f", CANON_S, 0),
    ("fsqrt.s", fp(0b01011, 0, 3, 1, 0), "f", CANON_S, 0),
    ("fmadd.s addend", r4_type(0b1000011, 0, 3, 2, 2, 1, 0), "f", CANON_S, 0),
    ("fsgnj.s", fp(0b00100, 0, 3, 1, 4), "f", BOX | 0xFFC00000, 0),
    ("fsgnjn.s", fp(0b00100, 0, 3, 4, 1, rm=1), "f", BOX | 0xBF800000, 0),
    ("fsgnjx.s", fp(0b00100, 0, 3, 4, 1, rm=2), "f", BOX | 0xBF800000, 0),
    ("fmin.s", fp(0b00101, 0, 3, 1, 2), "f", BOX | TWO_S, 0),
    ("fmax.s", fp(0b00101, 0, 3, 4, 1, rm=1), "f", BOX | MINUS_ONE_S, 0),
    ("feq.s", fp(0b10100, 0, 5, 1, 1, rm=2), "x", 0, 0),
    ("flt.s", fp(0b10100, 0, 5, 1, 2, rm=1), "x", 0, NV),
    ("fclass.s", fp(0b11100, 0, 5, 1, 0, rm=1), "x", 1 << 9, 0),
    ("fcvt.w.s", fp(0b11000, 0, 5, 1, 0), "x", 0x7FFFFFFF, NV),
    ("fcvt.lu.s", fp(0b11000, 0, 5, 1, 3), "x", M64, NV),
    ("fcvt.d.s", fp(0b01000, 1, 3, 1, 0), "f", CANON_D, 0),
])
def test_unboxed_single_operand_is_the_canonical_nan(name, word, dest, expected, flags,
                                                    unboxed, compiled) -> None:
    words = [word]
    r = run(words, compiled=compiled, f={1: unboxed, 2: BOX | TWO_S, 4: BOX | MINUS_ONE_S})
    ended(r, words)
    got = r.state.f[3] if dest == "f" else r.state.x[5]
    assert got == expected, f"{name}: {got:#x}"
    assert r.state.fflags == flags


@TIERS
@pytest.mark.parametrize("unboxed", UNBOXED, ids=hex)
def test_transfers_ignore_boxing(unboxed: int, compiled: bool) -> None:
    """fsw stores the low 32 bits and fmv.x.w sign-extends them, boxed or not."""
    words = [s_type(STOREFP, 2, 8, 1, 0), fp(0b11100, 0, 5, 1, 0),
             s_type(STOREFP, 3, 8, 1, 8)]  # fsd keeps all 64 bits
    r = run(words, compiled=compiled, f={1: unboxed | 0x80000000}, x={8: DATA})
    ended(r, words)
    low = (unboxed | 0x80000000) & 0xFFFFFFFF
    assert r.data(DATA, 4) == low.to_bytes(4, "little")
    assert r.state.x[5] == BOX | low
    assert r.data(DATA + 8) == (unboxed | 0x80000000).to_bytes(8, "little")


@TIERS
def test_single_results_and_loads_are_boxed(compiled: bool) -> None:
    words = [i_type(LOADFP, 2, 3, 8, 0), fp(0b11110, 0, 4, 5, 0), fp(0, 0, 6, 3, 3),
             fp(0b11010, 0, 7, 5, 0)]  # flw, fmv.w.x, fadd.s, fcvt.s.w
    r = run(words, compiled=compiled, x={8: DATA, 5: 0x1234_5678_4000_0000},
            data=ONE_S.to_bytes(4, "little") * (DATA_SIZE // 4))
    ended(r, words)
    assert r.state.f[3] == BOX | ONE_S
    assert r.state.f[4] == BOX | TWO_S
    assert r.state.f[6] == BOX | TWO_S
    assert r.state.f[7] == BOX | 0x4E800000  # (float)0x40000000


# ---------------------------------------------------------------------------------------------
# State the helpers share with lifted code: fflags, frm, fence.i, the counters
# ---------------------------------------------------------------------------------------------


@TIERS
def test_fflags_between_csr_accesses_and_fp_helpers_in_one_block(compiled: bool) -> None:
    """CSR writes of fflags and the flags FP helpers raise interleave in program order."""
    words = [i_type(SYSTEM, 5, 0, 0, 0x001),          # csrwi fflags, 0
             fp(0b00011, 1, 3, 1, 2),                # fdiv.d: 1/0 raises DZ
             i_type(SYSTEM, 2, 5, 0, 0x001),          # csrr x5, fflags
             i_type(SYSTEM, 5, 0, 1, 0x001),          # csrwi fflags, NX
             fp(0b00000, 1, 4, 1, 6),                # fadd.d 1 + 2^-60: inexact (NX again)
             fp(0b10100, 1, 7, 8, 1, rm=1),          # flt.d sNaN < 1: NV
             i_type(SYSTEM, 2, 6, 0, 0x003)]          # csrr x6, fcsr
    r = run(words, compiled=compiled, frm=3, fflags=0x1F,
            f={1: 0x3FF0000000000000, 2: 0, 6: 0x3C30000000000000, 8: 0x7FF4000000000000})
    ended(r, words)
    assert r.state.x[5] == DZ
    assert r.state.x[6] == 3 << 5 | NV | NX
    assert r.state.x[7] == 0 and r.state.fflags == NV | NX


@TIERS
def test_fence_i_makes_stored_code_visible(compiled: bool) -> None:
    """A store over a later instruction, then fence.i: the new instruction runs (Zifencei)."""
    new = addi(6, 0, 42)
    words = [ld(5, 8), i_type(0b0010111, 0, 9, 0, 0),  # x5 = the new word; auipc x9, 0
             s_type(STORE, 2, 9, 5, 12),            # sw x5, 12(x9): over the addi below
             i_type(0b0001111, 1, 0, 0, 0),          # fence.i
             addi(6, 0, 1)]
    r = run(words, compiled=compiled, x={8: DATA}, data=new.to_bytes(8, "little") * 1024)
    ended(r, words)
    assert r.state.x[6] == 42


@TIERS
def test_counters_read_and_advance(compiled: bool) -> None:
    words = [i_type(SYSTEM, 2, 5, 0, 0xC01), addi(7, 0, 1), i_type(SYSTEM, 2, 6, 0, 0xC01),
             i_type(SYSTEM, 2, 10, 0, 0xC00), i_type(SYSTEM, 2, 11, 0, 0xC02)]
    r = run(words, compiled=compiled)
    ended(r, words)
    assert r.state.x[6] >= r.state.x[5] > 0
    assert r.state.x[10] > 0 and r.state.x[11] > 0
