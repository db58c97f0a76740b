"""One Linux syscall layer for every architecture.

Implementations are registered by name with ``@syscall("name", *arg_kinds)`` and receive the
process, the calling thread and the raw argument registers; they return the result (a
negative errno for failure, or raise ``Errno``). Each architecture maps its numbers to names
(``numbers.py``) and brings its own struct layouts (``..abi``). An unknown syscall returns
-ENOSYS and is reported once on stderr with its name and number.

Argument kinds drive ``--strace`` output: ``fd``, ``int``, ``hex``, ``ptr``, ``str`` (a guest
C string), ``buf`` (a byte buffer whose length is the next argument), ``size``, ``flags``,
``sig``.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Callable
from dataclasses import dataclass


class Errno(Exception):
    """Raised by a syscall implementation to return ``-code``."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(_errno.errorcode.get(code, str(code)))


@dataclass(frozen=True)
class SyscallDef:
    name: str
    fn: Callable[..., int]
    args: tuple[str, ...]
    ret: str = "int"


REGISTRY: dict[str, SyscallDef] = {}


def syscall(name: str, *args: str, ret: str = "int") -> Callable[[Callable[..., int]], Callable[..., int]]:
    def register(fn: Callable[..., int]) -> Callable[..., int]:
        if name in REGISTRY:
            raise ValueError(f"syscall {name} registered twice")
        REGISTRY[name] = SyscallDef(name, fn, args, ret)
        return fn

    return register


def load_all() -> None:
    """Import every module that registers syscalls."""
    from . import fd, fs, mm, net, poll, proc, signals, time, x86  # noqa: F401


__all__ = ["REGISTRY", "Errno", "SyscallDef", "load_all", "syscall"]
