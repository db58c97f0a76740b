"""Instruction pattern tables compiled into decision trees (ISA-neutral).

A frontend describes its instruction encodings as data, one line per
instruction, in the small text format below; `parse_table` checks the table
and compiles it once into a decision tree, and `DecodeTable.decode` turns an
instruction word into a `Match` (the pattern's name, its fields, its extension
and its extra constants) in a few dictionary lookups.

The format
----------
``#`` starts a comment; blank lines are ignored. A table has four kinds of line::

    .width 32                     # the instruction width in bits (8..64, a multiple of 8)

    # Fields: %name  segment...  [sext] [<<N] [+N]
    #   A segment is a bit range `hi:lo` or one bit `b`, counted from the least
    #   significant bit 0. Segments concatenate MSB-first: the first segment gives
    #   the most significant bits of the value. `sext` sign-extends the
    #   concatenation (its top bit is the sign), `<<N` then shifts it left, and
    #   `+N` then adds a constant (e.g. a compressed register number rd' + 8).
    %rd       11:7
    %rs1      19:15
    %rs2      24:20
    %imm_i    31:20 sext
    %imm_b    31 7 30:25 11:8 sext <<1

    # Formats: @name  arg=%field | arg=constant ...
    #   A format names the arguments an instruction has and where each comes from:
    #   a field, or a constant (an integer literal: 2, 0x10, -1).
    @i        rd=%rd rs1=%rs1 imm=%imm_i
    @b        rs1=%rs1 rs2=%rs2 imm=%imm_b
    @li       rd=%rd rs1=0 imm=%imm_i

    # Patterns: name  bits  [@format] [arg=%field ...] [key=value ...]
    #   The bits are written MSB first: `0` and `1` are fixed, `.` is free; spaces
    #   between them are ignored (and only help the reader). There must be exactly
    #   `.width` of them. `arg=%field` adds an argument to those of the format;
    #   `key=value` attaches an extra constant to the match (an integer if it
    #   parses as one, else a string); `ext=NAME` is the pattern's extension.
    addi      ............ ..... 000 ..... 0010011  @i  ext=I
    beq       ....... ..... ..... 000 ..... 1100011  @b  ext=I

    # Priority groups: `{` and `}` on lines of their own. The patterns inside may
    # overlap one another; the first that matches wins. A later member that an
    # earlier one covers entirely is an error (it could never match). Groups do
    # not nest, and nothing in a group may overlap anything outside it.
    {
      illegal   ............ 00000 011 00000 0001011        # a reserved code point: None
      my.li     ............ 00000 011 ..... 0001011  @li  ext=X op=addi
      my.ld     ............ ..... 011 ..... 0001011  @i   ext=X
    }

The pattern name ``illegal`` is reserved: such a pattern names encodings that
are deliberately invalid (reserved code points), and a word it matches decodes
to ``None``. It takes no format; it may appear any number of times.

What the loader rejects
-----------------------
Every problem is a `DecodeTableError` whose message starts with ``file:line``:
a pattern whose bit count is not the width, a field that reaches outside the
width, a pattern whose fields use bits that it fixes, an unknown format or
field, duplicate field, format or pattern names (and an argument given twice),
two patterns outside a priority group that can match the same word (the
message names both and gives such a word), an unreachable member of a group,
and anything it cannot parse.

Decoding
--------
The tree splits, at each node, on the bits that every remaining pattern fixes
(keyed by their values, in a dict), and recurses; where the remaining patterns
share no fixed bit (the members of a priority group, say), the node keeps a
short ordered list and tries each in turn. `DecodeTable.decode_linear` does
the same job by a plain scan, and the tests check that both always agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vm_core.errors import VmError

__all__ = [
    "DecodeTable",
    "DecodeTableError",
    "FieldDef",
    "FormatDef",
    "Match",
    "Pattern",
    "load_table",
    "parse_table",
]

ILLEGAL = "illegal"


class DecodeTableError(VmError, ValueError):
    """A pattern table that cannot be compiled: the message says where and why."""

    def __init__(self, source: str, line: int, problem: str, fix: str = "correct the table") -> None:
        self.source = source
        self.line = line
        super().__init__(f"{source}:{line}: {problem}", fix)


# ---------------------------------------------------------------------------
# Table entities
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldDef:
    """A field: bit segments (hi, lo) MSB-first, then sign extension, shift and bias."""

    name: str
    segments: tuple[tuple[int, int], ...]
    signed: bool = False
    shift: int = 0
    bias: int = 0
    line: int = 0

    @property
    def mask(self) -> int:
        """The instruction bits the field reads."""
        m = 0
        for hi, lo in self.segments:
            m |= ((1 << (hi - lo + 1)) - 1) << lo
        return m

    @property
    def nbits(self) -> int:
        return sum(hi - lo + 1 for hi, lo in self.segments)

    def extract(self, word: int) -> int:
        """The field's value in `word` (the reference, bit by bit, for tests and tools)."""
        value = 0
        for hi, lo in self.segments:
            n = hi - lo + 1
            value = (value << n) | ((word >> lo) & ((1 << n) - 1))
        if self.signed:
            n = self.nbits
            if value >> (n - 1):
                value -= 1 << n
        return (value << self.shift) + self.bias

    def expression(self, var: str = "w") -> str:
        """A Python expression computing the field from the word named `var`."""
        parts = []
        pos = self.nbits
        for hi, lo in self.segments:
            n = hi - lo + 1
            pos -= n
            part = f"({var} >> {lo})" if lo else var
            part = f"({part} & {(1 << n) - 1:#x})"
            if pos:
                part = f"({part} << {pos})"
            parts.append(part)
        expr = " | ".join(parts)
        if self.signed:
            n = self.nbits
            expr = f"((({expr}) ^ {1 << (n - 1):#x}) - {1 << (n - 1):#x})"
        if self.shift:
            expr = f"(({expr}) << {self.shift})"
        if self.bias:
            expr = f"(({expr}) + {self.bias})"
        return f"({expr})"


