"""Copy propagation, through instructions and through block parameters.

What it does:

- Every use of the result of ``copy`` is replaced by the copy's source (following chains of
  copies to the first value that is not one), and the copy, now unused, is removed.
- A block parameter (of any block but the entry) that receives the same value ``v`` along every
  branch to its block, or ``v`` along some and the parameter itself along the others (a loop
  that passes it around unchanged), is replaced by ``v`` everywhere, and removed from the block
  and from every branch to it. In a valid function ``v`` is then defined in a block that
  strictly dominates the parameter's block (the first arrival at the block comes from a
  predecessor that the block does not dominate, which cannot pass the parameter itself).

What it deliberately does not do: it does not remove parameters of the entry block (they are
the function's signature), does not look through ``select``, conversions or ``bitcast``,
does not merge equal constants (``iconst.i64 1`` twice stays twice) and leaves other dead code
to ``dce``. Copies whose chain loops back on itself (possible only in unreachable code) are
left as they are.
"""

from __future__ import annotations

from ..ir import Function, Module, Value
from ._util import branches_to, replace_all_uses


def run(func: Function, module: Module) -> bool:
    """Propagate copies in ``func`` in place; True when anything changed."""
    changed = _propagate_copies(func)
    while _propagate_params(func):
        changed = True
    return changed


def _propagate_copies(func: Function) -> bool:
    sources: dict[Value, Value] = {}
    for _, inst in func.insts():
        if inst.op.name == "copy" and inst.result is not None and len(inst.args) == 1:
            sources[inst.result] = inst.args[0]
    if not sources:
        return False
    mapping: dict[Value, Value] = {}
    for value in sources:
        root, seen = value, {value}
        while root in sources:
            root = sources[root]
            if root in seen:  # a cycle of copies: unreachable code, leave it
                break
            seen.add(root)
        else:
            mapping[value] = root
    if not mapping:
        return False
    replace_all_uses(func, mapping)
    for block in func.blocks:
        block.insts = [i for i in block.insts
                       if not (i.op.name == "copy" and i.result in mapping)]
    return True


def _propagate_params(func: Function) -> bool:
    """Replace the block parameters that always receive one value; True when any was."""
    incoming = branches_to(func)
    mapping: dict[Value, Value] = {}
    for block in func.blocks[1:]:
        targets = incoming.get(block, [])
        if not targets or any(len(t.args) != len(block.params) for t in targets):
            continue
        for index, param in enumerate(block.params):
            values = {t.args[index] for t in targets}
            values.discard(param)
            if len(values) == 1:
                mapping[param] = values.pop()
    # a parameter replaced by another replaced parameter: follow to the end of the chain; a
    # chain that comes back to where it started (only in unreachable code) is left alone
    resolved: dict[Value, Value] = {}
    for param, value in mapping.items():
        seen = {param}
        while value in mapping and value not in seen:
            seen.add(value)
            value = mapping[value]
        if value not in mapping:
            resolved[param] = value
    if not resolved:
        return False
    for block in func.blocks[1:]:
        keep = [i for i, p in enumerate(block.params) if p not in resolved]
        if len(keep) == len(block.params):
            continue
        block.params = [block.params[i] for i in keep]
        for t in incoming.get(block, []):
            t.args = [t.args[i] for i in keep]
    replace_all_uses(func, resolved)
    return True
