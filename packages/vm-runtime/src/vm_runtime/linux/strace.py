"""``--strace``: each syscall printed as strace prints it: name(args) = result."""

from __future__ import annotations

import errno as _errno

from .syscalls import SyscallDef

_MAX_STR = 32


def _quote(data: bytes) -> str:
    out = []
    for b in data[:_MAX_STR]:
        c = chr(b)
        if c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append(f"\\{b:o}")
    text = '"' + "".join(out) + '"'
    return text + ("..." if len(data) > _MAX_STR else "")


def _signed(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _arg(p, kind: str, value: int, nxt: int | None) -> str:
    if kind == "fd":
        v = value & 0xFFFFFFFF
        v = v - (1 << 32) if v >> 31 else v
        return "AT_FDCWD" if v == -100 else str(v)
    if kind == "str":
        try:
            return _quote(p.mem.read_cstring(value, 4096))
        except Exception:
            return hex(value)
    if kind == "buf" and nxt is not None:
        try:
            return _quote(p.mem.read(value, min(nxt, _MAX_STR + 1)))
        except Exception:
            return hex(value)
    if kind in ("ptr", "hex", "prot", "mmap_flags", "oflags"):
        return "NULL" if value == 0 and kind == "ptr" else hex(value)
    if kind == "oct":
        return oct(value)
    if kind == "sig":
        from .signals import name

        return name(value) if 0 < value <= 64 else str(value)
    return str(_signed(value))


def format_call(p, definition: SyscallDef, args: tuple[int, ...], result: int) -> str:
    kinds = definition.args
    parts = []
    for i, kind in enumerate(kinds):
        nxt = args[i + 1] if i + 1 < len(args) else None
        parts.append(_arg(p, kind, args[i], nxt))
    r = _signed(result) if result >= 0 else result
    if -4096 < r < 0:
        code = -r
        ret = f"-1 {_errno.errorcode.get(code, code)} ({__import__('os').strerror(code)})"
    elif definition.ret == "hex":
        ret = hex(r & ((1 << 64) - 1))
    else:
        ret = str(r)
    return f"{definition.name}({', '.join(parts)}) = {ret}"
