"""GuestMemory: RAM and MMIO regions, scalar and byte-string access, faults."""

from __future__ import annotations

import ctypes
import struct

import pytest

from vm_core import (
    ADDRESS_LIMIT,
    PAGE_SIZE,
    GuestMemory,
    GuestMemoryError,
    MemoryMapError,
    MmioBulkAccess,
    MmioDevice,
    MmioRegion,
    OutOfRangeAccess,
    PermissionFault,
    RamRegion,
    RegionOverlapError,
    UnmappedAccess,
)

FORMATS = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


class RecordingDevice:
    """An MMIO device that logs accesses and answers reads from a table."""

    def __init__(self, answers: dict[int, int] | None = None) -> None:
        self.log: list[tuple[str, int, int, int | None]] = []
        self.answers = answers or {}

    def read(self, offset: int, size: int) -> int:
        self.log.append(("read", offset, size, None))
        return self.answers.get(offset, 0)

    def write(self, offset: int, size: int, value: int) -> None:
        self.log.append(("write", offset, size, value))


@pytest.fixture
def mem() -> GuestMemory:
    """RAM at [0x1000, 0x3000) and [0x3000, 0x4000) (adjacent), a hole, RAM at 0x8000."""
    m = GuestMemory()
    m.add_ram(0x1000, 0x2000, name="low")
    m.add_ram(0x3000, 0x1000, name="mid")
    m.add_ram(0x8000, 0x1000, name="high")
    return m


def ram_bytes(m: GuestMemory, addr: int, length: int) -> bytes:
    """Read guest bytes straight from the region views, bypassing GuestMemory's accessors."""
    region = m.find(addr)
    assert isinstance(region, RamRegion)
    off = addr - region.base
    return bytes(region.view[off : off + length])


# -- scalar access --------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_store_lays_out_little_endian_like_struct(mem: GuestMemory, size: int) -> None:
    value = int.from_bytes(bytes(range(0xA1, 0xA1 + size)), "big")
    mem.store(0x1234, size, value)
    assert ram_bytes(mem, 0x1234, size) == struct.pack(FORMATS[size], value)


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_load_reads_little_endian_like_struct(mem: GuestMemory, size: int) -> None:
    raw = bytes(range(0x11, 0x11 + size))
    region = mem.find(0x2000)
    assert isinstance(region, RamRegion)
    region.view[0x1000 : 0x1000 + size] = raw  # guest 0x2000
    assert mem.load(0x2000, size) == struct.unpack(FORMATS[size], raw)[0]


@pytest.mark.parametrize(
    ("size", "writer", "reader"),
    [
        (1, "write_u8", "read_u8"),
        (2, "write_u16", "read_u16"),
        (4, "write_u32", "read_u32"),
        (8, "write_u64", "read_u64"),
    ],
)
def test_named_accessors_round_trip_extremes(
    mem: GuestMemory, size: int, writer: str, reader: str
) -> None:
    top = (1 << (8 * size)) - 1
    for value in (0, 1, 0x5A, top >> 1, top):
        getattr(mem, writer)(0x1FF8, value)
        assert getattr(mem, reader)(0x1FF8) == value
        assert ram_bytes(mem, 0x1FF8, size) == struct.pack(FORMATS[size], value)


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_negative_values_store_twos_complement(mem: GuestMemory, size: int) -> None:
    mem.store(0x1100, size, -2)
    assert ram_bytes(mem, 0x1100, size) == struct.pack(FORMATS[size].lower(), -2)
    assert mem.load(0x1100, size) == (1 << (8 * size)) - 2


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_values_that_do_not_fit_are_rejected(mem: GuestMemory, size: int) -> None:
    before = ram_bytes(mem, 0x1100, 8)
    for bad in (1 << (8 * size), -(1 << (8 * size - 1)) - 1):
        with pytest.raises(ValueError, match="does not fit"):
            mem.store(0x1100, size, bad)
    assert ram_bytes(mem, 0x1100, 8) == before


@pytest.mark.parametrize("size", [0, 3, 16, -1])
def test_odd_sizes_are_rejected(mem: GuestMemory, size: int) -> None:
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        mem.load(0x1000, size)
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        mem.store(0x1000, size, 0)


def test_scalar_access_spans_adjacent_ram_regions(mem: GuestMemory) -> None:
    mem.write_u64(0x2FFC, 0x8877665544332211)
    assert ram_bytes(mem, 0x2FFC, 4) == bytes.fromhex("11223344")
    assert ram_bytes(mem, 0x3000, 4) == bytes.fromhex("55667788")
    assert mem.read_u64(0x2FFC) == 0x8877665544332211


