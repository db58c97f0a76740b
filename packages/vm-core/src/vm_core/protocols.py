"""Consumer-side protocols: what the layers above vm-core promise each other.

vm-core only states the contracts; frontends, engines, accelerators and devices
implement them in their own packages. Types that belong to vm-ir (a state
layout, a lifted function, a guest state) appear here as `Any`, because vm-core
and vm-ir are sibling layers and do not import each other.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

if TYPE_CHECKING:
    from vm_core.bus import Bus
    from vm_core.memory import GuestMemory, RamRegion
    from vm_core.traps import Trap


# ---------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------


@runtime_checkable
class BusDevice(Protocol):
    """A device behind a range of a `Bus` (MMIO or port I/O).

    `offset` is relative to the base of the device's range, never absolute.
    `size` is 1, 2, 4 or 8 bytes; `value` fits in `size` bytes (unsigned).
    A device that does not implement a register reads 0 and ignores writes;
    it never raises for guest input it does not understand.
    """

    def read(self, offset: int, size: int) -> int:
        """Return the `size`-byte register value at `offset` (unsigned)."""
        ...

    def write(self, offset: int, size: int, value: int) -> None:
        """Store `value` (unsigned, `size` bytes) to the register at `offset`."""
        ...


@runtime_checkable
class MmioDevice(BusDevice, Protocol):
    """A device mapped into a `GuestMemory` with `add_mmio`; same contract as `BusDevice`."""


@runtime_checkable
class Snapshottable(Protocol):
    """Something whose whole state can be saved and restored.

    `save_state()` returns a frozen dataclass of plain values (ints, bytes,
    strings, tuples, nested frozen dataclasses) with no references to host
    objects. `from_state(state, ...)` builds an equivalent object; extra
    arguments carry what a state cannot hold (an IRQ line, an output stream).
    Restoring and continuing must behave exactly like never having stopped.
    """

    def save_state(self) -> Any:
        """Return this object's state as a frozen dataclass."""
        ...

    @classmethod
    def from_state(cls, state: Any, *args: Any, **kwargs: Any) -> Self:
        """Build an object from a state returned by `save_state()`."""
        ...


# ---------------------------------------------------------------------------
# Frontends and engines
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SyscallAbi:
    """How a frontend's Linux syscalls pass values, as state-layout field names.

    For RV64: ``SyscallAbi(number="x17", args=("x10", ..., "x15"), result="x10")``.
    The kernel's convention of returning ``-errno`` in `result` is shared by
    every architecture the vm supports.
    """

    number: str
    args: tuple[str, ...]
    result: str


@dataclass(frozen=True)
class LiftedBlock:
    """A translation block: guest code at `pc` lifted to one vm-ir function.

    `func` is a vm-ir ``Function`` taking no arguments that ends in ``exit`` (the next
    guest pc) or ``trap``; `module` is the vm-ir ``Module`` holding it, its state layout
    and the helpers it calls. `length` is the number of guest code bytes it covers and
    `insns` the number of guest instructions. Before any op that may trap, the lifted code
    has written the pc of the guest instruction it belongs to, so a trap is precise.
    """

    pc: int
    length: int
    insns: int
    func: Any
    module: Any


@runtime_checkable
class Frontend(Protocol):
    """One guest ISA: decode, lift to vm-ir, disassemble, describe the state.

    Frontends are found through the ``vm.frontends`` entry-point group.
    All methods read guest code through `GuestMemory.fetch`, so a fetch fault
    surfaces as a `GuestMemoryError` with ``access == "exec"``.
    """

    @property
    def arch(self) -> str:
        """Architecture name: ``"x86_64"``, ``"aarch64"`` or ``"riscv64"``."""
        ...

    @property
    def state_layout(self) -> Any:
        """The vm-ir `StateLayout` of the guest CPU state (registers, pc, flags)."""
        ...

    @property
    def syscall_abi(self) -> SyscallAbi:
        """Where the Linux syscall number, arguments and result live."""
        ...

    @property
    def gdb_target_xml(self) -> str:
        """The GDB target description (``target.xml``) for the GDB stub."""
        ...

    def reset_state(self) -> Any:
        """Return a fresh guest state in this arch's reset (or process-entry) condition."""
        ...

    def decode(self, mem: GuestMemory, pc: int) -> Any:
        """Decode the instruction at `pc`; the result knows its length in bytes."""
        ...

    @property
    def helpers(self) -> Mapping[str, Any]:
        """Implementations of the helpers its lifted code calls: ``fn(ctx, *args)``, where
        ``ctx.state[field]`` reads and writes guest state and ``ctx.memory`` is the memory."""
        ...

    def lift(self, mem: GuestMemory, pc: int, *, max_insns: int = 64) -> LiftedBlock:
        """Lift the translation block starting at `pc` into a vm-ir function.

        The block ends at the first control transfer, trap, page end or after `max_insns`.
        """
        ...

    def disassemble(self, mem: GuestMemory, pc: int) -> tuple[str, int]:
        """Return the assembly text of the instruction at `pc` and its length."""
        ...


