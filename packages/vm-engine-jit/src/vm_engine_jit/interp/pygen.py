"""vm-ir to Python: each lifted block becomes one Python function, compiled once.

The interpreter tier's speed comes from here. What the generated code does, and why:

- **Expressions, not statements.** A pure op used once is folded into its user
  (``v44 = ((v32 >> 41 | (v32 << 23) & M) + v43) & M``); constants are literals, shift amounts
  are folded, and a mask is left out where the value provably fits (a value's bit width is
  tracked: a zero-extended byte load never needs ``& 0xff...``). A comparison that only feeds a
  ``select`` or ``brif`` stays a Python condition (no ``int(...)``). The IR needs no vm-ir
  passes first: a ``get`` of a field set or read before is that value, a ``set`` that a later
  one overwrites costs nothing, unused values are never computed.
- **State writes deferred.** ``set`` emits nothing at its place: the block writes each field's
  final value once, at its exit. Calls of impure helpers (which may read the state) see
  everything written first. ``exit`` makes a pending write of ``pc_field`` dead: the engine
  sets the pc from the exit's value.
- **Precise traps for free.** A may-trap op (load, store, atomics) is an ordinary statement;
  the function has one ``try``/``except`` around its body (free in CPython 3.11 until
  something raises), and a table from line number to ``TrapPoint`` says what a trap on that
  line writes back first: what the ops before it had set, the pc included. So a trap sees
  exactly the state the IR says, and the fast path has no handler code (each such line ends
  in a ``# trap: ...`` comment for the reader).
- **Memory inline.** With a ``MemoryBinding`` whose memory offers ``direct_access()`` (page
  permission bytes plus typed ``memoryview``s of the guest bytes), an aligned load is
  ``U64[a >> 3] if not a & 7 and P[a >> 12] & R else load(a, 8)``: one permission check and an
  indexed read; everything else (misaligned, page with translated code, faults) takes the
  memory's own ``load``/``store``.
- **Self-loops.** A block whose exit jumps back to its own start (``loop_insns`` given) becomes
  a ``for`` loop: guest registers live in Python locals (``r_x12``) across iterations and go
  back to the state only when the loop leaves, traps or calls an impure helper. It runs at most
  ``ctx.left`` guest instructions (the engine's budget, so signals are still noticed), leaves
  early when the engine drops translations (``epoch``) after a store or a helper, and reports
  what it ran in ``ctx.ran``.
- **Regions** (``compile_region``). Several guest blocks in one function: a ``while`` loop
  with a section per block (``if pc == 0x10658:``), in an order where every edge but a loop's
  back edge falls through to a later section; it leaves for a pc outside the region, when the
  budget is spent, or when translations were dropped.

Generated function: ``block(st, mem, ctx[, params]) -> next_pc``. ``trap`` raises
``BlockTrap``; a memory fault propagates as the memory's own error; ``ret`` (functions that
are not guest blocks, as in tests) returns a ``Returned`` tuple.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vm_ir import FieldRef, Function, Inst, MemFlags, Module, Value
from vm_ir.ops import Effect
from vm_ir.semantics import SEMANTICS, UndefinedBehavior
from vm_ir.types import INT_TYPES

BlockFn = Callable[..., int]

#: one lock makes every guest atomic read-modify-write indivisible across guest threads
ATOMIC_LOCK = threading.RLock()


class BlockTrap(Exception):
    """Raised by generated code for a vm-ir ``trap`` (and a misaligned atomic access)."""

    def __init__(self, kind: str, addr: int | None = None) -> None:
        self.kind = kind
        self.addr = addr
        super().__init__(kind if addr is None else f"{kind} at {addr:#x}")


class CodegenError(Exception):
    """The function cannot be compiled to Python (an op this tier does not support)."""


class Returned(tuple):
    """What a compiled function's ``ret`` gives back: the returned values."""


_INT_BY_BITS = {t.bits: t for t in INT_TYPES}


def _division(op: str) -> Callable[..., int]:
    """Generated code's ``_sdiv(a, b, bits)`` and friends: vm-ir's own semantics (undefined
    cases raise UndefinedBehavior). ``bits`` defaults to 128 for the unsigned ops, whose result
    never exceeds the dividend and so needs no narrower mask."""
    sem = SEMANTICS[op]

    def divide(a: int, b: int, bits: int = 128) -> int:
        t = _INT_BY_BITS[bits]
        return sem(t, [a, b], {}, [t, t])

    divide.__name__ = f"_{op}"
    return divide


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


def _rt_misaligned(addr: int) -> None:
    raise BlockTrap("misaligned", addr)


@dataclass
class TrapPoint:
    """What a trap raised at one place of a generated function writes back first:
    ``(target, value)`` pairs as Python text, evaluated in the function's frame; and
    ``retry``, the memory's own access to run when the inline check indexed past the
    permission table (it raises the right fault)."""

    writes: tuple[tuple[str, str], ...]
    retry: str | None = None
    code: Any = None

    def run(self, error: BaseException, frame: Any) -> None:
        if self.code is None:
            self.code = compile("\n".join(f"{t} = {v}" for t, v in self.writes) or "pass",
                                "<vm-ir trap write-back>", "exec")
        env = frame.f_locals
        exec(self.code, frame.f_globals, env)
        if self.retry is not None and error.__class__ is IndexError:
            eval(self.retry, frame.f_globals, env)


def _rt_unwind(error: BaseException, traps: dict[int, TrapPoint]) -> None:
    """The ``except`` of a generated function: make the state precise for the trap at the
    line the error came from (then the caller re-raises it)."""
    tb = error.__traceback__
    point = traps.get(tb.tb_lineno) if tb is not None else None
    if point is not None:
        point.run(error, tb.tb_frame)  # type: ignore[union-attr]


RUNTIME: dict[str, Any] = {
    "_sdiv": _division("sdiv"), "_srem": _division("srem"), "_udiv": _division("udiv"),
    "_urem": _division("urem"),
    "_rmw": _rt_rmw, "_cmpxchg": _rt_cmpxchg, "BlockTrap": BlockTrap, "Returned": Returned,
    "_misaligned": _rt_misaligned, "_unwind": _rt_unwind,
}

# -- how generated code reaches guest memory ---------------------------------------------------

#: the typed views a direct-access memory offers: name -> (size in bytes, signed)
VIEWS = {"u8": (1, False), "u16": (2, False), "u32": (4, False), "u64": (8, False),
         "s8": (1, True), "s16": (2, True), "s32": (4, True), "s64": (8, True)}


@dataclass(frozen=True)
class DirectAccess:
    """What a memory gives for inline access (its ``direct_access()``): the permission byte
    of each 4 KiB page, and little-endian typed views of all its bytes (``views["u32"][a >> 2]``
    is the 32-bit word at guest address ``a``).

    A load of page ``p`` may skip the memory's ``load`` when ``perms[p] & read``; a store when
    ``perms[p] & write_mask == write_ok`` (pages holding translated code fail this, so their
    stores still go through ``store`` and invalidate). An access crossing a page, a refused
    one, or one beyond ``perms`` always calls the memory.
    """

    perms: bytearray
    views: Mapping[str, memoryview]
    read: int
    write_mask: int
    write_ok: int
    page_shift: int = 12


