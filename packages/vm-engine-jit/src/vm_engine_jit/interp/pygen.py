"""vm-ir to Python: each lifted block becomes one Python function, compiled once.

The interpreter tier's speed comes from here: a block's ops become straight-line Python
statements on local variables (``v12 = (v10 + v11) & 0xffffffffffffffff``), state fields are
list elements or attributes of the CpuState, and memory accesses call the memory's bound
``load``/``store``. A function with internal control flow runs as a small dispatch loop.

Generated function: ``block(st, mem, ctx) -> next_pc``. ``trap`` raises ``BlockTrap``; a
memory fault propagates as the memory's own error; both leave the state as the ops before
them left it (the lifter wrote the pc first), so traps are precise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from vm_ir import Function, Inst, MemFlags, Module, Value
from vm_ir.semantics import SEMANTICS, UndefinedBehavior
from vm_ir.values import to_signed

BlockFn = Callable[[Any, Any, Any], int]

#: one lock makes every guest atomic read-modify-write indivisible across guest threads
ATOMIC_LOCK = threading.RLock()


class BlockTrap(Exception):
    """Raised by generated code for a vm-ir ``trap``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(kind)


class CodegenError(Exception):
    """The function cannot be compiled to Python (an op this tier does not support)."""


def _rt_sdiv(a: int, b: int, bits: int) -> int:
    sa, sb = to_signed(a, bits), to_signed(b, bits)
    if sb == 0 or (sb == -1 and sa == -(1 << (bits - 1))):
        raise UndefinedBehavior("sdiv by zero or overflow")
    q = abs(sa) // abs(sb)
    return (-q if (sa < 0) != (sb < 0) else q) & ((1 << bits) - 1)


def _rt_srem(a: int, b: int, bits: int) -> int:
    sa, sb = to_signed(a, bits), to_signed(b, bits)
    q = to_signed(_rt_sdiv(a, b, bits), bits)
    return (sa - sb * q) & ((1 << bits) - 1)


def _rt_udiv(a: int, b: int) -> int:
    if b == 0:
        raise UndefinedBehavior("udiv by zero")
    return a // b


def _rt_urem(a: int, b: int) -> int:
    if b == 0:
        raise UndefinedBehavior("urem by zero")
    return a % b


def _rt_rmw(mem: Any, op: str, addr: int, v: int, size: int, sem: Callable | None,
            t: Any) -> int:
    with ATOMIC_LOCK:
        old = mem.load(addr, size)
        new = v if sem is None else sem(t, [old, v], {}, [t, t])
        mem.store(addr, size, new)
        return old


def _rt_cmpxchg(mem: Any, addr: int, expected: int, new: int, size: int) -> int:
    with ATOMIC_LOCK:
        old = mem.load(addr, size)
        if old == expected:
            mem.store(addr, size, new)
        return old


def _rt_misaligned(addr: int) -> int:
    raise BlockTrap("misaligned")


RUNTIME: dict[str, Any] = {
    "_sdiv": _rt_sdiv, "_srem": _rt_srem, "_udiv": _rt_udiv, "_urem": _rt_urem,
    "_rmw": _rt_rmw, "_cmpxchg": _rt_cmpxchg, "BlockTrap": BlockTrap,
    "_misaligned": _rt_misaligned,
}


