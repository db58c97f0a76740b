"""Dead code elimination: unreachable blocks, unused results of effect-free instructions, and
unused block parameters.

What it does:

- Blocks not reachable from the entry are removed.
- An instruction is *removable* when it has no effect but its result: a pure op
  (``OpDef.is_pure``), a ``get`` (reading state has no effect), or a ``call`` of a helper
  declared ``pure``. A removable instruction whose result nothing live uses is removed
  (a pure helper called without a result is removed too).
- A parameter of a block other than the entry whose value nothing live uses is removed from
  the block and from every branch to it.

"Live" is found by marking, not by counting uses, so dead cycles go too (a loop counter
that only feeds itself through a block parameter): every instruction that is not removable
is live and makes its value operands live (a ``brif`` its condition, ``ret`` and ``exit``
their values); a live result makes the operands of its instruction live, and a live block
parameter makes the arguments passed to it live.

What it deliberately does not do: remove ``load``s (they may trap), atomics, ``fence``,
``set``s (see ``forward`` for stores overwritten in a block), or calls of helpers not
declared ``pure``; merge blocks or thread jumps; remove instructions that are undefined
behaviour when run (an unused ``udiv`` by zero is removed: the program was wrong anyway).
"""

from __future__ import annotations

from ..ir import Block, Function, Inst, Module, Value
from ._util import branches_to, reachable_blocks


def removable(inst: Inst, module: Module) -> bool:
    """Whether ``inst`` has no effect but its result."""
    op = inst.op
    if op.is_pure or op.name == "get":
        return True
    if op.name == "call":
        decl = module.helpers.get(str(inst.imms.get("helper")))
        return decl is not None and decl.pure
    return False


def run(func: Function, module: Module) -> bool:
    """Remove dead code from ``func`` in place; True when anything changed."""
    changed = False
    reachable = reachable_blocks(func)
    if len(reachable) != len(func.blocks):
        func.blocks = reachable
        changed = True

    defs: dict[Value, Inst | tuple[Block, int]] = {}
    for block in func.blocks:
        for index, param in enumerate(block.params):
            defs[param] = (block, index)
        for inst in block.insts:
            if inst.result is not None:
                defs[inst.result] = inst
    incoming = branches_to(func)

    live: set[Value] = set()
    work: list[Value] = []

    def mark(values) -> None:
        for v in values:
            if v not in live:
                live.add(v)
                work.append(v)

    for _, inst in func.insts():
        if not removable(inst, module):
            mark(inst.args)
    while work:
        site = defs.get(work.pop())
        if isinstance(site, Inst):
            mark(site.args)
        elif site is not None:
            block, index = site
            mark(t.args[index] for t in incoming.get(block, []) if index < len(t.args))

    for block in func.blocks:
        kept = [i for i in block.insts
                if not removable(i, module) or (i.result is not None and i.result in live)]
        if len(kept) != len(block.insts):
            block.insts = kept
            changed = True
        if block is func.entry:
            continue
        keep = [i for i, p in enumerate(block.params) if p in live]
        if len(keep) != len(block.params):
            block.params = [block.params[i] for i in keep]
            for t in incoming.get(block, []):
                t.args = [t.args[i] for i in keep]
            changed = True
    return changed
