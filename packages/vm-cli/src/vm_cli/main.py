"""The `vm` command: global options, the command groups, and the error policy around them.

``main()`` is the console script. It runs the typer app in non-standalone mode so that every
exception comes back here, where ``errors.report`` turns it into one line and an exit code.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import typer

from vm_cli import errors, info, ir
from vm_cli import run as run_command


@dataclass
class GlobalOptions:
    """Options given before the command, shared with every command through ``ctx.obj``."""

    debug: bool = False


app = typer.Typer(
    name="vm",
    help="A multi-architecture virtual machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(ir.app, name="ir")
app.command("info")(info.info)
app.command("run", context_settings=run_command.CONTEXT)(run_command.run)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # only here: it costs 20 ms at start-up

        typer.echo(f"vm {version('vm-cli')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of a failure."),
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    ctx.ensure_object(GlobalOptions).debug = debug


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); give its exit code."""
    options = GlobalOptions()
    try:
        code = app(args=argv, prog_name="vm", obj=options, standalone_mode=False)
    except (Exception, KeyboardInterrupt) as error:
        return errors.report(error, options.debug)
    return code if isinstance(code, int) else errors.EXIT_OK


def main() -> None:
    code = run()
    # The process ends here. Python's own teardown would free every translation and LLVM
    # engine one by one (0.15 s after a bench_cpu run), so flush and leave at once.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)
