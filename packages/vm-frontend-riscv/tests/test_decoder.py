"""RISC-V decoding against capstone 5 and against the spec model in conftest.py.

(a) Miasm-style tables of (bytes, assembly): one case per instruction of both
    tables plus aliases and edge immediates; each is checked against capstone
    (and, for Zba/Zbb/Zbc/Zbs, which capstone 5 lacks, against GNU as).
(b) Random words, 32-bit (hypothesis) and 16-bit (hypothesis, and all of them):
    every word capstone decodes we decode to the same instruction (modulo the
    aliases in `CAPSTONE_ALIASES`), and every word we decode capstone decodes,
    except for the documented differences below.
(c) Operands: the spec model's encodings decode back to their operands, C
    instructions to exactly what their 32-bit expansion decodes to, and the
    fields of random words equal bit arithmetic written here.

Where we and capstone 5 disagree on validity (each checked exactly below):

- Capstone decodes, we do not:
  * ``0x0000``: the spec's defined-illegal all-zero instruction; capstone says ``c.unimp``.
  * ``c.lui rd, 0`` (rd not x0/x2): nzimm=0 is reserved; capstone accepts it.
  * ``uret sret mret wfi sfence.vma``: privileged, not in these user-level tables.
- We decode, capstone does not:
  * Zba, Zbb, Zbc, Zbs: capstone 5 has none of them.
  * HINTs (the spec says they are legal and act as no-ops or write x0):
    ``c.li``, ``c.lui``, ``c.slli``, ``c.mv``, ``c.add`` with rd=x0, and
    ``c.nop`` with a negative immediate (capstone takes imm[5]=0 only).
  * FENCE with rd/rs1 non-zero or a reserved fm, FENCE.TSO with rd/rs1 non-zero,
    FENCE.I with any of imm/rs1/rd non-zero: the spec says these fields are
    reserved and implementations ignore them (and treat reserved fm as 0000).
  * ``fcvt.d.s``, ``fcvt.d.w``, ``fcvt.d.wu`` with rm != 000: the conversions are
    exact and the spec lets rm be any valid mode; capstone knows only rm=000.
- Both decode, text differs: capstone names CSR 0x3bd ``pmpaddr14`` and 0x3be
  ``pmpaddr13`` (swapped); we follow the privileged spec.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vm_frontend_riscv.decoder import (
    EXTENSIONS,
    OP_EXT,
    TABLE16,
    TABLE32,
    Insn,
    decode,
    decode_bytes,
    insn_size,
)
from vm_frontend_riscv.disasm import disassemble

# One case per instruction of both tables: (bytes in memory order, capstone's text).
# For Zba/Zbb/Zbc/Zbs, which capstone 5 does not decode, the text is standard
# assembly, and test_zb_cases_assemble_with_gnu_as checks the bytes with GNU as.
CASES_32 = [
    ("37 15 00 00", "lui a0, 1"),
    ("17 15 00 00", "auipc a0, 1"),
    ("6f 05 20 01", "jal a0, 0x12"),
    ("67 85 a5 00", "jalr a0, a1, 0xa"),
    ("63 89 c5 00", "beq a1, a2, 0x12"),
    ("63 99 c5 00", "bne a1, a2, 0x12"),
    ("63 c9 c5 00", "blt a1, a2, 0x12"),
    ("63 d9 c5 00", "bge a1, a2, 0x12"),
    ("63 e9 c5 00", "bltu a1, a2, 0x12"),
    ("63 f9 c5 00", "bgeu a1, a2, 0x12"),
    ("03 85 a5 00", "lb a0, 0xa(a1)"),
    ("03 95 a5 00", "lh a0, 0xa(a1)"),
    ("03 a5 a5 00", "lw a0, 0xa(a1)"),
    ("03 b5 a5 00", "ld a0, 0xa(a1)"),
    ("03 c5 a5 00", "lbu a0, 0xa(a1)"),
    ("03 d5 a5 00", "lhu a0, 0xa(a1)"),
    ("03 e5 a5 00", "lwu a0, 0xa(a1)"),
    ("23 85 c5 00", "sb a2, 0xa(a1)"),
    ("23 95 c5 00", "sh a2, 0xa(a1)"),
    ("23 a5 c5 00", "sw a2, 0xa(a1)"),
    ("23 b5 c5 00", "sd a2, 0xa(a1)"),
    ("13 85 a5 00", "addi a0, a1, 0xa"),
    ("13 a5 a5 00", "slti a0, a1, 0xa"),
    ("13 b5 a5 00", "sltiu a0, a1, 0xa"),
    ("13 c5 a5 00", "xori a0, a1, 0xa"),
    ("13 e5 a5 00", "ori a0, a1, 0xa"),
    ("13 f5 a5 00", "andi a0, a1, 0xa"),
    ("1b 85 a5 00", "addiw a0, a1, 0xa"),
    ("13 95 a5 00", "slli a0, a1, 0xa"),
    ("13 d5 a5 00", "srli a0, a1, 0xa"),
    ("13 d5 a5 40", "srai a0, a1, 0xa"),
    ("1b 95 a5 00", "slliw a0, a1, 0xa"),
    ("1b d5 a5 00", "srliw a0, a1, 0xa"),
    ("1b d5 a5 40", "sraiw a0, a1, 0xa"),
    ("33 85 c5 00", "add a0, a1, a2"),
    ("33 85 c5 40", "sub a0, a1, a2"),
    ("33 95 c5 00", "sll a0, a1, a2"),
    ("33 a5 c5 00", "slt a0, a1, a2"),
    ("33 b5 c5 00", "sltu a0, a1, a2"),
    ("33 c5 c5 00", "xor a0, a1, a2"),
    ("33 d5 c5 00", "srl a0, a1, a2"),
    ("33 d5 c5 40", "sra a0, a1, a2"),
    ("33 e5 c5 00", "or a0, a1, a2"),
    ("33 f5 c5 00", "and a0, a1, a2"),
    ("3b 85 c5 00", "addw a0, a1, a2"),
    ("3b 85 c5 40", "subw a0, a1, a2"),
    ("3b 95 c5 00", "sllw a0, a1, a2"),
    ("3b d5 c5 00", "srlw a0, a1, a2"),
    ("3b d5 c5 40", "sraw a0, a1, a2"),
    ("0f 00 00 00", "fence unknown, unknown"),
    ("0f 00 30 83", "fence.tso"),
    ("73 00 00 00", "ecall"),
    ("73 00 10 00", "ebreak"),
    ("0f 10 00 00", "fence.i"),
    ("73 95 05 30", "csrrw a0, mstatus, a1"),
    ("73 a5 05 30", "csrrs a0, mstatus, a1"),
    ("73 b5 05 30", "csrrc a0, mstatus, a1"),
    ("73 55 05 30", "csrrwi a0, mstatus, 0xa"),
    ("73 65 05 30", "csrrsi a0, mstatus, 0xa"),
    ("73 75 05 30", "csrrci a0, mstatus, 0xa"),
    ("33 85 c5 02", "mul a0, a1, a2"),
    ("33 95 c5 02", "mulh a0, a1, a2"),
    ("33 a5 c5 02", "mulhsu a0, a1, a2"),
    ("33 b5 c5 02", "mulhu a0, a1, a2"),
    ("33 c5 c5 02", "div a0, a1, a2"),
    ("33 d5 c5 02", "divu a0, a1, a2"),
    ("33 e5 c5 02", "rem a0, a1, a2"),
    ("33 f5 c5 02", "remu a0, a1, a2"),
    ("3b 85 c5 02", "mulw a0, a1, a2"),
    ("3b c5 c5 02", "divw a0, a1, a2"),
    ("3b d5 c5 02", "divuw a0, a1, a2"),
    ("3b e5 c5 02", "remw a0, a1, a2"),
    ("3b f5 c5 02", "remuw a0, a1, a2"),
    ("2f a5 05 14", "lr.w.aq a0, (a1)"),
    ("2f a5 c5 1c", "sc.w.aq a0, a2, (a1)"),
    ("2f a5 c5 0c", "amoswap.w.aq a0, a2, (a1)"),
    ("2f a5 c5 04", "amoadd.w.aq a0, a2, (a1)"),
    ("2f a5 c5 24", "amoxor.w.aq a0, a2, (a1)"),
    ("2f a5 c5 64", "amoand.w.aq a0, a2, (a1)"),
    ("2f a5 c5 44", "amoor.w.aq a0, a2, (a1)"),
    ("2f a5 c5 84", "amomin.w.aq a0, a2, (a1)"),
    ("2f a5 c5 a4", "amomax.w.aq a0, a2, (a1)"),
    ("2f a5 c5 c4", "amominu.w.aq a0, a2, (a1)"),
    ("2f a5 c5 e4", "amomaxu.w.aq a0, a2, (a1)"),
    ("2f b5 05 14", "lr.d.aq a0, (a1)"),
    ("2f b5 c5 1c", "sc.d.aq a0, a2, (a1)"),
    ("2f b5 c5 0c", "amoswap.d.aq a0, a2, (a1)"),
    ("2f b5 c5 04", "amoadd.d.aq a0, a2, (a1)"),
    ("2f b5 c5 24", "amoxor.d.aq a0, a2, (a1)"),
    ("2f b5 c5 64", "amoand.d.aq a0, a2, (a1)"),
    ("2f b5 c5 44", "amoor.d.aq a0, a2, (a1)"),
    ("2f b5 c5 84", "amomin.d.aq a0, a2, (a1)"),
    ("2f b5 c5 a4", "amomax.d.aq a0, a2, (a1)"),
    ("2f b5 c5 c4", "amominu.d.aq a0, a2, (a1)"),
    ("2f b5 c5 e4", "amomaxu.d.aq a0, a2, (a1)"),
    ("07 a5 a5 00", "flw fa0, 0xa(a1)"),
    ("27 a5 c5 00", "fsw fa2, 0xa(a1)"),
    ("43 95 c5 68", "fmadd.s fa0, fa1, fa2, fa3, rtz"),
    ("47 95 c5 68", "fmsub.s fa0, fa1, fa2, fa3, rtz"),
    ("4b 95 c5 68", "fnmsub.s fa0, fa1, fa2, fa3, rtz"),
    ("4f 95 c5 68", "fnmadd.s fa0, fa1, fa2, fa3, rtz"),
    ("53 95 c5 00", "fadd.s fa0, fa1, fa2, rtz"),
    ("53 95 c5 08", "fsub.s fa0, fa1, fa2, rtz"),
    ("53 95 c5 10", "fmul.s fa0, fa1, fa2, rtz"),
    ("53 95 c5 18", "fdiv.s fa0, fa1, fa2, rtz"),
    ("53 95 05 58", "fsqrt.s fa0, fa1, rtz"),
    ("53 85 c5 20", "fsgnj.s fa0, fa1, fa2"),
    ("53 95 c5 20", "fsgnjn.s fa0, fa1, fa2"),
    ("53 a5 c5 20", "fsgnjx.s fa0, fa1, fa2"),
    ("53 85 c5 28", "fmin.s fa0, fa1, fa2"),
    ("53 95 c5 28", "fmax.s fa0, fa1, fa2"),
    ("53 a5 c5 a0", "feq.s a0, fa1, fa2"),
    ("53 95 c5 a0", "flt.s a0, fa1, fa2"),
    ("53 85 c5 a0", "fle.s a0, fa1, fa2"),
    ("53 95 05 c0", "fcvt.w.s a0, fa1, rtz"),
    ("53 95 05 d0", "fcvt.s.w fa0, a1, rtz"),
    ("53 95 15 c0", "fcvt.wu.s a0, fa1, rtz"),
    ("53 95 15 d0", "fcvt.s.wu fa0, a1, rtz"),
    ("53 95 25 c0", "fcvt.l.s a0, fa1, rtz"),
    ("53 95 25 d0", "fcvt.s.l fa0, a1, rtz"),
    ("53 95 35 c0", "fcvt.lu.s a0, fa1, rtz"),
    ("53 95 35 d0", "fcvt.s.lu fa0, a1, rtz"),
    ("53 85 05 e0", "fmv.x.w a0, fa1"),
    ("53 95 05 e0", "fclass.s a0, fa1"),
    ("53 85 05 f0", "fmv.w.x fa0, a1"),
    ("07 b5 a5 00", "fld fa0, 0xa(a1)"),
    ("27 b5 c5 00", "fsd fa2, 0xa(a1)"),
    ("43 95 c5 6a", "fmadd.d fa0, fa1, fa2, fa3, rtz"),
    ("47 95 c5 6a", "fmsub.d fa0, fa1, fa2, fa3, rtz"),
    ("4b 95 c5 6a", "fnmsub.d fa0, fa1, fa2, fa3, rtz"),
    ("4f 95 c5 6a", "fnmadd.d fa0, fa1, fa2, fa3, rtz"),
    ("53 95 c5 02", "fadd.d fa0, fa1, fa2, rtz"),
    ("53 95 c5 0a", "fsub.d fa0, fa1, fa2, rtz"),
    ("53 95 c5 12", "fmul.d fa0, fa1, fa2, rtz"),
    ("53 95 c5 1a", "fdiv.d fa0, fa1, fa2, rtz"),
    ("53 95 05 5a", "fsqrt.d fa0, fa1, rtz"),
    ("53 85 c5 22", "fsgnj.d fa0, fa1, fa2"),
    ("53 95 c5 22", "fsgnjn.d fa0, fa1, fa2"),
    ("53 a5 c5 22", "fsgnjx.d fa0, fa1, fa2"),
    ("53 85 c5 2a", "fmin.d fa0, fa1, fa2"),
    ("53 95 c5 2a", "fmax.d fa0, fa1, fa2"),
    ("53 a5 c5 a2", "feq.d a0, fa1, fa2"),
    ("53 95 c5 a2", "flt.d a0, fa1, fa2"),
    ("53 85 c5 a2", "fle.d a0, fa1, fa2"),
    ("53 95 05 c2", "fcvt.w.d a0, fa1, rtz"),
    ("53 85 05 d2", "fcvt.d.w fa0, a1"),
    ("53 95 15 c2", "fcvt.wu.d a0, fa1, rtz"),
    ("53 85 15 d2", "fcvt.d.wu fa0, a1"),
    ("53 95 25 c2", "fcvt.l.d a0, fa1, rtz"),
    ("53 95 25 d2", "fcvt.d.l fa0, a1, rtz"),
    ("53 95 35 c2", "fcvt.lu.d a0, fa1, rtz"),
    ("53 95 35 d2", "fcvt.d.lu fa0, a1, rtz"),
    ("53 85 05 e2", "fmv.x.d a0, fa1"),
    ("53 95 05 e2", "fclass.d a0, fa1"),
    ("53 85 05 f2", "fmv.d.x fa0, a1"),
    ("53 95 15 40", "fcvt.s.d fa0, fa1, rtz"),
    ("53 85 05 42", "fcvt.d.s fa0, fa1"),
    ("3b 85 c5 08", "add.uw a0, a1, a2"),
    ("33 a5 c5 20", "sh1add a0, a1, a2"),
    ("3b a5 c5 20", "sh1add.uw a0, a1, a2"),
    ("33 c5 c5 20", "sh2add a0, a1, a2"),
    ("3b c5 c5 20", "sh2add.uw a0, a1, a2"),
    ("33 e5 c5 20", "sh3add a0, a1, a2"),
    ("3b e5 c5 20", "sh3add.uw a0, a1, a2"),
    ("1b 95 a5 08", "slli.uw a0, a1, 0xa"),
    ("33 f5 c5 40", "andn a0, a1, a2"),
    ("33 e5 c5 40", "orn a0, a1, a2"),
    ("33 c5 c5 40", "xnor a0, a1, a2"),
    ("33 e5 c5 0a", "max a0, a1, a2"),
    ("33 f5 c5 0a", "maxu a0, a1, a2"),
    ("33 c5 c5 0a", "min a0, a1, a2"),
    ("33 d5 c5 0a", "minu a0, a1, a2"),
    ("33 95 c5 60", "rol a0, a1, a2"),
    ("33 d5 c5 60", "ror a0, a1, a2"),
    ("3b 95 c5 60", "rolw a0, a1, a2"),
    ("3b d5 c5 60", "rorw a0, a1, a2"),
    ("13 d5 a5 60", "rori a0, a1, 0xa"),
    ("1b d5 a5 60", "roriw a0, a1, 0xa"),
    ("13 95 05 60", "clz a0, a1"),
    ("13 95 15 60", "ctz a0, a1"),
    ("13 95 25 60", "cpop a0, a1"),
    ("13 95 45 60", "sext.b a0, a1"),
    ("13 95 55 60", "sext.h a0, a1"),
    ("1b 95 05 60", "clzw a0, a1"),
    ("1b 95 15 60", "ctzw a0, a1"),
    ("1b 95 25 60", "cpopw a0, a1"),
    ("3b c5 05 08", "zext.h a0, a1"),
    ("13 d5 75 28", "orc.b a0, a1"),
    ("13 d5 85 6b", "rev8 a0, a1"),
    ("33 95 c5 0a", "clmul a0, a1, a2"),
    ("33 a5 c5 0a", "clmulr a0, a1, a2"),
    ("33 b5 c5 0a", "clmulh a0, a1, a2"),
    ("33 95 c5 48", "bclr a0, a1, a2"),
    ("13 95 a5 48", "bclri a0, a1, 0xa"),
    ("33 d5 c5 48", "bext a0, a1, a2"),
    ("13 d5 a5 48", "bexti a0, a1, 0xa"),
    ("33 95 c5 68", "binv a0, a1, a2"),
    ("13 95 a5 68", "binvi a0, a1, 0xa"),
    ("33 95 c5 28", "bset a0, a1, a2"),
    ("13 95 a5 28", "bseti a0, a1, 0xa"),
]

CASES_16 = [
    ("44 10", "c.addi4spn s1, sp, 0x24"),
    ("24 25", "c.fld fs1, 0x48(a0)"),
    ("44 51", "c.lw s1, 0x24(a0)"),
    ("24 65", "c.ld s1, 0x48(a0)"),
    ("24 a5", "c.fsd fs1, 0x48(a0)"),
    ("44 d1", "c.sw s1, 0x24(a0)"),
    ("24 e5", "c.sd s1, 0x48(a0)"),
    ("01 00", "c.nop"),
    ("a9 04", "c.addi s1, 0xa"),
    ("a9 24", "c.addiw s1, 0xa"),
    ("a9 44", "c.li s1, 0xa"),
    ("41 61", "c.addi16sp sp, 0x10"),
    ("85 64", "c.lui s1, 1"),
    ("a9 80", "c.srli s1, 0xa"),
    ("a9 84", "c.srai s1, 0xa"),
    ("a9 88", "c.andi s1, 0xa"),
    ("89 8c", "c.sub s1, a0"),
    ("a9 8c", "c.xor s1, a0"),
    ("c9 8c", "c.or s1, a0"),
    ("e9 8c", "c.and s1, a0"),
    ("89 9c", "c.subw s1, a0"),
    ("a9 9c", "c.addw s1, a0"),
    ("09 a8", "c.j 0x12"),
    ("89 c8", "c.beqz s1, 0x12"),
    ("89 e8", "c.bnez s1, 0x12"),
    ("aa 04", "c.slli s1, 0xa"),
    ("a6 24", "c.fldsp fs1, 0x48(sp)"),
    ("92 54", "c.lwsp s1, 0x24(sp)"),
    ("a6 64", "c.ldsp s1, 0x48(sp)"),
    ("82 84", "c.jr s1"),
    ("aa 84", "c.mv s1, a0"),
    ("02 90", "c.ebreak"),
    ("82 94", "c.jalr s1"),
    ("aa 94", "c.add s1, a0"),
    ("a6 a4", "c.fsdsp fs1, 0x48(sp)"),
    ("26 d2", "c.swsp s1, 0x24(sp)"),
    ("a6 e4", "c.sdsp s1, 0x48(sp)"),
]

# Aliases, negative and extreme immediates, rounding modes, fence sets, CSR names.
CASES_EDGES = [
    ("13 00 00 00", "nop"),
    ("13 85 05 00", "mv a0, a1"),
    ("13 05 00 80", "addi a0, zero, -0x800"),
    ("13 05 f0 7f", "addi a0, zero, 0x7ff"),
    ("13 c5 f5 ff", "not a0, a1"),
    ("13 b5 15 00", "seqz a0, a1"),
    ("1b 85 05 00", "sext.w a0, a1"),
    ("33 05 b0 40", "neg a0, a1"),
    ("3b 05 b0 40", "negw a0, a1"),
    ("33 35 b0 00", "snez a0, a1"),
    ("33 a5 05 00", "sltz a0, a1"),
    ("33 25 b0 00", "sgtz a0, a1"),
    ("e3 0e 05 fe", "beqz a0, -4"),
    ("e3 1f 05 7e", "bnez a0, 0xffe"),
    ("63 50 a0 80", "blez a0, -0x1000"),
    ("63 54 05 00", "bgez a0, 8"),
    ("63 44 05 00", "bltz a0, 8"),
    ("63 44 a0 00", "bgtz a0, 8"),
    ("6f f0 ff ff", "j -2"),
    ("ef f0 df ff", "jal -4"),
    ("6f f5 ff 7f", "jal a0, 0xffffe"),
    ("6f 00 00 80", "j -0x100000"),
    ("67 80 00 00", "ret"),
    ("67 00 05 00", "jr a0"),
    ("e7 00 05 00", "jalr a0"),
    ("e7 00 85 ff", "jalr ra, a0, -8"),
    ("37 f5 ff ff", "lui a0, 0xfffff"),
    ("17 05 00 80", "auipc a0, 0x80000"),
    ("03 35 81 ff", "ld a0, -8(sp)"),
    ("23 30 11 80", "sd ra, -0x800(sp)"),
    ("73 25 00 30", "csrr a0, mstatus"),
    ("73 10 05 30", "csrw mstatus, a0"),
    ("73 20 05 30", "csrs mstatus, a0"),
    ("73 30 05 30", "csrc mstatus, a0"),
    ("73 d0 02 30", "csrwi mstatus, 5"),
    ("73 60 04 30", "csrsi mstatus, 8"),
    ("73 f0 0f 30", "csrci mstatus, 0x1f"),
    ("73 25 30 00", "frcsr a0"),
    ("73 95 35 00", "fscsr a0, a1"),
    ("73 90 35 00", "fscsr a1"),
    ("73 25 20 00", "frrm a0"),
    ("73 95 25 00", "fsrm a0, a1"),
    ("73 90 25 00", "fsrm a1"),
    ("73 d5 20 00", "fsrmi a0, 1"),
    ("73 d0 20 00", "fsrmi 1"),
    ("73 25 10 00", "frflags a0"),
    ("73 95 15 00", "fsflags a0, a1"),
    ("73 90 15 00", "fsflags a1"),
    ("73 d5 10 00", "fsflagsi a0, 1"),
    ("73 d0 10 00", "fsflagsi 1"),
    ("73 25 00 c0", "rdcycle a0"),
    ("73 25 10 c0", "rdtime a0"),
    ("73 25 20 c0", "rdinstret a0"),
    ("73 10 00 c0", "unimp"),
    ("73 a5 45 f1", "csrrs a0, mhartid, a1"),
    ("73 25 00 7c", "csrr a0, 1984"),
    ("53 85 b5 20", "fmv.s fa0, fa1"),
    ("53 95 b5 20", "fneg.s fa0, fa1"),
    ("53 a5 b5 20", "fabs.s fa0, fa1"),
    ("53 85 b5 22", "fmv.d fa0, fa1"),
    ("53 95 b5 22", "fneg.d fa0, fa1"),
    ("53 a5 b5 22", "fabs.d fa0, fa1"),
    ("0f 00 f0 0f", "fence"),
    ("0f 00 30 03", "fence rw, rw"),
    ("0f 00 00 01", "fence w, unknown"),
    ("0f 00 50 0a", "fence ir, ow"),
    ("2f b5 05 16", "lr.d.aqrl a0, (a1)"),
    ("2f a5 c5 1a", "sc.w.rl a0, a2, (a1)"),
    ("2f b5 c5 00", "amoadd.d a0, a2, (a1)"),
    ("53 85 c5 02", "fadd.d fa0, fa1, fa2, rne"),
    ("53 a5 c5 02", "fadd.d fa0, fa1, fa2, rdn"),
    ("53 b5 c5 02", "fadd.d fa0, fa1, fa2, rup"),
    ("53 c5 c5 02", "fadd.d fa0, fa1, fa2, rmm"),
    ("53 f5 c5 02", "fadd.d fa0, fa1, fa2"),
    ("53 95 25 c2", "fcvt.l.d a0, fa1, rtz"),
    ("53 85 05 d2", "fcvt.d.w fa0, a1"),
    ("c3 70 31 fa", "fmadd.d ft1, ft2, ft3, ft11"),
    ("81 10", "c.addi ra, -0x20"),
    ("85 70", "c.lui ra, 0xfffe1"),
    ("01 71", "c.addi16sp sp, -0x200"),
    ("fd bf", "c.j -2"),
    ("01 b0", "c.j -0x800"),
    ("01 d0", "c.beqz s0, -0x100"),
    ("e0 1f", "c.addi4spn s0, sp, 0x3fc"),
    ("86 ff", "c.sdsp ra, 0x1f8(sp)"),
    ("fe 50", "c.lwsp ra, 0xfc(sp)"),
    ("fd 50", "c.li ra, -1"),
    ("01 98", "c.andi s0, -0x20"),
    ("7d 94", "c.srai s0, 0x3f"),
]

ALL_CASES = CASES_32 + CASES_16 + CASES_EDGES
ZB = frozenset({"Zba", "Zbb", "Zbc", "Zbs"})


def _word(hexbytes: str) -> tuple[int, int]:
    data = bytes.fromhex(hexbytes)
    return int.from_bytes(data, "little"), len(data)


# ---------------------------------------------------------------------------
# (a) (bytes, assembly) tables
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("hexbytes", "text"), ALL_CASES, ids=[t for _, t in ALL_CASES])
def test_case_decodes_and_prints_as_capstone_does(hexbytes: str, text: str, rvspec: Any) -> None:
    word, size = _word(hexbytes)
    insn = decode_bytes(bytes.fromhex(hexbytes))
    assert insn is not None and insn.size == size and insn.raw == word
    assert disassemble(insn, 0x1000) == text
    if insn.ext in ZB:
        assert rvspec.capstone_text(word, size) is None
    else:
        assert rvspec.capstone_text(word, size) == text


@pytest.mark.parametrize(("hexbytes", "text"), CASES_32 + CASES_16, ids=[t for _, t in CASES_32 + CASES_16])
def test_case_is_named_as_written(hexbytes: str, text: str) -> None:
    insn = decode_bytes(bytes.fromhex(hexbytes))
    assert insn is not None and insn.name == _capstone_name(text)


def test_cases_cover_every_instruction() -> None:
    named = {decode_bytes(bytes.fromhex(h)).name for h, _ in CASES_32 + CASES_16}  # type: ignore[union-attr]
    patterns = {p.name for p in TABLE32.patterns + TABLE16.patterns if not p.illegal}
    assert named == patterns
    assert {p.ext for p in TABLE32.patterns + TABLE16.patterns if not p.illegal} == set(EXTENSIONS)


def test_zb_cases_assemble_with_gnu_as(rvspec: Any) -> None:
    if rvspec.GNU_AS is None:
        pytest.skip("riscv64-linux-gnu-as not found (apt-get install binutils-riscv64-linux-gnu)")
    cases = [(h, t) for h, t in CASES_32 if decode_bytes(bytes.fromhex(h)).ext in ZB]  # type: ignore[union-attr]
    assert len(cases) == 43
    assert rvspec.gnu_assemble([t for _, t in cases]) == [_word(h)[0] for h, _ in cases]


# Reserved code points (decode to None) and HINTs (decode as the instruction).
RESERVED_16 = [
    (0x0000, "all zeros: the defined illegal instruction"),
    (0x0010, "c.addi4spn with nzuimm=0"),
    (0x8000, "quadrant 0, funct3=100"),
    (0x2001, "c.addiw with rd=x0"),
    (0x6101, "c.addi16sp with nzimm=0"),
    (0x6081, "c.lui with nzimm=0"),
    (0x9c41, "c.subw/c.addw row, funct2=10"),
    (0x9c61, "c.subw/c.addw row, funct2=11"),
    (0x4002, "c.lwsp with rd=x0"),
    (0x6002, "c.ldsp with rd=x0"),
    (0x8002, "c.jr with rs1=x0"),
]
RESERVED_32 = [
    (0x00315053, "fadd.s with rm=101"),
    (0x00316053, "fadd.s with rm=110"),
    (0x5800D053, "fsqrt.s with rm=101"),
    (0xF0F0000F, "misc-mem funct3=000 row is fence; fence with fm=1111 still decodes"),
    (0x00000000, "all zeros"),
    (0xFFFFFFFF, "all ones"),
    (0x0000003F, "a 48-bit instruction's first bits"),
    (0x30200073, "mret: privileged, not in these tables"),
]
HINTS_16 = [
    (0x4001, "c.li", {"rd": 0, "rs1": 0, "imm": 0}),
    (0x6005, "c.lui", {"rd": 0, "imm": 1 << 12}),
    (0x0006, "c.slli", {"rd": 0, "rs1": 0, "shamt": 1}),
    (0x800A, "c.mv", {"rd": 0, "rs1": 0, "rs2": 2}),
    (0x900A, "c.add", {"rd": 0, "rs1": 0, "rs2": 2}),
    (0x1005, "c.nop", {"rd": 0, "rs1": 0, "imm": -31}),
    (0x0081, "c.addi", {"rd": 1, "rs1": 1, "imm": 0}),
    (0x8001, "c.srli", {"rd": 8, "rs1": 8, "shamt": 0}),
]


@pytest.mark.parametrize(("word", "why"), RESERVED_16 + RESERVED_32)
def test_reserved_encodings_are_illegal(word: int, why: str) -> None:
    insn = decode(word)
    if word == 0xF0F0000F:  # reserved fm: treated as a normal fence, as the spec says
        assert insn is not None and insn.name == "fence" and insn.args["fm"] == 0xF
    else:
        assert insn is None, why


@pytest.mark.parametrize(("word", "name", "args"), HINTS_16)
def test_hints_decode_as_their_instruction(word: int, name: str, args: dict[str, int]) -> None:
    insn = decode(word)
    assert insn is not None and insn.name == name and dict(insn.args) == args


# ---------------------------------------------------------------------------
# (b) random words against capstone
# ---------------------------------------------------------------------------

CAPSTONE_ALIASES = {
    "nop": "addi", "mv": "addi", "not": "xori", "seqz": "sltiu", "sext.w": "addiw",
    "neg": "sub", "negw": "subw", "snez": "sltu", "sltz": "slt", "sgtz": "slt",
    "beqz": "beq", "bnez": "bne", "blez": "bge", "bgez": "bge", "bltz": "blt", "bgtz": "blt",
    "j": "jal", "jr": "jalr", "ret": "jalr",
    "csrr": "csrrs", "csrs": "csrrs", "csrw": "csrrw", "csrc": "csrrc",
    "csrwi": "csrrwi", "csrsi": "csrrsi", "csrci": "csrrci",
    "rdcycle": "csrrs", "rdtime": "csrrs", "rdinstret": "csrrs", "unimp": "csrrw",
    "frcsr": "csrrs", "frrm": "csrrs", "frflags": "csrrs",
    "fscsr": "csrrw", "fsrm": "csrrw", "fsflags": "csrrw", "fsrmi": "csrrwi", "fsflagsi": "csrrwi",
    "fmv.s": "fsgnj.s", "fneg.s": "fsgnjn.s", "fabs.s": "fsgnjx.s",
    "fmv.d": "fsgnj.d", "fneg.d": "fsgnjn.d", "fabs.d": "fsgnjx.d",
}  # fmt: skip
"""capstone's alias mnemonic -> the instruction it stands for (our name)."""

