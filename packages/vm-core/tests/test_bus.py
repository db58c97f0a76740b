"""Bus: offset-relative dispatch, overlap and unmapped errors."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vm_core import Bus, BusDevice, BusError, BusOverlapError, BusRange, BusUnmappedError, VmError


class Registers:
    """A device that records accesses and reads back `base_value + offset`."""

    def __init__(self, base_value: int = 0) -> None:
        self.base_value = base_value
        self.log: list[tuple[str, int, int, int | None]] = []

    def read(self, offset: int, size: int) -> int:
        self.log.append(("read", offset, size, None))
        return self.base_value + offset

    def write(self, offset: int, size: int, value: int) -> None:
        self.log.append(("write", offset, size, value))


def test_dispatch_passes_offsets_relative_to_the_range_base() -> None:
    bus = Bus("pio", limit=1 << 16)
    com1, com2 = Registers(0x10), Registers(0x20)
    bus.insert(com1, 0x3F8, 8)
    bus.insert(com2, 0x2F8, 8)
    assert bus.read(0x3FD, 1) == 0x15
    bus.write(0x2F8, 1, 0x41)
    bus.write(0x3F8 + 7, 1, 0xFF)
    assert com1.log == [("read", 5, 1, None), ("write", 7, 1, 0xFF)]
    assert com2.log == [("write", 0, 1, 0x41)]


def test_read_results_are_masked_to_the_size() -> None:
    bus = Bus()
    bus.insert(Registers(0x1_2345_0000), 0x1000, 0x100)
    assert bus.read(0x1010, 2) == 0x0010
    assert bus.read(0x1010, 4) == 0x2345_0010


@pytest.mark.parametrize(
    ("base", "length"), [(0x1000, 0x10), (0x0FFF, 2), (0x100F, 1), (0x0F00, 0x1000), (0x1008, 1)]
)
def test_overlaps_are_rejected_naming_both_ranges(base: int, length: int) -> None:
    bus = Bus("mmio")
    bus.insert(Registers(), 0x1000, 0x10)
    with pytest.raises(BusOverlapError) as info:
        bus.insert(Registers(), base, length)
    err = info.value
    assert (err.base, err.length, err.other_base, err.other_length) == (base, length, 0x1000, 0x10)
    assert f"{base:#x}" in str(err)
    assert "[0x1000, 0x1010)" in str(err)
    assert len(bus) == 1


def test_adjacent_ranges_are_fine() -> None:
    bus = Bus()
    low, high = Registers(0), Registers(0x40)
    bus.insert(high, 0x1010, 0x10)
    bus.insert(low, 0x1000, 0x10)
    assert bus.read(0x100F, 1) == 0xF
    assert bus.read(0x1010, 1) == 0x40
    assert [r for r, _ in bus] == [BusRange(0x1000, 0x10), BusRange(0x1010, 0x10)]


def test_unmapped_accesses_raise_with_fields() -> None:
    bus = Bus("mmio")
    dev = Registers()
    bus.insert(dev, 0x1000, 0x10)
    with pytest.raises(BusUnmappedError) as info:
        bus.read(0x0FFF, 1)
    assert (info.value.addr, info.value.size, info.value.access) == (0x0FFF, 1, "read")
    with pytest.raises(BusUnmappedError) as info:
        bus.write(0x1010, 4, 0)
    assert info.value.access == "write"
    assert dev.log == []


def test_access_running_past_the_range_end_is_refused() -> None:
    bus = Bus()
    dev = Registers()
    bus.insert(dev, 0x1000, 0x10)
    with pytest.raises(BusUnmappedError) as info:
        bus.read(0x100E, 4)
    assert (info.value.range_base, info.value.range_length) == (0x1000, 0x10)
    assert "past the end" in str(info.value)
    assert dev.log == []


def test_remove_takes_the_device_out() -> None:
    bus = Bus()
    dev = Registers()
    bus.insert(dev, 0x1000, 0x10)
    assert bus.remove(0x1000) is dev
    with pytest.raises(BusUnmappedError):
        bus.read(0x1000, 1)
    with pytest.raises(BusError):
        bus.remove(0x1000)
    bus.insert(Registers(), 0x1008, 0x10)  # the space is free again
    assert bus.get(0x1008) is not None


@pytest.mark.parametrize(("base", "length"), [(0, 0), (-1, 4), (0xFFFF, 2)])
def test_ranges_must_fit_the_bus(base: int, length: int) -> None:
    bus = Bus("pio", limit=1 << 16)
    with pytest.raises(BusError):
        bus.insert(Registers(), base, length)


def test_bad_sizes_and_values_are_rejected() -> None:
    bus = Bus()
    dev = Registers()
    bus.insert(dev, 0, 0x10)
    with pytest.raises(ValueError):
        bus.read(0, 3)
    with pytest.raises(ValueError):
        bus.write(0, 1, 0x100)
    with pytest.raises(ValueError):
        bus.write(0, 1, -1)
    assert dev.log == []


def test_devices_satisfy_the_protocol() -> None:
    assert isinstance(Registers(), BusDevice)
    assert not isinstance(object(), BusDevice)


def test_errors_are_vm_errors() -> None:
    assert issubclass(BusOverlapError, BusError)
    assert issubclass(BusUnmappedError, BusError)
    assert issubclass(BusError, VmError)


def test_dispatch_while_another_thread_inserts() -> None:
    bus = Bus()
    bus.insert(Registers(7), 0, 0x10)
    failures: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(2000):
                assert bus.read(4, 1) == 11
        except BaseException as e:
            failures.append(e)

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(1, 400):
        bus.insert(Registers(), i * 0x10, 0x10)
    thread.join()
    assert failures == []
    assert len(bus) == 400


@given(
    st.lists(
        st.tuples(st.integers(0, 0x400), st.integers(1, 0x40)),
        max_size=30,
    ),
    st.integers(0, 0x480),
)
def test_lookup_matches_a_linear_model(ranges: list[tuple[int, int]], probe: int) -> None:
    bus = Bus()
    accepted: list[tuple[int, int, Registers]] = []
    for base, length in ranges:
        clash = any(b < base + length and base < b + n for b, n, _ in accepted)
        dev = Registers()
        if clash:
            with pytest.raises(BusOverlapError):
                bus.insert(dev, base, length)
        else:
            bus.insert(dev, base, length)
            accepted.append((base, length, dev))
    holders = [(b, d) for b, n, d in accepted if b <= probe < b + n]
    found = bus.get(probe)
    if holders:
        assert found is not None and found[1] is holders[0][1]
        assert found[0].base == holders[0][0]
    else:
        assert found is None
