"""Optimisation passes over vm-ir functions.

Each pass is a module with ``run(func, module) -> bool`` that rewrites one function in place
and says whether it changed anything; each keeps the module valid (``verify`` accepts the
result) and never renumbers values: an instruction that is simplified keeps its result.

- ``constfold``: constant folding through ``vm_ir.semantics`` and safe integer identities.
- ``copyprop``: uses of ``copy`` results and of single-valued block parameters replaced.
- ``forward``: state reads and overwritten writes forwarded within a block.
- ``dce``: unreachable blocks, unused effect-free instructions and block parameters removed.

``optimize(module)`` runs them all, in that order, on every function until none changes
anything, and gives back the same (modified) module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..ir import Function, Module
from . import constfold, copyprop, dce, forward

Pass = Callable[[Function, Module], bool]

#: the default pipeline, in the order ``optimize`` runs it
PASSES: tuple[Pass, ...] = (constfold.run, copyprop.run, forward.run, dce.run)

#: more rounds than this means a pass keeps reporting a change that changes nothing
MAX_ROUNDS = 1000


def optimize_function(func: Function, module: Module, passes: Sequence[Pass] = PASSES) -> bool:
    """Run ``passes`` on ``func`` until none changes anything; True when any did."""
    changed = False
    for _ in range(MAX_ROUNDS):
        round_changed = False
        for run in passes:
            round_changed |= run(func, module)
        if not round_changed:
            return changed
        changed = True
    raise RuntimeError(f"passes on @{func.name} did not reach a fixed point in {MAX_ROUNDS} "
                       "rounds: a pass reports changes it does not make")


def optimize(module: Module, passes: Sequence[Pass] = PASSES) -> Module:
    """Optimise every function of ``module`` in place; gives back ``module``."""
    for func in module.functions.values():
        optimize_function(func, module, passes)
    return module


__all__ = ["MAX_ROUNDS", "PASSES", "Pass", "constfold", "copyprop", "dce", "forward",
           "optimize", "optimize_function"]
