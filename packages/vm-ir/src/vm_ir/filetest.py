"""Filetests: one ``*.vmir`` file per case, driving the parser, verifier, passes and executors.

A filetest starts with one or more header lines naming what to test, followed by vm-ir text;
expectations are comments::

    test optimize
    test run

    func @f(i64) -> i64 {
    block0(v0: i64):
        v1 = iconst.i64 2
        v2 = iconst.i64 3
        v3 = add v1, v2           ; folds to 5
        v4 = mul v0, v3
        ret v4
    }
    ; check: v3 = iconst.i64 5
    ; run: %f(7) == 35

``test verify``
    Parse and verify. Every verifier error must be expected by an ``; error: <substring>``
    comment on the line the error points at, and every ``; error:`` must be matched by an error
    on its line. A ``ParseError`` is matched the same way, so malformed text is testable too.
    A file without ``; error:`` must verify clean, and must print and parse back to the same
    text. One line may expect several errors: ``; error: first ; error: second``.

``test optimize``
    Run ``vm_ir.optimize``, verify the result, print it and match ``; check: <text>`` lines in
    order, FileCheck-style: each check's text (whitespace normalised) must occur in an output
    line after the line that matched the previous check; ``; nextln: <text>`` must occur in
    the very next line. ``; not: <text>`` must not occur between the matches of its
    neighbouring checks. With ``bless=True`` (or the environment
    variable ``VM_TEST_BLESS=1``) the file is rewritten instead: its ``; check:`` and
    ``; nextln:`` lines are dropped and the whole printed output is appended as ``; check:``
    lines (``; not:`` lines stay).

``test run``
    Execute every ``; run:`` line through each executor::

        ; run: %f(1, -2, 1.5, nan:0x7ff4000000000000) == 3
        ; run: %g(7) == 3, 4                  multiple results
        ; run: %h() == ()                     no results
        ; run: %h() == exit 0x1004            left through `exit`
        ; run: %h() == trap mem_fault         a trap of that kind
        ; run: %h() == trap mem_fault at 0x10000   ... at that address
        ; run: %h() == undefined              the evaluator raised UndefinedBehavior
        ; run: %h() [x[1]=5, pc=0x1000, mem.i64[0x100]=7] == exit 8 [x[2]=12, mem.i32[0x100]=7]

    Brackets before ``==`` set initial conditions (state fields, and ``mem.<type>[addr]``
    little-endian memory); brackets after the expectation are post-conditions, checked
    whatever the outcome. Values are read with ``values.parse_value`` in the declared type
    (the function's parameters and results, the field's type, the memory type) and floats
    compare by exact bit pattern: ``nan`` is the canonical NaN, ``nan:0x...`` a given one, and
    ``nan:any`` (expectations only) any NaN, for results whose NaN the spec leaves unspecified.
    Each run line starts from a fresh ``State`` (all zero) and ``FlatMemory(0x10000)`` at 0.

Executors are callables ``(module, func_name, args, state, memory, helpers) -> Result``. The
default ones are the evaluator on the module as written and the evaluator on an optimised copy,
so that every run line also checks that the passes keep its meaning. A run line expecting
``undefined`` is checked only on executors whose ``reports_undefined`` attribute is true (the
reference evaluator): elsewhere undefined behaviour may do anything.

Helpers a filetest may declare and call are in ``TEST_HELPERS``; see ``HELPER_DOCS``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .builder import parse_field_ref
from .evaluator import (
    Exited,
    FlatMemory,
    GuestTrap,
    HelperContext,
    Memory,
    Result,
    Returned,
    State,
    Trapped,
    UndefinedBehavior,
    evaluate,
)
from .ir import Module
from .parser import ParseError, parse
from .passes import optimize
from .printer import format_module
from .types import I64, TYPES_BY_NAME, Type
from .values import format_value, is_nan_bits, parse_value
from .verifier import VerifierError, verify

HEADERS = ("verify", "optimize", "run")
MEMORY_SIZE = 0x10000
STEP_LIMIT = 1_000_000
ANY_NAN = "nan:any"

Helper = Callable[..., int | None]


class Executor(Protocol):
    """Runs one function of a module: the evaluator, the evaluator after the passes, the JIT."""

    def __call__(self, module: Module, func_name: str, args: list[int], state: State,
                 memory: Memory, helpers: Mapping[str, Helper]) -> Result: ...


# --- test helpers ----------------------------------------------------------------------------


def _sum2(ctx: HelperContext, a: int, b: int) -> int:
    return a + b


def _bump(ctx: HelperContext, v: int) -> int:
    if ctx.state.layout.field("counter") is None:
        return v
    ctx.state["counter"] = ctx.state["counter"] + v
    return ctx.state["counter"]


def _fail(ctx: HelperContext) -> None:
    raise GuestTrap("user")


def _peek64(ctx: HelperContext, addr: int) -> int:
    if ctx.memory is None:
        raise GuestTrap("mem_fault", addr)
    return ctx.memory.load(addr, 8)


def _poke64(ctx: HelperContext, addr: int, value: int) -> None:
    if ctx.memory is None:
        raise GuestTrap("mem_fault", addr)
    ctx.memory.store(addr, 8, value)


def _nop(ctx: HelperContext) -> None:
    return None


TEST_HELPERS: dict[str, Helper] = {
    "sum2": _sum2,
    "bump": _bump,
    "fail": _fail,
    "peek64": _peek64,
    "poke64": _poke64,
    "nop": _nop,
}

#: How a filetest declares each test helper, and what it does.
HELPER_DOCS: dict[str, tuple[str, str]] = {
    "sum2": ("helper @sum2(i64, i64) -> i64 pure", "the wrapping sum of its arguments"),
    "bump": ("helper @bump(i64) -> i64",
             "adds its argument to the state field `counter` (if the layout has one) and gives "
             "the new value; without `counter` it gives its argument"),
    "fail": ("helper @fail()", "ends the function with `trap user`"),
    "peek64": ("helper @peek64(i64) -> i64",
               "the 8 bytes of memory at its argument; an address outside memory ends the "
               "function with `trap mem_fault`"),
    "poke64": ("helper @poke64(i64, i64)", "stores its second argument as 8 bytes at the first"),
    "nop": ("helper @nop()", "does nothing (an impure call that must not be removed)"),
}


# --- executors -------------------------------------------------------------------------------


def evaluator_executor(module: Module, func_name: str, args: list[int], state: State,
                       memory: Memory, helpers: Mapping[str, Helper]) -> Result:
    """The reference evaluator on the module as written."""
    return evaluate(module, func_name, args, state=state, memory=memory, helpers=helpers,
                    max_steps=STEP_LIMIT)


evaluator_executor.reports_undefined = True  # type: ignore[attr-defined]


class OptimizedExecutor:
    """The evaluator on ``optimize`` of a copy of the module (printed and parsed back)."""

    reports_undefined = False

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Module, Module]] = {}

    def optimized(self, module: Module) -> Module:
        cached = self._cache.get(id(module))
        if cached is not None and cached[0] is module:
            return cached[1]
        copy = parse(format_module(module), module.filename)
        result = optimize(copy)
        if result is not None:
            copy = result
        errors = verify(copy)
        if errors:
            raise AssertionError("optimize produced invalid IR:\n"
                                 + "\n".join(f"  {e}" for e in errors)
                                 + "\n" + format_module(copy))
        self._cache[id(module)] = (module, copy)
        return copy

    def __call__(self, module: Module, func_name: str, args: list[int], state: State,
                 memory: Memory, helpers: Mapping[str, Helper]) -> Result:
        return evaluate(self.optimized(module), func_name, args, state=state, memory=memory,
                        helpers=helpers, max_steps=STEP_LIMIT, check=False)


def default_executors() -> dict[str, Executor]:
    """Fresh default executors: ``evaluator`` and ``optimized``."""
    return {"evaluator": evaluator_executor, "optimized": OptimizedExecutor()}


# --- reading a filetest ----------------------------------------------------------------------


@dataclass
class RunLine:
    """One ``; run:`` line, split into its parts (values still as text)."""

    line: int
    text: str
    func: str
    args: list[str]
    pre: list[tuple[str, str]]
    #: ("values", [texts]) | ("exit", [pc]) | ("trap", [kind] or [kind, addr]) | ("undefined", [])
    expect: tuple[str, list[str]]
    post: list[tuple[str, str]]


@dataclass
class FileTest:
    """A filetest read from disk: its headers, the IR text (header lines blanked so that line
    numbers stay those of the file) and its expectations."""

    path: str
    lines: list[str]
    headers: dict[str, int] = field(default_factory=dict)
    ir_text: str = ""
    errors: dict[int, list[str]] = field(default_factory=dict)
    #: (line, kind, text) with kind "check", "nextln" or "not", in file order
    checks: list[tuple[int, str, str]] = field(default_factory=list)
    runs: list[RunLine] = field(default_factory=list)
    #: problems with the file itself, as (line, message)
    problems: list[tuple[int, str]] = field(default_factory=list)


class RunLineError(ValueError):
    """A ``; run:`` line that cannot be read."""


_COMMENT_DIRECTIVE = re.compile(r"(error|check|nextln|not|run)\s*:(.*)$")
_HEADER = re.compile(r"test\s+(\S+)\s*$")
_MEM_LOC = re.compile(r"mem\.(\w+)\[(.+)\]$")


def _comment(line: str) -> str | None:
    index = line.find(";")
    return line[index + 1:].strip() if index >= 0 else None


def read_filetest(path: str | Path, text: str | None = None) -> FileTest:
    """Read a filetest's headers and expectations; problems are collected, not raised."""
    path = str(path)
    if text is None:
        text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    ft = FileTest(path, lines)
    ir_lines = list(lines)
    in_header = True
    for n, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if in_header:
            m = _HEADER.match(stripped)
            if m:
                name = m.group(1)
                if name not in HEADERS:
                    ft.problems.append((n, f"unknown test {name!r} (one of {', '.join(HEADERS)})"))
                ft.headers.setdefault(name, n)
                ir_lines[n - 1] = ""
                continue
            if stripped and not stripped.startswith(";"):
                in_header = False
        comment = _comment(raw)
        if comment is None:
            continue
        m = _COMMENT_DIRECTIVE.match(comment)
        if m is None:
            continue
        kind, body = m.group(1), m.group(2).strip()
        if kind == "error":  # several may share a line: `; error: A ; error: B`
            ft.errors.setdefault(n, []).extend(
                part.strip() for part in re.split(r";\s*error\s*:", body))
        elif kind in ("check", "nextln", "not"):
            ft.checks.append((n, kind, body))
        else:
            try:
                ft.runs.append(parse_run_line(body, n))
            except RunLineError as exc:
                ft.problems.append((n, f"cannot read run line: {exc}"))
    if not ft.headers:
        ft.problems.append((1, "no test header: start the file with `test verify`, "
                               "`test optimize` or `test run`"))
    for kind, header, present in (("error", "verify", ft.errors),
                                  ("check", "optimize", ft.checks),
                                  ("run", "run", ft.runs)):
        if present and header not in ft.headers:
            ft.problems.append((1, f"has `; {kind}:` lines but no `test {header}` header"))
    if "run" in ft.headers and not ft.runs:
        ft.problems.append((ft.headers["run"], "`test run` without any `; run:` line"))
    ft.ir_text = "\n".join(ir_lines) + "\n"
    return ft


