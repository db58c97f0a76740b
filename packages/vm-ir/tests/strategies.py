"""Hypothesis strategies for vm-ir: random well-typed, verifier-clean modules, and inputs to
run them on.

``cases()`` draws a ``Case``: a module (the state layout ``STATE``, a subset of the helpers of
``HELPERS``, one or two functions) with the arguments, initial state and memory to run each
function on. A function is a CFG of forward branches (``br``, ``brif``), optionally with one
self-loop whose first block parameter counts the iterations (so evaluation ends), with block
parameters, and instructions drawn from the op table; each block ends in ``ret``, ``exit``,
``trap`` or a branch. No generated program is undefined behaviour: divisors are forced odd
(``or b, 1``; signed ones also not -1), and memory addresses are ``iconst`` in [0, 0x1000) plus a
masked offset, so they stay inside ``MEMORY_SIZE`` bytes of ``FlatMemory`` except where a
fault or a misaligned access is drawn on purpose.

Values are picked so that most results feed later ops, and most blocks end by storing the
results nothing used into memory no other op touches ("sinks"), so that a pass that changes
what a function computes changes its final memory. A function draws its ops from one of the
``PROFILES``: "mixed", "state" (state accesses around calls and ops that may trap, for
``forward``) or "arith" (arithmetic on constants, for ``constfold``).

The generator reads the op table: an op of ``GENERIC_OPS`` is made from its ``OpDef`` alone
(its type variable class, conversion rule, operand constraints and condition lists); the ops
of ``SPECIAL_OPS`` have a recipe of their own. Importing this module fails for an op of
``OPS`` in neither set (nor a terminator, nor ``EXCLUDED_OPS``): review a new op, then add it.
"""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from vm_ir import (
    ALL_TYPES,
    F32,
    F64,
    I1,
    I8,
    I16,
    I32,
    I64,
    I128,
    OPS,
    V128,
    Exited,
    FieldRef,
    FlatMemory,
    FunctionBuilder,
    GuestTrap,
    MemFlags,
    Module,
    OpDef,
    OperandKind,
    Returned,
    State,
    StateLayout,
    Target,
    Trapped,
    Type,
    Value,
    evaluate,
    type_named,
)
from vm_ir.ops import FCMP_CONDS, ICMP_CONDS, ORDERS, RMW_OPS, TRAP_KINDS
from vm_ir.values import float_to_bits

# --- which ops the generator makes -------------------------------------------------------------

#: Made by the table-driven recipe: T from the op's type variable class (or a pair of types
#: meeting its conversion rule), value operands by their constraints, condition immediates
#: from their lists. Reviewed: none of these is undefined behaviour for any operands, none traps.
GENERIC_OPS = frozenset({
    "copy", "select",
    "add", "sub", "mul", "umulh", "smulh", "and", "or", "xor", "shl", "lshr", "ashr", "rotl",
    "rotr", "smin", "smax", "umin", "umax", "neg", "not", "clz", "ctz", "popcnt", "bswap", "icmp",
    "zext", "sext", "trunc", "bitcast", "fptosi", "fptoui", "sitofp", "uitofp", "fpext",
    "fptrunc",
    "fadd", "fsub", "fmul", "fdiv", "fsqrt", "fma", "fmin", "fmax", "fneg", "fabs", "fcmp",
})
#: Made by a recipe of their own: constants, divisions (undefined behaviour avoided), state
#: fields, memory addresses and flags, fence orderings, helpers.
SPECIAL_OPS = frozenset({
    "iconst", "fconst", "udiv", "sdiv", "urem", "srem", "get", "set", "load", "store",
    "atomic_rmw", "cmpxchg", "fence", "call",
})
#: Made by the CFG builder, as block terminators.
TERMINATOR_OPS = frozenset({"br", "brif", "exit", "trap", "ret"})
#: Ops the generator deliberately never makes, each with the reason. None so far.
EXCLUDED_OPS: dict[str, str] = {}