@dataclass(frozen=True, slots=True)
class FormatDef:
    """A named set of arguments, each a field or an integer constant."""

    name: str
    args: tuple[tuple[str, FieldDef | int], ...]
    line: int = 0


@dataclass(frozen=True, slots=True)
class Pattern:
    """One line of the table: fixed bits (mask/value), arguments and constants."""

    name: str
    mask: int
    value: int
    args: tuple[tuple[str, FieldDef | int], ...]
    ext: str | None
    extra: Mapping[str, int | str]
    line: int
    group: int | None = None

    @property
    def illegal(self) -> bool:
        return self.name == ILLEGAL

    def matches(self, word: int) -> bool:
        return (word & self.mask) == self.value

    def fields(self, word: int) -> dict[str, int]:
        """The pattern's arguments in `word`, computed field by field (reference path)."""
        return {
            name: (arg.extract(word) if isinstance(arg, FieldDef) else arg)
            for name, arg in self.args
        }


@dataclass(frozen=True, slots=True)
class Match:
    """A decoded word: the pattern's name, its arguments, extension and extra constants."""

    name: str
    fields: dict[str, int]
    ext: str | None
    extra: Mapping[str, int | str] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*$")
_ARG = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)$")
_SEGMENT = re.compile(r"(\d+)(?::(\d+))?$")
_INT = re.compile(r"[-+]?(0x[0-9a-fA-F]+|0b[01]+|\d+)$")


