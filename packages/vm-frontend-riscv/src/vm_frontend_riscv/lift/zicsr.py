"""Zicsr in user mode: fflags, frm and fcsr live in the state; cycle, time and instret come from
the ``csr_counter`` helper. Any other CSR is an illegal instruction, as under Linux."""

from __future__ import annotations

from vm_ir import I64

from .context import LiftContext, trans

FFLAGS, FRM, FCSR = 0x001, 0x002, 0x003
COUNTERS = {0xC00: "cycle", 0xC01: "time", 0xC02: "instret"}


def _read(ctx: LiftContext, csr: int):
    fb = ctx.fb
    if csr == FFLAGS:
        return ctx.get("fflags")
    if csr == FRM:
        return ctx.get("frm")
    if csr == FCSR:
        return fb.or_(fb.shl(ctx.get("frm"), ctx.const(5)), ctx.get("fflags"))
    return ctx.call("csr_counter", ctx.const(csr), may_trap=False)


def _write(ctx: LiftContext, csr: int, value) -> None:
    fb = ctx.fb
    if csr == FFLAGS:
        ctx.set("fflags", fb.and_(value, ctx.const(0x1F)))
    elif csr == FRM:
        ctx.set("frm", fb.and_(value, ctx.const(7)))
    elif csr == FCSR:
        ctx.set("fflags", fb.and_(value, ctx.const(0x1F)))
        ctx.set("frm", fb.and_(fb.lshr(value, ctx.const(5)), ctx.const(7)))


@trans("csrrw", "csrrs", "csrrc", "csrrwi", "csrrsi", "csrrci")
def trans_csr(ctx: LiftContext, a) -> bool:
    csr = a.csr
    if csr not in (FFLAGS, FRM, FCSR) and csr not in COUNTERS:
        return False
    immediate = a.op.endswith("i")
    src = ctx.const(a.imm) if immediate else ctx.x(a.rs1)
    kind = a.op[4]  # csrr(w|s|c)[i]
    writes = kind == "w" or (a.imm if immediate else a.rs1) != 0
    if writes and csr in COUNTERS:
        return False  # the counters are read-only
    if kind == "w" and a.rd == 0:
        _write(ctx, csr, src)
        return True
    old = _read(ctx, csr)
    if writes:
        fb = ctx.fb
        if kind == "w":
            new = src
        elif kind == "s":
            new = fb.or_(old, src)
        else:
            new = fb.and_(old, fb.not_(src))
        _write(ctx, csr, new)
    ctx.set_x(a.rd, old)
    return True


__all__ = ["COUNTERS", "I64"]
