"""The `vm` command: global options, the commands, and the error policy around them.

``main()`` is the console script. The command line is read by argparse (``errors.Parser``,
which raises instead of exiting), so that every failure comes back to ``run``, where
``errors.report`` turns it into one line and an exit code.

Reading it takes two steps, as pip does: the global options and the command's name first,
then the command's own arguments, by a parser that the command's module builds
(``register(parser)``, which also sets the handler: parsed arguments in, exit code out,
``None`` meaning 0). Only the chosen command's module is imported, so `vm run` does not pay
for vm-ir (``vm ir``) or rich (``vm info``) at every start.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from vm_cli import errors

COMMANDS = {
    "info": ("vm_cli.info", "Show installed packages, frontends, accelerators, KVM and the "
                            "host."),
    "ir": ("vm_cli.ir", "Check, optimise and run vm-ir text files."),
    "run": ("vm_cli.run", "Run a Linux program of another architecture (x86_64 ones under "
                          "KVM)."),
}
"""Each command: the module that defines it, and one line about it."""


class _Version(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="Print the version and exit.")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import version  # only here: it costs 20 ms at start-up

        print(f"vm {version('vm-cli')}")
        parser.exit()


def build_parser() -> errors.Parser:
    """The first step: global options, then COMMAND and everything after it."""
    width = max(map(len, COMMANDS)) + 2
    listing = "\n".join(f"  {name:<{width}}{summary}" for name, (_, summary) in COMMANDS.items())
    parser = errors.Parser(prog="vm", usage="vm [-h] [--debug] [--version] COMMAND [ARGS]...",
                           description="A multi-architecture virtual machine.",
                           epilog=f"commands:\n{listing}\n\n'vm COMMAND --help' tells more.",
                           formatter_class=errors.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="Show the traceback of a failure.")
    parser.add_argument("--version", action=_Version)
    parser.add_argument("command", metavar="COMMAND", nargs="?", choices=COMMANDS,
                        help=argparse.SUPPRESS)  # listed in the epilog, with what each does
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def command_parser(name: str) -> errors.Parser:
    """The second step: the parser of command ``name``, as its module builds it."""
    module, summary = COMMANDS[name]
    parser = errors.Parser(prog=f"vm {name}", description=summary)
    importlib.import_module(module).register(parser)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); give its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = _global_debug(argv)  # known before parsing: a usage error can show its traceback
    try:
        top = build_parser()
        first = top.parse_args(argv)
        if first.command is None:  # `vm` alone: what could follow
            top.print_help()
            return errors.EXIT_USAGE
        args = command_parser(first.command).parse_args(first.rest)
        if args.handler is None:  # a group alone (`vm ir`): its commands
            args.group.print_help()
            return errors.EXIT_USAGE
        code = args.handler(args)
    except (Exception, KeyboardInterrupt) as error:
        return errors.report(error, debug)
    return errors.EXIT_OK if code is None else code


def _global_debug(argv: Sequence[str]) -> bool:
    """Whether ``--debug`` is among the global options (those before the command)."""
    for arg in argv:
        if arg == "--debug":
            return True
        if not arg.startswith("-"):
            return False
    return False


def main() -> None:
    code = run()
    # The process ends here. Python's own teardown would free every translation and LLVM
    # engine one by one (0.15 s after a bench_cpu run), so flush and leave at once.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)
