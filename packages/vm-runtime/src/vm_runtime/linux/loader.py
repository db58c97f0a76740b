"""Loading a static (or static-pie) Linux ELF program and building its initial stack.

``inspect_elf`` reads and checks the headers (one clear ``LoadError`` for anything that is not
a program we can run); ``load_elf`` maps its segments into an AddressSpace; ``build_stack``
lays out argc, argv, envp and the auxiliary vector as the kernel does.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from vm_core import VmError

from .memory import PAGE_MASK, PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace, page_align_up

EM_NAMES = {0xF3: "riscv64", 0xB7: "aarch64", 0x3E: "x86_64"}
EM_ALL = {0x03: "i386", 0x28: "arm", 0x08: "mips", 0x14: "ppc", 0x15: "ppc64", 0x16: "s390",
          0x2B: "sparcv9", 0x32: "ia64", 0x3E: "x86_64", 0xB7: "aarch64", 0xF3: "riscv",
          0x102: "loongarch"}

ET_EXEC, ET_DYN = 2, 3
ET_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
PT_LOAD, PT_INTERP, PT_PHDR, PT_GNU_STACK = 1, 3, 6, 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4

AT = {"NULL": 0, "PHDR": 3, "PHENT": 4, "PHNUM": 5, "PAGESZ": 6, "BASE": 7, "FLAGS": 8,
      "ENTRY": 9, "UID": 11, "EUID": 12, "GID": 13, "EGID": 14, "PLATFORM": 15, "HWCAP": 16,
      "CLKTCK": 17, "SECURE": 23, "RANDOM": 25, "HWCAP2": 26, "EXECFN": 31,
      "MINSIGSTKSZ": 51}


class LoadError(VmError):
    """The file is not a Linux program this vm can run; the message says why."""

    def __init__(self, path: str, problem: str, fix: str = "run a static Linux ELF program") -> None:
        self.path = path
        super().__init__(f"{path}: {problem}", fix)


@dataclass(frozen=True)
class Segment:
    vaddr: int
    memsz: int
    offset: int
    filesz: int
    flags: int


@dataclass(frozen=True)
class ElfInfo:
    """What the loader needs from an ELF file, checked."""

    path: str
    arch: str
    machine: int
    is_pie: bool
    entry: int
    phoff: int
    phentsize: int
    phnum: int
    segments: tuple[Segment, ...]
    data: bytes


def inspect_elf(path: str, data: bytes | None = None) -> ElfInfo:
    """Parse and check the ELF headers of ``path`` (raises ``LoadError`` with the reason)."""
    if data is None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise LoadError(path, f"cannot read: {exc.strerror or exc}",
                            "check the path and permissions") from None
    if len(data) < 4 or data[:4] != b"\x7fELF":
        raise LoadError(path, "not an ELF file")
    if len(data) < 64:
        raise LoadError(path, "truncated ELF header")
    if data[4] != 2:
        raise LoadError(path, "32-bit ELF programs are not supported",
                        "build the program for a 64-bit architecture")
    if data[5] != 1:
        raise LoadError(path, "big-endian ELF programs are not supported")
    try:
        return _parse(path, data)
    except LoadError:
        raise
    except Exception as exc:  # anything else a corrupt file makes us trip on
        raise LoadError(path, f"corrupt ELF file ({type(exc).__name__}: {exc})") from None


def _parse(path: str, data: bytes) -> ElfInfo:
    # Linux reads the ELF header and the program headers, nothing else (no section headers,
    # which a stripped or hand-made program may lack or garble); so does this.
    (etype, machine, _version, entry, phoff, _shoff, _flags, _ehsize, phentsize,
     phnum) = _EHDR.unpack_from(data, 16)
    arch = EM_NAMES.get(machine)
    if arch is None:
        name = EM_ALL.get(machine, str(machine))
        raise LoadError(path, f"unsupported architecture {name}",
                        "vm runs riscv64, aarch64 and x86_64 programs")
    if etype not in (ET_EXEC, ET_DYN):
        raise LoadError(path, f"not an executable (ELF type {ET_NAMES.get(etype, etype)})")
    if phentsize != _PHDR.size or phnum == 0:
        raise LoadError(path, "corrupt ELF file (bad program header table)")
    if phoff + phnum * _PHDR.size > len(data):
        raise LoadError(path, "truncated ELF file (program headers past the end)")
    segments = []
    for i in range(phnum):
        ptype, flags, offset, vaddr, _paddr, filesz, memsz, _align = _PHDR.unpack_from(
            data, phoff + i * _PHDR.size)
        if ptype == PT_INTERP:
            raise LoadError(path, "dynamically linked programs are not supported yet",
                            "link the program with -static (or -static-pie)")
        if ptype == PT_LOAD:
            seg = Segment(vaddr, memsz, offset, filesz, flags)
            if seg.filesz > seg.memsz or (seg.filesz and seg.offset + seg.filesz > len(data)):
                raise LoadError(path, "truncated or corrupt ELF file (a segment lies past the "
                                      "end of the file)")
            if (seg.vaddr - seg.offset) & PAGE_MASK:
                raise LoadError(path, "corrupt ELF file (segment not congruent to its offset)")
            segments.append(seg)
    if not segments:
        raise LoadError(path, "no loadable segments")
    return ElfInfo(path, arch, machine, etype == ET_DYN, entry, phoff, phentsize, phnum,
                   tuple(segments), data)


_EHDR = struct.Struct("<HHIQQQIHHH")  # Elf64_Ehdr from e_type to e_phnum, little-endian
_PHDR = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr, little-endian


@dataclass
class LoadedProgram:
    entry: int
    load_bias: int
    phdr: int
    phnum: int
    phent: int
    brk: int
    lowest: int
    highest: int


def _prot(flags: int) -> int:
    return ((PROT_READ if flags & PF_R else 0) | (PROT_WRITE if flags & PF_W else 0)
            | (PROT_EXEC if flags & PF_X else 0))


TOP_RESERVE_SHIFT = 6
"""The top 1/64 of the guest address space is the stack's and mmap's (``load_elf``'s default
``top``): a program reaching into it is refused, as Linux refuses one overlapping its stack."""


def load_elf(info: ElfInfo, mem: AddressSpace, pie_base: int, *,
             top: int | None = None) -> LoadedProgram:
    """Map the program's segments (at ``pie_base`` for static-pie) and give its layout.

    The segments must lie in [0x1000, ``top``) (default: the address space less its top
    1/64, `TOP_RESERVE_SHIFT`); a page two segments share gets both permissions."""
    bias = pie_base if info.is_pie else 0
    if top is None:
        top = mem.size - (mem.size >> TOP_RESERVE_SHIFT)
    lo = min(s.vaddr for s in info.segments) & ~PAGE_MASK
    hi = max(s.vaddr + s.memsz for s in info.segments)
    if bias + hi > top or bias + lo < 0x1000:
        raise LoadError(info.path, f"segments at {bias + lo:#x}..{bias + hi:#x} do not fit the "
                                   f"guest address space (0x1000..{top:#x})")
    for start, end, prot in _page_ranges(info.segments, bias):
        mem.map(start, end - start, prot, info.path)
    for s in info.segments:
        if s.filesz:
            mem.write_unchecked(bias + s.vaddr, info.data[s.offset:s.offset + s.filesz])
    phdr = 0
    for s in info.segments:  # the program headers as loaded (AT_PHDR)
        if s.offset <= info.phoff < s.offset + s.filesz:
            phdr = bias + s.vaddr + (info.phoff - s.offset)
    return LoadedProgram(entry=(bias + info.entry) & 0xFFFFFFFFFFFFFFFF, load_bias=bias,
                         phdr=phdr, phnum=info.phnum, phent=info.phentsize,
                         brk=page_align_up(bias + hi), lowest=bias + lo, highest=bias + hi)


def _page_ranges(segments: tuple[Segment, ...], bias: int) -> list[tuple[int, int, int]]:
    """The page ranges the segments cover, each with the union of the permissions of the
    segments on it: (start, end, prot), in address order. A sweep over the segments' ends, so
    that a huge segment or many of them cost no more than a few."""
    events: list[tuple[int, int, int]] = []  # (page address, +1/-1, prot)
    for s in segments:
        if not s.memsz:
            continue
        start = (bias + s.vaddr) & ~PAGE_MASK
        end = page_align_up(bias + s.vaddr + s.memsz)
        prot = _prot(s.flags)
        events += [(start, 1, prot), (end, -1, prot)]
    events.sort()
    active = [0] * 8  # how many segments with each prot cover the current page
    ranges: list[tuple[int, int, int]] = []
    i = 0
    while i < len(events):
        addr = events[i][0]
        while i < len(events) and events[i][0] == addr:
            active[events[i][2]] += events[i][1]
            i += 1
        if i == len(events):
            break
        covered = [p for p in range(8) if active[p]]
        if covered:
            prot = 0
            for p in covered:
                prot |= p
            nxt = events[i][0]
            if ranges and ranges[-1][1] == addr and ranges[-1][2] == prot:
                ranges[-1] = (ranges[-1][0], nxt, prot)
            else:
                ranges.append((addr, nxt, prot))
    return ranges


def build_stack(mem: AddressSpace, top: int, argv: list[bytes], envp: list[bytes],
                auxv: list[tuple[int, int]], execfn: bytes, random16: bytes | None = None) -> tuple[int, dict[str, int]]:
    """Write strings, the AT_RANDOM bytes, auxv, envp, argv and argc below ``top``; give the
    initial stack pointer (16-byte aligned) and the addresses of what auxv points to."""
    sp = top

    def push(data: bytes) -> int:
        nonlocal sp
        sp -= len(data)
        mem.write(sp, data)
        return sp

    where: dict[str, int] = {}
    where["execfn"] = push(execfn + b"\0")
    env_ptrs = [push(e + b"\0") for e in reversed(envp)][::-1]
    arg_ptrs = [push(a + b"\0") for a in reversed(argv)][::-1]
    sp &= ~15
    where["random"] = push(random16 if random16 is not None else os.urandom(16))
    full_auxv = [*auxv, (AT["RANDOM"], where["random"]), (AT["EXECFN"], where["execfn"]),
                 (AT["NULL"], 0)]
    words = [len(argv), *arg_ptrs, 0, *env_ptrs, 0]
    for k, v in full_auxv:
        words += [k, v]
    sp -= 8 * len(words)
    sp &= ~15
    mem.write(sp, struct.pack(f"<{len(words)}Q", *words))
    return sp, where
