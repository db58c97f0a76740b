"""`vm ir`: check, optimise and run vm-ir text files (``*.vmir``) with the reference evaluator."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import vm_ir
from vm_cli import errors
from vm_cli.errors import EXIT_INPUT, CliError, Exit, error_line

MEMORY_SIZE = 64 * 1024
"""Bytes of zeroed guest memory, at address 0, that `vm ir run` gives the function."""


def register(group: argparse.ArgumentParser) -> None:
    """`vm ir check`, `vm ir opt` and `vm ir run`: their arguments and handlers."""
    group.set_defaults(handler=None, group=group)
    sub = group.add_subparsers(title="commands", metavar="COMMAND", parser_class=type(group))
    parsers = {}
    for name, function, handler in (
        ("check", check, lambda a: check(a.path)),
        ("opt", opt, lambda a: opt(a.path)),
        ("run", run_function, lambda a: run_function(a.path, a.func, a.args, a.state, a.mem)),
    ):
        doc = function.__doc__ or ""
        parser = sub.add_parser(name, help=doc.split("\n\n")[0], description=doc,
                                formatter_class=errors.RawDescriptionHelpFormatter)
        parser.add_argument("path", metavar="FILE.vmir", type=Path, help="A vm-ir text file.")
        parser.set_defaults(handler=handler)
        parsers[name] = parser
    run = parsers["run"]
    run.add_argument("--func", "-f",
                     help="The function to run (default: the only one, or @main).")
    run.add_argument("--args", "-a", metavar="VALUES", action="append",
                     help="Argument values, in the function's parameter types; repeat the "
                          "option or separate values with commas: --args 3,-1,0x10.")
    run.add_argument("--state", "-s", metavar="FIELD=VALUE", action="append",
                     help="Set a field of the guest state first: pc=0x1000, x[3]=7. "
                          "Repeatable.")
    run.add_argument("--mem", "-m", metavar="ADDR:TYPE=VALUE", action="append",
                     help=f"Store a value in the {MEMORY_SIZE // 1024} KiB guest memory "
                          "first: 0x100:i32=7. Repeatable.")


def load(path: Path) -> vm_ir.Module:
    """Read, parse and verify ``path``; print every verifier error and exit 1 if there are any."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory, not a .vmir file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"{path}: cannot read it: {error}") from None
    module = vm_ir.parse(text, str(path))
    problems = vm_ir.verify(module)
    for problem in problems:
        error_line(str(problem))
    if problems:
        raise Exit(EXIT_INPUT)
    return module


def check(path: Path) -> None:
    """Parse and verify FILE; print each error with its location."""
    module = load(path)
    print(f"{path}: ok ({len(module.functions)} functions)")


def opt(path: Path) -> None:
    """Parse, verify and optimise FILE; print the optimised module."""
    print(vm_ir.print_module(vm_ir.optimize(load(path))), end="")


def run_function(path: Path, func: str | None = None, args: list[str] | None = None,
                 state: list[str] | None = None, mem: list[str] | None = None) -> None:
    """Run a function of FILE with the reference evaluator and print what it returns.

    Prints each returned value on its own line, or `exit PC`, or `trap KIND` (`at ADDR`).
    """
    module = load(path)
    function = _pick_function(module, func)
    values = [v for arg in args or [] for v in arg.split(",") if v.strip()]
    if len(values) != len(function.params):
        raise CliError(f"@{function.name} takes {len(function.params)} argument(s) "
                       f"({_types(function.params)}), got {len(values)}: pass them with --args")
    arguments = [_parse(text, t, f"argument {i + 1} of @{function.name}")
                 for i, (text, t) in enumerate(zip(values, function.params, strict=True))]
    guest_state = vm_ir.State(module.state)
    for assignment in state or []:
        _set_state(guest_state, assignment)
    memory = vm_ir.FlatMemory(MEMORY_SIZE)
    for assignment in mem or []:
        _store(memory, assignment)
    result = vm_ir.evaluate(module, function, arguments, state=guest_state, memory=memory,
                            check=False)
    for line in format_result(result, function.returns):
        print(line)


