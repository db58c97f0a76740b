"""A Linux process's address space for user-mode emulation.

The whole guest user address range is one private, never-reserved host mapping
(``MAP_PRIVATE | MAP_NORESERVE``): guest address ``a`` is host byte ``base + a``, so the
engines and the JIT use the bytes by pointer, and ``fork`` gives the child a copy-on-write
copy for free. What the guest may touch is a permission byte per 4 KiB page (R, W, X), which
every access checks; a refused access raises vm-core's ``UnmappedAccess`` or
``PermissionFault`` and changes nothing. Pages holding translated code carry a CODE bit, so a
store to them first tells the engine (self-modifying code, JITs in the guest).
"""

from __future__ import annotations

import ctypes
import mmap
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vm_core import PermissionFault, UnmappedAccess

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAPPED = 8  # the page is mapped (even with PROT_NONE)
CODE = 16  # translations of this page's code exist
_MAP_NORESERVE = 0x4000
_CODE_ONLY = bytes(b & CODE for b in range(256))
_WITHOUT_CODE = bytes(b & ~CODE for b in range(256))

_UNPACK = {1: struct.Struct("<B").unpack_from, 2: struct.Struct("<H").unpack_from,
           4: struct.Struct("<I").unpack_from, 8: struct.Struct("<Q").unpack_from}
_PACK = {1: struct.Struct("<B").pack_into, 2: struct.Struct("<H").pack_into,
         4: struct.Struct("<I").pack_into, 8: struct.Struct("<Q").pack_into}


def page_align_up(n: int) -> int:
    return (n + PAGE_MASK) & ~PAGE_MASK


@dataclass
class Mapping:
    """One entry of /proc/self/maps, as the guest sees it."""

    start: int
    end: int
    prot: int
    name: str = ""


