"""The op table: every vm-ir operation declared once, as data.

The builder, printer, parser, verifier, evaluator, passes and the generated reference in
``docs/ir.md`` all read this table. To add an op: add an ``OpDef`` here, give it semantics in
``semantics.py`` (pure ops) or ``evaluator.py`` (effects), add filetests, and regenerate the
docs with ``uv run python tools/gen_ir_docs.py``.

An op's operands are a sequence of ``Operand`` specs. Value operands carry a type constraint:

- ``"T"``: the op's type variable. For ops written with a type suffix (``iconst.i64``) ``T`` is that
  type; otherwise ``T`` is the type of the first ``"T"`` operand.
- ``"int"``, ``"float"``, ``"any"``: any type of that class (``"any"`` excludes nothing).
- ``"i1"``, ``"i64"``: exactly that type. ``"addr"``: i32 or i64 (a guest address).

Immediates are written in the text form where their kind says (see ``OperandKind``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class OperandKind(enum.Enum):
    VALUE = "value"  # an SSA value
    VALUES = "values"  # zero or more SSA values (ret)
    INT = "int"  # integer immediate (iconst)
    FLOAT = "float"  # float immediate, stored as its bit pattern (fconst)
    ICMP_COND = "icmp_cond"
    FCMP_COND = "fcmp_cond"
    RMW_OP = "rmw_op"
    TRAP_KIND = "trap_kind"
    FIELD = "field"  # a state field: ``pc`` or ``x[3]``
    HELPER = "helper"  # ``@name(v1, v2)``: a helper and its arguments
    MEMFLAGS = "memflags"  # trailing ``size N``, ``sext``, ``align N``, ordering
    ORDER = "order"  # trailing atomic ordering
    TARGET = "target"  # ``block3(v1, v2)``: a branch target and its arguments


#: immediates written before the values, separated by a space
PREFIX_KINDS = frozenset(
    {OperandKind.INT, OperandKind.FLOAT, OperandKind.ICMP_COND, OperandKind.FCMP_COND,
     OperandKind.RMW_OP, OperandKind.TRAP_KIND}
)
#: immediates written after the values, separated by a space
SUFFIX_KINDS = frozenset({OperandKind.MEMFLAGS, OperandKind.ORDER})

ICMP_CONDS = ("eq", "ne", "ult", "ule", "ugt", "uge", "slt", "sle", "sgt", "sge")
FCMP_CONDS = (
    "oeq", "one", "olt", "ole", "ogt", "oge", "ord",
    "ueq", "une", "ult", "ule", "ugt", "uge", "uno",
)
RMW_OPS = ("xchg", "add", "sub", "and", "or", "xor", "umin", "umax", "smin", "smax")
ORDERS = ("relaxed", "acquire", "release", "acq_rel", "seq_cst")
#: Trap kinds; the same strings as vm_core.TrapKind.
TRAP_KINDS = (
    "unreachable", "illegal", "breakpoint", "syscall", "mem_fault", "misaligned",
    "div_by_zero", "halt", "user",
)


@dataclass(frozen=True, slots=True)
class Operand:
    kind: OperandKind
    name: str
    constraint: str = ""  # for VALUE / VALUES: "T", "int", "float", "any", "i1", "i64", "addr"


class Effect(enum.Flag):
    NONE = 0
    READS_STATE = enum.auto()
    WRITES_STATE = enum.auto()
    READS_MEMORY = enum.auto()
    WRITES_MEMORY = enum.auto()
    MAY_TRAP = enum.auto()  # may end execution with a trap (memory faults, misalignment)
    CALL = enum.auto()  # calls a helper; effects are the helper's
    TERMINATOR = enum.auto()


@dataclass(frozen=True, slots=True)
class OpDef:
    name: str
    category: str
    doc: str
    operands: tuple[Operand, ...]
    #: "T", "i1", "field" (the field's type), "helper" (the helper's result) or "" (none)
    result: str
    #: the class of types the type variable T may take: "int", "float", "any" or "int_no_i1"
    typevar: str = "any"
    #: written with a type suffix: ``iconst.i64``
    typed: bool = False
    effects: Effect = Effect.NONE
    #: what is undefined behaviour (the program is wrong) and what is unspecified (any value of
    #: the right type may result), for docs/ir.md
    undefined: str = "nothing"
    unspecified: str = "nothing"
    #: an extra verifier rule: "wider", "narrower", "same_width", "float_to_int", "int_to_float",
    #: "f32_to_f64", "f64_to_f32"
    rule: str = ""
    #: ends a block (``effects`` has ``TERMINATOR``); set from ``effects``
    is_terminator: bool = field(init=False)
    #: has no effect but its result: removable when unused, foldable on constants
    is_pure: bool = field(init=False)
    #: produces a value (``result`` is not empty)
    has_result: bool = field(init=False)
    #: the constraints of the fixed value operands, in order (VALUES and HELPER excluded)
    value_constraints: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        # plain attributes, not properties: builders and evaluators ask on every instruction,
        # and an enum.Flag test costs a Flag construction
        object.__setattr__(self, "is_terminator", bool(self.effects & Effect.TERMINATOR))
        object.__setattr__(self, "is_pure", self.effects == Effect.NONE)
        object.__setattr__(self, "has_result", self.result != "")
        object.__setattr__(self, "value_constraints", tuple(
            o.constraint for o in self.operands if o.kind is OperandKind.VALUE))


def _v(name: str, constraint: str = "T") -> Operand:
    return Operand(OperandKind.VALUE, name, constraint)


_OPS: list[OpDef] = []


def _op(name: str, category: str, doc: str, operands: tuple[Operand, ...] = (),
        result: str = "T", **kw: object) -> None:
    _OPS.append(OpDef(name, category, doc, operands, result, **kw))  # type: ignore[arg-type]


def _binary_int(name: str, doc: str, **kw: object) -> None:
    _op(name, "integer", doc, (_v("a"), _v("b")), typevar="int", **kw)


def _unary_int(name: str, doc: str, **kw: object) -> None:
    _op(name, "integer", doc, (_v("a"),), typevar="int", **kw)


# --- constants and moves ---------------------------------------------------------------------
_op("iconst", "constant", "An integer constant of type T (stored modulo 2^bits).",
    (Operand(OperandKind.INT, "imm"),), typevar="int", typed=True)
_op("fconst", "constant", "A float constant of type T (exact bit pattern, NaN payloads kept).",
    (Operand(OperandKind.FLOAT, "imm"),), typevar="float", typed=True)
_op("copy", "move", "The value of `a`.", (_v("a"),))
_op("select", "move", "`a` if `c` is 1, else `b`.", (_v("c", "i1"), _v("a"), _v("b")))

# --- integer arithmetic ----------------------------------------------------------------------
_binary_int("add", "Wrapping addition.")
_binary_int("sub", "Wrapping subtraction.")
_binary_int("mul", "Wrapping multiplication (low half of the product).")
_binary_int("umulh", "High half of the unsigned double-width product.")
_binary_int("smulh", "High half of the signed double-width product.")
_binary_int("udiv", "Unsigned division, rounding toward zero.",
            undefined="`b` = 0. Frontends test the divisor first.")
_binary_int("sdiv", "Signed division, rounding toward zero.",
            undefined="`b` = 0, and `a` = minimum signed value with `b` = -1 (overflow).")
_binary_int("urem", "Unsigned remainder.", undefined="`b` = 0.")
_binary_int("srem", "Signed remainder; its sign is the sign of `a`.",
            undefined="`b` = 0, and `a` = minimum signed value with `b` = -1.")
_binary_int("and", "Bitwise and.")
_binary_int("or", "Bitwise or.")
_binary_int("xor", "Bitwise exclusive or.")
_binary_int("shl", "Shift left. The amount `b` is taken modulo the bit width of T.")
_binary_int("lshr", "Logical shift right. The amount `b` is taken modulo the bit width of T.")
_binary_int("ashr", "Arithmetic shift right. The amount `b` is taken modulo the bit width of T.")
_binary_int("rotl", "Rotate left by `b` modulo the bit width of T.")
_binary_int("rotr", "Rotate right by `b` modulo the bit width of T.")
_binary_int("smin", "Signed minimum.")
_binary_int("smax", "Signed maximum.")
_binary_int("umin", "Unsigned minimum.")
_binary_int("umax", "Unsigned maximum.")
_unary_int("neg", "Two's complement negation (wrapping).")
_unary_int("not", "Bitwise complement.")
_unary_int("clz", "Number of leading zero bits; the bit width of T when `a` is 0.")
_unary_int("ctz", "Number of trailing zero bits; the bit width of T when `a` is 0.")
_unary_int("popcnt", "Number of one bits.")
_op("bswap", "integer", "Byte order reversed. T is a whole number of bytes (not i1, not i8).",
    (_v("a"),), typevar="int_multibyte")
_op("icmp", "integer", "Integer comparison: 1 if `a cond b`, else 0. `u` conditions compare "
    "unsigned, `s` conditions signed.",
    (Operand(OperandKind.ICMP_COND, "cond"), _v("a"), _v("b")), result="i1", typevar="int")

# --- conversions -----------------------------------------------------------------------------
_op("zext", "conversion", "Zero-extend `a` to the wider integer type T.",
    (_v("a", "int"),), typevar="int", typed=True, rule="wider")
_op("sext", "conversion", "Sign-extend `a` to the wider integer type T.",
    (_v("a", "int"),), typevar="int", typed=True, rule="wider")
_op("trunc", "conversion", "The low bits of `a` as the narrower integer type T.",
    (_v("a", "int"),), typevar="int", typed=True, rule="narrower")
_op("bitcast", "conversion", "The bits of `a` reinterpreted as T, which has the same width.",
    (_v("a", "any"),), typevar="any", typed=True, rule="same_width")
_op("fptosi", "conversion", "Float to signed integer T, rounding toward zero and saturating: "
    "values beyond T's range give its minimum or maximum, NaN gives 0.",
    (_v("a", "float"),), typevar="int", typed=True, rule="float_to_int")
_op("fptoui", "conversion", "Float to unsigned integer T, rounding toward zero and saturating: "
    "negative values give 0, values beyond T's range its maximum, NaN gives 0.",
    (_v("a", "float"),), typevar="int", typed=True, rule="float_to_int")
_op("sitofp", "conversion", "Signed integer to float T, rounded to nearest, ties to even.",
    (_v("a", "int"),), typevar="float", typed=True, rule="int_to_float")
_op("uitofp", "conversion", "Unsigned integer to float T, rounded to nearest, ties to even.",
    (_v("a", "int"),), typevar="float", typed=True, rule="int_to_float")
_op("fpext", "conversion", "f32 to f64 (exact).", (_v("a", "float"),), typevar="float",
    typed=True, rule="f32_to_f64", unspecified="the payload of a NaN result.")
_op("fptrunc", "conversion", "f64 to f32, rounded to nearest, ties to even.",
    (_v("a", "float"),), typevar="float", typed=True, rule="f64_to_f32",
    unspecified="the payload of a NaN result.")

# --- floating point --------------------------------------------------------------------------
_NAN = "which NaN a NaN result is (sign and payload)."


def _binary_float(name: str, doc: str) -> None:
    _op(name, "float", doc + " IEEE 754, rounded to nearest, ties to even.",
        (_v("a"), _v("b")), typevar="float", unspecified=_NAN)


_binary_float("fadd", "Addition.")
_binary_float("fsub", "Subtraction.")
_binary_float("fmul", "Multiplication.")
_binary_float("fdiv", "Division.")
_op("fsqrt", "float", "Square root, rounded to nearest, ties to even.", (_v("a"),),
    typevar="float", unspecified=_NAN)
_op("fma", "float", "Fused `a * b + c` with a single rounding to nearest, ties to even.",
    (_v("a"), _v("b"), _v("c")), typevar="float", unspecified=_NAN)
_op("fmin", "float", "IEEE 754-2019 minimumNumber: the lesser of `a` and `b`, -0 below +0; "
    "if exactly one is NaN, the other.", (_v("a"), _v("b")), typevar="float", unspecified=_NAN)
_op("fmax", "float", "IEEE 754-2019 maximumNumber: the greater of `a` and `b`, +0 above -0; "
    "if exactly one is NaN, the other.", (_v("a"), _v("b")), typevar="float", unspecified=_NAN)
_op("fneg", "float", "`a` with its sign bit flipped (also for NaN).", (_v("a"),),
    typevar="float")
_op("fabs", "float", "`a` with its sign bit cleared (also for NaN).", (_v("a"),),
    typevar="float")
_op("fcmp", "float", "Float comparison: 1 if `a cond b`, else 0. `o` conditions are false when "
    "either operand is NaN, `u` conditions true; `ord`/`uno` test for no NaN / a NaN.",
    (Operand(OperandKind.FCMP_COND, "cond"), _v("a"), _v("b")), result="i1", typevar="float")

# --- guest state -----------------------------------------------------------------------------
_op("get", "state", "Read a field of the guest state.", (Operand(OperandKind.FIELD, "field"),),
    result="field", effects=Effect.READS_STATE)
_op("set", "state", "Write `v`, which has the field's type, to a field of the guest state.",
    (Operand(OperandKind.FIELD, "field"), _v("v", "any")), result="",
    effects=Effect.WRITES_STATE)

# --- guest memory ----------------------------------------------------------------------------
_MEM_TRAPS = ("An access to memory the guest may not read (or write) ends the function with "
              "`trap mem_fault` at that address; with `align N`, an address not a multiple of N "
              "ends it with `trap misaligned`.")
_op("load", "memory", "Load `size` bytes (default: T's size) little-endian from `addr`; a "
    "smaller size is zero-extended to T, or sign-extended with `sext`. " + _MEM_TRAPS,
    (_v("addr", "addr"), Operand(OperandKind.MEMFLAGS, "flags")), typevar="any", typed=True,
    effects=Effect.READS_MEMORY | Effect.MAY_TRAP)
_op("store", "memory", "Store the low `size` bytes (default: all) of `v` little-endian at "
    "`addr`. " + _MEM_TRAPS + " A trapping store writes nothing.",
    (_v("v", "any"), _v("addr", "addr"), Operand(OperandKind.MEMFLAGS, "flags")), result="",
    effects=Effect.WRITES_MEMORY | Effect.MAY_TRAP)
_op("atomic_rmw", "memory", "Atomically replace the T at `addr` with `old op v` and give `old`. "
    "The address must be a multiple of T's size (else `trap misaligned`). " + _MEM_TRAPS,
    (Operand(OperandKind.RMW_OP, "op"), _v("addr", "addr"), _v("v"),
     Operand(OperandKind.ORDER, "order")), typevar="int", typed=True,
    effects=Effect.READS_MEMORY | Effect.WRITES_MEMORY | Effect.MAY_TRAP)
_op("cmpxchg", "memory", "Atomically: read the T at `addr`; if it equals `expected` write `new`; "
    "give the value read. The address must be a multiple of T's size (else `trap misaligned`). "
    + _MEM_TRAPS,
    (_v("addr", "addr"), _v("expected"), _v("new"), Operand(OperandKind.ORDER, "order")),
    typevar="int", typed=True,
    effects=Effect.READS_MEMORY | Effect.WRITES_MEMORY | Effect.MAY_TRAP)
_op("fence", "memory", "A memory barrier of the given ordering.",
    (Operand(OperandKind.ORDER, "order"),), result="",
    effects=Effect.READS_MEMORY | Effect.WRITES_MEMORY)

# --- helpers ---------------------------------------------------------------------------------
_op("call", "call", "Call a declared helper with arguments of its parameter types; the result "
    "has its result type (none if it declares none). A helper declared `pure` has no effect but "
    "its result; any other may read and write state and memory and may trap.",
    (Operand(OperandKind.HELPER, "helper"),), result="helper", effects=Effect.CALL,
    undefined="what the helper's own documentation says.")

# --- terminators -----------------------------------------------------------------------------
_T = Effect.TERMINATOR
_op("br", "terminator", "Jump to a block, passing its parameters.",
    (Operand(OperandKind.TARGET, "dest"),), result="", effects=_T)
_op("brif", "terminator", "Jump to `then` if `c` is 1, else to `else`.",
    (_v("c", "i1"), Operand(OperandKind.TARGET, "then"), Operand(OperandKind.TARGET, "else")),
    result="", effects=_T)
_op("exit", "terminator", "Leave the function; guest execution continues at `pc`.",
    (_v("pc", "i64"),), result="", effects=_T)
_op("trap", "terminator", "Leave the function with a trap of the given kind; the guest state is "
    "as the preceding ops left it.", (Operand(OperandKind.TRAP_KIND, "kind"),), result="",
    effects=_T)
_op("ret", "terminator", "Return values of the function's result types.",
    (Operand(OperandKind.VALUES, "values", "any"),), result="", effects=_T)


OPS: dict[str, OpDef] = {op.name: op for op in _OPS}
assert len(OPS) == len(_OPS), "duplicate op name in the op table"


def op_named(name: str) -> OpDef:
    """The op called ``name``; ``KeyError`` if there is none."""
    return OPS[name]
