"""Small helpers the passes share: constants, uses, rewriting an instruction in place."""

from __future__ import annotations

from ..ir import Block, Function, Inst, Value
from ..ops import OPS
from ..types import Type

CONST_OPS = ("iconst", "fconst")


def constants(func: Function) -> dict[Value, int]:
    """The value of every ``iconst``/``fconst`` result in ``func`` (masked to its type)."""
    known: dict[Value, int] = {}
    for _, inst in func.insts():
        if inst.op.name in CONST_OPS and inst.result is not None:
            known[inst.result] = int(inst.imms["imm"]) & inst.result.type.mask  # type: ignore[call-overload]
    return known


def make_const(inst: Inst, value: int) -> None:
    """Turn ``inst`` into ``iconst.T``/``fconst.T`` of its own result type, result kept."""
    assert inst.result is not None
    t: Type = inst.result.type
    inst.op = OPS["fconst" if t.is_float else "iconst"]
    inst.type = t
    inst.args = []
    inst.imms = {"imm": value & t.mask}
    inst.targets = []


def make_copy(inst: Inst, source: Value) -> None:
    """Turn ``inst`` into ``copy source``, result kept."""
    inst.op = OPS["copy"]
    inst.type = None
    inst.args = [source]
    inst.imms = {}
    inst.targets = []


def replace_all_uses(func: Function, mapping: dict[Value, Value]) -> None:
    """Replace every use of a key of ``mapping`` in ``func`` (branch arguments included)."""
    if not mapping:
        return
    for _, inst in func.insts():
        inst.replace_uses(mapping)


def branches_to(func: Function) -> dict[Block, list]:
    """For each block, the branch targets (``Target``s) in ``func`` that lead to it."""
    incoming: dict[Block, list] = {b: [] for b in func.blocks}
    for block in func.blocks:
        term = block.terminator
        if term is None:
            continue
        for target in term.targets:
            incoming.setdefault(target.block, []).append(target)
    return incoming


def reachable_blocks(func: Function) -> list[Block]:
    """The blocks reachable from the entry, in the function's order."""
    if not func.blocks:
        return []
    seen = {func.entry}
    stack = [func.entry]
    while stack:
        for succ in stack.pop().successors():
            if succ not in seen:
                seen.add(succ)
                stack.append(succ)
    return [b for b in func.blocks if b in seen]
