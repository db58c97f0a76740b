"""``--strace``: each syscall printed as strace prints it, ``name(args) = result``, with flag
arguments decoded (``O_RDONLY|O_CLOEXEC``, ``PROT_READ|PROT_WRITE``), strings quoted and cut
at 32 characters, output buffers shown after the call, and failures as
``-1 ENOENT (No such file or directory)``.

Argument kinds (the strings given to ``@syscall``): ``fd``, ``int``, ``hex``, ``ptr``,
``size``, ``oct`` (a mode), ``str`` (a C string), ``buf`` (bytes the call reads; their count
is the next argument), ``obuf`` (bytes the call writes; their count is the result), ``sig``,
``oflags``, ``atflags``, ``prot``, ``mmap_flags``, ``fcntl_cmd``, ``ioctl_req``, ``whence``.
"""

from __future__ import annotations

import errno as _errno
import os

from .syscalls import SyscallDef
from .syscalls.util import s32 as _s32

_MAX_STR = 32
M64 = (1 << 64) - 1

_ESCAPES = {0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r", 0x0B: "\\v", 0x0C: "\\f", 0x22: '\\"',
            0x5C: "\\\\"}


def quote(data: bytes, limit: int = _MAX_STR) -> str:
    """A byte string as strace shows it: C escapes, octal for the rest, ``...`` when cut."""
    out = []
    shown = data[:limit]
    for i, b in enumerate(shown):
        if b in _ESCAPES:
            out.append(_ESCAPES[b])
        elif 32 <= b < 127:
            out.append(chr(b))
        else:
            # a digit after an octal escape would be read as part of it: then use three digits
            nxt = shown[i + 1] if i + 1 < len(shown) else None
            out.append(f"\\{b:03o}" if nxt is not None and 0x30 <= nxt <= 0x37 else f"\\{b:o}")
    return '"' + "".join(out) + '"' + ("..." if len(data) > limit else "")


def _signed(v: int) -> int:
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def flags(value: int, names: list[tuple[int, str]], zero: str = "0") -> str:
    """``value`` as NAME|NAME|0x..., with the bits no name covers in hex at the end."""
    if value == 0:
        return zero
    parts = []
    rest = value
    for bit, name in names:
        if bit and rest & bit == bit:
            parts.append(name)
            rest &= ~bit
    if rest:
        parts.append(hex(rest))
    return "|".join(parts)


