"""``vm run PROGRAM [ARGS]...``: run a Linux program of another architecture (qemu-user's job).

The architecture comes from the ELF header. The guest's stdin, stdout and stderr are the
command's; its exit status is the command's; a guest killed by a signal kills ``vm`` with the
same signal after one line on stderr (as the kernel would report it).
"""

from __future__ import annotations

import enum
import gc
from typing import Annotated

import typer

from vm_runtime.linux import Options, run_program


class EngineChoice(enum.StrEnum):
    interp = "interp"
    jit = "jit"
    auto = "auto"


def run(
    ctx: typer.Context,
    program: Annotated[str, typer.Argument(help="The guest program (a static Linux ELF).")],
    engine: Annotated[EngineChoice, typer.Option("--engine", help="Execution engine.")] = (
        EngineChoice.auto),
    stats: Annotated[bool, typer.Option("--stats", help="Print execution statistics.")] = False,
    trace: Annotated[bool, typer.Option("--trace", help="Print each translated block.")] = False,
    strace: Annotated[bool, typer.Option("--strace", help="Print each syscall.")] = False,
) -> None:
    """Run PROGRAM with ARGS under user-mode emulation."""
    options = Options(engine=engine.value, strace=strace, trace=trace, stats=stats)
    tune_gc()
    status = run_program(program, [program, *ctx.args], options=options)
    raise typer.Exit(status)


def tune_gc() -> None:
    """Garbage collection for a long run that makes many long-lived objects.

    Translated code is tens of thousands of small objects that live to the end (lifted IR,
    compiled blocks), and the collector's default thresholds re-scan them over and over:
    that was 13% of a short guest's run. What is alive now (modules, the CLI) is frozen out
    of collection, and young objects are collected 30 times less often.
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True,
           "allow_interspersed_args": False}
