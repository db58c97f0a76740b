"""RISC-V disassembly text in capstone 5's dialect.

`disassemble(insn_or_word, pc)` returns, for every encoding that capstone 5
(``CS_MODE_RISCV64 | CS_MODE_RISCVC``) decodes, exactly capstone's
``f"{mnemonic} {op_str}".strip()``; the tests check this byte for byte. That
dialect is LLVM's: ABI register names, immediates in decimal from -9 to 9 and
in hex (``0xa``, ``-0x800``) beyond, ``lui``/``auipc`` immediates as the 20-bit
field, branch and jump targets as offsets from the instruction (``pc`` does not
change the text unless ``absolute=True``), unnamed CSRs in decimal, the
rounding mode printed unless it is ``dyn``, and LLVM's aliases (``nop``,
``mv``, ``not``, ``neg``, ``sext.w``, ``seqz``, ``snez``, ``sltz``,
``sgtz``, ``beqz``..``bgtz``, ``j``, ``jal off``, ``jr``, ``jalr rs``, ``ret``,
``csrr``/``csrw``/..., ``frcsr``/``fsrm``/..., ``rdcycle``/..., ``unimp``,
``fmv.s``/``fneg.s``/``fabs.s``, ``fence`` with its sets or ``unknown``).

Encodings capstone 5 does not decode get clean standard assembly in the same
style, and are not compared: all of Zba, Zbb, Zbc and Zbs (``zext.w`` is
printed for ``add.uw rd, rs, zero``), FENCE with non-zero rd/rs1 or a
reserved fm, FENCE.I with non-zero fields, ``fcvt.d.s``/``fcvt.d.w``/
``fcvt.d.wu`` with a non-zero rm (printed as a fourth operand), and the
compressed HINTs capstone rejects (``c.li``, ``c.slli``, ``c.mv``, ``c.add``,
``c.lui`` with rd=x0, ``c.nop`` with imm[5]=1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from vm_frontend_riscv.decoder import Insn, decode
from vm_frontend_riscv.regs import FREG_NAMES, XREG_NAMES, csr_name

__all__ = ["ROUNDING_MODES", "disassemble", "format_imm"]

ROUNDING_MODES = ("rne", "rtz", "rdn", "rup", "rmm", "rm5", "rm6", "dyn")
"""Names of the rm field's values (5 and 6 are reserved)."""


def format_imm(value: int) -> str:
    """An immediate as capstone prints it: decimal within -9..9, else (signed) hex."""
    if value > 9:
        return f"{value:#x}"
    if value < -9:
        return f"-{-value:#x}"
    return str(value)


# Operand codes in a template (comma-separated):
#   D S T   x registers rd, rs1, rs2        d s t r   f registers rd, rs1, rs2, rs3
#   i       imm                            u         imm >> 12 as a 20-bit field
#   m       imm(rs1) memory operand        a         (rs1), an atomic's address
#   b       branch/jump target             h         shamt
#   c       csr                            R         rounding mode (omitted if dyn)
#   F       fence sets pred, succ          Z         rounding mode (omitted if 0)

