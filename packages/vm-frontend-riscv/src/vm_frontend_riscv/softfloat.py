"""Exact IEEE 754 binary32/binary64 arithmetic with the RISC-V F/D semantics.

The RISC-V lifter calls these helpers for every F/D instruction whose result the
host cannot be trusted to compute (rounding modes other than the host's, exact
exception flags, RISC-V NaN rules). Every function takes and returns **raw bit
patterns** (Python ``int``) and returns ``(result, fflags)``; nothing here keeps
state, reads ``fcsr`` or raises on guest data::

    >>> from vm_frontend_riscv import softfloat as sf
    >>> sf.f64_add(0x3FF0000000000000, 0x3CA0000000000000, sf.RNE)  # 1 + 2**-53
    (4607182418800017408, 1)
    >>> sf.f32_div(0x3F800000, 0, sf.RNE)  # 1 / +0
    (2139095040, 8)

Conventions
-----------
- ``rm`` is a *static* RISC-V rounding mode, 0..4 (:data:`RNE`, :data:`RTZ`,
  :data:`RDN`, :data:`RUP`, :data:`RMM`). The caller resolves ``DYN`` (7) with
  :func:`resolve_rm`, which also says when an encoding is illegal (5, 6, or
  ``DYN`` with ``frm`` 5..7): then the instruction raises an illegal-instruction
  exception and no helper is called.
- fflags are the RISC-V bits: :data:`NX` 1, :data:`UF` 2, :data:`OF` 4,
  :data:`DZ` 8, :data:`NV` 16. The caller ORs them into ``fflags``.
- Single-precision helpers (``f32_*``) take and return **32-bit** patterns. The
  caller reads an F register with :func:`unbox_f32` (a value that is not
  properly NaN-boxed reads as the canonical NaN) and writes one with
  :func:`box_f32`.
- Every NaN an arithmetic operation produces is the canonical NaN
  (:data:`CANONICAL_NAN32` ``0x7fc00000``, :data:`CANONICAL_NAN64`
  ``0x7ff8000000000000``); NaN payloads never propagate. ``NV`` is raised for
  signaling NaN operands and for invalid operations.
- Tininess is detected *after* rounding (as RISC-V requires), in the IEEE sense:
  a nonzero result is tiny when rounding the exact value to the format's
  precision with an *unbounded* exponent gives a magnitude below the smallest
  normal. ``UF`` is raised only for a tiny *and* inexact result. ``OF`` always
  comes with ``NX``.

Operations (``F`` is ``f32`` or ``f64``)
----------------------------------------
``F_add(a, b, rm)``, ``F_sub``, ``F_mul``, ``F_div``, ``F_sqrt(a, rm)``;
``F_fmadd(a, b, c, rm)`` = a*b+c, ``F_fmsub`` = a*b-c, ``F_fnmsub`` = -(a*b)+c,
``F_fnmadd`` = -(a*b)-c, each with a single rounding (``inf*0`` raises ``NV``
even when ``c`` is a quiet NaN); ``F_min(a, b)``, ``F_max`` (RISC-V F/D 2.2:
IEEE 754-2019 minimumNumber/maximumNumber, -0 < +0, ``NV`` only for signaling
NaNs, two NaNs give the canonical NaN); ``F_eq``, ``F_lt``, ``F_le`` return
``(0 or 1, fflags)`` (``feq`` is quiet, ``flt``/``fle`` signal on any NaN);
``F_classify(a)`` returns the 10-bit ``fclass`` mask (no flags);
``F_sgnj``, ``F_sgnjn``, ``F_sgnjx`` (bit operations, no flags).

Conversions: ``F_to_i32(a, rm)``, ``F_to_u32``, ``F_to_i64``, ``F_to_u64`` return
the result's *unsigned* two's-complement pattern of that width (``fcvt.w.s``
and ``fcvt.wu.s`` write it **sign-extended** from bit 31 to XLEN; the caller
does that). Out-of-range values saturate as RISC-V says (NaN and +inf and
too-large values give the largest integer, -inf and too-small ones the
smallest, 0 for unsigned) and raise ``NV`` without ``NX``; otherwise ``NX``
marks an inexact result. ``i32_to_F(x, rm)``, ``u32_to_F``, ``i64_to_F``,
``u64_to_F`` read the low 32/64 bits of ``x`` as a signed or unsigned integer.
``f32_to_f64(a, rm)`` is exact (``rm`` is ignored), ``f64_to_f32(a, rm)`` rounds.
Instructions that are exact whatever the rounding mode (``fcvt.d.s``,
``fcvt.d.w[u]``) still decode their ``rm`` field: a reserved one is an illegal
instruction, as for every other instruction with an ``rm`` field.

:data:`F32` and :data:`F64` bundle one format's functions and constants for
callers that pick a format at run time (``FORMATS[32].add``).

Checked against unicorn's RISC-V CPU (QEMU's softfloat) bit for bit, results and
flags, in ``tests/test_softfloat_unicorn.py``. Unicorn 2.1.4 departs from the spec
in four places, where this module follows the spec: it does not NaN-box
single-precision results, does not check the boxing of single-precision operands,
gives the canonical NaN for fmin/fmax with one signaling NaN (the pre-2.2 minNum),
and does not raise NV for inf*0 + quiet NaN in the fused multiply-adds.

Implementation: every finite operand is unpacked to an integer significand
``m`` and the exponent ``q`` of its least significant bit (value = m * 2**q);
the exact result of an operation is formed with integer arithmetic (a sticky
bit stands for a nonzero remainder of a division or square root) and one
routine rounds and packs it. No floating point is used anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import isqrt

__all__ = [
    "CANONICAL_NAN32",
    "CANONICAL_NAN64",
    "DYN",
    "DZ",
    "F32",
    "F64",
    "FORMATS",
    "NV",
    "NX",
    "OF",
    "RDN",
    "RMM",
    "RNE",
    "RTZ",
    "RUP",
    "UF",
    "Format",
    "_round32",
    "_round64",
    "_unpack32",
    "_unpack64",
    "box_f32",
    "f32_add",
    "f32_classify",
    "f32_div",
    "f32_eq",
    "f32_fmadd",
    "f32_fmsub",
    "f32_fnmadd",
    "f32_fnmsub",
    "f32_le",
    "f32_lt",
    "f32_max",
    "f32_min",
    "f32_mul",
    "f32_sgnj",
    "f32_sgnjn",
    "f32_sgnjx",
    "f32_sqrt",
    "f32_sub",
    "f32_to_f64",
    "f32_to_i32",
    "f32_to_i64",
    "f32_to_u32",
    "f32_to_u64",
    "f64_add",
    "f64_classify",
    "f64_div",
    "f64_eq",
    "f64_fmadd",
    "f64_fmsub",
    "f64_fnmadd",
    "f64_fnmsub",
    "f64_le",
    "f64_lt",
    "f64_max",
    "f64_min",
    "f64_mul",
    "f64_sgnj",
    "f64_sgnjn",
    "f64_sgnjx",
    "f64_sqrt",
    "f64_sub",
    "f64_to_f32",
    "f64_to_i32",
    "f64_to_i64",
    "f64_to_u32",
    "f64_to_u64",
    "i32_to_f32",
    "i32_to_f64",
    "i64_to_f32",
    "i64_to_f64",
    "resolve_rm",
    "u32_to_f32",
    "u32_to_f64",
    "u64_to_f32",
    "u64_to_f64",
    "unbox_f32",
]

# --- RISC-V encodings ---------------------------------------------------------

RNE = 0  #: round to nearest, ties to even
RTZ = 1  #: round towards zero
RDN = 2  #: round down (towards -inf)
RUP = 3  #: round up (towards +inf)
RMM = 4  #: round to nearest, ties to max magnitude
DYN = 7  #: use the rounding mode in ``frm`` (instruction encodings only)

NX = 1  #: inexact
UF = 2  #: underflow
OF = 4  #: overflow
DZ = 8  #: divide by zero
NV = 16  #: invalid operation

CANONICAL_NAN32 = 0x7FC00000
CANONICAL_NAN64 = 0x7FF8000000000000

_BOX = 0xFFFFFFFF00000000


def resolve_rm(rm: int, frm: int) -> int | None:
    """The static rounding mode an instruction uses, or None when it is illegal.

    ``rm`` is the instruction's 3-bit field and ``frm`` the CSR's. ``DYN`` (7)
    selects ``frm``; 5 and 6 are reserved, and so are ``frm`` values 5..7.
    """
    if rm == DYN:
        rm = frm
    return rm if 0 <= rm <= RMM else None


def unbox_f32(reg: int) -> int:
    """The binary32 value an F register holds: its low 32 bits if the upper 32 are all
    ones (a properly NaN-boxed value), else the canonical NaN."""
    if reg & _BOX == _BOX:
        return reg & 0xFFFFFFFF
    return CANONICAL_NAN32


def box_f32(bits: int) -> int:
    """The 64-bit F register value holding binary32 ``bits`` (upper 32 bits all ones)."""
    return _BOX | (bits & 0xFFFFFFFF)


# --- One format -----------------------------------------------------------------

Binary = Callable[[int, int, int], tuple[int, int]]
Ternary = Callable[[int, int, int, int], tuple[int, int]]
Unary = Callable[[int, int], tuple[int, int]]
Compare = Callable[[int, int], tuple[int, int]]
Sign = Callable[[int, int], int]


@dataclass(frozen=True)
class Format:
    """The helpers and constants of one IEEE binary format (``F32``, ``F64``)."""

    width: int
    fraction_bits: int
    canonical_nan: int
    add: Binary
    sub: Binary
    mul: Binary
    div: Binary
    sqrt: Unary
    fmadd: Ternary
    fmsub: Ternary
    fnmsub: Ternary
    fnmadd: Ternary
    min: Compare
    max: Compare
    eq: Compare
    lt: Compare
    le: Compare
    classify: Callable[[int], int]
    sgnj: Sign
    sgnjn: Sign
    sgnjx: Sign
    to_i32: Unary
    to_u32: Unary
    to_i64: Unary
    to_u64: Unary
    from_i32: Unary
    from_u32: Unary
    from_i64: Unary
    from_u64: Unary
    #: ``round(sign, m, e, rm)``: m * 2**e (m > 0, sign 0 or the sign bit) rounded.
    round_pack: Callable[[int, int, int, int], tuple[int, int]]
    #: ``unpack(bits)`` of a finite value: ``(sign bit, m, q)``, value = m * 2**q.
    unpack: Callable[[int], tuple[int, int, int]]


def _build(width: int, fbits: int) -> Format:
    ebits = width - 1 - fbits
    P = fbits + 1  # precision
    SIGN = 1 << (width - 1)
    ABS = SIGN - 1
    HIDDEN = 1 << fbits
    FMASK = HIDDEN - 1
    INF = ((1 << ebits) - 1) << fbits
    QBIT = 1 << (fbits - 1)
    CNAN = INF | QBIT
    MAXF = INF - 1  # largest finite magnitude
    BIAS = (1 << (ebits - 1)) - 1
    QMIN = 1 - BIAS - fbits  # exponent of the lsb of subnormals and of the smallest binade
    QMAX = (1 << ebits) - 3 + QMIN  # exponent of the lsb of the largest binade
    EMIN = QMIN + fbits  # exponent of the smallest normal (its msb)
    TOP = (1 << P) - 1  # a significand of all ones

    def _up(sign: int, odd: int, r: int, half: int, rm: int) -> bool:
        """Whether a nonzero remainder r (half = the weight of a half ulp) rounds up."""
        if rm == RNE:
            return r > half or (r == half and odd != 0)
        if rm == RTZ:
            return False
        if rm == RDN:
            return sign != 0
        if rm == RUP:
            return sign == 0
        return r >= half

    def _overflow(sign: int, rm: int) -> tuple[int, int]:
        if rm in (RNE, RMM) or (rm == RDN and sign) or (rm == RUP and not sign):
            return sign | INF, OF | NX
        return sign | MAXF, OF | NX

    def round_pack(sign: int, m: int, e: int, rm: int) -> tuple[int, int]:
        """m * 2**e (m > 0) with sign bit ``sign``, rounded per ``rm``."""
        n = m.bit_length()
        q = e + n - P
        if q < QMIN:
            q = QMIN
        sh = q - e
        if sh <= 0:
            if q > QMAX:
                return _overflow(sign, rm)
            return sign | (((q - QMIN) << fbits) + (m << -sh)), 0
        r = m & ((1 << sh) - 1)
        k = m >> sh
        if not r:
            if q > QMAX:
                return _overflow(sign, rm)
            return sign | (((q - QMIN) << fbits) + k), 0
        half = 1 << (sh - 1)
        if rm == RNE:
            up = r > half or (r == half and k & 1)
        else:
            up = _up(sign, k & 1, r, half, rm)
        if up:
            k += 1
            if k >> P:
                k >>= 1
                q += 1
        if q > QMAX:
            return _overflow(sign, rm)
        flags = NX
        t = e + n - 1  # exponent of the exact value's msb
        if t < EMIN:
            if t < EMIN - 1:
                flags = NX | UF
            else:
                # Just below the smallest normal: tiny unless rounding to P bits with an
                # unbounded exponent carries into 2**EMIN.
                su = sh - 1
                ru = m & ((1 << su) - 1) if su else 0
                if not (ru and m >> su == TOP and _up(sign, 1, ru, 1 << (su - 1), rm)):
                    flags = NX | UF
        return sign | (((q - QMIN) << fbits) + k), flags

    def unpack(x: int) -> tuple[int, int, int]:
        a = x & ABS
        e = a >> fbits
        if e:
            return x & SIGN, (a & FMASK) | HIDDEN, e - 1 + QMIN
        return x & SIGN, a, QMIN

    def _zero_sum(rm: int) -> tuple[int, int]:
        # The exact sum of two operands of opposite signs is zero: +0 except in RDN.
        return (SIGN if rm == RDN else 0), 0

    def _nan2(ax: int, ay: int) -> tuple[int, int]:
        # At least one operand is a NaN: the canonical NaN, NV if one is signaling.
        if (ax > INF and not ax & QBIT) or (ay > INF and not ay & QBIT):
            return CNAN, NV
        return CNAN, 0

    # --- add, sub -----------------------------------------------------------------

    def add(x: int, y: int, rm: int) -> tuple[int, int]:
        """x + y."""
        ax = x & ABS
        ay = y & ABS
        if ax >= INF or ay >= INF:
            if ax > INF or ay > INF:
                return _nan2(ax, ay)
            if ax == INF:
                if ay == INF and (x ^ y) & SIGN:
                    return CNAN, NV
                return x, 0
            return y, 0
        if not ay:
            if not ax and (x ^ y) & SIGN:
                return _zero_sum(rm)
            return x, 0
        if not ax:
            return y, 0
        ex = ax >> fbits
        ey = ay >> fbits
        if ex:
            mx = (ax & FMASK) | HIDDEN
            ex -= 1
        else:
            mx = ax
        if ey:
            my = (ay & FMASK) | HIDDEN
            ey -= 1
        else:
            my = ay
        if ex >= ey:
            mx <<= ex - ey
            e = ey
        else:
            my <<= ey - ex
            e = ex
        sx = x & SIGN
        if sx == y & SIGN:
            m = mx + my
        else:
            m = mx - my
            if m <= 0:
                if not m:
                    return _zero_sum(rm)
                m = -m
                sx ^= SIGN
        return round_pack(sx, m, e + QMIN, rm)

    def sub(x: int, y: int, rm: int) -> tuple[int, int]:
        """x - y."""
        return add(x, y ^ SIGN, rm)

    # --- mul, div, sqrt -------------------------------------------------------------

    def mul(x: int, y: int, rm: int) -> tuple[int, int]:
        """x * y."""
        ax = x & ABS
        ay = y & ABS
        sign = (x ^ y) & SIGN
        if ax >= INF or ay >= INF:
            if ax > INF or ay > INF:
                return _nan2(ax, ay)
            if not ax or not ay:
                return CNAN, NV
            return sign | INF, 0
        if not ax or not ay:
            return sign, 0
        ex = ax >> fbits
        ey = ay >> fbits
        if ex:
            mx = (ax & FMASK) | HIDDEN
            ex -= 1
        else:
            mx = ax
        if ey:
            my = (ay & FMASK) | HIDDEN
            ey -= 1
        else:
            my = ay
        return round_pack(sign, mx * my, ex + ey + 2 * QMIN, rm)

    def div(x: int, y: int, rm: int) -> tuple[int, int]:
        """x / y."""
        ax = x & ABS
        ay = y & ABS
        sign = (x ^ y) & SIGN
        if ax >= INF or ay >= INF:
            if ax > INF or ay > INF:
                return _nan2(ax, ay)
            if ax == ay:  # inf / inf
                return CNAN, NV
            return (sign | INF, 0) if ax == INF else (sign, 0)
        if not ay:
            if not ax:
                return CNAN, NV
            return sign | INF, DZ
        if not ax:
            return sign, 0
        ex = ax >> fbits
        ey = ay >> fbits
        if ex:
            mx = (ax & FMASK) | HIDDEN
            ex -= 1
        else:
            mx = ax
        if ey:
            my = (ay & FMASK) | HIDDEN
            ey -= 1
        else:
            my = ay
        # A quotient of P+2 or P+3 bits, then a sticky bit for a nonzero remainder.
        k = P + 2 + my.bit_length() - mx.bit_length()
        quo, rem = divmod(mx << k, my)
        e = ex - ey - k
        if rem:
            quo = (quo << 1) | 1
            e -= 1
        return round_pack(sign, quo, e, rm)

    def sqrt(x: int, rm: int) -> tuple[int, int]:
        """The square root of x."""
        ax = x & ABS
        if not ax:
            return x, 0  # sqrt(-0) is -0
        if ax > INF:
            return _nan2(ax, 0)
        if x & SIGN:
            return CNAN, NV
        if ax == INF:
            return x, 0
        _, m, q = unpack(x)
        if q & 1:
            m <<= 1
            q -= 1
        # A root of at least P+2 bits, then a sticky bit for a nonzero remainder.
        k = P + 2 - (m.bit_length() >> 1)
        m <<= 2 * k
        root = isqrt(m)
        e = (q >> 1) - k
        if root * root != m:
            root = (root << 1) | 1
            e -= 1
        return round_pack(0, root, e, rm)

    # --- fused multiply-add -----------------------------------------------------------

    def _fma(x: int, y: int, z: int, rm: int, negp: int, negc: int) -> tuple[int, int]:
        ax = x & ABS
        ay = y & ABS
        az = z & ABS
        sp = ((x ^ y) & SIGN) ^ negp
        sz = (z & SIGN) ^ negc
        if ax >= INF or ay >= INF or az >= INF:
            flags = 0
            for a in (ax, ay, az):
                if a > INF and not a & QBIT:
                    flags = NV
            # RISC-V: inf * 0 is invalid even when the addend is a quiet NaN.
            if (ax == INF and not ay) or (ay == INF and not ax):
                return CNAN, NV
            if ax > INF or ay > INF or az > INF:
                return CNAN, flags
            if ax == INF or ay == INF:
                if az == INF and sz != sp:
                    return CNAN, NV
                return sp | INF, 0
            return sz | INF, 0
        if not ax or not ay:
            if not az:
                if sp != sz:
                    return _zero_sum(rm)
                return sp, 0
            return sz | az, 0
        ex = ax >> fbits
        ey = ay >> fbits
        if ex:
            mx = (ax & FMASK) | HIDDEN
            ex -= 1
        else:
            mx = ax
        if ey:
            my = (ay & FMASK) | HIDDEN
            ey -= 1
        else:
            my = ay
        mp = mx * my
        ep = ex + ey + QMIN  # in units of 2**QMIN, as ez
        if not az:
            return round_pack(sp, mp, ep + QMIN, rm)
        ez = az >> fbits
        if ez:
            mz = (az & FMASK) | HIDDEN
            ez -= 1
        else:
            mz = az
        if ep >= ez:
            mp <<= ep - ez
            e = ez
        else:
            mz <<= ez - ep
            e = ep
        if sp == sz:
            m = mp + mz
        else:
            m = mp - mz
            if m <= 0:
                if not m:
                    return _zero_sum(rm)
                m = -m
                sp = sz
        return round_pack(sp, m, e + QMIN, rm)

    def fmadd(x: int, y: int, z: int, rm: int) -> tuple[int, int]:
        """x*y + z, rounded once."""
        return _fma(x, y, z, rm, 0, 0)

    def fmsub(x: int, y: int, z: int, rm: int) -> tuple[int, int]:
        """x*y - z, rounded once."""
        return _fma(x, y, z, rm, 0, SIGN)

    def fnmsub(x: int, y: int, z: int, rm: int) -> tuple[int, int]:
        """-(x*y) + z, rounded once."""
        return _fma(x, y, z, rm, SIGN, 0)

    def fnmadd(x: int, y: int, z: int, rm: int) -> tuple[int, int]:
        """-(x*y) - z, rounded once."""
        return _fma(x, y, z, rm, SIGN, SIGN)

    # --- min, max, compare, classify, sign injection -----------------------------------

    def _minmax(x: int, y: int, want_max: bool) -> tuple[int, int]:
        ax = x & ABS
        ay = y & ABS
        if ax > INF or ay > INF:
            flags = NV if (ax > INF and not ax & QBIT) or (ay > INF and not ay & QBIT) else 0
            if ax > INF:
                return (CNAN, flags) if ay > INF else (y, flags)
            return x, flags
        # A total order on non-NaNs with -0 < +0.
        kx = -ax - 1 if x & SIGN else ax
        ky = -ay - 1 if y & SIGN else ay
        if want_max:
            return (x if kx >= ky else y), 0
        return (x if kx <= ky else y), 0

    def fmin(x: int, y: int) -> tuple[int, int]:
        """minimumNumber(x, y) (RISC-V fmin, F/D 2.2)."""
        return _minmax(x, y, False)

    def fmax(x: int, y: int) -> tuple[int, int]:
        """maximumNumber(x, y) (RISC-V fmax, F/D 2.2)."""
        return _minmax(x, y, True)

    def eq(x: int, y: int) -> tuple[int, int]:
        """x == y, quiet (feq): NV only for a signaling NaN."""
        ax = x & ABS
        ay = y & ABS
        if ax > INF or ay > INF:
            return 0, _nan2(ax, ay)[1]
        return int(x == y or not (ax | ay)), 0

    def lt(x: int, y: int) -> tuple[int, int]:
        """x < y, signaling (flt): NV for any NaN."""
        ax = x & ABS
        ay = y & ABS
        if ax > INF or ay > INF:
            return 0, NV
        return int((-ax if x & SIGN else ax) < (-ay if y & SIGN else ay)), 0

    def le(x: int, y: int) -> tuple[int, int]:
        """x <= y, signaling (fle): NV for any NaN."""
        ax = x & ABS
        ay = y & ABS
        if ax > INF or ay > INF:
            return 0, NV
        return int((-ax if x & SIGN else ax) <= (-ay if y & SIGN else ay)), 0

    def classify(x: int) -> int:
        """The fclass mask: bit 0 -inf, 1 -normal, 2 -subnormal, 3 -0, 4 +0,
        5 +subnormal, 6 +normal, 7 +inf, 8 signaling NaN, 9 quiet NaN."""
        ax = x & ABS
        if ax > INF:
            return 0x200 if ax & QBIT else 0x100
        if ax == INF:
            c = 0
        elif ax >= HIDDEN:
            c = 1
        elif ax:
            c = 2
        else:
            c = 3
        return 1 << c if x & SIGN else 0x80 >> c

    def sgnj(x: int, y: int) -> int:
        """x with y's sign (fsgnj)."""
        return (x & ABS) | (y & SIGN)

    def sgnjn(x: int, y: int) -> int:
        """x with the opposite of y's sign (fsgnjn; fneg when x is y)."""
        return (x & ABS) | (~y & SIGN)

    def sgnjx(x: int, y: int) -> int:
        """x with its sign XOR y's (fsgnjx; fabs when x is y)."""
        return x ^ (y & SIGN)

    # --- conversions to and from integers ------------------------------------------------

    def _to_int(bits: int, signed: bool) -> Unary:
        mask = (1 << bits) - 1
        hi = (1 << (bits - 1)) - 1 if signed else mask
        lo = -(1 << (bits - 1)) if signed else 0

        def convert(x: int, rm: int) -> tuple[int, int]:
            ax = x & ABS
            sign = x & SIGN
            if ax >= INF:
                if ax > INF or not sign:
                    return hi & mask, NV
                return lo & mask, NV
            if not ax:
                return 0, 0
            e = ax >> fbits
            if e:
                m = (ax & FMASK) | HIDDEN
                q = e - 1 + QMIN
            else:
                m = ax
                q = QMIN
            flags = 0
            if q >= 0:
                if q > bits:
                    return (lo if sign else hi) & mask, NV
                v = m << q
            else:
                sh = -q
                r = m & ((1 << sh) - 1)
                v = m >> sh
                if r:
                    flags = NX
                    if _up(sign, v & 1, r, 1 << (sh - 1), rm):
                        v += 1
            if sign:
                v = -v
            if v > hi or v < lo:
                return (lo if sign else hi) & mask, NV
            return v & mask, flags

        return convert

    def _from_int(bits: int, signed: bool) -> Unary:
        mask = (1 << bits) - 1
        top = 1 << (bits - 1)

        def convert(x: int, rm: int) -> tuple[int, int]:
            v = x & mask
            if not v:
                return 0, 0
            if signed and v & top:
                return round_pack(SIGN, (1 << bits) - v, 0, rm)
            return round_pack(0, v, 0, rm)

        return convert

    return Format(
        width=width,
        fraction_bits=fbits,
        canonical_nan=CNAN,
        add=add,
        sub=sub,
        mul=mul,
        div=div,
        sqrt=sqrt,
        fmadd=fmadd,
        fmsub=fmsub,
        fnmsub=fnmsub,
        fnmadd=fnmadd,
        min=fmin,
        max=fmax,
        eq=eq,
        lt=lt,
        le=le,
        classify=classify,
        sgnj=sgnj,
        sgnjn=sgnjn,
        sgnjx=sgnjx,
        to_i32=_to_int(32, True),
        to_u32=_to_int(32, False),
        to_i64=_to_int(64, True),
        to_u64=_to_int(64, False),
        from_i32=_from_int(32, True),
        from_u32=_from_int(32, False),
        from_i64=_from_int(64, True),
        from_u64=_from_int(64, False),
        round_pack=round_pack,
        unpack=unpack,
    )


