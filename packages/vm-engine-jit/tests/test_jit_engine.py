"""``vm run --engine jit`` (the tiered JIT engine) prints and exits exactly as
``vm run --engine interp`` on real riscv64 guests, with blocks compiled after the default
number of runs and with every block compiled at its first run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GUESTS = ROOT / "build" / "guests" / "riscv64"

pytestmark = pytest.mark.xdist_group("jit-engine")


def _vm() -> list[str]:
    script = Path(sys.executable).parent / "vm"
    if script.exists():
        return [str(script)]
    found = shutil.which("vm")
    if found is None:
        pytest.skip("the vm script is not installed")
    return [found]


def _run(engine: str, guest: str, *args: str, env: dict[str, str] | None = None
         ) -> tuple[int, str]:
    done = subprocess.run([*_vm(), "run", "--engine", engine, str(GUESTS / guest), *args],
                          capture_output=True, text=True, check=False, timeout=600,
                          env={**os.environ, **(env or {})})
    return done.returncode, done.stdout


CASES = [("hello",), ("int_m",), ("float_fenv",), ("recursion",), ("bench_cpu", "1")]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_jit_matches_interp(case: tuple[str, ...]) -> None:
    guest, *args = case
    if not (GUESTS / guest).exists():
        pytest.skip(f"{guest} is not built")
    expected = _run("interp", guest, *args)
    assert _run("jit", guest, *args) == expected


@pytest.mark.parametrize("guest", ["hello", "int_m", "float_fenv", "mmap_prot"])
def test_jit_compiling_every_block_matches_interp(guest: str) -> None:
    if not (GUESTS / guest).exists():
        pytest.skip(f"{guest} is not built")
    expected = _run("interp", guest)
    assert _run("jit", guest, env={"VM_JIT_HOT_RUNS": "1"}) == expected


def _loop_program(engine_factory, hot_runs: int):
    """A loop reading 8-byte words up a one-page buffer until it runs off its end."""
    memory_mod = pytest.importorskip("vm_runtime.linux.memory")
    from vm_engine_jit import state_class
    from vm_frontend_riscv.frontend import RiscvFrontend

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import interp_support as s

    frontend = RiscvFrontend()
    mem = memory_mod.AddressSpace(1 << 24)
    mem.map(0x10000, 0x1000, memory_mod.PROT_READ | memory_mod.PROT_EXEC)
    mem.map(0x20000, 0x1000, memory_mod.PROT_READ | memory_mod.PROT_WRITE)
    mem.write_unchecked(0x10000, s.code(
        s.addi("a0", "zero", 0),
        s.lui("a1", 0x20),
        s.load("ld", "a2", "a1", 0),  # 0x10008
        s.addi("a0", "a0", 1),
        s.addi("a1", "a1", 8),
        s.jal("zero", -12),
    ))
    engine = engine_factory(frontend, hot_runs)
    engine.on_translate = lambda block: mem.mark_code(block.pc, block.length)
    state = state_class(frontend.state_layout)()
    state.pc = 0x10000
    trap = engine.run(state, mem)
    return engine, state, trap


@pytest.mark.parametrize("hot_runs", [1, 50])
def test_native_fault_is_a_precise_trap(hot_runs: int) -> None:
    from vm_core import TrapKind
    from vm_engine_jit import InterpEngine
    from vm_engine_jit.jit import JitEngine

    _, istate, itrap = _loop_program(lambda f, _h: InterpEngine(f), hot_runs)
    engine, state, trap = _loop_program(lambda f, h: JitEngine(f, hot_runs=h), hot_runs)
    assert trap is not None and itrap is not None
    assert trap.kind is TrapKind.MEM_FAULT
    assert (trap.pc, trap.addr) == (itrap.pc, itrap.addr) == (0x10008, 0x21000)
    assert state.as_dict() == istate.as_dict()
    assert state.x[10] == 512
    assert engine.native_insns > 0 and 0x10008 in engine.native
    engine.invalidate(0x10000, 0x1000)
    assert not engine.native