def test_cache_does_not_serve_other_regions(mem: GuestMemory) -> None:
    mem.write_u32(0x1000, 0x11111111)
    mem.write_u32(0x8000, 0x22222222)
    assert mem.read_u32(0x1000) == 0x11111111
    assert mem.read_u32(0x8000) == 0x22222222
    assert mem.read_u32(0x1000) == 0x11111111


# -- byte strings -------------------------------------------------------------------


def test_bulk_write_and_read_across_adjacent_regions(mem: GuestMemory) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes: 0x1800 .. 0x4000
    mem.write(0x1800, data)
    assert ram_bytes(mem, 0x1800, 0x1800) == data[:0x1800]
    assert ram_bytes(mem, 0x3000, 0x1000) == data[0x1800:]
    assert mem.read(0x1800, len(data)) == data


def test_write_accepts_any_bytes_like(mem: GuestMemory) -> None:
    mem.write(0x1000, bytearray(b"ab"))
    mem.write(0x1002, memoryview(b"cd"))
    mem.write(0x1004, memoryview(struct.pack("<HH", 0x6665, 0x6867)).cast("H"))
    assert ram_bytes(mem, 0x1000, 8) == b"abcdefgh"


def test_fill_covers_exactly_the_range(mem: GuestMemory) -> None:
    mem.fill(0x2F00, 0x200, 0xCC)  # across the low/mid boundary
    assert ram_bytes(mem, 0x2EFF, 1) == b"\x00"
    assert ram_bytes(mem, 0x2F00, 0x100) == b"\xcc" * 0x100
    assert ram_bytes(mem, 0x3000, 0x100) == b"\xcc" * 0x100
    assert ram_bytes(mem, 0x3100, 1) == b"\x00"


def test_large_fill_crosses_its_internal_chunks() -> None:
    m = GuestMemory()
    m.add_ram(0, 0x30000)
    m.fill(0x10, 0x20000, 0x7F)
    assert ram_bytes(m, 0, 0x30000) == b"\x00" * 0x10 + b"\x7f" * 0x20000 + b"\x00" * 0xFFF0


def test_zero_length_bulk_access_is_a_no_op(mem: GuestMemory) -> None:
    assert mem.read(0x5000, 0) == b""
    mem.write(0x5000, b"")
    mem.fill(0x5000, 0)


def test_negative_lengths_are_rejected(mem: GuestMemory) -> None:
    with pytest.raises(ValueError):
        mem.read(0x1000, -1)
    with pytest.raises(ValueError):
        mem.fill(0x1000, -1)
    with pytest.raises(ValueError):
        mem.fill(0x1000, 1, 256)


def test_fetch_returns_the_readable_prefix(mem: GuestMemory) -> None:
    mem.write(0x3FF8, b"12345678")
    assert mem.fetch(0x3FF8, 15) == b"12345678"  # stops at the hole at 0x4000
    assert mem.fetch(0x2FFE, 4) == b"\x00\x00\x00\x00"  # crosses adjacent RAM
    with pytest.raises(UnmappedAccess) as info:
        mem.fetch(0x4000, 4)
    assert info.value.access == "exec"


def test_fetch_stops_at_mmio_and_refuses_to_start_there() -> None:
    m = GuestMemory()
    m.add_ram(0x1000, 0x1000)
    m.add_mmio(0x2000, 0x100, RecordingDevice())
    m.write(0x1FFE, b"\x13\x37")
    assert m.fetch(0x1FFE, 8) == b"\x13\x37"
    with pytest.raises(MmioBulkAccess) as info:
        m.fetch(0x2000, 4)
    assert info.value.access == "exec"


# -- faults change nothing -------------------------------------------------------------


def test_unmapped_scalar_access_raises_with_fields(mem: GuestMemory) -> None:
    with pytest.raises(UnmappedAccess) as info:
        mem.read_u32(0x5000)
    err = info.value
    assert (err.addr, err.size, err.access, err.fault_addr) == (0x5000, 4, "read", 0x5000)
    with pytest.raises(UnmappedAccess) as info:
        mem.write_u16(0x0FFF, 0xFFFF)
    assert info.value.access == "write"
    assert ram_bytes(mem, 0x1000, 1) == b"\x00"


def test_scalar_store_running_off_ram_writes_nothing(mem: GuestMemory) -> None:
    with pytest.raises(UnmappedAccess) as info:
        mem.write_u64(0x3FFC, 0xFFFF_FFFF_FFFF_FFFF)
    assert info.value.fault_addr == 0x4000
    assert ram_bytes(mem, 0x3FFC, 4) == b"\x00" * 4


