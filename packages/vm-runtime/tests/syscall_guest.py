"""A riscv64 guest thread whose syscalls the tests make through the dispatcher, the way the
guest would (a7 = number, a0..a5 = arguments, a0 = result), with a mapped buffer at ``BUF``.

Imported by the syscall tests (``sys.path`` holds this directory: see them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from vm_runtime.linux.arch import arch_named
from vm_runtime.linux.memory import PROT_READ, PROT_WRITE
from vm_runtime.linux.process import Process
from vm_runtime.linux.syscalls.numbers import numbers_by_name

M64 = (1 << 64) - 1
BUF = 0x100000  # a mapped, writable guest area of BUF_SIZE bytes
BUF_SIZE = 0x20000


@dataclass
class Guest:
    p: Any
    t: Any

    def call(self, name: str, *args: int) -> int:
        """Run syscall ``name`` as the guest would; give a0 as a signed number."""
        state = self.t.state
        state.x[17] = numbers_by_name(self.p.numbers)[name]
        for i, a in enumerate(args):
            state.x[10 + i] = a & M64
        state.pc = 0x1000
        self.p.syscall(self.t)
        v = state.x[10]
        return v - (1 << 64) if v >> 63 else v

    def put(self, offset: int, data: bytes) -> int:
        self.p.mem.write(BUF + offset, data)
        return BUF + offset

    def cstr(self, offset: int, text: str | bytes) -> int:
        raw = text if isinstance(text, bytes) else os.fsencode(text)
        return self.put(offset, raw + b"\0")

    def get(self, offset: int, length: int) -> bytes:
        return self.p.mem.read(BUF + offset, length)

    def close(self) -> None:
        self.p.mem.close()


def make_guest() -> Guest:
    """A riscv64 process with ``BUF`` mapped and one thread."""
    p = Process(arch_named("riscv64"))
    p.mem.map(BUF, BUF_SIZE, PROT_READ | PROT_WRITE)
    p.exe = "/opt/guest/program"
    t = p.new_thread(p.state_class(), p.pid)
    p.threads[t.tid] = t
    return Guest(p, t)