@dataclass(frozen=True)
class MemoryBinding:
    """One guest memory as generated code sees it: its ``load``/``store`` and, where it offers
    them, the direct views."""

    memory: Any
    load: Callable[[int, int], int]
    store: Callable[[int, int, int], None]
    direct: DirectAccess | None = None


def bind_memory(memory: Any) -> MemoryBinding:
    """The binding for ``memory``: direct access when it has ``direct_access()`` and that gives
    one (a ``DirectAccess`` or a mapping of its fields; None where the host cannot)."""
    get = getattr(memory, "direct_access", None)
    direct = get() if get is not None else None
    if isinstance(direct, Mapping):
        direct = DirectAccess(**direct)
    return MemoryBinding(memory, memory.load, memory.store, direct)


@dataclass(frozen=True)
class BlockOptions:
    """What the engine tells the generator about a block.

    ``start_pc``: the guest pc the block starts at; a trap before any write of ``pc_field``
    reports it, and a read of ``pc_field`` before any write gives it. ``pc_field``: the state
    field ``exit`` replaces (its pending writes die at an exit). ``loop_insns``: compile a
    block that jumps back to ``start_pc`` as a loop, counting this many guest instructions an
    iteration. ``epoch``: a one-element list the engine bumps when it drops translations.
    """

    name: str = "block"
    start_pc: int | None = None
    pc_field: str | None = None
    memory: MemoryBinding | None = None
    loop_insns: int | None = None
    epoch: list[int] | None = None


@dataclass(frozen=True)
class RegionMember:
    """One guest block of a region: its start pc, its (single-block, optimised) function and
    module, and how many guest instructions it counts."""

    pc: int
    func: Function
    module: Module
    insns: int


# -- the generator ------------------------------------------------------------------------------

_ATOM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|0x[0-9a-f]+|[0-9]+")
_LOCAL = re.compile(r"\br_[A-Za-z0-9_]+")
_PYCMP = {"eq": "==", "ne": "!=", "ult": "<", "ule": "<=", "ugt": ">", "uge": ">=",
          "slt": "<", "sle": "<=", "sgt": ">", "sge": ">="}
_MEMORY_OPS = frozenset({"load", "store", "atomic_rmw", "cmpxchg"})


def _is_atom(text: str) -> bool:
    return _ATOM.fullmatch(text) is not None


def _parallel_moves(moves: list[tuple[str, str]]) -> list[str]:
    """Assignments that give each local (``r_...``) its value as if all at once: a move goes
    first when no other value still to be moved reads its local; a cycle is one tuple
    assignment."""
    pending = list(moves)
    out: list[str] = []
    while pending:
        for i, (lhs, rhs) in enumerate(pending):
            if not any(lhs in _LOCAL.findall(other) for j, (_, other) in enumerate(pending)
                       if j != i):
                out.append(f"{lhs} = {rhs}")
                del pending[i]
                break
        else:
            out.append(f"{', '.join(lhs for lhs, _ in pending)} = "
                       f"{', '.join(rhs for _, rhs in pending)}")
            break
    return out


@dataclass
class _Flow:
    """What the generator knows about the state at the current point of one path."""

    #: fields written by the ops so far and not yet in the state: field -> value or text
    dirty: dict[FieldRef, Value | str] = field(default_factory=dict)
    #: pending value of the pc field (kept apart: ``exit`` makes it dead)
    pc: Value | None = None
    #: whether the pc field was written (or flushed) on this path already
    pc_written: bool = False
    #: loop mode: where each field's current value is (a Value, a local's name, or None:
    #: only in the state, after an impure call)
    cur: dict[FieldRef, Value | str | None] = field(default_factory=dict)