PRIVILEGED = frozenset({"uret", "sret", "mret", "wfi", "sfence.vma"})


def _capstone_name(text: str) -> str:
    mnemonic = text.split()[0]
    for suffix in (".aqrl", ".aq", ".rl"):
        if mnemonic.startswith(("lr.", "sc.", "amo")) and mnemonic.endswith(suffix):
            mnemonic = mnemonic[: -len(suffix)]
            break
    return CAPSTONE_ALIASES.get(mnemonic, mnemonic)


def _why_capstone_lacks(insn: Insn) -> str | None:
    """The documented reason capstone 5 does not decode a word we decode, if there is one."""
    w, a = insn.raw, insn.args
    if insn.ext in ZB:
        return "Zb* extension"
    if insn.name in ("fence", "fence.tso"):
        ignored = (w >> 7) & 31 or (w >> 15) & 31
        if ignored or (a["fm"] != 0 and w != 0x8330000F):
            return "fence: ignored fields or reserved fm"
    if insn.name == "fence.i" and w != 0x0000100F:
        return "fence.i: ignored fields"
    if insn.name in ("fcvt.d.s", "fcvt.d.w", "fcvt.d.wu") and a["rm"] != 0:
        return "exact fcvt with rm != 0"
    if insn.name in ("c.li", "c.lui", "c.slli", "c.mv", "c.add") and a["rd"] == 0:
        return "HINT with rd=x0"
    if insn.name == "c.nop" and a["imm"] < 0:
        return "c.nop HINT with imm[5]=1"
    return None


