"""The in-memory IR: modules, state layouts, helpers, functions, blocks, instructions, values."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .ops import OpDef
from .types import Type


class Value:
    """An SSA value: a block parameter or an instruction's result. Printed ``v<id>``."""

    __slots__ = ("id", "type")

    def __init__(self, id: int, type: Type) -> None:
        self.id = id
        self.type = type

    def __str__(self) -> str:
        return f"v{self.id}"

    def __repr__(self) -> str:
        return f"v{self.id}:{self.type}"


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A reference to a state field: ``pc`` or an element of an array field, ``x[3]``."""

    name: str
    index: int | None = None

    def __str__(self) -> str:
        return self.name if self.index is None else f"{self.name}[{self.index}]"


@dataclass(frozen=True, slots=True)
class MemFlags:
    """How a load or store accesses memory.

    ``size``: bytes accessed (None: the value type's size); ``sext``: sign-extend a narrow load;
    ``align``: the address must be a multiple of it (1: any); ``order``: atomic ordering (None:
    not atomic).
    """

    size: int | None = None
    sext: bool = False
    align: int = 1
    order: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.size is not None:
            parts.append(f"size {self.size}")
        if self.sext:
            parts.append("sext")
        if self.align != 1:
            parts.append(f"align {self.align}")
        if self.order is not None:
            parts.append(self.order)
        return " ".join(parts)


@dataclass(eq=False, slots=True)
class Target:
    """A branch target: a block and the values passed to its parameters."""

    block: Block
    args: list[Value] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.args:
            return self.block.name
        return f"{self.block.name}({', '.join(map(str, self.args))})"


@dataclass(eq=False, slots=True)
class Inst:
    """One instruction: an op, its value arguments, immediates, branch targets and result.

    ``imms`` maps the op's immediate operand names to their values: ``imm`` (int, or a float's
    bit pattern), ``cond``, ``op``, ``kind``, ``order`` (str), ``field`` (FieldRef), ``helper``
    (str), ``flags`` (MemFlags). ``type`` is the type written after the op name (``iconst.i64``).
    ``loc`` is the source line when the instruction was parsed.
    """

    op: OpDef
    args: list[Value] = field(default_factory=list)
    imms: dict[str, object] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    result: Value | None = None
    type: Type | None = None
    loc: int | None = None

    @property
    def name(self) -> str:
        return self.op.name

    def uses(self) -> Iterator[Value]:
        """Every value this instruction reads, branch arguments included."""
        yield from self.args
        for target in self.targets:
            yield from target.args

    def replace_uses(self, mapping: dict[Value, Value]) -> None:
        """Replace each use of a key of ``mapping`` with its value."""
        if not mapping:
            return
        self.args = [mapping.get(a, a) for a in self.args]
        for target in self.targets:
            target.args = [mapping.get(a, a) for a in target.args]

    def __str__(self) -> str:
        from .printer import format_inst

        return format_inst(self)


@dataclass(eq=False, slots=True)
class Block:
    """A basic block with parameters; its last instruction is its terminator."""

    name: str
    params: list[Value] = field(default_factory=list)
    insts: list[Inst] = field(default_factory=list)
    loc: int | None = None

    @property
    def terminator(self) -> Inst | None:
        if self.insts and self.insts[-1].op.is_terminator:
            return self.insts[-1]
        return None

    def successors(self) -> list[Block]:
        term = self.terminator
        return [t.block for t in term.targets] if term is not None else []


@dataclass(frozen=True, slots=True)
class StateField:
    """A field of the guest state: a scalar (``count`` None) or an array of ``count`` elements."""

    name: str
    type: Type
    count: int | None = None


@dataclass(slots=True)
class StateLayout:
    """The declared layout of a guest's state: named scalar and array fields."""

    fields: list[StateField] = field(default_factory=list)
    loc: int | None = None

    def field(self, name: str) -> StateField | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def add(self, name: str, type: Type, count: int | None = None) -> StateField:
        f = StateField(name, type, count)
        self.fields.append(f)
        return f


@dataclass(slots=True)
class HelperDecl:
    """A helper the IR may ``call``: its parameter types, optional result type and purity.

    ``native`` names the standard operation the helper performs (``fp.fadd.d``; see "Native
    helpers" in docs/ir.md): an engine that knows the name may run its own code for it instead
    of calling the implementation, with the same results and effects."""

    name: str
    params: list[Type] = field(default_factory=list)
    result: Type | None = None
    pure: bool = False
    loc: int | None = None
    native: str | None = None


@dataclass(eq=False, slots=True)
class Function:
    """A function: a signature and a CFG of blocks; the first block is the entry."""

    name: str
    params: list[Type] = field(default_factory=list)
    returns: list[Type] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    loc: int | None = None
    next_value: int = 0

    @property
    def entry(self) -> Block:
        return self.blocks[0]

    def new_value(self, type: Type, id: int | None = None) -> Value:
        """A fresh value; ``id`` forces its number (the parser keeps the source's numbering)."""
        if id is None:
            id = self.next_value
        self.next_value = max(self.next_value, id + 1)
        return Value(id, type)

    def new_block(self, param_types: list[Type] | tuple[Type, ...] = (),
                  name: str | None = None) -> Block:
        if name is None:
            taken = {b.name for b in self.blocks}
            n = len(self.blocks)
            while f"block{n}" in taken:
                n += 1
            name = f"block{n}"
        block = Block(name, [self.new_value(t) for t in param_types])
        self.blocks.append(block)
        return block

    def block_named(self, name: str) -> Block | None:
        for b in self.blocks:
            if b.name == name:
                return b
        return None

    def insts(self) -> Iterator[tuple[Block, Inst]]:
        for b in self.blocks:
            for i in b.insts:
                yield b, i

    def __str__(self) -> str:
        from .printer import format_function

        return format_function(self)


@dataclass(slots=True)
class Module:
    """A translation unit: an optional state layout, helper declarations and functions."""

    state: StateLayout | None = None
    helpers: dict[str, HelperDecl] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    filename: str = "<module>"

    def add_function(self, func: Function) -> Function:
        self.functions[func.name] = func
        return func

    def declare_helper(self, name: str, params: list[Type], result: Type | None = None,
                       pure: bool = False, native: str | None = None) -> HelperDecl:
        decl = HelperDecl(name, list(params), result, pure, native=native)
        self.helpers[name] = decl
        return decl

    def __str__(self) -> str:
        from .printer import format_module

        return format_module(self)
