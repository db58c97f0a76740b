"""Building functions in code.

    m = Module()
    fb = FunctionBuilder(m, "add3", params=[I64], returns=[I64])
    (x,) = fb.params
    three = fb.iconst(I64, 3)
    fb.ret(fb.add(x, three))

Every op of the table is a method named after it (``and_``, ``or_``, ``not_`` for Python's
keywords). Arguments follow the op's operands in order, a typed op's type first:
``fb.load(I64, addr, MemFlags(size=4, sext=True))``, ``fb.icmp("slt", a, b)``,
``fb.get("x[3]")``, ``fb.call("helper", a, b)``, ``fb.brif(c, (then, [v]), other)``.
"""

from __future__ import annotations

import functools
import keyword
from collections.abc import Callable, Sequence

from .infer import result_type
from .ir import Block, FieldRef, Function, Inst, MemFlags, Module, Target, Value
from .ops import OPS, OpDef, OperandKind
from .types import Type


def parse_field_ref(text: str) -> FieldRef:
    """``"x[3]"`` -> FieldRef("x", 3); ``"pc"`` -> FieldRef("pc")."""
    if text.endswith("]") and "[" in text:
        name, _, index = text[:-1].partition("[")
        return FieldRef(name, int(index, 0))
    return FieldRef(text)


@functools.lru_cache(maxsize=1024)
def _field_ref(text: str) -> FieldRef:
    return parse_field_ref(text)


class BuildError(ValueError):
    """The builder was called with arguments that do not fit the op."""


class FunctionBuilder:
    """Appends instructions to a function, at the end of the current block."""

    def __init__(self, module: Module | None, name: str, params: Sequence[Type] = (),
                 returns: Sequence[Type] = ()) -> None:
        self.module = module
        self.func = Function(name, list(params), list(returns))
        if module is not None:
            module.add_function(self.func)
        self.block = self.func.new_block(list(params))

    @property
    def params(self) -> list[Value]:
        return list(self.func.entry.params)

    def new_block(self, *param_types: Type) -> Block:
        return self.func.new_block(list(param_types))

    def switch_to(self, block: Block) -> None:
        self.block = block

    def emit(self, op: OpDef | str, args: Sequence[Value] = (), imms: dict | None = None,
             targets: Sequence[Target] = (), type: Type | None = None) -> Value | None:
        """Append one instruction and give its result (None for ops without one)."""
        if isinstance(op, str):
            op = OPS[op]
        return self._append(op, list(args), dict(imms or {}), list(targets), type)

    def _append(self, op: OpDef, args: list[Value], imms: dict, targets: list[Target],
                type: Type | None) -> Value | None:
        """``emit`` with the lists and dict already the instruction's own."""
        insts = self.block.insts
        if insts and insts[-1].op.is_terminator:
            raise BuildError(f"{self.block.name} already ends in {insts[-1].name}")
        inst = Inst(op, args, imms, targets, None, type)
        if op.has_result:
            rtype = result_type(op, type, args, imms, self.module)
            if rtype is not None:
                inst.result = self.func.new_value(rtype)
            elif op.result == "T" or op.result == "field":
                raise BuildError(f"{op.name}: cannot tell the result type")
        insts.append(inst)
        return inst.result

    def __getattr__(self, attr: str) -> Callable[..., Value | None]:
        # the methods made at import (``_op_method``) cover every op; this is for other
        # spellings with a trailing underscore (``add_``)
        op = OPS.get(attr.rstrip("_"))
        if op is None:
            raise AttributeError(attr)
        return _op_method(op).__get__(self)

    def _build(self, op: OpDef, operands: list) -> Value | None:
        type = None
        if op.typed:
            if not operands or not isinstance(operands[0], Type):
                raise BuildError(f"{op.name} takes its type first")
            type = operands.pop(0)
        args: list[Value] = []
        imms: dict[str, object] = {}
        targets: list[Target] = []
        for spec in op.operands:
            kind = spec.kind
            if kind is OperandKind.VALUES or kind is OperandKind.HELPER:
                if kind is OperandKind.HELPER:
                    imms["helper"] = operands.pop(0)
                args.extend(operands)
                operands = []
            elif kind is OperandKind.VALUE:
                args.append(operands.pop(0))
            elif kind is OperandKind.TARGET:
                t = operands.pop(0)
                if isinstance(t, Block):
                    t = Target(t, [])
                elif isinstance(t, tuple):
                    t = Target(t[0], list(t[1]))
                targets.append(t)
            elif kind is OperandKind.MEMFLAGS:
                imms["flags"] = operands.pop(0) if operands else MemFlags()
            elif kind is OperandKind.ORDER:
                imms["order"] = operands.pop(0) if operands else "seq_cst"
            elif kind is OperandKind.FIELD:
                ref = operands.pop(0)
                imms["field"] = parse_field_ref(ref) if isinstance(ref, str) else ref
            else:
                imms[spec.name] = operands.pop(0)
        if operands:
            raise BuildError(f"{op.name}: {len(operands)} operand(s) too many")
        return self._append(op, args, imms, targets, type)


def _op_method(op: OpDef) -> Callable[..., Value | None]:
    """The builder method for ``op``: value operands only and a typed constant take short
    paths (they are most of what a frontend emits); the rest goes through ``_build``."""
    kinds = [spec.kind for spec in op.operands]
    if not op.typed and kinds and all(kind is OperandKind.VALUE for kind in kinds):
        count = len(kinds)

        def method(self: FunctionBuilder, *args: Value) -> Value | None:
            if len(args) != count:
                raise BuildError(f"{op.name} takes {count} value operand(s), not {len(args)}")
            return self._append(op, list(args), {}, [], None)
    elif op.typed and kinds in ([OperandKind.INT], [OperandKind.FLOAT]):
        imm_name = op.operands[0].name

        def method(self: FunctionBuilder, *operands: object) -> Value | None:
            if len(operands) != 2 or not isinstance(operands[0], Type):
                return self._build(op, list(operands))  # the same errors as any op
            return self._append(op, [], {imm_name: operands[1]}, [], operands[0])
    elif kinds and kinds[0] is OperandKind.FIELD and all(
            kind is OperandKind.VALUE for kind in kinds[1:]):  # get, set
        count = len(kinds)

        def method(self: FunctionBuilder, *operands: object) -> Value | None:
            ref = operands[0] if operands else None
            if len(operands) != count or not isinstance(ref, (str, FieldRef)):
                return self._build(op, list(operands))  # the same errors as any op
            if isinstance(ref, str):
                ref = _field_ref(ref)
            return self._append(op, list(operands[1:]), {"field": ref}, [], None)  # type: ignore[arg-type]
    else:
        def method(self: FunctionBuilder, *operands: object) -> Value | None:
            return self._build(op, list(operands))
    method.__name__ = method.__qualname__ = op.name
    method.__doc__ = op.doc
    return method


for _op in OPS.values():
    _name = f"{_op.name}_" if keyword.iskeyword(_op.name) else _op.name
    if not hasattr(FunctionBuilder, _name):
        setattr(FunctionBuilder, _name, _op_method(_op))
