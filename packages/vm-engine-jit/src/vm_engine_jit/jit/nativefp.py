"""Native code for the ``fp.*`` helpers (docs/ir.md, "Native helpers"): IEEE arithmetic on
the host's SSE/AVX unit instead of a call into Python's softfloat.

The operations that round or raise flags run in a small function of their own per operation,
marked ``strictfp`` so that LLVM keeps them in order with the MXCSR accesses around them:

    set MXCSR (all exceptions masked, flags clear, the rounding control of the guest's rm);
    the operation as an LLVM constrained intrinsic (``round.dynamic``, ``fpexcept.strict``);
    read MXCSR's flags, put MXCSR back to its default (round to nearest);
    return {the result's bits, the flags in fp.* order}.

x86's flags are the IEEE ones (underflow: tiny after rounding and inexact, as RISC-V), so the
only corrections are the canonical NaN, NaN-boxing, an fma of ``inf * 0`` plus a quiet NaN
(invalid under RISC-V, not on x86) and saturating conversions to integers. Round to nearest,
ties away (rm 4), has no SSE rounding control: it and the reserved modes call the Python
helper. Comparisons, min/max, sign injection and classification are integer and ordered-
compare code inline in the block. ``tests/test_nativefp.py`` checks every operation against
the softfloat helpers on special and random operands in every rounding mode.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from .emit import Builder, FunctionText, Val, const

if TYPE_CHECKING:
    from vm_ir import HelperDecl, Inst

    from .lower import _FunctionLowering

MXCSR_DEFAULT = 0x1F80  # every exception masked, round to nearest, no flags
#: x86 rounding control (MXCSR bits 13-14) of fp.* modes 0-3, packed four bits each
_RC_OF_RM = 0 | 3 << 4 | 1 << 8 | 2 << 12

_FMT = {"s": ("float", "i32", 32), "d": ("double", "i64", 64)}
_CANONICAL = {32: 0x7FC00000, 64: 0x7FF8000000000000}
_INFINITY = {32: 0x7F800000, 64: 0x7FF0000000000000}
_QUIET = {32: 1 << 22, 64: 1 << 51}
_BOX = 0xFFFFFFFF00000000
NV, DZ, OF, UF, NX = 16, 8, 4, 2, 1
_INT = {"w": ("i32", True), "wu": ("i32", False), "l": ("i64", True), "lu": ("i64", False)}

_ARITH = ("fadd", "fsub", "fmul", "fdiv")
_FUSED = ("fmadd", "fmsub", "fnmsub", "fnmadd")
_INLINE = ("fmin", "fmax", "feq", "flt", "fle", "fclass", "fsgnj", "fsgnjn", "fsgnjx")


def _names() -> frozenset[str]:
    names = set()
    for f in "sd":
        for op in (*_ARITH, "fsqrt", *_FUSED, *_INLINE):
            names.add(f"fp.{op}.{f}")
        for i in _INT:
            names.add(f"fp.fcvt.{i}.{f}")
            names.add(f"fp.fcvt.{f}.{i}")
    names.update({"fp.fcvt.s.d", "fp.fcvt.d.s"})
    return frozenset(names)


#: the native names this module implements
SUPPORTED = _names()
#: the state fields the fp.* family uses
STATE_FIELDS = ("fflags", "frm")


def takes_rm(native: str) -> bool:
    return native.split(".")[1] not in _INLINE


# -- in the block: rounding mode, the strict function's call, flags -----------------------------
def lower_call(fl: _FunctionLowering, inst: Inst, decl: HelperDecl) -> Val:
    """The result of ``call @h(args)`` where ``decl.native`` is in ``SUPPORTED``."""
    b = fl.b
    native = str(decl.native)
    args = [fl.arg(inst, i) for i in range(len(inst.args))]
    if not takes_rm(native):
        result, flags = _inline(b, native, args)
        _raise(fl, flags)
        return result
    operands, rm = args[:-1], args[-1]
    fn = _strict_function(fl, native)
    padded = operands + [const("i64", 0)] * (3 - len(operands))
    rm_value = int(rm.ref) if rm.ref.isdigit() else None
    if rm_value is not None and rm_value <= 3:
        return _call_strict(fl, fn, padded, const("i32", MXCSR_DEFAULT | _rc(rm_value) << 13))
    if rm_value is not None and rm_value != 7:
        return fl.call_helper(inst, decl)  # rm 4 (ties away) or a reserved mode: Python
    # dynamic: frm (or a computed rm) 0-3 natively, anything else through the helper
    if rm_value == 7:
        mode = fl.state_get("frm")
    else:
        mode = b.select(b.icmp("eq", rm, const("i64", 7)), fl.state_get("frm"), rm)
    native_block = fl.fn.block("fp_native")
    slow_block = fl.fn.block("fp_helper")
    join = fl.fn.block("fp_done")
    b.cbr(b.icmp("ule", mode, const("i64", 3)), native_block, slow_block)
    b.at(native_block)
    shift = b.op("shl", b.cast("trunc", mode, "i32"), const("i32", 2))
    rc = b.op("and", b.op("lshr", const("i32", _RC_OF_RM), shift), const("i32", 3))
    mx = b.op("or", b.op("shl", rc, const("i32", 13)), const("i32", MXCSR_DEFAULT))
    fast = _call_strict(fl, fn, padded, mx)
    fast_from = b.block
    b.br(join)
    b.at(slow_block)
    slow = fl.call_helper(inst, decl)
    assert slow is not None
    slow_from = b.block
    b.br(join)
    b.at(join)
    phi = b.phi("i64")
    phi.add(fast, fast_from)
    phi.add(slow, slow_from)
    return phi


def _rc(rm: int) -> int:
    return (_RC_OF_RM >> (4 * rm)) & 3


def _call_strict(fl: _FunctionLowering, fn: str, operands: list[Val], mx: Val) -> Val:
    b = fl.b
    pair = b.call("{ i64, i64 }", f'@"{fn}"', [*operands, mx])
    _raise(fl, b.extract(pair, "i64", 1))
    return b.extract(pair, "i64", 0)


def _raise(fl: _FunctionLowering, flags: Val) -> None:
    """fflags |= flags."""
    if flags.ref == "0":
        return
    fl.state_set("fflags", fl.b.op("or", fl.state_get("fflags"), flags))


# -- bits ---------------------------------------------------------------------------------------
def _unbox(b: Builder, v: Val, fmt: str) -> Val:
    """An operand's bits as the format's integer (binary32: the canonical NaN unless boxed)."""
    if fmt == "d":
        return v
    boxed = b.icmp("eq", b.op("lshr", v, const("i64", 32)), const("i64", 0xFFFFFFFF))
    return b.select(boxed, b.cast("trunc", v, "i32"), const("i32", _CANONICAL[32]))


def _box(b: Builder, bits: Val, fmt: str) -> Val:
    if fmt == "d":
        return bits
    return b.op("or", b.cast("zext", bits, "i64"), const("i64", _BOX))


def _magnitude(b: Builder, bits: Val) -> Val:
    w = 32 if bits.ty == "i32" else 64
    return b.op("and", bits, const(bits.ty, (1 << (w - 1)) - 1))


def _is_nan(b: Builder, bits: Val) -> Val:
    w = 32 if bits.ty == "i32" else 64
    return b.icmp("ugt", _magnitude(b, bits), const(bits.ty, _INFINITY[w]))


def _is_snan(b: Builder, bits: Val) -> Val:
    w = 32 if bits.ty == "i32" else 64
    quiet = b.icmp("ne", b.op("and", bits, const(bits.ty, _QUIET[w])), const(bits.ty, 0))
    return b.op("and", _is_nan(b, bits), b.op("xor", quiet, const("i1", 1)))


def _canonical(b: Builder, bits: Val) -> Val:
    w = 32 if bits.ty == "i32" else 64
    return b.select(_is_nan(b, bits), const(bits.ty, _CANONICAL[w]), bits)


def _flag_if(b: Builder, cond: Val, flag: int) -> Val:
    return b.select(cond, const("i64", flag), const("i64", 0))


# -- inline operations: no rounding, flags from bit tests ---------------------------------------
def _inline(b: Builder, native: str, args: list[Val]) -> tuple[Val, Val]:
    _, op, fmt = native.split(".")
    fty, ity, w = _FMT[fmt]
    x = _unbox(b, args[0], fmt)
    sign = const(ity, 1 << (w - 1))
    if op == "fclass":
        return _fclass(b, x, w), const("i64", 0)
    y = _unbox(b, args[1], fmt)
    if op.startswith("fsgnj"):
        rest = b.op("and", x, const(ity, (1 << (w - 1)) - 1))
        if op == "fsgnj":
            bits = b.op("or", rest, b.op("and", y, sign))
        elif op == "fsgnjn":
            bits = b.op("or", rest, b.op("and", b.op("xor", y, sign), sign))
        else:
            bits = b.op("xor", x, b.op("and", y, sign))
        return _box(b, bits, fmt), const("i64", 0)
    snan = b.op("or", _is_snan(b, x), _is_snan(b, y))
    xf, yf = b.cast("bitcast", x, fty), b.cast("bitcast", y, fty)
    if op in ("feq", "flt", "fle"):
        cond = {"feq": "oeq", "flt": "olt", "fle": "ole"}[op]
        result = b.cast("zext", b.fcmp(cond, xf, yf), "i64")
        invalid = snan if op == "feq" else b.op("or", _is_nan(b, x), _is_nan(b, y))
        return result, _flag_if(b, invalid, NV)
    # fmin / fmax: minimumNumber / maximumNumber, -0 below +0, both NaN: canonical
    x_nan, y_nan = _is_nan(b, x), _is_nan(b, y)
    first = b.fcmp("olt" if op == "fmin" else "ogt", xf, yf)
    equal = b.fcmp("oeq", xf, yf)
    tie = b.op("or" if op == "fmin" else "and", x, y)
    numbers = b.select(first, x, b.select(equal, tie, y))
    bits = b.select(x_nan, b.select(y_nan, const(ity, _CANONICAL[w]), y),
                    b.select(y_nan, x, numbers))
    return _box(b, bits, fmt), _flag_if(b, snan, NV)


def _fclass(b: Builder, x: Val, w: int) -> Val:
    ity = x.ty
    mant_bits = 23 if w == 32 else 52
    negative = b.icmp("slt", x, const(ity, 0))
    mag = _magnitude(b, x)
    inf = const(ity, _INFINITY[w])
    is_zero = b.icmp("eq", mag, const(ity, 0))
    is_sub = b.icmp("ult", mag, const(ity, 1 << mant_bits))  # and not zero
    is_inf = b.icmp("eq", mag, inf)
    is_nan = b.icmp("ugt", mag, inf)
    quiet = b.icmp("ne", b.op("and", x, const(ity, _QUIET[w])), const(ity, 0))

    def by_sign(neg: int, pos: int) -> Val:
        return b.select(negative, const("i64", neg), const("i64", pos))

    index = by_sign(1, 6)  # normal
    index = b.select(is_sub, by_sign(2, 5), index)
    index = b.select(is_zero, by_sign(3, 4), index)
    index = b.select(is_inf, by_sign(0, 7), index)
    index = b.select(is_nan, b.select(quiet, const("i64", 9), const("i64", 8)), index)
    return b.op("shl", const("i64", 1), index)


# -- strict functions: one per operation, in the batch module once ------------------------------
_STRICT = 'metadata !"round.dynamic", metadata !"fpexcept.strict"'
_EXCEPT = 'metadata !"fpexcept.strict"'
_IGNORE = 'metadata !"fpexcept.ignore"'


def _strict_function(fl: _FunctionLowering, native: str) -> str:
    name = "vmfp." + native
    module = fl.batch.module
    if not module.has_piece(name):
        fn = FunctionText(name, "{ i64, i64 }", ["i64 %a", "i64 %b", "i64 %c", "i32 %mx"],
                          linkage="internal", attrs="noinline nounwind strictfp")
        b = Builder(fn, fn.block("entry"), module)
        module.declare("llvm.x86.sse.ldmxcsr", "void", ["ptr"])
        module.declare("llvm.x86.sse.stmxcsr", "void", ["ptr"])
        slot = b.alloca("i32", 4)
        b.store(Val("i32", "%mx"), slot, 4)
        b.raw(f"call void @llvm.x86.sse.ldmxcsr(ptr {slot.ref}) strictfp")
        _, op, *rest = native.split(".")
        args = [Val("i64", "%a"), Val("i64", "%b"), Val("i64", "%c")]
        body = _STRICT_BODIES["fcvt" if op == "fcvt" else op]
        result, finish = body(b, op, rest, args)
        b.raw(f"call void @llvm.x86.sse.stmxcsr(ptr {slot.ref}) strictfp")
        mxcsr = b.cast("zext", b.load("i32", slot, 4), "i64")
        b.store(const("i32", MXCSR_DEFAULT), slot, 4)
        b.raw(f"call void @llvm.x86.sse.ldmxcsr(ptr {slot.ref}) strictfp")
        flags = _rv_flags(b, mxcsr)
        result, flags = finish(result, flags)
        pair = b._emit("{ i64, i64 }", f"insertvalue {{ i64, i64 }} undef, i64 {result.ref}, 0")
        pair = b._emit("{ i64, i64 }",
                       f"insertvalue {{ i64, i64 }} {pair.ref}, i64 {flags.ref}, 1")
        b.ret(pair)
        module.piece(name, fn.render())
    return name


def _rv_flags(b: Builder, m: Val) -> Val:
    """MXCSR's IE, ZE, OE, UE, PE as fp.* flags (NV, DZ, OF, UF, NX); DE dropped."""
    parts = [(0x01, "shl", 4), (0x04, "shl", 1), (0x08, "lshr", 1), (0x10, "lshr", 3),
             (0x20, "lshr", 5)]
    flags = const("i64", 0)
    for mask, shift, amount in parts:
        flags = b.op("or", flags, b.op(shift, b.op("and", m, const("i64", mask)),
                                       const("i64", amount)))
    return flags


