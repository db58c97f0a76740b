"""Support routines lowered code calls for what LLVM would otherwise turn into library calls
(compiler-rt / libgcc's ``__udivti3``, ``__floattidf``, ``__fixdfti``): 128-bit division and
conversions between ``i128`` and floats. Each is LLVM IR text, added as an internal function to
the batch modules that use it, so compiled code needs no runtime library but libm's ``fma``
(and that only on hosts without FMA instructions).
"""

from __future__ import annotations

from .emit import Builder, ModuleText, Val, const, float_const

#: ``{i128 q, i128 r} (i128 n, i128 d)``, d != 0: 64-bit division when both fit, else
#: restoring long division from the highest set bit of n down (a carry bit covers d >= 2^127)
UDIVMOD128 = """\
define internal { i128, i128 } @vmjit.udivmod128(i128 %n, i128 %d) {
entry:
  %nd = or i128 %n, %d
  %high = lshr i128 %nd, 64
  %small = icmp eq i128 %high, 0
  br i1 %small, label %fast, label %slow
fast:
  %n64 = trunc i128 %n to i64
  %d64 = trunc i128 %d to i64
  %q64 = udiv i64 %n64, %d64
  %r64 = urem i64 %n64, %d64
  %qf = zext i64 %q64 to i128
  %rf = zext i64 %r64 to i128
  %p0 = insertvalue { i128, i128 } poison, i128 %qf, 0
  %p1 = insertvalue { i128, i128 } %p0, i128 %rf, 1
  ret { i128, i128 } %p1
slow:
  %lz = call i128 @llvm.ctlz.i128(i128 %n, i1 false)
  %top = sub i128 127, %lz
  %nz = icmp ne i128 %n, 0
  br i1 %nz, label %loop, label %done
loop:
  %i = phi i128 [ %top, %slow ], [ %i2, %loop ]
  %q = phi i128 [ 0, %slow ], [ %q2, %loop ]
  %r = phi i128 [ 0, %slow ], [ %r3, %loop ]
  %carry = lshr i128 %r, 127
  %carry1 = trunc i128 %carry to i1
  %nb = lshr i128 %n, %i
  %bit = and i128 %nb, 1
  %rs = shl i128 %r, 1
  %r2 = or i128 %rs, %bit
  %ge0 = icmp uge i128 %r2, %d
  %ge = or i1 %carry1, %ge0
  %rd = sub i128 %r2, %d
  %r3 = select i1 %ge, i128 %rd, i128 %r2
  %gez = zext i1 %ge to i128
  %qb = shl i128 %gez, %i
  %q2 = or i128 %q, %qb
  %i2 = sub i128 %i, 1
  %last = icmp eq i128 %i, 0
  br i1 %last, label %done, label %loop
done:
  %qd = phi i128 [ 0, %slow ], [ %q2, %loop ]
  %rdn = phi i128 [ 0, %slow ], [ %r3, %loop ]
  %d0 = insertvalue { i128, i128 } poison, i128 %qd, 0
  %d1 = insertvalue { i128, i128 } %d0, i128 %rdn, 1
  ret { i128, i128 } %d1
}
declare i128 @llvm.ctlz.i128(i128, i1)
"""

#: ``FT (i128 x)``, x unsigned, rounded to nearest, ties to even: the top 64 bits with the
#: bits below or-ed into the lowest ("round to odd", 11 spare bits), converted, then scaled by
#: 2^s exactly: one rounding in all
U128_TO_FLOAT = """\
define internal {ft} @vmjit.u128to{ft}(i128 %x) {{
entry:
  %hi = lshr i128 %x, 64
  %small = icmp eq i128 %hi, 0
  %lo = trunc i128 %x to i64
  %direct = uitofp i64 %lo to {ft}
  %lz = call i128 @llvm.ctlz.i128(i128 %x, i1 false)
  %s = sub i128 64, %lz
  %topw = lshr i128 %x, %s
  %top = trunc i128 %topw to i64
  %one = shl i128 1, %s
  %mask = sub i128 %one, 1
  %below = and i128 %x, %mask
  %inexact = icmp ne i128 %below, 0
  %sticky = zext i1 %inexact to i64
  %odd = or i64 %top, %sticky
  %rounded = uitofp i64 %odd to {ft}
  %s{ib} = trunc i128 %s to {it}
  %e = add {it} %s{ib}, {bias}
  %eb = shl {it} %e, {mant}
  %scale = bitcast {it} %eb to {ft}
  %big = fmul {ft} %rounded, %scale
  %r = select i1 %small, {ft} %direct, {ft} %big
  ret {ft} %r
}}
declare i128 @llvm.ctlz.i128(i128, i1)
"""

