"""Every pure op of the table, compiled, against ``vm_ir.semantics`` on grids of edge values.

For each op and each type it takes (its type variable class or conversion rule, read from the
op table) and each condition, one function loops over a table of inputs in guest memory and
stores each result next to its inputs; one native call runs the whole table, and every row
must equal the semantics function's result bit for bit (NaNs included: the JIT canonicalises
NaN results as the evaluator does). Rows whose inputs are undefined behaviour are not
compared. Plus: constants, and undefined divisions never crash the host.
"""

from __future__ import annotations

import itertools
import math
import random
import struct

import pytest

from vm_engine_jit.jit import LOWERED_OPS, JitCompiler, run
from vm_ir import (
    F32,
    F64,
    I1,
    I8,
    I16,
    I32,
    I64,
    I128,
    OPS,
    V128,
    FlatMemory,
    FunctionBuilder,
    Module,
    Returned,
    Type,
)
from vm_ir.ops import FCMP_CONDS, ICMP_CONDS, OperandKind
from vm_ir.semantics import SEMANTICS, UndefinedBehavior
from vm_ir.values import float_to_bits, round_exact

INT_TYPES = (I1, I8, I16, I32, I64, I128)
FLOAT_TYPES = (F32, F64)
ALL_TYPES = (*INT_TYPES, *FLOAT_TYPES, V128)
CLASSES = {"int": INT_TYPES, "float": FLOAT_TYPES, "any": ALL_TYPES,
           "int_multibyte": (I16, I32, I64, I128)}
RULES = {
    "wider": [(s, t) for s in INT_TYPES for t in INT_TYPES if s.bits < t.bits],
    "narrower": [(s, t) for s in INT_TYPES for t in INT_TYPES if s.bits > t.bits],
    "same_width": [(s, t) for s in ALL_TYPES for t in ALL_TYPES if s.bits == t.bits],
    "float_to_int": [(s, t) for s in FLOAT_TYPES for t in INT_TYPES],
    "int_to_float": [(s, t) for s in INT_TYPES for t in FLOAT_TYPES],
    "f32_to_f64": [(F32, F64)],
    "f64_to_f32": [(F64, F32)],
}
CONDS = {OperandKind.ICMP_COND: ICMP_CONDS, OperandKind.FCMP_COND: FCMP_CONDS}
#: pure ops with operands (constants are tested on their own)
PURE_OPS = sorted(name for name in SEMANTICS if OPS[name].operands
                  and OPS[name].operands[0].kind not in (OperandKind.INT, OperandKind.FLOAT))

_rng = random.Random(1234)


