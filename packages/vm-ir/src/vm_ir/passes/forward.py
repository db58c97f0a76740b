"""State-access forwarding within a block: known field values, and overwritten ``set``s.

Walking each block from top to bottom, the pass tracks the value each state field (a
``FieldRef``: ``pc`` or ``x[3]``; different refs never overlap) is known to hold:

- A ``set f, v`` makes ``v`` the known value of ``f``; a ``get f`` with no known value makes
  its own result the known value.
- A ``get f`` while ``f`` has a known value becomes ``copy`` of that value (its result and
  number are kept; ``copyprop`` and ``dce`` then remove it).
- A call of a helper not declared ``pure`` may read and write any field: after it nothing is
  known. Pure helpers, memory ops and everything else leave the fields alone.

And it removes a ``set f`` that a later ``set f`` in the same block overwrites before anything
can observe the first value. Observers are: a ``get f`` (unless forwarded, it reads the
state), a call of a helper not declared ``pure`` (it may read the state), and any op that may
trap (``Effect.MAY_TRAP``: loads, stores, atomics), since a trap must see the state as the ops
before it left it. The terminators ``trap``/``exit``/``ret`` end the block, so the last ``set``
of a block is always kept.

What it deliberately does not do: look across blocks (a ``set`` in one block and a ``get`` in
its successor), forward through memory (``store`` then ``load``), or remove a ``set`` of the
value the field is known to hold already (``set f, v`` after ``v = get f``). A ``get`` turned
into a ``copy`` no longer observes the state, so a ``set`` before it may then be removed.
"""

from __future__ import annotations

from ..ir import FieldRef, Function, Inst, Module, Value
from ..ops import Effect
from ._util import make_copy


def _impure_call(inst: Inst, module: Module) -> bool:
    if inst.op.name != "call":
        return False
    decl = module.helpers.get(str(inst.imms.get("helper")))
    return decl is None or not decl.pure


def run(func: Function, module: Module) -> bool:
    """Forward state accesses in ``func`` in place; True when anything changed."""
    changed = False
    for block in func.blocks:
        known: dict[FieldRef, Value] = {}
        pending: dict[FieldRef, Inst] = {}  # the last set of a field, not observed yet
        dead: set[int] = set()
        for inst in block.insts:
            name = inst.op.name
            if name == "get":
                ref = inst.imms["field"]
                assert isinstance(ref, FieldRef) and inst.result is not None
                if ref in known:
                    make_copy(inst, known[ref])
                    changed = True
                else:
                    known[ref] = inst.result
                    pending.pop(ref, None)
            elif name == "set":
                ref = inst.imms["field"]
                assert isinstance(ref, FieldRef)
                earlier = pending.get(ref)
                if earlier is not None:
                    dead.add(id(earlier))
                pending[ref] = inst
                known[ref] = inst.args[0]
            elif _impure_call(inst, module):
                known.clear()
                pending.clear()
            elif inst.op.effects & Effect.MAY_TRAP:
                pending.clear()
        if dead:
            block.insts = [i for i in block.insts if id(i) not in dead]
            changed = True
    return changed
