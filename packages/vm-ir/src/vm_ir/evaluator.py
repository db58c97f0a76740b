"""The reference evaluator: what a vm-ir function means, executed one op at a time.

Values are Python ints (see ``values``). Guest memory is anything with ``load(addr, size) ->
int`` and ``store(addr, size, value)`` that raises ``MemoryFault`` for an address the guest may
not access; ``FlatMemory`` is a ready-made one. Helpers are Python callables given a
``HelperContext`` first; a helper ends the function with a trap by raising ``GuestTrap``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .infer import type_variable
from .ir import Block, FieldRef, Function, MemFlags, Module, StateLayout, Value
from .semantics import SEMANTICS, UndefinedBehavior
from .types import Type
from .values import to_signed


class MemoryFault(Exception):
    """Raised by a ``Memory`` for an access the guest may not make; becomes ``trap mem_fault``."""

    def __init__(self, addr: int, size: int = 1, access: str = "read") -> None:
        self.addr = addr
        self.size = size
        self.access = access
        super().__init__(f"guest {access} of {size} byte(s) at {addr:#x} faulted")


class GuestTrap(Exception):
    """Raised by a helper to end the function with ``trap <kind>``."""

    def __init__(self, kind: str, addr: int | None = None) -> None:
        self.kind = kind
        self.addr = addr
        super().__init__(f"trap {kind}" + (f" at {addr:#x}" if addr is not None else ""))


class EvaluationError(Exception):
    """The evaluator cannot go on: an invalid module, a missing helper or memory, a step limit."""


class Memory(Protocol):
    def load(self, addr: int, size: int) -> int: ...

    def store(self, addr: int, size: int, value: int) -> None: ...


class FlatMemory:
    """``size`` bytes of zeroed memory at ``base``; anything outside faults."""

    def __init__(self, size: int = 0x10000, base: int = 0) -> None:
        self.base = base
        self.data = bytearray(size)

    def _offset(self, addr: int, size: int, access: str) -> int:
        off = addr - self.base
        if off < 0 or off + size > len(self.data):
            raise MemoryFault(addr, size, access)
        return off

    def load(self, addr: int, size: int) -> int:
        off = self._offset(addr, size, "read")
        return int.from_bytes(self.data[off:off + size], "little")

    def store(self, addr: int, size: int, value: int) -> None:
        off = self._offset(addr, size, "write")
        self.data[off:off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


class State:
    """Values of a state layout's fields: ``state["pc"]``, ``state["x", 3]``; all zero at first."""

    def __init__(self, layout: StateLayout | None) -> None:
        self.layout = layout or StateLayout()
        self.values: dict[str, int | list[int]] = {
            f.name: ([0] * f.count if f.count is not None else 0) for f in self.layout.fields
        }

    def _key(self, key: str | tuple[str, int] | FieldRef) -> FieldRef:
        if isinstance(key, FieldRef):
            return key
        if isinstance(key, tuple):
            return FieldRef(key[0], key[1])
        return FieldRef(key)

    def __getitem__(self, key: str | tuple[str, int] | FieldRef) -> int:
        ref = self._key(key)
        v = self.values[ref.name]
        return v[ref.index] if isinstance(v, list) else v  # type: ignore[index]

    def __setitem__(self, key: str | tuple[str, int] | FieldRef, value: int) -> None:
        ref = self._key(key)
        f = self.layout.field(ref.name)
        if f is None:
            raise KeyError(ref.name)
        value &= f.type.mask
        v = self.values[ref.name]
        if isinstance(v, list):
            v[ref.index] = value  # type: ignore[index]
        else:
            self.values[ref.name] = value


@dataclass
class HelperContext:
    """What a helper can see: the state, the memory and the module."""

    state: State
    memory: Memory | None
    module: Module


@dataclass(frozen=True)
class Returned:
    values: tuple[int, ...] = ()


@dataclass(frozen=True)
class Exited:
    pc: int


@dataclass(frozen=True)
class Trapped:
    kind: str
    addr: int | None = field(default=None, compare=False)


Result = Returned | Exited | Trapped
Helper = Callable[..., int | None]


def _function(module: Module, func: Function | str) -> Function:
    if isinstance(func, Function):
        return func
    try:
        return module.functions[func]
    except KeyError:
        raise EvaluationError(f"no function @{func} in the module") from None