def _int(text: str) -> int | None:
    if _INT.match(text):
        return int(text, 0)
    return None


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.width: int | None = None
        self.fields: dict[str, FieldDef] = {}
        self.formats: dict[str, FormatDef] = {}
        self.patterns: list[Pattern] = []
        self.names: dict[str, int] = {}
        self.groups: list[list[Pattern]] = []
        self.group_line: int | None = None

    def error(self, line: int, problem: str, fix: str = "correct the table") -> DecodeTableError:
        return DecodeTableError(self.source, line, problem, fix)

    def run(self) -> DecodeTable:
        for number, raw in enumerate(self.text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith(".width"):
                self.directive_width(line, number)
            elif line == "{":
                if self.group_line is not None:
                    raise self.error(number, "priority groups do not nest",
                                     "close the open group with '}' first")
                self.group_line = number
                self.groups.append([])
            elif line == "}":
                if self.group_line is None:
                    raise self.error(number, "'}' without an open priority group")
                if not self.groups[-1]:
                    raise self.error(number, "empty priority group")
                self.group_line = None
            elif self.width is None:
                raise self.error(number, "the table must start with '.width N'",
                                 "add a '.width 16' or '.width 32' line first")
            elif line.startswith("%"):
                self.field_line(line, number)
            elif line.startswith("@"):
                self.format_line(line, number)
            else:
                self.pattern_line(line, number)
        if self.width is None:
            raise self.error(1, "the table has no '.width N' line",
                             "add a '.width 16' or '.width 32' line first")
        if self.group_line is not None:
            raise self.error(self.group_line, "priority group is never closed", "add a '}' line")
        self.check_overlaps()
        return DecodeTable(self.width, self.patterns, self.fields, self.formats, self.source)

    def directive_width(self, line: str, number: int) -> None:
        parts = line.split()
        if self.width is not None:
            raise self.error(number, "'.width' given twice")
        value = _int(parts[1]) if len(parts) == 2 else None
        if value is None or value <= 0 or value % 8 or value > 64:
            raise self.error(number, f"bad width line {line!r}",
                             "write '.width N' with N a multiple of 8 up to 64")
        self.width = value

    def field_line(self, line: str, number: int) -> None:
        assert self.width is not None
        tokens = line.split()
        name = tokens[0][1:]
        if not _NAME.match(name):
            raise self.error(number, f"bad field name {tokens[0]!r}")
        if name in self.fields:
            raise self.error(number, f"duplicate field %{name} (first defined on line "
                             f"{self.fields[name].line})", "rename or remove one of them")
        segments: list[tuple[int, int]] = []
        signed = False
        shift = 0
        bias = 0
        for tok in tokens[1:]:
            if tok == "sext":
                signed = True
            elif tok.startswith("<<"):
                amount = _int(tok[2:])
                if amount is None or amount < 0:
                    raise self.error(number, f"bad shift {tok!r} in field %{name}")
                shift = amount
            elif tok.startswith("+") or (tok.startswith("-") and len(tok) > 1):
                amount = _int(tok)
                if amount is None:
                    raise self.error(number, f"bad bias {tok!r} in field %{name}")
                bias = amount
            else:
                m = _SEGMENT.match(tok)
                if not m:
                    raise self.error(number, f"bad segment {tok!r} in field %{name}",
                                     "write bit ranges as 'hi:lo' or single bits as 'b'")
                hi = int(m.group(1))
                lo = int(m.group(2)) if m.group(2) is not None else hi
                if hi < lo:
                    raise self.error(number, f"segment {tok!r} of field %{name} runs backwards",
                                     "write the high bit first: 'hi:lo'")
                if hi >= self.width:
                    raise self.error(number, f"field %{name} uses bit {hi}, outside the "
                                     f"{self.width}-bit width", "use bits 0 to width-1")
                segments.append((hi, lo))
        if not segments:
            raise self.error(number, f"field %{name} has no bit segments")
        fdef = FieldDef(name, tuple(segments), signed, shift, bias, number)
        seen = 0
        for hi, lo in segments:
            m = ((1 << (hi - lo + 1)) - 1) << lo
            if seen & m:
                raise self.error(number, f"field %{name} uses a bit twice")
            seen |= m
        self.fields[name] = fdef

    def arg(self, key: str, value: str, number: int, what: str) -> FieldDef | int:
        if value.startswith("%"):
            fdef = self.fields.get(value[1:])
            if fdef is None:
                raise self.error(number, f"unknown field {value} in {what}",
                                 "define the field with a '%name ...' line before its use")
            return fdef
        const = _int(value)
        if const is None:
            raise self.error(number, f"argument {key}={value} of {what} is neither a field "
                             "nor an integer")
        return const

    def format_line(self, line: str, number: int) -> None:
        tokens = line.split()
        name = tokens[0][1:]
        if not _NAME.match(name):
            raise self.error(number, f"bad format name {tokens[0]!r}")
        if name in self.formats:
            raise self.error(number, f"duplicate format @{name} (first defined on line "
                             f"{self.formats[name].line})", "rename or remove one of them")
        args: dict[str, FieldDef | int] = {}
        for tok in tokens[1:]:
            m = _ARG.match(tok)
            if not m:
                raise self.error(number, f"bad argument {tok!r} in format @{name}",
                                 "write arguments as name=%field or name=constant")
            key = m.group(1)
            if key in args:
                raise self.error(number, f"argument {key!r} given twice in format @{name}")
            args[key] = self.arg(key, m.group(2), number, f"format @{name}")
        self.formats[name] = FormatDef(name, tuple(args.items()), number)

    def pattern_line(self, line: str, number: int) -> None:
        assert self.width is not None
        tokens = line.split()
        name = tokens[0]
        if not _NAME.match(name):
            raise self.error(number, f"bad pattern name {name!r}")
        bits: list[str] = []
        rest = tokens[1:]
        while rest and re.fullmatch(r"[01.]+", rest[0]):
            bits.extend(rest.pop(0))
        if len(bits) != self.width:
            raise self.error(number, f"pattern {name} has {len(bits)} bits, the table's "
                             f"width is {self.width}", "write exactly one 0, 1 or . per bit")
        mask = value = 0
        for ch in bits:
            mask <<= 1
            value <<= 1
            if ch != ".":
                mask |= 1
                value |= ch == "1"
        args: dict[str, FieldDef | int] = {}
        ext: str | None = None
        extra: dict[str, int | str] = {}
        fmt: FormatDef | None = None
        for tok in rest:
            if tok.startswith("@"):
                if fmt is not None:
                    raise self.error(number, f"pattern {name} names two formats")
                fmt = self.formats.get(tok[1:])
                if fmt is None:
                    raise self.error(number, f"unknown format {tok} in pattern {name}",
                                     "define the format with an '@name ...' line before its use")
                for key, arg in fmt.args:
                    if key in args:
                        raise self.error(number, f"argument {key!r} given twice in {name}")
                    args[key] = arg
                continue
            m = _ARG.match(tok)
            if not m:
                raise self.error(number, f"cannot parse {tok!r} in pattern {name}",
                                 "after the bits: @format, arg=%field, key=value")
            key, val = m.groups()
            if val.startswith("%"):
                if key in args:
                    raise self.error(number, f"argument {key!r} given twice in {name}")
                args[key] = self.arg(key, val, number, f"pattern {name}")
            elif key == "ext":
                ext = val
            else:
                if key in extra:
                    raise self.error(number, f"constant {key!r} given twice in {name}")
                const = _int(val)
                extra[key] = val if const is None else const
        if name == ILLEGAL:
            if args or extra or ext is not None:
                raise self.error(number, "an 'illegal' pattern takes no format, fields or "
                                 "constants", "remove them")
        elif name in self.names:
            raise self.error(number, f"duplicate pattern name {name} (first on line "
                             f"{self.names[name]})", "give each pattern its own name")
        else:
            self.names[name] = number
        for key, arg in args.items():
            if isinstance(arg, FieldDef) and arg.mask & mask:
                raise self.error(number, f"field %{arg.name} ({key}) of pattern {name} uses "
                                 "bits that the pattern fixes",
                                 "use a format whose fields avoid the fixed bits")
        group = len(self.groups) - 1 if self.group_line is not None else None
        pat = Pattern(
            name, mask, value, tuple(args.items()), ext, MappingProxyType(extra), number, group
        )
        if group is not None:
            for earlier in self.groups[group]:
                if (earlier.mask & mask) == earlier.mask and (value & earlier.mask) == earlier.value:
                    raise self.error(number, f"pattern {name} can never match: {earlier.name} "
                                     f"(line {earlier.line}) comes first in the group and "
                                     "matches every word it does",
                                     "put the more specific pattern first")
            self.groups[group].append(pat)
        self.patterns.append(pat)

    def check_overlaps(self) -> None:
        pats = self.patterns
        # Bucket by the bits every pattern fixes in common, to keep this near-linear.
        common = ~0
        for p in pats:
            common &= p.mask
        buckets: dict[int, list[Pattern]] = {}
        for p in pats:
            buckets.setdefault(p.value & common, []).append(p)
        for bucket in buckets.values():
            for i, a in enumerate(bucket):
                for b in bucket[i + 1:]:
                    if a.group is not None and a.group == b.group:
                        continue
                    if (a.value ^ b.value) & a.mask & b.mask == 0:
                        word = a.value | b.value
                        digits = (self.width or 0) // 4
                        raise self.error(
                            b.line,
                            f"pattern {b.name} overlaps {a.name} (line {a.line}): both match "
                            f"{word:#0{digits + 2}x}",
                            "fix a bit, or put both in a '{ ... }' priority group in the "
                            "order they must be tried",
                        )


# ---------------------------------------------------------------------------
# The compiled table
# ---------------------------------------------------------------------------

# A leaf entry: (mask, value, build) where build(word) -> Match | None.
_Entry = tuple[int, int, Callable[[int], "Match | None"]]


class _Node:
    __slots__ = ("children", "entries", "mask")

    def __init__(self, mask: int, children: dict[int, _Node] | None, entries: tuple[_Entry, ...]):
        self.mask = mask
        self.children = children
        self.entries = entries


def _builder(p: Pattern) -> Callable[[int], Match | None]:
    if p.illegal:
        return lambda word: None
    items = []
    for key, arg in p.args:
        expr = arg.expression("w") if isinstance(arg, FieldDef) else repr(arg)
        items.append(f"{key!r}: {expr}")
    src = f"lambda w: _Match(_name, {{{', '.join(items)}}}, _ext, _extra)"
    ns: dict[str, Any] = {"_Match": Match, "_name": p.name, "_ext": p.ext, "_extra": p.extra}
    return eval(src, ns)


class DecodeTable:
    """A checked pattern table and its decision tree."""

    def __init__(
        self,
        width: int,
        patterns: Iterable[Pattern],
        fields: Mapping[str, FieldDef],
        formats: Mapping[str, FormatDef],
        source: str = "<table>",
    ) -> None:
        self.width = width
        self.patterns: tuple[Pattern, ...] = tuple(patterns)
        self.fields = dict(fields)
        self.formats = dict(formats)
        self.source = source
        self._entries = {id(p): (p.mask, p.value, _builder(p)) for p in self.patterns}
        self._root = self._build(list(self.patterns), 0)

    def _build(self, cands: list[Pattern], consumed: int) -> _Node:
        common = ~consumed & ((1 << self.width) - 1)
        for p in cands:
            common &= p.mask
        if not cands or (common == 0 or len(cands) == 1):
            return _Node(0, None, tuple(self._entries[id(p)] for p in cands))
        split: dict[int, list[Pattern]] = {}
        for p in cands:
            split.setdefault(p.value & common, []).append(p)
        children = {key: self._build(sub, consumed | common) for key, sub in split.items()}
        return _Node(common, children, ())

    def decode(self, word: int) -> Match | None:
        """The pattern `word` matches, with its arguments; None if none (or an illegal one)."""
        node = self._root
        while node.children is not None:
            node = node.children.get(word & node.mask)  # type: ignore[assignment]
            if node is None:
                return None
        for mask, value, build in node.entries:
            if word & mask == value:
                return build(word)
        return None

    def decode_linear(self, word: int) -> Match | None:
        """The same answer as `decode`, by scanning every pattern in table order (reference)."""
        for p in self.patterns:
            if p.matches(word):
                if p.illegal:
                    return None
                return Match(p.name, p.fields(word), p.ext, p.extra)
        return None

    def pattern(self, name: str) -> Pattern:
        """The pattern called `name` (KeyError if there is none)."""
        for p in self.patterns:
            if p.name == name:
                return p
        raise KeyError(name)

    def depth(self) -> int:
        """The longest chain of dict lookups in the tree (for tests and curiosity)."""

        def walk(node: _Node) -> int:
            if node.children is None:
                return 0
            return 1 + max(walk(c) for c in node.children.values())

        return walk(self._root)


def parse_table(text: str, source: str = "<string>") -> DecodeTable:
    """Check and compile the table in `text`; `source` names it in error messages."""
    return _Parser(text, source).run()


def load_table(path: str | Path) -> DecodeTable:
    """Check and compile the table in the file at `path`."""
    p = Path(path)
    return parse_table(p.read_text(encoding="utf-8"), str(p))
