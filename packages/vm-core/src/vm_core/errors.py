"""The vm's error hierarchy, rooted in `VmError`.

Every error is built from two parts, `problem` (what was wrong) and `fix` (what
to do about it); `str(error)` is ``"<problem>; <fix>"``, one line that a CLI can
print as is. Errors also carry structured fields (addresses, sizes, the access
kind) so that callers can act on them without parsing text.

Guest exits (a halt, a syscall, an exit code) are not errors: they are `Trap`s.
"""

from __future__ import annotations

from typing import Any, Literal

AccessKind = Literal["read", "write", "exec"]
"""What a memory or bus access was doing: a load, a store or an instruction fetch."""


def _rebuild(cls: type[VmError], args: tuple[Any, ...], fields: dict[str, Any]) -> VmError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(fields)
    return error


class VmError(Exception):
    """Root of every error the vm raises on purpose.

    Subclasses compute `problem` and `fix` from their fields and pass them up.
    """

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}; {fix}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword fields, so rebuild from the instance dict
        # rather than from `args` (keeps errors picklable and copyable).
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class ConfigError(VmError):
    """A machine description, memory map or option that cannot work as given."""


class UnsupportedError(VmError):
    """A guest or host feature that the vm does not implement (yet)."""

    def __init__(self, feature: str, fix: str) -> None:
        self.feature = feature
        super().__init__(f"{feature} is not supported", fix)


class AcceleratorUnavailable(VmError):
    """A hardware accelerator (KVM, HVF, WHPX) cannot be used on this host."""

    def __init__(
        self,
        accelerator: str,
        reason: str,
        fix: str = "run without --accel to use the software engines",
    ) -> None:
        self.accelerator = accelerator
        self.reason = reason
        super().__init__(f"accelerator {accelerator!r} is unavailable: {reason}", fix)


# ---------------------------------------------------------------------------
# Guest memory
# ---------------------------------------------------------------------------


class MemoryMapError(ConfigError):
    """A region cannot be added to, or removed from, a guest address map."""

    def __init__(
        self, problem: str, fix: str, *, base: int, size: int | None = None, name: str | None = None
    ) -> None:
        self.base = base
        self.size = size
        self.name = name
        super().__init__(problem, fix)


class RegionOverlapError(MemoryMapError):
    """A new region would overlap a region already in the map."""

    def __init__(
        self, *, base: int, size: int, name: str, other_base: int, other_size: int, other_name: str
    ) -> None:
        self.other_base = other_base
        self.other_size = other_size
        self.other_name = other_name
        super().__init__(
            f"region {name!r} [{base:#x}, {base + size:#x}) overlaps region {other_name!r} "
            f"[{other_base:#x}, {other_base + other_size:#x})",
            "move or shrink one of them, or remove the old region first",
            base=base,
            size=size,
            name=name,
        )


class GuestMemoryError(VmError):
    """A guest memory access that could not be performed; nothing was changed.

    `addr`/`size`/`access` describe the whole access; `fault_addr` is the first
    byte that caused the failure and `region` names the region involved, if any.
    """

    def __init__(
        self,
        problem: str,
        fix: str,
        *,
        addr: int,
        size: int,
        access: AccessKind,
        fault_addr: int | None = None,
        region: str | None = None,
    ) -> None:
        self.addr = addr
        self.size = size
        self.access = access
        self.fault_addr = addr if fault_addr is None else fault_addr
        self.region = region
        super().__init__(problem, fix)


def _access_text(access: str, size: int, addr: int) -> str:
    return f"guest {access} of {size} byte{'' if size == 1 else 's'} at {addr:#x}"


class UnmappedAccess(GuestMemoryError):
    """Some byte of the access has no region mapped at it."""

    def __init__(
        self, addr: int, size: int, access: AccessKind, *, fault_addr: int | None = None
    ) -> None:
        fault = addr if fault_addr is None else fault_addr
        super().__init__(
            f"{_access_text(access, size, addr)} hits unmapped address {fault:#x}",
            "map RAM or a device there, or find why the guest uses this address",
            addr=addr,
            size=size,
            access=access,
            fault_addr=fault,
        )


