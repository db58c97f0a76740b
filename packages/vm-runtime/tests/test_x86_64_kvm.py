"""x86_64 under KVM: the signal frame's layout against the C library's headers, and the page
tables the engine keeps against the bits of the Intel SDM (vol. 3, 4.5: P bit 0, R/W bit 1,
U/S bit 2, XD bit 63)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vm_runtime.linux.arch import x86_64 as arch
from vm_runtime.linux.memory import PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace

ON_X86_64 = platform.machine().lower() in ("x86_64", "amd64")

LAYOUT_C = r"""
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <signal.h>
#include <ucontext.h>
int main(void) {
    printf("%zu %zu %zu %zu\n", offsetof(ucontext_t, uc_stack), offsetof(ucontext_t, uc_mcontext),
           offsetof(ucontext_t, uc_sigmask), sizeof(stack_t));
    printf("%d %d %d %d %d %d %d %d %d %d %d\n", REG_R8, REG_RDI, REG_RBX, REG_RAX, REG_RCX,
           REG_RSP, REG_RIP, REG_EFL, REG_ERR, REG_TRAPNO, REG_CR2);
    printf("%zu %zu\n", offsetof(mcontext_t, fpregs), sizeof(mcontext_t));
    return 0;
}
"""


@pytest.mark.skipif(not ON_X86_64 or shutil.which("gcc") is None,
                    reason="needs an x86_64 host with gcc (apt-get install gcc libc6-dev)")
def test_signal_frame_layout_matches_the_headers(tmp_path: Path) -> None:
    src = tmp_path / "layout.c"
    src.write_text(LAYOUT_C)
    exe = tmp_path / "layout"
    subprocess.run(["gcc", "-O0", "-o", str(exe), str(src)], check=True)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    uc_stack, uc_mcontext, uc_sigmask, stack_size = map(int, lines[0].split())
    assert (uc_stack, uc_mcontext, uc_sigmask) == (arch.UC_STACK, arch.UC_MCONTEXT,
                                                   arch.UC_SIGMASK)
    assert stack_size == 24
    r8, rdi, rbx, rax, rcx, rsp, rip, efl, err, trapno, cr2 = map(int, lines[1].split())
    order = arch._SC_ORDER
    assert [order.index(n) for n in ("r8", "rdi", "rbx", "rax", "rcx", "rsp")] == [
        r8, rdi, rbx, rax, rcx, rsp]
    # rip and eflags follow the 16 registers; then cs/gs/fs/ss (one word), err, trapno, ...
    assert (rip, efl, err, trapno, cr2) == (16, 17, 19, 20, 22)
    fpregs, mcontext_size = map(int, lines[2].split())
    assert (fpregs, mcontext_size) == (8 * 23, arch.SIGCONTEXT_SIZE)


def test_frame_round_trip_keeps_registers_and_gives_the_mask() -> None:
    mem = AddressSpace(1 << 30)
    try:
        mem.map(0x10000, 0x10000, PROT_READ | PROT_WRITE)
        st = arch.X86State()
        for i, name in enumerate(arch.GPRS):
            setattr(st, name, 0x1111 * (i + 1))
        st.rsp = 0x1F000
        st.pc = 0x401000
        st.rflags = 0x246 | 0x400  # DF set: a handler starts with it clear
        arch.setup_frame(mem, st, 10, bytes(128), 0x402000, 0x403000, 0x55, (0, 2, 0), st.rsp)
        assert (st.pc, st.rdi) == (0x402000, 10)
        assert st.rsp % 16 == 8  # as after a call: the ABI's alignment at a function's entry
        assert st.rflags & 0x400 == 0
        assert mem.load(st.rsp, 8) == 0x403000  # returns to sa_restorer
        st.rsp += 8  # the handler's ret
        mask, stack = arch.restore_frame(mem, st)
        assert (mask, stack) == (0x55, (0, 2, 0))
        assert st.pc == 0x401000 and st.rflags & 0x400
        for i, name in enumerate(arch.GPRS):
            if name != "rsp":
                assert getattr(st, name) == 0x1111 * (i + 1), name
        assert st.rsp == 0x1F000
    finally:
        mem.close()


def _kvm_usable() -> bool:
    if not ON_X86_64:
        return False
    from vm_accel.kvm import probe

    return probe().usable


@pytest.mark.skipif(not _kvm_usable(), reason="needs a usable /dev/kvm on an x86_64 host")
def test_page_tables_follow_permission_changes() -> None:
    from vm_runtime.linux.kvm import KvmEngine

    mem = AddressSpace(1 << 30)
    engine = KvmEngine(mem)
    try:
        base = 0x200000
        mem.map(base, 0x3000, PROT_READ | PROT_WRITE)
        mem.protect(base + 0x1000, 0x1000, PROT_READ | PROT_EXEC)
        mem.protect(base + 0x2000, 0x1000, 0)
        p = base >> 12
        pte = [engine.ptes[p + i] for i in range(4)]
        P, RW, US, XD = 1, 2, 4, 1 << 63
        assert pte[0] & (P | RW | US | XD) == P | RW | US | XD
        assert pte[0] & 0x000FFFFFFFFFF000 == base  # identity: guest-physical = virtual
        assert pte[1] & (P | RW | US | XD) == P | US
        assert pte[2] & P == 0  # PROT_NONE: not present
        assert pte[3] == 0  # never mapped
        flushes = engine.stats.zaps
        mem.unmap(base, 0x1000)  # a permission taken away: KVM must forget its shadows
        assert engine.ptes[p] == 0 and engine.stats.zaps == flushes + 1
        mem.map(base, 0x1000, PROT_READ)  # only gained: the next walk finds it
        assert engine.stats.zaps == flushes + 1
    finally:
        mem.on_prot_change = None


@pytest.mark.skipif(not _kvm_usable(), reason="needs a usable /dev/kvm on an x86_64 host")
def test_every_vcpu_kvm_can_make_has_a_tss_and_stack_of_its_own() -> None:
    """A vCPU's exceptions land on its own stack (its TSS's RSP0): as many vCPUs as KVM can
    make (KVM_CAP_MAX_VCPUS) get distinct pages, each with its TSS written and RSP0 at the
    page's end, and the guest's page tables map them, supervisor only."""
    import struct

    from vm_accel.kvm import KvmHypervisor
    from vm_runtime.linux.kvm import KvmEngine

    with KvmHypervisor() as hv:
        most = hv.check_extension(66) or 1024  # KVM_CAP_MAX_VCPUS
    mem = AddressSpace(1 << 30)
    engine = KvmEngine(mem)
    try:
        areas = [engine.cpu_area(i) for i in range(most)]
        assert len(set(areas)) == most
        for off in areas:
            (rsp0,) = struct.unpack_from("<Q", engine.sys_mm, off + 4)
            assert rsp0 == engine.sys_base + off + 0x1000
            pte = engine.ptes[(engine.sys_base + off) >> 12]
            assert pte & 7 == 3  # present, writable, not user
    finally:
        mem.on_prot_change = None


@pytest.mark.skipif(not ON_X86_64, reason="an x86_64 host")
def test_missing_device_is_a_clear_error(tmp_path: Path) -> None:
    code = ("import sys\nfrom vm_runtime.linux.kvm import KvmEngine, KvmUnavailable\n"
            "from vm_runtime.linux.memory import AddressSpace\n"
            "try:\n    KvmEngine(AddressSpace(1 << 30))\n"
            "except KvmUnavailable as e:\n    print(e)\n    sys.exit(3)\n")
    env = dict(os.environ, VM_KVM_DEVICE=str(tmp_path / "kvm"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=False)
    assert done.returncode == 3, done.stderr
    assert "KVM cannot be used" in done.stdout and str(tmp_path / "kvm") in done.stdout
