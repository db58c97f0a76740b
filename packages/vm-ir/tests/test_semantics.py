"""The semantics of the pure ops, checked against references that share no code with them:
Python's integers written out here, ``ctypes`` for C's wraparound, ``struct`` for IEEE bit
patterns, ``math``, and exact rounding of ``Fraction``s done here."""

from __future__ import annotations

import ctypes
import math
import struct
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vm_ir
from vm_ir import F32, F64, I1, I8, I16, I32, I64, I128, UndefinedBehavior
from vm_ir.ops import FCMP_CONDS, ICMP_CONDS, OPS
from vm_ir.semantics import SEMANTICS

UNSIGNED = {8: ctypes.c_uint8, 16: ctypes.c_uint16, 32: ctypes.c_uint32, 64: ctypes.c_uint64}
SIGNED = {8: ctypes.c_int8, 16: ctypes.c_int16, 32: ctypes.c_int32, 64: ctypes.c_int64}
CTYPES = {8: I8, 16: I16, 32: I32, 64: I64}


def sem(op: str, t, *args: int, types=None, **imms) -> int:
    """Apply ``op``'s semantics as the evaluator does: ``t`` the result type, ``types`` the
    operands' types (default: all ``t``)."""
    return SEMANTICS[op](t, list(args), imms, list(types or [t] * len(args)))


def u(bits: int, x: int) -> int:
    return UNSIGNED[bits](x).value


def s(bits: int, x: int) -> int:
    return SIGNED[bits](x).value