#: ``i128 (double x)``: toward zero, saturating to [0, 2^128 - 1], NaN to 0; x / 2^64 and
#: x - hi * 2^64 are exact (x has at most 53 significant bits)
F64_TO_U128 = """\
define internal i128 @vmjit.f64tou128(double %x) {
entry:
  %scaled = fmul double %x, 0x3BF0000000000000
  %hi = call i64 @llvm.fptoui.sat.i64.f64(double %scaled)
  %hif = uitofp i64 %hi to double
  %back = fmul double %hif, 0x43F0000000000000
  %rest = fsub double %x, %back
  %lo = call i64 @llvm.fptoui.sat.i64.f64(double %rest)
  %hiw = zext i64 %hi to i128
  %his = shl i128 %hiw, 64
  %low = zext i64 %lo to i128
  %v = or i128 %his, %low
  %big = fcmp oge double %x, 0x47F0000000000000
  %r = select i1 %big, i128 -1, i128 %v
  ret i128 %r
}
declare i64 @llvm.fptoui.sat.i64.f64(double)
"""


def _dedupe_declarations(module: ModuleText, text: str) -> str:
    """Move a piece's ``declare`` lines to the module's declarations (LLVM rejects twins)."""
    body = []
    for line in text.splitlines():
        if line.startswith("declare "):
            ret, _, rest = line[len("declare "):].partition(" @")
            name, _, params = rest.partition("(")
            module.declare(name, ret, [p.strip() for p in params.rstrip(")").split(",")])
        else:
            body.append(line)
    return "\n".join(body) + "\n"


def _need(module: ModuleText, key: str, text: str) -> None:
    if not module.has_piece(key):
        module.piece(key, _dedupe_declarations(module, text))


def divide128(b: Builder, op: str, a: Val, d: Val) -> Val:
    """``udiv``/``urem``/``sdiv``/``srem`` of i128; ``d`` is not 0 and not (MIN, -1)."""
    assert b.module is not None
    _need(b.module, "udivmod128", UDIVMOD128)
    pair = "{ i128, i128 }"
    if op in ("udiv", "urem"):
        res = b.call(pair, "@vmjit.udivmod128", [a, d])
        return b.extract(res, "i128", 0 if op == "udiv" else 1)
    zero = const("i128", 0)
    an = b.icmp("slt", a, zero)
    dn = b.icmp("slt", d, zero)
    ma = b.select(an, b.op("sub", zero, a), a)
    md = b.select(dn, b.op("sub", zero, d), d)
    res = b.call(pair, "@vmjit.udivmod128", [ma, md])
    if op == "sdiv":
        q = b.extract(res, "i128", 0)
        return b.select(b.op("xor", an, dn), b.op("sub", zero, q), q)
    r = b.extract(res, "i128", 1)
    return b.select(an, b.op("sub", zero, r), r)


def int128_to_float(b: Builder, x: Val, ft: str, signed: bool) -> Val:
    assert b.module is not None
    if ft == "float":
        text = U128_TO_FLOAT.format(ft="float", it="i32", ib="32", bias=127, mant=23)
    else:
        text = U128_TO_FLOAT.format(ft="double", it="i64", ib="64", bias=1023, mant=52)
    _need(b.module, f"u128to{ft}", text)
    if not signed:
        return b.call(ft, f"@vmjit.u128to{ft}", [x])
    zero = const("i128", 0)
    neg = b.icmp("slt", x, zero)
    mag = b.select(neg, b.op("sub", zero, x), x)
    r = b.call(ft, f"@vmjit.u128to{ft}", [mag])
    return b.select(neg, b.fneg(r), r)


def float_to_int128(b: Builder, x: Val, signed: bool) -> Val:
    """``fptosi``/``fptoui`` to i128 with vm-ir's saturation; ``x`` float or double."""
    assert b.module is not None
    _need(b.module, "f64tou128", F64_TO_U128)
    if x.ty == "float":
        x = b.cast("fpext", x, "double")
    if not signed:
        return b.call("i128", "@vmjit.f64tou128", [x])
    neg = b.fcmp("olt", x, float_const("double", 0))
    mag = b.call("i128", "@vmjit.f64tou128", [b.select(neg, b.fneg(x), x)])
    zero = const("i128", 0)
    value = b.select(neg, b.op("sub", zero, mag), mag)
    two127 = float_const("double", 0x47E0000000000000)
    minus_two127 = float_const("double", 0xC7E0000000000000)
    value = b.select(b.fcmp("oge", x, two127), const("i128", (1 << 127) - 1), value)
    return b.select(b.fcmp("ole", x, minus_two127), const("i128", 1 << 127), value)


__all__ = ["divide128", "float_to_int128", "int128_to_float"]