def _matching(text: str, start: int, open_: str, close: str) -> int:
    """The index of the bracket closing the one at ``text[start]``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i
    raise RunLineError(f"no closing {close!r}")


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets; empty text gives no items."""
    items, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    if last or items:
        items.append(last)
    if any(not item for item in items):
        raise RunLineError(f"an empty item in {text!r}")
    return items


def _conditions(text: str) -> list[tuple[str, str]]:
    conds = []
    for item in _split_top(text):
        where, eq, value = item.partition("=")
        if not eq or not where.strip() or not value.strip():
            raise RunLineError(f"expected location=value, found {item!r}")
        conds.append((where.strip(), value.strip()))
    return conds


def parse_run_line(text: str, line: int = 0) -> RunLine:
    """``%f(args) [pre] == expectation [post]`` -> RunLine; ``RunLineError`` if malformed."""
    s = text.strip()
    m = re.match(r"%([A-Za-z_][\w.]*)\s*\(", s)
    if m is None:
        raise RunLineError("expected %function(arguments)")
    close = _matching(s, m.end() - 1, "(", ")")
    args = _split_top(s[m.end():close])
    rest = s[close + 1:].strip()
    pre: list[tuple[str, str]] = []
    if rest.startswith("["):
        end = _matching(rest, 0, "[", "]")
        pre = _conditions(rest[1:end])
        rest = rest[end + 1:].strip()
    if not rest.startswith("=="):
        raise RunLineError(f"expected '==' after the call, found {rest[:20]!r}")
    rest = rest[2:].strip()
    post: list[tuple[str, str]] = []
    if rest.endswith("]"):
        depth = 0
        for i in range(len(rest) - 1, -1, -1):
            depth += {"]": 1, "[": -1}.get(rest[i], 0)
            if depth == 0:
                post = _conditions(rest[i + 1:-1])
                rest = rest[:i].strip()
                break
        else:
            raise RunLineError("no opening '[' for the post-conditions")
    words = rest.split()
    if not rest:
        raise RunLineError("expected an expectation after '=='")
    if rest.replace(" ", "") == "()":
        expect: tuple[str, list[str]] = ("values", [])
    elif words[0] == "exit":
        if len(words) != 2:
            raise RunLineError("expected `exit <pc>`")
        expect = ("exit", words[1:])
    elif words[0] == "trap":
        if len(words) == 2:
            expect = ("trap", words[1:])
        elif len(words) == 4 and words[2] == "at":
            expect = ("trap", [words[1], words[3]])
        else:
            raise RunLineError("expected `trap <kind>` or `trap <kind> at <addr>`")
    elif rest == "undefined":
        expect = ("undefined", [])
    else:
        expect = ("values", _split_top(rest))
    return RunLine(line, text.strip(), m.group(1), args, pre, expect, post)


