"""Property tests: random access sequences against a bytearray model of the map.

The model decides, byte by byte in address order, whether an access succeeds
and which error it raises; after every step the guest bytes (read straight
from the region views and the device) must equal the model's.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from vm_core import (
    GuestMemory,
    MmioBulkAccess,
    OutOfRangeAccess,
    PermissionFault,
    RamRegion,
    UnmappedAccess,
)

SPACE = 0x9000
# (base, size, kind): kind is "ram", "rom" or "mmio"; everything else is a hole.
LAYOUT = [
    (0x1000, 0x2000, "ram"),
    (0x3000, 0x1000, "ram"),  # adjacent to the one before
    (0x4000, 0x1000, "rom"),  # adjacent, read-only
    (0x6000, 0x1000, "ram"),  # after a hole
    (0x7000, 0x20, "mmio"),  # a device, then a hole up to SPACE
]
BOUNDARIES = sorted({b for base, size, _ in LAYOUT for b in (base, base + size)} | {0, SPACE})


class ScratchDevice:
    """A device whose registers behave like little-endian memory."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)

    def read(self, offset: int, size: int) -> int:
        return int.from_bytes(self.data[offset : offset + size], "little")

    def write(self, offset: int, size: int, value: int) -> None:
        self.data[offset : offset + size] = value.to_bytes(size, "little")


@dataclass
class Model:
    data: bytearray
    kind: list[str | None]
    region_of: list[int | None]

    @classmethod
    def build(cls) -> Model:
        kind: list[str | None] = [None] * SPACE
        region_of: list[int | None] = [None] * SPACE
        for index, (base, size, k) in enumerate(LAYOUT):
            for a in range(base, base + size):
                kind[a] = k
                region_of[a] = index
        return cls(bytearray(SPACE), kind, region_of)

    def kind_at(self, addr: int) -> str | None:
        return self.kind[addr] if 0 <= addr < SPACE else None

    def scalar_error(self, addr: int, size: int, write: bool) -> type[Exception] | None:
        if addr < 0:
            return OutOfRangeAccess
        first = self.kind_at(addr)
        if first is None:
            return UnmappedAccess
        if first == "mmio":
            same = all(
                0 <= a < SPACE and self.region_of[a] == self.region_of[addr]
                for a in range(addr, addr + size)
            )
            return None if same else OutOfRangeAccess
        for a in range(addr, addr + size):
            k = self.kind_at(a)
            if k is None:
                return UnmappedAccess
            if k == "mmio":
                return OutOfRangeAccess
            if k == "rom" and write:
                return PermissionFault
        return None

    def bulk_error(self, addr: int, length: int, write: bool) -> type[Exception] | None:
        if length == 0:
            return None
        if addr < 0:
            return OutOfRangeAccess
        for a in range(addr, addr + length):
            k = self.kind_at(a)
            if k is None:
                return UnmappedAccess
            if k == "mmio":
                return MmioBulkAccess
            if k == "rom" and write:
                return PermissionFault
        return None


def build_memory() -> tuple[GuestMemory, list[tuple[int, RamRegion | ScratchDevice]]]:
    mem = GuestMemory()
    backing: list[tuple[int, RamRegion | ScratchDevice]] = []
    for base, size, kind in LAYOUT:
        if kind == "mmio":
            dev = ScratchDevice(size)
            mem.add_mmio(base, size, dev)
            backing.append((base, dev))
        else:
            backing.append((base, mem.add_ram(base, size, readonly=kind == "rom")))
    return mem, backing


def snapshot(backing: list[tuple[int, RamRegion | ScratchDevice]]) -> bytearray:
    """The guest's bytes, read from the region views and the device, not via GuestMemory."""
    out = bytearray(SPACE)
    for base, b in backing:
        raw = bytes(b.view) if isinstance(b, RamRegion) else bytes(b.data)
        out[base : base + len(raw)] = raw
    return out