def evaluate(module: Module, func: Function | str, args: Iterable[int] = (), *,
             state: State | None = None, memory: Memory | None = None,
             helpers: Mapping[str, Helper] | None = None, max_steps: int = 10_000_000,
             check: bool = True) -> Result:
    """Run ``func`` from its entry block with ``args`` until it returns, exits or traps.

    ``check`` verifies the module first (``EvaluationError`` listing the errors). An op whose
    behaviour docs/ir.md leaves undefined raises ``UndefinedBehavior``.
    """
    fn = _function(module, func)
    if check:
        from .verifier import verify

        errors = verify(module)
        if errors:
            raise EvaluationError("invalid module:\n" + "\n".join(map(str, errors)))
    args = list(args)
    if len(args) != len(fn.params):
        raise EvaluationError(f"@{fn.name} takes {len(fn.params)} argument(s), got {len(args)}")
    if state is None:
        state = State(module.state)
    ctx = HelperContext(state, memory, module)
    env: dict[Value, int] = {p: a & p.type.mask for p, a in zip(fn.entry.params, args, strict=True)}
    block: Block = fn.entry
    steps = 0
    while True:
        for inst in block.insts:
            steps += 1
            if steps > max_steps:
                raise EvaluationError(f"@{fn.name} ran more than {max_steps} steps")
            op = inst.op
            name = op.name
            sem = SEMANTICS.get(name)
            if sem is not None:
                t = type_variable(op, inst.type, inst.args)
                vals = [env[a] for a in inst.args]
                rt = inst.result.type if inst.result is not None else t
                try:
                    env[inst.result] = sem(rt or t, vals, inst.imms,  # type: ignore[index, arg-type]
                                           [a.type for a in inst.args])
                except UndefinedBehavior as ub:
                    where = f"{module.filename}:{inst.loc}: " if inst.loc is not None else ""
                    raise UndefinedBehavior(f"{where}in @{fn.name}, {block.name}: `{inst}`: {ub}"
                                            ) from None
                continue
            if name == "get":
                env[inst.result] = state[inst.imms["field"]]  # type: ignore[index, arg-type]
            elif name == "set":
                state[inst.imms["field"]] = env[inst.args[0]]  # type: ignore[index]
            elif name in ("load", "store", "atomic_rmw", "cmpxchg"):
                try:
                    _memory_op(inst, env, memory)
                except MemoryFault as fault:
                    return Trapped("mem_fault", fault.addr)
                except GuestTrap as trap:
                    return Trapped(trap.kind, trap.addr)
            elif name == "fence":
                pass  # one thread of execution: every ordering is already met
            elif name == "call":
                result = _call(inst, env, ctx, helpers)
                if isinstance(result, Trapped):
                    return result
            elif name == "br" or name == "brif":
                target = inst.targets[0]
                if name == "brif" and not env[inst.args[0]] & 1:
                    target = inst.targets[1]
                incoming = [env[a] for a in target.args]
                for p, v in zip(target.block.params, incoming, strict=True):
                    env[p] = v
                block = target.block
                break
            elif name == "exit":
                return Exited(env[inst.args[0]])
            elif name == "trap":
                return Trapped(str(inst.imms["kind"]))
            elif name == "ret":
                return Returned(tuple(env[a] for a in inst.args))
            else:  # pragma: no cover - the op table and this loop must agree
                raise EvaluationError(f"the evaluator does not know op {name}")
        else:
            raise EvaluationError(f"{block.name} of @{fn.name} ended without a terminator")


def _memory_op(inst, env: dict[Value, int], memory: Memory | None) -> None:
    if memory is None:
        raise EvaluationError(f"{inst.op.name} needs guest memory, and none was given")
    name = inst.op.name
    if name == "store":
        vtype: Type = inst.args[0].type
        addr = env[inst.args[1]]
    else:
        vtype = inst.type
        addr = env[inst.args[0]]
    flags: MemFlags = inst.imms.get("flags") or MemFlags()
    if name in ("atomic_rmw", "cmpxchg"):
        size, align = vtype.bytes, vtype.bytes
    else:
        size, align = flags.size or vtype.bytes, flags.align
    if addr % align:
        raise GuestTrap("misaligned", addr)
    if name == "load":
        value = memory.load(addr, size)
        if flags.sext:
            value = to_signed(value, size * 8)
        env[inst.result] = value & vtype.mask  # i1 occupies a byte: keep its low bit
    elif name == "store":
        memory.store(addr, size, env[inst.args[0]] & ((1 << (8 * size)) - 1))
    elif name == "atomic_rmw":
        old = memory.load(addr, size)
        new = _rmw(str(inst.imms["op"]), old, env[inst.args[1]], vtype)
        memory.store(addr, size, new)
        env[inst.result] = old
    else:  # cmpxchg
        old = memory.load(addr, size)
        if old == env[inst.args[1]]:
            memory.store(addr, size, env[inst.args[2]])
        env[inst.result] = old


def _rmw(op: str, old: int, v: int, t: Type) -> int:
    if op == "xchg":
        return v
    sem = SEMANTICS[op]
    return sem(t, [old, v], {}, [t, t])


def _call(inst, env: dict[Value, int], ctx: HelperContext,
          helpers: Mapping[str, Helper] | None) -> Trapped | None:
    name = str(inst.imms["helper"])
    impl = (helpers or {}).get(name)
    if impl is None:
        raise EvaluationError(f"helper @{name} has no implementation here")
    try:
        result = impl(ctx, *[env[a] for a in inst.args])
    except GuestTrap as trap:
        return Trapped(trap.kind, trap.addr)
    except MemoryFault as fault:
        return Trapped("mem_fault", fault.addr)
    if inst.result is not None:
        if not isinstance(result, int):
            raise EvaluationError(f"helper @{name} returned {result!r}, not an int")
        env[inst.result] = result & inst.result.type.mask
    return None


__all__ = [
    "EvaluationError", "Exited", "FlatMemory", "GuestTrap", "HelperContext", "Memory",
    "MemoryFault", "Result", "Returned", "State", "Trapped", "UndefinedBehavior", "evaluate",
]
