"""The helpers lifted RISC-V code calls: their vm-ir declarations and Python implementations.

An implementation is ``fn(ctx, *args)``: ``ctx.state`` reads and writes the guest state by
field (``ctx.state["fflags"]``), ``ctx.memory`` is guest memory, and under an engine
``ctx.engine`` is the engine (for ``fence.i``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vm_ir import I64, HelperDecl

from .lift.rvf import FP_HELPERS
from .lift.zb import PURE_HELPERS


def fence_i(ctx) -> None:
    """Guest code may have been written: drop every translation."""
    engine = getattr(ctx, "engine", None)
    if engine is not None:
        engine.invalidate_all()


_START = time.monotonic_ns()


def csr_counter(ctx, csr: int) -> int:
    """cycle, time and instret as Linux lets user code read them: a monotonic count (the
    values are not architectural; programs only ever compare or subtract them)."""
    return (time.monotonic_ns() - _START) & ((1 << 64) - 1)


def declarations() -> dict[str, HelperDecl]:
    decls = {
        "fence_i": HelperDecl("fence_i", [], None),
        "csr_counter": HelperDecl("csr_counter", [I64], I64),
    }
    for name, (_, arity) in PURE_HELPERS.items():
        decls[name] = HelperDecl(name, [I64] * arity, I64, pure=True)
    for name, (_, arity, takes_rm, _int_out) in FP_HELPERS.items():
        # helpers taking rm may trap (a reserved frm) and write fflags; the rest only fflags
        decls[name] = HelperDecl(name, [I64] * (arity + takes_rm), I64,
                                 native="fp." + name.replace("_", "."))
    return decls


def implementations() -> dict[str, Callable]:
    impls: dict[str, Callable] = {"fence_i": fence_i, "csr_counter": csr_counter}
    for name, (fn, _) in PURE_HELPERS.items():
        impls[name] = fn
    for name, (fn, *_rest) in FP_HELPERS.items():
        impls[name] = fn
    return impls


DECLARATIONS = declarations()
IMPLEMENTATIONS = implementations()
