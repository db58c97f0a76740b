"""RV64A: LR/SC and AMOs. Misaligned addresses trap (``misaligned``), as the ISA allows.

SC compares the reserved value: ``cmpxchg(addr, res_val, new)`` where ``new`` is the old value
itself when the reservation does not cover ``addr``, so a failed SC never changes memory, and
every SC clears the reservation.
"""

from __future__ import annotations

from vm_ir import I32, I64, MemFlags

from ..state import NO_RESERVATION
from .context import LiftContext, trans

_AMO = {"amoswap": "xchg", "amoadd": "add", "amoxor": "xor", "amoand": "and", "amoor": "or",
        "amomin": "smin", "amomax": "smax", "amominu": "umin", "amomaxu": "umax"}


def _width(op: str):
    return (I32, 4) if op.endswith(".w") else (I64, 8)


@trans("lr.w", "lr.d")
def trans_lr(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    _type, size = _width(a.op)
    addr = ctx.x(a.rs1)
    ctx.sync_pc()
    value = fb.load(I64, addr, MemFlags(size=size if size != 8 else None, sext=size == 4,
                                        align=size))
    ctx.set("res_addr", addr)
    ctx.set("res_val", value)
    ctx.set_x(a.rd, value)
    return True


@trans("sc.w", "sc.d")
def trans_sc(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    type, _size = _width(a.op)
    addr = ctx.x(a.rs1)
    reserved = fb.icmp("eq", ctx.get("res_addr"), addr)
    expected = ctx.get("res_val")
    new = ctx.x(a.rs2)
    if type is I32:
        expected, new = fb.trunc(I32, expected), fb.trunc(I32, new)
    ctx.sync_pc()
    old = fb.cmpxchg(type, addr, expected, fb.select(reserved, new, expected), "seq_cst")
    ok = fb.and_(reserved, fb.icmp("eq", old, expected))
    ctx.set("res_addr", ctx.const(NO_RESERVATION))
    ctx.set_x(a.rd, fb.zext(I64, fb.xor(ok, ctx.const(1, ok.type))))
    return True


@trans(*(f"{name}.{w}" for name in _AMO for w in "wd"))
def trans_amo(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    type, _ = _width(a.op)
    value = ctx.x(a.rs2)
    if type is I32:
        value = fb.trunc(I32, value)
    ctx.sync_pc()
    old = fb.atomic_rmw(type, _AMO[a.op.split(".")[0]], ctx.x(a.rs1), value, "seq_cst")
    ctx.set_x(a.rd, fb.sext(I64, old) if type is I32 else old)
    return True
