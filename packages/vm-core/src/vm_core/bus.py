"""`Bus`: device ranges for MMIO or port I/O, with offset-relative dispatch.

The machine description inserts each device at its range; an access is handed
to the device whose range holds all of it, with the offset from the range's
base. Lookups read an immutable snapshot of the map, so vCPU threads can
dispatch while another thread inserts or removes a device.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from vm_core.errors import AccessKind, BusError, BusOverlapError, BusUnmappedError
from vm_core.protocols import BusDevice

_MASK = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFF_FFFF, 8: 0xFFFF_FFFF_FFFF_FFFF}


@dataclass(frozen=True)
class BusRange:
    """The addresses [base, base+length) of one device on a bus."""

    base: int
    length: int

    @property
    def end(self) -> int:
        """One past the last address."""
        return self.base + self.length

    def contains(self, addr: int) -> bool:
        """Whether `addr` lies in the range."""
        return self.base <= addr < self.base + self.length

    def overlaps(self, other: BusRange) -> bool:
        """Whether the two ranges share an address."""
        return self.base < other.end and other.base < self.end


_Map = tuple[tuple[int, ...], tuple[tuple[BusRange, BusDevice], ...]]


class Bus:
    """Device ranges on one address space (an MMIO space, or x86 I/O ports).

    `limit` is one past the highest address: ``1 << 64`` for MMIO, ``1 << 16``
    for x86 port I/O.
    """

    def __init__(self, name: str = "bus", *, limit: int = 1 << 64) -> None:
        self.name = name
        self.limit = limit
        self._lock = threading.Lock()
        self._map: _Map = ((), ())

    def insert(self, device: BusDevice, base: int, length: int) -> BusRange:
        """Put `device` at [base, base+length); overlapping ranges are rejected."""
        if length <= 0 or base < 0 or base + length > self.limit:
            raise BusError(
                f"device range at {base:#x} of length {length:#x} does not fit bus "
                f"{self.name!r} [0, {self.limit:#x})",
                "use a positive length and a range inside the bus",
            )
        new = BusRange(base, length)
        with self._lock:
            bases, entries = self._map
            i = bisect_right(bases, base)
            for j in (i - 1, i):
                if 0 <= j < len(entries) and entries[j][0].overlaps(new):
                    old = entries[j][0]
                    raise BusOverlapError(
                        bus=self.name,
                        base=base,
                        length=length,
                        other_base=old.base,
                        other_length=old.length,
                    )
            self._map = (
                (*bases[:i], base, *bases[i:]),
                (*entries[:i], (new, device), *entries[i:]),
            )
        return new

    def remove(self, base: int) -> BusDevice:
        """Take out the device whose range starts at `base` and return it."""
        with self._lock:
            bases, entries = self._map
            i = bisect_right(bases, base) - 1
            if i < 0 or bases[i] != base:
                raise BusError(
                    f"no device range starts at {base:#x} on bus {self.name!r}",
                    "pass the base that was given to Bus.insert",
                )
            device = entries[i][1]
            self._map = (bases[:i] + bases[i + 1 :], entries[:i] + entries[i + 1 :])
        return device

    def get(self, addr: int) -> tuple[BusRange, BusDevice] | None:
        """The range and device holding `addr`, or None."""
        bases, entries = self._map
        i = bisect_right(bases, addr) - 1
        if i >= 0 and entries[i][0].contains(addr):
            return entries[i]
        return None

    def _lookup(self, addr: int, size: int, access: AccessKind) -> tuple[BusRange, BusDevice]:
        if size not in _MASK:
            raise ValueError(f"bus access size must be 1, 2, 4 or 8 bytes, not {size!r}")
        entry = self.get(addr)
        if entry is None:
            raise BusUnmappedError(bus=self.name, addr=addr, size=size, access=access)
        rng = entry[0]
        if addr + size > rng.end:
            raise BusUnmappedError(
                bus=self.name,
                addr=addr,
                size=size,
                access=access,
                range_base=rng.base,
                range_length=rng.length,
            )
        return entry

    def read(self, addr: int, size: int) -> int:
        """Read `size` bytes at `addr` from the device there (unsigned result)."""
        rng, device = self._lookup(addr, size, "read")
        return device.read(addr - rng.base, size) & _MASK[size]

    def write(self, addr: int, size: int, value: int) -> None:
        """Write `value` (unsigned, `size` bytes) to the device at `addr`."""
        rng, device = self._lookup(addr, size, "write")
        if not 0 <= value <= _MASK[size]:
            raise ValueError(f"value {value!r} does not fit in {size} unsigned byte(s)")
        device.write(addr - rng.base, size, value)

    def __iter__(self) -> Iterator[tuple[BusRange, BusDevice]]:
        """The (range, device) pairs, by ascending base."""
        return iter(self._map[1])

    def __len__(self) -> int:
        return len(self._map[1])

    def __repr__(self) -> str:
        return f"Bus({self.name!r}, {len(self)} device(s))"
