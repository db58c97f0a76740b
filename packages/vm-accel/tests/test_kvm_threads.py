"""vCPUs on threads: KVM_RUN releases the GIL, two vCPUs run at once, interrupt() stops a spin."""

from __future__ import annotations

import threading
import time

from kvm_guest_support import CODE, HANDSHAKE, SPIN, enter_long_mode, machine, needs_kvm

from vm_accel.kvm import KICK_SIGNAL, InterruptedExit, IoExit, KvmExit, KvmVcpu
from vm_core import VcpuExit, VcpuExitKind

pytestmark = needs_kvm

FLAGS = 0x9000


def _in_thread(
    target: KvmVcpu, results: dict[int, object], method: str = "run"
) -> threading.Thread:
    def body() -> None:
        results[target.index] = getattr(target, method)()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def test_two_vcpus_run_in_parallel() -> None:
    # Each guest raises its own flag, then waits for the other's: they can only both
    # finish if both are inside KVM_RUN at the same time, on two threads.
    with machine() as m:
        m.load(CODE, HANDSHAKE)
        second = m.vm.create_vcpu(1)
        for vcpu, mine, other in ((m.vcpu, FLAGS, FLAGS + 4), (second, FLAGS + 4, FLAGS)):
            enter_long_mode(m, CODE, user=True, vcpu=vcpu)
            vcpu.set_registers({"rsi": mine, "rdi": other, "rax": 0xA0 + vcpu.index})
        results: dict[int, KvmExit] = {}
        threads = [_in_thread(v, results, "run_once") for v in (m.vcpu, second)]  # type: ignore[arg-type]
        for t in threads:
            t.join(timeout=10)
        stuck = [t for t in threads if t.is_alive()]
        for v in (m.vcpu, second):
            v.interrupt()
        for t in stuck:
            t.join(timeout=10)
        assert not stuck, "the two vCPUs did not run at the same time"
        assert results == {
            0: IoExit(0x10, 1, 1, True, b"\xa0"),
            1: IoExit(0x10, 1, 1, True, b"\xa1"),
        }


def test_interrupt_stops_a_spinning_guest_and_python_keeps_running() -> None:
    with machine() as m:
        m.load(CODE, SPIN)
        enter_long_mode(m, CODE, user=True)
        results: dict[int, VcpuExit] = {}
        thread = _in_thread(m.vcpu, results)  # type: ignore[arg-type]
        # While the guest spins in KVM_RUN, this thread still runs Python code:
        deadline = time.monotonic() + 0.05
        spins = 0
        while time.monotonic() < deadline:
            spins += 1
        assert thread.is_alive()
        assert spins > 1000
        m.vcpu.interrupt()
        thread.join(timeout=10)
        assert not thread.is_alive(), f"{KICK_SIGNAL.name} did not stop KVM_RUN"
        result = results[0]
        assert result.kind is VcpuExitKind.INTERRUPTED
        assert result.pc == CODE  # `jmp .` never moves
        # the request was consumed: the next run_once() enters the guest again
        thread = _in_thread(m.vcpu, results, "run_once")  # type: ignore[arg-type]
        thread.join(timeout=0.05)
        assert thread.is_alive()
        while thread.is_alive():  # kick until it is inside KVM_RUN and leaves it
            m.vcpu.interrupt()
            thread.join(timeout=0.05)
        assert results[0] == InterruptedExit()
