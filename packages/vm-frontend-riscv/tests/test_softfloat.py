"""softfloat against the RISC-V spec's own statements, the host's binary64, and exact rationals.

test_softfloat_unicorn.py compares every instruction with unicorn; this file holds what
unicorn cannot judge (NaN-boxing, the places where unicorn 2.1.4 departs from the
spec, the rounding-mode field) and checks that need no emulator: worked examples
whose expected values follow from the IEEE 754 and RISC-V definitions, the host's
binary64 arithmetic (round to nearest even), and an exact ``fractions.Fraction``
model of the inexact flag.
"""

from __future__ import annotations

import doctest
import math
import struct
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vm_frontend_riscv import softfloat as sf

ONE32, TWO32, INF32, SNAN32, QNAN32 = 0x3F800000, 0x40000000, 0x7F800000, 0x7F800001, 0x7FC00001
ONE64, INF64, SNAN64 = 0x3FF0000000000000, 0x7FF0000000000000, 0x7FF0000000000001
MAX64 = 0x7FEFFFFFFFFFFFFF
MIN_NORMAL64 = 0x0010000000000000
MAX_SUB64 = 0x000FFFFFFFFFFFFF
NEG32, NEG64 = 0x80000000, 1 << 63


def d(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def f(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def test_docstring_examples() -> None:
    assert doctest.testmod(sf, raise_on_error=True).attempted > 0


# --- Rounding modes, NaN-boxing --------------------------------------------------------


def test_resolve_rm() -> None:
    for rm in range(5):
        assert sf.resolve_rm(rm, 7) == rm  # a static mode ignores frm, even a reserved one
    for rm in (5, 6):
        assert sf.resolve_rm(rm, 0) is None
    for frm in range(8):
        assert sf.resolve_rm(sf.DYN, frm) == (frm if frm <= 4 else None)


def test_nan_boxing() -> None:
    assert sf.box_f32(ONE32) == 0xFFFFFFFF3F800000
    assert sf.unbox_f32(0xFFFFFFFF3F800000) == ONE32
    assert sf.unbox_f32(sf.box_f32(0)) == 0
    # Not properly boxed: the canonical NaN ("the input value is treated as an n-bit
    # canonical NaN"), whatever the low bits hold.
    for reg in (ONE32, 0x7FFFFFFF3F800000, 0xFFFFFFFE3F800000, ONE64, 0):
        assert sf.unbox_f32(reg) == sf.CANONICAL_NAN32
    # An unboxed operand is a quiet NaN: the result is the canonical NaN, without NV.
    assert sf.f32_add(sf.unbox_f32(ONE32), ONE32, sf.RNE) == (sf.CANONICAL_NAN32, 0)
    assert sf.f32_classify(sf.unbox_f32(ONE32)) == 0x200
    assert sf.f32_sgnjn(sf.unbox_f32(0), ONE32) == NEG32 | sf.CANONICAL_NAN32


# --- Where unicorn 2.1.4 departs from the spec -------------------------------------------


@pytest.mark.parametrize("fmt", [32, 64])
def test_min_max_are_minimum_number(fmt: int) -> None:
    """F/D 2.2: fmin/fmax are minimumNumber/maximumNumber: one NaN, even a signaling one,
    gives the other operand; NV only for a signaling NaN; two NaNs give the canonical NaN."""
    F = sf.FORMATS[fmt]
    one, snan, qnan = (ONE32, SNAN32, QNAN32) if fmt == 32 else (ONE64, SNAN64, INF64 | 2**51 | 5)
    neg = 1 << (fmt - 1)
    for op in (F.min, F.max):
        assert op(snan, one) == (one, sf.NV)
        assert op(one, snan) == (one, sf.NV)
        assert op(qnan, one) == (one, 0)
        assert op(one, qnan | neg) == (one, 0)
        assert op(qnan, qnan) == (F.canonical_nan, 0)
        assert op(snan, qnan) == (F.canonical_nan, sf.NV)
    assert F.min(0, neg) == (neg, 0) and F.min(neg, 0) == (neg, 0)
    assert F.max(0, neg) == (0, 0) and F.max(neg, 0) == (0, 0)


@pytest.mark.parametrize("fmt", [32, 64])
@pytest.mark.parametrize("variant", ["fmadd", "fmsub", "fnmsub", "fnmadd"])
def test_fma_inf_times_zero_plus_quiet_nan_is_invalid(fmt: int, variant: str) -> None:
    """'The fused multiply-add instructions must set the invalid operation exception flag
    when the multiplicands are inf and zero, even when the addend is a quiet NaN.'"""
    F = sf.FORMATS[fmt]
    fn = getattr(F, variant)
    inf = INF32 if fmt == 32 else INF64
    neg = 1 << (fmt - 1)
    for a, b in ((inf, 0), (0, inf), (inf | neg, 0), (0 | neg, inf)):
        assert fn(a, b, F.canonical_nan, sf.RNE) == (F.canonical_nan, sf.NV)
        assert fn(a, b, F.canonical_nan | neg | 7, sf.RTZ) == (F.canonical_nan, sf.NV)
    # A quiet NaN multiplicand with a finite other is quiet.
    one = ONE32 if fmt == 32 else ONE64
    assert fn(F.canonical_nan, 0, one, sf.RNE) == (F.canonical_nan, 0)


# --- Worked examples ----------------------------------------------------------------------


def test_division_and_square_root_specials() -> None:
    assert sf.f64_div(ONE64, 0, sf.RNE) == (INF64, sf.DZ)
    assert sf.f64_div(ONE64 | NEG64, 0, sf.RNE) == (INF64 | NEG64, sf.DZ)
    assert sf.f64_div(ONE64, NEG64, sf.RNE) == (INF64 | NEG64, sf.DZ)
    assert sf.f64_div(INF64, 0, sf.RNE) == (INF64, 0)  # an exact infinity: no DZ
    assert sf.f64_div(0, 0, sf.RNE) == (sf.CANONICAL_NAN64, sf.NV)
    assert sf.f64_div(INF64, INF64 | NEG64, sf.RNE) == (sf.CANONICAL_NAN64, sf.NV)
    assert sf.f32_div(ONE32, f(3.0), sf.RNE) == (f(1 / 3), sf.NX)
    assert sf.f64_sqrt(NEG64, sf.RNE) == (NEG64, 0)  # sqrt(-0) = -0
    assert sf.f64_sqrt(NEG64 | 1, sf.RNE) == (sf.CANONICAL_NAN64, sf.NV)
    assert sf.f64_sqrt(INF64 | NEG64, sf.RNE) == (sf.CANONICAL_NAN64, sf.NV)
    assert sf.f32_sqrt(f(2.0), sf.RTZ) == (0x3FB504F3, sf.NX)
    assert sf.f32_sqrt(f(2.0), sf.RUP) == (0x3FB504F4, sf.NX)
    assert sf.f64_sqrt(SNAN64, sf.RNE) == (sf.CANONICAL_NAN64, sf.NV)


def test_invalid_operations() -> None:
    assert sf.f64_add(INF64, INF64 | NEG64, sf.RNE) == (sf.CANONICAL_NAN64, sf.NV)
    assert sf.f64_sub(INF64, INF64, sf.RNE) == (sf.CANONICAL_NAN64, sf.NV)
    assert sf.f64_mul(INF64, NEG64, sf.RNE) == (sf.CANONICAL_NAN64, sf.NV)
    assert sf.f32_fmadd(INF32, ONE32, INF32 | NEG32, sf.RNE) == (sf.CANONICAL_NAN32, sf.NV)
    assert sf.f32_add(SNAN32, ONE32, sf.RNE) == (sf.CANONICAL_NAN32, sf.NV)
    assert sf.f32_add(QNAN32 | NEG32, ONE32, sf.RNE) == (sf.CANONICAL_NAN32, 0)


@pytest.mark.parametrize("rm", range(5))
def test_signs_of_exact_zeros(rm: int) -> None:
    """x + (-x) is +0 except when rounding down; like signs keep their sign."""
    zero = NEG64 if rm == sf.RDN else 0
    assert sf.f64_add(ONE64, ONE64 | NEG64, rm) == (zero, 0)
    assert sf.f64_sub(ONE64, ONE64, rm) == (zero, 0)
    assert sf.f64_add(0, NEG64, rm) == (zero, 0)
    assert sf.f64_add(NEG64, NEG64, rm) == (NEG64, 0)
    assert sf.f64_fmadd(ONE64, ONE64, ONE64 | NEG64, rm) == (zero, 0)
    assert sf.f64_fmadd(0, ONE64, NEG64, rm) == (zero, 0)
    assert sf.f64_fnmadd(0, ONE64, 0, rm) == (NEG64, 0)  # -(+0) - (+0) = -0
    assert sf.f64_fmsub(NEG64, ONE64, 0, rm) == (NEG64, 0)  # -0 - +0 = -0
    assert sf.f64_mul(NEG64, ONE64, rm) == (NEG64, 0)


@pytest.mark.parametrize(
    ("rm", "positive", "negative"),
    [
        (sf.RNE, INF64, INF64 | NEG64),
        (sf.RTZ, MAX64, MAX64 | NEG64),
        (sf.RDN, MAX64, INF64 | NEG64),
        (sf.RUP, INF64, MAX64 | NEG64),
        (sf.RMM, INF64, INF64 | NEG64),
    ],
)
def test_overflow(rm: int, positive: int, negative: int) -> None:
    """An overflowed result is infinity or the largest finite value, per the rounding
    direction; OF comes with NX."""
    assert sf.f64_mul(MAX64, d(2.0), rm) == (positive, sf.OF | sf.NX)
    assert sf.f64_mul(MAX64, d(-2.0), rm) == (negative, sf.OF | sf.NX)
    assert sf.f64_to_f32(MAX64, rm)[1] == sf.OF | sf.NX


def test_tininess_is_detected_after_rounding() -> None:
    """Products just below the smallest normal 2**-1022."""
    # (2**27-1)(2**27+1) * 2**-1076 = 2**-1022 - 2**-1076. Rounded to 53 bits with an
    # unbounded exponent it is a tie that goes to the even 2**-1022: not tiny, so a
    # normal result with NX only (tininess before rounding would also raise UF).
    a, b = d((2**27 - 1) * 2.0**-538), d((2**27 + 1) * 2.0**-538)
    assert sf.f64_mul(a, b, sf.RNE) == (MIN_NORMAL64, sf.NX)
    assert sf.f64_mul(a, b, sf.RTZ) == (MAX_SUB64, sf.NX | sf.UF)
    # (2 - 2**-52) * 2**-1023 = 2**-1022 - 2**-1075: 53 bits, so it stays below 2**-1022
    # unbounded: tiny, even though the subnormal rounding (a tie) gives 2**-1022.
    a, b = d(2.0 - 2.0**-52), 0x0008000000000000
    assert sf.f64_mul(a, b, sf.RNE) == (MIN_NORMAL64, sf.NX | sf.UF)
    # Exact tiny results raise nothing.
    assert sf.f64_mul(d(0.5), 1, sf.RNE) == (0, sf.NX | sf.UF)  # 2**-1075: a tie to 0
    assert sf.f64_mul(d(0.5), 2, sf.RNE) == (1, 0)
    assert sf.f64_add(1, 1, sf.RNE) == (2, 0)


def test_classify() -> None:
    F = sf.F32
    cases = {
        INF32 | NEG32: 0,
        f(-1.0): 1,
        NEG32 | 1: 2,
        NEG32: 3,
        0: 4,
        0x007FFFFF: 5,
        0x00800000: 6,
        INF32: 7,
        SNAN32: 8,
        sf.CANONICAL_NAN32 | NEG32: 9,
    }
    for bits, bit in cases.items():
        assert F.classify(bits) == 1 << bit, hex(bits)
    assert sf.f64_classify(SNAN64 | NEG64) == 0x100


@pytest.mark.parametrize("rm", range(5))
def test_float_to_int_saturation(rm: int) -> None:
    """The RISC-V table of invalid conversions: NaN and +inf (and too large) give the
    largest integer, -inf (and too small) the smallest; NV, never NX."""
    nan = sf.CANONICAL_NAN64
    m32, m64 = (1 << 32) - 1, (1 << 64) - 1
    table = [
        (sf.f64_to_i32, nan, 2**31 - 1),
        (sf.f64_to_i32, INF64, 2**31 - 1),
        (sf.f64_to_i32, INF64 | NEG64, 2**31),
        (sf.f64_to_i32, d(2.0**31), 2**31 - 1),
        (sf.f64_to_i32, d(-(2.0**31) - 1), 2**31),
        (sf.f64_to_u32, nan, m32),
        (sf.f64_to_u32, INF64 | NEG64, 0),
        (sf.f64_to_u32, d(2.0**32), m32),
        (sf.f64_to_u32, d(-2.0), 0),
        (sf.f64_to_i64, SNAN64 | NEG64, 2**63 - 1),
        (sf.f64_to_i64, d(2.0**63), 2**63 - 1),
        (sf.f64_to_i64, INF64 | NEG64, 2**63),
        (sf.f64_to_u64, d(2.0**64), m64),
        (sf.f64_to_u64, d(-1.0), 0),
        (sf.f32_to_u64, sf.CANONICAL_NAN32, m64),
        (sf.f32_to_i64, f(-(2.0**70)), 2**63),
    ]
    for fn, bits, want in table:
        assert fn(bits, rm) == (want, sf.NV), (fn.__name__, hex(bits))
    # In range: exact, or inexact with NX (and -0.x to unsigned is not invalid).
    assert sf.f64_to_i32(d(-(2.0**31)), rm) == (2**31, 0)
    assert sf.f64_to_u64(d(2.0**64 - 2048), rm) == (2**64 - 2048, 0)
    assert sf.f64_to_u32(d(-0.25), rm) == ((0, sf.NX) if rm != sf.RDN else (0, sf.NV))
    assert sf.f64_to_i64(d(2.5), rm) == ([2, 2, 2, 3, 3][rm], sf.NX)
    assert sf.f64_to_i64(d(-2.5), rm) == ([-2, -2, -3, -2, -3][rm] & m64, sf.NX)


def test_int_to_float() -> None:
    assert sf.u64_to_f64((1 << 64) - 1, sf.RNE) == (d(2.0**64), sf.NX)
    assert sf.u64_to_f64((1 << 64) - 1, sf.RTZ) == (d(2.0**64 - 2048), sf.NX)
    assert sf.i64_to_f64(1 << 63, sf.RNE) == (d(-(2.0**63)), 0)  # the low 64 bits, signed
    assert sf.i32_to_f32(0xFFFFFFFF, sf.RNE) == (f(-1.0), 0)
    assert sf.i32_to_f32(0x1_FFFFFFFF, sf.RNE) == (f(-1.0), 0)  # only the low 32 bits
    assert sf.u32_to_f32(0xFFFFFFFF, sf.RNE) == (f(2.0**32), sf.NX)
    assert sf.i32_to_f64(0x80000000, sf.RUP) == (d(-(2.0**31)), 0)
    assert sf.i64_to_f32(0, sf.RDN) == (0, 0)  # +0 in every mode
    assert sf.i32_to_f32(2**24 + 1, sf.RUP) == (f(2.0**24 + 2), sf.NX)


def test_format_conversions() -> None:
    assert sf.f32_to_f64(ONE32) == (ONE64, 0)
    assert sf.f32_to_f64(1) == (d(2.0**-149), 0)  # a subnormal becomes normal
    assert sf.f32_to_f64(SNAN32) == (sf.CANONICAL_NAN64, sf.NV)
    assert sf.f32_to_f64(QNAN32 | NEG32) == (sf.CANONICAL_NAN64, 0)
    assert sf.f32_to_f64(INF32 | NEG32) == (INF64 | NEG64, 0)
    assert sf.f64_to_f32(SNAN64, sf.RNE) == (sf.CANONICAL_NAN32, sf.NV)
    assert sf.f64_to_f32(d(1 / 3), sf.RNE) == (f(1 / 3), sf.NX)
    assert sf.f64_to_f32(d(2.0**-150), sf.RNE) == (0, sf.NX | sf.UF)  # a tie to 0
    assert sf.f64_to_f32(d(2.0**-150), sf.RUP) == (1, sf.NX | sf.UF)
    assert sf.f64_to_f32(d(-(2.0**-126)), sf.RNE) == (NEG32 | 0x00800000, 0)


# --- The host's binary64 (IEEE, round to nearest even) and exact rationals ---------------

finite64 = st.floats(allow_nan=False, allow_infinity=False, width=64)
finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


def _value(bits: int, fmt: int) -> Fraction:
    return (
        Fraction(struct.unpack("<d", struct.pack("<Q", bits))[0])
        if fmt == 64
        else Fraction(struct.unpack("<f", struct.pack("<I", bits))[0])
    )


@settings(max_examples=300, deadline=None)
@given(x=finite64, y=finite64)
def test_binary64_round_to_nearest_even_matches_host(x: float, y: float) -> None:
    a, b = d(x), d(y)
    for ours, host, exact in (
        (sf.f64_add(a, b, sf.RNE), x + y, Fraction(x) + Fraction(y)),
        (sf.f64_sub(a, b, sf.RNE), x - y, Fraction(x) - Fraction(y)),
        (sf.f64_mul(a, b, sf.RNE), x * y, Fraction(x) * Fraction(y)),
    ):
        if math.isinf(host):
            assert ours == (d(host), sf.OF | sf.NX)
            continue
        assert ours[0] == d(host)
        assert bool(ours[1] & sf.NX) == (Fraction(host) != exact)
    if y != 0:
        q = x / y
        assert sf.f64_div(a, b, sf.RNE)[0] == d(q)
    if x >= 0:
        assert sf.f64_sqrt(a, sf.RNE)[0] == d(math.sqrt(x))


@settings(max_examples=300, deadline=None)
@given(x=finite32, y=finite32, rm=st.integers(0, 4))
def test_inexact_flag_is_exactness(x: float, y: float, rm: int) -> None:
    """NX is set exactly when the rounded result differs from the exact one (finite
    results); the result is within one ulp, on the side the rounding mode says."""
    a, b = f(x), f(y)
    for bits, flags, exact in (
        (*sf.f32_add(a, b, rm), Fraction(x) + Fraction(y)),
        (*sf.f32_mul(a, b, rm), Fraction(x) * Fraction(y)),
        (*sf.f32_fmadd(a, b, a, rm), Fraction(x) * Fraction(y) + Fraction(x)),
    ):
        if flags & sf.OF:
            continue
        got = _value(bits, 32)
        assert bool(flags & sf.NX) == (got != exact)
        if rm == sf.RTZ:
            assert abs(got) <= abs(exact)
        elif rm == sf.RDN:
            assert got <= exact
        elif rm == sf.RUP:
            assert got >= exact
