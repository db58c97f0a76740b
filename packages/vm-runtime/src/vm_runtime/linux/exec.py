"""execve: the emulator replaces itself, as the kernel replaces a process image.

- A guest program (an ELF file of the guest's architecture, possibly reached through ``#!``
  lines) runs in a fresh emulator: ``python -I -m vm_runtime.linux ... -- PROGRAM ARGS``
  exec'd in place of this one, so the pid, the open descriptors (those without
  close-on-exec), the working directory, the interval timers and the parent stay. The
  guest's signal mask and its ignored signals travel on the command line; handled signals
  go back to their default, as the kernel does.
- A program of the host's own architecture runs natively (what qemu-user does, where the
  host kernel runs whatever it is given), with the guest's signal mask and ignored signals.
- Anything else fails as the kernel fails: ENOENT, ENOTDIR, EACCES, ENOEXEC, ELOOP.
"""

from __future__ import annotations

import errno as _errno
import os
import stat
import sys

from . import signals as sig
from .loader import LoadError, inspect_elf
from .syscalls import Errno

ENOENT, EACCES, ENOEXEC, ELOOP = 2, 13, 8, 40
BINPRM_BUF_SIZE = 256
MAX_INTERPRETER_DEPTH = 4  # binfmt_script nesting the kernel allows (5 loaders in all)
_HOST_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64",
                  "arm64": "aarch64", "riscv64": "riscv64"}


def _check_file(name: str) -> None:
    try:
        st = os.stat(name)
    except OSError as e:
        raise Errno(e.errno or ENOENT) from None
    if not stat.S_ISREG(st.st_mode) or not os.access(name, os.X_OK):
        raise Errno(EACCES)


def resolve(path: bytes) -> tuple[str, list[bytes]]:
    """The binary to run for ``path`` and the arguments ``#!`` lines put before the script
    (binfmt_script: the interpreter, its one optional argument, then the script's path)."""
    prefix: list[bytes] = []
    for _ in range(MAX_INTERPRETER_DEPTH + 1):
        if not path:
            raise Errno(ENOENT)
        name = os.fsdecode(path)
        _check_file(name)
        try:
            with open(name, "rb") as f:
                head = f.read(BINPRM_BUF_SIZE)
        except OSError as e:
            raise Errno(e.errno or EACCES) from None
        if not head.startswith(b"#!"):
            return name, prefix
        interp, arg = parse_shebang(head)
        # the script's own argv[0] gives way to interpreter, argument and script path
        prefix = [interp] + ([arg] if arg else []) + [path] + prefix[1:]
        path = interp
    raise Errno(ELOOP)


def parse_shebang(head: bytes) -> tuple[bytes, bytes]:
    """The interpreter and its optional argument in a ``#!`` line (binfmt_script's parser:
    the line may be cut at the buffer's end, but not inside the interpreter's name)."""
    buf = head[:BINPRM_BUF_SIZE]
    end = buf.find(b"\n")
    if end < 0:
        end = len(buf)
        if len(buf) == BINPRM_BUF_SIZE:
            end -= 1
            rest = buf[2:end].lstrip(b" \t")
            if not rest or not any(c in rest for c in (32, 9, 0)):
                raise Errno(ENOEXEC)  # the interpreter's name may be cut short
    line = buf[2:end].rstrip(b" \t").lstrip(b" \t")
    cut = min((i for i in (line.find(b" "), line.find(b"\t"), line.find(b"\0")) if i >= 0),
              default=len(line))
    interp = line[:cut]
    if not interp:
        raise Errno(ENOEXEC)
    arg = b""
    if cut < len(line) and line[cut] != 0:
        arg = line[cut:].lstrip(b" \t").split(b"\0", 1)[0]
    return interp, arg


def execve(p, t, path: bytes, argv: list[bytes], envp: list[bytes]) -> None:
    """Replace this process with the program ``path``; raises ``Errno`` on failure."""
    target, prefix = resolve(path)
    if prefix:
        argv = prefix + argv[1:]
    machine = elf_machine(target)
    ignored = sum(sig.bit(s) for s in range(1, sig.NSIG + 1)
                  if p.sigactions[s].handler == sig.SIG_IGN)
    mask = t.signals.mask
    if machine == p.arch.name:
        try:
            inspect_elf(target)
        except (LoadError, OSError):
            raise Errno(ENOEXEC) from None
        _exec_emulator(p, target, argv, envp, mask, ignored, path)
    elif machine is not None and machine == _HOST_MACHINES.get(os.uname().machine.lower()):
        _exec_native(os.fsencode(target), argv, envp, mask, ignored)
    raise Errno(ENOEXEC)


_EM = {0x3E: "x86_64", 0xB7: "aarch64", 0xF3: "riscv64"}


def elf_machine(path: str) -> str | None:
    """The architecture of a 64-bit ELF file (None: not one we know)."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] != 2:
        return None
    order = "little" if head[5] == 1 else "big"
    return _EM.get(int.from_bytes(head[18:20], order))


def _exec_emulator(p, target: str, argv: list[bytes], envp: list[bytes], mask: int,
                   ignored: int, path: bytes) -> None:
    argv0 = argv[0] if argv else path
    args = [sys.executable, "-I", "-m", "vm_runtime.linux", "--engine", p.options.engine,
            "--sigmask", hex(mask), "--sigign", hex(ignored)]
    if p.options.strace:
        args.append("--strace")
    if p.options.stats:
        args.append("--stats")
    args += ["--argv0", os.fsdecode(argv0), "--", target, *[os.fsdecode(a) for a in argv[1:]]]
    env = _environment(envp)
    env[b"VM_GUEST_ENV_KEYS"] = b""  # marks an exec'd emulator (no effect on the guest)
    _do_exec(sys.executable, args, env)


def _exec_native(target: bytes, argv: list[bytes], envp: list[bytes], mask: int,
                 ignored: int) -> None:
    from .hostsig import prepare_native_exec

    undo = prepare_native_exec(mask, ignored)
    try:
        _do_exec(target, argv or [target], _environment(envp))
    finally:
        undo()


def _environment(envp: list[bytes]) -> dict[bytes, bytes]:
    env: dict[bytes, bytes] = {}
    for item in envp:
        key, sep, value = item.partition(b"=")
        if sep and key:
            env[key] = value
    return env


def _do_exec(program, args, env) -> None:
    try:
        os.execve(program, args, env)
    except OSError as e:
        raise Errno(e.errno or _errno.ENOEXEC) from None
