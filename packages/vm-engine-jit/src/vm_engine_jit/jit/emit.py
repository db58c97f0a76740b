"""A small LLVM IR text emitter: what ``lower`` writes functions with.

llvmlite's ``ir`` builder spends tens of microseconds per instruction building objects and
formatting them; lowering wrote most of a batch's compile time with it. This writes the text
directly: a value is its type and its name (or a constant's spelling), an instruction one
f-string. Types are LLVM's spellings (``"i64"``, ``"double"``, ``"ptr"``). Nothing here checks
types: LLVM's parser and verifier do, when the batch is compiled.

    fn = FunctionText("f", "i64", ["ptr %ctx"])
    b = Builder(fn, fn.block("entry"))
    x = b.op("add", const("i64", 1), const("i64", 2))
    b.ret(x)
    text = fn.render()
"""

from __future__ import annotations

from collections.abc import Iterable

#: bits of each integer and float type spelling
WIDTH = {"i1": 1, "i8": 8, "i16": 16, "i32": 32, "i64": 64, "i128": 128, "i256": 256,
         "float": 32, "double": 64}
#: the integer type of a float's bits
INT_OF = {"float": "i32", "double": "i64"}


class Val:
    """An SSA value or a constant: its LLVM type and how an operand spells it."""

    __slots__ = ("ref", "ty")

    def __init__(self, ty: str, ref: str) -> None:
        self.ty = ty
        self.ref = ref

    def __repr__(self) -> str:
        return f"{self.ty} {self.ref}"


def const(ty: str, value: int) -> Val:
    """An integer constant (taken modulo 2^width, written unsigned; an i1 as true/false)."""
    if ty == "i1":
        return Val(ty, "true" if value & 1 else "false")
    return Val(ty, str(value & ((1 << width(ty)) - 1)))


def width(ty: str) -> int:
    """Bits of an integer or float type spelling."""
    bits = WIDTH.get(ty)
    return bits if bits is not None else int(ty[1:])


def float_const(ty: str, bits: int) -> Val:
    """A float constant with exactly these bits (NaN payloads kept)."""
    if ty == "double":
        return Val(ty, f"0x{bits & 0xFFFFFFFFFFFFFFFF:016X}")
    return Val(ty, f"bitcast (i32 {bits & 0xFFFFFFFF} to float)")


class Phi(Val):
    """A phi node; its incoming values may be added until the function is rendered."""

    __slots__ = ("incoming",)

    def __init__(self, ty: str, ref: str) -> None:
        super().__init__(ty, ref)
        self.incoming: list[tuple[str, str]] = []

    def add(self, value: Val, block: BlockText) -> None:
        self.incoming.append((value.ref, block.ref))

    def render(self) -> str:
        pairs = ", ".join(f"[ {v}, {b} ]" for v, b in self.incoming)
        return f"  {self.ref} = phi {self.ty} {pairs}"


class BlockText:
    """A basic block: its phis and its other instructions, as text lines."""

    __slots__ = ("label", "lines", "phis", "ref")

    def __init__(self, label: str) -> None:
        self.label = label
        self.ref = f"%{label}"
        self.phis: list[Phi] = []
        self.lines: list[str] = []

    def render(self) -> str:
        body = [p.render() for p in self.phis] + self.lines
        return f"{self.label}:\n" + "\n".join(body)


class FunctionText:
    """A function being written: blocks in order, fresh names for values and blocks."""

    def __init__(self, name: str, ret: str, params: Iterable[str], linkage: str = "",
                 attrs: str = "") -> None:
        self.name = name
        self.ret = ret
        self.params = list(params)
        self.linkage = linkage
        self.attrs = attrs
        self.blocks: list[BlockText] = []
        self._next = 0
        self._labels: set[str] = set()

    def tmp(self) -> str:
        """A fresh value name: ``%.N``, which no label can be (vm-ir names start with a letter
        or ``_``, and labels share the namespace of values)."""
        self._next += 1
        return f"%.{self._next}"

    def block(self, name: str) -> BlockText:
        """A new block, appended; ``name`` made unique."""
        label = name
        n = 1
        while label in self._labels:
            n += 1
            label = f"{name}.{n}"
        self._labels.add(label)
        block = BlockText(label)
        self.blocks.append(block)
        return block

    def render(self) -> str:
        link = f"{self.linkage} " if self.linkage else ""
        attrs = f" {self.attrs}" if self.attrs else ""
        head = f"define {link}{self.ret} @\"{self.name}\"({', '.join(self.params)}){attrs} {{"
        return head + "\n" + "\n".join(b.render() for b in self.blocks) + "\n}\n"