def int_values(t: Type) -> list[int]:
    if t.bits == 1:
        return [0, 1]
    top = 1 << (t.bits - 1)
    edges = {0, 1, 2, 3, 5, 7, 8, 0x55, t.mask, t.mask - 1, t.mask - 2, top, top - 1, top + 1,
             (1 << (t.bits // 2)) & t.mask, ((1 << (t.bits // 2)) - 1) & t.mask}
    if t.bits == 128:  # around 2^64, 2^53 and rounding boundaries of i128 -> float
        edges |= {1 << 64, (1 << 64) - 1, (1 << 64) + 1, (1 << 100) + (1 << 47),
                  (1 << 100) + (1 << 47) + 1, (1 << 100) + 3 * (1 << 47), (1 << 53) + 1,
                  t.mask - (1 << 103), t.mask - (1 << 104) + 1, (1 << 127) + (1 << 74)}
    if t.bits == 64:
        edges |= {(1 << 53) + 1, (1 << 63) + (1 << 10), (1 << 63) + (1 << 11) - 1,
                  t.mask - (1 << 10)}
    edges |= {_rng.getrandbits(t.bits) for _ in range(4)}
    return sorted(edges)


_FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -2.5, 2.5, 3.0, 0.1, -0.7, 1e10, -1e10,
           2.0 ** 31, -(2.0 ** 31), 2.0 ** 31 - 1, 2.0 ** 63, -(2.0 ** 63), 2.0 ** 64,
           2.0 ** 64 - 2048, 2.0 ** 127, -(2.0 ** 127), 2.0 ** 128, 1.7e38, 3.4e38, 1e300,
           -1e300, 5e-324, 1e-40, -1e-45, 2.2250738585072014e-308, 65535.9, 4294967295.5,
           16777217.0, math.inf, -math.inf)


def float_values(t: Type) -> list[int]:
    bits = {float_to_bits(x, t) for x in _FLOATS}
    bits |= {float_to_bits(math.nan, t), float_to_bits(math.nan, t) | 1,
             float_to_bits(math.nan, t) | (1 << (t.bits - 1)),
             (float_to_bits(math.inf, t) | 1),  # a signalling NaN
             t.mask}  # a negative NaN with all payload bits
    bits |= {_rng.getrandbits(t.bits) for _ in range(3)}
    return sorted(bits)


def values(t: Type) -> list[int]:
    return float_values(t) if t.is_float else int_values(t)


def configs(name: str) -> list[tuple[Type | None, list[Type], dict]]:
    """(type suffix, argument types, immediates) for every way the op can be written."""
    op = OPS[name]
    value_specs = [s for s in op.operands if s.kind is OperandKind.VALUE]
    cond_specs = [s for s in op.operands if s.kind in CONDS]
    if op.rule:
        pairs = RULES[op.rule]
    else:
        pairs = [(None, t) for t in CLASSES[op.typevar]]
    out = []
    for src, t in pairs:
        args = []
        for spec in value_specs:
            c = spec.constraint
            args.append(t if c == "T" else src if c in ("int", "float", "any") else
                        {"i1": I1, "i64": I64}[c])
        conds = [dict(zip([s.name for s in cond_specs], combo, strict=True))
                 for combo in itertools.product(*(CONDS[s.kind] for s in cond_specs))]
        for imms in conds or [{}]:
            out.append((t if op.typed else None, args, imms))
    return out


def rows_for(arg_types: list[Type], limit: int = 1500) -> list[tuple[int, ...]]:
    grids = [values(t) for t in arg_types]
    rows = list(itertools.product(*grids))
    if len(rows) > limit:
        rows = _rng.sample(rows, limit)
    return rows


def table_function(module: Module, name: str, op: str, suffix: Type | None,
                   arg_types: list[Type], imms: dict, count: int) -> Type:
    """``@name()``: for i in 0..count-1, the op on the row's arguments, stored after them.
    A row is ``len(arg_types) + 1`` 16-byte cells from address ``i * row``."""
    row = 16 * (len(arg_types) + 1)
    fb = FunctionBuilder(module, name)
    zero = fb.iconst(I64, 0)
    loop = fb.new_block(I64)
    done = fb.new_block()
    fb.br((loop, [zero]))
    fb.switch_to(loop)
    i = loop.params[0]
    base = fb.mul(i, fb.iconst(I64, row))
    args = [fb.load(t, fb.add(base, fb.iconst(I64, 16 * k))) for k, t in enumerate(arg_types)]
    result = fb.emit(op, args, imms, type=suffix)
    fb.store(result, fb.add(base, fb.iconst(I64, 16 * len(arg_types))))
    nxt = fb.add(i, fb.iconst(I64, 1))
    fb.brif(fb.icmp("ult", nxt, fb.iconst(I64, count)), (loop, [nxt]), done)
    fb.switch_to(done)
    fb.ret()
    return result.type  # type: ignore[union-attr]


_COMPILER = JitCompiler()


def test_every_op_has_a_lowering() -> None:
    assert set(OPS) == LOWERED_OPS


def test_the_grid_covers_every_pure_op() -> None:
    assert set(PURE_OPS) == set(SEMANTICS) - {"iconst", "fconst"}


@pytest.mark.parametrize("name", PURE_OPS)
def test_op_matches_the_semantics(name: str) -> None:
    module = Module()
    plans = []
    for n, (suffix, arg_types, imms) in enumerate(configs(name)):
        rows = rows_for(arg_types)
        rtype = table_function(module, f"t{n}", name, suffix, arg_types, imms, len(rows))
        plans.append((f"t{n}", arg_types, imms, rows, rtype))
    compiled = {c.function.name: c for c in _COMPILER.compile_module(module).values()}
    sem = SEMANTICS[name]
    checked = 0
    for fname, arg_types, imms, rows, rtype in plans:
        width = len(arg_types) + 1
        memory = FlatMemory(16 * width * len(rows))
        for r, row in enumerate(rows):
            for k, (v, t) in enumerate(zip(row, arg_types, strict=True)):
                memory.store(16 * (r * width + k), t.bytes, v)
        assert run(compiled[fname], [], memory=memory) == Returned(())
        mismatches = []
        for r, row in enumerate(rows):
            try:
                want = sem(rtype, list(row), imms, arg_types) & rtype.mask
            except UndefinedBehavior:
                continue
            got = memory.load(16 * (r * width + width - 1), rtype.bytes) & rtype.mask
            checked += 1
            if got != want:
                mismatches.append(f"{name}{imms or ''} {arg_types} -> {rtype}: "
                                  f"{[hex(v) for v in row]} gave {got:#x}, expected {want:#x}")
        assert not mismatches, "\n".join(mismatches[:20])
    assert checked > 0


def test_constants_keep_every_bit() -> None:
    module = Module()
    cases = [(t, v) for t in (*INT_TYPES, *FLOAT_TYPES) for v in values(t)]
    for n, (t, v) in enumerate(cases):
        fb = FunctionBuilder(module, f"c{n}", [], [t])
        fb.ret(fb.iconst(t, v) if t.is_int else fb.fconst(t, v))
    compiled = _COMPILER.compile_module(module)
    for n, (_t, v) in enumerate(cases):
        assert run(compiled[f"c{n}"]) == Returned((v,)), hex(v)


@pytest.mark.parametrize("op", ["udiv", "urem", "sdiv", "srem"])
def test_undefined_division_gives_a_value_and_never_traps_the_host(op: str) -> None:
    module = Module()
    types = INT_TYPES[1:] if op[0] == "s" else INT_TYPES
    for t in types:
        fb = FunctionBuilder(module, f"d{t}", [t, t], [t])
        a, b = fb.params
        fb.ret(fb.emit(op, [a, b]))
    compiled = _COMPILER.compile_module(module)
    for t in types:
        minimum = 1 << (t.bits - 1)
        for a, b in [(5, 0), (0, 0), (t.mask, 0), (minimum, t.mask)]:
            result = run(compiled[f"d{t}"], [a, b])
            assert isinstance(result, Returned) and 0 <= result.values[0] <= t.mask


def test_i128_to_float_rounds_once() -> None:
    """Random wide integers against exact rounding (``round_exact``), both signs."""
    module = Module()
    for name, op, src, dst in [("s64", "sitofp", I128, F64), ("u64", "uitofp", I128, F64),
                               ("s32", "sitofp", I128, F32), ("u32", "uitofp", I128, F32)]:
        fb = FunctionBuilder(module, name, [src], [dst])
        fb.ret(fb.emit(op, fb.params, type=dst))
    compiled = _COMPILER.compile_module(module)
    rng = random.Random(7)
    for _ in range(400):
        bits = rng.randrange(1, 128)
        x = rng.getrandbits(bits) | (1 << (bits - 1))
        if rng.random() < 0.3:  # a tie or near-tie below the rounding point
            x |= (1 << max(bits - 55, 0)) - 1
        for name, signed, dst in [("s64", True, F64), ("u64", False, F64),
                                  ("s32", True, F32), ("u32", False, F32)]:
            value = x - (1 << 127) if signed and x >> 127 else x
            want = round_exact(value, dst)
            assert run(compiled[name], [x]) == Returned((want,)), (name, hex(x))


def test_float_to_i128_saturates_and_truncates() -> None:
    module = Module()
    for name, op, src in [("s", "fptosi", F64), ("u", "fptoui", F64), ("s32", "fptosi", F32),
                          ("u32", "fptoui", F32)]:
        fb = FunctionBuilder(module, name, [src], [I128])
        fb.ret(fb.emit(op, fb.params, type=I128))
    compiled = _COMPILER.compile_module(module)
    rng = random.Random(8)
    for _ in range(400):
        x = rng.choice([-1.0, 1.0]) * rng.random() * 2.0 ** rng.randrange(-4, 132)
        for name, src in [("s", F64), ("u", F64), ("s32", F32), ("u32", F32)]:
            bits = struct.unpack("<Q", struct.pack("<d", x))[0] if src is F64 else \
                float_to_bits(x, F32)
            want = SEMANTICS["fptosi" if name[0] == "s" else "fptoui"](I128, [bits], {}, [src])
            assert run(compiled[name], [bits]) == Returned((want,)), (name, x)
