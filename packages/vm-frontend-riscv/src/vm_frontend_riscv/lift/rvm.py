"""RV64M: multiplication and division, with the ISA's defined results for division by zero
(quotient all ones, remainder the dividend) and overflow (quotient the dividend, remainder 0)."""

from __future__ import annotations

from vm_ir import I32, I64, I128

from .context import LiftContext, trans


@trans("mul", "mulh", "mulhu", "mulhsu", "mulw")
def trans_mul(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    x, y = ctx.x(a.rs1), ctx.x(a.rs2)
    if a.op == "mul":
        r = fb.mul(x, y)
    elif a.op == "mulh":
        r = fb.smulh(x, y)
    elif a.op == "mulhu":
        r = fb.umulh(x, y)
    elif a.op == "mulhsu":  # signed x unsigned: the high half of a 128-bit product
        product = fb.mul(fb.sext(I128, x), fb.zext(I128, y))
        r = fb.trunc(I64, fb.lshr(product, ctx.const(64, I128)))
    else:
        r = fb.sext(I64, fb.mul(fb.trunc(I32, x), fb.trunc(I32, y)))
    ctx.set_x(a.rd, r)
    return True


def _divide(ctx: LiftContext, op: str, x, y, type):
    """RISC-V division on ``type`` values: vm-ir's division is undefined for the cases the ISA
    defines, so the divisor is replaced before dividing and the result selected after."""
    fb = ctx.fb
    zero = ctx.const(0, type)
    ones = ctx.const(-1, type)
    by_zero = fb.icmp("eq", y, zero)
    signed = op in ("div", "rem")
    if signed:
        overflow = fb.and_(fb.icmp("eq", x, ctx.const(1 << (type.bits - 1), type)),
                           fb.icmp("eq", y, ones))
        bad = fb.or_(by_zero, overflow)
    else:
        bad = by_zero
    safe = fb.select(bad, ctx.const(1, type), y)
    if op in ("div", "divu"):
        q = fb.emit("sdiv" if signed else "udiv", [x, safe])
        # by zero: all ones; overflow: the dividend (which x / 1 already gives)
        return fb.select(by_zero, ones, q)
    r = fb.emit("srem" if signed else "urem", [x, safe])
    # by zero: the dividend (x % 1 is 0, so select x); overflow: 0 (x % 1 already gives 0)
    return fb.select(by_zero, x, r)


@trans("div", "divu", "rem", "remu")
def trans_div(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, _divide(ctx, a.op, ctx.x(a.rs1), ctx.x(a.rs2), I64))
    return True


@trans("divw", "divuw", "remw", "remuw")
def trans_div_w(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    x, y = fb.trunc(I32, ctx.x(a.rs1)), fb.trunc(I32, ctx.x(a.rs2))
    r = _divide(ctx, a.op[:-1], x, y, I32)
    ctx.set_x(a.rd, fb.sext(I64, r))
    return True
