"""The protocols are structural: small classes written to the contract satisfy them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from vm_core import (
    Accelerator,
    Bus,
    BusDevice,
    Engine,
    Frontend,
    GuestMemory,
    Hypervisor,
    MmioDevice,
    RamRegion,
    Snapshottable,
    SyscallAbi,
    Trap,
    Vcpu,
    VcpuExit,
    VcpuExitKind,
    Vm,
)


@dataclass(frozen=True)
class LatchState:
    value: int


class Latch:
    """A one-register device with a snapshot: the shape vm-devices follows."""

    def __init__(self, value: int = 0) -> None:
        self.value = value

    def read(self, offset: int, size: int) -> int:
        return self.value

    def write(self, offset: int, size: int, value: int) -> None:
        self.value = value

    def save_state(self) -> LatchState:
        return LatchState(self.value)

    @classmethod
    def from_state(cls, state: LatchState, *args: Any, **kwargs: Any) -> Self:
        return cls(state.value)


def test_a_device_is_a_bus_device_mmio_device_and_snapshottable() -> None:
    latch = Latch()
    assert isinstance(latch, BusDevice)
    assert isinstance(latch, MmioDevice)
    assert isinstance(latch, Snapshottable)
    latch.write(0, 4, 99)
    restored = Latch.from_state(latch.save_state())
    assert restored.read(0, 4) == 99


def test_plain_objects_satisfy_nothing() -> None:
    for proto in (BusDevice, Snapshottable, Frontend, Engine, Hypervisor, Vm, Vcpu):
        assert not isinstance(object(), proto)


class StubFrontend:
    arch = "toy"
    state_layout = None
    syscall_abi = SyscallAbi(number="a7", args=("a0", "a1"), result="a0")
    gdb_target_xml = "<target/>"
    helpers: Mapping[str, Any] = {}

    def reset_state(self) -> Any:
        return {}

    def decode(self, mem: GuestMemory, pc: int) -> Any:
        return mem.fetch(pc, 4)

    def lift(self, mem: GuestMemory, pc: int, *, max_insns: int = 64) -> Any:
        return None

    def disassemble(self, mem: GuestMemory, pc: int) -> tuple[str, int]:
        return ("nop", 4)


class StubEngine:
    name = "stub"

    def run(self, state: Any, mem: GuestMemory, *, max_insns: int | None = None) -> Trap | None:
        return None

    def step(self, state: Any, mem: GuestMemory) -> Trap | None:
        return None

    def invalidate(self, start: int, length: int) -> None:
        pass


class StubVcpu:
    index = 0

    def get_registers(self) -> Mapping[str, int]:
        return {}

    def set_registers(self, registers: Mapping[str, int]) -> None:
        pass

    def run(self) -> VcpuExit:
        return VcpuExit(VcpuExitKind.HALT, pc=0)

    def interrupt(self) -> None:
        pass

    def close(self) -> None:
        pass


class StubVm:
    def map_ram(self, region: RamRegion) -> int:
        return 0

    def unmap_ram(self, slot: int) -> None:
        pass

    def create_vcpu(self, index: int) -> StubVcpu:
        return StubVcpu()

    def close(self) -> None:
        pass


class StubHypervisor:
    name = "stub"

    def create_vm(self, *, mmio_bus: Bus | None = None, pio_bus: Bus | None = None) -> StubVm:
        return StubVm()


def test_structural_conformance() -> None:
    assert isinstance(StubFrontend(), Frontend)
    assert isinstance(StubEngine(), Engine)
    assert isinstance(StubVcpu(), Vcpu)
    assert isinstance(StubVm(), Vm)
    assert isinstance(StubHypervisor(), Hypervisor)
    assert Accelerator is Hypervisor


def test_missing_methods_break_conformance() -> None:
    class HalfEngine:
        name = "half"

        def run(self, state: Any, mem: GuestMemory) -> None:
            return None

    assert not isinstance(HalfEngine(), Engine)


def test_vcpu_exit_kinds() -> None:
    assert {k.value for k in VcpuExitKind} == {
        "halt",
        "shutdown",
        "interrupted",
        "debug",
        "failed",
    }
    assert VcpuExit(VcpuExitKind.FAILED, detail="entry failed").pc is None
