"""Guest memory: an address map of RAM regions (anonymous mmap) and MMIO regions.

RAM bytes live in host memory that the JIT and accelerators use by pointer
(`RamRegion.host_address`); MMIO regions forward scalar accesses to a device.
All values are little-endian. An access that cannot be done in full raises a
`GuestMemoryError` and changes nothing.

The map itself (`add_ram`, `add_mmio`, `remove_region`) is not thread-safe:
change it while no vCPU runs. Accesses from several threads are as safe as the
underlying byte stores.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
from bisect import bisect_right
from types import TracebackType

from vm_core.errors import (
    AccessKind,
    MemoryMapError,
    MmioBulkAccess,
    OutOfRangeAccess,
    PermissionFault,
    RegionOverlapError,
    UnmappedAccess,
)
from vm_core.protocols import MmioDevice

PAGE_SIZE = 0x1000
"""Granularity of RAM regions: bases and sizes are multiples of 4 KiB."""

ADDRESS_LIMIT = 1 << 64
"""One past the highest guest address."""

_STRUCTS = {n: struct.Struct(f"<{c}") for n, c in ((1, "B"), (2, "H"), (4, "I"), (8, "Q"))}
_UNPACK = {n: s.unpack_from for n, s in _STRUCTS.items()}
_PACK = {n: s.pack_into for n, s in _STRUCTS.items()}
_MASK = {n: (1 << (8 * n)) - 1 for n in _STRUCTS}
_MIN = {n: -(1 << (8 * n - 1)) for n in _STRUCTS}
_FILL_CHUNK = 1 << 16

BytesLike = bytes | bytearray | memoryview
"""What `GuestMemory.write` accepts."""


def _bad_size(size: int) -> ValueError:
    return ValueError(f"access size must be 1, 2, 4 or 8 bytes, not {size!r}")


def _bad_value(size: int, value: int) -> ValueError:
    return ValueError(
        f"value {value!r} does not fit in {size} byte(s): "
        f"use [{_MIN[size]}, {_MASK[size]}] (negative values are stored in two's complement)"
    )


class Region:
    """A named range [base, end) of the guest address space."""

    __slots__ = ("base", "end", "name", "size")

    def __init__(self, base: int, size: int, name: str) -> None:
        self.base = base
        self.size = size
        self.end = base + size
        """One past the last byte."""
        self.name = name

    def contains(self, addr: int) -> bool:
        """Whether `addr` lies in this region."""
        return self.base <= addr < self.end

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, [{self.base:#x}, {self.end:#x}))"


class RamRegion(Region):
    """Guest RAM backed by an anonymous host mapping, zero-filled at creation.

    `view` is a writable memoryview of the bytes (offset 0 is `base`);
    `host_address` is their host virtual address, for ctypes, the JIT and KVM
    memory slots. Both stay valid until `close()`; host writes through them
    bypass `readonly`, which only restricts guest stores.
    """

    __slots__ = ("_host_address", "_mm", "_view", "readonly")

    def __init__(self, base: int, size: int, name: str, *, readonly: bool = False) -> None:
        super().__init__(base, size, name)
        self.readonly = readonly
        if hasattr(mmap, "MAP_PRIVATE"):
            mm = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        else:  # Windows: the only anonymous mapping there is
            mm = mmap.mmap(-1, size)
        anchor = ctypes.c_char.from_buffer(mm)
        self._host_address = ctypes.addressof(anchor)
        del anchor  # releases its buffer export, so close() can unmap
        self._mm = mm
        self._view = memoryview(mm)

    @property
    def view(self) -> memoryview:
        """Writable bytes of the region; index 0 is guest address `base`."""
        return self._view

    @property
    def host_address(self) -> int:
        """Host virtual address of the region's first byte."""
        return self._host_address

    @property
    def closed(self) -> bool:
        """Whether the host mapping has been released."""
        return self._mm.closed

    def close(self) -> None:
        """Unmap the host bytes; remove the region from its `GuestMemory` first.

        Raises BufferError while slices of `view` (or other exports) are alive.
        """
        if self._mm.closed:
            return
        released = False
        try:
            self._view.release()
            released = True
            self._mm.close()
        except BufferError:
            if released:  # the map stays open, so it needs a usable view again
                self._view = memoryview(self._mm)
            raise BufferError(
                f"cannot unmap RAM region {self.name!r}: views of its bytes are still alive; "
                "release them first"
            ) from None