GENERATED_OPS = GENERIC_OPS | SPECIAL_OPS | TERMINATOR_OPS
_UNKNOWN = sorted(set(OPS) - GENERATED_OPS - set(EXCLUDED_OPS))
if _UNKNOWN:
    raise AssertionError(
        f"tests/strategies.py does not know op(s) {', '.join(_UNKNOWN)}: decide how to generate "
        "them without undefined behaviour and add them to GENERIC_OPS or SPECIAL_OPS (or, with "
        "a reason, to EXCLUDED_OPS)")

# --- types -------------------------------------------------------------------------------------

INT_TYPES = (I1, I8, I16, I32, I64, I128)
FLOAT_TYPES = (F32, F64)
VALUE_TYPES = (*INT_TYPES, *FLOAT_TYPES, V128)
assert set(VALUE_TYPES) == set(ALL_TYPES)
#: the types drawn most often come more than once
_COMMON_TYPES = (I1, I8, I16, I32, I32, I64, I64, I64, I128, F32, F64, F64, V128)

TYPEVAR_CLASSES: dict[str, tuple[Type, ...]] = {
    "int": INT_TYPES,
    "float": FLOAT_TYPES,
    "any": VALUE_TYPES,
    "int_multibyte": tuple(t for t in INT_TYPES if t.bits >= 16),
}

#: (source type, T) pairs meeting each conversion rule of the op table
RULE_PAIRS: dict[str, tuple[tuple[Type, Type], ...]] = {
    "wider": tuple((s, t) for s in INT_TYPES for t in INT_TYPES if s.bits < t.bits),
    "narrower": tuple((s, t) for s in INT_TYPES for t in INT_TYPES if s.bits > t.bits),
    "same_width": tuple((s, t) for s in VALUE_TYPES for t in VALUE_TYPES if s.bits == t.bits),
    "float_to_int": tuple((s, t) for s in FLOAT_TYPES for t in INT_TYPES),
    "int_to_float": tuple((s, t) for s in INT_TYPES for t in FLOAT_TYPES),
    "f32_to_f64": ((F32, F64),),
    "f64_to_f32": ((F64, F32),),
}

#: Not an op: ``set f`` or ``get f``, then one op that may observe or change ``f`` (or not),
#: then ``set f`` or ``get f`` again, for ``forward``.
STATE_PATTERN = "<state pattern>"
#: Op mixes a function is drawn from (an op listed n times is drawn n times as often):
#: "mixed" has every op, "state" is mostly state, memory and calls (for ``forward`` and
#: ``dce``), "arith" mostly arithmetic on constants (for ``constfold``).
PROFILES: dict[str, tuple[str, ...]] = {
    "mixed": (*sorted(GENERIC_OPS), *sorted(SPECIAL_OPS),
              *9 * ["get", "set"], *3 * ["load", "store", "call", STATE_PATTERN], "iconst"),
    "state": (*4 * ["get", "set"], *8 * [STATE_PATTERN], *3 * ["load", "store", "call"],
              "atomic_rmw", "cmpxchg", "fence", "iconst", "iconst", "add", "xor", "udiv", "copy",
              "select", "icmp"),
    "arith": (*sorted(GENERIC_OPS), "udiv", "sdiv", "urem", "srem",
              *6 * ["iconst"], *3 * ["fconst"]),
}

_CHOICES: dict[OperandKind, tuple[str, ...]] = {
    OperandKind.ICMP_COND: ICMP_CONDS,
    OperandKind.FCMP_COND: FCMP_CONDS,
}

# --- the state layout --------------------------------------------------------------------------


def state_layout() -> StateLayout:
    """The state layout of every generated module: a field of each type, two arrays."""
    layout = StateLayout()
    layout.add("pc", I64)
    layout.add("x", I64, 4)
    layout.add("w", I32)
    layout.add("h", I16)
    layout.add("b", I8)
    layout.add("flag", I1)
    layout.add("q", I128)
    layout.add("f", F64, 2)
    layout.add("s", F32)
    layout.add("vec", V128)
    return layout


