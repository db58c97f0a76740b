"""Reading the text form of vm-ir (see ``printer`` for an example).

``parse`` keeps the source's value numbers and block names, and records the source line of
every state layout, helper, function, block and instruction so that the verifier can point at
them. Values may be used before the line that defines them (a block may be written before a
block that dominates it): result types are inferred once all definitions are known.
Type errors are left to the verifier; only what cannot be read at all is a ``ParseError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .builder import parse_field_ref
from .infer import result_type
from .ir import (
    Block,
    FieldRef,
    Function,
    HelperDecl,
    Inst,
    MemFlags,
    Module,
    StateLayout,
    Target,
    Value,
)
from .ops import (
    FCMP_CONDS,
    ICMP_CONDS,
    OPS,
    ORDERS,
    RMW_OPS,
    TRAP_KINDS,
    OpDef,
    OperandKind,
)
from .types import TYPES_BY_NAME, Type
from .values import parse_float_bits


class ParseError(ValueError):
    """Text that is not vm-ir. ``str()`` is ``file:line: message``."""

    def __init__(self, message: str, line: int | None = None, filename: str = "<string>") -> None:
        self.message = message
        self.line = line
        self.filename = filename
        where = f"{filename}:{line}" if line is not None else filename
        super().__init__(f"{where}: {message}")


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<float>-?(?:nan:0x[0-9a-fA-F]+|nan|inf)\b|-?\d+\.\d*(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+)
    | (?P<int>-?0x[0-9a-fA-F]+|-?\d+)
    | (?P<at>@[A-Za-z_][\w.]*)
    | (?P<name>[A-Za-z_][\w.]*)
    | (?P<arrow>->)
    | (?P<punct>[(){}\[\],:=])
    )""",
    re.VERBOSE,
)
_VALUE_NAME = re.compile(r"v(\d+)$")

_IMM_CHOICES = {
    OperandKind.ICMP_COND: ("icmp condition", ICMP_CONDS),
    OperandKind.FCMP_COND: ("fcmp condition", FCMP_CONDS),
    OperandKind.RMW_OP: ("atomic_rmw op", RMW_OPS),
    OperandKind.TRAP_KIND: ("trap kind", TRAP_KINDS),
    OperandKind.ORDER: ("ordering", ORDERS),
}


def strip_comment(line: str) -> str:
    return line.split(";", 1)[0]


class _Line:
    """The tokens of one source line, consumed left to right."""

    def __init__(self, text: str, lineno: int, filename: str) -> None:
        self.lineno = lineno
        self.filename = filename
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                self.error(f"cannot read {text[pos:].strip()!r}")
            pos = m.end()
            kind = m.lastgroup
            assert kind is not None
            self.tokens.append((kind, m.group(kind)))
        self.pos = 0

    def error(self, message: str) -> ParseError:
        raise ParseError(message, self.lineno, self.filename)

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def next(self, what: str) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            self.error(f"expected {what} at end of line")
        self.pos += 1
        return tok  # type: ignore[return-value]

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[1] == text and tok[0] in ("punct", "arrow", "name"):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            tok = self.peek()
            found = repr(tok[1]) if tok else "end of line"
            self.error(f"expected {text!r}, found {found}")

    def name(self, what: str) -> str:
        kind, text = self.next(what)
        if kind != "name":
            self.error(f"expected {what}, found {text!r}")
        return text

    def type(self) -> Type:
        text = self.name("a type")
        t = TYPES_BY_NAME.get(text)
        if t is None:
            self.error(f"unknown type {text!r}")
        return t  # type: ignore[return-value]

    def integer(self, what: str) -> int:
        kind, text = self.next(what)
        if kind != "int":
            self.error(f"expected {what}, found {text!r}")
        return int(text, 0)

    def value_name(self) -> str:
        kind, text = self.next("a value")
        if kind != "name" or not _VALUE_NAME.match(text):
            self.error(f"expected a value (v<n>), found {text!r}")
        return text

    def done(self) -> None:
        if not self.at_end():
            self.error(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]


