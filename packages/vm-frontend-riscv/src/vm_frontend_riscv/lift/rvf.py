"""F and D: single- and double-precision floating point.

Loads, stores, moves and NaN-boxing are vm-ir; arithmetic, comparisons and conversions call
helpers over ``softfloat`` (exact IEEE results, every rounding mode, exact ``fflags``). A
helper gets the instruction's ``rm``; 7 (dynamic) reads ``frm`` at run time, and a reserved
``frm`` makes the instruction illegal, as the ISA says.
"""

from __future__ import annotations

from collections.abc import Callable

from vm_ir import I32, I64, GuestTrap

from .. import softfloat as sf
from .context import LiftContext, trans

BOX = 0xFFFFFFFF00000000
M64 = (1 << 64) - 1

# name -> (implementation, number of operands, takes rm, result is an integer register)
FP_HELPERS: dict[str, tuple[Callable, int, bool, bool]] = {}


def _rm(state, rm: int) -> int:
    if rm == 7:
        rm = state["frm"]
    if rm > 4:
        raise GuestTrap("illegal")
    return rm


def _flags(state, flags: int) -> None:
    if flags:
        state["fflags"] = state["fflags"] | flags


def _sext32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v | BOX if v >> 31 else v


def _register(name: str, fn: Callable, arity: int, rm: bool, single_in: bool, single_out: bool,
              int_out: bool = False, int_in: bool = False, word_out: bool = False) -> None:
    """Wrap a softfloat function as a helper taking register values (and rm)."""
    unbox = sf.unbox_f32 if single_in and not int_in else (lambda v: v)

    def box(r: int) -> int:
        if int_out:
            return _sext32(r) if word_out else r
        return sf.box_f32(r) if single_out else r

    if rm:
        if arity == 1:
            def helper(ctx, a, r):
                st = ctx.state
                res, fl = fn(unbox(a), _rm(st, r))
                _flags(st, fl)
                return box(res)
        elif arity == 2:
            def helper(ctx, a, b, r):
                st = ctx.state
                res, fl = fn(unbox(a), unbox(b), _rm(st, r))
                _flags(st, fl)
                return box(res)
        else:
            def helper(ctx, a, b, c, r):
                st = ctx.state
                res, fl = fn(unbox(a), unbox(b), unbox(c), _rm(st, r))
                _flags(st, fl)
                return box(res)
    elif arity == 1:
        def helper(ctx, a):
            return box(fn(unbox(a)))
    else:
        def helper(ctx, a, b):
            st = ctx.state
            res, fl = fn(unbox(a), unbox(b))
            _flags(st, fl)
            return box(res)
    FP_HELPERS[name] = (helper, arity, rm, int_out)


for _w, _s in (("s", True), ("d", False)):
    _F = sf.F32 if _s else sf.F64
    for _op in ("add", "sub", "mul", "div"):
        _register(f"f{_op}_{_w}", getattr(_F, _op), 2, True, _s, _s)
    _register(f"fsqrt_{_w}", _F.sqrt, 1, True, _s, _s)
    for _op in ("fmadd", "fmsub", "fnmsub", "fnmadd"):
        _register(f"{_op}_{_w}", getattr(_F, _op), 3, True, _s, _s)
    for _op in ("min", "max"):
        _register(f"f{_op}_{_w}", getattr(_F, _op), 2, False, _s, _s)
    for _op in ("eq", "lt", "le"):
        _register(f"f{_op}_{_w}", getattr(_F, _op), 2, False, _s, _s, int_out=True)
    _register(f"fclass_{_w}", _F.classify, 1, False, _s, _s, int_out=True)
    for _op in ("sgnj", "sgnjn", "sgnjx"):
        _register(f"f{_op}_{_w}", (lambda bits_op: (lambda a, b: (bits_op(a, b), 0)))(getattr(_F, _op)),
                  2, False, _s, _s)
    for _to, _word in (("w", True), ("wu", True), ("l", False), ("lu", False)):
        _to_int = getattr(_F, {"w": "to_i32", "wu": "to_u32", "l": "to_i64", "lu": "to_u64"}[_to])
        _register(f"fcvt_{_to}_{_w}", _to_int, 1, True, _s, False, int_out=True, word_out=_word)
        _from_int = getattr(_F, {"w": "from_i32", "wu": "from_u32", "l": "from_i64",
                                 "lu": "from_u64"}[_to])
        _register(f"fcvt_{_w}_{_to}", _from_int, 1, True, False, _s, int_in=True)