STATE = state_layout()
FIELD_REFS: tuple[FieldRef, ...] = tuple(
    FieldRef(f.name, i) for f in STATE.fields
    for i in (range(f.count) if f.count is not None else [None]))
FIELD_TYPES: dict[FieldRef, Type] = {
    ref: STATE.field(ref.name).type for ref in FIELD_REFS  # type: ignore[union-attr]
}
#: fields drawn three times in four, so that a block often touches one field twice
HOT_FIELDS = (FieldRef("pc"), FieldRef("x", 1), FieldRef("f", 0))

# --- helpers -----------------------------------------------------------------------------------

MEMORY_SIZE = 0x2000
#: ``address()`` stays below 0x1100; @bump and @shuffle log what they read at HELPER_LOG;
#: sinks store at SINK_BASE, 16 bytes a slot, up to the end of memory
HELPER_LOG = 0x1100
SINK_BASE = 0x1200
SINK_SLOTS = (MEMORY_SIZE - SINK_BASE) // 16
_M64 = (1 << 64) - 1


@dataclass(frozen=True)
class HelperSpec:
    """A helper a module may declare, and the Python that runs it."""

    params: tuple[Type, ...]
    result: Type | None
    pure: bool
    impl: Callable[..., int | None]


def _shuffle(ctx) -> None:
    x1 = ctx.state["x", 1]
    ctx.memory.store(HELPER_LOG + 8, 8, x1)
    ctx.state["x", 1] = 3 * x1 + 1
    ctx.state["flag"] = x1 & 1


def _bump(ctx, a: int) -> int:
    old = ctx.state["pc"]
    ctx.memory.store(HELPER_LOG, 8, old)
    ctx.state["pc"] = old + a
    return old


def _check(ctx, a: int) -> None:
    if a % 7 == 3:
        raise GuestTrap("user")


HELPERS: dict[str, HelperSpec] = {
    # pure: their results depend on their arguments only
    "mix": HelperSpec((I64, I64), I64, True,
                      lambda ctx, a, b: ((a * 0x9E3779B97F4A7C15) ^ (b >> 3)) & _M64),
    "fold16": HelperSpec((I32,), I16, True, lambda ctx, a: (a ^ (a >> 16)) & 0xFFFF),
    "odd": HelperSpec((I8,), I1, True, lambda ctx, a: a & 1),
    "flip": HelperSpec((F64,), F64, True, lambda ctx, a: a ^ (1 << 63)),
    "idle": HelperSpec((I64,), None, True, lambda ctx, a: None),
    # effects: state, memory, traps
    "bump": HelperSpec((I64,), I64, False, _bump),
    "peek": HelperSpec((I64,), I64, False, lambda ctx, a: ctx.memory.load(a & 0xFF8, 8)),
    "poke": HelperSpec((I64, I64), None, False,
                       lambda ctx, a, b: ctx.memory.store(a & 0xFF8, 8, b)),
    "check": HelperSpec((I32,), None, False, _check),
    "shuffle": HelperSpec((), None, False, _shuffle),
}
HELPER_IMPLS = {name: spec.impl for name, spec in HELPERS.items()}

# --- constants ---------------------------------------------------------------------------------