def _constrained(b: Builder, name: str, fty: str, args: list[Val], tail: str,
                 ret: str | None = None, suffix: str | None = None) -> Val:
    """``llvm.experimental.constrained.NAME.SUFFIX(args, tail)``, a strictfp call."""
    ret = ret or fty
    suffix = suffix or ("f32" if fty == "float" else "f64")
    full = f"llvm.experimental.constrained.{name}.{suffix}"
    metas = tail.count("metadata")
    assert b.module is not None
    b.module.declare(full, ret, [a.ty for a in args] + ["metadata"] * metas)
    text = ", ".join(f"{a.ty} {a.ref}" for a in args)
    return b._emit(ret, f"call {ret} @{full}({text}, {tail}) strictfp")


_Finish = Callable[[Val, Val], tuple[Val, Val]]


def _float_result(b: Builder, fmt: str) -> _Finish:
    """Canonical NaN and boxing of a float result (given as the float value)."""
    _, ity, _ = _FMT[fmt]

    def finish(value: Val, flags: Val) -> tuple[Val, Val]:
        bits = _canonical(b, b.cast("bitcast", value, ity))
        return _box(b, bits, fmt), flags

    return finish


def _arith(b: Builder, op: str, rest: list[str], args: list[Val]) -> tuple[Val, _Finish]:
    (fmt,) = rest
    fty, _, _ = _FMT[fmt]
    x, y = (b.cast("bitcast", _unbox(b, a, fmt), fty) for a in args[:2])
    value = _constrained(b, op, fty, [x, y], _STRICT)
    return value, _float_result(b, fmt)