@dataclass
class _RawTarget:
    block: str
    args: list[str]


@dataclass
class _RawInst:
    line: _Line
    result: str | None
    op: OpDef
    type: Type | None
    args: list[str] = field(default_factory=list)
    imms: dict[str, object] = field(default_factory=dict)
    targets: list[_RawTarget] = field(default_factory=list)


def _parse_types(line: _Line) -> list[Type]:
    line.expect("(")
    types: list[Type] = []
    if not line.accept(")"):
        types.append(line.type())
        while line.accept(","):
            types.append(line.type())
        line.expect(")")
    return types


def _parse_values_in_parens(line: _Line) -> list[str]:
    names: list[str] = []
    if line.accept("(") and not line.accept(")"):
        names.append(line.value_name())
        while line.accept(","):
            names.append(line.value_name())
        line.expect(")")
    return names


def _parse_memflags(line: _Line) -> MemFlags:
    size, sext, align, order = None, False, 1, None
    while not line.at_end():
        word = line.name("a memory flag")
        if word == "size":
            size = line.integer("a size")
        elif word == "sext":
            sext = True
        elif word == "align":
            align = line.integer("an alignment")
        elif word in ORDERS:
            order = word
        else:
            line.error(f"unknown memory flag {word!r} (size N, sext, align N, or an ordering)")
    return MemFlags(size, sext, align, order)


def _parse_inst(line: _Line) -> _RawInst:
    result = None
    if line.peek(1) is not None and line.peek(1)[1] == "=":  # type: ignore[index]
        result = line.value_name()
        line.expect("=")
    head = line.name("an op")
    opname, _, typename = head.partition(".")
    op = OPS.get(opname)
    if op is None:
        line.error(f"unknown op {opname!r}")
    assert op is not None
    itype = None
    if typename:
        itype = TYPES_BY_NAME.get(typename)
        if itype is None:
            line.error(f"unknown type {typename!r}")
        if not op.typed:
            line.error(f"{opname} takes no type suffix")
    elif op.typed:
        line.error(f"{opname} needs a type suffix, as in {opname}.i64")
    raw = _RawInst(line, result, op, itype)
    for spec in op.operands:
        kind = spec.kind
        if kind in (OperandKind.VALUE, OperandKind.FIELD, OperandKind.TARGET):
            line.accept(",")
        if kind is OperandKind.VALUE:
            raw.args.append(line.value_name())
        elif kind is OperandKind.VALUES:
            if not line.at_end():
                raw.args.append(line.value_name())
                while line.accept(","):
                    raw.args.append(line.value_name())
        elif kind is OperandKind.HELPER:
            tok = line.next("a helper")
            if tok[0] != "at":
                line.error(f"expected a helper (@name), found {tok[1]!r}")
            raw.imms["helper"] = tok[1][1:]
            raw.args.extend(_parse_values_in_parens(line))
        elif kind is OperandKind.TARGET:
            block = line.name("a block")
            raw.targets.append(_RawTarget(block, _parse_values_in_parens(line)))
        elif kind is OperandKind.FIELD:
            name = line.name("a state field")
            index = None
            if line.accept("["):
                index = line.integer("an index")
                line.expect("]")
            raw.imms["field"] = FieldRef(name, index)
        elif kind is OperandKind.INT:
            raw.imms["imm"] = line.integer("an integer")
        elif kind is OperandKind.FLOAT:
            tok = line.next("a float")
            try:
                raw.imms["imm"] = parse_float_bits(tok[1], itype)  # type: ignore[arg-type]
            except (ValueError, TypeError, AttributeError) as exc:
                line.error(f"bad float {tok[1]!r}: {exc}")
        elif kind is OperandKind.MEMFLAGS:
            raw.imms["flags"] = _parse_memflags(line)
        else:
            what, choices = _IMM_CHOICES[kind]
            word = line.name(f"a {what}")
            if word not in choices:
                line.error(f"unknown {what} {word!r} (one of {', '.join(choices)})")
            raw.imms[spec.name] = word
    line.done()
    if op.has_result and op.result != "helper" and result is None:
        line.error(f"{op.name} gives a value: write vN = {op.name} ...")
    if not op.has_result and result is not None:
        line.error(f"{op.name} gives no value")
    return raw


