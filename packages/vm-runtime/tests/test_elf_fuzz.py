"""Fuzzing the ELF loader: whatever bytes it is given, ``inspect_elf`` and ``load_elf`` either
load the program or raise ``LoadError`` (a ``VmError`` with a message), never anything else,
and never run for long; ``vm run`` on such a file prints one ``vm: error:`` line and exits 1.

Inputs: arbitrary byte strings (with and without an ELF identification), and mutations of a
real guest (build/guests/riscv64/hello when it is built, else a minimal static riscv64 ELF
made here): header and program-header fields set to edge values, bytes overwritten,
the file cut short.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vm_core import VmError
from vm_runtime.linux.loader import LoadError, inspect_elf, load_elf
from vm_runtime.linux.memory import AddressSpace

ROOT = Path(__file__).resolve().parents[3]
HELLO = ROOT / "build" / "guests" / "riscv64" / "hello"
SPACE = 1 << 36  # a smaller guest address space than a real process's: cheaper to make
PIE_BASE = 0x2AAAAAA000
M64 = (1 << 64) - 1

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- a minimal static riscv64 program: exit(42) ---------------------------------------------------
def minimal_elf(entry_off: int = 0x78, vaddr: int = 0x10000) -> bytes:
    """ELF header, one PT_LOAD (R+X) covering the whole file, and the code
    ``li a0, 42; li a7, 93; ecall``."""
    code = struct.pack("<III", 0x02A00513, 0x05D00893, 0x00000073)
    phoff, ehsize, phentsize = 64, 64, 56
    size = phoff + phentsize + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0xF3, 1, vaddr + entry_off, phoff, 0, 0,
                                 ehsize, phentsize, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, vaddr, vaddr, size, size, 0x1000)
    return header + phdr + code


def seed_elf() -> bytes:
    return HELLO.read_bytes() if HELLO.is_file() else minimal_elf()


SEED = seed_elf()


def check_load(data: bytes) -> None:
    """inspect_elf, then load_elf into a fresh address space: a load or a LoadError, quickly."""
    t0 = time.perf_counter()
    try:
        info = inspect_elf("fuzzed", data)
    except LoadError as exc:
        assert str(exc).startswith("fuzzed: ") and "\n" not in str(exc), str(exc)
        return
    space = AddressSpace(SPACE)
    try:
        load_elf(info, space, PIE_BASE)
    except LoadError as exc:
        assert isinstance(exc, VmError) and str(exc).startswith("fuzzed: "), str(exc)
    finally:
        space.mm.close()
    assert time.perf_counter() - t0 < 5, "the loader took too long"


# -- arbitrary bytes ---------------------------------------------------------------------------
ELF64_LE = b"\x7fELF\x02\x01\x01"


@FUZZ
@given(st.one_of(st.binary(max_size=600),
                 st.binary(max_size=600).map(lambda b: ELF64_LE + b),
                 st.binary(min_size=57, max_size=600).map(lambda b: SEED[:64] + b)))
def test_any_bytes_load_or_raise_load_error(data: bytes) -> None:
    check_load(data)


# -- mutations of a real program -------------------------------------------------------------------
EDGES64 = [0, 1, 2, 0x38, 0x40, 0xFFF, 0x1000, 0x10000, len(SEED), len(SEED) - 1, len(SEED) + 1,
           1 << 31, 1 << 32, SPACE - 0x1000, SPACE, PIE_BASE, 1 << 47, 1 << 63, M64 - 0xFFF, M64]
EDGES16 = [0, 1, 2, 55, 56, 57, 64, 0x7FFF, 0xFFFF]
EDGES32 = [0, 1, 2, 3, 4, 5, 6, 7, 0x6474E551, 0x70000003, 0xFFFFFFFF]

# header fields: name -> (offset, size)
EHDR = {"e_type": (16, 2), "e_machine": (18, 2), "e_version": (20, 4), "e_entry": (24, 8),
        "e_phoff": (32, 8), "e_shoff": (40, 8), "e_flags": (48, 4), "e_ehsize": (52, 2),
        "e_phentsize": (54, 2), "e_phnum": (56, 2), "e_shentsize": (58, 2), "e_shnum": (60, 2),
        "e_shstrndx": (62, 2), "ei_class": (4, 1), "ei_data": (5, 1)}
PHDR = {"p_type": (0, 4), "p_flags": (4, 4), "p_offset": (8, 8), "p_vaddr": (16, 8),
        "p_paddr": (24, 8), "p_filesz": (32, 8), "p_memsz": (40, 8), "p_align": (48, 8)}


def edge_for(size: int) -> st.SearchStrategy[int]:
    edges = {1: [0, 1, 2, 3, 0xFF], 2: EDGES16, 4: EDGES32, 8: EDGES64}[size]
    return st.one_of(st.sampled_from(edges), st.integers(0, (1 << (8 * size)) - 1))


@st.composite
def mutations(draw) -> bytes:
    data = bytearray(SEED)
    phoff, phnum = struct.unpack_from("<QH", SEED, 32)[0], struct.unpack_from("<H", SEED, 56)[0]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["ehdr", "phdr", "phdr", "byte", "cut"]))
        if kind == "ehdr":
            off, size = EHDR[draw(st.sampled_from(sorted(EHDR)))]
            value = draw(edge_for(size))
        elif kind == "phdr":
            field = draw(st.sampled_from(sorted(PHDR)))
            rel, size = PHDR[field]
            off = phoff + 56 * draw(st.integers(0, max(phnum - 1, 0))) + rel
            value = draw(edge_for(size))
        elif kind == "byte":
            if not data:
                continue
            off, size = draw(st.integers(0, min(len(data), 0x400) - 1)), 1
            value = draw(st.integers(0, 255))
        else:
            del data[draw(st.integers(0, len(data))):]
            continue
        if off + size <= len(data):
            data[off:off + size] = value.to_bytes(size, "little")
    return bytes(data)


@FUZZ
@given(mutations())
def test_mutated_programs_load_or_raise_load_error(data: bytes) -> None:
    check_load(data)


def test_seed_program_loads() -> None:
    info = inspect_elf("seed", SEED)
    space = AddressSpace(SPACE)
    try:
        prog = load_elf(info, space, PIE_BASE)
        assert prog.entry == info.entry + prog.load_bias
    finally:
        space.mm.close()


# -- regressions -------------------------------------------------------------------------------
def _with(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


MINIMAL = minimal_elf()
BAD_FILES = {
    "empty": b"",
    "not an ELF": b"#!/bin/sh\necho hi\n",
    "truncated header": MINIMAL[:40],
    "32-bit": _with(MINIMAL, 4, "<B", 1),
    "big-endian": _with(MINIMAL, 5, "<B", 2),
    "x86 (32-bit machine)": _with(MINIMAL, 18, "<H", 3),
    "relocatable": _with(MINIMAL, 16, "<H", 1),
    "no program headers": _with(MINIMAL, 56, "<H", 0),
    "program headers past the end": _with(MINIMAL, 32, "<Q", 1 << 40),
    "segment past the end of the file": _with(MINIMAL, 64 + 32, "<Q", 1 << 20),
    "memsz below filesz": _with(MINIMAL, 64 + 40, "<Q", 1),
    "segment at address 0": _with(_with(MINIMAL, 64 + 16, "<Q", 0), 24, "<Q", 0x78),
    "segment beyond the address space": _with(MINIMAL, 64 + 16, "<Q", 1 << 62),
    "segment wrapping around": _with(MINIMAL, 64 + 40, "<Q", M64 - 0x1000),
    "huge bss up to the stack": _with(MINIMAL, 64 + 40, "<Q", (1 << 38) - 0x30000),  # into the stack,
    "PT_INTERP": _with(MINIMAL, 64, "<I", 3),
    "bad e_phentsize": _with(MINIMAL, 54, "<H", 32),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_raise_load_error(name: str) -> None:
    with pytest.raises(LoadError):
        info = inspect_elf(name, BAD_FILES[name])
        space = AddressSpace(SPACE)
        try:
            load_elf(info, space, PIE_BASE)
        finally:
            space.mm.close()


def test_huge_segment_is_mapped_at_once() -> None:
    """A PT_LOAD with a 16 GiB bss maps in one go (it took minutes page by page); one that
    reaches into the top of the address space (the stack's) is refused."""
    info = inspect_elf("big", _with(MINIMAL, 64 + 40, "<Q", 1 << 34))
    space = AddressSpace(SPACE)
    try:
        t0 = time.perf_counter()
        prog = load_elf(info, space, PIE_BASE)
        assert time.perf_counter() - t0 < 2
        assert prog.brk == 0x10000 + (1 << 34)
        assert space.is_mapped(prog.brk - 0x1000, 0x1000) and not space.is_mapped(prog.brk, 1)
        assert space.read(0x10000, 4) == MINIMAL[:4]
    finally:
        space.mm.close()
    info = inspect_elf("big", _with(MINIMAL, 64 + 40, "<Q", SPACE - 0x20000))
    with pytest.raises(LoadError, match="do not fit"):
        load_elf(info, AddressSpace(SPACE), PIE_BASE)


def _add_phdr(phdr: bytes) -> bytearray:
    """MINIMAL with a second program header (the code moves up 56 bytes, the entry with it)."""
    data = bytearray(MINIMAL)
    data[64 + 56:64 + 56] = phdr
    struct.pack_into("<H", data, 56, 2)
    struct.pack_into("<Q", data, 24, 0x10000 + 64 + 112)
    struct.pack_into("<QQ", data, 64 + 32, len(data), len(data))
    return data


@pytest.mark.parametrize(("shoff", "shnum", "shstrndx"), [(1 << 24, 5, 3), (8, 3, 1)])
def test_pt_dynamic_with_corrupt_section_headers_loads(shoff: int, shnum: int,
                                                       shstrndx: int) -> None:
    """Linux reads the ELF and program headers only; so does the loader (it once used a
    library whose PT_DYNAMIC parser read the section headers, and refused the file)."""
    data = _add_phdr(struct.pack("<IIQQQQQQ", 2, 6, 0x40, 0x10040, 0x10040, 0x10, 0x10, 8))
    struct.pack_into("<Q", data, 40, shoff)
    struct.pack_into("<HHH", data, 58, 64, shnum, shstrndx)
    info = inspect_elf("dyn", bytes(data))
    assert [s.vaddr for s in info.segments] == [0x10000]


def test_bss_segment_with_offset_past_the_file_loads() -> None:
    """A PT_LOAD with filesz 0 reads nothing from the file: its offset need not lie in it
    (it was refused as "a segment lies past the end of the file")."""
    data = _add_phdr(struct.pack("<IIQQQQQQ", 1, 6, 0x3000, 0x13000, 0x13000, 0, 0x100, 0x1000))
    info = inspect_elf("bss", bytes(data))
    space = AddressSpace(SPACE)
    try:
        load_elf(info, space, PIE_BASE)
        assert space.read(0x13000, 0x100) == bytes(0x100)
    finally:
        space.mm.close()


def test_shared_page_gets_both_permissions() -> None:
    """Two segments on one page (text R+X ending, data R+W starting): the page is R+W+X."""
    from vm_runtime.linux.memory import PROT_EXEC, PROT_READ, PROT_WRITE

    # all bss: its offset only has to be congruent to its address
    data = _add_phdr(struct.pack("<IIQQQQQQ", 1, 6, 0x800, 0x10800, 0x10800, 0, 0x1700, 0x1000))
    info = inspect_elf("two", bytes(data))
    space = AddressSpace(SPACE)
    try:
        load_elf(info, space, PIE_BASE)
        assert space.prot_at(0x10000) == PROT_READ | PROT_WRITE | PROT_EXEC
        assert space.prot_at(0x11000) == PROT_READ | PROT_WRITE
        assert not space.is_mapped(0x12000, 1)
    finally:
        space.mm.close()


# -- vm run on bad files: one line, exit status 1 ------------------------------------------------
RUN_CASES = ["empty", "not an ELF", "32-bit", "x86 (32-bit machine)", "relocatable",
             "segment past the end of the file", "segment beyond the address space",
             "huge bss up to the stack", "PT_INTERP"]


@pytest.mark.slow
@pytest.mark.parametrize("name", RUN_CASES)
def test_vm_run_reports_one_error_line(name: str, tmp_path: Path) -> None:
    path = tmp_path / "prog"
    path.write_bytes(BAD_FILES[name])
    path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VM_")}
    proc = subprocess.run([sys.executable, "-m", "vm_cli", "run", str(path)],
                          capture_output=True, text=True, timeout=120, env=env)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("vm: error: "), proc.stderr
    assert str(path) in lines[0]
    assert proc.stdout == ""