def _sqrt(b: Builder, op: str, rest: list[str], args: list[Val]) -> tuple[Val, _Finish]:
    (fmt,) = rest
    fty, _, _ = _FMT[fmt]
    x = b.cast("bitcast", _unbox(b, args[0], fmt), fty)
    return _constrained(b, "sqrt", fty, [x], _STRICT), _float_result(b, fmt)


def _fused(b: Builder, op: str, rest: list[str], args: list[Val]) -> tuple[Val, _Finish]:
    (fmt,) = rest
    fty, ity, w = _FMT[fmt]
    bits = [_unbox(b, a, fmt) for a in args]
    x, y, z = (b.cast("bitcast", v, fty) for v in bits)
    if op in ("fnmsub", "fnmadd"):
        x = b.fneg(x)
    if op in ("fmsub", "fnmadd"):
        z = b.fneg(z)
    value = _constrained(b, "fma", fty, [x, y, z], _STRICT)
    # inf * 0 (either order) is invalid even when the addend is a quiet NaN (x86: no flag)
    mx, my = _magnitude(b, bits[0]), _magnitude(b, bits[1])
    inf, zero = const(ity, _INFINITY[w]), const(ity, 0)
    invalid = b.op("or",
                   b.op("and", b.icmp("eq", mx, inf), b.icmp("eq", my, zero)),
                   b.op("and", b.icmp("eq", mx, zero), b.icmp("eq", my, inf)))
    base = _float_result(b, fmt)

    def finish(v: Val, flags: Val) -> tuple[Val, Val]:
        result, flags = base(v, flags)
        return result, b.op("or", flags, _flag_if(b, invalid, NV))

    return value, finish