# --- running ---------------------------------------------------------------------------------


class _Failures:
    def __init__(self, path: str) -> None:
        self.path = path
        self.messages: list[str] = []

    def add(self, line: int | None, message: str) -> None:
        where = f"{self.path}:{line}" if line is not None else self.path
        self.messages.append(f"{where}: {message}")


def run_filetest(path: str | Path, bless: bool = False,
                 executors: Mapping[str, Executor] | None = None) -> list[str]:
    """Run one filetest; the failure messages (``file:line: ...``), empty when it passes."""
    bless = bless or os.environ.get("VM_TEST_BLESS", "") == "1"
    ft = read_filetest(path)
    failures = _Failures(ft.path)
    for line, message in ft.problems:
        failures.add(line, message)
    if ft.problems:
        return failures.messages
    if "verify" in ft.headers:
        _run_verify(ft, failures)
        if ft.errors:  # a file of expected errors has nothing to optimise or run
            return failures.messages
    if "optimize" not in ft.headers and "run" not in ft.headers:
        return failures.messages
    module = _parse_clean(ft, failures)
    if module is None:
        return failures.messages
    if "optimize" in ft.headers:
        _run_optimize(ft, failures, bless)
    if "run" in ft.headers:
        chosen = default_executors() if executors is None else executors
        for run in ft.runs:
            for name, executor in chosen.items():
                _run_line(ft, module, run, name, executor, failures)
    return failures.messages