def interesting_ints(t: Type) -> list[int]:
    """Edge values of an integer type, as unsigned bit patterns."""
    if t.bits == 1:
        return [0, 1]
    top = 1 << (t.bits - 1)
    return sorted({0, 1, 2, 3, 7, 8, t.mask, t.mask - 1, top, top - 1, top + 1, 0xFF & t.mask,
                   0x80 & t.mask, (1 << (t.bits // 2)) & t.mask})


_SPECIAL_FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, 1.5, -2.5, 3.0, 0.1, 1e10, -1e10, 2.0 ** 31,
                   -(2.0 ** 31), 2.0 ** 63, 2.0 ** 64, 2.0 ** 127, 1e300, 5e-324, 1e-40,
                   float("inf"), float("-inf"), float("nan"), 16777217.0, 4294967295.5)


def int_values(t: Type) -> st.SearchStrategy[int]:
    """Integers of type ``t``, unsigned: 0, 1 and -1 (identities) a third of the time."""
    return st.one_of(st.sampled_from(sorted({0, 1, t.mask})),
                     st.sampled_from(interesting_ints(t)), st.integers(0, t.mask))


def float_values(t: Type) -> st.SearchStrategy[int]:
    """Float bit patterns: edge values (NaN included) or any bits (NaN payloads included)."""
    specials = sorted({float_to_bits(x, t) for x in _SPECIAL_FLOATS}
                      | {float_to_bits(float("nan"), t) | 1, float_to_bits(-0.0, t) | 1})
    return st.one_of(st.sampled_from(specials), st.integers(0, t.mask))


def values_of(t: Type) -> st.SearchStrategy[int]:
    """Run-time values of type ``t``: integers unsigned, floats as bit patterns."""
    return float_values(t) if t.is_float else int_values(t)


# --- functions ---------------------------------------------------------------------------------


def _dominators(succs: list[list[int]]) -> dict[int, set[int]]:
    """Dominator sets of the blocks (by index) reachable from block 0."""
    reach, stack = {0}, [0]
    while stack:
        for s in succs[stack.pop()]:
            if s not in reach:
                reach.add(s)
                stack.append(s)
    preds = {b: [p for p in reach if b in succs[p]] for b in reach}
    dom = {b: set(reach) for b in reach}
    dom[0] = {0}
    changed = True
    while changed:
        changed = False
        for b in sorted(reach - {0}):
            new = set.intersection(*(dom[p] for p in preds[b])) | {b}
            if new != dom[b]:
                dom[b], changed = new, True
    return dom


class _FunctionGen:
    """Draws one function into ``module``, its choices made by hypothesis' ``draw``."""

    def __init__(self, draw: Callable, module: Module, name: str,
                 profiles: Sequence[str] = tuple(PROFILES)) -> None:
        self.draw = draw
        self.module = module
        params = draw(st.lists(st.sampled_from(_COMMON_TYPES), max_size=3))
        returns = draw(st.lists(st.sampled_from(_COMMON_TYPES), max_size=2))
        self.fb = FunctionBuilder(module, name, params, returns)
        self.avail: list[Value] = []
        #: results of the current block no op has used yet (constants aside)
        self.unused: set[Value] = set()
        self.consts: set[Value] = set()
        self.recipes: dict[str, Callable[[OpDef], None]] = {
            "iconst": self._constant_op, "fconst": self._constant_op,
            "udiv": self._division, "urem": self._division,
            "sdiv": self._division, "srem": self._division,
            "get": self._get, "set": self._set, "load": self._load, "store": self._store,
            "atomic_rmw": self._atomic_rmw, "cmpxchg": self._cmpxchg, "fence": self._fence,
            "call": self._call,
        }
        assert set(self.recipes) == SPECIAL_OPS
        profile = self.pick(sorted(profiles))
        self.op_names = PROFILES[profile]
        self.const_rate = 5 if profile == "arith" else 2
        # one memory access in ``fault_odds`` is drawn to fault or to be misaligned
        self.fault_odds = self.pick((8, 40))
        self.sinks = 0

    # -- small choices ---------------------------------------------------------------------------
    def pick(self, seq: Sequence):
        return self.draw(st.sampled_from(seq))

    def chance(self, n: int) -> bool:
        """True about once in ``n`` draws."""
        return self.draw(st.integers(0, n - 1)) == 0

    # -- values ----------------------------------------------------------------------------------
    def emit(self, op: str, args: Sequence[Value] = (), imms: dict | None = None,
             targets: Sequence[Target] = (), type: Type | None = None) -> Value | None:
        result = self.fb.emit(op, args, imms, targets, type)
        self.unused.difference_update(args)
        for target in targets:
            self.unused.difference_update(target.args)
        if result is not None:
            self.avail.append(result)
            if op in ("iconst", "fconst"):
                self.consts.add(result)
            else:
                self.unused.add(result)
        return result

    def iconst(self, t: Type, imm: int) -> Value:
        return self.emit("iconst", imms={"imm": imm & t.mask}, type=t)  # type: ignore[return-value]

    def constant(self, t: Type) -> Value:
        if t.is_int:
            return self.iconst(t, self.draw(int_values(t)))
        if t.is_float:
            return self.emit("fconst", imms={"imm": self.draw(float_values(t))}, type=t)  # type: ignore[return-value]
        wide = self.constant(I128)
        return self.emit("bitcast", [wide], type=V128)  # type: ignore[return-value]

    def value(self, t: Type) -> Value:
        """A value of type ``t``: usually one already available, else a new constant."""
        pool = [v for v in self.avail if v.type == t]
        computed = [v for v in pool if v not in self.consts]
        fresh = [v for v in computed if v in self.unused]
        roll = self.draw(st.integers(0, 9))
        # a constant (``const_rate`` in ten); else preferably a result no op has used yet
        # (chains of ops, fewer dead results), or any computed value, or any value
        if roll < self.const_rate:
            consts = [v for v in pool if v in self.consts]
            if consts and self.draw(st.booleans()):
                return self.pick(consts)
            return self.constant(t)
        choices = fresh if roll < 6 else computed
        choices = choices or computed or pool
        if not choices:
            return self.constant(t)
        value = self.pick(choices)
        self.unused.discard(value)
        return value

    def type_from(self, types: Sequence[Type]) -> Type:
        """One of ``types``, preferably one that computed values have."""
        have = {v.type for v in self.avail if v not in self.consts}
        usable = [t for t in types if t in have]
        return self.pick(usable if usable and not self.chance(4) else types)

    # -- the table-driven recipe -----------------------------------------------------------------
    def generic(self, op: OpDef) -> None:
        src = None
        if op.rule:
            pairs = RULE_PAIRS[op.rule]
            src = self.type_from(sorted({s for s, _ in pairs}, key=VALUE_TYPES.index))
            t = self.pick([t for s, t in pairs if s == src])
        else:
            t = self.type_from(TYPEVAR_CLASSES[op.typevar])
        args: list[Value] = []
        imms: dict[str, object] = {}
        for spec in op.operands:
            if spec.kind is OperandKind.VALUE:
                c = spec.constraint
                if c == "T":
                    args.append(self.value(t))
                elif c in ("int", "float", "any"):
                    assert src is not None, f"{op.name}: operand {spec.name} needs a rule"
                    args.append(self.value(src))
                else:
                    args.append(self.value(type_named(c)))
            elif spec.kind in _CHOICES:
                imms[spec.name] = self.pick(_CHOICES[spec.kind])
            else:
                raise AssertionError(f"the generic recipe cannot make {op.name}'s {spec.kind}")
        self.emit(op.name, args, imms, type=t if op.typed else None)

    # -- recipes of their own --------------------------------------------------------------------
    def _constant_op(self, op: OpDef) -> None:
        self.constant(self.pick(INT_TYPES if op.name == "iconst" else FLOAT_TYPES))

    def _division(self, op: OpDef) -> None:
        signed = op.name in ("sdiv", "srem")
        # signed i1 division is always MIN / -1 or by zero: never made
        t = self.type_from(INT_TYPES[1:] if signed else INT_TYPES)
        a, b = self.value(t), self.value(t)
        if signed:  # bit 1 clear: not -1
            b = self.emit("and", [b, self.iconst(t, t.mask ^ 2)])  # type: ignore[list-item]
        b = self.emit("or", [b, self.iconst(t, 1)])  # type: ignore[list-item]  # odd: not 0
        self.emit(op.name, [a, b])  # type: ignore[list-item]

    def _field(self) -> FieldRef:
        return self.pick(FIELD_REFS if self.chance(4) else HOT_FIELDS)

    def _get(self, op: OpDef, ref: FieldRef | None = None) -> None:
        self.emit("get", imms={"field": ref or self._field()})

    def _set(self, op: OpDef, ref: FieldRef | None = None) -> None:
        ref = ref or self._field()
        self.emit("set", [self.value(FIELD_TYPES[ref])], {"field": ref})

    def address(self, align: int) -> Value:
        """An address in [0, 0x1100) that is a multiple of ``align``; now and then one that
        is not, or one outside memory."""
        at = self.pick((I64, I64, I32))
        if self.chance(self.fault_odds):
            return self.iconst(at, self.pick((0x10000000, 0x3000, MEMORY_SIZE - 1)))
        base = self.iconst(at, 16 * self.draw(st.integers(0, 0xFF)))
        if self.chance(4):
            return base
        mask = 0xFF if self.chance(self.fault_odds) else 0xFF & ~(align - 1)
        offset = self.emit("and", [self.value(at), self.iconst(at, mask)])
        return self.emit("add", [base, offset])  # type: ignore[list-item, return-value]

    def _load(self, op: OpDef) -> None:
        t = self.pick(_COMMON_TYPES)
        size, sext, order = None, False, None
        if t.is_int and t.bytes > 1 and self.chance(2):
            size = self.pick([s for s in (1, 2, 4, 8) if s < t.bytes])
            sext = self.draw(st.booleans())
        elif self.chance(4):
            order = self.pick(("relaxed", "acquire", "seq_cst"))
        align = self.pick((1, 1, 2, 4, 8, 16))
        addr = self.address(align)
        self.emit("load", [addr], {"flags": MemFlags(size, sext, align, order)}, type=t)

    def _store(self, op: OpDef) -> None:
        t = self.type_from(VALUE_TYPES)
        v = self.value(t)
        size, order = None, None
        if t.is_int and t.bytes > 1 and self.chance(2):
            size = self.pick([s for s in (1, 2, 4, 8) if s < t.bytes])
        elif self.chance(4):
            order = self.pick(("relaxed", "release", "seq_cst"))
        align = self.pick((1, 1, 2, 4, 8, 16))
        addr = self.address(align)
        self.emit("store", [v, addr], {"flags": MemFlags(size, False, align, order)})

    def _atomic_rmw(self, op: OpDef) -> None:
        t = self.type_from(INT_TYPES[1:])
        addr = self.address(t.bytes)
        imms = {"op": self.pick(RMW_OPS), "order": self.pick(ORDERS)}
        self.emit("atomic_rmw", [addr, self.value(t)], imms, type=t)

    def _cmpxchg(self, op: OpDef) -> None:
        t = self.type_from(INT_TYPES[1:])
        addr = self.address(t.bytes)
        if self.draw(st.booleans()):  # what is there: the exchange happens
            expected = self.emit("load", [addr], {"flags": MemFlags()}, type=t)
        else:
            expected = self.value(t)
        imms = {"order": self.pick(ORDERS)}
        self.emit("cmpxchg", [addr, expected, self.value(t)], imms, type=t)  # type: ignore[list-item]

    def _fence(self, op: OpDef) -> None:
        self.emit("fence", imms={"order": self.pick(("acquire", "release", "acq_rel", "seq_cst"))})

    def _call(self, op: OpDef, prefer: Sequence[str] = ()) -> None:
        if not self.module.helpers:
            self.constant(I64)
            return
        preferred = [name for name in prefer if name in self.module.helpers]
        name = self.pick(preferred or sorted(self.module.helpers))
        decl = self.module.helpers[name]
        self.emit("call", [self.value(t) for t in decl.params], {"helper": name})

    # -- the function ----------------------------------------------------------------------------
    def instruction(self) -> None:
        name = self.pick(self.op_names)
        if name == STATE_PATTERN:
            self.state_pattern()
            return
        recipe = self.recipes.get(name)
        if recipe is not None:
            recipe(OPS[name])
        else:
            self.generic(OPS[name])

    def state_pattern(self) -> None:
        """``set f`` or ``get f``; an op that may read, write or trap, or not; ``set f`` or
        ``get f``."""
        # @bump reads and writes pc, @shuffle x[1]
        ref, helper = self.pick(((FieldRef("pc"), "bump"), (FieldRef("x", 1), "shuffle")))
        self.access(ref)
        middle = self.pick(("get", "set", "load", "store", "atomic_rmw", "call", "call", "call",
                            "fence", "add"))
        if middle in ("get", "set"):
            self.recipes[middle](OPS[middle], self.pick((ref, FieldRef("w"))))
        elif middle == "add":
            self.generic(OPS["add"])
        elif middle == "call":
            self._call(OPS["call"], (helper, "check"))
        else:  # a memory op, more likely than elsewhere to trap
            odds, self.fault_odds = self.fault_odds, 4
            self.recipes[middle](OPS[middle])
            self.fault_odds = odds
        self.access(ref)

    def access(self, ref: FieldRef) -> None:
        if self.draw(st.integers(0, 2)):  # two in three a set
            self._set(OPS["set"], ref)
        else:
            self._get(OPS["get"], ref)

    def condition(self) -> Value:
        """An i1 for a ``brif``: one available, a comparison, or now and then a constant."""
        flags = [v for v in self.avail if v.type == I1]
        if flags and self.draw(st.booleans()):
            return self.pick(flags)
        if self.chance(6):
            return self.constant(I1)
        t = self.type_from(INT_TYPES)
        return self.emit("icmp", [self.value(t), self.value(t)],  # type: ignore[return-value]
                         {"cond": self.pick(ICMP_CONDS)})

    def target(self, block) -> Target:
        return Target(block, [self.value(p.type) for p in block.params])

    def build(self) -> None:
        draw, fb = self.draw, self.fb
        n = draw(st.integers(1, 6))
        loop = draw(st.integers(1, n - 2)) if n >= 3 and draw(st.booleans()) else None
        blocks = [fb.func.entry]
        for j in range(1, n):
            types = draw(st.lists(st.sampled_from(_COMMON_TYPES), max_size=3))
            blocks.append(fb.new_block(*([I32] if j == loop else []), *types))
        # the CFG first (forward edges, and the loop's edge to itself), then dominators
        plans: list[tuple[str, list[int]]] = []
        for j in range(n):
            later = list(range(j + 1, n))
            if j == loop:
                plans.append(("loop", [j, self.pick(later)]))
            elif not later:
                plans.append((self.pick(("ret", "ret", "exit", "trap")), []))
            else:
                kind = self.pick(("br", "br", "brif", "brif", "brif", "ret", "exit", "trap"))
                count = {"br": 1, "brif": 2}.get(kind, 0)
                near = [j + 1, *later]  # the next block twice as likely
                chosen = [self.pick(near) for _ in range(count)]
                if chosen and j + 1 == loop:  # the loop is entered from the block before it
                    chosen[0] = loop
                plans.append((kind, chosen))
        dom = _dominators([targets for _, targets in plans])
        for j, (kind, targets) in enumerate(plans):
            fb.switch_to(blocks[j])
            strict = sorted(dom.get(j, {0, j}) - {j})
            self.avail = [v for d in strict for v in self._defined(blocks[d])]
            self.avail += blocks[j].params
            self.unused = set()
            for _ in range(draw(st.integers(0, 10))):
                self.instruction()
            if not self.chance(8):  # else what the block computes may be dead: for dce
                self.sink(blocks[j])
            self.terminator(kind, [blocks[t] for t in targets], blocks[j])

    def sink(self, block) -> None:
        """Store the last few results of ``block`` that nothing uses where nothing else writes,
        so that what they compute shows in the final memory."""
        results = [i.result for i in block.insts if i.result in self.unused]
        for value in results[-8:]:
            if self.sinks >= SINK_SLOTS:
                return
            addr = SINK_BASE + 16 * self.sinks
            self.sinks += 1
            self.emit("store", [value, self.iconst(I64, addr)], {"flags": MemFlags()})

    @staticmethod
    def _defined(block) -> list[Value]:
        return [*block.params, *(i.result for i in block.insts if i.result is not None)]

    def terminator(self, kind: str, targets: list, block) -> None:
        if kind == "ret":
            self.emit("ret", [self.value(t) for t in self.fb.func.returns])
        elif kind == "exit":
            self.emit("exit", [self.value(I64)])
        elif kind == "trap":
            self.emit("trap", imms={"kind": self.pick(TRAP_KINDS)})
        elif kind == "br":
            self.emit("br", targets=[self.target(targets[0])])
        elif kind == "brif":
            cond = self.condition()
            then = self.target(targets[0])
            if targets[0] is targets[1] and self.draw(st.booleans()):
                other = Target(then.block, list(then.args))
            else:
                other = self.target(targets[1])
            self.emit("brif", [cond], targets=[then, other])
        else:  # the loop: count, go round while the count is below a small bound
            counter, *rest = block.params
            bumped = self.emit("add", [counter, self.iconst(I32, 1)])
            bound = self.iconst(I32, self.draw(st.integers(1, 4)))
            more = self.emit("icmp", [bumped, bound], {"cond": "ult"})  # type: ignore[list-item]
            back = Target(block, [bumped, *(p if self.draw(st.booleans()) else self.value(p.type)
                                            for p in rest)])  # type: ignore[list-item]
            self.emit("brif", [more], targets=[back, self.target(targets[1])])  # type: ignore[list-item]


@st.composite
def modules(draw, max_functions: int = 2, profiles: Sequence[str] = tuple(PROFILES)) -> Module:
    """A random verifier-clean module (see the module docstring) whose functions draw their
    ops from the given ``PROFILES``."""
    module = Module(state=state_layout())
    for name, spec in HELPERS.items():
        if draw(st.integers(0, 2)):  # two in three
            module.declare_helper(name, list(spec.params), spec.result, spec.pure)
    for i in range(draw(st.integers(1, max_functions))):
        _FunctionGen(draw, module, f"f{i}", profiles).build()
    return module


# --- running -----------------------------------------------------------------------------------


@dataclass
class Case:
    """A module and what to run each of its functions on."""

    module: Module
    args: dict[str, list[int]]
    state: dict[FieldRef, int]
    memory_seed: int


@st.composite
def cases(draw, max_functions: int = 2, profiles: Sequence[str] = tuple(PROFILES)) -> Case:
    module = draw(modules(max_functions, profiles))
    args = {name: [draw(values_of(t)) for t in f.params] for name, f in module.functions.items()}
    state = {ref: draw(values_of(FIELD_TYPES[ref])) for ref in FIELD_REFS}
    return Case(module, args, state, draw(st.integers(0, 2 ** 32 - 1)))


def run(case: Case, module: Module | None = None) -> dict[str, tuple]:
    """For each function: its result, final state and final memory, run on ``module``
    (default: the case's own)."""
    module = case.module if module is None else module
    outcomes = {}
    for name in case.module.functions:
        state = State(module.state)
        for ref, v in case.state.items():
            state[ref] = v
        memory = FlatMemory(MEMORY_SIZE)
        memory.data[:] = random.Random(case.memory_seed).randbytes(MEMORY_SIZE)
        result = evaluate(module, name, case.args[name], state=state, memory=memory,
                          helpers=HELPER_IMPLS)
        outcomes[name] = (describe(result), copy.deepcopy(state.values), bytes(memory.data))
    return outcomes


def describe(result: Returned | Exited | Trapped) -> tuple:
    """A result as a comparable tuple; a trap's address included."""
    if isinstance(result, Returned):
        return ("returned", result.values)
    if isinstance(result, Exited):
        return ("exited", result.pc)
    return ("trapped", result.kind, result.addr)


def clone(module: Module) -> Module:
    """A deep copy of ``module`` that shares the op table's ``OpDef``s and the interned types."""
    memo: dict[int, object] = {id(op): op for op in OPS.values()}
    memo.update({id(t): t for t in ALL_TYPES})
    return copy.deepcopy(module, memo)


def examples(n: int) -> settings:
    """Hypothesis settings for a property over generated modules: ``n`` examples (times
    ``VM_IR_EXAMPLES_SCALE``, default 1, for a longer local run), no deadline."""
    scale = float(os.environ.get("VM_IR_EXAMPLES_SCALE", "1"))
    return settings(max_examples=max(1, int(n * scale)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
