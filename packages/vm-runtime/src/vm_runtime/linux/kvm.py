"""Running x86_64 Linux programs under KVM: the accelerator engine of the user-mode layer.

The engine plays the part the emulation engines play for the other architectures:
``run(state, mem)`` runs a thread's guest code until a syscall, a fault or an interruption and
gives a vm-core ``Trap``, and the process layer serves the syscall or delivers the signal. Guest
user code runs natively at CPL3 in 64-bit mode, set up directly through KVM_SET_SREGS.

Memory (guest-physical = guest-virtual, "identity"):

- ``[0, size)``: the process's ``AddressSpace`` host bytes (no copy), in KVM memory slots of
  ``SLOT_BYTES`` each, made when something is first mapped in them (a slot costs KVM time and
  memory in proportion to its size: one of 16 GiB took 4 ms to make and more to tear down,
  where a small program touches two of 1 GiB).
- ``[size, size + SYSTEM_SIZE)``: the system region, a host allocation of ours in a second slot
  at guest-physical and virtual ``SYS = size``, above anything the guest can map:
  ``SYS+0x0000`` GDT, ``+0x1000`` IDT, ``+0x2000`` a spare TSS, ``+0x3000`` the stub page
  (the only user-accessible page: syscall entry and exception stubs), ``+0x8000..0x480000``
  one page per vCPU (1,144 of them, more than KVM makes) holding its TSS, I/O bitmap and
  exception stack (RSP0 = the page's end; written when a vCPU first takes it), ``+0x480000``
  the page tables: PML4, one PDPT, then one page directory per GiB and one page table per
  2 MiB of ``[0, size + 6 MiB)``, laid out
  so that the PTE of virtual page ``p`` is the 8-byte word ``p`` of a flat array (and the PDE
  of 2 MiB chunk ``c`` the word ``c`` of another): a permission change writes PTEs in place.

The page tables follow the ``AddressSpace``'s permission table (its ``on_prot_change`` hook):
a page is present when it has any of R/W/X, writable with W, executable with X (EFER.NXE).
After a change every vCPU reloads its sregs (CR3) before it runs again, which flushes its TLB
and KVM's shadow of the tables.

Syscalls: MSR_LSTAR points at the stub page; on the PVM hosts we run on, `syscall` from CPL3
stays at CPL3, and the stub's ``out %al, $0x10`` exits to us as an ``IoExit`` (RFLAGS keeps
IOPL 3, MSR_SYSCALL_MASK = 0). rcx and r11 hold the return address and RFLAGS, as after a real
`syscall`. Exceptions go through 64-bit interrupt gates to stubs (``out %al, $0x20+vector``)
on the TSS's RSP0 stack; the engine reads the interrupt frame (and CR2 for #PF) from that
stack and returns the thread to CPL3 itself.
"""

from __future__ import annotations

import array
import ctypes
import mmap
import os
import struct
import threading
import time
from typing import Any

from vm_core import Trap, TrapKind, VmError

from .arch.x86_64 import FXSAVE_SIZE, GPRS, HWCAP, XSAVE_HEADER, XSAVE_MIN, X86State
from .hostsig import FD_FLOOR  # the engine's descriptors (/dev/kvm, the VM, the vCPUs) too
from .loader import AT
from .memory import PAGE_SHIFT, AddressSpace

M64 = (1 << 64) - 1
SLOT_BYTES = 1 << 30

# offsets in the system region
GDT_OFF, IDT_OFF, TSS_OFF, STUB_OFF = 0x0000, 0x1000, 0x2000, 0x3000
STACK_OFF, STACK_TOP_OFF = 0x4000, 0x6000
CPU_AREA_OFF = 0x8000  # one page per vCPU: its TSS (and I/O bitmap), its exception stack
PT_OFF = 0x480000
CPU_AREAS = (PT_OFF - CPU_AREA_OFF) >> 12  # 1,144: more than KVM makes vCPUs (1,024)
SYS_PAGES = PT_OFF >> 12  # the system region's pages the guest's page tables map
TSS_LIMIT = 104 + 8  # the 104-byte TSS, 8 bytes of I/O bitmap (ports 0..0x3f), one 0xff byte
# (only the syscall stub's port is allowed: the exception stubs run at CPL0)
SYSCALL_PORT = 0x10
EXCEPTION_PORT = 0x20  # + vector (0..31); 0x40: int $0x80; 0x41: another software interrupt
INT80_SLOT = 32
EXC_STUB_OFF = 0x100  # + 4 * vector
ERROR_CODE_VECTORS = frozenset((8, 10, 11, 12, 13, 14, 17, 21, 29, 30))

# selectors (as Linux: kernel CS 0x10, DS 0x18, user DS 0x2b, user CS 0x33, TSS 0x40)
KERNEL_CS, KERNEL_DS, USER_DS, USER_CS, TSS_SEL = 0x10, 0x18, 0x2B, 0x33, 0x40