def _parse_clean(ft: FileTest, failures: _Failures) -> Module | None:
    try:
        module = parse(ft.ir_text, ft.path)
    except ParseError as exc:
        failures.add(exc.line, f"parse error: {exc.message}")
        return None
    errors = verify(module)
    for e in errors:
        failures.add(e.line, f"verifier error: {_unplaced(e)}")
    return None if errors else module


def _unplaced(error: VerifierError) -> str:
    """The error without its ``file:line: `` prefix (failure messages carry their own)."""
    text = str(error)
    prefix = f"{error.filename}:{error.line}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _run_verify(ft: FileTest, failures: _Failures) -> None:
    found: list[tuple[int | None, str]] = []
    module = None
    try:
        module = parse(ft.ir_text, ft.path)
    except ParseError as exc:
        found.append((exc.line, f"parse error: {exc.message}"))
    else:
        found.extend((e.line, f"verifier error: {_unplaced(e)}") for e in verify(module))
    for line, message in found:
        expected = ft.errors.get(line, []) if line is not None else []
        if not any(sub in message for sub in expected):
            failures.add(line, f"unexpected {message}")
    for line, subs in sorted(ft.errors.items()):
        for sub in subs:
            if not any(at == line and sub in message for at, message in found):
                got = [m for at, m in found if at == line]
                detail = f"; on this line: {' | '.join(got)}" if got else ""
                failures.add(line, f"expected error {sub!r} was not reported{detail}")
    if module is not None and not found:
        text = format_module(module)
        try:
            again = format_module(parse(text, ft.path))
        except ParseError as exc:
            failures.add(None, f"the printed module does not parse back: {exc}\n{text}")
        else:
            if again != text:
                failures.add(None, "print -> parse -> print changed the text:\n"
                                   f"{text}\n---\n{again}")


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _run_optimize(ft: FileTest, failures: _Failures, bless: bool) -> None:
    module = parse(ft.ir_text, ft.path)  # a fresh copy: run lines use the original
    result = optimize(module)
    if result is not None:
        module = result
    errors = verify(module)
    output = format_module(module)
    for e in errors:
        failures.add(ft.headers["optimize"], f"optimize produced invalid IR: {e}")
    if bless:
        _bless(ft, output)
        return
    if not any(kind != "not" for _, kind, _ in ft.checks):
        failures.add(ft.headers["optimize"], "`test optimize` without any `; check:` line "
                     "(run with VM_TEST_BLESS=1 to write them)")
        return
    out_lines = [_normalise(line) for line in output.splitlines()]
    pos = 0  # the first output line the next check may match
    pending_nots: list[tuple[int, str]] = []
    first = True
    for line, kind, text in ft.checks:
        want = _normalise(text)
        if kind == "not":
            pending_nots.append((line, want))
            continue
        if kind == "nextln":
            if first:
                failures.add(line, "`nextln` needs a `check` before it")
                return
            match = pos if pos < len(out_lines) and want in out_lines[pos] else None
            if match is None:
                found = out_lines[pos] if pos < len(out_lines) else "end of output"
                failures.add(line, f"nextln not matched: {text!r}; the next line is {found!r}"
                                   f"\noutput:\n{output}")
                return
        else:
            match = next((i for i in range(pos, len(out_lines)) if want in out_lines[i]), None)
            if match is None:
                earlier = any(want in o for o in out_lines[:pos])
                hint = " (it occurs only before the previous match)" if earlier else ""
                failures.add(line, f"check not found{hint}: {text!r}\noutput:\n{output}")
                return
        first = False
        _check_nots(pending_nots, out_lines[pos:match], failures, output)
        pending_nots = []
        pos = match + 1
    _check_nots(pending_nots, out_lines[pos:], failures, output)