_R = "D,S,T"
_I = "D,S,i"
_FR = "d,s,t,R"
_TEMPLATES: dict[str, str] = {
    "lui": "D,u", "auipc": "D,u", "jal": "D,b", "jalr": "D,S,i",
    **dict.fromkeys(["beq", "bne", "blt", "bge", "bltu", "bgeu"], "S,T,b"),
    **dict.fromkeys(["lb", "lh", "lw", "ld", "lbu", "lhu", "lwu"], "D,m"),
    **dict.fromkeys(["sb", "sh", "sw", "sd"], "T,m"),
    **dict.fromkeys(["addi", "slti", "sltiu", "xori", "ori", "andi", "addiw"], _I),
    **dict.fromkeys(["slli", "srli", "srai", "slliw", "srliw", "sraiw"], "D,S,h"),
    **dict.fromkeys(
        ["add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and",
         "addw", "subw", "sllw", "srlw", "sraw",
         "mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu",
         "mulw", "divw", "divuw", "remw", "remuw"], _R),
    "fence": "F", "fence.tso": "", "fence.i": "", "ecall": "", "ebreak": "",
    **dict.fromkeys(["csrrw", "csrrs", "csrrc"], "D,c,S"),
    **dict.fromkeys(["csrrwi", "csrrsi", "csrrci"], "D,c,i"),
    **dict.fromkeys(["lr.w", "lr.d"], "D,a"),
    **dict.fromkeys(
        [f"{op}.{w}" for w in "wd" for op in
         ("sc", "amoswap", "amoadd", "amoxor", "amoand", "amoor",
          "amomin", "amomax", "amominu", "amomaxu")], "D,T,a"),
    "flw": "d,m", "fld": "d,m", "fsw": "t,m", "fsd": "t,m",
    **dict.fromkeys([f"{op}.{f}" for f in "sd" for op in ("fmadd", "fmsub", "fnmsub", "fnmadd")],
                    "d,s,t,r,R"),
    **dict.fromkeys([f"{op}.{f}" for f in "sd" for op in ("fadd", "fsub", "fmul", "fdiv")], _FR),
    **dict.fromkeys(["fsqrt.s", "fsqrt.d", "fcvt.s.d"], "d,s,R"),
    "fcvt.d.s": "d,s,Z",
    **dict.fromkeys([f"{op}.{f}" for f in "sd" for op in ("fsgnj", "fsgnjn", "fsgnjx", "fmin", "fmax")],
                    "d,s,t"),
    **dict.fromkeys([f"{op}.{f}" for f in "sd" for op in ("feq", "flt", "fle")], "D,s,t"),
    **dict.fromkeys([f"fcvt.{i}.{f}" for f in "sd" for i in ("w", "wu", "l", "lu")], "D,s,R"),
    **dict.fromkeys(["fcvt.s.w", "fcvt.s.wu", "fcvt.s.l", "fcvt.s.lu", "fcvt.d.l", "fcvt.d.lu"],
                    "d,S,R"),
    **dict.fromkeys(["fcvt.d.w", "fcvt.d.wu"], "d,S,Z"),
    **dict.fromkeys(["fmv.x.w", "fmv.x.d", "fclass.s", "fclass.d"], "D,s"),
    **dict.fromkeys(["fmv.w.x", "fmv.d.x"], "d,S"),
    # Zba Zbb Zbc Zbs (capstone 5 does not know them: standard syntax).
    **dict.fromkeys(
        ["add.uw", "sh1add", "sh2add", "sh3add", "sh1add.uw", "sh2add.uw", "sh3add.uw",
         "andn", "orn", "xnor", "max", "maxu", "min", "minu", "rol", "ror", "rolw", "rorw",
         "clmul", "clmulh", "clmulr", "bclr", "bext", "binv", "bset"], _R),
    **dict.fromkeys(["slli.uw", "rori", "roriw", "bclri", "bexti", "binvi", "bseti"], "D,S,h"),
    **dict.fromkeys(
        ["clz", "ctz", "cpop", "clzw", "ctzw", "cpopw", "sext.b", "sext.h", "zext.h",
         "orc.b", "rev8"], "D,S"),
    # RV64C: operands of the expanded operation, as capstone lists them.
    "c.addi4spn": "D,S,i", "c.fld": "d,m", "c.lw": "D,m", "c.ld": "D,m",
    "c.fsd": "t,m", "c.sw": "T,m", "c.sd": "T,m",
    "c.nop": "", "c.addi": "D,i", "c.addiw": "D,i", "c.li": "D,i", "c.addi16sp": "S,i",
    "c.lui": "D,u", "c.srli": "D,h", "c.srai": "D,h", "c.andi": "D,i",
    **dict.fromkeys(["c.sub", "c.xor", "c.or", "c.and", "c.subw", "c.addw"], "D,T"),
    "c.j": "b", "c.beqz": "S,b", "c.bnez": "S,b",
    "c.slli": "D,h", "c.fldsp": "d,m", "c.lwsp": "D,m", "c.ldsp": "D,m",
    "c.jr": "S", "c.mv": "D,T", "c.ebreak": "", "c.jalr": "S", "c.add": "D,T",
    "c.fsdsp": "t,m", "c.swsp": "T,m", "c.sdsp": "T,m",
}  # fmt: skip