def _fcvt(b: Builder, op: str, rest: list[str], args: list[Val]) -> tuple[Val, _Finish]:
    to, frm = rest
    if to in _FMT and frm in _FMT:  # fcvt.s.d / fcvt.d.s
        src_ty = _FMT[frm][0]
        x = b.cast("bitcast", _unbox(b, args[0], frm), src_ty)
        if to == "s":
            value = _constrained(b, "fptrunc", "float", [x], _STRICT, suffix="f32.f64")
        else:
            value = _constrained(b, "fpext", "double", [x], _EXCEPT, suffix="f64.f32")
        return value, _float_result(b, to)
    if to in _FMT:  # integer -> float
        fty = _FMT[to][0]
        ity, signed = _INT[frm]
        source = b.cast("trunc", args[0], ity)
        name = "sitofp" if signed else "uitofp"
        suffix = f"{'f32' if fty == 'float' else 'f64'}.{ity}"
        value = _constrained(b, name, fty, [source], _STRICT, suffix=suffix)
        return value, _float_result(b, to)
    return _to_int(b, to, frm, args[0])


def _to_int(b: Builder, to: str, frm: str, arg: Val) -> tuple[Val, _Finish]:
    """float -> integer: round to an integral float in the current mode (inexact from the
    host), then a range test in floats; out of range or NaN saturates with invalid alone."""
    fty, _, _ = _FMT[frm]
    fsuf = "f32" if fty == "float" else "f64"
    ity, signed = _INT[to]
    bits = 32 if ity == "i32" else 64
    x = b.cast("bitcast", _unbox(b, arg, frm), fty)
    r = _constrained(b, "rint", fty, [x], _STRICT)
    lo = -(1 << (bits - 1)) if signed else 0
    hi = 1 << (bits - 1) if signed else 1 << bits  # exclusive; both exact in binary32

    def fconst(v: int) -> Val:
        # a decimal spelling of an integer that is exact in both formats
        return Val(fty, f"{float(v):.1f}" if abs(v) < 2 ** 53 else _hex_double(v))

    def cmp(cond: str, a: Val, c: Val) -> Val:
        return _constrained(b, "fcmp", fty, [a, c], f'metadata !"{cond}", {_IGNORE}',
                            ret="i1", suffix=fsuf)

    above_lo = cmp("oge", r, fconst(lo))
    below_hi = cmp("olt", r, fconst(hi))
    inside = b.op("and", above_lo, below_hi)
    safe = b.select(inside, r, Val(fty, "0.0"))
    name = "fptosi" if signed else "fptoui"
    n = _constrained(b, name, fty, [safe], _IGNORE, ret=ity, suffix=f"{ity}.{fsuf}")
    top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    bottom = lo & ((1 << bits) - 1)
    is_nan = cmp("uno", x, x)
    high = b.op("or", is_nan, b.op("xor", cmp("olt", r, fconst(hi)), const("i1", 1)))
    saturated = b.select(high, const(ity, top), const(ity, bottom))
    value = b.select(inside, n, saturated)

    def finish(v: Val, flags: Val) -> tuple[Val, Val]:
        wide = b.cast("sext", v, "i64")  # 32-bit results sign-extended, unsigned ones too
        exact = b.op("and", flags, const("i64", NX))
        return wide, b.select(inside, exact, const("i64", NV))

    return value, finish


def _hex_double(v: int) -> str:
    return f"0x{struct.unpack('<Q', struct.pack('<d', float(v)))[0]:016X}"


_STRICT_BODIES: dict[str, Callable[..., tuple[Val, _Finish]]] = {
    **dict.fromkeys(_ARITH, _arith), "fsqrt": _sqrt, **dict.fromkeys(_FUSED, _fused),
    "fcvt": _fcvt,
}

__all__ = ["MXCSR_DEFAULT", "STATE_FIELDS", "SUPPORTED", "lower_call", "takes_rm"]
