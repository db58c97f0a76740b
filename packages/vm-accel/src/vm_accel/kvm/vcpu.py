"""`KvmVcpu`: one KVM vCPU, its registers, `run_once()` events and the `run()` loop."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from vm_accel.kvm import uapi
from vm_accel.kvm.errors import KvmError, KvmIoctlError
from vm_accel.kvm.exits import (
    DebugExit,
    ExceptionExit,
    FailEntryExit,
    HaltExit,
    HypercallExit,
    InternalErrorExit,
    InterruptedExit,
    IoExit,
    KvmExit,
    MmioExit,
    ShutdownExit,
    UnknownExit,
)
from vm_accel.kvm.ioctl import ioctl, map_shared, try_ioctl, unmap
from vm_accel.kvm.signals import KICK_SIGNAL, install_kick_handler, kick_handler_installed
from vm_core import VcpuExit, VcpuExitKind

if TYPE_CHECKING:
    from vm_accel.kvm.vm import KvmVm

SEGMENT_SELECTORS = ("cs", "ds", "es", "fs", "gs", "ss")
SREG_NAMES = ("fs_base", "gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer")
REGISTER_NAMES = (*uapi.GPR_NAMES, *SEGMENT_SELECTORS, *SREG_NAMES)
"""The names `get_registers` returns and `set_registers` accepts."""

_SYSTEM_EVENTS = {
    uapi.KVM_SYSTEM_EVENT_SHUTDOWN: "system event: shutdown",
    uapi.KVM_SYSTEM_EVENT_RESET: "system event: reset",
    uapi.KVM_SYSTEM_EVENT_CRASH: "system event: crash",
}


def _release(fd: int, run_addr: int, run_size: int) -> None:
    unmap(run_addr, run_size)
    os.close(fd)


class KvmVcpu:
    """One vCPU of a `KvmVm`; run it on one host thread at a time.

    `run_once()` does one KVM_RUN and returns a typed event (`vm_accel.kvm.exits`);
    `run()` loops over it, hands port I/O and MMIO to the VM's buses, and returns
    a `vm_core.VcpuExit` for everything else.
    """

    def __init__(self, vm: KvmVm, index: int, fd: int) -> None:
        self._vm = vm
        self._index = index
        self._fd = fd
        size = vm.hypervisor.vcpu_mmap_size
        try:
            addr = map_shared(fd, size)
        except BaseException:
            os.close(fd)
            raise
        self._run_size = size
        self._run_addr = addr
        self._run: uapi.kvm_run | None = uapi.kvm_run.from_address(addr)
        self._finalizer = weakref.finalize(self, _release, fd, addr, size)
        self._thread: int | None = None
        self._pending: IoExit | MmioExit | None = None
        #: the run area's registers, once ``enable_sync_regs`` made KVM keep them there
        self._synced: uapi.kvm_regs | None = None
        install_kick_handler()

    # -- identity and lifetime ---------------------------------------------------

    @property
    def index(self) -> int:
        """The vCPU number given to KVM_CREATE_VCPU."""
        return self._index

    @property
    def fd(self) -> int:
        """The vCPU descriptor (vCPU ioctls go here)."""
        if not self._finalizer.alive:
            raise KvmError(f"vCPU {self._index} is closed", "create a new vCPU")
        return self._fd

    @property
    def closed(self) -> bool:
        """Whether `close()` has released the vCPU."""
        return not self._finalizer.alive

    @property
    def kvm_run(self) -> uapi.kvm_run:
        """The shared run area (valid until `close()`)."""
        if self._run is None:
            raise KvmError(f"vCPU {self._index} is closed", "create a new vCPU")
        return self._run

    def close(self) -> None:
        """Unmap the run area and close the vCPU descriptor (not while `run()` is running)."""
        if self._thread is not None:
            raise KvmError(
                f"vCPU {self._index} is running on another thread",
                "interrupt() it and wait for run() to return before closing",
            )
        self._run = None
        self._synced = None
        self._finalizer()

    # -- registers -----------------------------------------------------------------

    def get_regs(self) -> uapi.kvm_regs:
        """KVM_GET_REGS: general-purpose registers, rip and rflags (a copy of the run
        area's after ``enable_sync_regs``)."""
        synced = self._synced  # None once closed: the ioctl then says so
        if synced is not None:
            return uapi.kvm_regs.from_buffer_copy(synced)
        regs = uapi.kvm_regs()
        ioctl(self.fd, uapi.KVM_GET_REGS, regs)
        return regs

    def set_regs(self, regs: uapi.kvm_regs) -> None:
        """KVM_SET_REGS (after ``enable_sync_regs``: into the run area, loaded by KVM when
        the vCPU next runs)."""
        synced = self._synced
        if synced is not None:
            ctypes.memmove(ctypes.addressof(synced), ctypes.addressof(regs),
                           ctypes.sizeof(synced))
            self.kvm_run.kvm_dirty_regs |= uapi.KVM_SYNC_X86_REGS
            return
        ioctl(self.fd, uapi.KVM_SET_REGS, regs)

    def enable_sync_regs(self) -> bool:
        """Keep the general-purpose registers in the run area (KVM_CAP_SYNC_REGS): KVM
        stores them there at every exit and loads them, when written, at the next entry,
        so that `get_regs` and `set_regs` cost no ioctl (two fewer per exit, about 7 us
        each on a PVM host). False, and nothing changes, where KVM cannot."""
        if self._synced is not None:
            return True
        if not self._vm.check_extension(uapi.KVM_CAP_SYNC_REGS) & uapi.KVM_SYNC_X86_REGS:
            return False
        current = self.get_regs()
        self._synced = uapi.kvm_regs.from_address(self._run_addr + uapi.SYNC_REGS_OFFSET)
        ctypes.memmove(ctypes.addressof(self._synced), ctypes.addressof(current),
                       ctypes.sizeof(current))
        self.kvm_run.kvm_valid_regs |= uapi.KVM_SYNC_X86_REGS
        return True

    def get_sregs(self) -> uapi.kvm_sregs:
        """KVM_GET_SREGS: segments, descriptor tables, control registers, EFER."""
        sregs = uapi.kvm_sregs()
        ioctl(self.fd, uapi.KVM_GET_SREGS, sregs)
        return sregs

    def set_sregs(self, sregs: uapi.kvm_sregs) -> None:
        """KVM_SET_SREGS (KVM refuses inconsistent states with EINVAL)."""
        ioctl(self.fd, uapi.KVM_SET_SREGS, sregs)

    def get_fpu(self) -> uapi.kvm_fpu:
        """KVM_GET_FPU: x87 and SSE registers."""
        fpu = uapi.kvm_fpu()
        ioctl(self.fd, uapi.KVM_GET_FPU, fpu)
        return fpu

    def set_fpu(self, fpu: uapi.kvm_fpu) -> None:
        """KVM_SET_FPU."""
        ioctl(self.fd, uapi.KVM_SET_FPU, fpu)

    def get_msrs(self, indices: Iterable[int]) -> dict[int, int]:
        """KVM_GET_MSRS: the values of the MSRs `indices`; an MSR KVM refuses raises."""
        wanted = list(indices)
        table = uapi.msr_list_type(len(wanted))()
        table.nmsrs = len(wanted)
        for entry, index in zip(table.entries, wanted, strict=True):
            entry.index = index
        done = ioctl(self.fd, uapi.KVM_GET_MSRS, table)
        if done < len(wanted):
            raise KvmError(
                f"KVM_GET_MSRS could not read MSR {wanted[done]:#x}",
                "ask only for MSRs in KvmHypervisor.msr_index_list()",
            )
        return {e.index: e.data for e in table.entries}

    def set_msrs(self, values: Mapping[int, int]) -> None:
        """KVM_SET_MSRS: set each MSR index to its value; the first one KVM refuses raises."""
        items = list(values.items())
        table = uapi.msr_list_type(len(items))()
        table.nmsrs = len(items)
        for entry, (index, value) in zip(table.entries, items, strict=True):
            entry.index = index
            entry.data = value
        done = ioctl(self.fd, uapi.KVM_SET_MSRS, table)
        if done < len(items):
            index, value = items[done]
            raise KvmError(
                f"KVM_SET_MSRS refused MSR {index:#x} = {value:#x} "
                f"({done} of {len(items)} were set)",
                "check the MSR index and that the value is valid for this CPU",
            )

    def set_cpuid(self, entries: Iterable[uapi.kvm_cpuid_entry2]) -> None:
        """KVM_SET_CPUID2: what the guest's CPUID instruction answers."""
        items = list(entries)
        table = uapi.cpuid_table_type(len(items))()
        table.nent = len(items)
        for i, entry in enumerate(items):
            table.entries[i] = entry
        ioctl(self.fd, uapi.KVM_SET_CPUID2, table)

    def get_cpuid(self) -> list[uapi.kvm_cpuid_entry2]:
        """KVM_GET_CPUID2: the table last given to `set_cpuid`."""
        n = 64
        while True:
            table = uapi.cpuid_table_type(n)()
            table.nent = n
            _, err = try_ioctl(self.fd, uapi.KVM_GET_CPUID2, table)
            if err == errno.E2BIG and n < 4096:
                n *= 2
                continue
            if err:
                raise KvmIoctlError("KVM_GET_CPUID2", err)
            return list(table.entries[: table.nent])

    def get_registers(self) -> dict[str, int]:
        """The registers by name (`REGISTER_NAMES`): rax..r15, rip, rflags, the six
        segment selectors, fs_base, gs_base, cr0, cr2, cr3, cr4, cr8 and efer."""
        regs = self.get_regs()
        sregs = self.get_sregs()
        out = {name: getattr(regs, name) for name in uapi.GPR_NAMES}
        out.update({name: getattr(sregs, name).selector for name in SEGMENT_SELECTORS})
        out["fs_base"] = sregs.fs.base
        out["gs_base"] = sregs.gs.base
        out.update({name: getattr(sregs, name) for name in SREG_NAMES[2:]})
        return out

    def set_registers(self, registers: Mapping[str, int]) -> None:
        """Set the named registers (`REGISTER_NAMES`); others keep their values.

        A segment name sets only the selector; the hidden base, limit and
        attributes stay as they are (use `set_sregs` for whole descriptors).
        """
        unknown = sorted(set(registers) - set(REGISTER_NAMES))
        if unknown:
            raise KvmError(
                f"unknown x86_64 register name(s) {', '.join(unknown)}",
                f"use names from {', '.join(REGISTER_NAMES)}",
            )
        if any(name in registers for name in uapi.GPR_NAMES):
            regs = self.get_regs()
            for name in uapi.GPR_NAMES:
                if name in registers:
                    setattr(regs, name, registers[name])
            self.set_regs(regs)
        if any(name in registers for name in (*SEGMENT_SELECTORS, *SREG_NAMES)):
            sregs = self.get_sregs()
            for name in SEGMENT_SELECTORS:
                if name in registers:
                    getattr(sregs, name).selector = registers[name]
            if "fs_base" in registers:
                sregs.fs.base = registers["fs_base"]
            if "gs_base" in registers:
                sregs.gs.base = registers["gs_base"]
            for name in SREG_NAMES[2:]:
                if name in registers:
                    setattr(sregs, name, registers[name])
            self.set_sregs(sregs)

    # -- running ---------------------------------------------------------------------

    def run_once(self) -> KvmExit:
        """One KVM_RUN (the GIL is released meanwhile); return why it came back.

        EINTR (from `interrupt()` or another signal) is `InterruptedExit`, and
        clears ``immediate_exit`` again. Other ioctl failures raise `KvmIoctlError`.
        """
        run = self.kvm_run
        self._pending = None
        owner = self._thread is None  # run() has already registered its thread
        if owner:
            self._thread = threading.get_ident()
        try:
            _, err = try_ioctl(self._fd, uapi.KVM_RUN)
        finally:
            if owner:
                self._thread = None
        if err == errno.EINTR:
            run.immediate_exit = 0
            return InterruptedExit()
        if err:
            raise KvmIoctlError(
                "KVM_RUN", err, "the vCPU state may be inconsistent: check set_sregs/set_regs"
            )
        event = decode_exit(run, self._run_addr)
        if isinstance(event, IoExit | MmioExit):
            reads = not event.is_out if isinstance(event, IoExit) else not event.is_write
            self._pending = event if reads else None
        elif isinstance(event, InterruptedExit):  # KVM_EXIT_INTR
            run.immediate_exit = 0
        return event

    def complete(self, data: bytes | int) -> None:
        """Answer the last `run_once()` event, an IN or an MMIO read, before the next run.

        `data` is the ``size * count`` (IN) or ``length`` (MMIO) bytes, or an int
        stored little-endian in that many bytes.
        """
        pending = self._pending
        if pending is None:
            raise KvmError(
                "the last exit was not an IN or an MMIO read", "call complete() only after one"
            )
        run = self.kvm_run
        if isinstance(pending, IoExit):
            n = pending.size * pending.count
            dest = self._run_addr + run.io.data_offset
        else:
            n = pending.length
            dest = ctypes.addressof(run.mmio.data)
        raw = data.to_bytes(n, "little") if isinstance(data, int) else bytes(data)
        if len(raw) != n:
            raise KvmError(
                f"{type(pending).__name__} needs {n} byte(s) of data, not {len(raw)}",
                "pass exactly the size of the access",
            )
        ctypes.memmove(dest, raw, n)
        self._pending = None

    def run(self) -> VcpuExit:
        """Run until an exit the buses cannot handle (vm-core `Vcpu.run`).

        Port I/O goes to the VM's `pio_bus` and MMIO to its `mmio_bus` (bus
        errors propagate); HLT, shutdown, interruption, debug exits and failures
        return a `VcpuExit` whose `detail` names the KVM exit.
        """
        if self._thread is not None:
            raise KvmError(
                f"vCPU {self._index} is already running", "run it on one thread at a time"
            )
        self._thread = threading.get_ident()
        try:
            while True:
                event = self.run_once()
                if isinstance(event, IoExit):
                    self._do_io(event)
                elif isinstance(event, MmioExit):
                    self._do_mmio(event)
                else:
                    return vcpu_exit(event, self.get_regs().rip)
        finally:
            self._thread = None

    def _do_io(self, event: IoExit) -> None:
        bus, port, size = self._vm.pio_bus, event.port, event.size
        if event.is_out:
            for i in range(event.count):
                bus.write(
                    port, size, int.from_bytes(event.data[i * size : (i + 1) * size], "little")
                )
        else:
            self.complete(
                b"".join(bus.read(port, size).to_bytes(size, "little") for _ in range(event.count))
            )

    def _do_mmio(self, event: MmioExit) -> None:
        bus = self._vm.mmio_bus
        if event.is_write:
            bus.write(event.addr, event.length, int.from_bytes(event.data, "little"))
        else:
            self.complete(bus.read(event.addr, event.length))

    def interrupt(self) -> None:
        """Make a `run()` (or `run_once()`) on another thread return soon as INTERRUPTED.

        Sets ``kvm_run.immediate_exit`` (so a KVM_RUN about to start returns at
        once) and sends `vm_accel.kvm.signals.KICK_SIGNAL` to the running thread
        (so a KVM_RUN in progress returns EINTR). If no run is in progress, the
        next one returns INTERRUPTED at once: the request is not lost.
        """
        self.kvm_run.immediate_exit = 1
        thread = self._thread
        if thread is None or thread == threading.get_ident():
            return
        if not kick_handler_installed() and not install_kick_handler():
            raise KvmError(
                f"cannot kick vCPU {self._index}: signal {KICK_SIGNAL.name} has no handler, "
                "and handlers can only be installed from the main thread",
                "create the KvmHypervisor on the main thread (it installs the handler)",
            )
        with contextlib.suppress(ProcessLookupError):  # the run ended, its thread is gone
            signal.pthread_kill(thread, KICK_SIGNAL)

    def __repr__(self) -> str:
        return f"KvmVcpu({self._index}{', closed' if self.closed else ''})"


def decode_exit(run: uapi.kvm_run, run_addr: int) -> KvmExit:
    """The typed event for the exit `run` (at host address `run_addr`) describes."""
    reason = run.exit_reason
    if reason == uapi.KVM_EXIT_IO:
        io = run.io
        is_out = io.direction == uapi.KVM_EXIT_IO_OUT
        n = io.size * io.count
        data = ctypes.string_at(run_addr + io.data_offset, n) if is_out else b""
        return IoExit(io.port, io.size, io.count, is_out, data)
    if reason == uapi.KVM_EXIT_MMIO:
        mmio = run.mmio
        length = mmio.len
        data = bytes(mmio.data[:length]) if mmio.is_write else b""
        return MmioExit(mmio.phys_addr, length, bool(mmio.is_write), data)
    if reason == uapi.KVM_EXIT_HLT:
        return HaltExit()
    if reason == uapi.KVM_EXIT_SHUTDOWN:
        return ShutdownExit()
    if reason == uapi.KVM_EXIT_SYSTEM_EVENT:
        kind = run.system_event.type
        return ShutdownExit(_SYSTEM_EVENTS.get(kind, f"system event {kind}"))
    if reason == uapi.KVM_EXIT_INTR:
        return InterruptedExit()
    if reason == uapi.KVM_EXIT_FAIL_ENTRY:
        return FailEntryExit(run.fail_entry.hardware_entry_failure_reason)
    if reason == uapi.KVM_EXIT_INTERNAL_ERROR:
        internal = run.internal
        ndata = min(internal.ndata, 16)
        return InternalErrorExit(internal.suberror, tuple(internal.data[:ndata]))
    if reason == uapi.KVM_EXIT_DEBUG:
        return DebugExit(run.debug.exception, run.debug.pc)
    if reason == uapi.KVM_EXIT_EXCEPTION:
        return ExceptionExit(run.ex.exception, run.ex.error_code)
    if reason == uapi.KVM_EXIT_HYPERCALL:
        return HypercallExit(run.hypercall.nr, tuple(run.hypercall.args))
    return UnknownExit(reason, uapi.EXIT_REASON_NAMES.get(reason, f"exit reason {reason}"))


def vcpu_exit(event: KvmExit, pc: int | None) -> VcpuExit:
    """The vm-core `VcpuExit` for an event that `KvmVcpu.run` does not handle itself."""
    if isinstance(event, HaltExit):
        return VcpuExit(VcpuExitKind.HALT, pc, "KVM_EXIT_HLT")
    if isinstance(event, ShutdownExit):
        return VcpuExit(VcpuExitKind.SHUTDOWN, pc, event.detail)
    if isinstance(event, InterruptedExit):
        return VcpuExit(VcpuExitKind.INTERRUPTED, pc, "KVM_RUN interrupted")
    if isinstance(event, DebugExit):
        return VcpuExit(VcpuExitKind.DEBUG, event.pc, f"debug exception {event.exception}")
    if isinstance(event, FailEntryExit):
        detail = f"KVM_EXIT_FAIL_ENTRY: hardware entry failure reason {event.reason:#x}"
    elif isinstance(event, InternalErrorExit):
        detail = f"KVM_EXIT_INTERNAL_ERROR: {event.detail}"
    elif isinstance(event, ExceptionExit):
        detail = f"KVM_EXIT_EXCEPTION: vector {event.exception}, error code {event.error_code:#x}"
    elif isinstance(event, HypercallExit):
        detail = f"KVM_EXIT_HYPERCALL: nr {event.nr}"
    elif isinstance(event, UnknownExit):
        detail = f"unhandled {event.name} ({event.reason})"
    else:  # IoExit / MmioExit: run() handles them, run_once() callers should too
        detail = f"unhandled {event!r}"
    return VcpuExit(VcpuExitKind.FAILED, pc, detail)