def test_partly_unmapped_bulk_write_writes_nothing(mem: GuestMemory) -> None:
    with pytest.raises(UnmappedAccess) as info:
        mem.write(0x3F00, b"\xee" * 0x200)
    assert info.value.fault_addr == 0x4000
    assert (info.value.addr, info.value.size) == (0x3F00, 0x200)
    assert ram_bytes(mem, 0x3F00, 0x100) == b"\x00" * 0x100
    with pytest.raises(UnmappedAccess):
        mem.fill(0x3F00, 0x200, 0xEE)
    assert ram_bytes(mem, 0x3F00, 0x100) == b"\x00" * 0x100


def test_addresses_outside_64_bits_are_out_of_range() -> None:
    m = GuestMemory()
    top = m.add_ram(ADDRESS_LIMIT - PAGE_SIZE, PAGE_SIZE, name="top")
    m.write_u64(ADDRESS_LIMIT - 8, 0x0102030405060708)
    assert bytes(top.view[-8:]) == struct.pack("<Q", 0x0102030405060708)
    with pytest.raises(OutOfRangeAccess):
        m.read_u64(ADDRESS_LIMIT - 4)
    with pytest.raises(OutOfRangeAccess):
        m.read_u8(-1)
    with pytest.raises(OutOfRangeAccess):
        m.write(ADDRESS_LIMIT - 2, b"abcd")
    assert bytes(top.view[-2:]) == b"\x02\x01"


def test_readonly_ram_refuses_guest_stores_only() -> None:
    m = GuestMemory()
    rom = m.add_ram(0x0, 0x1000, name="rom", readonly=True)
    m.add_ram(0x1000, 0x1000, name="ram")
    rom.view[0:4] = b"\x13\x00\x00\x00"  # the host may load it
    assert m.read_u32(0) == 0x13
    with pytest.raises(PermissionFault) as info:
        m.write_u32(0, 0xFFFFFFFF)
    assert info.value.region == "rom"
    with pytest.raises(PermissionFault):
        m.write(0xFFE, b"abcd")  # starts in ROM, ends in RAM
    with pytest.raises(PermissionFault) as info:
        m.fill(0xF00, 0x200, 1)  # starts in ROM
    assert info.value.fault_addr == 0xF00
    assert bytes(rom.view[0:4]) == b"\x13\x00\x00\x00"
    assert m.read(0x1000, 4) == b"\x00" * 4


def test_readonly_fault_after_a_cached_load() -> None:
    m = GuestMemory()
    m.add_ram(0, 0x1000, readonly=True)
    m.read_u32(0x10)  # primes the read cache with the ROM
    with pytest.raises(PermissionFault):
        m.write_u32(0x10, 1)


# -- MMIO -------------------------------------------------------------------------


def test_mmio_dispatch_uses_offsets_relative_to_the_region() -> None:
    m = GuestMemory()
    dev = RecordingDevice({0x4: 0xAB})
    region = m.add_mmio(0x1000_0000, 0x100, dev, name="uart")
    assert isinstance(region, MmioRegion)
    assert isinstance(dev, MmioDevice)
    assert m.read_u8(0x1000_0004) == 0xAB
    m.write_u32(0x1000_0010, 0xCAFEBABE)
    m.store(0x1000_0018, 8, -1)
    assert dev.log == [
        ("read", 0x4, 1, None),
        ("write", 0x10, 4, 0xCAFEBABE),
        ("write", 0x18, 8, 0xFFFF_FFFF_FFFF_FFFF),
    ]


def test_mmio_read_results_are_masked_to_the_access_size() -> None:
    m = GuestMemory()
    m.add_mmio(0x100, 0x10, RecordingDevice({0: 0x1_2345}))
    assert m.read_u16(0x100) == 0x2345


def test_mmio_accesses_must_fit_the_region() -> None:
    m = GuestMemory()
    dev = RecordingDevice()
    m.add_mmio(0x100, 0x10, dev, name="dev")
    m.add_ram(0x1000, 0x1000)
    with pytest.raises(OutOfRangeAccess) as info:
        m.read_u32(0x10E)
    assert (info.value.region, info.value.fault_addr) == ("dev", 0x110)
    with pytest.raises(MmioBulkAccess):
        m.read(0x100, 4)
    with pytest.raises(MmioBulkAccess):
        m.write(0x100, b"\x01")
    assert dev.log == []


def test_scalar_access_from_ram_into_mmio_is_refused() -> None:
    m = GuestMemory()
    dev = RecordingDevice()
    m.add_ram(0x1000, 0x1000, name="ram")
    m.add_mmio(0x2000, 0x100, dev, name="dev")
    with pytest.raises(OutOfRangeAccess) as info:
        m.write_u32(0x1FFE, 0x01020304)
    assert info.value.region == "dev"
    assert m.read(0x1FFE, 2) == b"\x00\x00"
    with pytest.raises(MmioBulkAccess):
        m.write(0x1FF0, bytes(0x20))
    assert dev.log == []