# Aliases, tried in order: (predicate on the arguments, mnemonic, template).
_Pred = Callable[[Mapping[str, int]], bool]
_FSGNJ_ALIASES = {"fsgnj": "fmv", "fsgnjn": "fneg", "fsgnjx": "fabs"}
_CSR_ALIASES = {0x001: "flags", 0x002: "rm", 0x003: "csr"}


def _aliases() -> dict[str, list[tuple[_Pred, str, str]]]:
    a: dict[str, list[tuple[_Pred, str, str]]] = {
        "addi": [
            (lambda f: f["rd"] == 0 and f["rs1"] == 0 and f["imm"] == 0, "nop", ""),
            (lambda f: f["imm"] == 0, "mv", "D,S"),
        ],
        "addiw": [(lambda f: f["imm"] == 0, "sext.w", "D,S")],
        "xori": [(lambda f: f["imm"] == -1, "not", "D,S")],
        "sltiu": [(lambda f: f["imm"] == 1, "seqz", "D,S")],
        "sub": [(lambda f: f["rs1"] == 0, "neg", "D,T")],
        "subw": [(lambda f: f["rs1"] == 0, "negw", "D,T")],
        "sltu": [(lambda f: f["rs1"] == 0, "snez", "D,T")],
        "slt": [
            (lambda f: f["rs2"] == 0, "sltz", "D,S"),
            (lambda f: f["rs1"] == 0, "sgtz", "D,T"),
        ],
        "beq": [(lambda f: f["rs2"] == 0, "beqz", "S,b")],
        "bne": [(lambda f: f["rs2"] == 0, "bnez", "S,b")],
        "bge": [
            (lambda f: f["rs1"] == 0, "blez", "T,b"),
            (lambda f: f["rs2"] == 0, "bgez", "S,b"),
        ],
        "blt": [
            (lambda f: f["rs2"] == 0, "bltz", "S,b"),
            (lambda f: f["rs1"] == 0, "bgtz", "T,b"),
        ],
        "jal": [
            (lambda f: f["rd"] == 0, "j", "b"),
            (lambda f: f["rd"] == 1, "jal", "b"),
        ],
        "jalr": [
            (lambda f: f["rd"] == 0 and f["rs1"] == 1 and f["imm"] == 0, "ret", ""),
            (lambda f: f["rd"] == 0 and f["imm"] == 0, "jr", "S"),
            (lambda f: f["rd"] == 1 and f["imm"] == 0, "jalr", "S"),
        ],
        "fence": [
            (lambda f: f["pred"] == 15 and f["succ"] == 15, "fence", ""),
        ],
        "csrrs": [
            (lambda f: f["rs1"] == 0 and f["csr"] == 0xC00, "rdcycle", "D"),
            (lambda f: f["rs1"] == 0 and f["csr"] == 0xC01, "rdtime", "D"),
            (lambda f: f["rs1"] == 0 and f["csr"] == 0xC02, "rdinstret", "D"),
        ],
        "csrrw": [
            (lambda f: f["rd"] == 0 and f["rs1"] == 0 and f["csr"] == 0xC00, "unimp", ""),
        ],
        "csrrwi": [],
    }
    for num, suffix in _CSR_ALIASES.items():
        a["csrrs"].append(
            (lambda f, n=num: f["rs1"] == 0 and f["csr"] == n, f"fr{suffix}", "D"))
        a["csrrw"] += [
            (lambda f, n=num: f["rd"] == 0 and f["csr"] == n, f"fs{suffix}", "S"),
            (lambda f, n=num: f["csr"] == n, f"fs{suffix}", "D,S"),
        ]
        if suffix != "csr":
            a["csrrwi"] += [
                (lambda f, n=num: f["rd"] == 0 and f["csr"] == n, f"fs{suffix}i", "i"),
                (lambda f, n=num: f["csr"] == n, f"fs{suffix}i", "D,i"),
            ]
    a["csrrs"] += [
        (lambda f: f["rs1"] == 0, "csrr", "D,c"),
        (lambda f: f["rd"] == 0, "csrs", "c,S"),
    ]
    a["csrrw"].append((lambda f: f["rd"] == 0, "csrw", "c,S"))
    a["csrrc"] = [(lambda f: f["rd"] == 0, "csrc", "c,S")]
    a["csrrwi"].append((lambda f: f["rd"] == 0, "csrwi", "c,i"))
    a["csrrsi"] = [(lambda f: f["rd"] == 0, "csrsi", "c,i")]
    a["csrrci"] = [(lambda f: f["rd"] == 0, "csrci", "c,i")]
    for name, alias in _FSGNJ_ALIASES.items():
        for fmt in "sd":
            a[f"{name}.{fmt}"] = [(lambda f: f["rs1"] == f["rs2"], f"{alias}.{fmt}", "d,s")]
    a["add.uw"] = [(lambda f: f["rs2"] == 0, "zext.w", "D,S")]
    return a


