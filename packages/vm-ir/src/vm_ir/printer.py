"""The text form of vm-ir. ``parser.parse`` reads back exactly what this writes.

    state {
        x: i64[32]
        pc: i64
    }

    helper @fsqrt_rm(f64, i8) -> f64 pure

    func @f(i64, i64) -> i64 {
    block0(v0: i64, v1: i64):
        v2 = icmp slt v0, v1
        brif v2, block1(v0), block1(v1)
    block1(v3: i64):
        ret v3
    }

Operands follow the op table: value operands separated by commas, immediates such as a
condition before them and memory flags or an ordering after them.
"""

from __future__ import annotations

from .infer import inst_type_variable
from .ir import Block, Function, HelperDecl, Inst, Module, StateLayout
from .ops import PREFIX_KINDS, OperandKind
from .values import format_float_bits, format_int

INDENT = "    "


def _operand_items(inst: Inst) -> list[tuple[str, str]]:
    """(placement, text) per printed operand: "p" prefix immediate, "v" value-like,
    "s" suffix immediate."""
    items: list[tuple[str, str]] = []
    args = iter(inst.args)
    targets = iter(inst.targets)
    for spec in inst.op.operands:
        kind = spec.kind
        if kind is OperandKind.VALUE:
            items.append(("v", str(next(args, "<missing>"))))
        elif kind is OperandKind.VALUES:
            items.extend(("v", str(a)) for a in args)
        elif kind is OperandKind.HELPER:
            rest = ", ".join(map(str, args))
            items.append(("v", f"@{inst.imms.get('helper')}({rest})"))
        elif kind is OperandKind.TARGET:
            items.append(("v", str(next(targets, "<missing>"))))
        elif kind is OperandKind.FIELD:
            items.append(("v", str(inst.imms.get("field"))))
        elif kind is OperandKind.INT:
            t = inst_type_variable(inst)
            imm = int(inst.imms.get("imm", 0))  # type: ignore[call-overload]
            fits = t is not None and -(1 << (t.bits - 1)) <= imm <= t.mask
            items.append(("p", format_int(imm, t) if t is not None and fits else str(imm)))
        elif kind is OperandKind.FLOAT:
            t = inst_type_variable(inst)
            bits = int(inst.imms.get("imm", 0))  # type: ignore[call-overload]
            items.append(("p", format_float_bits(bits, t) if t is not None and t.is_float
                          else str(bits)))
        elif kind is OperandKind.MEMFLAGS:
            text = str(inst.imms.get("flags", ""))
            if text:
                items.append(("s", text))
        elif kind is OperandKind.ORDER:
            items.append(("s", str(inst.imms.get("order"))))
        else:
            assert kind in PREFIX_KINDS, kind
            items.append(("p", str(inst.imms.get(spec.name))))
    return items


def format_inst(inst: Inst) -> str:
    head = inst.op.name
    if inst.op.typed and inst.type is not None:
        head += f".{inst.type}"
    text = head
    previous = None
    for placement, item in _operand_items(inst):
        sep = " " if previous in (None, "p") or placement == "s" else ", "
        text += sep + item
        previous = placement
    if inst.result is not None:
        text = f"{inst.result} = {text}"
    return text


def format_block_header(block: Block) -> str:
    if not block.params:
        return f"{block.name}:"
    params = ", ".join(f"{p}: {p.type}" for p in block.params)
    return f"{block.name}({params}):"


def _signature(params: list, result: str) -> str:
    return f"({', '.join(map(str, params))}){result}"


def format_function(func: Function) -> str:
    returns = f" -> {', '.join(map(str, func.returns))}" if func.returns else ""
    lines = [f"func @{func.name}{_signature(func.params, returns)} {{"]
    for block in func.blocks:
        lines.append(format_block_header(block))
        lines.extend(INDENT + format_inst(inst) for inst in block.insts)
    lines.append("}")
    return "\n".join(lines) + "\n"


def format_state(state: StateLayout) -> str:
    lines = ["state {"]
    for f in state.fields:
        count = f"[{f.count}]" if f.count is not None else ""
        lines.append(f"{INDENT}{f.name}: {f.type}{count}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def format_helper(decl: HelperDecl) -> str:
    result = f" -> {decl.result}" if decl.result is not None else ""
    pure = " pure" if decl.pure else ""
    native = f" native {decl.native}" if decl.native else ""
    return f"helper @{decl.name}{_signature(decl.params, result)}{pure}{native}\n"


def format_module(module: Module) -> str:
    sections = []
    if module.state is not None:
        sections.append(format_state(module.state))
    if module.helpers:
        sections.append("".join(format_helper(h) for h in module.helpers.values()))
    sections.extend(format_function(f) for f in module.functions.values())
    return "\n".join(sections)