# -- the map ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "size"),
    [(0x0, 0x1001), (0x1800, 0x1000), (0x3000, 0x10), (0x0, 0x10000), (0x1FFF, 1)],
)
def test_overlapping_regions_are_rejected(mem: GuestMemory, base: int, size: int) -> None:
    before = mem.regions
    with pytest.raises(RegionOverlapError) as info:
        mem.add_mmio(base, size, RecordingDevice(), name="new")
    assert info.value.name == "new"
    assert info.value.other_name in {"low", "mid"}
    assert mem.regions == before


def test_overlapping_ram_is_rejected_and_names_both(mem: GuestMemory) -> None:
    with pytest.raises(RegionOverlapError) as info:
        mem.add_ram(0x2000, 0x1000, name="dup")
    message = str(info.value)
    assert "'dup'" in message
    assert "'low'" in message
    assert "0x1000" in message


@pytest.mark.parametrize(("base", "size"), [(0x1001, 0x1000), (0x1000, 0x800), (0x1000, 0)])
def test_ram_must_be_page_aligned(base: int, size: int) -> None:
    m = GuestMemory()
    with pytest.raises(MemoryMapError, match="page-aligned"):
        m.add_ram(base, size)
    assert m.regions == ()


def test_regions_beyond_64_bits_are_rejected() -> None:
    m = GuestMemory()
    with pytest.raises(MemoryMapError):
        m.add_ram(ADDRESS_LIMIT, PAGE_SIZE)
    with pytest.raises(MemoryMapError):
        m.add_mmio(-0x10, 0x20, RecordingDevice())
    with pytest.raises(MemoryMapError):
        m.add_mmio(0x10, 0, RecordingDevice())


def test_find_and_remove(mem: GuestMemory) -> None:
    low = mem.find(0x1FFF)
    assert low is not None and low.name == "low"
    assert mem.find(0x0FFF) is None
    assert mem.find(0x4000) is None
    mem.read_u32(0x8000)  # cache the region before removing it
    removed = mem.remove_region(0x8000)
    assert removed.name == "high"
    assert mem.find(0x8000) is None
    with pytest.raises(UnmappedAccess):
        mem.read_u32(0x8000)
    with pytest.raises(MemoryMapError):
        mem.remove_region(0x8000)
    with pytest.raises(MemoryMapError):
        mem.remove_region(0x1800)  # inside a region, not its base
    assert [r.name for r in mem.regions] == ["low", "mid"]


def test_removed_space_can_be_mapped_again(mem: GuestMemory) -> None:
    mem.write_u8(0x8000, 7)
    mem.remove_region(0x8000)
    mem.add_ram(0x8000, 0x1000, name="fresh")
    assert mem.read_u8(0x8000) == 0


# -- host bytes -----------------------------------------------------------------------


def test_host_address_is_usable_with_ctypes(mem: GuestMemory) -> None:
    region = mem.find(0x3000)
    assert isinstance(region, RamRegion)
    payload = b"written by the host"
    ctypes.memmove(region.host_address + 0x20, payload, len(payload))
    assert mem.read(0x3020, len(payload)) == payload
    mem.write_u32(0x3040, 0x04030201)
    assert ctypes.string_at(region.host_address + 0x40, 4) == b"\x01\x02\x03\x04"


def test_host_addresses_are_page_aligned_and_distinct(mem: GuestMemory) -> None:
    addresses = [r.host_address for r in mem.regions if isinstance(r, RamRegion)]
    assert all(a % PAGE_SIZE == 0 for a in addresses)
    assert len(set(addresses)) == len(addresses)


def test_new_ram_reads_as_zero(mem: GuestMemory) -> None:
    assert mem.read(0x1000, 0x3000) == bytes(0x3000)


def test_close_unmaps_ram() -> None:
    with GuestMemory() as m:
        region = m.add_ram(0, 0x1000)
    assert region.closed
    assert m.regions == ()
    region.close()  # closing twice is harmless


@pytest.mark.parametrize("make_view", [lambda v: v[0:16], memoryview], ids=["slice", "copy"])
def test_close_refuses_while_views_are_alive(make_view: object) -> None:
    m = GuestMemory()
    region = m.add_ram(0, 0x1000)
    window = make_view(region.view)  # type: ignore[operator]
    with pytest.raises(BufferError, match="still alive"):
        region.close()
    window.release()
    region.view[0] = 1  # the region still works after the refused close
    region.close()
    assert region.closed


def test_memory_errors_share_a_base(mem: GuestMemory) -> None:
    for call in (
        lambda: mem.read_u8(0x5000),
        lambda: mem.read(0x3FFF, 2),
        lambda: mem.read_u8(-5),
    ):
        with pytest.raises(GuestMemoryError):
            call()