class MmioRegion(Region):
    """A range whose scalar accesses go to `device` with offsets relative to `base`."""

    __slots__ = ("device",)

    def __init__(self, base: int, size: int, name: str, device: MmioDevice) -> None:
        super().__init__(base, size, name)
        self.device = device


class GuestMemory:
    """A guest address space of RAM and MMIO regions.

    Scalar accesses (`load`/`store`, `read_u8` ... `write_u64`) reach RAM or an
    MMIO device; a scalar access may span adjacent RAM regions but must stay
    inside one MMIO region. Byte-string accesses (`read`, `write`, `fill`,
    `fetch`) cover RAM only, possibly across adjacent regions; touching MMIO
    with them raises `MmioBulkAccess`. Every access is checked in full before
    any byte is written.
    """

    def __init__(self) -> None:
        self._bases: list[int] = []
        self._regions: list[Region] = []
        # One-entry caches of the last region used; the store cache never holds
        # read-only RAM, so the fast store path needs no permission check.
        self._rcache: Region | None = None
        self._wcache: Region | None = None

    # -- the map -----------------------------------------------------------

    @property
    def regions(self) -> tuple[Region, ...]:
        """All regions, by ascending base."""
        return tuple(self._regions)

    def add_ram(
        self, base: int, size: int, *, name: str = "ram", readonly: bool = False
    ) -> RamRegion:
        """Map `size` bytes of zeroed RAM at `base`; both must be multiples of `PAGE_SIZE`.

        `readonly` makes guest stores raise `PermissionFault` (ROM); the host
        can still write through `region.view`.
        """
        if base % PAGE_SIZE or size % PAGE_SIZE or size <= 0:
            raise MemoryMapError(
                f"RAM region {name!r} at {base:#x} of size {size:#x} is not page-aligned",
                f"use a base and a non-zero size that are multiples of {PAGE_SIZE:#x}",
                base=base,
                size=size,
                name=name,
            )
        self._check_free(base, size, name)
        region = RamRegion(base, size, name, readonly=readonly)
        self._insert(region)
        return region

    def add_mmio(
        self, base: int, size: int, device: MmioDevice, *, name: str = "mmio"
    ) -> MmioRegion:
        """Map `device` at [base, base+size); any alignment is allowed."""
        if size <= 0:
            raise MemoryMapError(
                f"MMIO region {name!r} at {base:#x} has size {size}",
                "give the region a positive size",
                base=base,
                size=size,
                name=name,
            )
        self._check_free(base, size, name)
        region = MmioRegion(base, size, name, device)
        self._insert(region)
        return region

    def remove_region(self, base: int) -> Region:
        """Unmap the region that starts at `base` and return it.

        A removed `RamRegion` keeps its bytes until it is closed or collected.
        """
        i = bisect_right(self._bases, base) - 1
        if i < 0 or self._bases[i] != base:
            raise MemoryMapError(
                f"no region starts at {base:#x}",
                "pass the base of a mapped region (see GuestMemory.regions)",
                base=base,
            )
        del self._bases[i]
        region = self._regions.pop(i)
        self._rcache = self._wcache = None
        return region

    def find(self, addr: int) -> Region | None:
        """The region containing `addr`, or None."""
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            region = self._regions[i]
            if addr < region.end:
                return region
        return None

    def close(self) -> None:
        """Remove every region and unmap the RAM."""
        regions = self._regions
        self._bases, self._regions = [], []
        self._rcache = self._wcache = None
        for region in regions:
            if isinstance(region, RamRegion):
                region.close()

    def __enter__(self) -> GuestMemory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_free(self, base: int, size: int, name: str) -> None:
        if base < 0 or base + size > ADDRESS_LIMIT:
            raise MemoryMapError(
                f"region {name!r} [{base:#x}, {base + size:#x}) leaves the 64-bit address space",
                "place it within [0, 2**64)",
                base=base,
                size=size,
                name=name,
            )
        i = bisect_right(self._bases, base) - 1
        for j in (i, i + 1):
            if 0 <= j < len(self._regions):
                other = self._regions[j]
                if other.base < base + size and base < other.end:
                    raise RegionOverlapError(
                        base=base,
                        size=size,
                        name=name,
                        other_base=other.base,
                        other_size=other.size,
                        other_name=other.name,
                    )

    def _insert(self, region: Region) -> None:
        i = bisect_right(self._bases, region.base)
        self._bases.insert(i, region.base)
        self._regions.insert(i, region)

    # -- checks --------------------------------------------------------------

    def _scalar_region(self, addr: int, size: int, access: AccessKind) -> Region | None:
        """The one region serving a scalar access, or None when the access
        spans adjacent RAM regions (then it is known to be valid)."""
        if addr < 0 or addr + size > ADDRESS_LIMIT:
            raise OutOfRangeAccess(addr, size, access)
        region = self.find(addr)
        if region is None:
            raise UnmappedAccess(addr, size, access)
        if addr + size <= region.end:
            if access == "write" and isinstance(region, RamRegion) and region.readonly:
                raise PermissionFault(addr, size, access, fault_addr=addr, region=region.name)
            return region
        if isinstance(region, MmioRegion):
            raise OutOfRangeAccess(addr, size, access, fault_addr=region.end, region=region.name)
        self._span(addr, size, access, scalar=True)
        return None

    def _span(
        self, addr: int, length: int, access: AccessKind, *, scalar: bool = False
    ) -> list[tuple[RamRegion, int, int]]:
        """Split [addr, addr+length) into (region, offset, count) RAM pieces,
        raising for the first byte, in address order, that cannot be accessed."""
        if addr < 0 or addr + length > ADDRESS_LIMIT:
            raise OutOfRangeAccess(addr, length, access)
        pieces: list[tuple[RamRegion, int, int]] = []
        cur, end = addr, addr + length
        while cur < end:
            region = self.find(cur)
            if region is None:
                raise UnmappedAccess(addr, length, access, fault_addr=cur)
            if not isinstance(region, RamRegion):
                if scalar:
                    raise OutOfRangeAccess(addr, length, access, fault_addr=cur, region=region.name)
                raise MmioBulkAccess(addr, length, access, fault_addr=cur, region=region.name)
            if access == "write" and region.readonly:
                raise PermissionFault(addr, length, access, fault_addr=cur, region=region.name)
            count = min(end, region.end) - cur
            pieces.append((region, cur - region.base, count))
            cur += count
        return pieces

    # -- scalar access -------------------------------------------------------

    def load(self, addr: int, size: int) -> int:
        """Read an unsigned little-endian value of `size` (1, 2, 4 or 8) bytes."""
        unpack = _UNPACK.get(size)
        if unpack is None:
            raise _bad_size(size)
        region = self._rcache
        if region is None or addr < region.base or addr + size > region.end:
            region = self._scalar_region(addr, size, "read")
            if region is None:
                return int.from_bytes(self.read(addr, size), "little")
            self._rcache = region
        if type(region) is RamRegion:
            value: int = unpack(region._mm, addr - region.base)[0]
            return value
        assert isinstance(region, MmioRegion)
        return region.device.read(addr - region.base, size) & _MASK[size]

    def store(self, addr: int, size: int, value: int) -> None:
        """Write `value` as `size` (1, 2, 4 or 8) little-endian bytes.

        `value` must fit the size, signed or unsigned; anything else is a
        ValueError (a host bug, not a guest fault).
        """
        pack = _PACK.get(size)
        if pack is None:
            raise _bad_size(size)
        if not _MIN[size] <= value <= _MASK[size]:
            raise _bad_value(size, value)
        value &= _MASK[size]
        region = self._wcache
        if region is None or addr < region.base or addr + size > region.end:
            region = self._scalar_region(addr, size, "write")
            if region is None:
                self.write(addr, value.to_bytes(size, "little"))
                return
            self._wcache = region
        if type(region) is RamRegion:
            pack(region._mm, addr - region.base, value)
            return
        assert isinstance(region, MmioRegion)
        region.device.write(addr - region.base, size, value)

    def read_u8(self, addr: int) -> int:
        """Read one byte."""
        return self.load(addr, 1)

    def read_u16(self, addr: int) -> int:
        """Read a little-endian u16."""
        return self.load(addr, 2)

    def read_u32(self, addr: int) -> int:
        """Read a little-endian u32."""
        return self.load(addr, 4)

    def read_u64(self, addr: int) -> int:
        """Read a little-endian u64."""
        return self.load(addr, 8)

    def write_u8(self, addr: int, value: int) -> None:
        """Write one byte."""
        self.store(addr, 1, value)

    def write_u16(self, addr: int, value: int) -> None:
        """Write a little-endian u16."""
        self.store(addr, 2, value)

    def write_u32(self, addr: int, value: int) -> None:
        """Write a little-endian u32."""
        self.store(addr, 4, value)

    def write_u64(self, addr: int, value: int) -> None:
        """Write a little-endian u64."""
        self.store(addr, 8, value)

    # -- byte strings (RAM only) -----------------------------------------------

    def read(self, addr: int, length: int) -> bytes:
        """Copy `length` bytes of RAM starting at `addr`."""
        if length <= 0:
            if length < 0:
                raise ValueError(f"length must not be negative, not {length}")
            return b""
        region = self._rcache
        if type(region) is RamRegion and region.base <= addr and addr + length <= region.end:
            offset = addr - region.base
            return region._mm[offset : offset + length]
        return b"".join(
            region._mm[offset : offset + count]
            for region, offset, count in self._span(addr, length, "read")
        )

    def write(self, addr: int, data: BytesLike) -> None:
        """Copy `data` (any bytes-like object) into RAM at `addr`."""
        src = memoryview(data).cast("B")
        if not src.nbytes:
            return
        pos = 0
        for region, offset, count in self._span(addr, src.nbytes, "write"):
            region._mm[offset : offset + count] = src[pos : pos + count]
            pos += count

    def fill(self, addr: int, length: int, value: int = 0) -> None:
        """Set `length` bytes of RAM at `addr` to the byte `value`."""
        if not 0 <= value <= 0xFF:
            raise ValueError(f"fill value must be a byte (0..255), not {value!r}")
        if length < 0:
            raise ValueError(f"length must not be negative, not {length}")
        if not length:
            return
        pattern = bytes((value,)) * min(length, _FILL_CHUNK)
        for region, offset, count in self._span(addr, length, "write"):
            end = offset + count
            while offset < end:
                n = min(end - offset, _FILL_CHUNK)
                region._mm[offset : offset + n] = pattern[:n]
                offset += n

    def fetch(self, addr: int, max_length: int) -> bytes:
        """Read up to `max_length` bytes of code at `addr`, for decoders.

        Returns the longest readable RAM prefix (it stops early at unmapped
        memory or MMIO), so a decoder can tell a truncated instruction from a
        fault at `addr` itself, which raises with ``access == "exec"``.
        """
        if max_length <= 0:
            if max_length < 0:
                raise ValueError(f"max_length must not be negative, not {max_length}")
            return b""
        if addr < 0 or addr >= ADDRESS_LIMIT:
            raise OutOfRangeAccess(addr, max_length, "exec")
        end = min(addr + max_length, ADDRESS_LIMIT)
        parts: list[bytes] = []
        cur = addr
        while cur < end:
            region = self.find(cur)
            if not isinstance(region, RamRegion):
                if cur != addr:
                    break
                if region is None:
                    raise UnmappedAccess(addr, max_length, "exec")
                raise MmioBulkAccess(addr, max_length, "exec", fault_addr=addr, region=region.name)
            count = min(end, region.end) - cur
            offset = cur - region.base
            parts.append(region._mm[offset : offset + count])
            cur += count
        return b"".join(parts)
