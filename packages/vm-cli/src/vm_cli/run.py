"""``vm run PROGRAM [ARGS]...``: run a Linux program of another architecture (qemu-user's job).

The architecture comes from the ELF header. ``--accel kvm`` runs an x86_64 program's code
natively under KVM, with the same Linux user-mode layer (``--accel auto``, the default, does
so for x86_64 programs, the only ones KVM can run, and says why when KVM cannot be used).
The guest's stdin, stdout and stderr are the command's; its exit status is the command's; a
guest killed by a signal kills ``vm`` with the same signal after one line on stderr (as the
kernel would report it).
"""

from __future__ import annotations

import enum
import gc
from typing import Annotated

import typer

from vm_runtime.linux import AccelMismatch, Options, choose_accel, run_program

from .errors import EXIT_USAGE, CliError


class AccelChoice(enum.StrEnum):
    auto = "auto"
    kvm = "kvm"
    none = "none"


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
    accel: Annotated[AccelChoice, typer.Option(
        "--accel", help="Hardware acceleration: kvm runs x86_64 programs natively under KVM; "
                        "auto (the default) picks it for x86_64 programs when /dev/kvm works; "
                        "none emulates.")] = AccelChoice.auto,
) -> None:
    """Run PROGRAM with ARGS under user-mode emulation (x86_64 programs under KVM)."""
    options = Options(engine=engine.value, strace=strace, trace=trace, stats=stats)
    chosen, _why = choose_accel(program, accel.value)
    if chosen == "kvm":
        if trace:
            raise CliError("--trace shows translated blocks, and under KVM nothing is "
                           "translated: leave out --trace or --accel kvm", EXIT_USAGE)
        options.engine = "kvm"
    tune_gc()
    try:
        status = run_program(program, [program, *ctx.args], options=options)
    except AccelMismatch as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
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