def f64(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def f32(x: float) -> int:
    """The f32 bit pattern of ``x``, which must be exactly representable in f32."""
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    assert math.isnan(x) or struct.unpack("<f", struct.pack("<I", bits))[0] == x, x
    return bits


def from64(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def from32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def round_fraction(x: Fraction, precision: int, emin: int, emax: int) -> Fraction | None:
    """``x`` rounded to ``precision`` significant bits (minimum normal exponent ``emin``,
    maximum ``emax``), ties to even; None when it overflows. Written here from the definition:
    scale into [2^(p-1), 2^p), round the integer part, scale back."""
    if x == 0:
        return Fraction(0)
    sign = -1 if x < 0 else 1
    a = abs(x)
    e = 0  # a = m * 2^e with m in [2^(p-1), 2^p)
    while a * Fraction(2) ** -e >= 2 ** precision:
        e += 1
    while a * Fraction(2) ** -e < 2 ** (precision - 1):
        e -= 1
    e = max(e, emin - (precision - 1))  # subnormals: a fixed quantum
    m = a * Fraction(2) ** -e
    q = m.numerator // m.denominator
    rest = m - q
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and q % 2 == 1):
        q += 1
    result = q * Fraction(2) ** e
    if result >= Fraction(2) ** (emax + 1):
        return None
    return sign * result


def to_f32_bits(x: Fraction) -> int:
    """Exact rounding to f32, as bits (the rounded value is exact in a double)."""
    r = round_fraction(x, 24, -126, 127)
    if r is None:
        return f32(math.inf if x > 0 else -math.inf)
    return f32(float(r))


def to_f64_bits(x: Fraction) -> int:
    r = round_fraction(x, 53, -1022, 1023)
    if r is None:
        return f64(math.inf if x > 0 else -math.inf)
    return f64(float(r))


def is_nan32(bits: int) -> bool:
    return math.isnan(from32(bits))


def is_nan64(bits: int) -> bool:
    return math.isnan(from64(bits))


widths = st.sampled_from(sorted(UNSIGNED))


@st.composite
def int_pairs(draw):
    bits = draw(widths)
    mask = (1 << bits) - 1
    edge = st.sampled_from([0, 1, 2, mask, mask - 1, 1 << (bits - 1), (1 << (bits - 1)) - 1])
    value = st.one_of(edge, st.integers(0, mask))
    return bits, draw(value), draw(value)


# --- every pure op has semantics -----------------------------------------------------------------


def test_every_pure_op_has_semantics_and_nothing_else_does():
    pure = {name for name, op in OPS.items() if op.is_pure}
    assert set(SEMANTICS) == pure


# --- integers ------------------------------------------------------------------------------------


@given(int_pairs())
def test_wrapping_arithmetic_matches_c(case):
    bits, a, b = case
    t = CTYPES[bits]
    assert sem("add", t, a, b) == u(bits, a + b)
    assert sem("sub", t, a, b) == u(bits, a - b)
    assert sem("mul", t, a, b) == u(bits, a * b)
    assert sem("neg", t, a) == u(bits, -a)
    assert sem("not", t, a) == u(bits, ~a)
    assert sem("and", t, a, b) == a & b
    assert sem("or", t, a, b) == a | b
    assert sem("xor", t, a, b) == a ^ b


@given(st.integers(0, 2 ** 128 - 1), st.integers(0, 2 ** 128 - 1))
def test_i128_arithmetic_wraps(a, b):
    assert sem("add", I128, a, b) == (a + b) % 2 ** 128
    assert sem("mul", I128, a, b) == (a * b) % 2 ** 128
    assert sem("sub", I128, a, b) == (a - b) % 2 ** 128


@given(int_pairs())
def test_min_max_and_comparisons_match_c(case):
    bits, a, b = case
    t = CTYPES[bits]
    sa, sb = s(bits, a), s(bits, b)
    assert sem("smin", t, a, b) == u(bits, min(sa, sb))
    assert sem("smax", t, a, b) == u(bits, max(sa, sb))
    assert sem("umin", t, a, b) == min(a, b)
    assert sem("umax", t, a, b) == max(a, b)
    expected = {
        "eq": a == b, "ne": a != b, "ult": a < b, "ule": a <= b, "ugt": a > b, "uge": a >= b,
        "slt": sa < sb, "sle": sa <= sb, "sgt": sa > sb, "sge": sa >= sb,
    }
    assert set(expected) == set(ICMP_CONDS)
    for cond, want in expected.items():
        assert sem("icmp", I1, a, b, types=[t, t], cond=cond) == int(want), cond


@given(int_pairs())
def test_division_rounds_toward_zero(case):
    bits, a, b = case
    t = CTYPES[bits]
    sa, sb = s(bits, a), s(bits, b)
    if b == 0:
        for op in ("udiv", "urem", "sdiv", "srem"):
            with pytest.raises(UndefinedBehavior):
                sem(op, t, a, b)
        return
    assert sem("udiv", t, a, b) == a // b
    assert sem("urem", t, a, b) == a % b
    if sa == -(1 << (bits - 1)) and sb == -1:
        return  # undefined: tested below
    q = math.trunc(Fraction(sa, sb))
    assert sem("sdiv", t, a, b) == u(bits, q)
    r = s(bits, sem("srem", t, a, b))
    assert r == sa - sb * q
    assert abs(r) < abs(sb) and (r == 0 or (r < 0) == (sa < 0))


@pytest.mark.parametrize(("a", "b", "q", "r"), [(-7, 2, -3, -1), (7, -2, -3, 1), (-7, -2, 3, -1),
                                               (7, 2, 3, 1), (-1, 7, 0, -1)])
def test_signed_division_examples(a, b, q, r):
    assert s(32, sem("sdiv", I32, u(32, a), u(32, b))) == q
    assert s(32, sem("srem", I32, u(32, a), u(32, b))) == r


@pytest.mark.parametrize("t", [I1, I8, I16, I32, I64, I128])
@pytest.mark.parametrize("op", ["sdiv", "srem"])
def test_minimum_divided_by_minus_one_is_undefined(t, op):
    minimum, minus_one = 1 << (t.bits - 1), t.mask
    with pytest.raises(UndefinedBehavior):
        sem(op, t, minimum, minus_one)


@given(int_pairs())
def test_shift_amounts_are_taken_modulo_the_width(case):
    bits, a, b = case
    t = CTYPES[bits]
    n = b % bits
    assert sem("shl", t, a, b) == u(bits, a << n)
    assert sem("lshr", t, a, b) == a >> n
    assert sem("ashr", t, a, b) == u(bits, s(bits, a) >> n)


def test_shift_examples():
    assert sem("shl", I32, 1, 33) == 2
    assert sem("lshr", I8, 0x80, 9) == 0x40
    assert sem("ashr", I16, 0x8000, 17) == 0xC000
    assert sem("shl", I64, 5, 64) == 5


@given(int_pairs())
def test_rotates_move_the_digits_of_the_binary_text(case):
    bits, a, b = case
    t = CTYPES[bits]
    text = format(a, f"0{bits}b")
    n = b % bits
    assert sem("rotl", t, a, b) == int(text[n:] + text[:n], 2)
    assert sem("rotr", t, a, b) == int(text[bits - n:] + text[:bits - n], 2)


@given(int_pairs())
def test_bit_counts_match_the_binary_text(case):
    bits, a, _ = case
    t = CTYPES[bits]
    text = format(a, f"0{bits}b")
    assert sem("clz", t, a) == len(text) - len(text.lstrip("0"))
    assert sem("ctz", t, a) == len(text) - len(text.rstrip("0"))
    assert sem("popcnt", t, a) == text.count("1")


@pytest.mark.parametrize("t", [I8, I16, I32, I64, I128])
def test_clz_and_ctz_of_zero_are_the_width(t):
    assert sem("clz", t, 0) == t.bits
    assert sem("ctz", t, 0) == t.bits
    assert sem("clz", t, t.mask) == 0
    assert sem("ctz", t, 1 << (t.bits - 1)) == t.bits - 1


@given(st.integers(0, 2 ** 64 - 1))
def test_bswap_reverses_the_bytes(a):
    assert sem("bswap", I16, a & 0xFFFF) == struct.unpack(">H", struct.pack("<H", a & 0xFFFF))[0]
    assert sem("bswap", I32, a & 0xFFFFFFFF) == struct.unpack(
        ">I", struct.pack("<I", a & 0xFFFFFFFF))[0]
    assert sem("bswap", I64, a) == struct.unpack(">Q", struct.pack("<Q", a))[0]
    wide = a * 2 ** 64 + (a ^ 0x0123456789ABCDEF)
    assert sem("bswap", I128, wide) == int.from_bytes(wide.to_bytes(16, "big"), "little")


@given(int_pairs())
def test_high_products_complete_the_exact_product(case):
    bits, a, b = case
    t = CTYPES[bits]
    low = sem("mul", t, a, b)
    assert sem("umulh", t, a, b) * 2 ** bits + low == a * b
    exact = s(bits, a) * s(bits, b)
    high = s(bits, sem("smulh", t, a, b))
    assert high * 2 ** bits + low == exact


def test_high_product_examples():
    assert sem("umulh", I64, 2 ** 64 - 1, 2 ** 64 - 1) == 2 ** 64 - 2
    assert sem("smulh", I64, 2 ** 64 - 1, 2 ** 64 - 1) == 0  # -1 * -1 = 1
    assert sem("smulh", I64, 2 ** 63, 2 ** 63) == 2 ** 62  # (-2^63)^2 = 2^126
    assert sem("smulh", I8, 0x80, 0x7F) == u(8, -64)  # -128 * 127 = -16256 = -64 * 256 + 128


@given(st.integers(0, 2 ** 64 - 1))
def test_extensions_and_truncation_match_c(a):
    assert sem("trunc", I8, a, types=[I64]) == u(8, a)
    assert sem("trunc", I32, a, types=[I64]) == u(32, a)
    assert sem("zext", I64, a & 0xFF, types=[I8]) == a & 0xFF
    assert sem("sext", I64, a & 0xFF, types=[I8]) == u(64, s(8, a))
    assert sem("sext", I32, a & 0xFFFF, types=[I16]) == u(32, s(16, a))
    assert sem("sext", I128, a, types=[I64]) == s(64, a) % 2 ** 128
    assert sem("sext", I8, a & 1, types=[I1]) == (0xFF if a & 1 else 0)


# --- float to integer ----------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "t", "x", "want"), [
    ("fptosi", I32, 1e10, 2 ** 31 - 1),
    ("fptosi", I32, -1e10, -(2 ** 31)),
    ("fptosi", I32, math.inf, 2 ** 31 - 1),
    ("fptosi", I32, -math.inf, -(2 ** 31)),
    ("fptosi", I32, math.nan, 0),
    ("fptosi", I32, -0.9, 0),
    ("fptosi", I32, 2.5, 2),
    ("fptosi", I32, -2.5, -2),
    ("fptosi", I64, 2.0 ** 63, 2 ** 63 - 1),
    ("fptosi", I64, -(2.0 ** 63), -(2 ** 63)),
    ("fptosi", I8, 127.99, 127),
    ("fptosi", I8, -128.99, -128),
    ("fptoui", I8, 300.0, 255),
    ("fptoui", I8, 255.9, 255),
    ("fptoui", I32, -5.0, 0),
    ("fptoui", I32, -0.5, 0),
    ("fptoui", I32, math.nan, 0),
    ("fptoui", I64, 2.0 ** 64, 2 ** 64 - 1),
    ("fptoui", I64, 1.5e19, 15000000000000000000),
])
def test_float_to_int_truncates_and_saturates(op, t, x, want):
    assert sem(op, t, f64(x), types=[F64]) == want % 2 ** t.bits
    if math.isnan(x) or math.isinf(x) or abs(x) < 3e38:  # from f32: the same, for f32's x
        x32 = struct.unpack("<f", struct.pack("<f", x))[0]
        assert sem(op, t, f32(x32), types=[F32]) == sem(op, t, f64(x32), types=[F64])


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_fptosi_is_the_clamped_truncation(x):
    want = max(-(2 ** 63), min(2 ** 63 - 1, math.trunc(Fraction(x))))
    assert sem("fptosi", I64, f64(x), types=[F64]) == want % 2 ** 64