_register("fcvt_s_d", sf.f64_to_f32, 1, True, False, True)
_register("fcvt_d_s", sf.f32_to_f64, 1, True, True, False)


def _helper_name(op: str) -> str:
    """``fadd.s`` -> ``fadd_s``, ``fcvt.w.d`` -> ``fcvt_w_d``."""
    return op.replace(".", "_")


# -- loads, stores and moves ----------------------------------------------------------------------
@trans("flw", "fld")
def trans_fload(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    addr = fb.add(ctx.x(a.rs1), ctx.const(a.imm))
    if a.op == "flw":
        value = fb.or_(ctx.load(I64, addr, 4), ctx.const(BOX))
    else:
        value = ctx.load(I64, addr, 8)
    ctx.set_f(a.rd, value)
    return True


@trans("fsw", "fsd")
def trans_fstore(ctx: LiftContext, a) -> bool:
    addr = ctx.fb.add(ctx.x(a.rs1), ctx.const(a.imm))
    ctx.store(ctx.f(a.rs2), addr, 4 if a.op == "fsw" else 8)
    return True


@trans("fmv.x.w", "fmv.w.x", "fmv.x.d", "fmv.d.x")
def trans_fmv(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    if a.op == "fmv.x.w":
        ctx.set_x(a.rd, fb.sext(I64, fb.trunc(I32, ctx.f(a.rs1))))
    elif a.op == "fmv.w.x":
        ctx.set_f(a.rd, fb.or_(fb.zext(I64, fb.trunc(I32, ctx.x(a.rs1))), ctx.const(BOX)))
    elif a.op == "fmv.x.d":
        ctx.set_x(a.rd, ctx.f(a.rs1))
    else:
        ctx.set_f(a.rd, ctx.x(a.rs1))
    return True


# -- everything else goes through a helper -----------------------------------------------------
_FP_OPS = [op for op in ["fadd.s", "fsub.s", "fmul.s", "fdiv.s", "fsqrt.s", "fmadd.s", "fmsub.s", "fnmsub.s", "fnmadd.s", "fmin.s", "fmax.s", "feq.s", "flt.s", "fle.s", "fclass.s", "fsgnj.s", "fsgnjn.s", "fsgnjx.s", "fcvt.w.s", "fcvt.wu.s", "fcvt.l.s", "fcvt.lu.s", "fcvt.s.w", "fcvt.s.wu", "fcvt.s.l", "fcvt.s.lu", "fadd.d", "fsub.d", "fmul.d", "fdiv.d", "fsqrt.d", "fmadd.d", "fmsub.d", "fnmsub.d", "fnmadd.d", "fmin.d", "fmax.d", "feq.d", "flt.d", "fle.d", "fclass.d", "fsgnj.d", "fsgnjn.d", "fsgnjx.d", "fcvt.w.d", "fcvt.wu.d", "fcvt.l.d", "fcvt.lu.d", "fcvt.d.w", "fcvt.d.wu", "fcvt.d.l", "fcvt.d.lu", "fcvt.s.d", "fcvt.d.s"]]


@trans(*_FP_OPS)
def trans_fp(ctx: LiftContext, a) -> bool:
    name = _helper_name(a.op)
    _, arity, takes_rm, int_out = FP_HELPERS[name]
    int_in = a.op.startswith("fcvt.") and a.op.split(".")[2] in ("w", "wu", "l", "lu")
    sources = [a.rs1, getattr(a, "rs2", 0), getattr(a, "rs3", 0)][:arity]
    args = [ctx.x(r) if int_in else ctx.f(r) for r in sources]
    if takes_rm:
        args.append(ctx.const(a.rm))
    result = ctx.call(name, *args, may_trap=takes_rm)
    if int_out:
        ctx.set_x(a.rd, result)
    else:
        ctx.set_f(a.rd, result)
    return True
