"""Linux user-mode emulation: run a static Linux ELF program of a guest architecture.

    from vm_runtime.linux import run_program
    status = run_program("prog-riscv64", ["prog-riscv64", "arg"])

One syscall layer serves every architecture; per-architecture facts (syscall numbers, struct
layouts, the signal frame) live in ``arch/``.
"""

from __future__ import annotations

import os

from .loader import LoadError, inspect_elf
from .process import Options, Process


def run_program(path: str, argv: list[str] | None = None, env: dict[str, str] | None = None,
                options: Options | None = None) -> int:
    """Load and run ``path``; give its exit status (a death by signal does not return: the
    host process dies by the same signal, as the guest would)."""
    from .arch import arch_named

    info = inspect_elf(path)
    try:
        arch = arch_named(info.arch)
    except KeyError:
        raise LoadError(path, f"{info.arch} programs are not supported yet",
                        "run a riscv64 program") from None
    options = options or Options()
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


__all__ = ["LoadError", "Options", "Process", "inspect_elf", "run_program"]