def _why_we_lack(word: int, size: int, text: str) -> str | None:
    """The documented reason we do not decode a word capstone decodes, if there is one."""
    if size == 2 and word == 0:
        return "0x0000 is illegal"
    if size == 2 and word & 0xF07F == 0x6001 and (word >> 7) & 31 not in (0, 2):
        return "c.lui with nzimm=0 is reserved"
    if size == 4 and text.split()[0] in PRIVILEGED:
        return "privileged"
    return None


def check_word(word: int, size: int, rvspec: Any) -> str | None:
    """Compare one word with capstone; the documented difference, or None if we agree."""
    text = rvspec.capstone_text(word, size)
    insn = decode(word)
    if insn is not None:
        assert insn.size == size
    if text is None and insn is None:
        return None
    if text is None:
        assert insn is not None
        why = _why_capstone_lacks(insn)
        assert why, f"{word:#x}: we decode {insn.name}, capstone does not"
        return why
    if insn is None:
        why = _why_we_lack(word, size, text)
        assert why, f"{word:#x}: capstone decodes {text!r}, we do not"
        return why
    assert insn.name == _capstone_name(text), f"{word:#x}: {insn.name} vs {text!r}"
    return None


MAJOR_OPCODES = [op << 2 | 3 for op in range(32) if op & 7 != 7]


