"""Exit decoding and its mapping to vm-core's `VcpuExit`, on hand-made kvm_run areas
(no /dev/kvm needed); the kick signal's handler rules."""

from __future__ import annotations

import ctypes
import signal
import threading

import pytest

from vm_accel.kvm import (
    DebugExit,
    FailEntryExit,
    HaltExit,
    InternalErrorExit,
    InterruptedExit,
    IoExit,
    KvmError,
    MmioExit,
    ShutdownExit,
    UnknownExit,
    signals,
    uapi,
)
from vm_accel.kvm import vcpu as vcpu_module
from vm_accel.kvm.vcpu import decode_exit, vcpu_exit
from vm_core import VcpuExitKind


class RunArea:
    """A zeroed page laid out as kvm_run, like the vCPU mmap."""

    def __init__(self) -> None:
        self.buf = ctypes.create_string_buffer(4096)
        self.addr = ctypes.addressof(self.buf)
        self.run = uapi.kvm_run.from_address(self.addr)

    def decode(self) -> object:
        return decode_exit(self.run, self.addr)


def test_io_out_reads_data_at_data_offset() -> None:
    area = RunArea()
    area.run.exit_reason = 2  # KVM_EXIT_IO
    io = area.run.io
    io.direction, io.size, io.port, io.count, io.data_offset = 1, 2, 0x3F8, 3, 0x400
    ctypes.memmove(area.addr + 0x400, b"abcdef", 6)
    assert area.decode() == IoExit(0x3F8, 2, 3, True, b"abcdef")
    io.direction = 0
    assert area.decode() == IoExit(0x3F8, 2, 3, False, b"")


def test_mmio() -> None:
    area = RunArea()
    area.run.exit_reason = 6  # KVM_EXIT_MMIO
    mmio = area.run.mmio
    mmio.phys_addr, mmio.len, mmio.is_write = 0xFEE0_0000, 4, 1
    mmio.data[:] = list(b"\x01\x02\x03\x04\x05\x06\x07\x08")
    assert area.decode() == MmioExit(0xFEE0_0000, 4, True, b"\x01\x02\x03\x04")
    mmio.is_write = 0
    assert area.decode() == MmioExit(0xFEE0_0000, 4, False)


@pytest.mark.parametrize(
    ("reason", "event", "kind", "detail"),
    [
        (5, HaltExit(), VcpuExitKind.HALT, "KVM_EXIT_HLT"),
        (8, ShutdownExit(), VcpuExitKind.SHUTDOWN, "triple fault"),
        (10, InterruptedExit(), VcpuExitKind.INTERRUPTED, "interrupted"),
        (9, FailEntryExit(0x80000021), VcpuExitKind.FAILED, "reason 0x80000021"),
        (17, InternalErrorExit(1, (0xAB,)), VcpuExitKind.FAILED, "emulation failed), data [0xab]"),
        (99, UnknownExit(99, "exit reason 99"), VcpuExitKind.FAILED, "unhandled exit reason 99"),
        (7, UnknownExit(7, "KVM_EXIT_IRQ_WINDOW_OPEN"), VcpuExitKind.FAILED, "IRQ_WINDOW"),
    ],
)
def test_other_exits(reason: int, event: object, kind: VcpuExitKind, detail: str) -> None:
    area = RunArea()
    area.run.exit_reason = reason
    area.run.fail_entry.hardware_entry_failure_reason = 0x80000021 if reason == 9 else 0
    if reason == 17:
        area.run.internal.suberror, area.run.internal.ndata = 1, 1
        area.run.internal.data[0] = 0xAB
    decoded = area.decode()
    assert decoded == event
    result = vcpu_exit(decoded, 0x1234)  # type: ignore[arg-type]
    assert (result.kind, result.pc) == (kind, 0x1234)
    assert result.detail is not None
    assert detail in result.detail


def test_system_event_and_debug() -> None:
    area = RunArea()
    area.run.exit_reason = 24  # KVM_EXIT_SYSTEM_EVENT
    area.run.system_event.type = 2  # reset
    assert area.decode() == ShutdownExit("system event: reset")
    area.run.exit_reason = 4  # KVM_EXIT_DEBUG
    area.run.debug.exception, area.run.debug.pc = 3, 0x4000
    event = area.decode()
    assert event == DebugExit(3, 0x4000)
    assert vcpu_exit(event, 0).kind is VcpuExitKind.DEBUG  # type: ignore[arg-type]


def test_kick_handler_only_from_the_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = signal.getsignal(signals.KICK_SIGNAL)
    signal.signal(signals.KICK_SIGNAL, signal.SIG_DFL)
    try:
        answers: list[bool] = []
        thread = threading.Thread(target=lambda: answers.append(signals.install_kick_handler()))
        thread.start()
        thread.join()
        assert answers == [False]  # another thread cannot install it
        assert not signals.kick_handler_installed()
        assert signals.install_kick_handler()  # the main thread can
        assert signals.kick_handler_installed()
    finally:
        signal.signal(signals.KICK_SIGNAL, previous or signal.SIG_DFL)


def test_interrupt_without_a_handler_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vcpu_module, "kick_handler_installed", lambda: False)
    monkeypatch.setattr(vcpu_module, "install_kick_handler", lambda: False)
    area = RunArea()
    fake = vcpu_module.KvmVcpu.__new__(vcpu_module.KvmVcpu)
    fake._index, fake._run, fake._thread = 0, area.run, threading.get_ident() + 1
    with pytest.raises(KvmError, match="main thread"):
        fake.interrupt()
    assert area.run.immediate_exit == 1  # the next KVM_RUN still returns at once


def test_emulation_failure_names_the_instruction_bytes() -> None:
    fetched = bytes([4, 0x66, 0x0F, 0xEF, 0xC0, 0xF4, 0, 0])  # insn_size, then the bytes
    event = InternalErrorExit(1, (1, int.from_bytes(fetched, "little"), 0))
    assert event.instruction_bytes == b"\x66\x0f\xef\xc0"
    assert event.detail.endswith("at code bytes 66 0f ef c0")
    assert InternalErrorExit(1, (0, 5, 0)).instruction_bytes is None  # flag not set
    assert InternalErrorExit(2, (1, 5, 0)).instruction_bytes is None  # not an emulation failure