class AddressSpace:
    """``size`` bytes of guest address space starting at guest address 0."""

    def __init__(self, size: int = 1 << 38) -> None:
        self.size = size
        self.mm = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.mm))
        # one byte per page, zero until mapped: an anonymous mapping, so that the pages of
        # the table that are never touched cost nothing (a bytearray is zeroed up front:
        # 25 ms for 64 MiB at every start)
        self.perms = mmap.mmap(-1, size >> PAGE_SHIFT,
                               flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE)
        self.names: dict[int, str] = {}  # first page of a mapping -> its name, for maps
        #: called with (addr, length) before a store lands on a page with translated code
        self.on_code_write: Callable[[int, int], None] | None = None
        #: called with (addr, length) after the permissions of a range changed (map, unmap,
        #: protect): an accelerator keeps its page tables in step
        self.on_prot_change: Callable[[int, int], None] | None = None
        self._direct: dict[str, Any] | None = None

    # -- the map ---------------------------------------------------------------------------------
    def is_free(self, addr: int, length: int) -> bool:
        first, last = addr >> PAGE_SHIFT, (addr + length - 1) >> PAGE_SHIFT
        if addr < 0 or addr + length > self.size:
            return False
        window = self.perms[first:last + 1]
        return window.count(0) == len(window)

    def find_free(self, length: int, below: int, above: int = 0x10000) -> int | None:
        """The highest free, page-aligned range of ``length`` bytes ending at or below
        ``below`` and starting at or above ``above`` (mmap's top-down placement)."""
        npages = page_align_up(length) >> PAGE_SHIFT
        perms = self.perms
        end = min(below, self.size) >> PAGE_SHIFT
        floor = above >> PAGE_SHIFT
        while end - npages >= floor:
            window = perms[end - npages:end]
            if window.count(0) == npages:
                return (end - npages) << PAGE_SHIFT
            # continue below the lowest used page in the window
            used = len(window) - len(window.lstrip(b"\0"))
            end = end - npages + used
        return None

    def map(self, addr: int, length: int, prot: int, name: str = "") -> None:
        """Map [addr, addr+length) zero-filled with ``prot``, replacing what was there."""
        length = page_align_up(length)
        self._check_range(addr, length)
        self.zero(addr, length)
        first, n = addr >> PAGE_SHIFT, length >> PAGE_SHIFT
        self.perms[first:first + n] = bytes([MAPPED | (prot & 7)]) * n
        self.names[first] = name
        self._code_changed(addr, length)
        if self.on_prot_change is not None:
            self.on_prot_change(addr, length)

    def unmap(self, addr: int, length: int) -> None:
        length = page_align_up(length)
        self._check_range(addr, length)
        first, n = addr >> PAGE_SHIFT, length >> PAGE_SHIFT
        self._code_changed(addr, length)
        self.perms[first:first + n] = bytes(n)
        self.zero(addr, length)
        for page in [p for p in self.names if first <= p < first + n]:
            del self.names[page]
        if self.on_prot_change is not None:
            self.on_prot_change(addr, length)

    def protect(self, addr: int, length: int, prot: int) -> bool:
        """Change permissions; False (ENOMEM) when part of the range is not mapped."""
        length = page_align_up(length)
        self._check_range(addr, length)
        first, n = addr >> PAGE_SHIFT, length >> PAGE_SHIFT
        window = self.perms[first:first + n]
        if not all(b & MAPPED for b in window):
            return False
        self._code_changed(addr, length)
        self.perms[first:first + n] = bytes([MAPPED | (prot & 7)]) * n
        if self.on_prot_change is not None:
            self.on_prot_change(addr, length)
        return True

    def zero(self, addr: int, length: int) -> None:
        """Give the pages back to the host; they read as zero afterwards."""
        if length:
            self.mm.madvise(mmap.MADV_DONTNEED, addr, length)

    def is_mapped(self, addr: int, length: int) -> bool:
        first, last = addr >> PAGE_SHIFT, (addr + length - 1) >> PAGE_SHIFT
        return all(b & MAPPED for b in self.perms[first:last + 1])

    def prot_at(self, addr: int) -> int:
        return self.perms[addr >> PAGE_SHIFT] & 7

    def mappings(self) -> list[Mapping]:
        """The mapped ranges, merged where permissions and names agree."""
        out: list[Mapping] = []
        perms = self.perms
        i = 0
        n = len(perms)
        while i < n:
            # skip runs of zero quickly
            j = _next_nonzero(perms, i)
            if j < 0:
                break
            prot = perms[j] & 7
            k = j
            name = self.names.get(j, "")
            while k < n and perms[k] and (perms[k] & 7) == prot and (k == j or k not in self.names):
                k += 1
            out.append(Mapping(j << PAGE_SHIFT, k << PAGE_SHIFT, prot, name))
            i = k
        return out

    def _check_range(self, addr: int, length: int) -> None:
        if addr & PAGE_MASK or addr < 0 or addr + length > self.size:
            raise ValueError(f"bad range {addr:#x}+{length:#x}")

    def _code_changed(self, addr: int, length: int) -> None:
        first, last = addr >> PAGE_SHIFT, (addr + length - 1) >> PAGE_SHIFT
        window = self.perms[first:last + 1]
        if window.translate(_CODE_ONLY).count(0) != len(window):
            self.perms[first:last + 1] = window.translate(_WITHOUT_CODE)
            if self.on_code_write is not None:
                self.on_code_write(addr, length)

    def mark_code(self, addr: int, length: int) -> None:
        """Translations now exist for code in [addr, addr+length)."""
        for p in range(addr >> PAGE_SHIFT, ((addr + max(length, 1) - 1) >> PAGE_SHIFT) + 1):
            self.perms[p] |= CODE

    # -- guest accesses (the engines' hot path) ----------------------------------------------------
    def direct_access(self) -> dict[str, Any] | None:
        """What an engine needs to access guest memory inline, without calling ``load`` and
        ``store``: the permission byte of each page (``perms``), typed little-endian views of
        all the bytes (``views["u64"][a >> 3]`` is the aligned 8-byte word at ``a``; also
        u8/u16/u32 and signed s8..s64), and the bits to test. A load of page ``p`` may go
        direct when ``perms[p] & read``; a store when ``perms[p] & write_mask == write_ok``
        (a page with translated code fails this, so its stores still come here and
        invalidate). Anything else (unaligned, refused, beyond ``perms``) must call
        ``load``/``store``, which fault exactly. None on a big-endian host."""
        if sys.byteorder != "little":
            return None
        if self._direct is None:
            raw = memoryview(self.mm)
            views = {f"{kind}{8 * size}": raw.cast(code.upper() if kind == "u" else code)
                     for size, code in ((1, "b"), (2, "h"), (4, "i"), (8, "q"))
                     for kind in ("u", "s")}
            self._direct = {"perms": self.perms, "views": views, "read": PROT_READ,
                            "write_mask": PROT_WRITE | CODE, "write_ok": PROT_WRITE,
                            "page_shift": PAGE_SHIFT}
        return self._direct

    def _fault(self, addr: int, size: int, access: str, need: int) -> Exception:
        for a in range(addr, addr + size):
            page = a >> PAGE_SHIFT
            p = self.perms[page] if 0 <= page < len(self.perms) else 0
            if not p & MAPPED:
                return UnmappedAccess(addr, size, access, fault_addr=a)  # type: ignore[arg-type]
            if not p & need:
                return PermissionFault(addr, size, access, fault_addr=a,  # type: ignore[arg-type]
                                       region=self.names.get(page, "guest memory"))
        return UnmappedAccess(addr, size, access)  # type: ignore[arg-type]

    def load(self, addr: int, size: int) -> int:
        page = addr >> PAGE_SHIFT
        perms = self.perms
        if page < len(perms) and perms[page] & PROT_READ and (
                (addr & PAGE_MASK) + size <= PAGE_SIZE or perms[page + 1] & PROT_READ):
            if size <= 8:
                return _UNPACK[size](self.mm, addr)[0]
            return int.from_bytes(self.mm[addr:addr + size], "little")
        raise self._fault(addr, size, "read", PROT_READ)

    def store(self, addr: int, size: int, value: int) -> None:
        page = addr >> PAGE_SHIFT
        perms = self.perms
        if page < len(perms):
            p = perms[page]
            if p & (PROT_WRITE | CODE) == PROT_WRITE and (
                    (addr & PAGE_MASK) + size <= PAGE_SIZE
                    or perms[page + 1] & (PROT_WRITE | CODE) == PROT_WRITE):
                if size <= 8:
                    _PACK[size](self.mm, addr, value)
                else:
                    self.mm[addr:addr + size] = value.to_bytes(size, "little")
                return
            if p & PROT_WRITE and self.is_writable(addr, size):
                self._code_changed(addr & ~PAGE_MASK, (addr & PAGE_MASK) + size)
                self.store(addr, size, value)
                return
        raise self._fault(addr, size, "write", PROT_WRITE)

    def is_writable(self, addr: int, size: int) -> bool:
        first, last = addr >> PAGE_SHIFT, (addr + size - 1) >> PAGE_SHIFT
        return last < len(self.perms) and all(
            self.perms[p] & PROT_WRITE for p in range(first, last + 1))

    def fetch(self, addr: int, max_length: int) -> bytes:
        """The longest executable prefix of [addr, addr+max_length)."""
        end = addr
        limit = addr + max_length
        while end < limit:
            page = end >> PAGE_SHIFT
            if page >= len(self.perms) or not self.perms[page] & PROT_EXEC:
                break
            end = min(limit, (page + 1) << PAGE_SHIFT)
        return self.mm[addr:end] if end > addr else b""

    # -- the kernel's own accesses (syscalls): EFAULT on failure -----------------------------------
    def check(self, addr: int, length: int, need: int) -> bool:
        if length == 0:
            return True
        if addr < 0 or addr + length > self.size:
            return False
        first, last = addr >> PAGE_SHIFT, (addr + length - 1) >> PAGE_SHIFT
        return all(b & need for b in self.perms[first:last + 1])

    def read(self, addr: int, length: int) -> bytes:
        if not self.check(addr, length, PROT_READ):
            raise self._fault(addr, length, "read", PROT_READ)
        return self.mm[addr:addr + length]

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        length = len(data)
        if not self.check(addr, length, PROT_WRITE):
            raise self._fault(addr, length, "write", PROT_WRITE)
        if length:
            self._code_changed(addr & ~PAGE_MASK, (addr & PAGE_MASK) + length)
            self.mm[addr:addr + length] = data

    def write_unchecked(self, addr: int, data: bytes) -> None:
        """Write without permission checks (the loader filling read-only segments)."""
        self.mm[addr:addr + len(data)] = data

    def read_cstring(self, addr: int, limit: int = 1 << 16) -> bytes:
        """A NUL-terminated string (without the NUL); faults like ``read``."""
        out = bytearray()
        while len(out) < limit:
            page_end = (addr | PAGE_MASK) + 1
            chunk = self.read(addr, page_end - addr)
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                return bytes(out)
            out += chunk
            addr = page_end
        raise ValueError("string too long")

    def close(self) -> None:
        if self._direct is not None:
            for view in self._direct["views"].values():
                view.release()
            self._direct = None
        self.mm.close()


def _next_nonzero(buf: bytearray, start: int) -> int:
    """Index of the first nonzero byte at or after ``start``, or -1."""
    n = len(buf)
    i = start
    step = 1 << 16
    while i < n:
        chunk = buf[i:i + step]
        if chunk.count(0) != len(chunk):
            for k, b in enumerate(chunk):
                if b:
                    return i + k
        i += step
    return -1
