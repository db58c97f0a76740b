"""AddressSpace.direct_access(): the views engines read and write guest memory through
inline are the same bytes as load/store see, and its permission bits say exactly when an
access may skip load/store (a page with translated code never: its stores must invalidate)."""

from __future__ import annotations

import pytest

from vm_core import PermissionFault, UnmappedAccess
from vm_runtime.linux.memory import CODE, PROT_READ, PROT_WRITE, AddressSpace


@pytest.fixture
def space():
    mem = AddressSpace(1 << 24)
    yield mem
    mem.close()


def test_views_are_the_guest_bytes(space) -> None:
    d = space.direct_access()
    space.map(0x10000, 0x2000, PROT_READ | PROT_WRITE)
    space.store(0x10008, 8, 0xFEDCBA9876543210)
    v = d["views"]
    assert v["u64"][0x10008 >> 3] == 0xFEDCBA9876543210
    assert v["u32"][0x1000C >> 2] == 0xFEDCBA98
    assert v["s32"][0x1000C >> 2] == 0xFEDCBA98 - (1 << 32)
    assert v["u16"][0x10008 >> 1] == 0x3210 and v["s8"][0x1000F] == -2
    v["u32"][0x11000 >> 2] = 0xCAFEF00D  # the second page
    assert space.load(0x11000, 4) == 0xCAFEF00D
    assert space.read(0x11000, 4) == bytes.fromhex("0df0feca")


def test_permission_bits_say_when_an_access_may_go_direct(space) -> None:
    d = space.direct_access()
    perms, read, mask, ok = d["perms"], d["read"], d["write_mask"], d["write_ok"]
    space.map(0x10000, 0x1000, PROT_READ | PROT_WRITE)
    space.map(0x11000, 0x1000, PROT_READ)
    page = 0x10000 >> d["page_shift"]
    assert perms[page] & read and perms[page] & mask == ok
    assert perms[page + 1] & read and perms[page + 1] & mask != ok  # read-only
    assert not perms[0] & read  # unmapped
    space.mark_code(0x10000, 4)
    assert perms[page] & mask != ok  # translated code: stores must take store()
    seen = []
    space.on_code_write = lambda addr, length: seen.append((addr, length))
    space.store(0x10010, 4, 1)
    assert seen and perms[page] & CODE == 0 and perms[page] & mask == ok


def test_refused_accesses_fault_and_change_nothing(space) -> None:
    space.map(0x10000, 0x1000, PROT_READ)
    with pytest.raises(PermissionFault):
        space.store(0x10000, 8, 1)
    with pytest.raises(UnmappedAccess):
        space.load(0x20000, 8)
    with pytest.raises(UnmappedAccess):  # crosses into an unmapped page
        space.load(0x10FFC, 8)
    assert space.direct_access()["views"]["u64"][0x10000 >> 3] == 0