addresses = st.one_of(
    st.integers(-16, SPACE + 16),
    st.sampled_from(BOUNDARIES).flatmap(lambda b: st.integers(b - 9, b + 9)),
)
sizes = st.sampled_from([1, 2, 4, 8])
lengths = st.one_of(st.integers(0, 24), st.integers(0, 0x1100))

ops = st.one_of(
    st.tuples(st.just("load"), addresses, sizes),
    st.tuples(st.just("store"), addresses, sizes, st.integers(0, (1 << 64) - 1)),
    st.tuples(st.just("read"), addresses, lengths),
    st.tuples(st.just("write"), addresses, st.binary(max_size=40)),
    st.tuples(st.just("fill"), addresses, lengths, st.integers(0, 255)),
    st.tuples(st.just("fetch"), addresses, st.integers(1, 20)),
)


def expect_raise(error: type[Exception], call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except Exception as e:  # the exact type is the point of the check
        assert type(e) is error, f"expected {error.__name__}, got {type(e).__name__}: {e}"
    else:
        raise AssertionError(f"expected {error.__name__}, nothing raised")


def run_op(mem: GuestMemory, model: Model, op: tuple) -> None:  # type: ignore[type-arg]
    name, addr = op[0], op[1]
    if name in ("load", "store"):
        size = op[2]
        error = model.scalar_error(addr, size, write=name == "store")
        if name == "load":
            if error:
                expect_raise(error, lambda: mem.load(addr, size))
            else:
                want = int.from_bytes(model.data[addr : addr + size], "little")
                assert mem.load(addr, size) == want
        else:
            value = op[3] & ((1 << (8 * size)) - 1)
            if error:
                expect_raise(error, lambda: mem.store(addr, size, value))
            else:
                mem.store(addr, size, value)
                model.data[addr : addr + size] = value.to_bytes(size, "little")
    elif name == "read":
        length = op[2]
        error = model.bulk_error(addr, length, write=False)
        if error:
            expect_raise(error, lambda: mem.read(addr, length))
        else:
            assert mem.read(addr, length) == bytes(model.data[addr : addr + length])
    elif name == "write":
        data = op[2]
        error = model.bulk_error(addr, len(data), write=True)
        if error:
            expect_raise(error, lambda: mem.write(addr, data))
        else:
            mem.write(addr, data)
            if data:
                model.data[addr : addr + len(data)] = data
    elif name == "fill":
        length, value = op[2], op[3]
        error = model.bulk_error(addr, length, write=True)
        if error:
            expect_raise(error, lambda: mem.fill(addr, length, value))
        else:
            mem.fill(addr, length, value)
            if length:
                model.data[addr : addr + length] = bytes([value]) * length
    elif name == "fetch":
        limit = op[2]
        first = model.kind_at(addr)
        if addr < 0:
            expect_raise(OutOfRangeAccess, lambda: mem.fetch(addr, limit))
        elif first is None:
            expect_raise(UnmappedAccess, lambda: mem.fetch(addr, limit))
        elif first == "mmio":
            expect_raise(MmioBulkAccess, lambda: mem.fetch(addr, limit))
        else:
            end = addr
            while end < addr + limit and model.kind_at(end) in ("ram", "rom"):
                end += 1
            assert mem.fetch(addr, limit) == bytes(model.data[addr:end])


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=40))
def test_random_access_sequences_match_the_model(sequence: list[tuple]) -> None:  # type: ignore[type-arg]
    mem, backing = build_memory()
    model = Model.build()
    for op in sequence:
        run_op(mem, model, op)
        assert snapshot(backing) == model.data, f"guest bytes differ after {op[:2]}"


@settings(max_examples=200, deadline=None)
@given(addr=st.integers(0x1000, 0x4000 - 8), size=sizes, value=st.integers(0, (1 << 64) - 1))
def test_store_then_load_round_trips(addr: int, size: int, value: int) -> None:
    mem, _ = build_memory()
    value &= (1 << (8 * size)) - 1
    mem.store(addr, size, value)
    assert mem.load(addr, size) == value
    assert mem.read(addr, size) == value.to_bytes(size, "little")