F32 = _build(32, 23)
F64 = _build(64, 52)
FORMATS = {32: F32, 64: F64}


# --- Conversions between the formats ---------------------------------------------------

_ABS32 = 0x7FFFFFFF
_INF32 = 0x7F800000
_ABS64 = 0x7FFFFFFFFFFFFFFF
_INF64 = 0x7FF0000000000000
_unpack32 = F32.unpack
_unpack64 = F64.unpack
_round32 = F32.round_pack
_round64 = F64.round_pack


def f32_to_f64(x: int, rm: int = RNE) -> tuple[int, int]:
    """fcvt.d.s: exact (``rm`` is accepted for a uniform call and ignored); a NaN gives
    the canonical NaN (NV if it is signaling)."""
    a = x & _ABS32
    sign = (x & 0x80000000) << 32
    if a >= _INF32:
        if a == _INF32:
            return sign | _INF64, 0
        return CANONICAL_NAN64, (0 if a & 0x00400000 else NV)
    if not a:
        return sign, 0
    _, m, q = _unpack32(x)
    return _round64(sign, m, q, RNE)


def f64_to_f32(x: int, rm: int) -> tuple[int, int]:
    """fcvt.s.d: rounded per ``rm`` (OF, UF, NX); a NaN gives the canonical NaN."""
    a = x & _ABS64
    sign = (x >> 32) & 0x80000000
    if a >= _INF64:
        if a == _INF64:
            return sign | _INF32, 0
        return CANONICAL_NAN32, (0 if a & 0x0008000000000000 else NV)
    if not a:
        return sign, 0
    _, m, q = _unpack64(x)
    return _round32(sign, m, q, rm)


