"""Guest memory as compiled code sees it in user mode: host bytes, a guest base address and a
permission byte per page (see ``abi``). ``NativeMemory`` is also a ``vm_ir.Memory`` (``load`` /
``store`` raising ``MemoryFault``), so helpers see the same bytes and permissions as the code.
"""

from __future__ import annotations

import ctypes

from vm_ir import FlatMemory, MemoryFault

from .abi import PAGE_SHIFT, PAGE_SIZE, PERM_READ, PERM_RW, PERM_WRITE, JitContext


class NativeMemory:
    """``size`` bytes of guest memory at guest address ``base``, in a host buffer.

    ``buffer`` is a writable object exposing the buffer protocol (a ``bytearray``, a ctypes
    array, an ``mmap``); the memory uses its bytes in place. Every page starts readable and
    writable; ``protect`` changes that.
    """

    def __init__(self, buffer: object, base: int = 0, size: int | None = None) -> None:
        self._array = (ctypes.c_uint8 * len(memoryview(buffer))).from_buffer(buffer)  # type: ignore[arg-type]
        self.buffer = buffer
        self.base = base
        self.size = len(self._array) if size is None else size
        if self.size > len(self._array):
            raise ValueError(f"{self.size} bytes of guest memory do not fit a buffer of "
                             f"{len(self._array)}")
        self.host = ctypes.addressof(self._array)
        if (self.host - base) % 16:
            raise ValueError("host address minus guest base must be a multiple of 16: "
                             "copy the memory into an aligned buffer (NativeMemory.aligned)")
        pages = (self.size + PAGE_SIZE - 1) >> PAGE_SHIFT
        self.perms = (ctypes.c_uint8 * max(pages, 1))(*([PERM_RW] * pages))

    @classmethod
    def aligned(cls, size: int, base: int = 0) -> NativeMemory:
        """Zeroed memory in a fresh host buffer aligned as the ABI asks."""
        raw = (ctypes.c_uint8 * (size + 16))()
        start = (-(ctypes.addressof(raw) - base)) % 16
        mem = cls(memoryview(raw).cast("B")[start:start + size], base, size)  # type: ignore[arg-type]
        mem._keep = raw  # type: ignore[attr-defined]
        return mem

    @classmethod
    def over_flat(cls, flat: FlatMemory) -> tuple[NativeMemory, bool]:
        """Native memory for a ``FlatMemory``: its own bytes in place when their address
        allows (then ``False``), else a copy that ``copy_back`` writes back (then ``True``)."""
        try:
            return cls(flat.data, flat.base), False
        except ValueError:
            mem = cls.aligned(len(flat.data), flat.base)
            ctypes.memmove(mem.host, bytes(flat.data), len(flat.data))
            return mem, True

    def copy_back(self, flat: FlatMemory) -> None:
        flat.data[:] = ctypes.string_at(self.host, len(flat.data))

    def protect(self, addr: int, size: int, perms: int) -> None:
        """Set the permissions (``PERM_READ | PERM_WRITE``, or 0) of the pages that
        ``[addr, addr + size)`` touches."""
        first = (addr - self.base) >> PAGE_SHIFT
        last = (addr - self.base + size - 1) >> PAGE_SHIFT
        for page in range(max(first, 0), min(last + 1, len(self.perms))):
            self.perms[page] = perms

    def fill_context(self, ctx: JitContext) -> None:
        ctx.mem_host = self.host
        ctx.mem_guest = self.base
        ctx.mem_size = self.size
        ctx.perms = ctypes.addressof(self.perms)

    # -- vm_ir.Memory ---------------------------------------------------------------------------
    def _offset(self, addr: int, size: int, need: int, access: str) -> int:
        off = addr - self.base
        if off < 0 or off + size > self.size:
            raise MemoryFault(addr, size, access)
        for page in {off >> PAGE_SHIFT, (off + size - 1) >> PAGE_SHIFT}:
            if not self.perms[page] & need:
                raise MemoryFault(addr, size, access)
        return off

    def load(self, addr: int, size: int) -> int:
        off = self._offset(addr, size, PERM_READ, "read")
        return int.from_bytes(ctypes.string_at(self.host + off, size), "little")

    def store(self, addr: int, size: int, value: int) -> None:
        off = self._offset(addr, size, PERM_WRITE, "write")
        data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        ctypes.memmove(self.host + off, data, size)


__all__ = ["NativeMemory"]