class _Gen:
    def __init__(self, func: Function, module: Module, helpers: Mapping[str, Callable],
                 opts: BlockOptions) -> None:
        self.func = func
        self.module = module
        self.helpers = helpers
        self.o = opts
        self.ns: dict[str, Any] = {}
        self.ns_names: dict[int, str] = {}
        self.lines: list[str] = []
        self.ind = "    "
        self.text: dict[Value, str] = {}
        self.width: dict[Value, int] = {}
        self.cond: dict[Value, str] = {}
        self.const: dict[Value, int] = {}
        self.uses: Counter[Value] = Counter()
        self.home: dict[Value, int] = {}  # value -> index of the IR block defining it
        self.cross: set[Value] = set()  # values used outside the block defining them
        self.arrays: set[str] = set()
        self.ftype: dict[str, Any] = {}
        if module.state is not None:
            self.arrays = {f.name for f in module.state.fields if f.count is not None}
            self.ftype = {f.name: f.type for f in module.state.fields}
        self.used_arrays: set[str] = set()
        self.used_globals: set[str] = set()
        self.flow = _Flow()
        self.loop = False
        self.loop_n = 0
        #: guest registers live in Python locals (loops and regions)
        self.locals_mode = False
        self.stale = False  # loop mode: the loop checks the engine's epoch
        self.direct = opts.memory.direct if opts.memory is not None else None
        self.pcf = opts.pc_field
        self.multi_block = len(func.blocks) > 1
        #: the start pc of the guest block being generated, and a prefix for its value names
        self.start = opts.start_pc
        self.prefix = ""
        #: region mode: the position of each member's start pc in the region
        self.region: dict[int, int] | None = None
        #: index in ``lines`` -> what a trap raised on that line writes back
        self.trap_lines: dict[int, TrapPoint] = {}
        #: lines before ``lines`` in the function (loop set-up)
        self.pre: list[str] = []
        #: loop mode: fields whose local the body reads
        self.locals_read: set[FieldRef] = set()
        #: region mode: the defining instruction of each value of the current member
        self.defs: dict[Value, Inst] = {}
        self.region_locals: list[FieldRef] = []
        self.member_index = self.member_insns = 0
        self.member_stale = False
        self._analyse()

    # -- analysis --------------------------------------------------------------------------------
    def _analyse(self) -> None:
        #: gets that read a value already known (set or read before): get result -> value
        self.fwd: dict[Value, Value] = {}
        self.uses = Counter()
        self.home = {}
        self.cross = set()
        for n, block in enumerate(self.func.blocks):
            for p in block.params:
                self.home[p] = n
                self.text[p] = self.vn(p)
                self.width[p] = p.type.bits
            for inst in block.insts:
                if inst.result is not None:
                    self.home[inst.result] = n
        for n, block in enumerate(self.func.blocks):
            for inst in block.insts:
                for v in inst.uses():
                    self.uses[v] += 1
                    if self.home.get(v, n) != n:
                        self.cross.add(v)
            # A get of a field set or read before in this block (no impure call between,
            # which may change it) is that value: its uses are the value's.
            known: dict[FieldRef, Value] = {}
            for inst in block.insts:
                name = inst.op.name
                if name == "get" and inst.result is not None:
                    ref = inst.imms["field"]
                    if ref in known:
                        self.fwd[inst.result] = known[ref]  # type: ignore[index]
                    else:
                        known[ref] = inst.result  # type: ignore[index]
                elif name == "set":
                    v = inst.args[0]
                    known[inst.imms["field"]] = self.fwd.get(v, v)  # type: ignore[index]
                elif name == "call" and not self.pure_call(inst):
                    known.clear()
            # A set that a later set of its field overwrites (with no impure call between,
            # which would see it) is written back only if something traps in between: its
            # value is not used on the fast path, and is not worth a name of its own.
            later: set[FieldRef] = set()
            term = block.insts[-1].op.name if block.insts else ""
            if term == "exit" and self.pcf is not None:
                later.add(FieldRef(self.pcf))
            for inst in reversed(block.insts):
                name = inst.op.name
                if name == "set":
                    ref = inst.imms["field"]
                    if ref in later:
                        self.uses[inst.args[0]] -= 1
                    later.add(ref)  # type: ignore[arg-type]
                elif name == "call" and not self.pure_call(inst):
                    later.clear()
        for r, source in self.fwd.items():
            self.uses[source] += self.uses[r]

    # -- names and texts -------------------------------------------------------------------------
    def vn(self, v: Value) -> str:
        """The Python name of a value."""
        return f"{self.prefix}{v}"

    def emit(self, line: str) -> None:
        self.lines.append(self.ind + line)

    def glob(self, value: Any, hint: str) -> str:
        """A name for a Python object the generated code uses (bound as a default argument)."""
        key = id(value)
        name = self.ns_names.get(key)
        if name is None:
            name = f"_{hint}_{len(self.ns)}"
            self.ns[name] = value
            self.ns_names[key] = name
        self.used_globals.add(name)
        return name

    def use_global(self, name: str, value: Any) -> str:
        self.ns[name] = value
        self.used_globals.add(name)
        return name

    def define(self, v: Value, text: str, width: int, cond: str | None = None) -> None:
        self.text[v] = text
        self.width[v] = min(width, v.type.bits)
        if cond is not None:
            self.cond[v] = cond
        elif v in self.cond:
            del self.cond[v]
        if self.multi_block and v in self.cross:
            self.name(v)

    def name(self, v: Value) -> str:
        """The value's text as a name or literal: a composite expression is computed into its
        own variable here (on the current path)."""
        text = self.text[v]
        if _is_atom(text):
            return text
        name = self.vn(v)
        self.emit(f"{name} = {text}")
        self.text[v] = name
        self.cond.pop(v, None)
        return name

    def arg(self, v: Value, multi: bool = False) -> str:
        """The text of an operand; named first when the value is used more than once (or the
        user repeats it)."""
        if multi or self.uses[v] > 1:
            return self.name(v)
        return self.text[v]

    def cond_of(self, v: Value) -> str:
        """An operand used as a condition: the bare comparison where there is one."""
        c = self.cond.get(v)
        if c is not None and self.uses[v] <= 1 and not _is_atom(self.text[v]):
            return c
        return self.arg(v)

    def w(self, v: Value) -> int:
        return self.width.get(v, v.type.bits)

    # -- state fields ----------------------------------------------------------------------------
    def field_text(self, ref: FieldRef) -> str:
        if ref.name in self.arrays:
            self.used_arrays.add(ref.name)
            return f"A_{ref.name}[{ref.index}]"
        return f"st.{ref.name}"

    @staticmethod
    def local_of(ref: FieldRef) -> str:
        return f"r_{ref.name}" if ref.index is None else f"r_{ref.name}{ref.index}"

    def is_pc(self, ref: FieldRef) -> bool:
        return self.pcf is not None and ref.name == self.pcf and ref.index is None

    def value_text(self, x: Value | str | None, ref: FieldRef) -> str:
        if x is None:
            return self.field_text(ref)
        if isinstance(x, str):
            return x
        return self.text[x]

    def writes(self, *, pc: bool, materialize: bool = False) -> list[tuple[str, str]]:
        """(target, value) of each pending field (and of the pc when ``pc``)."""
        flow = self.flow
        out = []
        for ref, x in flow.dirty.items():
            if materialize and isinstance(x, Value):
                self.name(x)
            out.append((self.field_text(ref), self.value_text(x, ref)))
        if pc and self.pcf is not None:
            ref = FieldRef(self.pcf)
            if flow.pc is not None:
                if materialize:
                    self.name(flow.pc)
                out.append((self.field_text(ref), self.text[flow.pc]))
            elif not flow.pc_written and self.start is not None:
                out.append((self.field_text(ref), f"{self.start:#x}"))
        return out

    def writeback(self, *, pc: bool, materialize: bool = False) -> None:
        """Write the pending fields (and the pc when ``pc``) to the state, on this path."""
        for target, value in self.writes(pc=pc, materialize=materialize):
            self.emit(f"{target} = {value}")

    def flush(self) -> None:
        """Before an impure helper: the state as the ops so far left it."""
        flow = self.flow
        self.writeback(pc=True, materialize=True)
        if flow.pc is not None or self.start is not None:
            flow.pc_written = True
        flow.pc = None
        flow.dirty = {}
        if self.locals_mode:
            for ref in flow.cur:
                flow.cur[ref] = None

    def guarded(self, body: list[str], retry: str | None = None) -> None:
        """Emit ``body`` (statements that may raise a guest trap) and note, for its lines,
        what a trap there must first write back: the state the ops before it left, and in a
        loop or region how many guest instructions ran; ``retry`` re-runs the access on the
        memory's slow path when the inline check indexed past the permission table. The
        function's one ``except`` does it (``_unwind``), so the fast path has no handler
        code at all."""
        writes = self.writes(pc=True)
        if self.loop:
            writes.append(("ctx.ran", f"_it * {self.loop_n}"))
        elif self.region is not None:
            writes.append(("ctx.ran", "_n"))
        start = len(self.lines)
        for line in body:
            self.emit(line)
        if writes or retry is not None:
            point = TrapPoint(tuple(writes), retry)
            for i in range(start, len(self.lines)):
                self.trap_lines[i] = point
            if writes:  # for the reader: what a trap here writes back
                self.lines[start] += "  # trap: " + "; ".join(f"{t} = {v}" for t, v in writes)

    # -- pure ops --------------------------------------------------------------------------------
    def pure(self, inst: Inst) -> None:
        op = inst.op.name
        r = inst.result
        assert r is not None
        t = r.type
        bits, m = t.bits, t.mask
        args = inst.args
        if op in ("iconst", "fconst"):
            c = int(inst.imms["imm"]) & m  # type: ignore[call-overload]
            self.const[r] = c
            self.define(r, hex(c), c.bit_length())
            return
        if args and all(a in self.const for a in args) and op in SEMANTICS and op != "call":
            try:
                c = SEMANTICS[op](t, [self.const[a] for a in args], inst.imms,
                                  [a.type for a in args]) & m
            except (UndefinedBehavior, ArithmeticError, ValueError):
                pass
            else:
                self.const[r] = c
                self.define(r, hex(c), c.bit_length())
                return
        if op in ("copy", "zext") or (op == "bitcast" and args[0].type.bits == bits):
            self.alias(r, args[0])
            return
        if op == "call":
            self.call_expr(inst)
            return
        if t.is_int and all(a.type.is_int for a in args):
            done = self.int_op(inst, op, r, bits, m)
            if done:
                return
        sem = SEMANTICS.get(op)
        if sem is None:
            raise CodegenError(f"the interpreter tier cannot run `{inst}`")
        # floats, bswap, variable rotations...: the shared semantics table
        fn = self.glob(sem, "s_" + op)
        rt = self.glob(t, "t")
        imms = self.glob(dict(inst.imms), "imms")
        tys = self.glob([a.type for a in args], "ts")
        vals = ", ".join(self.arg(a) for a in args)
        self.define(r, f"{fn}({rt}, [{vals}], {imms}, {tys})", bits)

    def alias(self, r: Value, a: Value) -> None:
        if self.uses[a] > 1 and not _is_atom(self.text[a]):
            self.name(a)
        self.text[r] = self.text[a]
        self.width[r] = min(self.w(a), r.type.bits)
        if a in self.const:
            self.const[r] = self.const[a]
        if a in self.cond and self.uses[a] <= 1:
            self.cond[r] = self.cond[a]
        if self.multi_block and r in self.cross:
            self.name(r)

    def int_op(self, inst: Inst, op: str, r: Value, bits: int, m: int) -> bool:
        args = inst.args
        hm = hex(m)
        k = bits - 1  # shift amounts are taken modulo bits (a power of two)
        a = args[0]
        wa = self.w(a)
        b = args[1] if len(args) > 1 else None
        cb = self.const.get(b) if b is not None else None
        s = hex(1 << (bits - 1))
        if op in ("add", "sub", "mul", "and", "or", "xor", "umulh", "udiv", "urem"):
            assert b is not None
            wb = self.w(b)
            if op == "and" and cb is not None and (cb | ((1 << wa) - 1)) == cb:
                self.alias(r, a)  # the mask keeps every bit a can have
                return True
            if op in ("add", "sub", "or", "xor") and cb == 0:
                self.alias(r, a)
                return True
            x, y = self.arg(a), self.arg(b)
            if op == "add":
                wr = max(wa, wb) + 1
                e = f"{x} + {y}"
            elif op == "sub":
                wr, e = bits + 1, f"{x} - {y}"
            elif op == "mul":
                wr, e = wa + wb, f"{x} * {y}"
            elif op == "and":
                self.define(r, f"({x} & {y})", min(wa, wb))
                return True
            elif op == "or":
                self.define(r, f"({x} | {y})", max(wa, wb))
                return True
            elif op == "xor":
                self.define(r, f"({x} ^ {y})", max(wa, wb))
                return True
            elif op == "umulh":
                self.define(r, f"({x} * {y} >> {bits})", max(0, wa + wb - bits))
                return True
            elif op == "udiv":
                self.define(r, f"_udiv({x}, {y})" if cb is None or cb == 0 else f"({x} // {y})",
                            wa)
                self.used_globals.add("_udiv")
                return True
            else:  # urem
                self.define(r, f"_urem({x}, {y})" if cb is None or cb == 0 else f"({x} % {y})",
                            min(wa, wb))
                self.used_globals.add("_urem")
                return True
            if wr <= bits:
                self.define(r, f"({e})", wr)
            else:
                self.define(r, f"(({e}) & {hm})", bits)
            return True
        if op in ("shl", "lshr", "ashr", "rotl", "rotr"):
            assert b is not None
            if op == "ashr" and wa < bits:
                op = "lshr"  # the sign bit is clear
            if cb is not None:
                c = cb & k
                if c == 0:
                    self.alias(r, a)
                    return True
                if op == "shl":
                    x = self.arg(a)
                    if wa + c <= bits:
                        self.define(r, f"({x} << {c})", wa + c)
                    else:
                        self.define(r, f"(({x} << {c}) & {hm})", bits)
                elif op == "lshr":
                    self.define(r, f"({self.arg(a)} >> {c})", max(0, wa - c))
                elif op == "ashr":
                    x = self.arg(a)
                    self.define(r, f"((({x} ^ {s}) - {s} >> {c}) & {hm})", bits)
                else:
                    x = self.arg(a, multi=True)
                    left = c if op == "rotl" else bits - c
                    self.define(r, f"((({x} << {left}) & {hm}) | ({x} >> {bits - left}))", bits)
                return True
            if op in ("rotl", "rotr"):
                return False
            x, y = self.arg(a), self.arg(b)
            amt = f"({y} & {k})"
            if op == "shl":
                self.define(r, f"(({x} << {amt}) & {hm})", bits)
            elif op == "lshr":
                self.define(r, f"({x} >> {amt})", wa)
            else:
                self.define(r, f"((({x} ^ {s}) - {s} >> {amt}) & {hm})", bits)
            return True
        if op in ("umin", "umax", "smin", "smax"):
            assert b is not None
            x, y = self.arg(a, multi=True), self.arg(b, multi=True)
            cmp = "<=" if op.endswith("min") else ">="
            if op[0] == "s" and not (wa < bits and self.w(b) < bits):
                self.define(r, f"({x} if ({x} ^ {s}) {cmp} ({y} ^ {s}) else {y})", bits)
            else:
                self.define(r, f"({x} if {x} {cmp} {y} else {y})", max(wa, self.w(b)))
            return True
        if op == "smulh":
            assert b is not None
            x, y = self.arg(a), self.arg(b)
            self.define(r, f"(((({x} ^ {s}) - {s}) * (({y} ^ {s}) - {s}) >> {bits}) & {hm})",
                        bits)
            return True
        if op in ("sdiv", "srem"):
            assert b is not None
            x, y = self.arg(a), self.arg(b)
            self.used_globals.add("_" + op)
            self.define(r, f"_{op}({x}, {y}, {bits})", bits)
            return True
        if op == "neg":
            self.define(r, f"(-{self.arg(a)} & {hm})", bits)
            return True
        if op == "not":
            self.define(r, f"({self.arg(a)} ^ {hm})", bits)
            return True
        if op == "popcnt":
            self.define(r, f"{self.arg(a)}.bit_count()", bits.bit_length())
            return True
        if op == "clz":
            self.define(r, f"({bits} - {self.arg(a)}.bit_length())", bits.bit_length())
            return True
        if op == "ctz":
            x = self.arg(a, multi=True)
            self.define(r, f"(({x} & -{x}).bit_length() - 1 if {x} else {bits})",
                        bits.bit_length())
            return True
        if op == "icmp":
            assert b is not None
            cond = str(inst.imms["cond"])
            src_bits = a.type.bits
            signed = cond.startswith("s") and not (wa < src_bits and self.w(b) < src_bits)
            sb = 1 << (src_bits - 1)
            texts = []
            for v in (a, b):
                c = self.const.get(v)
                if signed:
                    texts.append(hex(c ^ sb) if c is not None else f"({self.arg(v)} ^ {hex(sb)})")
                else:
                    texts.append(self.arg(v))
            c_text = f"({texts[0]} {_PYCMP[cond]} {texts[1]})"
            self.define(r, f"(1 if {c_text} else 0)", 1, cond=c_text)
            return True
        if op == "select":
            c = self.cond_of(args[0])
            x, y = self.arg(args[1]), self.arg(args[2])
            self.define(r, f"({x} if {c} else {y})", max(self.w(args[1]), self.w(args[2])))
            return True
        if op == "sext":
            src = a.type.bits
            if wa < src:
                self.alias(r, a)
                return True
            sb = hex(1 << (src - 1))
            self.define(r, f"((({self.arg(a)} ^ {sb}) - {sb}) & {hm})", bits)
            return True
        if op == "trunc":
            if wa <= bits:
                self.alias(r, a)
                return True
            self.define(r, f"({self.arg(a)} & {hm})", bits)
            return True
        if op == "bitcast":
            self.alias(r, a)
            return True
        return False

    def call_expr(self, inst: Inst) -> None:
        """A pure helper: an expression like any other."""
        r = inst.result
        assert r is not None
        fn = self.helper(inst)
        args = "".join(", " + self.arg(v) for v in inst.args)
        self.define(r, f"({fn}(ctx{args}) & {hex(r.type.mask)})", r.type.bits)

    def helper(self, inst: Inst) -> str:
        name = str(inst.imms["helper"])
        impl = self.helpers.get(name)
        if impl is None:
            raise CodegenError(f"helper @{name} has no implementation")
        return self.glob(impl, "h_" + re.sub(r"\W", "_", name))

    def pure_call(self, inst: Inst) -> bool:
        decl = self.module.helpers.get(str(inst.imms.get("helper")))
        return decl is not None and decl.pure

    # -- effects ---------------------------------------------------------------------------------
    def get(self, inst: Inst) -> None:
        ref: FieldRef = inst.imms["field"]  # type: ignore[assignment]
        r = inst.result
        assert r is not None
        flow = self.flow
        source = self.fwd.get(r)
        if source is not None:  # the field holds a value set or read before: that one
            self.alias(r, source)
            return
        if self.is_pc(ref):
            if not flow.pc_written and self.start is not None:
                self.const[r] = self.start
                self.define(r, hex(self.start), self.start.bit_length())
                return
        elif self.locals_mode:
            x = flow.cur.get(ref)
            if isinstance(x, str):  # as the iteration began: the loop's local
                self.locals_read.add(ref)
                self.text[r] = x
                self.width[r] = r.type.bits
                return
        self.emit(f"{self.vn(r)} = {self.field_text(ref)}")
        self.text[r] = self.vn(r)
        self.width[r] = r.type.bits
        if self.locals_mode and not self.is_pc(ref):
            flow.cur[ref] = r

    def set(self, inst: Inst) -> None:
        ref: FieldRef = inst.imms["field"]  # type: ignore[assignment]
        v = inst.args[0]
        flow = self.flow
        if self.is_pc(ref):
            flow.pc = v
            return
        flow.dirty.pop(ref, None)
        flow.dirty[ref] = v
        if self.locals_mode:
            flow.cur[ref] = v

    def impure_call(self, inst: Inst) -> None:
        args = [self.arg(v) for v in inst.args]
        self.flush()
        fn = self.helper(inst)
        call = f"{fn}(ctx{''.join(', ' + a for a in args)})"
        r = inst.result
        line = f"{self.vn(r)} = {call} & {hex(r.type.mask)}" if r is not None else call
        if self.loop or self.region is not None:  # a trap in it: how far did we get?
            self.guarded([line])
        else:
            self.emit(line)
        if r is not None:
            self.text[r] = self.vn(r)
            self.width[r] = r.type.bits
        if self.stale:
            self.emit("if _EPOCH[0] != _e0: _stale = 1")

    def align_check(self, addr: str, align: int, lines: list[str]) -> None:
        if align > 1:
            if _is_atom(addr) and addr.startswith("0x"):
                if int(addr, 16) % align:
                    lines.append(f"_misaligned({addr})")
            else:
                lines.append(f"if {addr} & {align - 1}: _misaligned({addr})")
            self.used_globals.add("_misaligned")

    def slow(self, name: str) -> str:
        if self.o.memory is not None:
            return self.use_global(name, getattr(self.o.memory, name))
        self.used_globals.add("mem." + name)
        return name

    def view(self, kind: str) -> str:
        assert self.direct is not None
        return self.use_global(kind.upper(), self.direct.views[kind])

    def perms(self) -> str:
        assert self.direct is not None
        return self.use_global("P", self.direct.perms)

    def load(self, inst: Inst) -> None:
        flags: MemFlags = inst.imms["flags"]  # type: ignore[assignment]
        r = inst.result
        t = inst.type
        assert t is not None and r is not None
        size = flags.size or t.bytes
        a = self.arg(inst.args[0], multi=True)
        lines: list[str] = []
        self.align_check(a, flags.align, lines)
        slow = f"{self.slow('load')}({a}, {size})"
        sext = flags.sext and 8 * size < t.bits
        width = t.bits if sext else min(8 * size, t.bits)
        if sext:
            sb = hex(1 << (8 * size - 1))
            slow_v = f"((({slow}) ^ {sb}) - {sb}) & {hex(t.mask)}"
        elif 8 * size > t.bits:
            slow_v = f"{slow} & {hex(t.mask)}"
        else:
            slow_v = slow
        d = self.direct
        fast = None
        if d is not None and size in (1, 2, 4, 8):
            kind = ("s" if sext else "u") + str(8 * size)
            shift = size.bit_length() - 1
            view, perms = self.view(kind), self.perms()
            need = hex(d.read)
            if _is_atom(a) and a.startswith("0x"):
                addr = int(a, 16)
                if addr % size == 0:
                    check = f"{perms}[{addr >> d.page_shift:#x}] & {need}"
                    fast = f"{view}[{addr >> shift:#x}]"
            else:
                check = f"{perms}[{a} >> {d.page_shift}] & {need}"
                if size > 1:
                    check = f"not {a} & {size - 1} and {check}"
                fast = f"{view}[{a} >> {shift}]" if shift else f"{view}[{a}]"
            if fast is not None and (sext or 8 * size > t.bits):
                fast = f"({fast} & {hex(t.mask)})"
        if fast is not None:
            lines.append(f"{self.vn(r)} = {fast} if {check} else {slow_v}")
            self.guarded(lines, retry=slow)
        else:
            lines.append(f"{self.vn(r)} = {slow_v}")
            self.guarded(lines)
        self.text[r] = self.vn(r)
        self.width[r] = width

    def store(self, inst: Inst) -> None:
        flags: MemFlags = inst.imms["flags"]  # type: ignore[assignment]
        v, addr_v = inst.args
        size = flags.size or v.type.bytes
        a = self.arg(addr_v, multi=True)
        x = self.arg(v)
        if self.w(v) > 8 * size:
            x = f"({x} & {hex((1 << (8 * size)) - 1)})"
        lines: list[str] = []
        self.align_check(a, flags.align, lines)
        slow = f"{self.slow('store')}({a}, {size}, {x})"
        d = self.direct
        fast = None
        if d is not None and size in (1, 2, 4, 8):
            shift = size.bit_length() - 1
            view, perms = self.view("u" + str(8 * size)), self.perms()
            mask, ok = hex(d.write_mask), hex(d.write_ok)
            if _is_atom(a) and a.startswith("0x"):
                addr = int(a, 16)
                if addr % size == 0:
                    check = f"{perms}[{addr >> d.page_shift:#x}] & {mask} == {ok}"
                    fast = f"{view}[{addr >> shift:#x}] = {x}"
            else:
                check = f"{perms}[{a} >> {d.page_shift}] & {mask} == {ok}"
                if size > 1:
                    check = f"not {a} & {size - 1} and {check}"
                fast = f"{view}[{a} >> {shift}] = {x}" if shift else f"{view}[{a}] = {x}"
        if fast is not None:
            lines.append(f"if {check}: {fast}")
            if self.stale:
                lines.append("else:")
                lines.append(f"    {slow}")
                lines.append("    if _EPOCH[0] != _e0: _stale = 1")
            else:
                lines.append(f"else: {slow}")
            self.guarded(lines, retry=slow)
        else:
            lines.append(slow)
            if self.stale:
                lines.append("if _EPOCH[0] != _e0: _stale = 1")
            self.guarded(lines)

    def atomic(self, inst: Inst) -> None:
        r = inst.result
        t = inst.type
        assert t is not None and r is not None
        lines: list[str] = []
        if inst.op.name == "atomic_rmw":
            a = self.arg(inst.args[0], multi=True)
            v = self.arg(inst.args[1])
            self.align_check(a, t.bytes, lines)
            rmw = str(inst.imms["op"])
            sem = self.glob(None if rmw == "xchg" else SEMANTICS[rmw], "s_" + rmw)
            tc = self.glob(t, "t")
            lines.append(f"{self.vn(r)} = _rmw(mem, {rmw!r}, {a}, {v}, {t.bytes}, {sem}, {tc})")
            self.used_globals.add("_rmw")
        else:
            a = self.arg(inst.args[0], multi=True)
            e, n = self.arg(inst.args[1]), self.arg(inst.args[2])
            self.align_check(a, t.bytes, lines)
            lines.append(f"{self.vn(r)} = _cmpxchg(mem, {a}, {e}, {n}, {t.bytes})")
            self.used_globals.add("_cmpxchg")
        if self.stale:
            lines.append("if _EPOCH[0] != _e0: _stale = 1")
        self.guarded(lines)
        self.text[r] = self.vn(r)
        self.width[r] = t.bits

    # -- instructions ----------------------------------------------------------------------------
    def inst(self, inst: Inst) -> None:
        op = inst.op.name
        if op == "call":
            if self.pure_call(inst) and inst.result is not None:
                self.pure(inst)
            elif self.pure_call(inst):
                args = "".join(", " + self.arg(v) for v in inst.args)
                self.emit(f"{self.helper(inst)}(ctx{args})")
            else:
                self.impure_call(inst)
        elif inst.op.effects == Effect.NONE:
            self.pure(inst)
        elif op == "get":
            self.get(inst)
        elif op == "set":
            self.set(inst)
        elif op == "load":
            self.load(inst)
        elif op == "store":
            self.store(inst)
        elif op in ("atomic_rmw", "cmpxchg"):
            self.atomic(inst)
        elif op == "fence":
            pass
        elif op == "exit":
            if self.region is not None:
                self.region_exit(inst)
                return
            target = self.arg(inst.args[0])
            self.writeback(pc=False)
            self.emit(f"return {target}")
        elif op == "trap":
            self.writeback(pc=True)
            if self.region is not None:
                self.emit("ctx.ran = _n")
            self.emit(f"raise BlockTrap({str(inst.imms['kind'])!r})")
        elif op == "ret":
            vals = [self.arg(v) for v in inst.args]
            self.writeback(pc=True)
            self.emit(f"return Returned(({''.join(v + ', ' for v in vals)}))")
        else:
            raise CodegenError(f"the interpreter tier cannot run `{inst}`")

    def jump(self, target: Any, index: dict) -> None:
        params = target.block.params
        if params:
            vals = [self.arg(v) for v in target.args]
            lhs = ", ".join(map(self.vn, params))
            self.emit(f"{lhs}{',' if len(params) == 1 else ''} = "
                      f"{', '.join(vals)}{',' if len(params) == 1 else ''}")
        self.emit(f"_b = {index[target.block]}")
        self.emit("continue")

    # -- whole functions -------------------------------------------------------------------------
    def straight(self) -> list[str]:
        func = self.func
        if not self.multi_block:
            for inst in func.blocks[0].insts:
                self.inst(inst)
            return self.lines
        index = {b: n for n, b in enumerate(func.blocks)}
        if self.pcf is not None and self.start is not None:
            self.emit(f"st.{self.pcf} = {self.start:#x}")
        self.emit("_b = 0")
        self.emit("while True:")
        for n, b in enumerate(func.blocks):
            self.ind = "        "
            self.emit(f"{'if' if n == 0 else 'elif'} _b == {n}:")
            self.ind = "            "
            self.flow = _Flow(pc_written=True)
            for inst in b.insts:
                op = inst.op.name
                if op == "br":
                    self.writeback(pc=True, materialize=True)
                    self.jump(inst.targets[0], index)
                elif op == "brif":
                    c = self.cond_of(inst.args[0])
                    for t in inst.targets:  # a value both targets take: named out here
                        for v in t.args:
                            if self.uses[v] > 1:
                                self.name(v)
                    self.writeback(pc=True, materialize=True)
                    self.emit(f"if {c}:")
                    self.ind += "    "
                    self.jump(inst.targets[0], index)
                    self.ind = self.ind[:-4]
                    self.jump(inst.targets[1], index)
                else:
                    self.inst(inst)
        return self.lines

    def loop_exit(self) -> tuple[Value, str | None, str | None] | None:
        """For a self-loop: (exit value, the select condition, 'stay' or 'leave' when the
        loop continues on the condition being true / false); None if not a self-loop."""
        block = self.func.blocks[0]
        term = block.insts[-1] if block.insts else None
        if term is None or term.op.name != "exit":
            return None
        head = self.o.start_pc
        v = term.args[0]
        defs = {i.result: i for i in block.insts if i.result is not None}
        d = defs.get(v)
        if d is None:
            return None
        if d.op.name == "iconst":
            return (v, None, None) if int(d.imms["imm"]) == head else None  # type: ignore[call-overload]
        if d.op.name != "select":
            return None
        arms = []
        for a in d.args[1:]:
            ad = defs.get(a)
            arms.append(int(ad.imms["imm"]) if ad is not None and ad.op.name == "iconst"  # type: ignore[call-overload]
                        else None)
        if arms[0] == head and arms[1] != head:
            return (v, "stay", None)
        if arms[1] == head and arms[0] != head:
            return (v, "leave", None)
        return None

    def looped(self) -> list[str] | None:
        shape = self.loop_exit()
        if shape is None:
            return None
        block = self.func.blocks[0]
        insts = block.insts
        term = insts[-1]
        exit_v = term.args[0]
        # the fields the loop keeps in locals, and those dirty at the top of an iteration
        fields: dict[FieldRef, None] = {}
        dirty_top: dict[FieldRef, None] = {}
        for inst in insts:
            op = inst.op.name
            if op in ("get", "set"):
                ref: FieldRef = inst.imms["field"]  # type: ignore[assignment]
                if self.is_pc(ref):
                    continue
                fields[ref] = None
                if op == "set":
                    dirty_top[ref] = None
            elif op == "call" and not self.pure_call(inst):
                dirty_top.clear()
        self.loop = self.locals_mode = True
        self.loop_n = self.o.loop_insns or 1
        self.stale = self.o.epoch is not None and any(
            i.op.name in ("store", "atomic_rmw", "cmpxchg")
            or (i.op.name == "call" and not self.pure_call(i)) for i in insts)
        if self.stale:
            self.use_global("_EPOCH", self.o.epoch)
        head = self.o.start_pc
        assert head is not None
        self.ind = "        "
        self.flow = _Flow(dirty={ref: self.local_of(ref) for ref in dirty_top},
                          cur={ref: self.local_of(ref) for ref in fields})
        for inst in insts[:-1]:
            self.inst(inst)
        flow = self.flow
        # the locals the loop needs: fields read as the iteration began, or written back
        # from their local (dirty as it begins)
        fields = {ref: None for ref in fields if ref in self.locals_read or ref in dirty_top}
        pre = [f"{self.local_of(ref)} = {self.field_text(ref)}" for ref in fields]
        if self.stale:
            pre += ["_e0 = _EPOCH[0]", "_stale = 0"]
        pre.append(f"for _it in range(ctx.left // {self.loop_n} + 1):")
        # the back edge: the next iteration's locals
        _v, how, _ = shape
        sel = None
        if how is not None:
            defs = {i.result: i for i in insts if i.result is not None}
            sel = defs[exit_v]
            cond = self.cond_of(sel.args[0])
            stay = cond if how == "stay" else f"not {cond}"
            other = self.text[sel.args[2] if how == "stay" else sel.args[1]]
            moves_at = self.ind + "    "
        else:
            stay, other = None, None
            moves_at = self.ind
        moves: list[tuple[str, str]] = []
        for ref in fields:
            x = flow.cur[ref]
            local = self.local_of(ref)
            if x is None:
                moves.append((local, self.field_text(ref)))
            elif isinstance(x, Value) and self.text[x] != local:
                moves.append((local, self.text[x]))
        body = _parallel_moves(moves)
        if stay is not None:
            self.emit(f"if {stay}:")
        for line in body:
            self.lines.append(moves_at + line)
        if self.stale:
            self.lines.append(moves_at + "if _stale: break")
        if stay is not None:
            self.lines.append(moves_at + "continue")
            self.writeback(pc=False)
            self.emit(f"ctx.ran = (_it + 1) * {self.loop_n}")
            self.emit(f"return {other}")
        # the budget is spent (or the code changed): the state from the locals, back to the head
        self.ind = "    "
        for ref in dirty_top:
            self.emit(f"{self.field_text(ref)} = {self.local_of(ref)}")
        self.emit(f"ctx.ran = (_it + 1) * {self.loop_n}")
        self.emit(f"return {head:#x}")
        self.pre = ["    " + line for line in pre]
        return self.lines

    # -- regions: several guest blocks in one function -------------------------------------------
    def region_exit(self, inst: Inst) -> None:
        """A member's ``exit``: its registers into the region's locals, its instructions
        counted, then on to the target's section (a later one: fall through; an earlier one:
        round the loop, budget allowing) or out."""
        v = inst.args[0]
        assert self.region is not None
        d = self.defs.get(v)
        arms = None
        if v not in self.const and d is not None and d.op.name == "select" and all(
                a in self.const for a in d.args[1:]):
            arms = (self.cond_of(d.args[0]), self.const[d.args[1]], self.const[d.args[2]])
        elif v not in self.const:
            self.emit(f"pc = {self.arg(v)}")  # before the moves: it may read a local
        moves = _parallel_moves(self.region_moves())
        self.emit(f"_n += {self.member_insns}")
        if arms is not None:
            cond, yes, no = arms
            self.emit(f"if {cond}:")  # it may read a local: the moves go in the branches
            self.ind += "    "
            for line in moves:
                self.emit(line)
            self.transfer(yes)
            self.ind = self.ind[:-4]
            self.emit("else:")
            self.ind += "    "
            for line in moves:
                self.emit(line)
            self.transfer(no)
            self.ind = self.ind[:-4]
            return
        for line in moves:
            self.emit(line)
        if v in self.const:
            self.transfer(self.const[v])
        else:  # a member further down is next; an earlier one: round the loop
            stale = " or _stale" if self.member_stale else ""
            self.emit(f"if pc not in _R or _n >= _lim{stale}: break")
            self.use_global("_R", frozenset(self.region))

    def region_moves(self) -> list[tuple[str, str]]:
        """Where each register the region keeps in a local is now, into that local."""
        moves = []
        for ref in self.region_locals:
            x = self.flow.cur.get(ref)
            local = self.local_of(ref)
            if x is None:
                moves.append((local, self.field_text(ref)))
            elif isinstance(x, Value) and self.text[x] != local:
                moves.append((local, self.text[x]))
        return moves

    def transfer(self, target: int) -> None:
        assert self.region is not None
        self.emit(f"pc = {target:#x}")
        where = self.region.get(target)
        if where is None:
            self.emit("break")
        elif where > self.member_index:
            if self.member_stale:
                self.emit("if _stale: break")
        else:
            self.emit(f"if _n >= _lim{' or _stale' if self.member_stale else ''}: break")
            self.emit("continue")

    def regioned(self, members: list[RegionMember]) -> list[str]:
        self.region = {m.pc: i for i, m in enumerate(members)}
        self.locals_mode = True
        effects = ("store", "atomic_rmw", "cmpxchg")

        def touches(m: RegionMember) -> bool:
            return any(i.op.name in effects or (i.op.name == "call" and not self._pure_in(
                i, m.module)) for b in m.func.blocks for i in b.insts)

        # the registers in locals: those a member reads as it begins (before writing them
        # or calling an impure helper), and those a member writes (dirty at any block start)
        read_first: dict[FieldRef, None] = {}
        written: dict[FieldRef, None] = {}
        touched: dict[FieldRef, None] = {}
        for m in members:
            seen: set[FieldRef] = set()
            called = False
            for inst in m.func.blocks[0].insts:
                name = inst.op.name
                if name in ("get", "set"):
                    ref: FieldRef = inst.imms["field"]  # type: ignore[assignment]
                    if self.is_pc(ref):
                        continue
                    touched[ref] = None
                    if name == "get" and not called and ref not in seen:
                        read_first[ref] = None
                    if name == "set":
                        written[ref] = None
                    seen.add(ref)
                elif name == "call" and not self._pure_in(inst, m.module):
                    called = True
        self.region_locals = [ref for ref in touched if ref in read_first or ref in written]
        self.stale = self.o.epoch is not None and any(touches(m) for m in members)
        self.lines = []
        self.trap_lines = {}
        for i, m in enumerate(members):
            self.func, self.module, self.start = m.func, m.module, m.pc
            self.multi_block = False
            self.prefix = f"b{i}_"
            self.member_index, self.member_insns = i, m.insns
            self.member_stale = self.stale and touches(m)
            self._analyse()
            self.defs = {inst.result: inst for inst in m.func.blocks[0].insts
                         if inst.result is not None}
            self.flow = _Flow(dirty={ref: self.local_of(ref) for ref in written},
                              cur={ref: self.local_of(ref) for ref in touched})
            self.ind = "        "
            self.emit(f"if pc == {m.pc:#x}:  # {m.insns} guest instruction(s)")
            self.ind = "            "
            for inst in m.func.blocks[0].insts:
                self.inst(inst)
        # out of the region: the registers it wrote, from their locals
        self.ind = "    "
        for ref in written:
            self.emit(f"{self.field_text(ref)} = {self.local_of(ref)}")
        self.emit("ctx.ran = _n")
        self.emit("return pc")
        pre = [f"{self.local_of(ref)} = {self.field_text(ref)}" for ref in self.region_locals]
        if self.stale:
            self.use_global("_EPOCH", self.o.epoch)
            pre += ["_e0 = _EPOCH[0]", "_stale = 0"]
        pre += ["_n = 0", "_lim = ctx.left", f"pc = {members[0].pc:#x}", "while True:"]
        self.pre = ["    " + line for line in pre]
        return self.lines

    def _pure_in(self, inst: Inst, module: Module) -> bool:
        decl = module.helpers.get(str(inst.imms.get("helper")))
        return decl is not None and decl.pure

    def generate(self, members: list[RegionMember] | None = None, comment: str = "") -> str:
        body = None
        if members is not None:
            body = self.regioned(members)
        elif (self.o.loop_insns is not None and self.o.start_pc is not None
                and not self.multi_block):
            saved = dict(self.uses)
            body = self.looped()
            if body is None:
                self.uses = Counter(saved)
                self.loop = False
        if body is None:
            body = self.straight()
        if members is not None:
            self.func = members[0].func
        prologue = [f"    A_{name} = st.{name}" for name in sorted(self.used_arrays)]
        for g in sorted(self.used_globals):
            if g.startswith("mem."):
                prologue.append(f"    {g[4:]} = {g}")
        params = ["st", "mem", "ctx", *(self.vn(p) for p in self.func.entry.params)]
        defaults = sorted(g for g in self.used_globals if not g.startswith("mem."))
        for g in defaults:
            if g not in self.ns:
                self.ns[g] = RUNTIME[g]
        params += [f"{g}={g}" for g in defaults]
        head = ([comment] if comment else []) + [f"def block({', '.join(params)}):"]
        inner = prologue + self.pre
        if not self.trap_lines:
            return "\n".join(head + inner + body) + "\n"
        # one handler for the whole function: _unwind finds the trap point by line number
        head.append("    try:")
        first = len(head) + len(inner) + 1  # the line number of body[0]
        self.ns["_TRAPS"] = {first + i: point for i, point in self.trap_lines.items()}
        return "\n".join(head + ["    " + line for line in inner + body] + [
            "    except BaseException as _e:",
            "        _unwind(_e, _TRAPS)",
            "        raise"]) + "\n"