class Builder:
    """Appends instructions to a block of a ``FunctionText``; each method gives its result."""

    __slots__ = ("block", "fn", "module")

    def __init__(self, fn: FunctionText, block: BlockText,
                 module: ModuleText | None = None) -> None:
        self.fn = fn
        self.block = block
        self.module = module

    def at(self, block: BlockText) -> None:
        self.block = block

    def _emit(self, ty: str, text: str) -> Val:
        ref = self.fn.tmp()
        self.block.lines.append(f"  {ref} = {text}")
        return Val(ty, ref)

    def raw(self, text: str) -> None:
        """An instruction without a result, as text."""
        self.block.lines.append(f"  {text}")

    # -- arithmetic and logic ----------------------------------------------------------------
    def op(self, name: str, a: Val, b: Val) -> Val:
        """A binary op (``add``, ``and``, ``lshr``, ``udiv``, ``fadd``, ...) on one type."""
        return self._emit(a.ty, f"{name} {a.ty} {a.ref}, {b.ref}")

    def fneg(self, a: Val) -> Val:
        return self._emit(a.ty, f"fneg {a.ty} {a.ref}")

    def icmp(self, cond: str, a: Val, b: Val) -> Val:
        return self._emit("i1", f"icmp {cond} {a.ty} {a.ref}, {b.ref}")

    def fcmp(self, cond: str, a: Val, b: Val) -> Val:
        return self._emit("i1", f"fcmp {cond} {a.ty} {a.ref}, {b.ref}")

    def select(self, c: Val, a: Val, b: Val) -> Val:
        return self._emit(a.ty, f"select i1 {c.ref}, {a.ty} {a.ref}, {b.ty} {b.ref}")

    def cast(self, name: str, a: Val, ty: str) -> Val:
        """``zext``/``sext``/``trunc``/``bitcast``/``fpext``/``sitofp``/... to ``ty``."""
        if a.ty == ty and name in ("zext", "sext", "trunc", "bitcast"):
            return a
        return self._emit(ty, f"{name} {a.ty} {a.ref} to {ty}")

    def call(self, ret: str, callee: str, args: Iterable[Val]) -> Val:
        """Call a function (``@name``) or a pointer (``%p``) returning ``ret``."""
        text = ", ".join(f"{a.ty} {a.ref}" for a in args)
        return self._emit(ret, f"call {ret} {callee}({text})")

    def intrinsic(self, name: str, ret: str, args: list[Val]) -> Val:
        """Call an LLVM intrinsic (``llvm.ctlz.i64``), declaring it in the module."""
        assert self.module is not None
        self.module.declare(name, ret, [a.ty for a in args])
        return self.call(ret, f"@{name}", args)

    def asm_barrier(self, a: Val) -> Val:
        """``a``, through an empty inline asm: LLVM can no longer see where it came from."""
        return self._emit(a.ty, f'call {a.ty} asm "", "=r,0"({a.ty} {a.ref})')

    def extract(self, agg: Val, ty: str, index: int) -> Val:
        return self._emit(ty, f"extractvalue {agg.ty} {agg.ref}, {index}")

    # -- memory ------------------------------------------------------------------------------
    def gep(self, base: Val, offset: Val | int) -> Val:
        """``base`` plus a byte offset."""
        if isinstance(offset, int):
            if offset == 0:
                return base
            offset = const("i64", offset)
        return self._emit("ptr", f"getelementptr i8, ptr {base.ref}, {offset.ty} {offset.ref}")

    def load(self, ty: str, ptr: Val, align: int = 1, order: str | None = None,
             volatile: bool = False) -> Val:
        if order is not None:
            return self._emit(ty, f"load atomic {ty}, ptr {ptr.ref} {order}, align {align}")
        kind = "load volatile" if volatile else "load"
        return self._emit(ty, f"{kind} {ty}, ptr {ptr.ref}, align {align}")

    def store(self, value: Val, ptr: Val, align: int = 1, order: str | None = None) -> None:
        if order is not None:
            self.raw(f"store atomic {value.ty} {value.ref}, ptr {ptr.ref} {order}, "
                     f"align {align}")
        else:
            self.raw(f"store {value.ty} {value.ref}, ptr {ptr.ref}, align {align}")

    def alloca(self, ty: str, align: int = 16) -> Val:
        return self._emit("ptr", f"alloca {ty}, align {align}")

    def atomic_rmw(self, op: str, ptr: Val, v: Val, order: str) -> Val:
        return self._emit(v.ty, f"atomicrmw {op} ptr {ptr.ref}, {v.ty} {v.ref} {order}, "
                                f"align {WIDTH[v.ty] // 8}")

    def cmpxchg(self, ptr: Val, expected: Val, new: Val, order: str, fail: str) -> Val:
        """The value read (the ``{T, i1}`` pair's first element)."""
        pair = self._emit(f"{{ {new.ty}, i1 }}",
                          f"cmpxchg ptr {ptr.ref}, {expected.ty} {expected.ref}, "
                          f"{new.ty} {new.ref} {order} {fail}, align {WIDTH[new.ty] // 8}")
        return self.extract(pair, new.ty, 0)

    def fence(self, order: str) -> None:
        self.raw(f"fence {order}")

    # -- control flow ------------------------------------------------------------------------
    def phi(self, ty: str, block: BlockText | None = None) -> Phi:
        phi = Phi(ty, self.fn.tmp())
        (block or self.block).phis.append(phi)
        return phi

    def br(self, target: BlockText) -> None:
        self.raw(f"br label {target.ref}")

    def cbr(self, c: Val, then: BlockText, other: BlockText) -> None:
        self.raw(f"br i1 {c.ref}, label {then.ref}, label {other.ref}")

    def ret(self, value: Val) -> None:
        self.raw(f"ret {value.ty} {value.ref}")

    def switch(self, value: Val, default: BlockText, cases: Iterable[tuple[int, BlockText]]
               ) -> None:
        arms = " ".join(f"{value.ty} {const(value.ty, v).ref}, label {b.ref}" for v, b in cases)
        self.raw(f"switch {value.ty} {value.ref}, label {default.ref} [ {arms} ]")