# --- The helpers under their own names ----------------------------------------------------

f32_add = F32.add
f32_sub = F32.sub
f32_mul = F32.mul
f32_div = F32.div
f32_sqrt = F32.sqrt
f32_fmadd = F32.fmadd
f32_fmsub = F32.fmsub
f32_fnmsub = F32.fnmsub
f32_fnmadd = F32.fnmadd
f32_min = F32.min
f32_max = F32.max
f32_eq = F32.eq
f32_lt = F32.lt
f32_le = F32.le
f32_classify = F32.classify
f32_sgnj = F32.sgnj
f32_sgnjn = F32.sgnjn
f32_sgnjx = F32.sgnjx
f32_to_i32 = F32.to_i32
f32_to_u32 = F32.to_u32
f32_to_i64 = F32.to_i64
f32_to_u64 = F32.to_u64
i32_to_f32 = F32.from_i32
u32_to_f32 = F32.from_u32
i64_to_f32 = F32.from_i64
u64_to_f32 = F32.from_u64

f64_add = F64.add
f64_sub = F64.sub
f64_mul = F64.mul
f64_div = F64.div
f64_sqrt = F64.sqrt
f64_fmadd = F64.fmadd
f64_fmsub = F64.fmsub
f64_fnmsub = F64.fnmsub
f64_fnmadd = F64.fnmadd
f64_min = F64.min
f64_max = F64.max
f64_eq = F64.eq
f64_lt = F64.lt
f64_le = F64.le
f64_classify = F64.classify
f64_sgnj = F64.sgnj
f64_sgnjn = F64.sgnjn
f64_sgnjx = F64.sgnjx
f64_to_i32 = F64.to_i32
f64_to_u32 = F64.to_u32
f64_to_i64 = F64.to_i64
f64_to_u64 = F64.to_u64
i32_to_f64 = F64.from_i32
u32_to_f64 = F64.from_u32
i64_to_f64 = F64.from_i64
u64_to_f64 = F64.from_u64