def compile_block(func: Function, module: Module, helpers: Mapping[str, Callable],
                  name: str = "block", *, options: BlockOptions | None = None
                  ) -> tuple[BlockFn, str]:
    """Compile ``func`` to a Python function; gives the function and its source."""
    opts = options or BlockOptions(name=name)
    gen = _Gen(func, module, helpers, opts)
    comment = ""
    if opts.start_pc is not None:
        loop = opts.loop_insns is not None and not gen.multi_block and \
            gen.loop_exit() is not None
        comment = f"# {'loop' if loop else 'block'} at {opts.start_pc:#x}"
    source = gen.generate(comment=comment)
    namespace: dict[str, Any] = dict(RUNTIME)
    namespace.update(gen.ns)
    code = compile(source, f"<vm-ir {opts.name}>", "exec")
    exec(code, namespace)
    fn = namespace["block"]
    fn.is_loop = gen.loop  # type: ignore[attr-defined]
    fn.counts_itself = gen.loop  # type: ignore[attr-defined]  # reports ctx.ran
    return fn, source


def compile_region(members: list[RegionMember], helpers: Mapping[str, Callable],
                   options: BlockOptions) -> tuple[BlockFn, str]:
    """Compile several guest blocks into one function that runs from ``members[0].pc`` and
    goes from block to block without returning, while the exits stay inside the region and
    the budget (``ctx.left``) lasts; it returns the pc it leaves to and reports the guest
    instructions it ran in ``ctx.ran``. Each member must be a single-block function ending in
    ``exit`` or ``trap``; a dynamic exit stays inside when its target is a member."""
    first = members[0]
    gen = _Gen(first.func, first.module, helpers, options)
    pcs = ", ".join(f"{m.pc:#x}" for m in members)
    source = gen.generate(members, comment=f"# region of {len(members)} blocks: {pcs}")
    namespace: dict[str, Any] = dict(RUNTIME)
    namespace.update(gen.ns)
    exec(compile(source, f"<vm-ir region {first.pc:#x}>", "exec"), namespace)
    fn = namespace["block"]
    fn.is_loop = False  # type: ignore[attr-defined]
    fn.counts_itself = True  # type: ignore[attr-defined]  # reports ctx.ran
    return fn, source


__all__ = ["ATOMIC_LOCK", "BlockOptions", "BlockTrap", "CodegenError", "DirectAccess",
           "MemoryBinding", "RegionMember", "Returned", "bind_memory", "compile_block",
           "compile_region"]
