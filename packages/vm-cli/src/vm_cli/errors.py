"""What the `vm` command does when something fails: one line on stderr and an exit code.

Every failure is reported as ``vm: error: <what went wrong>`` and no traceback, unless the
global ``--debug`` option was given. ``Parser`` (argparse, raising ``UsageError`` and ``Exit``
instead of exiting) reads every command line, so that usage errors follow the same policy.
The exit codes:

====  =====================================================================================
0     success (a guest that traps or exits is a result, not a failure)
1     the input is wrong: a missing file, text that is not valid vm-ir, a value that does not
      parse, a guest that does something undefined, any ``VmError``
2     the command line is wrong (unknown option or command, missing argument), as argparse does
70    a bug in vm itself (sysexits' EX_SOFTWARE); ``--debug`` shows the traceback to report
130   interrupted (Ctrl-C)
====  =====================================================================================
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from vm_core import VmError

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

PREFIX = "vm: error: "


def input_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean "the input is wrong"; their ``str()`` is a message a user can act on.

    vm-ir's count only where vm-ir has been imported (no error is of a class never loaded),
    so that `vm run` under KVM never imports it.
    """
    found: tuple[type[Exception], ...] = (VmError, OSError)
    vm_ir = sys.modules.get("vm_ir")
    if vm_ir is not None:
        found += (vm_ir.ParseError, vm_ir.EvaluationError)
    return found


class CliError(Exception):
    """A failure the command reports as one line (``message``) and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(Exception):
    """The command line is wrong: ``message``, and the command whose help says what is right."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(message)
        self.command = command


class Exit(Exception):
    """Leave with ``code``: what there was to say has been said (``--help``, a verifier)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _columns() -> int:
    """The terminal's width as shutil would give it, without importing shutil (which imports
    zlib, bz2 and lzma): argparse asks for it at every ``add_argument``, in every `vm run`."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class HelpFormatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """argparse's, with ``HelpFormatter``'s width."""


class Parser(argparse.ArgumentParser):
    """argparse, with failures raised for ``report`` instead of printed and exited on.

    Options are never abbreviated (``--eng`` is not ``--engine``): a guest's own options come
    after PROGRAM and must not be taken for ours. A word that starts with a minus sign and
    then a number (``-1,2``, ``-0.5``, ``-inf``) is a value, not an unknown option.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # argparse's own pattern takes only "-5" and "-.5" for numbers (no lists, no inf)
        self._negative_number_matcher = re.compile(r"^-(\d|\.\d|inf\b|nan\b)")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        # a subcommand's unknown option is reported by the subcommand (with its own help)
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise Exit(status)


def error_line(message: str) -> None:
    """Print ``vm: error: <message>`` on stderr, as one line."""
    print(PREFIX + " ".join(message.split()), file=sys.stderr)


def _describe(error: BaseException) -> tuple[str, int]:
    """The one-line message and exit code for ``error``."""
    if isinstance(error, UsageError):
        return f"{error} (see '{error.command} --help')", EXIT_USAGE
    if isinstance(error, CliError):
        return str(error), error.exit_code
    vm_ir = sys.modules.get("vm_ir")
    if vm_ir is not None and isinstance(error, vm_ir.UndefinedBehavior):
        return f"undefined behaviour: {error}", EXIT_INPUT
    if isinstance(error, input_errors()):
        return str(error), EXIT_INPUT
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    message = f"internal error: {type(error).__name__}: {error}"
    return message + "; please report it with the traceback that --debug shows", EXIT_INTERNAL


def report(error: BaseException, debug: bool) -> int:
    """Print ``error`` (one line, or a traceback and the line when ``debug``); its exit code."""
    if isinstance(error, Exit):
        return error.code
    message, code = _describe(error)
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    error_line(message)
    return code
