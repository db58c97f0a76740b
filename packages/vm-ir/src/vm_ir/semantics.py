"""The meaning of every pure op, on run-time values (see ``values``: unsigned ints, floats as
bit patterns). The evaluator and constant folding both use this table, so they cannot disagree.

Each entry is ``fn(T, args, imms, arg_types) -> int``. A case the spec leaves undefined raises
``UndefinedBehavior``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

from .types import F32, F64, Type
from .values import (
    CANONICAL_NAN,
    bits_to_float,
    float_to_bits,
    is_nan_bits,
    round_exact,
    to_signed,
)


class UndefinedBehavior(Exception):
    """The program did something docs/ir.md calls undefined (division by zero, ...)."""


Semantics = Callable[[Type, list[int], dict, list[Type]], int]
SEMANTICS: dict[str, Semantics] = {}


def _def(name: str) -> Callable[[Semantics], Semantics]:
    def register(fn: Semantics) -> Semantics:
        SEMANTICS[name] = fn
        return fn

    return register


def _binop(name: str, fn: Callable[[int, int, Type], int]) -> None:
    SEMANTICS[name] = lambda t, a, imms, ts: fn(a[0], a[1], t) & t.mask


def _unop(name: str, fn: Callable[[int, Type], int]) -> None:
    SEMANTICS[name] = lambda t, a, imms, ts: fn(a[0], t) & t.mask


def _s(x: int, t: Type) -> int:
    return to_signed(x, t.bits)


# --- integers ----------------------------------------------------------------------------------
SEMANTICS["iconst"] = lambda t, a, imms, ts: imms["imm"] & t.mask
SEMANTICS["fconst"] = lambda t, a, imms, ts: imms["imm"] & t.mask
SEMANTICS["copy"] = lambda t, a, imms, ts: a[0]
SEMANTICS["select"] = lambda t, a, imms, ts: a[1] if a[0] & 1 else a[2]
_binop("add", lambda x, y, t: x + y)
_binop("sub", lambda x, y, t: x - y)
_binop("mul", lambda x, y, t: x * y)
_binop("umulh", lambda x, y, t: (x * y) >> t.bits)
_binop("smulh", lambda x, y, t: (_s(x, t) * _s(y, t)) >> t.bits)
_binop("and", lambda x, y, t: x & y)
_binop("or", lambda x, y, t: x | y)
_binop("xor", lambda x, y, t: x ^ y)
_binop("shl", lambda x, y, t: x << (y % t.bits))
_binop("lshr", lambda x, y, t: x >> (y % t.bits))
_binop("ashr", lambda x, y, t: _s(x, t) >> (y % t.bits))
_binop("rotl", lambda x, y, t: (x << (y % t.bits)) | (x >> (t.bits - y % t.bits)))
_binop("rotr", lambda x, y, t: (x >> (y % t.bits)) | (x << (t.bits - y % t.bits)))
_binop("smin", lambda x, y, t: x if _s(x, t) <= _s(y, t) else y)
_binop("smax", lambda x, y, t: x if _s(x, t) >= _s(y, t) else y)
_binop("umin", lambda x, y, t: min(x, y))
_binop("umax", lambda x, y, t: max(x, y))
_unop("neg", lambda x, t: -x)
_unop("not", lambda x, t: ~x)
_unop("clz", lambda x, t: t.bits - x.bit_length())
_unop("ctz", lambda x, t: (x & -x).bit_length() - 1 if x else t.bits)
_unop("popcnt", lambda x, t: x.bit_count())
_unop("bswap", lambda x, t: int.from_bytes(x.to_bytes(t.bytes, "little"), "big"))


def _divisor(y: int) -> None:
    if y == 0:
        raise UndefinedBehavior("division by zero")


def _signed_overflow(x: int, y: int, t: Type) -> None:
    if _s(x, t) == -(1 << (t.bits - 1)) and _s(y, t) == -1:
        raise UndefinedBehavior("signed division overflow (minimum / -1)")


def _sdiv(x: int, y: int, t: Type) -> int:
    _divisor(y)
    _signed_overflow(x, y, t)
    a, b = _s(x, t), _s(y, t)
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _srem(x: int, y: int, t: Type) -> int:
    q = _sdiv(x, y, t)
    return _s(x, t) - _s(y, t) * q


def _udiv(x: int, y: int, t: Type) -> int:
    _divisor(y)
    return x // y


def _urem(x: int, y: int, t: Type) -> int:
    _divisor(y)
    return x % y


_binop("udiv", _udiv)
_binop("sdiv", _sdiv)
_binop("urem", _urem)
_binop("srem", _srem)

_ICMP = {
    "eq": lambda x, y, t: x == y,
    "ne": lambda x, y, t: x != y,
    "ult": lambda x, y, t: x < y,
    "ule": lambda x, y, t: x <= y,
    "ugt": lambda x, y, t: x > y,
    "uge": lambda x, y, t: x >= y,
    "slt": lambda x, y, t: _s(x, t) < _s(y, t),
    "sle": lambda x, y, t: _s(x, t) <= _s(y, t),
    "sgt": lambda x, y, t: _s(x, t) > _s(y, t),
    "sge": lambda x, y, t: _s(x, t) >= _s(y, t),
}


@_def("icmp")
def _icmp(t: Type, a: list[int], imms: dict, ts: list[Type]) -> int:
    return int(_ICMP[imms["cond"]](a[0], a[1], ts[0]))


# --- conversions -------------------------------------------------------------------------------
SEMANTICS["zext"] = lambda t, a, imms, ts: a[0]
SEMANTICS["sext"] = lambda t, a, imms, ts: to_signed(a[0], ts[0].bits) & t.mask
SEMANTICS["trunc"] = lambda t, a, imms, ts: a[0] & t.mask
SEMANTICS["bitcast"] = lambda t, a, imms, ts: a[0] & t.mask


def _float_to_int(t: Type, a: list[int], ts: list[Type], signed: bool) -> int:
    x = bits_to_float(a[0], ts[0])
    if math.isnan(x):
        return 0
    lo, hi = (-(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1) if signed else (0, t.mask)
    if math.isinf(x):
        return (hi if x > 0 else lo) & t.mask
    return max(lo, min(hi, math.trunc(x))) & t.mask


SEMANTICS["fptosi"] = lambda t, a, imms, ts: _float_to_int(t, a, ts, True)
SEMANTICS["fptoui"] = lambda t, a, imms, ts: _float_to_int(t, a, ts, False)
SEMANTICS["sitofp"] = lambda t, a, imms, ts: round_exact(to_signed(a[0], ts[0].bits), t)
SEMANTICS["uitofp"] = lambda t, a, imms, ts: round_exact(a[0], t)


def _nan_or(bits: int, src: Type, t: Type, fn: Callable[[float], float]) -> int:
    if is_nan_bits(bits, src):
        return CANONICAL_NAN[t.bits]
    return float_to_bits(fn(bits_to_float(bits, src)), t)


SEMANTICS["fpext"] = lambda t, a, imms, ts: _nan_or(a[0], F32, F64, float)
SEMANTICS["fptrunc"] = lambda t, a, imms, ts: _nan_or(a[0], F64, F32, float)

# --- floating point ----------------------------------------------------------------------------


def _fdiv(x: float, y: float) -> float:
    if y == 0.0:
        if x == 0.0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def _fsqrt(x: float) -> float:
    if math.isnan(x) or (x < 0.0):
        return math.nan
    return math.sqrt(x)


def _float_binop(name: str, fn: Callable[[float, float], float]) -> None:
    def sem(t: Type, a: list[int], imms: dict, ts: list[Type]) -> int:
        x, y = bits_to_float(a[0], t), bits_to_float(a[1], t)
        return float_to_bits(fn(x, y), t)

    SEMANTICS[name] = sem


_float_binop("fadd", lambda x, y: x + y)
_float_binop("fsub", lambda x, y: x - y)
_float_binop("fmul", lambda x, y: x * y)
_float_binop("fdiv", _fdiv)
SEMANTICS["fsqrt"] = lambda t, a, imms, ts: float_to_bits(_fsqrt(bits_to_float(a[0], t)), t)
SEMANTICS["fneg"] = lambda t, a, imms, ts: a[0] ^ (1 << (t.bits - 1))
SEMANTICS["fabs"] = lambda t, a, imms, ts: a[0] & ~(1 << (t.bits - 1)) & t.mask


def _sign(x: float) -> bool:
    return math.copysign(1.0, x) < 0


@_def("fma")
def _fma(t: Type, a: list[int], imms: dict, ts: list[Type]) -> int:
    x, y, z = (bits_to_float(v, t) for v in a)
    if math.isnan(x) or math.isnan(y) or math.isnan(z):
        return CANONICAL_NAN[t.bits]
    if math.isinf(x) or math.isinf(y):
        if x == 0.0 or y == 0.0:
            return CANONICAL_NAN[t.bits]  # inf * 0
        product = math.copysign(math.inf, 1.0 if _sign(x) == _sign(y) else -1.0)
        if math.isinf(z) and _sign(z) != _sign(product):
            return CANONICAL_NAN[t.bits]  # inf - inf
        return float_to_bits(product, t)
    if math.isinf(z):
        return float_to_bits(z, t)
    exact = Fraction(x) * Fraction(y) + Fraction(z)
    product_negative = _sign(x) != _sign(y)
    both_negative_zero = (x == 0.0 or y == 0.0) and z == 0.0 and product_negative and _sign(z)
    return round_exact(exact, t, negative_zero=bool(both_negative_zero))


def _minmax(want_min: bool) -> Semantics:
    def sem(t: Type, a: list[int], imms: dict, ts: list[Type]) -> int:
        xn, yn = is_nan_bits(a[0], t), is_nan_bits(a[1], t)
        if xn and yn:
            return CANONICAL_NAN[t.bits]
        if xn:
            return a[1]
        if yn:
            return a[0]
        x, y = bits_to_float(a[0], t), bits_to_float(a[1], t)
        if x == y:  # equal, or zeros of either sign: min prefers -0, max +0
            if want_min:
                return a[0] if _sign(x) else a[1]
            return a[1] if _sign(x) else a[0]
        return a[0] if (x < y) == want_min else a[1]

    return sem


SEMANTICS["fmin"] = _minmax(True)
SEMANTICS["fmax"] = _minmax(False)

_FCMP = {
    "oeq": lambda x, y: x == y, "one": lambda x, y: x < y or x > y,
    "olt": lambda x, y: x < y, "ole": lambda x, y: x <= y,
    "ogt": lambda x, y: x > y, "oge": lambda x, y: x >= y,
}


@_def("fcmp")
def _fcmp(t: Type, a: list[int], imms: dict, ts: list[Type]) -> int:
    ft = ts[0]
    x, y = bits_to_float(a[0], ft), bits_to_float(a[1], ft)
    cond = imms["cond"]
    unordered = math.isnan(x) or math.isnan(y)
    if cond == "ord":
        return int(not unordered)
    if cond == "uno":
        return int(unordered)
    if cond.startswith("o"):
        return int(not unordered and _FCMP[cond](x, y))
    # u-conditions: true when unordered, else the ordered comparison
    return int(unordered or _FCMP["o" + cond[1:]](x, y))