def _check_nots(nots: list[tuple[int, str]], lines: list[str], failures: _Failures,
                output: str) -> None:
    for line, want in nots:
        if any(want in o for o in lines):
            failures.add(line, f"`not` text found: {want!r}\noutput:\n{output}")


def _bless(ft: FileTest, output: str) -> None:
    kept = [line for line in ft.lines
            if not (line.strip().startswith(";") and _is_check(line))]
    while kept and not kept[-1].strip():
        kept.pop()
    kept.append("")
    kept.extend(f"; check: {line}" if line.strip() else ";" for line in output.rstrip().splitlines())
    Path(ft.path).write_text("\n".join(kept) + "\n", encoding="utf-8")


def _is_check(line: str) -> bool:
    comment = _comment(line)
    return comment is not None and re.match(r"(check|nextln)\s*:", comment) is not None


# --- one run line ----------------------------------------------------------------------------


def _location_type(module: Module, where: str) -> tuple[str, object, Type]:
    """("mem", addr, type) or ("state", FieldRef, type) for a condition's left-hand side."""
    m = _MEM_LOC.match(where)
    if m is not None:
        t = TYPES_BY_NAME.get(m.group(1))
        if t is None:
            raise RunLineError(f"unknown type {m.group(1)!r} in {where!r}")
        return "mem", parse_value(m.group(2), I64), t
    try:
        ref = parse_field_ref(where)
    except ValueError:
        raise RunLineError(f"cannot read location {where!r}") from None
    f = module.state.field(ref.name) if module.state is not None else None
    if f is None:
        raise RunLineError(f"no state field {ref.name!r}")
    if (f.count is None) != (ref.index is None) or (
            ref.index is not None and not 0 <= ref.index < f.count):  # type: ignore[operator]
        raise RunLineError(f"bad reference {where!r} to field {f.name}"
                           + (f"[{f.count}]" if f.count is not None else ""))
    return "state", ref, f.type


def _read_location(kind: str, where: object, t: Type, state: State, memory: FlatMemory) -> int:
    if kind == "mem":
        return memory.load(where, t.bytes)  # type: ignore[arg-type]
    return state[where]  # type: ignore[index]


def _same(expected: str, actual: int, t: Type) -> bool:
    if expected == ANY_NAN:
        return t.is_float and is_nan_bits(actual, t)
    return parse_value(expected, t) == actual & t.mask


def _outcome_text(outcome: Result | str, returns: list[Type]) -> str:
    if isinstance(outcome, str):
        return outcome
    if isinstance(outcome, Returned):
        if not outcome.values:
            return "()"
        if len(outcome.values) != len(returns):
            return ", ".join(map(str, outcome.values))
        return ", ".join(format_value(v, t) for v, t in zip(outcome.values, returns, strict=True))
    if isinstance(outcome, Exited):
        return f"exit {outcome.pc:#x}"
    assert isinstance(outcome, Trapped)
    at = f" at {outcome.addr:#x}" if outcome.addr is not None else ""
    return f"trap {outcome.kind}{at}"