class ModuleText:
    """An LLVM module being written: functions, declarations and shared pieces by name."""

    def __init__(self, name: str, triple: str = "", data_layout: str = "") -> None:
        self.name = name
        self.triple = triple
        self.data_layout = data_layout
        self.functions: list[str] = []
        self._declared: dict[str, str] = {}
        self._pieces: dict[str, str] = {}

    def declare(self, name: str, ret: str, params: list[str]) -> None:
        if name not in self._declared:
            self._declared[name] = f"declare {ret} @{name}({', '.join(params)})"

    def piece(self, key: str, text: str) -> None:
        """Text added once per module however often it is asked for (support functions)."""
        self._pieces.setdefault(key, text)

    def has_piece(self, key: str) -> bool:
        return key in self._pieces

    def render(self) -> str:
        head = [f"; ModuleID = '{self.name}'"]
        if self.data_layout:
            head.append(f'target datalayout = "{self.data_layout}"')
        if self.triple:
            head.append(f'target triple = "{self.triple}"')
        return "\n".join([*head, "", *self._pieces.values(), *self.functions,
                          *self._declared.values(), ""])


__all__ = [
    "INT_OF", "WIDTH", "BlockText", "Builder", "FunctionText", "ModuleText", "Phi", "Val",
    "const", "float_const", "width",
]