PTE_P, PTE_W, PTE_U, PTE_A, PTE_D = 1, 2, 4, 1 << 5, 1 << 6
PTE_NX = 1 << 63
CR0_PE, CR0_MP, CR0_ET, CR0_NE, CR0_WP, CR0_PG = 1, 2, 16, 32, 1 << 16, 1 << 31
CR4_PAE, CR4_OSFXSR, CR4_OSXMMEXCPT, CR4_OSXSAVE = 1 << 5, 1 << 9, 1 << 10, 1 << 18
EFER_SCE, EFER_LME, EFER_LMA, EFER_NXE = 1, 1 << 8, 1 << 10, 1 << 11
RFLAGS_IF, RFLAGS_IOPL3 = 1 << 9, 3 << 12
MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SFMASK = 0xC0000081, 0xC0000082, 0xC0000083, 0xC0000084

# KVM_GET_XSAVE / KVM_SET_XSAVE (struct kvm_xsave: 4096 bytes), <linux/kvm.h>; vm-accel does
# not wrap them yet
_XSAVE_SIZE = 4096
KVM_GET_XSAVE = (2 << 30) | (_XSAVE_SIZE << 16) | (0xAE << 8) | 0xA4
KVM_SET_XSAVE = (1 << 30) | (_XSAVE_SIZE << 16) | (0xAE << 8) | 0xA5
# KVM_SET_XCRS (struct kvm_xcrs: u32 nr_xcrs, u32 flags, 16 x {u32 xcr, u32, u64 value},
# u64 padding[16]: 392 bytes)
_XCRS_SIZE = 392
KVM_SET_XCRS = (1 << 30) | (_XCRS_SIZE << 16) | (0xAE << 8) | 0xA7

# KVM_SET_SIGNAL_MASK (struct kvm_signal_mask: u32 len, then the sigset)
KVM_SET_SIGNAL_MASK = (1 << 30) | (4 << 16) | (0xAE << 8) | 0x8B
KICK_SIGNAL = 10  # SIGUSR1: vm_accel.kvm.KICK_SIGNAL, what KvmVcpu.interrupt() sends
_SI_TKILL = -6

#: the environment variable that overrides the KVM device path (tests: a missing device)
DEVICE_ENV = "VM_KVM_DEVICE"


_NO_KVM_FIX = "run x86_64 programs on a Linux host with a usable /dev/kvm"


class KvmUnavailable(VmError):
    """KVM cannot run this program here; the message says why."""


class _Region:
    """A RamRegion-like view of host bytes for ``KvmVm.map_ram``."""

    readonly = False
    closed = False

    def __init__(self, base: int, size: int, host_address: int, name: str) -> None:
        self.base = base
        self.size = size
        self.host_address = host_address
        self.name = name





def _xsave_layout(cpuid: Any) -> tuple[int, int]:
    """(XCR0, image size) for the user XSAVE features KVM offers (CPUID leaf 0xD): the
    standard format ends where the last feature's area does (sub-leaf i: size, offset)."""
    leaves = {e.index: e for e in cpuid if e.function == 0xD}
    main = leaves.get(0)
    if main is None or main.eax & 3 != 3:
        return 0, 0
    xfeatures = main.eax | main.edx << 32
    end = XSAVE_MIN
    for bit in range(2, 64):
        sub = leaves.get(bit)
        if xfeatures >> bit & 1 and sub is not None:
            end = max(end, sub.ebx + sub.eax)
    return xfeatures, end