# --- integer to float ----------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "want"), [
    (2 ** 24 + 1, 2 ** 24),  # a tie: to even
    (2 ** 24 + 3, 2 ** 24 + 4),  # a tie: to even, upward
    (2 ** 60 + 2 ** 36 + 1, 2 ** 60 + 2 ** 37),  # through a double this rounds down (wrong)
    (-(2 ** 60 + 2 ** 36 + 1), -(2 ** 60 + 2 ** 37)),
    (2 ** 63 - 1, 2 ** 63),
    (16777217, 16777216),
])
def test_sitofp_f32_rounds_once(n, want):
    assert sem("sitofp", F32, n % 2 ** 64, types=[I64]) == f32(float(want))


def test_uitofp_of_the_largest_integers():
    assert sem("uitofp", F32, 2 ** 64 - 1, types=[I64]) == f32(2.0 ** 64)
    assert sem("uitofp", F64, 2 ** 64 - 1, types=[I64]) == f64(2.0 ** 64)
    assert sem("uitofp", F32, 2 ** 128 - 1, types=[I128]) == f32(math.inf)  # rounds past max
    assert sem("sitofp", F32, 2 ** 127, types=[I128]) == f32(-(2.0 ** 127))
    assert sem("uitofp", F32, 1, types=[I1]) == f32(1.0)
    assert sem("sitofp", F32, 1, types=[I1]) == f32(-1.0)