def format_result(result: vm_ir.Result, types: list[vm_ir.Type]) -> list[str]:
    """The lines `vm ir run` prints for ``result``."""
    if isinstance(result, vm_ir.Returned):
        return [vm_ir.format_value(v, t) for v, t in zip(result.values, types, strict=True)]
    if isinstance(result, vm_ir.Exited):
        return [f"exit {result.pc:#x}"]
    where = f" at {result.addr:#x}" if result.addr is not None else ""
    return [f"trap {result.kind}{where}"]


def _types(types: list[vm_ir.Type]) -> str:
    return ", ".join(map(str, types)) or "none"


def _pick_function(module: vm_ir.Module, name: str | None) -> vm_ir.Function:
    functions = module.functions
    names = ", ".join(f"@{n}" for n in functions) or "none"
    if name is not None:
        function = functions.get(name.removeprefix("@"))
        if function is None:
            raise CliError(f"{module.filename} has no function @{name.removeprefix('@')} "
                           f"(it has {names})")
        return function
    if len(functions) == 1:
        return next(iter(functions.values()))
    if "main" in functions:
        return functions["main"]
    raise CliError(f"{module.filename} has functions {names} and none is @main: "
                   "pick one with --func")


def _parse(text: str, type: vm_ir.Type, what: str) -> int:
    try:
        return vm_ir.parse_value(text.strip(), type)
    except ValueError:
        raise CliError(f"{what}: {text.strip()!r} is not a valid {type} value "
                       f"(write {_value_hint(type)})") from None


def _value_hint(type: vm_ir.Type) -> str:
    if type.is_float:
        return "a decimal such as 1.5 or -0.0, inf, -inf, nan or nan:0x<bits>"
    if type.bits == 1:
        return "0 or 1"
    return f"an integer from {-(1 << (type.bits - 1))} to {type.mask:#x}"


_STATE = re.compile(r"\s*(\w+)(?:\[(\w+)\])?\s*=\s*(\S+)\s*$")


def _set_state(state: vm_ir.State, assignment: str) -> None:
    match = _STATE.match(assignment)
    if match is None:
        raise CliError(f"--state {assignment!r}: write FIELD=VALUE or FIELD[INDEX]=VALUE")
    name, index, value = match.groups()
    field = state.layout.field(name)
    if field is None:
        declared = ", ".join(f.name for f in state.layout.fields) or "none"
        raise CliError(f"--state {assignment!r}: the module's state has no field {name} "
                       f"(its fields: {declared})")
    if (index is None) != (field.count is None):
        if field.count is None:
            raise CliError(f"--state {assignment!r}: {name} is not an array: write {name}=VALUE")
        raise CliError(f"--state {assignment!r}: {name} is an array of {field.count}: "
                       f"write {name}[INDEX]=VALUE")
    position = None
    if index is not None:
        position = _parse(index, vm_ir.I64, f"--state {assignment!r}: index")
        if field.count is not None and position >= field.count:
            raise CliError(f"--state {assignment!r}: {name} has {field.count} elements")
    state[vm_ir.FieldRef(name, position)] = _parse(value, field.type, f"--state {assignment!r}")


_MEM = re.compile(r"\s*(\w+)\s*:\s*(\w+)\s*=\s*(\S+)\s*$")


def _store(memory: vm_ir.FlatMemory, assignment: str) -> None:
    match = _MEM.match(assignment)
    if match is None:
        raise CliError(f"--mem {assignment!r}: write ADDR:TYPE=VALUE, as in 0x100:i32=7")
    addr_text, type_name, value = match.groups()
    what = f"--mem {assignment!r}"
    try:
        type = vm_ir.type_named(type_name)
    except KeyError:
        known = ", ".join(t.name for t in vm_ir.ALL_TYPES)
        raise CliError(f"{what}: no type {type_name} (one of {known})") from None
    addr = _parse(addr_text, vm_ir.I64, f"{what}: address")
    if addr + type.bytes > MEMORY_SIZE:
        raise CliError(f"{what}: memory is {MEMORY_SIZE:#x} bytes from address 0")
    memory.store(addr, type.bytes, _parse(value, type, what))