class _FunctionParser:
    def __init__(self, module: Module, header: _Line) -> None:
        self.module = module
        self.filename = header.filename
        header.expect("func")
        tok = header.next("a function name")
        if tok[0] != "at":
            header.error(f"expected a function name (@name), found {tok[1]!r}")
        params = _parse_types(header)
        returns: list[Type] = []
        if header.accept("->"):
            returns.append(header.type())
            while header.accept(","):
                returns.append(header.type())
        header.expect("{")
        header.done()
        self.func = Function(tok[1][1:], params, returns, loc=header.lineno)
        self.values: dict[str, Value] = {}
        self.defined_at: dict[str, int] = {}
        self.raw: list[tuple[Block, _RawInst]] = []

    def define(self, name: str, type: Type, line: _Line) -> Value:
        if name in self.defined_at:
            line.error(f"{name} is defined twice (first on line {self.defined_at[name]})")
        value = self.func.new_value(type, int(name[1:]))
        self.values[name] = value
        self.defined_at[name] = line.lineno
        return value

    def block_header(self, line: _Line) -> None:
        name = line.name("a block name")
        if self.func.block_named(name) is not None:
            line.error(f"block {name} is defined twice")
        block = Block(name, loc=line.lineno)
        if line.accept("(") and not line.accept(")"):
            while True:
                vname = line.value_name()
                line.expect(":")
                block.params.append(self.define(vname, line.type(), line))
                if not line.accept(","):
                    break
            line.expect(")")
        line.expect(":")
        line.done()
        self.func.blocks.append(block)

    def inst(self, line: _Line) -> None:
        if not self.func.blocks:
            line.error("an instruction before the first block header")
        self.raw.append((self.func.blocks[-1], _parse_inst(line)))

    def finish(self) -> Function:
        self._infer_types()
        for block, raw in self.raw:
            inst = Inst(raw.op, [self._use(a, raw.line) for a in raw.args], raw.imms, [],
                        None, raw.type, raw.line.lineno)
            for t in raw.targets:
                target = self.func.block_named(t.block)
                if target is None:
                    raw.line.error(f"unknown block {t.block}")
                inst.targets.append(Target(target, [self._use(a, raw.line) for a in t.args]))
            if raw.result is not None:
                inst.result = self.values[raw.result]
            block.insts.append(inst)
        if not self.func.blocks:
            raise ParseError(f"function @{self.func.name} has no blocks", self.func.loc,
                             self.filename)
        return self.func

    def _use(self, name: str, line: _Line) -> Value:
        value = self.values.get(name)
        if value is None:
            line.error(f"use of undefined value {name}")
        return value  # type: ignore[return-value]

    def _infer_types(self) -> None:
        pending = [raw for _, raw in self.raw if raw.result is not None]
        seen: dict[str, int] = {}
        for raw in pending:
            assert raw.result is not None
            first = seen.get(raw.result) or self.defined_at.get(raw.result)
            if first is not None:
                raw.line.error(f"{raw.result} is defined twice (first on line {first})")
            seen[raw.result] = raw.line.lineno
        while pending:
            progress = False
            for raw in list(pending):
                args = [self.values.get(a) for a in raw.args]
                needs_args = raw.op.result == "T" and not raw.op.typed
                if needs_args and any(a is None for a in args):
                    continue
                rtype = result_type(raw.op, raw.type, args, raw.imms, self.module)
                if rtype is None:
                    self._no_result_type(raw)
                assert raw.result is not None and rtype is not None
                self.define(raw.result, rtype, raw.line)
                pending.remove(raw)
                progress = True
            if not progress:
                raw = pending[0]
                for a in raw.args:
                    if a not in self.values and a not in seen:
                        raw.line.error(f"use of undefined value {a}")
                raw.line.error(f"cannot infer the type of {raw.result}: its operands depend on it")

    def _no_result_type(self, raw: _RawInst) -> None:
        if raw.op.result == "field":
            if self.module.state is None:
                raw.line.error("get needs a state layout: declare state { ... } first")
            raw.line.error(f"unknown state field {raw.imms['field']}")
        if raw.op.result == "helper":
            helper = raw.imms["helper"]
            if helper not in self.module.helpers:
                raw.line.error(f"unknown helper @{helper}: declare it with helper @{helper}(...)")
            raw.line.error(f"helper @{helper} returns nothing; drop the '{raw.result} ='")
        raw.line.error(f"cannot infer the type of {raw.result}")