def _near_misses() -> st.SearchStrategy[int]:
    """Valid encodings with one bit flipped: the words that find patterns too wide."""
    pats = [p for p in TABLE32.patterns if not p.illegal]
    return st.tuples(st.sampled_from(pats), st.integers(0, 2**32 - 1), st.integers(0, 31)).map(
        lambda t: (t[0].value | (t[1] & ~t[0].mask)) ^ (1 << t[2])
    )


WORDS_32 = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda w: w | 3),
    st.tuples(st.sampled_from(MAJOR_OPCODES), st.integers(0, 2**25 - 1)).map(
        lambda t: t[1] << 7 | t[0]
    ),
    _near_misses(),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(WORDS_32, min_size=1, max_size=20))
def test_random_32bit_words_agree_with_capstone(words: list[int], rvspec: Any) -> None:
    for word in words:
        if word & 3 == 3:
            check_word(word, 4, rvspec)


@settings(max_examples=500, deadline=None)
@given(word=st.integers(0, 0xFFFF).filter(lambda w: w & 3 != 3))
def test_random_16bit_words_agree_with_capstone(word: int, rvspec: Any) -> None:
    check_word(word, 2, rvspec)


def test_every_16bit_word_agrees_with_capstone(rvspec: Any) -> None:
    differences: dict[str, int] = {}
    for word in range(1 << 16):
        if word & 3 != 3:
            why = check_word(word, 2, rvspec)
            if why:
                differences[why] = differences.get(why, 0) + 1
    # rd=x0: c.li 64, c.lui 63 (nzimm != 0), c.slli 64, c.mv 31, c.add 31; c.nop imm<0: 32;
    # c.lui nzimm=0 with rd not x0/x2: 30.
    assert differences == {
        "HINT with rd=x0": 64 + 63 + 64 + 31 + 31,
        "c.nop HINT with imm[5]=1": 32,
        "c.lui with nzimm=0 is reserved": 30,
        "0x0000 is illegal": 1,
    }


