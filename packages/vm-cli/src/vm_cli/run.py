"""``vm run PROGRAM [ARGS]...``: run a Linux program of another architecture (qemu-user's job).

The architecture comes from the ELF header. ``--accel kvm`` runs an x86_64 program's code
natively under KVM, with the same Linux user-mode layer (``--accel auto``, the default, does
so for x86_64 programs, the only ones KVM can run, and says why when KVM cannot be used).
The guest's stdin, stdout and stderr are the command's; its exit status is the command's; a
guest killed by a signal kills ``vm`` with the same signal after one line on stderr (as the
kernel would report it).
"""

from __future__ import annotations

import argparse
import gc

from vm_runtime.linux import AccelMismatch, Options, choose_accel, run_program

from .errors import EXIT_USAGE, CliError

ENGINES = ("interp", "jit", "auto")
ACCELS = ("auto", "kvm", "none")


def register(parser: argparse.ArgumentParser) -> None:
    """`vm run`'s arguments (PROGRAM, ARGS and the options before them) and handler."""
    parser.description = ("Run PROGRAM with ARGS under user-mode emulation (x86_64 programs "
                          "under KVM). Everything after PROGRAM is the guest's.")
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="Execution engine (default: auto).")
    parser.add_argument("--stats", action="store_true", help="Print execution statistics.")
    parser.add_argument("--trace", action="store_true", help="Print each translated block.")
    parser.add_argument("--strace", action="store_true", help="Print each syscall.")
    parser.add_argument(
        "--accel", choices=ACCELS, default="auto",
        help="Hardware acceleration: kvm runs x86_64 programs natively under KVM; auto (the "
             "default) picks it for x86_64 programs when /dev/kvm works; none emulates.")
    parser.add_argument("program", metavar="PROGRAM",
                        help="The guest program (a static Linux ELF).")
    guest_args = parser.add_argument("args", metavar="ARGS", nargs=argparse.REMAINDER,
                                     help="The guest's arguments.")
    guest_args.required = False  # argparse counts "the rest" as required, and it may be empty
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """``vm run``: the guest's exit status."""
    options = Options(engine=args.engine, strace=args.strace, trace=args.trace,
                      stats=args.stats)
    chosen, _why = choose_accel(args.program, args.accel)
    if chosen == "kvm":
        if args.trace:
            raise CliError("--trace shows translated blocks, and under KVM nothing is "
                           "translated: leave out --trace or --accel kvm", EXIT_USAGE)
        options.engine = "kvm"
    tune_gc()
    try:
        return run_program(args.program, [args.program, *args.args], options=options)
    except AccelMismatch as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def tune_gc() -> None:
    """Garbage collection for a long run that makes many long-lived objects.

    Translated code is tens of thousands of small objects that live to the end (lifted IR,
    compiled blocks), and the collector's default thresholds re-scan them over and over:
    that was 13% of a short guest's run. What is alive now (modules, the CLI) is frozen out
    of collection, and young objects are collected 30 times less often (as since the first
    import: ``vm_cli/__init__.py``).
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