def _parse_state(module: Module, lines: list[_Line], i: int) -> int:
    header = lines[i]
    header.expect("state")
    header.expect("{")
    header.done()
    if module.state is not None:
        header.error("a second state layout")
    state = StateLayout(loc=header.lineno)
    i += 1
    while i < len(lines):
        line = lines[i]
        if line.accept("}"):
            line.done()
            module.state = state
            return i + 1
        name = line.name("a field name")
        line.expect(":")
        t = line.type()
        count = None
        if line.accept("["):
            count = line.integer("an element count")
            line.expect("]")
        line.done()
        if state.field(name) is not None:
            line.error(f"field {name} is declared twice")
        state.add(name, t, count)
        i += 1
    header.error("state { without a closing }")
    return i


def _parse_helper(module: Module, line: _Line) -> None:
    line.expect("helper")
    tok = line.next("a helper name")
    if tok[0] != "at":
        line.error(f"expected a helper name (@name), found {tok[1]!r}")
    name = tok[1][1:]
    params = _parse_types(line)
    result = line.type() if line.accept("->") else None
    pure = line.accept("pure")
    native = None
    if line.accept("native"):
        tok = line.next("the name of a native operation")
        if tok[0] != "name":
            line.error(f"expected the name of a native operation, found {tok[1]!r}")
        native = tok[1]
    line.done()
    if name in module.helpers:
        line.error(f"helper @{name} is declared twice")
    module.helpers[name] = HelperDecl(name, params, result, pure, line.lineno, native)


def parse(text: str, filename: str = "<string>") -> Module:
    """Read a module. Raises ``ParseError`` (with the line) for text that is not vm-ir."""
    module = Module(filename=filename)
    lines = []
    for n, raw in enumerate(text.splitlines(), start=1):
        stripped = strip_comment(raw)
        if stripped.strip():
            lines.append(_Line(stripped, n, filename))
    i = 0
    while i < len(lines):
        line = lines[i]
        first = line.peek()
        word = first[1] if first else ""
        if word == "state":
            i = _parse_state(module, lines, i)
            continue
        if word == "helper":
            _parse_helper(module, line)
            i += 1
            continue
        if word != "func":
            line.error(f"expected state, helper or func, found {word!r}")
        fp = _FunctionParser(module, line)
        i += 1
        closed = False
        while i < len(lines):
            line = lines[i]
            i += 1
            if line.accept("}"):
                line.done()
                closed = True
                break
            is_header = (line.peek(1) is not None and line.peek(1)[1] in ("(", ":")  # type: ignore[index]
                         and line.peek()[0] == "name" and line.tokens[-1][1] == ":")  # type: ignore[index]
            if is_header:
                fp.block_header(line)
            else:
                fp.inst(line)
        if not closed:
            raise ParseError(f"func @{fp.func.name} without a closing }}", fp.func.loc, filename)
        func = fp.finish()
        if func.name in module.functions:
            raise ParseError(f"function @{func.name} is defined twice", func.loc, filename)
        module.functions[func.name] = func
    return module


def parse_function(text: str, filename: str = "<string>") -> Function:
    """Read a module holding exactly one function, and give that function."""
    module = parse(text, filename)
    if len(module.functions) != 1:
        raise ParseError(f"expected one function, found {len(module.functions)}", None, filename)
    return next(iter(module.functions.values()))


__all__ = ["ParseError", "parse", "parse_field_ref", "parse_function"]
