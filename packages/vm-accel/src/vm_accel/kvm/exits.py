"""Typed events for one `KVM_RUN`, as returned by `KvmVcpu.run_once()`.

Each is a dataclass of plain values, to be read, not changed (not ``frozen``: a frozen
dataclass costs three times as long to define, and every `vm run --accel kvm` defines these
eleven at start-up, where each millisecond counts against native). After an `IoExit` with
``is_out=False`` or an `MmioExit` with ``is_write=False`` the caller answers
with `KvmVcpu.complete(data)` before the next run, or the guest reads zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

_EMULATION = 1  # KVM_INTERNAL_ERROR_EMULATION


@dataclass
class IoExit:
    """Port I/O (`in`/`out`, `ins`/`outs`): `count` items of `size` bytes at `port`.

    For an OUT, `data` holds the ``size * count`` bytes the guest wrote; for an
    IN it is empty and `KvmVcpu.complete` supplies them.
    """

    port: int
    size: int
    count: int
    is_out: bool
    data: bytes = b""


@dataclass
class MmioExit:
    """A load or store of `length` bytes at guest-physical `addr` that no RAM slot backs.

    For a write, `data` holds the bytes; for a read it is empty and
    `KvmVcpu.complete` supplies them.
    """

    addr: int
    length: int
    is_write: bool
    data: bytes = b""


@dataclass
class HaltExit:
    """The guest executed HLT."""


@dataclass
class ShutdownExit:
    """The guest shut down (triple fault) or asked for a shutdown/reset system event."""

    detail: str = "shutdown (triple fault)"


@dataclass
class InterruptedExit:
    """KVM_RUN returned early: `KvmVcpu.interrupt()` or another host signal (EINTR)."""


@dataclass
class DebugExit:
    """A debug exception the host asked to see (breakpoint or single step)."""

    exception: int
    pc: int


@dataclass
class FailEntryExit:
    """The CPU refused to enter the guest; `reason` is the hardware's code."""

    reason: int


@dataclass
class InternalErrorExit:
    """KVM could not continue the guest (e.g. an instruction its emulator cannot do)."""

    suberror: int
    data: tuple[int, ...] = ()

    @property
    def instruction_bytes(self) -> bytes | None:
        """For an emulation failure whose data carries them, the code bytes KVM fetched
        at the failing instruction (up to 15, more than the instruction itself)."""
        if self.suberror != _EMULATION or len(self.data) < 3 or not self.data[0] & 1:
            return None
        raw = b"".join(w.to_bytes(8, "little") for w in self.data[1:3])
        return raw[1 : 1 + min(raw[0], 15)]

    @property
    def detail(self) -> str:
        from vm_accel.kvm.uapi import INTERNAL_ERROR_NAMES

        name = INTERNAL_ERROR_NAMES.get(self.suberror, "unknown suberror")
        code = self.instruction_bytes
        if code is not None:
            return f"KVM internal error {self.suberror} ({name}) at code bytes {code.hex(' ')}"
        words = ", ".join(f"{w:#x}" for w in self.data)
        return f"KVM internal error {self.suberror} ({name}){f', data [{words}]' if words else ''}"


@dataclass
class ExceptionExit:
    """KVM_EXIT_EXCEPTION: a guest exception that KVM handed to user space."""

    exception: int
    error_code: int


@dataclass
class HypercallExit:
    """KVM_EXIT_HYPERCALL: a hypercall KVM forwards to user space."""

    nr: int
    args: tuple[int, ...]


@dataclass
class UnknownExit:
    """Any other exit reason; `name` is its KVM_EXIT_* name when known."""

    reason: int
    name: str


KvmExit = (
    IoExit
    | MmioExit
    | HaltExit
    | ShutdownExit
    | InterruptedExit
    | DebugExit
    | FailEntryExit
    | InternalErrorExit
    | ExceptionExit
    | HypercallExit
    | UnknownExit
)
"""Every event `KvmVcpu.run_once()` can return."""