def _host_auxv() -> dict[int, int]:
    """This process's auxiliary vector, as the host kernel gave it."""
    try:
        with open("/proc/self/auxv", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    return dict(struct.iter_unpack("<QQ", raw[:len(raw) // 16 * 16]))


class _Stats:
    def __init__(self) -> None:
        self.exits: dict[str, int] = {}
        self.run_seconds = 0.0
        self.zaps = 0


def probe_reason() -> str | None:
    """Why KVM cannot be used here (None: it can)."""
    from vm_accel.kvm import probe

    found = probe(os.environ.get(DEVICE_ENV) or None)
    if found.usable:
        return None
    return str(found.reason)


class KvmEngine:
    """One KVM VM over a process's address space; one vCPU per guest thread."""

    name = "kvm"

    def __init__(self, mem: AddressSpace) -> None:
        from vm_accel.kvm import KvmHypervisor
        from vm_core import AcceleratorUnavailable

        reason = probe_reason()
        if reason is not None:
            raise KvmUnavailable(f"KVM cannot be used: {reason}", _NO_KVM_FIX)
        self.mem = mem
        self.size = mem.size
        self.sys_base = mem.size
        self.lock = threading.RLock()
        self.stats = _Stats()
        # the guest's pages, then the system's (in whole page tables of 512)
        npages = (self.size >> PAGE_SHIFT) + ((SYS_PAGES + 511) & ~511)
        self.nchunks = npages >> 9
        self.ngib = (self.size >> 30) + 1
        self.pdpt_off = PT_OFF + 0x1000
        self.pd_off = PT_OFF + 0x2000
        self.pte_off = self.pd_off + self.ngib * 0x1000
        self.sys_size = (self.pte_off + npages * 8 + 0xFFFF) & ~0xFFFF
        self.sys_mm = mmap.mmap(-1, self.sys_size,
                                flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000)
        self.sys_host = ctypes.addressof(ctypes.c_char.from_buffer(self.sys_mm))
        self.ptes = memoryview(self.sys_mm)[self.pte_off:self.pte_off + npages * 8].cast("Q")
        self._build_system()
        self.generation = 1
        #: where a host signal the engine took by mistake goes (the process's host signals)
        self.forward_signal: Any = None
        self.vcpus: list[Any] = []
        #: vCPUs of threads that ended, for the next new threads: KVM keeps every vCPU until
        #: the VM goes (closing its descriptor frees nothing), and makes at most 1,024
        self.idle: list[Any] = []
        #: the FPU/SSE state a vCPU starts with, given to a reused one
        self.initial_xsave: bytes | None = None
        self.next_index = 0
        try:
            self.hv = KvmHypervisor(os.environ.get(DEVICE_ENV) or None, fd_floor=FD_FLOOR)
        except AcceleratorUnavailable as exc:
            raise KvmUnavailable(f"KVM cannot be used: {exc.reason}", _NO_KVM_FIX) from None
        cpuid = self.hv.supported_cpuid()
        #: AT_HWCAP as Linux gives it on x86_64: CPUID.1:EDX, here as KVM reports it
        self.hwcap = next((e.edx for e in cpuid if e.function == 1), HWCAP)
        #: the XSAVE features guest threads have (XCR0: what KVM offers, the host's) and the
        #: size of their standard-format image, which a signal frame holds
        self.xfeatures, self.xstate_size = _xsave_layout(cpuid)
        #: AT_MINSIGSTKSZ: the host kernel's own (its frames hold the same XSAVE state)
        self.minsigstksz = _host_auxv().get(AT["MINSIGSTKSZ"], 0)
        #: the guest memory slots made so far: chunk (address // SLOT_BYTES) -> slot number
        self.slots: dict[int, int] = {}
        self._create_vm()
        if mem.names:  # the caller mapped something already (else the table is all zero)
            self._ensure_slots(0, self.size)
            self.sync_range(0, self.size)
        mem.on_prot_change = self.on_prot_change

    # -- the system region ------------------------------------------------------------------------
    def _build_system(self) -> None:
        mm = self.sys_mm
        sys_base = self.sys_base
        # GDT
        gdt = {KERNEL_CS: 0x00AF9B000000FFFF, KERNEL_DS: 0x00CF93000000FFFF,
               USER_DS & ~3: 0x00CFF3000000FFFF, USER_CS & ~3: 0x00AFFB000000FFFF}
        for sel, desc in gdt.items():
            struct.pack_into("<Q", mm, GDT_OFF + sel, desc)
        tss = sys_base + TSS_OFF
        low = (TSS_LIMIT | (tss & 0xFFFFFF) << 16 | 0x89 << 40 | ((tss >> 24) & 0xFF) << 56)
        struct.pack_into("<QQ", mm, GDT_OFF + TSS_SEL, low, tss >> 32)
        self._write_tss(TSS_OFF, STACK_TOP_OFF)  # a spare; each vCPU's is in its area
        self.areas: set[int] = set()  # the vCPU areas whose TSS is written
        # stubs: the syscall entry, then one per exception vector
        stub = sys_base + STUB_OFF
        mm[STUB_OFF:STUB_OFF + 4] = bytes((0xE6, SYSCALL_PORT, 0x0F, 0x0B))  # out; ud2
        for v in range(34):  # 0..31: exceptions, 32: int $0x80, 33: any other vector
            off = STUB_OFF + EXC_STUB_OFF + 4 * v
            mm[off:off + 4] = bytes((0xE6, EXCEPTION_PORT + v, 0xF4, 0xF4))  # out; hlt
        for v in range(256):
            slot = v if v < 32 else INT80_SLOT if v == 0x80 else 33
            handler = stub + EXC_STUB_OFF + 4 * slot
            # int3, into and int $0x80 are allowed from user code; any other `int n` is a #GP
            dpl = 3 if v in (3, 4, 0x80) else 0
            attr = 0x8E | dpl << 5
            low = (handler & 0xFFFF) | KERNEL_CS << 16 | attr << 40 | ((handler >> 16) & 0xFFFF) << 48
            struct.pack_into("<QQ", mm, IDT_OFF + 16 * v, low, handler >> 32)
        # page-table upper levels: everything present, the leaves decide
        upper = PTE_P | PTE_W | PTE_U | PTE_A
        pt_base = sys_base + PT_OFF
        struct.pack_into("<Q", mm, PT_OFF, (pt_base + 0x1000) | upper)
        for g in range(self.ngib):
            struct.pack_into("<Q", mm, self.pdpt_off + 8 * g,
                             (sys_base + self.pd_off + 0x1000 * g) | upper)
        first_pt = sys_base + self.pte_off  # page aligned: | upper is + upper
        mm[self.pd_off:self.pd_off + self.nchunks * 8] = _array_q(
            range(first_pt + upper, first_pt + upper + 0x1000 * self.nchunks, 0x1000))
        # the system's own pages: supervisor data, but the stub page user-executable
        first = self.pte_off + 8 * (sys_base >> PAGE_SHIFT)
        data = PTE_P | PTE_A | PTE_D | PTE_W | PTE_NX
        mm[first:first + 8 * SYS_PAGES] = _array_q(
            range(sys_base | data, (sys_base + (SYS_PAGES << PAGE_SHIFT)) | data, 1 << PAGE_SHIFT))
        struct.pack_into("<Q", mm, first + 8 * (STUB_OFF >> PAGE_SHIFT),
                         (sys_base + STUB_OFF) | PTE_P | PTE_A | PTE_D | PTE_U)

    def _write_tss(self, off: int, top: int) -> None:
        """A TSS at ``off``: RSP0 = ``top``, and an I/O bitmap that lets CPL3 use ports 0..0x3f
        (the stubs'), ending in 0xff; every other port is beyond the limit, a #GP."""
        mm = self.sys_mm
        struct.pack_into("<Q", mm, off + 4, self.sys_base + top)
        struct.pack_into("<H", mm, off + 102, 104)
        bitmap = bytearray(b"\xff" * 9)
        bitmap[SYSCALL_PORT >> 3] &= ~(1 << (SYSCALL_PORT & 7))
        mm[off + 104:off + 113] = bytes(bitmap)

    def cpu_area(self, index: int) -> int:
        """The offset of vCPU ``index``'s page (its TSS, then its exception stack up to the
        page's end), written the first time it is asked for."""
        off = CPU_AREA_OFF + ((index % CPU_AREAS) << PAGE_SHIFT)
        if off not in self.areas:
            self._write_tss(off, off + (1 << PAGE_SHIFT))
            self.areas.add(off)
        return off

    # -- the VM ---------------------------------------------------------------------------------
    def _create_vm(self) -> None:
        self.vm = self.hv.create_vm()
        chunks, self.slots = self.slots, {}
        for chunk in chunks:  # a VM made again (after a fork) has the slots the old one had
            self._ensure_slots(chunk * SLOT_BYTES, 1)
        self.sys_region = _Region(self.sys_base, self.sys_size, self.sys_host, "vm system region")
        self.sys_slot = self.vm.map_ram(self.sys_region)
        # a one-page slot above everything, that nothing uses: removing it is how the page
        # tables' shadows are dropped (see _forget_shadow_tables)
        self.flush_region = _Region(self.sys_base + self.sys_size, 1 << PAGE_SHIFT,
                                    self.sys_host, "vm flush slot")
        self.flush_slot = self.vm.map_ram(self.flush_region)

    def _ensure_slots(self, addr: int, length: int) -> None:
        """Give every ``SLOT_BYTES`` chunk of guest memory that [addr, addr+length) touches
        its memory slot."""
        first = addr // SLOT_BYTES
        last = (min(addr + max(length, 1), self.size) - 1) // SLOT_BYTES
        for chunk in range(first, last + 1):
            if chunk not in self.slots:
                base = chunk * SLOT_BYTES
                region = _Region(base, min(SLOT_BYTES, self.size - base), self.mem.base + base,
                                 f"guest memory {base:#x}")
                self.slots[chunk] = self.vm.map_ram(region)

    def _forget_shadow_tables(self) -> None:
        """Make KVM forget what it derived from our page tables. A shadow-paging KVM (such as
        PVM) write-protects guest page tables against the guest's own stores, but it does not
        see ours: after a permission was taken away, the removal of a memory slot is what
        makes it drop every shadow page (KVM zaps them all when any slot goes away). The slot
        removed and added again is one nobody uses: removing the one with the tables would
        leave other vCPUs a moment without them (a triple fault)."""
        self.vm.unmap_ram(self.flush_slot)
        self.flush_slot = self.vm.map_ram(self.flush_region)
        self.stats.zaps += 1

    def own_fds(self) -> set[int]:
        """The host descriptors the engine holds (/dev/kvm, the VM, the vCPUs, idle ones too):
        the guest must not close them (close_range, or a loop of close up to the descriptor
        limit)."""
        with self.lock:
            holders = [self.hv, self.vm, *(cpu.vcpu for cpu in self.vcpus), *self.idle]
        return {h.fd for h in holders if not h.closed}

    def fork_locks(self) -> list[Any]:
        """What the forking thread holds across a fork (Process.forking): another thread may be
        making its vCPU or writing page tables, and the child must not inherit that half done
        with the lock held by a thread it does not have."""
        return [self.lock]

    def after_fork(self) -> None:
        """In a forked child: the parent's VM belongs to the parent's memory; build a new one
        over the child's private copy (the vCPU of the forking thread is made again on its
        next run)."""
        from vm_accel.kvm import KvmHypervisor

        old = (self.vm, self.hv, self.vcpus, self.idle)
        self.lock = threading.RLock()
        self.vcpus = []
        self.idle = []
        self.next_index = 0
        self.hv = KvmHypervisor(os.environ.get(DEVICE_ENV) or None, fd_floor=FD_FLOOR)
        self._create_vm()
        self.generation += 1
        del old  # their descriptors are closed by their finalizers

    def on_prot_change(self, addr: int, length: int) -> None:
        """The AddressSpace changed permissions of [addr, addr+length)."""
        with self.lock:
            self._ensure_slots(addr, length)
            if self.sync_range(addr, length):
                self._forget_shadow_tables()
                self.generation += 1
                for cpu in list(self.vcpus):  # no thread may go on with the old permissions
                    if cpu.running:
                        cpu.vcpu.interrupt()

    def sync_range(self, addr: int, length: int) -> bool:
        """Write the PTEs of [addr, addr+length) from the permission table; give whether a
        page lost a permission it had (the TLBs must then be flushed; a page that only gains
        one is found by the next walk of the tables)."""
        first = addr >> PAGE_SHIFT
        last = min((addr + length + 0xFFF) >> PAGE_SHIFT, self.size >> PAGE_SHIFT)
        perms = self.mem.perms
        table = _PTE_FLAGS
        if last <= first:
            return False
        window = perms[first:last]
        prot = window[0] & 7
        if window.translate(_PROT_ONLY).count(prot) == len(window):  # one permission: fast
            flags = table[prot]
            if flags:
                new = _array_q(range((first << PAGE_SHIFT) | flags, (last << PAGE_SHIFT) | flags,
                                     1 << PAGE_SHIFT))
            else:
                new = _array_q(bytes(8 * (last - first)))
        else:
            new = _array_q([(p << PAGE_SHIFT) | table[perms[p] & 7] if perms[p] & 7 else 0
                            for p in range(first, last)])
        old = self.ptes[first:last]
        reduced = False
        if old != new:
            for before, after in zip(old, new, strict=True):
                if before & PTE_P and (not after & PTE_P or (before & PTE_W and not after & PTE_W)
                                       or (after & PTE_NX and not before & PTE_NX)):
                    reduced = True
                    break
            self.ptes[first:last] = new
        return reduced

    # -- vCPUs ----------------------------------------------------------------------------------
    def _vcpu_for(self, state: X86State) -> _Cpu:
        cpu = state.vcpu
        if cpu is None or cpu.engine_vm is not self.vm:
            with self.lock:
                if self.idle:  # a thread that ended left it: its FPU state is not ours
                    cpu = _Cpu(self, self.idle.pop(), state)
                    if state.inherit_xsave is None and self.initial_xsave is not None:
                        cpu.set_xsave(self.initial_xsave)
                else:
                    cpu = _Cpu(self, self.vm.create_vcpu(self.next_index), state)
                    self.next_index += 1
                    if self.initial_xsave is None:
                        self.initial_xsave = cpu.xsave_image()
                self.vcpus.append(cpu)
            state.vcpu = cpu
            state.fpu_read = cpu.fpu_read
            state.fpu_write = cpu.fpu_write
            state.xfeatures = self.xfeatures
            if state.inherit_xsave is not None:
                cpu.set_xsave(state.inherit_xsave)
                state.inherit_xsave = None
        return cpu

    def release(self, state: X86State) -> None:
        """A thread ended: its vCPU waits for the next new thread (``idle``)."""
        cpu = state.vcpu
        if cpu is not None:
            state.vcpu = None
            with self.lock:
                if cpu in self.vcpus:
                    self.vcpus.remove(cpu)
                if cpu.engine_vm is self.vm and not cpu.vcpu.closed:
                    self.idle.append(cpu.vcpu)
                    return
            cpu.vcpu.close()

    def kick(self, state: X86State) -> None:
        """Make the thread's vCPU leave guest code soon (a signal for it is pending). Also
        when it is not inside KVM_RUN right now: its next run then returns at once, so a
        thread on its way back into guest code does not miss the signal."""
        cpu = state.vcpu
        if cpu is not None and not cpu.vcpu.closed:
            cpu.vcpu.interrupt()

    def run(self, state: X86State, mem: Any, max_insns: int = 0) -> Trap | None:
        cpu = self._vcpu_for(state)
        return cpu.run()

    # -- telemetry ------------------------------------------------------------------------------
    def stats_line(self, elapsed: float) -> str:
        exits = ", ".join(f"{k} {v}" for k, v in sorted(self.stats.exits.items()))
        return (f"vm stats: kvm: {elapsed:.3f}s, {self.stats.run_seconds:.3f}s in KVM_RUN; "
                f"{self.stats.zaps} page-table flushes; exits: {exits}\n")

    def invalidate(self, addr: int, length: int) -> None:
        """Guest code changed: nothing to do, the CPU runs it directly."""

    def invalidate_all(self) -> None:
        """Nothing to do (see ``invalidate``)."""


_PTE_FLAGS = [0] * 8
for _prot in range(1, 8):
    _PTE_FLAGS[_prot] = (PTE_P | PTE_U | PTE_A | PTE_D | (PTE_W if _prot & 2 else 0)
                         | (0 if _prot & 4 else PTE_NX))


_PROT_ONLY = bytes(b & 7 for b in range(256))


def _array_q(values: Any) -> memoryview:
    if isinstance(values, bytes):
        return memoryview(values).cast("Q")
    return memoryview(array.array("Q", values))


class _Cpu:
    """One guest thread's vCPU and the register traffic between it and X86State."""

    def __init__(self, engine: KvmEngine, vcpu: Any, state: X86State) -> None:
        from vm_accel.kvm import uapi  # noqa: F401  (the structures come with the vCPU)

        self.engine = engine
        self.engine_vm = engine.vm
        self.vcpu = vcpu
        self.state = state
        self.running = False
        self.generation = 0
        self.in_kernel = False  # the last exit was an exception: CS is the kernel's
        from vm_accel.kvm.ioctl import ioctl

        vcpu.enable_sync_regs()  # registers through the run area: no ioctls at each exit
        self.regs = vcpu.get_regs()
        self.sregs = self._initial_sregs()
        vcpu.set_msrs({MSR_STAR: (KERNEL_CS << 32) | ((USER_CS - 16) << 48),
                       MSR_LSTAR: engine.sys_base + STUB_OFF, MSR_CSTAR: engine.sys_base + STUB_OFF,
                       MSR_SFMASK: 0})
        self.xsave_buf = ctypes.create_string_buffer(_XSAVE_SIZE)
        if engine.xfeatures:  # XCR0 as Linux sets it (and CR4.OSXSAVE, in the sregs)
            xcrs = ctypes.create_string_buffer(_XCRS_SIZE)
            struct.pack_into("<IIIIQ", xcrs, 0, 1, 0, 0, 0, engine.xfeatures)
            ioctl(vcpu.fd, KVM_SET_XCRS, xcrs)
        # inside KVM_RUN only the kick signal is unblocked, so that a kick interrupts guest
        # code while every other signal stays with the host-signal thread
        mask = ((1 << 64) - 1) & ~(1 << (KICK_SIGNAL - 1))
        ioctl(vcpu.fd, KVM_SET_SIGNAL_MASK,
              ctypes.create_string_buffer(struct.pack("<IQ", 8, mask), 12))

    def _initial_sregs(self) -> Any:
        from vm_accel.kvm.uapi import kvm_segment

        eng = self.engine
        sregs = self.vcpu.get_sregs()

        def seg(selector: int, *, code: bool, dpl: int) -> Any:
            s = kvm_segment()
            s.base, s.limit, s.selector = 0, 0xFFFFFFFF, selector
            s.type = 0xB if code else 0x3
            s.present, s.dpl, s.s, s.g = 1, dpl, 1, 1
            s.l = 1 if code else 0
            s.db = 0 if code else 1
            return s

        sregs.cs = seg(USER_CS, code=True, dpl=3)
        for name in ("ds", "es", "ss"):
            setattr(sregs, name, seg(USER_DS, code=False, dpl=3))
        for name in ("fs", "gs"):
            setattr(sregs, name, seg(0, code=False, dpl=3))
        tr = kvm_segment()
        area = eng.cpu_area(self.vcpu.index)
        tr.base, tr.limit, tr.selector = eng.sys_base + area, TSS_LIMIT, TSS_SEL
        tr.type, tr.present, tr.s = 0xB, 1, 0  # busy 64-bit TSS
        sregs.tr = tr
        ldt = kvm_segment()
        ldt.type, ldt.present, ldt.unusable = 2, 0, 1
        sregs.ldt = ldt
        sregs.gdt.base, sregs.gdt.limit = eng.sys_base + GDT_OFF, 0x4F
        sregs.idt.base, sregs.idt.limit = eng.sys_base + IDT_OFF, 16 * 256 - 1
        sregs.cr3 = eng.sys_base + PT_OFF
        sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT
        if eng.xfeatures:
            sregs.cr4 |= CR4_OSXSAVE
        sregs.cr0 = CR0_PG | CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_MP
        sregs.efer = EFER_LME | EFER_LMA | EFER_SCE | EFER_NXE
        return sregs

    def _user_segments(self) -> None:
        """Back to CPL3 after an exception took the vCPU to the kernel's CS."""
        fresh = self._initial_sregs()
        self.sregs.cs = fresh.cs
        self.sregs.ss = fresh.ss

    # -- FPU state (signal frames) -----------------------------------------------------------------
    def xsave_image(self) -> bytes:
        from vm_accel.kvm.ioctl import ioctl

        ioctl(self.vcpu.fd, KVM_GET_XSAVE, self.xsave_buf)
        return self.xsave_buf.raw

    def set_xsave(self, image: bytes) -> None:
        from vm_accel.kvm.ioctl import ioctl

        buf = ctypes.create_string_buffer(bytes(image), _XSAVE_SIZE)
        ioctl(self.vcpu.fd, KVM_SET_XSAVE, buf)

    def fpu_read(self) -> bytes:
        """The thread's FPU/SSE state for a signal frame: the standard-format XSAVE image of
        its features (its first 512 bytes are the FXSAVE image), or the FXSAVE image alone
        where there is no XSAVE."""
        return self.xsave_image()[:self.engine.xstate_size or FXSAVE_SIZE]

    def fpu_write(self, image: bytes) -> None:
        """Load an image of ``fpu_read``'s kind, or a bare FXSAVE image (512 bytes): then the
        x87 and SSE state come from it and every other feature starts afresh, as Linux
        restores a frame without extended state."""
        full = bytearray(_XSAVE_SIZE)
        if len(image) >= XSAVE_MIN:
            full[:len(image)] = image
        else:
            full[:FXSAVE_SIZE] = image[:FXSAVE_SIZE]
            struct.pack_into("<Q", full, XSAVE_HEADER, 3)  # XSTATE_BV: x87 and SSE as given
        full[464:FXSAVE_SIZE] = bytes(FXSAVE_SIZE - 464)  # the software-reserved bytes
        self.set_xsave(bytes(full))

    # -- running -------------------------------------------------------------------------------
    def run(self) -> Trap | None:
        from vm_accel.kvm import InterruptedExit, IoExit

        engine = self.engine
        state = self.state
        vcpu = self.vcpu
        regs = self.regs
        for name in GPRS:
            setattr(regs, name, getattr(state, name))
        regs.rip = state.pc
        regs.rflags = (state.rflags | RFLAGS_IOPL3) & M64
        if state.fs_dirty or self.generation != engine.generation or self.in_kernel:
            self.sregs.fs.base = state.fs_base
            self.sregs.gs.base = state.gs_base
            if self.in_kernel:
                self._user_segments()
                self.in_kernel = False
            self.generation = engine.generation
            # also reloads CR3: the TLB follows the page tables. Before set_regs: a PVM host
            # recomputes RFLAGS (IOPL) when the segments change
            vcpu.set_sregs(self.sregs)
            state.fs_dirty = False
        vcpu.set_regs(regs)
        self.running = True
        started = time.perf_counter()
        try:
            event = vcpu.run_once()
        finally:
            self.running = False
            engine.stats.run_seconds += time.perf_counter() - started
        regs = vcpu.get_regs()
        self.regs = regs
        for name in GPRS:
            setattr(state, name, getattr(regs, name))
        stub = engine.sys_base + STUB_OFF
        kind = type(event).__name__
        engine.stats.exits[kind] = engine.stats.exits.get(kind, 0) + 1
        if isinstance(event, IoExit) and event.is_out:
            port = event.port
            if port == SYSCALL_PORT and regs.rip == stub + 2:
                state.pc = (regs.rcx - 2) & M64  # the process layer steps over the syscall
                state.rflags = regs.r11
                return Trap(TrapKind.SYSCALL, state.pc)
            vector = port - EXCEPTION_PORT
            if 0 <= vector < 34 and regs.rip == stub + EXC_STUB_OFF + 4 * vector + 2:
                return self._exception(vector)
        if isinstance(event, InterruptedExit):
            state.pc = regs.rip
            state.rflags = regs.rflags
            self._drain_kicks()
            return None
        state.pc = regs.rip
        state.rflags = regs.rflags
        if isinstance(event, IoExit):  # the guest's own in/out: a #GP under Linux
            return self._guest_io(event)
        raise VmError(f"the vCPU stopped unexpectedly: {event!r} at rip {regs.rip:#x}",
                      "this is a bug of vm's KVM engine: please report it")

    def _guest_io(self, event: Any) -> Trap:
        """The guest ran `in` or `out` on the one port the I/O bitmap lets through: Linux
        gives it no ports, so this is a #GP at the instruction. KVM finishes an I/O
        instruction it handed us when the vCPU next runs, so that is done first (with
        immediate_exit, the vCPU runs no guest code), and the state is then put back."""
        from vm_accel.kvm import InterruptedExit

        state = self.state
        regs = self.regs
        saved = {name: getattr(regs, name) for name in GPRS}
        rip = regs.rip
        if not event.is_out:
            self.vcpu.complete(bytes(event.size * event.count))
        self.vcpu.kvm_run.immediate_exit = 1
        done = self.vcpu.run_once()
        self.vcpu.kvm_run.immediate_exit = 0
        if not isinstance(done, InterruptedExit):
            raise VmError(f"the vCPU did not stop after an I/O instruction: {done!r}",
                          "this is a bug of vm's KVM engine: please report it")
        self._drain_kicks()
        for name, value in saved.items():
            setattr(state, name, value)
        # the instruction: `in`/`out` with an imm8 port is 2 bytes, with %dx 1 (a prefix more
        # for 16-bit data); what matters is the pc the signal reports
        state.pc = (rip - _io_insn_length(self.engine.mem, rip)) & M64
        state.trapno, state.err, state.cr2 = 13, 0, 0
        return Trap(TrapKind.MEM_FAULT, state.pc, 0, "general protection (I/O instruction)")

    def _int_imm8(self, rip: int) -> int | None:
        """n when the instruction at ``rip`` is `int n` (CD ib), else None."""
        mem = self.engine.mem
        if 0 <= rip < mem.size - 2 and mem.prot_at(rip) & 4 and mem.mm[rip] == 0xCD:
            return int(mem.mm[rip + 1])
        return None

    def _drain_kicks(self) -> None:
        """Take the kick signals pending for this thread (blocked outside KVM_RUN, they would
        stop every later KVM_RUN at once). A SIGUSR1 someone else sent the process is handed
        on to the guest."""
        import signal

        while True:
            try:
                got = signal.sigtimedwait([KICK_SIGNAL], 0)
            except (OSError, ValueError):
                return
            if got is None:
                return
            if got.si_code == _SI_TKILL and got.si_pid == os.getpid():
                continue
            forward = self.engine.forward_signal
            if forward is not None:
                forward(struct.pack("<iii4xiIi", got.si_signo, got.si_errno, got.si_code,
                                    got.si_pid, got.si_uid, got.si_status).ljust(128, b"\0"))

    def _exception(self, vector: int) -> Trap | None:
        """An exception from guest code: read the interrupt frame on the RSP0 stack."""
        state = self.state
        regs = self.regs
        self.in_kernel = True
        frame = regs.rsp - self.engine.sys_base
        mm = self.engine.sys_mm
        err = 0
        if vector in ERROR_CODE_VECTORS:
            (err,) = struct.unpack_from("<Q", mm, frame)
            frame += 8
        rip, _cs, rflags, rsp, _ss = struct.unpack_from("<5Q", mm, frame)
        state.pc = rip
        state.rflags = rflags
        state.rsp = rsp
        state.trapno = vector
        state.err = err
        state.cr2 = 0
        soft = self._int_imm8(rip) if vector == 6 else None
        if soft is not None:
            # a PVM host reports `int n` from user code as a #UD at the instruction; Linux
            # answers int $0x80 (the 32-bit syscall entry), int $3 and int $4 (#BP, #OF
            # after the instruction), and any other n with a #GP (its gate is DPL 0)
            if soft == 0x80:
                vector = INT80_SLOT
                state.pc = rip = (rip + 2) & M64
            elif soft in (3, 4):
                vector = soft
                state.pc = rip = (rip + 2) & M64
            else:
                vector, err = 13, (soft << 3) | 2
            state.trapno, state.err = vector, err
        if vector == INT80_SLOT:
            # int $0x80: there is no i386 syscall layer, so every call answers ENOSYS
            state.trapno = 0
            state.rax = -38 & M64
            return None
        if vector == 33:  # an `int n` whose gate lets user code in: none does
            raise VmError(f"unexpected software interrupt at {rip:#x}",
                          "this is a bug of vm's KVM engine: please report it")
        if vector == 14:  # #PF
            cr2 = self.vcpu.get_sregs().cr2
            state.cr2 = cr2
            return Trap(TrapKind.MEM_FAULT, rip, cr2, f"page fault, error code {err:#x}")
        if vector == 0:  # #DE
            return Trap(TrapKind.DIV_BY_ZERO, rip)
        if vector == 6:  # #UD
            return Trap(TrapKind.ILLEGAL, rip)
        if vector in (1, 3):  # #DB, #BP (int3 leaves rip after it)
            return Trap(TrapKind.BREAKPOINT, rip)
        if vector in (13, 12, 11, 10):  # #GP, #SS, #NP, #TS
            return Trap(TrapKind.MEM_FAULT, rip, 0, f"general protection, error code {err:#x}")
        if vector == 17:
            return Trap(TrapKind.MISALIGNED, rip, 0)
        if vector in (16, 19):  # x87 / SIMD floating-point
            return Trap(TrapKind.USER, rip, None, f"floating-point exception {vector}")
        return Trap(TrapKind.USER, rip, None, f"exception {vector}")


def _io_insn_length(mem: AddressSpace, after: int) -> int:
    """The length of the in/out instruction that ends at ``after``: 2 for the imm8 forms
    (E4-E7), else 1 (EC-EF), plus a 0x66 prefix."""
    try:
        before = mem.mm[max(after - 3, 0):after]
    except (ValueError, IndexError):
        return 2
    if len(before) >= 2 and before[-2] in (0xE4, 0xE5, 0xE6, 0xE7):
        return 3 if len(before) == 3 and before[-3] == 0x66 else 2
    return 2 if len(before) >= 2 and before[-2] == 0x66 else 1


__all__ = ["DEVICE_ENV", "KvmEngine", "KvmUnavailable", "probe_reason"]