@given(st.integers(-(2 ** 127), 2 ** 127 - 1))
def test_sitofp_rounds_exactly(n):
    assert sem("sitofp", F32, n % 2 ** 128, types=[I128]) == to_f32_bits(Fraction(n))
    assert sem("sitofp", F64, n % 2 ** 128, types=[I128]) == to_f64_bits(Fraction(n))


@given(st.integers(0, 2 ** 64 - 1))
def test_uitofp_rounds_exactly(n):
    assert sem("uitofp", F32, n, types=[I64]) == to_f32_bits(Fraction(n))
    assert sem("uitofp", F64, n, types=[I64]) == to_f64_bits(Fraction(n))


# --- float arithmetic ----------------------------------------------------------------------------

f32_values = st.floats(width=32, allow_nan=False, allow_infinity=False)
f64_values = st.floats(allow_nan=False, allow_infinity=False)


@given(f32_values, f32_values)
def test_f32_arithmetic_rounds_the_exact_result_once(x, y):
    a, b = Fraction(x), Fraction(y)
    assert sem("fadd", F32, f32(x), f32(y)) == _signed_zero(to_f32_bits(a + b), x + y, f32)
    assert sem("fsub", F32, f32(x), f32(y)) == _signed_zero(to_f32_bits(a - b), x - y, f32)
    assert sem("fmul", F32, f32(x), f32(y)) == _signed_zero(to_f32_bits(a * b), x * y, f32)
    if y != 0:
        assert sem("fdiv", F32, f32(x), f32(y)) == _signed_zero(to_f32_bits(a / b), x / y, f32)


