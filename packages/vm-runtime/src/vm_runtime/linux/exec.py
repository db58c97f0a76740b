"""execve of another guest program: the emulator replaces itself with a fresh emulator for the
new program (so the kernel closes close-on-exec descriptors and resets signal handling)."""

from __future__ import annotations

import os
import sys

from .loader import LoadError, inspect_elf
from .syscalls import Errno

ENOENT, EACCES, ENOEXEC, ELOOP = 2, 13, 8, 40


def resolve(path: bytes) -> tuple[str, list[bytes]]:
    """The ELF file to run for ``path`` and the interpreter arguments a #! line adds."""
    prefix: list[bytes] = []
    for _ in range(4):
        name = os.fsdecode(path)
        if not os.path.exists(name):
            raise Errno(ENOENT)
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise Errno(EACCES)
        with open(name, "rb") as f:
            head = f.read(256)
        if head.startswith(b"#!"):
            line = head[2:].split(b"\n", 1)[0].strip()
            interp, _, arg = line.partition(b" ")
            prefix = [interp] + ([arg.strip()] if arg.strip() else []) + [path] + prefix
            path = interp
            continue
        return name, prefix
    raise Errno(ELOOP)


def execve(p, path: bytes, argv: list[bytes], envp: list[bytes]) -> None:
    """Replace this process with the guest program ``path``; raises ``Errno`` on failure."""
    target, prefix = resolve(path)
    try:
        info = inspect_elf(target)
    except LoadError:
        raise Errno(ENOEXEC) from None
    if info.arch != p.arch.name:
        raise Errno(ENOEXEC)
    if prefix:
        argv = prefix + argv[1:]
        argv0 = prefix[0]
    else:
        argv0 = argv[0] if argv else path
    args = [sys.executable, "-I", "-m", "vm_runtime.linux", "--engine", p.options.engine]
    if p.options.strace:
        args.append("--strace")
    args += ["--argv0", os.fsdecode(argv0), "--", target, *[os.fsdecode(a) for a in argv[1:]]]
    env = {}
    for item in envp:
        key, sep, value = item.partition(b"=")
        if sep:
            env[os.fsdecode(key)] = os.fsdecode(value)
    env["VM_GUEST_ENV_KEYS"] = ""  # marks an exec'd emulator (no effect on the guest)
    os.execve(sys.executable, args, env)
