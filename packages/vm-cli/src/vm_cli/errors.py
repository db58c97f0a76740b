"""What the `vm` command does when something fails: one line on stderr and an exit code.

Every failure is reported as ``vm: error: <what went wrong>`` and no traceback, unless the
global ``--debug`` option was given. The exit codes:

====  =====================================================================================
0     success (a guest that traps or exits is a result, not a failure)
1     the input is wrong: a missing file, text that is not valid vm-ir, a value that does not
      parse, a guest that does something undefined, any ``VmError``
2     the command line is wrong (unknown option, missing argument), as click and typer do
70    a bug in vm itself (sysexits' EX_SOFTWARE); ``--debug`` shows the traceback to report
130   interrupted (Ctrl-C)
====  =====================================================================================
"""

from __future__ import annotations

import sys
import traceback

import typer

import vm_ir
from vm_core import VmError

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

PREFIX = "vm: error: "

#: Exceptions that mean "the input is wrong"; their ``str()`` is a message a user can act on.
INPUT_ERRORS: tuple[type[Exception], ...] = (
    VmError,
    vm_ir.ParseError,
    vm_ir.EvaluationError,
    OSError,
)


class CliError(Exception):
    """A failure the command reports as one line (``message``) and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def error_line(message: str) -> None:
    """Print ``vm: error: <message>`` on stderr, as one line."""
    print(PREFIX + " ".join(message.split()), file=sys.stderr)


def _describe(error: BaseException) -> tuple[str, int]:
    """The one-line message and exit code for ``error``."""
    if isinstance(error, typer.TyperException):  # typer's (vendored click's) usage errors
        message, code = error.format_message(), error.exit_code
        ctx = getattr(error, "ctx", None)
        if code == EXIT_USAGE and ctx is not None:
            message += f" (see '{ctx.command_path} --help')"
        return message, code
    if isinstance(error, CliError):
        return str(error), error.exit_code
    if isinstance(error, vm_ir.UndefinedBehavior):
        return f"undefined behaviour: {error}", EXIT_INPUT
    if isinstance(error, INPUT_ERRORS):
        return str(error), EXIT_INPUT
    if isinstance(error, KeyboardInterrupt | typer.Abort):
        return "interrupted", EXIT_INTERRUPTED
    message = f"internal error: {type(error).__name__}: {error}"
    return message + "; please report it with the traceback that --debug shows", EXIT_INTERNAL


def report(error: BaseException, debug: bool) -> int:
    """Print ``error`` (one line, or a traceback and the line when ``debug``); its exit code."""
    # `vm` or `vm ir` alone: typer has printed the help already (and tests the name as we do)
    if type(error).__name__ == "NoArgsIsHelpError":
        return EXIT_USAGE
    message, code = _describe(error)
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    error_line(message)
    return code