class OutOfRangeAccess(GuestMemoryError):
    """The access leaves the 64-bit address space, or a scalar access crosses an
    MMIO region's boundary (so no single device can serve it)."""

    def __init__(
        self,
        addr: int,
        size: int,
        access: AccessKind,
        *,
        fault_addr: int | None = None,
        region: str | None = None,
    ) -> None:
        if region is None:
            problem = f"{_access_text(access, size, addr)} lies outside the 64-bit address space"
            fix = "guest addresses must be in [0, 2**64); wrap or mask them first"
        else:
            problem = (
                f"{_access_text(access, size, addr)} crosses the boundary of MMIO region "
                f"{region!r} at {(addr if fault_addr is None else fault_addr):#x}"
            )
            fix = "split the access at the region boundary"
        super().__init__(
            problem,
            fix,
            addr=addr,
            size=size,
            access=access,
            fault_addr=fault_addr,
            region=region,
        )


class PermissionFault(GuestMemoryError):
    """The access is not allowed by the region it touches (a store to read-only RAM)."""

    def __init__(
        self, addr: int, size: int, access: AccessKind, *, fault_addr: int, region: str
    ) -> None:
        super().__init__(
            f"{_access_text(access, size, addr)} is not allowed: region {region!r} is "
            f"read-only at {fault_addr:#x}",
            "load read-only regions from the host through region.view, or map the region writable",
            addr=addr,
            size=size,
            access=access,
            fault_addr=fault_addr,
            region=region,
        )


class MmioBulkAccess(GuestMemoryError):
    """A byte-string access (read, write, fill, fetch) touched an MMIO region."""

    def __init__(
        self, addr: int, size: int, access: AccessKind, *, fault_addr: int, region: str
    ) -> None:
        super().__init__(
            f"{_access_text(access, size, addr)} touches MMIO region {region!r} at "
            f"{fault_addr:#x}, and byte-string accesses cover RAM only",
            "use load()/store() of 1, 2, 4 or 8 bytes for device registers",
            addr=addr,
            size=size,
            access=access,
            fault_addr=fault_addr,
            region=region,
        )


# ---------------------------------------------------------------------------
# Buses
# ---------------------------------------------------------------------------


class BusError(VmError):
    """A bus range cannot be inserted or removed, or a bus access has no device."""


class BusOverlapError(BusError):
    """A new device range would overlap a range already on the bus."""

    def __init__(
        self, *, bus: str, base: int, length: int, other_base: int, other_length: int
    ) -> None:
        self.bus = bus
        self.base = base
        self.length = length
        self.other_base = other_base
        self.other_length = other_length
        super().__init__(
            f"device range [{base:#x}, {base + length:#x}) on bus {bus!r} overlaps the "
            f"range [{other_base:#x}, {other_base + other_length:#x}) already there",
            "give the new device a free address range, or remove the old device first",
        )


class BusUnmappedError(BusError):
    """No single device range covers the whole access."""

    def __init__(
        self,
        *,
        bus: str,
        addr: int,
        size: int,
        access: AccessKind,
        range_base: int | None = None,
        range_length: int | None = None,
    ) -> None:
        self.bus = bus
        self.addr = addr
        self.size = size
        self.access = access
        self.range_base = range_base
        self.range_length = range_length
        what = f"{size}-byte {access} at {addr:#x} on bus {bus!r}"
        if range_base is None or range_length is None:
            problem = f"no device serves the {what}"
            fix = "insert a device covering this address, or find why the guest uses it"
        else:
            problem = (
                f"the {what} runs past the end of the device range "
                f"[{range_base:#x}, {range_base + range_length:#x})"
            )
            fix = "split the access, or widen the device's range"
        super().__init__(problem, fix)