_ALIASES = _aliases()


def _fence_set(bits: int) -> str:
    if bits == 0:
        return "unknown"
    return "".join(ch for ch, bit in zip("iorw", (8, 4, 2, 1), strict=True) if bits & bit)


def _operand(code: str, f: Mapping[str, int], pc: int, absolute: bool) -> str | None:
    if code == "D":
        return XREG_NAMES[f["rd"]]
    if code == "S":
        return XREG_NAMES[f["rs1"]]
    if code == "T":
        return XREG_NAMES[f["rs2"]]
    if code == "d":
        return FREG_NAMES[f["rd"]]
    if code == "s":
        return FREG_NAMES[f["rs1"]]
    if code == "t":
        return FREG_NAMES[f["rs2"]]
    if code == "r":
        return FREG_NAMES[f["rs3"]]
    if code == "i":
        return format_imm(f["imm"])
    if code == "h":
        return format_imm(f["shamt"])
    if code == "u":
        return format_imm((f["imm"] >> 12) & 0xFFFFF)
    if code == "m":
        return f"{format_imm(f['imm'])}({XREG_NAMES[f['rs1']]})"
    if code == "a":
        return f"({XREG_NAMES[f['rs1']]})"
    if code == "b":
        return f"{(pc + f['imm']) & 0xFFFFFFFFFFFFFFFF:#x}" if absolute else format_imm(f["imm"])
    if code == "c":
        return csr_name(f["csr"])
    if code == "R":
        return None if f["rm"] == 7 else ROUNDING_MODES[f["rm"]]
    if code == "Z":
        return None if f["rm"] == 0 else ROUNDING_MODES[f["rm"]]
    if code == "F":
        return f"{_fence_set(f['pred'])}, {_fence_set(f['succ'])}"
    raise AssertionError(f"unknown operand code {code!r}")


def disassemble(insn_or_word: Insn | int, pc: int = 0, *, absolute: bool = False) -> str:
    """The instruction's assembly text (capstone 5's, where capstone decodes it).

    `insn_or_word` is an `Insn` or an instruction word (as `decode` takes it); an
    illegal word gives ``"unknown"``. Branch and jump targets are offsets from the
    instruction, as capstone prints them, unless `absolute` is set: then they are
    the address ``pc + offset`` in hex.
    """
    insn = decode(insn_or_word) if isinstance(insn_or_word, int) else insn_or_word
    if insn is None:
        return "unknown"
    f = insn.args
    mnemonic, template = insn.name, _TEMPLATES[insn.name]
    for pred, alias, alias_template in _ALIASES.get(insn.name, ()):
        if pred(f):
            mnemonic, template = alias, alias_template
            break
    if f.get("aq") or f.get("rl"):
        mnemonic += "." + "aq" * f["aq"] + "rl" * f["rl"]
    operands = [_operand(code, f, pc, absolute) for code in template.split(",") if code]
    text = ", ".join(op for op in operands if op is not None)
    return f"{mnemonic} {text}" if text else mnemonic
