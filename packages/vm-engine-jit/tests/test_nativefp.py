"""The JIT's native ``fp.*`` helpers (``jit/nativefp.py``) against their Python
implementations (RISC-V's softfloat helpers, checked against unicorn in the frontend's tests):
every operation, result bits and ``fflags``, in every rounding mode (static and ``frm``),
on special operands and on random ones near the boundaries that matter (subnormals, overflow,
halfway cases, the integer ranges)."""

from __future__ import annotations

import random
import struct

import pytest

from vm_engine_jit.jit import JitCompiler, nativefp
from vm_engine_jit.jit.executor import HelperTable, run
from vm_frontend_riscv.frontend import RiscvFrontend
from vm_frontend_riscv.helpers import IMPLEMENTATIONS
from vm_ir import I64, FunctionBuilder, State, evaluate

pytestmark = pytest.mark.skipif(not JitCompiler().native_helpers,
                                reason="native fp helpers are x86-64 only")

BOX = 0xFFFFFFFF00000000


def d(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def s(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0] | BOX


def _specials(fmt: str) -> list[int]:
    if fmt == "d":
        raw = [0, 1, 0x000FFFFFFFFFFFFF, 0x0010000000000000, 0x0010000000000001,
               0x7FEFFFFFFFFFFFFF, 0x7FF0000000000000, 0x7FF8000000000000,
               0x7FF0000000000001, 0x7FF4000000000000, 0x7FFFFFFFFFFFFFFF]
        values = [d(v) for v in (1.0, 1.5, 2.5, 0.5, 3.0, 0.1, 1e308, 1e-308, 2.0 ** 31,
                                 2.0 ** 31 - 0.5, 2.0 ** 32, 2.0 ** 63, 2.0 ** 64,
                                 2.0 ** 53 + 2, 4294967295.5, 9.3e18, 1.8e19, 7.0)]
        sign = 1 << 63
    else:
        raw = [0, 1, 0x007FFFFF, 0x00800000, 0x00800001, 0x7F7FFFFF, 0x7F800000, 0x7FC00000,
               0x7F800001, 0x7FA00000]
        values = [s(v) & 0xFFFFFFFF for v in (1.0, 1.5, 2.5, 0.5, 3.0, 0.1, 3e38, 1e-38,
                                               2.0 ** 31, 2.0 ** 32, 2.0 ** 63, 2.0 ** 64,
                                               16777217.0, 7.0)]
        sign = 1 << 31
    out = []
    for v in raw + values:
        out += [v, v | sign]
    return [v if fmt == "d" else v | BOX for v in out]


def _random(rng: random.Random, fmt: str) -> int:
    """Random bits with the exponent drawn near the interesting places."""
    if fmt == "d":
        exp_bits, mant_bits, bias = 11, 52, 1023
    else:
        exp_bits, mant_bits, bias = 8, 23, 127
    choice = rng.random()
    if choice < 0.25:
        exp = rng.randrange(0, 3)  # subnormal and smallest normals
    elif choice < 0.4:
        exp = (1 << exp_bits) - 1 - rng.randrange(0, 3)  # huge, inf, NaN
    elif choice < 0.6:
        exp = bias + rng.randrange(-(mant_bits + 2), 66)  # around integers
    elif choice < 0.8:
        exp = bias // 2 + rng.randrange(-3, 3)  # squares land near the smallest normal
    else:
        exp = rng.randrange(0, 1 << exp_bits)
    mant = rng.getrandbits(mant_bits)
    if rng.random() < 0.3:
        mant &= ~((1 << rng.randrange(mant_bits)) - 1)  # few significant bits: exact cases
    bits = (rng.getrandbits(1) << (exp_bits + mant_bits)) | (exp << mant_bits) | mant
    if fmt == "s":
        bits |= BOX if rng.random() > 0.03 else rng.getrandbits(32) << 32
    return bits


def _random_int(rng: random.Random) -> int:
    choice = rng.random()
    if choice < 0.3:
        return rng.choice([0, 1, (1 << 64) - 1, 1 << 31, (1 << 31) - 1, (1 << 32) - 1,
                           1 << 63, (1 << 63) - 1, (1 << 53) + 1, (1 << 24) + 1,
                           ((1 << 64) - 1) ^ ((1 << 31) - 1)])
    return rng.getrandbits(rng.choice([8, 24, 25, 32, 53, 54, 63, 64]))


def _operands(native: str) -> tuple[int, str]:
    """How many operands and of which kind (a format, or "i" for an integer)."""
    _, op, *rest = native.split(".")
    if op == "fcvt":
        _, frm = rest
        return 1, ("i" if frm not in "sd" else frm)
    fmt = rest[0]
    arity = {"fsqrt": 1, "fclass": 1}.get(op, 3 if op in nativefp._FUSED else 2)
    return arity, fmt


@pytest.fixture(scope="module")
def compiled():
    frontend = RiscvFrontend()
    module = frontend.new_module()
    names = {}
    for helper, decl in list(module.helpers.items()):
        if decl.native not in nativefp.SUPPORTED:
            continue
        rounding = nativefp.takes_rm(decl.native)
        # rm as a parameter (computed at run time), and as each constant a lifter writes
        for rm in (None, 0, 1, 2, 3, 4, 7) if rounding else (None,):
            fname = f"t_{helper}" + ("" if rm is None else f"_rm{rm}")
            fb = FunctionBuilder(module, fname, [I64, I64, I64, I64], [I64])
            a, b, c, rm_param = fb.params
            arity = len(decl.params) - rounding
            args = [a, b, c][:arity]
            if rounding:
                args.append(rm_param if rm is None else fb.iconst(I64, rm))
            fb.ret(fb.call(helper, *args))
            names[decl.native, rm] = fname
    fns = JitCompiler().compile_module(module)
    return module, names, fns, HelperTable(module, IMPLEMENTATIONS)


def _check(compiled, fname: str, args: list[int], frm: int) -> None:
    module, _, fns, table = compiled
    fn = fns[fname]
    expected_state = State(module.state)
    expected_state["frm"] = frm
    native_state = State(module.state)
    native_state["frm"] = frm
    want = evaluate(module, fname, args, state=expected_state, helpers=IMPLEMENTATIONS)
    got = run(fn, args, state=native_state, helpers=table)
    assert (got, native_state["fflags"]) == (want, expected_state["fflags"]), (
        f"{fname}{tuple(hex(a) for a in args)} frm={frm}: native {got} "
        f"fflags {native_state['fflags']:#x}, softfloat {want} "
        f"fflags {expected_state['fflags']:#x}")


def test_every_fp_helper_is_native(compiled):
    module, names, _, _ = compiled
    assert {native for native, _ in names} == nativefp.SUPPORTED
    assert all(d.native for n, d in module.helpers.items() if n.startswith(("f", "fcvt")) and
               n not in ("fence_i",))


@pytest.mark.parametrize("native", sorted(nativefp.SUPPORTED))
def test_native_matches_softfloat(compiled, native: str) -> None:
    names = compiled[1]
    arity, kind = _operands(native)
    rng = random.Random(native)
    rounding = nativefp.takes_rm(native)
    specials = _specials(kind) if kind != "i" else []
    cases: list[list[int]] = []
    if kind == "i":
        cases += [[_random_int(rng) for _ in range(3)] for _ in range(120)]
    else:
        pool = specials
        cases += [[rng.choice(pool) for _ in range(3)] for _ in range(60 if arity > 1 else 0)]
        cases += [[v, rng.choice(pool), rng.choice(pool)] for v in pool]
        cases += [[_random(rng, kind) for _ in range(3)] for _ in range(120)]
    for i, operands in enumerate(cases):
        if rounding:
            for rm, frm in ((0, 0), (1, 0), (2, 0), (3, 0), (7, i % 4), (4, 0)):
                if rm == 4 and i % 8:
                    continue  # ties-away goes through Python: a few cases show the path
                # the constant-rm function, and every few cases the run-time-rm one
                fname = names[native, rm]
                _check(compiled, fname, [*operands, 0], frm)
                if i % 5 == 0:
                    fname = names[native, None]
                    _check(compiled, fname, [*operands, rm], frm)
        else:
            fname = names[native, None]
            _check(compiled, fname, [*operands, 0], 0)


def test_reserved_rounding_modes_trap(compiled):
    names = compiled[1]
    fname = names["fp.fadd.d", None]
    for rm, frm in ((5, 0), (6, 0), (7, 5), (7, 7)):
        _check(compiled, fname, [d(1.0), d(2.0), 0, rm], frm)
    fname = names["fp.fadd.d", 7]
    for frm in (4, 5, 7):
        _check(compiled, fname, [d(1.0), d(0.1), 0, 0], frm)
