"""Runtime values: how the evaluator represents each type, and their text forms.

Every value is a Python ``int``: integers are unsigned, modulo 2^bits; floats and v128 are their
bit patterns. ``parse_value`` and ``format_value`` convert to and from the text used on ``; run:``
lines and by ``vm ir run``.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

from .types import F32, F64, Type

# (mantissa bits including the hidden one, minimum normal exponent, maximum exponent, width)
_FORMATS = {32: (24, -126, 127), 64: (53, -1022, 1023)}

CANONICAL_NAN = {32: 0x7FC00000, 64: 0x7FF8000000000000}


def to_signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def bits_to_float(bits: int, type: Type) -> float:
    """The Python float a bit pattern of ``type`` (f32 or f64) denotes; NaNs stay NaN."""
    if type.bits == 32:
        return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]
    return struct.unpack("<d", struct.pack("<Q", bits & 0xFFFFFFFFFFFFFFFF))[0]


def float_to_bits(x: float, type: Type) -> int:
    """The bit pattern of ``x`` rounded to ``type`` (nearest, ties to even); NaN -> canonical."""
    if math.isnan(x):
        return CANONICAL_NAN[type.bits]
    if type.bits == 32:
        try:
            return struct.unpack("<I", struct.pack("<f", x))[0]
        except OverflowError:  # finite double that rounds to infinity in f32
            return 0xFF800000 if x < 0 else 0x7F800000
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def is_nan_bits(bits: int, type: Type) -> bool:
    if type.bits == 32:
        return (bits & 0x7F800000) == 0x7F800000 and (bits & 0x007FFFFF) != 0
    return (bits & 0x7FF0000000000000) == 0x7FF0000000000000 and (bits & 0xFFFFFFFFFFFFF) != 0


def round_exact(value: Fraction | int, type: Type, negative_zero: bool = False) -> int:
    """Round an exact rational to ``type`` (nearest, ties to even) and give its bit pattern.

    Used where a double rounding through Python's float would be wrong: fma, and integers too
    wide for f32. ``negative_zero`` picks -0 when ``value`` is zero.
    """
    mant, emin, emax = _FORMATS[type.bits]
    sign = 1 << (type.bits - 1)
    exp_bits = type.bits - mant
    if value == 0:
        return sign if negative_zero else 0
    neg = value < 0
    a = Fraction(-value if neg else value)
    # find e with 2^e <= a < 2^(e+1)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    e = max(e, emin)  # subnormals share the minimum exponent's quantum
    quantum = Fraction(2) ** (e - (mant - 1))
    q, r = divmod(a, quantum)
    q = int(q)
    half = quantum / 2
    if r > half or (r == half and q & 1):
        q += 1
    if q >= (1 << mant):  # rounding carried into the next binade
        q >>= 1
        e += 1
    if e > emax:
        return (sign if neg else 0) | (((1 << exp_bits) - 1) << (mant - 1))
    if q < (1 << (mant - 1)):  # subnormal (or zero after rounding)
        biased = 0
    else:
        biased = e + ((1 << (exp_bits - 1)) - 1)
        q -= 1 << (mant - 1)
    return (sign if neg else 0) | (biased << (mant - 1)) | q


def int_literal(text: str) -> int:
    return int(text, 0)


def parse_float_bits(text: str, type: Type) -> int:
    """``1.5``, ``-0.0``, ``inf``, ``-inf``, ``nan`` (canonical) or ``nan:0x7ff4...`` (exact)."""
    t = text.strip().lower()
    if t.startswith(("nan:", "-nan:")):
        bits = int(t.split(":", 1)[1], 16)
        if not is_nan_bits(bits, type):
            raise ValueError(f"{text!r} is not a NaN bit pattern of {type}")
        return bits
    if t in ("nan", "+nan"):
        return CANONICAL_NAN[type.bits]
    if t == "-nan":
        return CANONICAL_NAN[type.bits] | (1 << (type.bits - 1))
    if t.startswith(("0x", "-0x")) and "." not in t and "p" not in t:
        raise ValueError(f"{text!r}: write a float as a decimal or nan:0x<bits>")
    return float_to_bits(float(t), type)


def format_float_bits(bits: int, type: Type) -> str:
    """The shortest text that ``parse_float_bits`` reads back to exactly ``bits``."""
    bits &= type.mask
    if is_nan_bits(bits, type):
        return f"nan:0x{bits:0{type.bits // 4}x}"
    x = bits_to_float(bits, type)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if type.bits == 64:
        return repr(x)
    for precision in range(1, 10):
        text = f"{x:.{precision}g}"
        if float_to_bits(float(text), F32) == bits:
            break
    if not any(c in text for c in ".en"):
        text += ".0"
    return text


def format_int(value: int, type: Type) -> str:
    """Small values in signed decimal, others in unsigned hex."""
    value &= type.mask
    if type.bits == 1:
        return str(value)
    s = to_signed(value, type.bits)
    if -(1 << 16) < s < (1 << 16):
        return str(s)
    return hex(value)


def parse_value(text: str, type: Type) -> int:
    """A run-time value of ``type`` from its text: integers in any base (negative wraps),
    floats as ``parse_float_bits`` reads them, v128 as an integer."""
    if type.is_float:
        return parse_float_bits(text, type)
    value = int(text, 0)
    if not -(1 << (type.bits - 1)) <= value < (1 << type.bits) and type.bits > 1:
        raise ValueError(f"{text} does not fit {type}")
    if type.bits == 1 and value not in (0, 1, -1):
        raise ValueError(f"{text} does not fit i1")
    return value & type.mask


def format_value(value: int, type: Type) -> str:
    if type.is_float:
        return format_float_bits(value, type)
    return format_int(value, type)


__all__ = [
    "CANONICAL_NAN", "F32", "F64", "bits_to_float", "float_to_bits", "format_float_bits",
    "format_int", "format_value", "is_nan_bits", "parse_float_bits", "parse_value",
    "round_exact", "to_signed",
]
