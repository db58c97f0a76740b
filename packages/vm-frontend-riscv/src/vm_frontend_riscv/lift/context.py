"""What a translator sees: a LiftContext that builds the block's vm-ir function.

Translators are ``trans_<op>(ctx, insn) -> bool`` (False: not a valid instruction here, which
becomes an illegal-instruction trap), one per decoded operation, grouped by extension in the
modules of this package and registered with ``@trans("op")``.

Conventions that keep traps precise: ``ctx.sync_pc()`` writes the current instruction's pc to
the state before any op that may trap (loads, stores, helpers that may fault, ``trap``); the
state-forwarding pass removes the writes nothing can observe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vm_ir import I1, I32, I64, FieldRef, FunctionBuilder, MemFlags, Module, Type, Value

Translator = Callable[["LiftContext", Any], bool]
TRANSLATORS: dict[str, Translator] = {}

_X = [FieldRef("x", i) for i in range(32)]
_F = [FieldRef("f", i) for i in range(32)]
_PC = FieldRef("pc")


def imm(a) -> int:
    """The immediate of an instruction: ``shamt`` for shifts, else ``imm``."""
    shamt = getattr(a, "shamt", None)
    return a.imm if shamt is None else shamt


def trans(*ops: str) -> Callable[[Translator], Translator]:
    """Register a translator for the named operations."""

    def register(fn: Translator) -> Translator:
        for op in ops:
            if op in TRANSLATORS:
                raise ValueError(f"two translators for {op}")
            TRANSLATORS[op] = fn
        return fn

    return register


class LiftContext:
    """Builds one block; ``pc``/``size`` describe the instruction being translated."""

    def __init__(self, module: Module, start_pc: int) -> None:
        self.module = module
        self.fb = FunctionBuilder(module, f"block_{start_pc:x}")
        self.pc = start_pc
        self.size = 4
        #: set when the instruction ended the block (a jump, branch, trap)
        self.ended = False
        self._consts: dict[tuple[int, Type], Value] = {}

    @property
    def next_pc(self) -> int:
        return (self.pc + self.size) & 0xFFFFFFFFFFFFFFFF

    # -- values ----------------------------------------------------------------------------------
    def const(self, value: int, type: Type = I64) -> Value:
        key = (value & type.mask, type)
        v = self._consts.get(key)
        if v is None:
            v = self.fb.iconst(type, value & type.mask)
            self._consts[key] = v
        return v

    def x(self, r: int) -> Value:
        """Integer register r (x0 reads as 0)."""
        if r == 0:
            return self.const(0)
        return self.fb.get(_X[r])

    def set_x(self, r: int, v: Value) -> None:
        """Write integer register r (writes to x0 are dropped)."""
        if r != 0:
            self.fb.set(_X[r], v)

    def f(self, r: int) -> Value:
        return self.fb.get(_F[r])

    def set_f(self, r: int, v: Value) -> None:
        self.fb.set(_F[r], v)

    def get(self, name: str) -> Value:
        return self.fb.get(FieldRef(name))

    def set(self, name: str, v: Value) -> None:
        self.fb.set(FieldRef(name), v)

    # -- common shapes --------------------------------------------------------------------------
    def sext32(self, v: Value) -> Value:
        """The low 32 bits of an i64, sign-extended back to i64 (the *W instructions)."""
        return self.fb.sext(I64, self.fb.trunc(I32, v))

    def bool64(self, c: Value) -> Value:
        return self.fb.zext(I64, c)

    def sync_pc(self) -> None:
        self.fb.set(_PC, self.const(self.pc))

    def load(self, type: Type, addr: Value, size: int, signed: bool = False) -> Value:
        self.sync_pc()
        flags = MemFlags(size=size if size != type.bytes else None,
                         sext=signed and size < type.bytes)
        return self.fb.load(type, addr, flags)

    def store(self, value: Value, addr: Value, size: int) -> None:
        self.sync_pc()
        self.fb.store(value, addr, MemFlags(size=size if size != value.type.bytes else None))

    def call(self, helper: str, *args: Value, may_trap: bool = True) -> Value | None:
        if may_trap:
            self.sync_pc()
        return self.fb.call(helper, *args)

    # -- ending the block -----------------------------------------------------------------------
    def jump(self, target: Value) -> None:
        self.fb.exit(target)
        self.ended = True

    def branch(self, cond: Value, target: int) -> None:
        taken = self.const(target)
        self.jump(self.fb.select(cond, taken, self.const(self.next_pc)))

    def trap(self, kind: str) -> None:
        self.sync_pc()
        self.fb.trap(kind)
        self.ended = True

    def end_here(self) -> None:
        """End the block after this instruction (fence.i, a CSR write that matters...)."""
        self.fb.exit(self.const(self.next_pc))
        self.ended = True


__all__ = ["I1", "I32", "I64", "TRANSLATORS", "LiftContext", "imm", "trans"]
