"""Linux user-mode emulation: run a static Linux ELF program of a guest architecture.

    from vm_runtime.linux import run_program
    status = run_program("prog-riscv64", ["prog-riscv64", "arg"])

One syscall layer serves every architecture; per-architecture facts (syscall numbers, struct
layouts, the signal frame) live in ``arch/``.
"""

from __future__ import annotations

import os

from .loader import ElfInfo, LoadError, inspect_elf
from .process import Options, Process


def run_program(path: str, argv: list[str] | None = None, env: dict[str, str] | None = None,
                options: Options | None = None) -> int:
    """Load and run ``path``; give its exit status (a death by signal does not return: the
    host process dies by the same signal, as the guest would)."""
    from .arch import arch_named

    info = inspect_elf(path)
    options = options or Options()
    check_engine(info, options.engine)
    try:
        arch = arch_named(info.arch)
    except KeyError:
        raise LoadError(path, f"{info.arch} programs are not supported yet",
                        "run a riscv64 program, or an x86_64 program with --accel kvm") from None
    process = Process(arch, options)
    argv = argv if argv is not None else [path]
    if options.argv0 is not None:
        argv = [options.argv0, *argv[1:]]
    environ = env if env is not None else dict(os.environ)
    envp = [f"{k}={v}".encode() for k, v in environ.items() if k != "VM_GUEST_ENV_KEYS"]
    thread = process.load(info, [os.fsencode(a) for a in argv], envp)
    status = process.run(thread)
    if options.stats:
        process.print_stats()
    return status


class AccelMismatch(LoadError):
    """The program's architecture and the chosen accelerator do not go together."""


def check_engine(info: ElfInfo, engine: str) -> None:
    """Refuse, with the reason, a program the chosen engine cannot run: KVM runs x86_64
    programs only, and x86_64 programs run only under KVM (there is no x86 emulator)."""
    if engine == "kvm" and info.arch != "x86_64":
        raise AccelMismatch(info.path, f"KVM runs x86_64 programs only, and this is a "
                                       f"{info.arch} program",
                            "run it without --accel kvm (or with --accel auto)")
    if info.arch == "x86_64" and engine != "kvm":
        raise LoadError(info.path, "x86_64 programs run only under KVM (there is no x86 "
                                   "emulator)", "run it with --accel kvm (or --accel auto)")


def choose_accel(path: str, accel: str) -> tuple[str | None, str]:
    """``--accel``: 'kvm', 'none' or 'auto' for the program at ``path``. Gives ('kvm' or
    None, why): auto picks KVM for an x86_64 program when /dev/kvm works, and says why not
    otherwise; the emulator runs everything else."""
    if accel == "none":
        return None, "no accelerator asked for"
    if accel == "kvm":
        return "kvm", "asked for"
    info = inspect_elf(path)
    if info.arch != "x86_64":
        return None, f"KVM runs x86_64 programs only, and this is a {info.arch} program"
    from .kvm import probe_reason

    reason = probe_reason()
    if reason is not None:
        raise LoadError(path, f"x86_64 programs need KVM, and KVM cannot be used here: "
                              f"{reason}", "run it on a Linux host with a usable /dev/kvm")
    return "kvm", "an x86_64 program and a usable /dev/kvm"


__all__ = ["AccelMismatch", "LoadError", "Options", "Process", "check_engine", "choose_accel",
           "inspect_elf", "run_program"]