def _signed_zero(bits: int, double: float, pack) -> int:
    """An exact zero carries the sign IEEE gives it (that of the double result; also where the
    product or quotient underflows to zero the double's sign is the right one)."""
    value = from32(bits) if pack is f32 else from64(bits)
    if value == 0:
        return pack(math.copysign(0.0, double))
    return bits


@given(f64_values, f64_values, f64_values)
def test_fma_rounds_the_exact_result_once(x, y, z):
    exact = Fraction(x) * Fraction(y) + Fraction(z)
    got = sem("fma", F64, f64(x), f64(y), f64(z))
    if exact != 0:
        assert got == to_f64_bits(exact)
    else:  # zero: -0 only when x*y and z are both -0 (or both negative zeros)
        negative = math.copysign(1, x) * math.copysign(1, y) < 0 and math.copysign(1, z) < 0
        assert got == f64(-0.0 if negative and x * y == 0 else 0.0)


def test_fma_differs_from_multiply_then_add():
    a, b, c = 1 + 2.0 ** -52, 1 - 2.0 ** -52, -1.0
    assert a * b + c == 0.0  # two roundings lose it
    assert sem("fma", F64, f64(a), f64(b), f64(c)) == f64(-(2.0 ** -104))
    assert sem("fma", F64, f64(math.inf), f64(0.0), f64(1.0)) == f64(math.nan)
    assert is_nan64(sem("fma", F64, f64(math.inf), f64(1.0), f64(-math.inf)))
    assert sem("fma", F64, f64(2.0), f64(3.0), f64(math.inf)) == f64(math.inf)


@given(f32_values, f32_values, f32_values)
def test_f32_fma_rounds_once(x, y, z):
    exact = Fraction(x) * Fraction(y) + Fraction(z)
    if exact != 0:
        assert sem("fma", F32, f32(x), f32(y), f32(z)) == to_f32_bits(exact)


def test_division_by_zero_and_square_roots():
    assert sem("fdiv", F64, f64(1.0), f64(0.0)) == f64(math.inf)
    assert sem("fdiv", F64, f64(-1.0), f64(0.0)) == f64(-math.inf)
    assert sem("fdiv", F64, f64(1.0), f64(-0.0)) == f64(-math.inf)
    assert is_nan64(sem("fdiv", F64, f64(0.0), f64(0.0)))
    assert sem("fdiv", F64, f64(1e308), f64(1e-10)) == f64(math.inf)
    assert sem("fsqrt", F64, f64(2.0)) == f64(math.sqrt(2.0))
    assert sem("fsqrt", F64, f64(-0.0)) == f64(-0.0)
    assert is_nan64(sem("fsqrt", F64, f64(-1.0)))
    assert sem("fsqrt", F32, f32(2.0)) == to_f32_bits(Fraction(math.sqrt(2.0)))
    assert sem("fmul", F32, f32(2.0 ** 127), f32(4.0)) == f32(math.inf)


@given(f64_values)
def test_f64_square_root_is_correctly_rounded(x):
    x = abs(x)
    root = from64(sem("fsqrt", F64, f64(x)))
    if x == 0:
        assert root == 0
        return
    # the exact root lies within half a unit in the last place either side of the result
    r = Fraction(root)
    low = (r + Fraction(math.nextafter(root, 0.0))) / 2
    high = (r + Fraction(math.nextafter(root, math.inf))) / 2
    assert low * low <= Fraction(x) <= high * high


def test_sign_ops_keep_nan_payloads():
    nan = 0x7FF4000000000001
    assert sem("fneg", F64, nan) == nan | 1 << 63
    assert sem("fabs", F64, nan | 1 << 63) == nan
    assert sem("fneg", F32, f32(0.0)) == f32(-0.0)
    assert sem("fabs", F32, f32(-2.5)) == f32(2.5)


