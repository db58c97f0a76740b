"""Zba, Zbb, Zbc and Zbs: address generation, basic bit manipulation, carry-less multiply,
single-bit operations. Carry-less products and orc.b go through pure helpers."""

from __future__ import annotations

from vm_ir import I8, I16, I32, I64

from .context import LiftContext, imm, trans


def _zext32(ctx: LiftContext, v):
    return ctx.fb.zext(I64, ctx.fb.trunc(I32, v))


# -- Zba ----------------------------------------------------------------------------------------
@trans("add.uw")
def trans_add_uw(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, ctx.fb.add(ctx.x(a.rs2), _zext32(ctx, ctx.x(a.rs1))))
    return True


@trans("sh1add", "sh2add", "sh3add", "sh1add.uw", "sh2add.uw", "sh3add.uw")
def trans_shadd(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    base = ctx.x(a.rs1)
    if a.op.endswith(".uw"):
        base = _zext32(ctx, base)
    ctx.set_x(a.rd, fb.add(fb.shl(base, ctx.const(int(a.op[2]))), ctx.x(a.rs2)))
    return True


@trans("slli.uw")
def trans_slli_uw(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, ctx.fb.shl(_zext32(ctx, ctx.x(a.rs1)), ctx.const(imm(a))))
    return True


# -- Zbb ----------------------------------------------------------------------------------------
@trans("andn", "orn", "xnor")
def trans_logic_not(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    x, y = ctx.x(a.rs1), ctx.x(a.rs2)
    if a.op == "xnor":
        r = fb.not_(fb.xor(x, y))
    else:
        r = fb.emit("and" if a.op == "andn" else "or", [x, fb.not_(y)])
    ctx.set_x(a.rd, r)
    return True


_COUNT = {"clz": "clz", "ctz": "ctz", "cpop": "popcnt"}


@trans("clz", "ctz", "cpop", "clzw", "ctzw", "cpopw")
def trans_count(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    x = ctx.x(a.rs1)
    if a.op.endswith("w"):
        r = fb.zext(I64, fb.emit(_COUNT[a.op[:-1]], [fb.trunc(I32, x)]))
    else:
        r = fb.emit(_COUNT[a.op], [x])
    ctx.set_x(a.rd, r)
    return True


_MINMAX = {"min": "smin", "max": "smax", "minu": "umin", "maxu": "umax"}


@trans(*_MINMAX)
def trans_minmax(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, ctx.fb.emit(_MINMAX[a.op], [ctx.x(a.rs1), ctx.x(a.rs2)]))
    return True


@trans("sext.b", "sext.h", "zext.h")
def trans_extend(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    narrow = I8 if a.op == "sext.b" else I16
    v = fb.trunc(narrow, ctx.x(a.rs1))
    ctx.set_x(a.rd, fb.sext(I64, v) if a.op.startswith("s") else fb.zext(I64, v))
    return True


@trans("rol", "ror", "rori")
def trans_rotate(ctx: LiftContext, a) -> bool:
    amount = ctx.const(imm(a)) if a.op == "rori" else ctx.x(a.rs2)
    ctx.set_x(a.rd, ctx.fb.emit("rotl" if a.op == "rol" else "rotr", [ctx.x(a.rs1), amount]))
    return True


@trans("rolw", "rorw", "roriw")
def trans_rotate_w(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    amount = ctx.const(imm(a), I32) if a.op == "roriw" else fb.trunc(I32, ctx.x(a.rs2))
    r = fb.emit("rotl" if a.op == "rolw" else "rotr", [fb.trunc(I32, ctx.x(a.rs1)), amount])
    ctx.set_x(a.rd, fb.sext(I64, r))
    return True


@trans("rev8")
def trans_rev8(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, ctx.fb.bswap(ctx.x(a.rs1)))
    return True


@trans("orc.b", "clmul", "clmulh", "clmulr")
def trans_helper_bits(ctx: LiftContext, a) -> bool:
    helper = a.op.replace(".", "_")
    args = [ctx.x(a.rs1)] if a.op == "orc.b" else [ctx.x(a.rs1), ctx.x(a.rs2)]
    ctx.set_x(a.rd, ctx.call(helper, *args, may_trap=False))
    return True


# -- Zbs ----------------------------------------------------------------------------------------
@trans("bclr", "bclri", "bext", "bexti", "binv", "binvi", "bset", "bseti")
def trans_single_bit(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    x = ctx.x(a.rs1)
    shamt = ctx.const(imm(a)) if a.op.endswith("i") else ctx.x(a.rs2)
    op = a.op.rstrip("i")
    if op == "bext":
        r = fb.and_(fb.lshr(x, shamt), ctx.const(1))
    else:
        bit = fb.shl(ctx.const(1), shamt)
        if op == "bclr":
            r = fb.and_(x, fb.not_(bit))
        elif op == "binv":
            r = fb.xor(x, bit)
        else:
            r = fb.or_(x, bit)
    ctx.set_x(a.rd, r)
    return True


# -- the pure helpers' implementations ----------------------------------------------------------
M64 = (1 << 64) - 1


def orc_b(ctx, x: int) -> int:
    return int.from_bytes(bytes(0xFF if b else 0 for b in x.to_bytes(8, "little")), "little")


def _clmul_full(x: int, y: int) -> int:
    product = 0
    while y:
        low = y & -y
        product ^= x << (low.bit_length() - 1)
        y ^= low
    return product


def clmul(ctx, x: int, y: int) -> int:
    return _clmul_full(x, y) & M64


def clmulh(ctx, x: int, y: int) -> int:
    return (_clmul_full(x, y) >> 64) & M64


def clmulr(ctx, x: int, y: int) -> int:
    return (_clmul_full(x, y) >> 63) & M64


PURE_HELPERS = {"orc_b": (orc_b, 1), "clmul": (clmul, 2), "clmulh": (clmulh, 2),
                "clmulr": (clmulr, 2)}