class _Gen:
    def __init__(self, func: Function, module: Module, helpers: Mapping[str, Callable]) -> None:
        self.func = func
        self.module = module
        self.helpers = helpers
        self.consts: dict[str, Any] = {}
        self.lines: list[str] = []
        self.arrays: set[str] = set()
        if module.state is not None:
            self.arrays = {f.name for f in module.state.fields if f.count is not None}
        self.used_arrays: set[str] = set()

    def const(self, value: Any, hint: str) -> str:
        name = f"_{hint}_{len(self.consts)}"
        self.consts[name] = value
        return name

    def field(self, inst: Inst) -> str:
        ref = inst.imms["field"]
        if ref.name in self.arrays:  # type: ignore[attr-defined]
            self.used_arrays.add(ref.name)  # type: ignore[attr-defined]
            return f"A_{ref.name}[{ref.index}]"  # type: ignore[attr-defined]
        return f"st.{ref.name}"  # type: ignore[attr-defined]

    def expr(self, inst: Inst) -> str | None:
        """A Python expression for a pure integer op, or None to use the generic path."""
        op = inst.op.name
        a = [str(v) for v in inst.args]
        t = inst.result.type if inst.result is not None else None
        if t is None:
            return None
        m = hex(t.mask)
        bits = t.bits
        if inst.args and inst.args[0].type.is_int:
            src = inst.args[0].type
            s = hex(1 << (src.bits - 1))
        else:
            src, s = None, "0"
        if op == "iconst":
            return hex(inst.imms["imm"] & t.mask)  # type: ignore[operator]
        if op == "fconst":
            return hex(inst.imms["imm"])  # type: ignore[arg-type]
        if op == "copy" or op == "bitcast" or op == "zext":
            return a[0]
        if op == "select":
            return f"({a[1]} if {a[0]} else {a[2]})"
        if t.is_float or (src is None and op not in ("select",)):
            return None
        simple = {
            "add": f"({a[0]} + {a[1]}) & {m}" if len(a) > 1 else None,
            "sub": f"({a[0]} - {a[1]}) & {m}" if len(a) > 1 else None,
            "mul": f"({a[0]} * {a[1]}) & {m}" if len(a) > 1 else None,
            "and": f"{a[0]} & {a[1]}" if len(a) > 1 else None,
            "or": f"{a[0]} | {a[1]}" if len(a) > 1 else None,
            "xor": f"{a[0]} ^ {a[1]}" if len(a) > 1 else None,
        }
        if op in simple:
            return simple[op]
        sm = hex(1 << (bits - 1))
        amt = f"({a[1]} & {bits - 1})" if len(a) > 1 else ""
        if op == "shl":
            return f"({a[0]} << {amt}) & {m}"
        if op == "lshr":
            return f"{a[0]} >> {amt}"
        if op == "ashr":
            return f"((({a[0]} ^ {sm}) - {sm}) >> {amt}) & {m}"
        if op == "umulh":
            return f"({a[0]} * {a[1]}) >> {bits}"
        if op == "smulh":
            return f"(((({a[0]} ^ {sm}) - {sm}) * (({a[1]} ^ {sm}) - {sm})) >> {bits}) & {m}"
        if op == "udiv":
            return f"_udiv({a[0]}, {a[1]})"
        if op == "urem":
            return f"_urem({a[0]}, {a[1]})"
        if op == "sdiv":
            return f"_sdiv({a[0]}, {a[1]}, {bits})"
        if op == "srem":
            return f"_srem({a[0]}, {a[1]}, {bits})"
        if op == "neg":
            return f"(-{a[0]}) & {m}"
        if op == "not":
            return f"{a[0]} ^ {m}"
        if op == "popcnt":
            return f"{a[0]}.bit_count()"
        if op == "clz":
            return f"{bits} - {a[0]}.bit_length()"
        if op == "ctz":
            return f"(({a[0]} & -{a[0]}).bit_length() - 1 if {a[0]} else {bits})"
        if op in ("umin", "umax"):
            return f"{'min' if op == 'umin' else 'max'}({a[0]}, {a[1]})"
        if op in ("smin", "smax"):
            cmp = "<=" if op == "smin" else ">="
            return f"({a[0]} if ({a[0]} ^ {sm}) {cmp} ({a[1]} ^ {sm}) else {a[1]})"
        if op == "icmp":
            cond = inst.imms["cond"]
            x, y = a
            if str(cond).startswith("s"):
                x, y = f"({x} ^ {s})", f"({y} ^ {s})"
            pyop = {"eq": "==", "ne": "!=", "ult": "<", "ule": "<=", "ugt": ">", "uge": ">=",
                    "slt": "<", "sle": "<=", "sgt": ">", "sge": ">="}[str(cond)]
            return f"int({x} {pyop} {y})"
        if op == "sext" and src is not None:
            return f"((({a[0]} ^ {s}) - {s}) & {m})"
        if op == "trunc":
            return f"{a[0]} & {m}"
        return None

    def inst(self, inst: Inst, indent: str) -> None:
        emit = self.lines.append
        op = inst.op.name
        res = str(inst.result) if inst.result is not None else None
        e = self.expr(inst) if res is not None else None
        if e is not None:
            emit(f"{indent}{res} = {e}")
            return
        if op in SEMANTICS:  # floats, rotations, bswap...: the shared semantics table
            sem = self.const(SEMANTICS[op], op)
            rtype = self.const(inst.result.type, "t")  # type: ignore[union-attr]
            imms = self.const(dict(inst.imms), "imms")
            tys = self.const([v.type for v in inst.args], "ts")
            args = ", ".join(map(str, inst.args))
            emit(f"{indent}{res} = {sem}({rtype}, [{args}], {imms}, {tys})")
            return
        if op == "get":
            emit(f"{indent}{res} = {self.field(inst)}")
        elif op == "set":
            emit(f"{indent}{self.field(inst)} = {inst.args[0]}")
        elif op == "load":
            self.load(inst, indent)
        elif op == "store":
            flags: MemFlags = inst.imms["flags"]  # type: ignore[assignment]
            size = flags.size or inst.args[0].type.bytes
            self.align_check(str(inst.args[1]), flags.align, indent)
            v = str(inst.args[0])
            if size < inst.args[0].type.bytes:
                v = f"{v} & {hex((1 << (8 * size)) - 1)}"
            emit(f"{indent}store({inst.args[1]}, {size}, {v})")
        elif op == "atomic_rmw":
            t = inst.type
            assert t is not None
            self.align_check(str(inst.args[0]), t.bytes, indent)
            rmw = str(inst.imms["op"])
            sem = self.const(None if rmw == "xchg" else SEMANTICS[rmw], rmw)
            tc = self.const(t, "t")
            emit(f"{indent}{res} = _rmw(mem, {rmw!r}, {inst.args[0]}, {inst.args[1]}, {t.bytes}, "
                 f"{sem}, {tc})")
        elif op == "cmpxchg":
            t = inst.type
            assert t is not None
            self.align_check(str(inst.args[0]), t.bytes, indent)
            emit(f"{indent}{res} = _cmpxchg(mem, {inst.args[0]}, {inst.args[1]}, {inst.args[2]}, "
                 f"{t.bytes})")
        elif op == "fence":
            pass
        elif op == "call":
            name = str(inst.imms["helper"])
            impl = self.helpers.get(name)
            if impl is None:
                raise CodegenError(f"helper @{name} has no implementation")
            fn = self.const(impl, "h")
            call = f"{fn}(ctx{''.join(', ' + str(v) for v in inst.args)})"
            if res is not None:
                emit(f"{indent}{res} = {call} & {hex(inst.result.type.mask)}")  # type: ignore[union-attr]
            else:
                emit(f"{indent}{call}")
        elif op == "exit":
            emit(f"{indent}return {inst.args[0]}")
        elif op == "trap":
            emit(f"{indent}raise BlockTrap({str(inst.imms['kind'])!r})")
        else:
            raise CodegenError(f"the interpreter tier cannot run `{inst}`")

    def align_check(self, addr: str, align: int, indent: str) -> None:
        if align > 1:
            self.lines.append(f"{indent}if {addr} & {align - 1}: _misaligned({addr})")

    def load(self, inst: Inst, indent: str) -> None:
        flags: MemFlags = inst.imms["flags"]  # type: ignore[assignment]
        t = inst.type
        assert t is not None
        size = flags.size or t.bytes
        self.align_check(str(inst.args[0]), flags.align, indent)
        expr = f"load({inst.args[0]}, {size})"
        if flags.sext:
            s = hex(1 << (8 * size - 1))
            expr = f"((({expr}) ^ {s}) - {s}) & {hex(t.mask)}"
        self.lines.append(f"{indent}{inst.result} = {expr}")

    def generate(self) -> str:
        func = self.func
        body: list[str]
        if len(func.blocks) == 1:
            for inst in func.blocks[0].insts:
                self.inst(inst, "    ")
            body = self.lines
        else:
            index = {b: n for n, b in enumerate(func.blocks)}
            self.lines.append("    _b = 0")
            self.lines.append("    while True:")
            for n, b in enumerate(func.blocks):
                self.lines.append(f"        {'if' if n == 0 else 'elif'} _b == {n}:")
                for inst in b.insts:
                    if inst.op.name in ("br", "brif"):
                        self.branch(inst, index)
                    else:
                        self.inst(inst, "            ")
            body = self.lines
        prologue = [f"    A_{name} = st.{name}" for name in sorted(self.used_arrays)]
        prologue.append("    load = mem.load")
        prologue.append("    store = mem.store")
        return "def block(st, mem, ctx):\n" + "\n".join(prologue + body) + "\n"

    def branch(self, inst: Inst, index: dict) -> None:
        ind = "            "

        def jump(target, ind2: str) -> None:
            params = target.block.params
            if params:
                lhs = ", ".join(map(str, params))
                rhs = ", ".join(map(str, target.args))
                self.lines.append(f"{ind2}{lhs}{',' if len(params) == 1 else ''} = {rhs}"
                                  f"{',' if len(params) == 1 else ''}")
            self.lines.append(f"{ind2}_b = {index[target.block]}")
            self.lines.append(f"{ind2}continue")

        if inst.op.name == "br":
            jump(inst.targets[0], ind)
        else:
            self.lines.append(f"{ind}if {inst.args[0]}:")
            jump(inst.targets[0], ind + "    ")
            jump(inst.targets[1], ind)


def compile_block(func: Function, module: Module, helpers: Mapping[str, Callable],
                  name: str = "block") -> tuple[BlockFn, str]:
    """Compile ``func`` to a Python function; gives the function and its source."""
    gen = _Gen(func, module, helpers)
    source = gen.generate()
    namespace: dict[str, Any] = dict(RUNTIME)
    namespace.update(gen.consts)
    code = compile(source, f"<vm-ir {name}>", "exec")
    exec(code, namespace)
    return namespace["block"], source


__all__ = ["ATOMIC_LOCK", "BlockTrap", "CodegenError", "Value", "compile_block"]