# -- flag tables (values of riscv64, x86_64 and aarch64 unless the arch says otherwise) ----------------
_O_COMMON = [(0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"),
             (0o2000, "O_APPEND"), (0o4000, "O_NONBLOCK"), (0o4010000, "O_SYNC"),
             (0o10000, "O_DSYNC"), (0o20000, "O_ASYNC"), (0o1000000, "O_NOATIME"),
             (0o2000000, "O_CLOEXEC"), (0o10000000, "O_PATH"), (0o20200000, "O_TMPFILE")]


def _o_names(arch: str) -> list[tuple[int, str]]:
    from .syscalls.util import o_table

    table = o_table(arch)
    return _O_COMMON + [(table[n], n) for n in ("O_DIRECTORY", "O_NOFOLLOW", "O_DIRECT",
                                                 "O_LARGEFILE")]


def open_flags(value: int, arch: str = "riscv64") -> str:
    value &= 0xFFFFFFFF
    mode = ("O_RDONLY", "O_WRONLY", "O_RDWR", "0x3")[value & 3]
    rest = flags(value & ~3, _o_names(arch), zero="")
    return mode + ("|" + rest if rest else "")


AT_FLAGS = [(0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
            (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH"), (0x2000, "AT_STATX_FORCE_SYNC"),
            (0x4000, "AT_STATX_DONT_SYNC"), (0x8000, "AT_RECURSIVE")]
PROT = [(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC"), (0x1000000, "PROT_GROWSDOWN"),
        (0x2000000, "PROT_GROWSUP")]
MAP = [(0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"), (0x100, "MAP_GROWSDOWN"),
       (0x800, "MAP_DENYWRITE"), (0x1000, "MAP_EXECUTABLE"), (0x2000, "MAP_LOCKED"),
       (0x4000, "MAP_NORESERVE"), (0x8000, "MAP_POPULATE"), (0x10000, "MAP_NONBLOCK"),
       (0x20000, "MAP_STACK"), (0x40000, "MAP_HUGETLB"), (0x80000, "MAP_SYNC"),
       (0x100000, "MAP_FIXED_NOREPLACE")]
MAP_TYPES = {1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}
FCNTL = {0: "F_DUPFD", 1: "F_GETFD", 2: "F_SETFD", 3: "F_GETFL", 4: "F_SETFL", 5: "F_GETLK",
         6: "F_SETLK", 7: "F_SETLKW", 8: "F_SETOWN", 9: "F_GETOWN", 10: "F_SETSIG",
         11: "F_GETSIG", 15: "F_SETOWN_EX", 16: "F_GETOWN_EX", 36: "F_OFD_GETLK",
         37: "F_OFD_SETLK", 38: "F_OFD_SETLKW", 1024: "F_SETLEASE", 1025: "F_GETLEASE",
         1026: "F_NOTIFY", 1030: "F_DUPFD_CLOEXEC", 1031: "F_SETPIPE_SZ", 1032: "F_GETPIPE_SZ",
         1033: "F_ADD_SEALS", 1034: "F_GET_SEALS"}
IOCTL = {0x5401: "TCGETS", 0x5402: "TCSETS", 0x5403: "TCSETSW", 0x5404: "TCSETSF",
         0x5409: "TCSBRK", 0x540A: "TCXONC", 0x540B: "TCFLSH", 0x540E: "TIOCSCTTY",
         0x540F: "TIOCGPGRP", 0x5410: "TIOCSPGRP", 0x5411: "TIOCOUTQ", 0x5412: "TIOCSTI",
         0x5413: "TIOCGWINSZ", 0x5414: "TIOCSWINSZ", 0x541B: "FIONREAD", 0x5421: "FIONBIO",
         0x5422: "TIOCNOTTY", 0x5429: "TIOCGSID", 0x5450: "FIONCLEX", 0x5451: "FIOCLEX",
         0x5452: "FIOASYNC", 0x802C542A: "TCGETS2", 0x402C542B: "TCSETS2",
         0x402C542C: "TCSETSW2", 0x402C542D: "TCSETSF2", 0x80045430: "TIOCGPTN",
         0x40045431: "TIOCSPTLCK", 0x5441: "TIOCGPTPEER"}
WHENCE = {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"}


def _mmap_flags(value: int) -> str:
    value &= 0xFFFFFFFF
    kind = MAP_TYPES.get(value & 0xF, hex(value & 0xF))
    rest = flags(value & ~0xF, MAP, zero="")
    return kind + ("|" + rest if rest else "")


def _arg(p, kind: str, value: int, nxt: int | None, result: int) -> str:
    if kind == "fd":
        v = _s32(value)
        return "AT_FDCWD" if v == -100 else str(v)
    if kind == "str":
        try:
            return quote(p.mem.read_cstring(value, 4096))
        except Exception:
            return hex(value)
    if kind in ("buf", "obuf"):
        count = nxt if kind == "buf" else result
        if count is None or count < 0 or (kind == "obuf" and result < 0):
            return hex(value) if value else "NULL"
        try:
            return quote(p.mem.read(value, min(count, _MAX_STR + 1)),
                         limit=min(count, _MAX_STR))
        except Exception:
            return hex(value)
    if kind == "ptr":
        return "NULL" if value == 0 else hex(value)
    if kind == "hex":
        return hex(value)
    if kind == "oct":
        return f"0{value & 0o7777777:o}" if value else "000"
    if kind == "sig":
        from .signals import name

        return name(value) if 0 < value <= 64 else str(value)
    if kind == "oflags":
        return open_flags(value, p.arch.name)
    if kind == "atflags":
        return flags(value & 0xFFFFFFFF, AT_FLAGS)
    if kind == "prot":
        return flags(value & 0xFFFFFFFF, PROT, zero="PROT_NONE")
    if kind == "mmap_flags":
        return _mmap_flags(value)
    if kind == "fcntl_cmd":
        return FCNTL.get(value & 0xFFFFFFFF, str(value))
    if kind == "ioctl_req":
        return IOCTL.get(value & 0xFFFFFFFF, hex(value & 0xFFFFFFFF))
    if kind == "whence":
        return WHENCE.get(value & 0xFFFFFFFF, str(value))
    if kind == "size":
        return str(value & M64)
    return str(_signed(value))


def format_result(result: int, ret: str = "int") -> str:
    r = _signed(result)
    if -4096 < r < 0:
        code = -r
        name = _errno.errorcode.get(code, str(code))
        return f"-1 {name} ({os.strerror(code)})"
    if ret == "hex":
        return hex(r & M64)
    return str(r)


def format_call(p, definition: SyscallDef, args: tuple[int, ...], result: int) -> str:
    kinds = definition.args
    if definition.name in ("open", "openat") and not args[kinds.index("oflags")] & 0o20000100:
        kinds = kinds[:-1]  # neither O_CREAT nor O_TMPFILE: strace leaves the mode out
    r = _signed(result)
    parts = []
    for i, kind in enumerate(kinds):
        nxt = args[i + 1] if i + 1 < len(args) else None
        parts.append(_arg(p, kind, args[i], nxt, r))
    return f"{definition.name}({', '.join(parts)}) = {format_result(result, definition.ret)}"


__all__ = ["flags", "format_call", "format_result", "open_flags", "quote"]