@pytest.mark.parametrize("word", [0x00200073, 0x10200073, 0x30200073, 0x10500073, 0x12B50073])
def test_privileged_instructions_are_left_to_capstone(word: int, rvspec: Any) -> None:
    assert decode(word) is None
    assert _capstone_name(rvspec.capstone_text(word, 4)) in PRIVILEGED


# ---------------------------------------------------------------------------
# (c) operands
# ---------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_spec_encodings_decode_to_their_operands_32(spec32_name: str, rvspec: Any, data: st.DataObject) -> None:
    spec = rvspec.SPEC32[spec32_name]
    args = data.draw(spec.args())
    insn = decode(spec.encode(args))
    assert insn is not None
    assert (insn.name, insn.op, insn.ext, insn.size) == (spec.name, spec.op, spec.ext, 4)
    assert dict(insn.args) == spec.expected(args)


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_spec_encodings_decode_to_their_operands_16(spec16_name: str, rvspec: Any, data: st.DataObject) -> None:
    spec = rvspec.SPEC16[spec16_name]
    args = data.draw(spec.args())
    word = spec.encode(args)
    assert word < 1 << 16 and word & 3 != 3
    insn = decode(word)
    assert insn is not None
    assert (insn.name, insn.op, insn.ext, insn.size) == (spec.name, spec.op, "C", 2)
    assert dict(insn.args) == spec.expected(args)


