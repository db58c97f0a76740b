"""Constant folding and a few safe algebraic identities.

What it does:

- Every pure op (``OpDef.is_pure``) whose value operands are all ``iconst``/``fconst`` results
  is evaluated with ``vm_ir.semantics.SEMANTICS`` (the evaluator's own table, so folding and
  evaluation cannot disagree) and becomes ``iconst.T`` (integer and i1 results) or ``fconst.T``
  (float results, as exact bit patterns, NaN payloads included). The instruction keeps its
  result value, so the printed numbering does not change.
- A fold that is undefined behaviour (``UndefinedBehavior``: division by zero, ``MIN / -1``) is
  left alone: the program keeps its meaning, whatever that is, for the evaluator to report.
- Identities that need only some operands constant, each rewritten to ``copy`` or a constant:
  ``x+0``, ``0+x``, ``x-0``, ``x*1``, ``1*x``, ``x*0``, ``x/1`` (``udiv``, ``sdiv``), ``x&-1``,
  ``x&0``, ``x|0``, ``x|-1``, ``x^0``, shifts and rotates by a multiple of the width,
  ``x-x`` and ``x^x`` (0), ``x&x``, ``x|x`` and min/max of ``x, x`` (``x``), ``select`` with a
  constant condition or equal arms.
- ``brif`` on a constant condition, or with the same block and arguments on both sides,
  becomes ``br``. The block no longer branched to may become unreachable: ``dce`` removes it.

What it deliberately does not do: fold ops with effects (``get``, ``load``, ``call`` of any
helper, pure or not: the evaluator's helpers are Python code the pass cannot run), fold
``v128`` results (there is no ``v128`` constant), reassociate (``(x+1)+2``), or apply float
identities (``x+0.0`` is not ``x`` for ``x = -0.0``; ``x*1.0`` changes a NaN's payload).
Removing the constants and copies it leaves behind is ``copyprop``'s and ``dce``'s work.
"""

from __future__ import annotations

from ..ir import Function, Inst, Module, Value
from ..ops import OPS
from ..semantics import SEMANTICS, UndefinedBehavior
from ._util import CONST_OPS, constants, make_const, make_copy

_ADDITIVE = ("add", "or", "xor")
_SHIFTS = ("shl", "lshr", "ashr", "rotl", "rotr")
_IDEMPOTENT = ("and", "or", "smin", "smax", "umin", "umax")


def run(func: Function, module: Module) -> bool:
    """Fold ``func`` in place; True when anything changed."""
    known = constants(func)
    changed = False
    progress = True
    while progress:  # a block written before its dominator may use a value folded later
        progress = False
        for block in func.blocks:
            for inst in block.insts:
                if inst.op.name == "brif":
                    progress |= _fold_brif(inst, known)
                elif _fold(inst, known):
                    assert inst.result is not None
                    if inst.op.name in CONST_OPS:
                        known[inst.result] = int(inst.imms["imm"])  # type: ignore[call-overload]
                    progress = True
        changed |= progress
    return changed


def _fold(inst: Inst, known: dict[Value, int]) -> bool:
    op = inst.op
    if not op.is_pure or op.name in CONST_OPS or inst.result is None:
        return False
    # there is no v128 constant: a v128 result is only ever simplified to a copy
    if inst.result.type.kind != "vector" and all(a in known for a in inst.args):
        sem = SEMANTICS[op.name]
        try:
            value = sem(inst.result.type, [known[a] for a in inst.args], inst.imms,
                        [a.type for a in inst.args])
        except UndefinedBehavior:
            return False
        make_const(inst, value)
        return True
    rewrite = _identity(inst, known)
    if rewrite is None:
        return False
    if isinstance(rewrite, Value):
        make_copy(inst, rewrite)
    else:
        make_const(inst, rewrite)
    return True


def _identity(inst: Inst, known: dict[Value, int]) -> Value | int | None:
    """What ``inst`` simplifies to, knowing some operands: a value to copy, a constant, or
    None."""
    name = inst.op.name
    if name == "select":
        c, a, b = inst.args
        if c in known:
            return a if known[c] & 1 else b
        return a if a is b else None
    if len(inst.args) != 2 or inst.result is None or not inst.result.type.is_int:
        return None
    if name not in _ADDITIVE + _SHIFTS + _IDEMPOTENT + ("sub", "mul", "udiv", "sdiv"):
        return None
    a, b = inst.args
    t = inst.result.type
    ca, cb = known.get(a), known.get(b)
    if name in _ADDITIVE:
        if cb == 0:
            return a
        if ca == 0:
            return b
    if name == "sub" and cb == 0:
        return a
    if name in ("mul", "udiv", "sdiv") and cb == 1:
        return a
    if name == "mul":
        if ca == 1:
            return b
        if ca == 0 or cb == 0:
            return 0
    if name == "and":
        if cb == t.mask:
            return a
        if ca == t.mask:
            return b
        if ca == 0 or cb == 0:
            return 0
    if name == "or" and t.mask in (ca, cb):
        return t.mask
    if name in _SHIFTS and cb is not None and cb % t.bits == 0:
        return a
    if a is b:
        if name in ("sub", "xor"):
            return 0
        if name in _IDEMPOTENT:
            return a
    return None


def _fold_brif(inst: Inst, known: dict[Value, int]) -> bool:
    then, other = inst.targets
    cond = inst.args[0]
    if cond in known:
        chosen = then if known[cond] & 1 else other
    elif then.block is other.block and then.args == other.args:
        chosen = then
    else:
        return False
    inst.op = OPS["br"]
    inst.args = []
    inst.targets = [chosen]
    return True