@runtime_checkable
class Engine(Protocol):
    """Executes guest code lifted by a frontend (interpreter, JIT, AOT code)."""

    @property
    def name(self) -> str:
        """Short engine name, e.g. ``"interp"`` or ``"jit"``."""
        ...

    def run(self, state: Any, mem: GuestMemory, *, max_insns: int | None = None) -> Trap | None:
        """Run from the state's pc until a trap, or until `max_insns` have retired.

        Returns the `Trap` that stopped execution, or None when the budget ran
        out. Guest state and memory are left exactly as the architecture
        defines for that trap (precise exceptions).
        """
        ...

    def step(self, state: Any, mem: GuestMemory) -> Trap | None:
        """Execute one guest instruction; return the trap it raised, if any."""
        ...

    def invalidate(self, start: int, length: int) -> None:
        """Drop cached translations of guest code overlapping [start, start+length)."""
        ...


# ---------------------------------------------------------------------------
# Hardware accelerators (KVM, HVF, WHPX)
# ---------------------------------------------------------------------------


class VcpuExitKind(enum.Enum):
    """Why `Vcpu.run` returned. MMIO and port I/O never show up here: the
    accelerator dispatches them to the VM's buses inside `run`."""

    HALT = "halt"
    """The guest halted (HLT / WFI) with no interrupt pending."""
    SHUTDOWN = "shutdown"
    """The guest reset or powered off the machine (or triple-faulted)."""
    INTERRUPTED = "interrupted"
    """`Vcpu.interrupt()` was called, or a host signal arrived."""
    DEBUG = "debug"
    """A guest breakpoint or single-step completed."""
    FAILED = "failed"
    """The accelerator could not enter or continue the guest; see `detail`."""


@dataclass(frozen=True)
class VcpuExit:
    """A `Vcpu.run` exit: its kind, the guest pc if known, and a readable detail."""

    kind: VcpuExitKind
    pc: int | None = None
    detail: str | None = None


@runtime_checkable
class Vcpu(Protocol):
    """One virtual CPU of an accelerated VM; run it on one host thread."""

    @property
    def index(self) -> int:
        """The vCPU number, from 0."""
        ...

    def get_registers(self) -> Mapping[str, int]:
        """Return the registers, keyed by the frontend's state-layout field names."""
        ...

    def set_registers(self, registers: Mapping[str, int]) -> None:
        """Set the named registers; names not given are left as they are."""
        ...

    def run(self) -> VcpuExit:
        """Run the guest until an exit the VM's buses cannot handle."""
        ...

    def interrupt(self) -> None:
        """Make a `run()` on another thread return soon with `VcpuExitKind.INTERRUPTED`."""
        ...

    def close(self) -> None:
        """Release the vCPU's host resources."""
        ...


@runtime_checkable
class Vm(Protocol):
    """An accelerated virtual machine: memory slots and vCPUs."""

    def map_ram(self, region: RamRegion) -> int:
        """Expose `region` to the guest at ``region.base`` using its host bytes
        (``region.host_address``), without copying; return the slot number."""
        ...

    def unmap_ram(self, slot: int) -> None:
        """Remove the memory slot returned by `map_ram`."""
        ...

    def create_vcpu(self, index: int) -> Vcpu:
        """Create vCPU number `index`."""
        ...

    def close(self) -> None:
        """Release the VM and everything it holds."""
        ...


@runtime_checkable
class Hypervisor(Protocol):
    """A hardware accelerator backend; found through the ``vm.accelerators`` entry points.

    Constructing one checks that the host can use it and raises
    `AcceleratorUnavailable` (with the precise reason) when it cannot.
    """

    @property
    def name(self) -> str:
        """Backend name: ``"kvm"``, ``"hvf"`` or ``"whpx"``."""
        ...

    def create_vm(self, *, mmio_bus: Bus | None = None, pio_bus: Bus | None = None) -> Vm:
        """Create a VM whose MMIO (and, on x86, port I/O) exits go to these buses.

        A bus left out makes every access of that kind a `BusUnmappedError`.
        """
        ...


Accelerator = Hypervisor
"""DESIGN.md's name for the same contract."""
