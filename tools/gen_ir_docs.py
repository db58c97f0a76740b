"""Generate the op reference of docs/ir.md from vm-ir's op table.

    uv run python tools/gen_ir_docs.py            rewrite the generated parts of docs/ir.md
    uv run python tools/gen_ir_docs.py --check    exit 1 (and say so) when they are out of date

Two parts of docs/ir.md are generated, each between a BEGIN and an END marker comment: the op
reference (from ``vm_ir.ops.OPS``) and the table of filetest helpers (from
``vm_ir.filetest.HELPER_DOCS``). Everything outside the markers is written by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ir.md"

sys.path.insert(0, str(ROOT / "packages" / "vm-ir" / "src"))  # also without the workspace env

from vm_ir.filetest import HELPER_DOCS  # noqa: E402
from vm_ir.ops import (  # noqa: E402
    FCMP_CONDS,
    ICMP_CONDS,
    OPS,
    ORDERS,
    PREFIX_KINDS,
    RMW_OPS,
    SUFFIX_KINDS,
    TRAP_KINDS,
    Effect,
    OpDef,
    OperandKind,
)

GENERATOR = "tools/gen_ir_docs.py"


def _begin(what: str, source: str) -> str:
    return (f"<!-- BEGIN GENERATED {what}: written by {GENERATOR} from {source}; do not edit, "
            f"run `uv run python {GENERATOR}` -->")


def _end(what: str) -> str:
    return f"<!-- END GENERATED {what} -->"


CATEGORIES = (
    ("constant", "Constants"),
    ("move", "Moves"),
    ("integer", "Integer arithmetic"),
    ("conversion", "Conversions"),
    ("float", "Floating point"),
    ("state", "Guest state"),
    ("memory", "Guest memory"),
    ("call", "Helpers"),
    ("terminator", "Terminators"),
)

_CONSTRAINTS = {
    "T": "T",
    "int": "any integer type",
    "float": "f32 or f64",
    "any": "any type",
    "addr": "i32 or i64 (a guest address)",
}
_TYPEVARS = {
    "int": "an integer type (i1, i8, i16, i32, i64, i128)",
    "int_multibyte": "i16, i32, i64 or i128",
    "float": "f32 or f64",
    "any": "any type",
}
_RESULTS = {
    "T": "T",
    "i1": "i1",
    "field": "the field's type",
    "helper": "the helper's result type; none when it declares none (`vN =` is then left out)",
    "": "none",
}
_RULES = {
    "wider": "T is a wider integer type than `a`'s",
    "narrower": "T is a narrower integer type than `a`'s",
    "same_width": "T has the same width as `a`'s type",
    "float_to_int": "`a` is a float, T an integer type",
    "int_to_float": "`a` is an integer, T a float type",
    "f32_to_f64": "`a` is f32 and T is f64",
    "f64_to_f32": "`a` is f64 and T is f32",
}
_CHOICES = {
    OperandKind.ICMP_COND: ICMP_CONDS,
    OperandKind.FCMP_COND: FCMP_CONDS,
    OperandKind.RMW_OP: RMW_OPS,
    OperandKind.TRAP_KIND: TRAP_KINDS,
    OperandKind.ORDER: ORDERS,
}
_EFFECTS = (
    (Effect.READS_STATE, "reads guest state"),
    (Effect.WRITES_STATE, "writes guest state"),
    (Effect.READS_MEMORY, "reads guest memory"),
    (Effect.WRITES_MEMORY, "writes guest memory"),
    (Effect.MAY_TRAP, "may trap"),
    (Effect.CALL, "calls a helper (the helper's effects: none when declared `pure`)"),
    (Effect.TERMINATOR, "ends its block"),
)


def syntax(op: OpDef) -> str:
    """How the op is written, with its operand names as placeholders (as the printer lays
    it out: immediates such as a condition first, values comma-separated, flags last)."""
    head = op.name + (".T" if op.typed else "")
    items: list[tuple[str, str]] = []
    for spec in op.operands:
        kind = spec.kind
        if kind is OperandKind.VALUE or kind is OperandKind.FIELD:
            items.append(("v", spec.name))
        elif kind is OperandKind.VALUES:
            items.append(("v", f"{spec.name}..."))
        elif kind is OperandKind.HELPER:
            items.append(("v", "@helper(args...)"))
        elif kind is OperandKind.TARGET:
            items.append(("v", f"{spec.name}(args...)"))
        elif kind is OperandKind.MEMFLAGS:
            items.append(("s", "[size N] [sext] [align N] [ordering]"))
        elif kind in SUFFIX_KINDS:
            items.append(("s", spec.name))
        else:
            assert kind in PREFIX_KINDS, kind
            items.append(("p", spec.name))
    text, previous = head, None
    for placement, item in items:
        text += (" " if previous in (None, "p") or placement == "s" else ", ") + item
        previous = placement
    if op.result == "helper":
        return f"[vN =] {text}"
    return f"vN = {text}" if op.has_result else text


def _operand_line(spec) -> str:
    kind = spec.kind
    if kind is OperandKind.VALUE:
        return f"`{spec.name}`: a value of {_CONSTRAINTS.get(spec.constraint, spec.constraint)}"
    if kind is OperandKind.VALUES:
        return f"`{spec.name}...`: zero or more values"
    if kind is OperandKind.HELPER:
        return "`@helper(args...)`: a declared helper and its arguments, of its parameter types"
    if kind is OperandKind.TARGET:
        return f"`{spec.name}(args...)`: a block and the values for its parameters"
    if kind is OperandKind.FIELD:
        return f"`{spec.name}`: a state field, `name` or `name[index]` for an array field"
    if kind is OperandKind.INT:
        return (f"`{spec.name}`: an integer immediate, decimal or hex, from the minimum signed "
                "to the maximum unsigned value of T")
    if kind is OperandKind.FLOAT:
        return (f"`{spec.name}`: a float immediate: a decimal (rounded to T), `inf`, `-inf`, "
                "`nan` or `nan:0x<bits>`")
    if kind is OperandKind.MEMFLAGS:
        return ("memory flags, each optional: `size N` (bytes accessed: 1, 2, 4, 8 or 16), "
                "`sext`, `align N` (a power of two), an atomic ordering")
    choices = ", ".join(f"`{c}`" for c in _CHOICES[kind])
    return f"`{spec.name}`: one of {choices}"


def _effects(op: OpDef) -> str:
    if op.effects == Effect.NONE:
        return "none: pure (removable when unused, folded when its operands are constants)"
    return "; ".join(text for flag, text in _EFFECTS if op.effects & flag)


def op_section(op: OpDef) -> list[str]:
    lines = [f"#### `{op.name}`", "", "```", syntax(op), "```", "", op.doc, ""]
    if op.operands:
        lines.append("- operands:")
        lines.extend(f"  - {_operand_line(spec)}" for spec in op.operands)
    uses_t = op.typed or op.result == "T" or any(s.constraint == "T" for s in op.operands)
    if uses_t:
        written = "written after the op name" if op.typed else "the type of its first T operand"
        lines.append(f"- T: {_TYPEVARS[op.typevar]}; {written}")
    if op.rule:
        lines.append(f"- also: {_RULES[op.rule]}")
    lines.append(f"- result: {_RESULTS[op.result]}")
    lines.append(f"- effects: {_effects(op)}")
    lines.append(f"- undefined: {op.undefined}")
    lines.append(f"- unspecified: {op.unspecified}")
    lines.append("")
    return lines


def op_reference() -> str:
    by_category: dict[str, list[OpDef]] = {}
    for op in OPS.values():
        by_category.setdefault(op.category, []).append(op)
    known = [c for c, _ in CATEGORIES]
    unknown = sorted(set(by_category) - set(known))
    assert not unknown, f"add categories {unknown} to CATEGORIES in {GENERATOR}"
    lines = [f"{len(OPS)} ops in {len(by_category)} categories.", "",
             "| category | ops |", "|---|---|"]
    for category, title in CATEGORIES:
        ops = by_category.get(category, [])
        names = ", ".join(f"[`{o.name}`](#{o.name})" for o in ops)
        lines.append(f"| {title} | {names} |")
    lines.append("")
    for category, title in CATEGORIES:
        lines.extend([f"### {title}", ""])
        for op in by_category.get(category, []):
            lines.extend(op_section(op))
    return "\n".join(lines).rstrip() + "\n"


def helper_table() -> str:
    lines = ["| declaration | what it does |", "|---|---|"]
    for decl, what in HELPER_DOCS.values():
        lines.append(f"| `{decl}` | {what} |")
    return "\n".join(lines) + "\n"


#: (marker name, source named in the marker, generator)
PARTS = (
    ("OP REFERENCE", "packages/vm-ir/src/vm_ir/ops.py", op_reference),
    ("FILETEST HELPERS", "packages/vm-ir/src/vm_ir/filetest.py", helper_table),
)


class MarkerError(Exception):
    """docs/ir.md lacks a marker pair."""


def render(text: str) -> str:
    """``text`` with every generated part replaced by its current content."""
    for what, source, make in PARTS:
        begin_prefix = f"<!-- BEGIN GENERATED {what}"
        end = _end(what)
        start = text.find(begin_prefix)
        stop = text.find(end)
        if start < 0 or stop < start:
            raise MarkerError(f"{DOC.relative_to(ROOT)} needs the markers {_begin(what, source)}"
                              f" ... {end}")
        text = (text[:start] + _begin(what, source) + "\n\n" + make() + "\n" + text[stop:])
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when docs/ir.md is out of date instead of rewriting it")
    parser.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    current = args.doc.read_text(encoding="utf-8")
    try:
        wanted = render(current)
    except MarkerError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.check:
        if wanted != current:
            print(f"{args.doc} is out of date: run `uv run python {GENERATOR}`", file=sys.stderr)
            return 1
        print(f"{args.doc} is up to date")
        return 0
    if wanted != current:
        args.doc.write_text(wanted, encoding="utf-8")
        print(f"rewrote {args.doc}")
    else:
        print(f"{args.doc} was up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