def test_fmin_and_fmax_order_zeros_and_skip_a_nan():
    zero, negzero, one, nan = f64(0.0), f64(-0.0), f64(1.0), f64(math.nan)
    assert sem("fmin", F64, negzero, zero) == negzero
    assert sem("fmin", F64, zero, negzero) == negzero
    assert sem("fmax", F64, negzero, zero) == zero
    assert sem("fmax", F64, zero, negzero) == zero
    for op in ("fmin", "fmax"):
        assert sem(op, F64, nan, one) == one
        assert sem(op, F64, one, nan) == one
        assert is_nan64(sem(op, F64, nan, nan))
    assert sem("fmin", F32, f32(-1.5), f32(2.0)) == f32(-1.5)
    assert sem("fmax", F32, f32(-1.5), f32(2.0)) == f32(2.0)


@given(f64_values, f64_values)
def test_fmin_fmax_of_numbers(x, y):
    if x == y:
        return
    assert from64(sem("fmin", F64, f64(x), f64(y))) == min(x, y)
    assert from64(sem("fmax", F64, f64(x), f64(y))) == max(x, y)


def test_fcmp_with_a_nan_for_every_condition():
    nan, one = f64(math.nan), f64(1.0)
    unordered_true = {"ueq", "une", "ult", "ule", "ugt", "uge", "uno"}
    assert set(FCMP_CONDS) == unordered_true | {"oeq", "one", "olt", "ole", "ogt", "oge", "ord"}
    for cond in FCMP_CONDS:
        for a, b in ((nan, one), (one, nan), (nan, nan)):
            got = sem("fcmp", I1, a, b, types=[F64, F64], cond=cond)
            assert got == (cond in unordered_true), (cond, a, b)


@given(st.one_of(f64_values, st.just(-0.0)), st.one_of(f64_values, st.just(0.0)))
def test_fcmp_of_numbers_is_the_comparison(x, y):
    expected = {"eq": x == y, "ne": x != y, "lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y}
    for cond in FCMP_CONDS:
        if cond in ("ord", "uno"):
            want = cond == "ord"
        else:
            want = expected[cond[1:]]
        got = sem("fcmp", I1, f64(x), f64(y), types=[F64, F64], cond=cond)
        assert got == int(want), cond


def test_float_conversions_between_widths():
    assert sem("fptrunc", F32, f64(0.1), types=[F64]) == struct.unpack(
        "<I", struct.pack("<f", 0.1))[0]
    assert sem("fptrunc", F32, f64(1e300), types=[F64]) == f32(math.inf)
    assert sem("fptrunc", F32, f64(-1e-300), types=[F64]) == f32(-0.0)
    assert sem("fptrunc", F32, f64(1.5e-45), types=[F64]) == 1  # the smallest subnormal
    assert sem("fpext", F64, 0x3DCCCCCD, types=[F32]) == f64(from32(0x3DCCCCCD))  # 0.1f
    assert is_nan64(sem("fpext", F64, f32(math.nan), types=[F32]))


@given(f64_values)
def test_fptrunc_rounds_exactly(x):
    assert sem("fptrunc", F32, f64(x), types=[F64]) == _signed_zero(
        to_f32_bits(Fraction(x)), x, f32)


# --- the evaluator agrees --------------------------------------------------------------------------


def test_the_evaluator_applies_the_same_table():
    module = vm_ir.parse(
        "func @f(i32, i32) -> i32, i1 {\n"
        "block0(v0: i32, v1: i32):\n"
        "    v2 = sdiv v0, v1\n"
        "    v3 = icmp slt v0, v1\n"
        "    ret v2, v3\n"
        "}\n")
    assert vm_ir.evaluate(module, "f", [u(32, -7), 2]).values == (u(32, -3), 1)
    with pytest.raises(UndefinedBehavior):
        vm_ir.evaluate(module, "f", [1, 0])


def test_a_loaded_i1_is_the_low_bit_of_its_byte():
    module = vm_ir.parse(
        "func @f() -> i1 {\n"
        "block0:\n"
        "    v0 = iconst.i64 16\n"
        "    v1 = iconst.i8 -1\n"
        "    store v1, v0\n"
        "    v2 = load.i1 v0\n"
        "    ret v2\n"
        "}\n")
    assert vm_ir.evaluate(module, "f", memory=vm_ir.FlatMemory()).values == (1,)