def _matches(expect: tuple[str, list[str]], outcome: Result | str, returns: list[Type]) -> bool:
    kind, words = expect
    if kind == "undefined":
        return outcome == "undefined"
    if kind == "exit":
        return isinstance(outcome, Exited) and outcome.pc == parse_value(words[0], I64)
    if kind == "trap":
        if not isinstance(outcome, Trapped) or outcome.kind != words[0]:
            return False
        return len(words) == 1 or outcome.addr == parse_value(words[1], I64)
    if not isinstance(outcome, Returned) or len(outcome.values) != len(words):
        return False
    return all(_same(w, v, t) for w, v, t in zip(words, outcome.values, returns, strict=True))


def _run_line(ft: FileTest, module: Module, run: RunLine, exec_name: str, executor: Executor,
              failures: _Failures) -> None:
    def fail(message: str) -> None:
        failures.add(run.line, f"[{exec_name}] %{run.func}: {message}")

    func = module.functions.get(run.func)
    if func is None:
        fail(f"no function @{run.func} in the file")
        return
    if len(run.args) != len(func.params):
        fail(f"takes {len(func.params)} argument(s), the run line gives {len(run.args)}")
        return
    kind, words = run.expect
    if kind == "values" and len(words) != len(func.returns):
        fail(f"returns {len(func.returns)} value(s), the run line expects {len(words)}")
        return
    if kind == "undefined" and not getattr(executor, "reports_undefined", False):
        return  # undefined behaviour: any outcome is right for this executor
    try:
        args = [parse_value(a, t) for a, t in zip(run.args, func.params, strict=True)]
        state = State(module.state)
        memory = FlatMemory(MEMORY_SIZE)
        for where, text in run.pre:
            loc_kind, loc, t = _location_type(module, where)
            value = parse_value(text, t)
            if loc_kind == "mem":
                memory.store(loc, t.bytes, value)  # type: ignore[arg-type]
            else:
                state[loc] = value  # type: ignore[index]
        post = [(where, text, *_location_type(module, where)) for where, text in run.post]
        for text, t in zip(words, func.returns, strict=False):
            if kind == "values" and text != ANY_NAN:
                parse_value(text, t)
    except (ValueError, RunLineError, KeyError) as exc:
        fail(f"bad run line: {exc}")
        return
    try:
        outcome: Result | str = executor(module, run.func, args, state, memory, TEST_HELPERS)
    except UndefinedBehavior as exc:
        outcome = "undefined"
        if kind != "undefined":
            fail(f"undefined behaviour ({exc}); expected {_expected_text(run)}")
            return
    except Exception as exc:
        fail(f"{type(exc).__name__}: {exc}")
        return
    if not _matches(run.expect, outcome, func.returns):
        fail(f"expected {_expected_text(run)}, got {_outcome_text(outcome, func.returns)}")
    if kind == "undefined":
        return
    for where, text, loc_kind, loc, t in post:
        try:
            actual = _read_location(loc_kind, loc, t, state, memory)
        except Exception as exc:
            fail(f"cannot read {where}: {exc}")
            continue
        if not _same(text, actual, t):
            fail(f"after the call {where} is {format_value(actual, t)}, expected {text}")


def _expected_text(run: RunLine) -> str:
    kind, words = run.expect
    if kind == "values":
        return ", ".join(words) if words else "()"
    if kind == "trap" and len(words) == 2:
        return f"trap {words[0]} at {words[1]}"
    return " ".join([kind, *words]) if kind != "undefined" else "undefined"


# --- for the test suite and tools ------------------------------------------------------------


def ops_run_by(path: str | Path) -> set[str]:
    """The ops in a filetest's functions when it has a ``test run`` header, else none."""
    ft = read_filetest(path)
    if "run" not in ft.headers:
        return set()
    try:
        module = parse(ft.ir_text, ft.path)
    except ParseError:
        return set()
    return {inst.op.name for func in module.functions.values() for _, inst in func.insts()}


__all__ = [
    "HELPER_DOCS", "TEST_HELPERS", "Executor", "FileTest", "OptimizedExecutor", "RunLine",
    "RunLineError", "default_executors", "evaluator_executor", "ops_run_by", "parse_run_line",
    "read_filetest", "run_filetest",
]