def test_compressed_instructions_decode_as_their_expansion(rvspec: Any) -> None:
    """Every legal 16-bit word has the operation and arguments of its 32-bit expansion."""
    count = 0
    for word in range(1 << 16):
        insn = decode(word) if word & 3 != 3 else None
        if insn is None:
            continue
        count += 1
        wide = decode(rvspec.SPEC32[insn.op].encode(dict(insn.args)))
        assert wide is not None and wide.name == insn.op, hex(word)
        assert dict(wide.args) == dict(insn.args), hex(word)
        assert OP_EXT[insn.op] == wide.ext
    assert count > 40000


def _bits(w: int, hi: int, lo: int) -> int:
    return (w >> lo) & ((1 << (hi - lo + 1)) - 1)


def _sext(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def _expected_imm(w: int, name: str) -> int:
    opc = w & 0x7F
    if opc in (0b0110111, 0b0010111):  # U
        return _sext(_bits(w, 31, 12), 20) << 12
    if opc == 0b1101111:  # J
        return _sext(_bits(w, 31, 31) << 20 | _bits(w, 19, 12) << 12 | _bits(w, 20, 20) << 11
                     | _bits(w, 30, 21) << 1, 21)
    if opc == 0b1100011:  # B
        return _sext(_bits(w, 31, 31) << 12 | _bits(w, 7, 7) << 11 | _bits(w, 30, 25) << 5
                     | _bits(w, 11, 8) << 1, 13)
    if opc in (0b0100011, 0b0100111):  # S
        return _sext(_bits(w, 31, 25) << 5 | _bits(w, 11, 7), 12)
    if opc == 0b1110011:  # CSR immediate
        return _bits(w, 19, 15)
    return _sext(_bits(w, 31, 20), 12)  # I


def _expected_field(w: int, key: str, name: str) -> int:
    positional = {"rd": (11, 7), "rs1": (19, 15), "rs2": (24, 20), "rs3": (31, 27),
                  "rm": (14, 12), "csr": (31, 20), "aq": (26, 26), "rl": (25, 25),
                  "fm": (31, 28), "pred": (27, 24), "succ": (23, 20)}  # fmt: skip
    if key in positional:
        return _bits(w, *positional[key])
    if key == "shamt":
        return _bits(w, 25, 20) if w & 0x7F == 0b0010011 or name == "slli.uw" else _bits(w, 24, 20)
    assert key == "imm", key
    return _expected_imm(w, name)


@settings(max_examples=300, deadline=None)
@given(st.lists(_near_misses(), min_size=1, max_size=30))
def test_fields_of_random_words_match_bit_arithmetic(words: list[int]) -> None:
    for word in words:
        insn = decode(word)
        if word & 3 != 3 or insn is None or insn.name == "fence.tso":
            continue
        for key, value in insn.args.items():
            assert value == _expected_field(word, key, insn.name), (hex(word), insn.name, key)


# ---------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------


def test_decode_bytes_picks_the_width_and_offset() -> None:
    data = bytes.fromhex("0145 93 00 a0 00 8280")
    first = decode_bytes(data)
    assert first is not None and first.name == "c.li" and first.size == 2
    second = decode_bytes(data, 2)
    assert second is not None and second.name == "addi" and second.size == 4
    third = decode_bytes(data, 6)
    assert third is not None and third.name == "c.jr"
    assert decode_bytes(data, 8) is None  # nothing left
    assert decode_bytes(data[:4], 2) is None  # a 32-bit instruction cut short
    assert decode_bytes(memoryview(data), 2) == second


def test_decode_ignores_bits_beyond_the_instruction() -> None:
    assert decode(0xDEAD_4501) == decode(0x4501)
    assert decode(0xFF_00A00093) == decode(0x00A00093)
    assert insn_size(0x4501) == 2 and insn_size(0x0093) == 4


def test_insn_is_frozen_and_indexable() -> None:
    insn = decode(0x00A00093)
    assert insn is not None
    assert insn["rd"] == 1 and insn.get("rs3") == 0 and insn.get("imm") == 10
    with pytest.raises(AttributeError):
        insn.name = "x"  # type: ignore[misc]


def test_op_ext_names_the_extension_of_every_operation() -> None:
    assert OP_EXT["addi"] == "I" and OP_EXT["fld"] == "D" and OP_EXT["fence"] == "I"
    for p in TABLE16.patterns:
        if not p.illegal:
            assert p.extra["op"] in OP_EXT, p.name


def test_module_docstring_examples_run() -> None:
    import doctest

    import vm_frontend_riscv.decoder as module

    assert doctest.testmod(module).failed == 0
