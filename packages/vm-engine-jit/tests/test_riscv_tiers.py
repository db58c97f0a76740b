"""Every way the interpreter tier can run RISC-V code gives the same result, on the random
RV64GC + Zb* programs of vm-frontend-riscv's differential tests (their generator, our
runner): blocks on the reference evaluator only, compiled at their first run, compiled at
their second, with the memory's own load/store or with direct access, with regions formed
as soon as they can be, and the LLVM JIT (blocks compiled before they run, then regions)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from vm_core import GuestMemory, TrapKind
from vm_engine_jit import InterpEngine, state_class

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interp_support as support

pytestmark = pytest.mark.xdist_group("interp-riscv")


def _harness():
    name = "riscv_diff_harness"  # the name vm-frontend-riscv's own tests load it under
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, support.RISCV_TESTS / "riscv_diff.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


H = _harness()
_FRONTEND = None


def frontend():
    global _FRONTEND
    if _FRONTEND is None:
        from vm_frontend_riscv.frontend import RiscvFrontend

        _FRONTEND = RiscvFrontend()
    return _FRONTEND


def _memory(prog, direct: bool):
    if direct:
        mem = support.PagedMemory(H.DATA + H.DATA_SIZE, prot=0, core_faults=True)
        mem.protect(H.CODE, H.CODE_SIZE, support.R | support.X)
        mem.protect(H.DATA, H.DATA_SIZE, support.R | support.W)
    else:
        mem = GuestMemory()
        mem.add_ram(H.CODE, H.CODE_SIZE, name="code")
        mem.add_ram(H.DATA, H.DATA_SIZE, name="data")
    mem.write(prog.start, prog.code())
    mem.write(H.DATA, H.data_bytes(prog.data_seed))
    return mem


def run(prog, engine: InterpEngine, mem) -> tuple:
    state = state_class(frontend().state_layout)()
    state.x[:] = prog.x
    state.f[:] = prog.f
    state.fflags, state.frm, state.pc = prog.fflags, prog.frm, prog.start
    state.res_addr = H.NO_RESERVATION
    mem.write(H.DATA, H.data_bytes(prog.data_seed))
    trap = engine.run(state, mem, max_insns=100_000)
    stop = "end" if trap is not None and trap.kind is TrapKind.BREAKPOINT and \
        trap.pc == prog.end else f"stopped: {trap}"
    return (list(state.x), list(state.f), state.fflags, state.frm, state.res_addr,
            mem.read(H.DATA, H.DATA_SIZE), stop)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(prog=H.programs())
def test_tiers_agree(prog) -> None:
    want = run(prog, InterpEngine(frontend(), hot_runs=10 ** 9), _memory(prog, False))
    for direct in (False, True):
        got = run(prog, InterpEngine(frontend(), hot_runs=1), _memory(prog, direct))
        assert got == want, f"compiled at once (direct={direct}) differs\n{prog}"
    engine = InterpEngine(frontend(), hot_runs=2)
    mem = _memory(prog, True)
    assert run(prog, engine, mem) == want
    assert run(prog, engine, mem) == want, f"compiled at the second run differs\n{prog}"
    assert engine.stats.blocks_compiled > 0 or engine.stats.invalidations  # fence.i
    # regions at once: every dispatch sampled, one sample makes a head
    engine = InterpEngine(frontend(), hot_runs=1, sample_every=1, region_samples=1)
    mem = _memory(prog, True)
    for n in range(3):
        assert run(prog, engine, mem) == want, f"run {n} with regions differs\n{prog}"
    # the LLVM JIT: every block compiled before its first run, then regions at once
    from vm_engine_jit.jit import JitEngine

    jit = JitEngine(frontend(), hot_runs=1, background=False, promote_after=16)
    mem = _memory(prog, True)
    for n in range(3):
        assert run(prog, jit, mem) == want, f"JIT run {n} differs\n{prog}"
    assert jit.stats.blocks_compiled > 0 and jit.stats.native_insns > 0
