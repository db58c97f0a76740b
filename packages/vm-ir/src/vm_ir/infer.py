"""Type rules shared by the builder, parser and verifier: an instruction's type variable and
result type."""

from __future__ import annotations

from .ir import FieldRef, Inst, Module
from .ops import OpDef
from .types import I1, Type


def value_operands(op: OpDef) -> list[str]:
    """The constraints of an op's fixed value operands, in order (VALUES and HELPER excluded)."""
    return list(op.value_constraints)


def type_variable(op: OpDef, inst_type: Type | None, args: list) -> Type | None:
    """T for an instruction: its written type, else the type of its first ``T`` operand."""
    if op.typed:
        return inst_type
    for constraint, arg in zip(op.value_constraints, args, strict=False):
        if constraint == "T":
            return arg.type
    return None


def result_type(op: OpDef, inst_type: Type | None, args: list, imms: dict,
                module: Module | None) -> Type | None:
    """The type of the instruction's result, or None when it has none or it cannot be told
    (an unknown field or helper: the verifier reports those)."""
    kind = op.result
    if kind == "":
        return None
    if kind == "i1":
        return I1
    if kind == "T":
        return type_variable(op, inst_type, args)
    if kind == "field":
        ref = imms.get("field")
        if module is None or module.state is None or not isinstance(ref, FieldRef):
            return None
        f = module.state.field(ref.name)
        return f.type if f is not None else None
    if kind == "helper":
        if module is None:
            return None
        decl = module.helpers.get(str(imms.get("helper")))
        return decl.result if decl is not None else None
    raise AssertionError(f"op {op.name}: unknown result kind {kind!r}")


def inst_type_variable(inst: Inst) -> Type | None:
    return type_variable(inst.op, inst.type, inst.args)
