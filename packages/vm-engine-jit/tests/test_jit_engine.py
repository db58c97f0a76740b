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


@pytest.mark.parametrize("guest", ["hello", "int_m", "float_fenv", "mmap_prot", "smc",
                                   "atomics_threads"])
def test_jit_compiling_every_block_matches_interp(guest: str) -> None:
    if not (GUESTS / guest).exists():
        pytest.skip(f"{guest} is not built")
    expected = _run("interp", guest)
    assert _run("jit", guest, env={"VM_JIT_HOT_RUNS": "1", "VM_JIT_BACKGROUND": "0"}) == expected


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
    engine, state, trap = _loop_program(
        lambda f, h: JitEngine(f, hot_runs=h, background=False), hot_runs)
    assert trap is not None and itrap is not None
    assert trap.kind is TrapKind.MEM_FAULT
    assert (trap.pc, trap.addr) == (itrap.pc, itrap.addr) == (0x10008, 0x21000)
    assert state.as_dict() == istate.as_dict()
    assert state.x[10] == 512
    assert engine.native_insns > 0 and 0x10008 in engine.native
    engine.invalidate(0x10000, 0x1000)
    assert not engine.native


def _program(words: list[int], engine_factory):
    """``words`` at 0x10000 in an RWX page, run from there to a trap."""
    memory_mod = pytest.importorskip("vm_runtime.linux.memory")
    from vm_engine_jit import state_class
    from vm_frontend_riscv.frontend import RiscvFrontend

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import interp_support as s

    frontend = RiscvFrontend()
    mem = memory_mod.AddressSpace(1 << 24)
    prot = memory_mod.PROT_READ | memory_mod.PROT_WRITE | memory_mod.PROT_EXEC
    mem.map(0x10000, 0x1000, prot)
    mem.write_unchecked(0x10000, s.code(*words))
    engine = engine_factory(frontend)
    engine.on_translate = lambda block: mem.mark_code(block.pc, block.length)
    mem.on_code_write = engine.invalidate
    state = state_class(frontend.state_layout)()
    state.pc = 0x10000
    return engine, state, engine.run(state, mem)


def _interp_and_jit(words: list[int], **jit_options):
    from vm_engine_jit import InterpEngine
    from vm_engine_jit.jit import JitEngine

    _, istate, itrap = _program(words, InterpEngine)
    engine, state, trap = _program(
        words, lambda f: JitEngine(f, background=False, **jit_options))
    assert (trap.kind, trap.pc) == (itrap.kind, itrap.pc)
    assert state.as_dict() == istate.as_dict()
    return engine, state


def _three_block_loop() -> list[int]:
    """a0 counts 4096 iterations of a loop of three blocks; odd ones add 3 to a1 through a
    branch around a block."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import interp_support as s

    return [
        s.addi("a0", "zero", 0), s.addi("a1", "zero", 0), s.lui("t0", 1),  # t0 = 4096
        s.addi("t1", "a0", 0),                       # 0x1000c loop: t1 = a0
        s.addi("t2", "zero", 1),
        s.addi("t3", "t1", 0),
        s.branch("beq", "t3", "zero", 8),            # even (first) iteration skips one add
        s.addi("a1", "a1", 3),
        s.addi("a0", "a0", 1),                        # 0x10020
        s.branch("bne", "a0", "t0", -0x18),           # back to 0x1000c
        s.EBREAK,
    ]


def test_a_loop_of_several_blocks_becomes_one_region() -> None:
    engine, state = _interp_and_jit(_three_block_loop(), hot_runs=2, promote_after=64)
    assert state.x[10] == 4096
    assert engine.stats.regions_compiled >= 1
    assert engine.native_insns > 0.9 * engine.stats.insns


def test_compiled_blocks_chain_without_the_dispatcher() -> None:
    """The loop of the region test, without regions: its three blocks jump to each other
    through link cells, so the dispatcher runs a few of the 4096 x 3 block runs only (it
    fills a cell the first time an exit goes somewhere, and a chain stops when the budget is
    spent), and the state matches the interpreter's."""
    engine, state = _interp_and_jit(_three_block_loop(), hot_runs=2)
    assert state.x[10] == 4096 and state.x[11] == 3 * 4095
    assert engine.stats.regions_compiled == 0
    assert engine.native_insns > 0.9 * engine.stats.insns
    assert engine.stats.native_blocks < 100
    # dropping code zeroes the function word of its record, which link cells point at
    record = engine.native[0x10020].record
    assert (record[0], record[1]) == (0x10020, engine.native[0x10020].address)
    engine.invalidate(0x10020, 4)
    assert 0x10020 not in engine.native and record[1] == 0


def test_a_native_store_into_compiled_code_is_seen() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import interp_support as s

    new = s.addi("a0", "a0", 7)
    words = [
        s.addi("a0", "zero", 0), s.addi("t0", "zero", 100),
        s.addi("a0", "a0", 1), s.addi("t0", "t0", -1), s.branch("bne", "t0", "zero", -8),
        s.lui("a1", 0x10),                      # 0x10014: a1 = 0x10000
        s.load("lw", "a2", "a1", 0x30),         # the new instruction
        s.store("sw", "a2", "a1", 0x24),        # written over the one at 0x10024
        s.jal("zero", 4),
        s.addi("a0", "a0", 1000),               # 0x10024
        s.EBREAK,
        0, new,                                 # 0x10030
    ]
    engine, state = _interp_and_jit(words, hot_runs=1)
    assert state.x[10] == 107
    assert engine.stats.exits.get("code_write", 0) >= 1


def test_a_small_code_cache_evicts_and_stays_correct() -> None:
    if not (GUESTS / "bench_cpu").exists():
        pytest.skip("bench_cpu is not built")
    expected = _run("interp", "bench_cpu", "1")
    done = subprocess.run([*_vm(), "run", "--engine", "jit", "--stats",
                           str(GUESTS / "bench_cpu"), "1"],
                          capture_output=True, text=True, check=False, timeout=600,
                          env={**os.environ, "VM_JIT_CODE_CACHE": "32768",
                               "VM_JIT_BACKGROUND": "0"})  # all compiled, however busy
    assert (done.returncode, done.stdout) == expected
    import re

    evictions = re.search(r"(\d+) evictions, (\d+) bytes", done.stderr)
    assert evictions is not None, done.stderr
    assert int(evictions.group(1)) > 0
    # the bound, and the batches compiled after the newer generation reached its half
    assert int(evictions.group(2)) <= 32768 * 3 // 2


def test_perf_map_names_the_native_code() -> None:
    """``VM_JIT_PERF_MAP=1``: perf's map of JIT code, ``/tmp/perf-PID.map``, lists the
    dispatcher and each compiled block by name, at distinct addresses (the sizes are
    estimates: MCJIT does not say where a function ends)."""
    if not (GUESTS / "bench_cpu").exists():
        pytest.skip("bench_cpu is not built")
    proc = subprocess.Popen([*_vm(), "run", "--engine", "jit", str(GUESTS / "bench_cpu"), "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "VM_JIT_PERF_MAP": "1", "VM_JIT_BACKGROUND": "0"})
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    path = Path(f"/tmp/perf-{proc.pid}.map")
    try:
        lines = path.read_text().splitlines()
    finally:
        path.unlink(missing_ok=True)
    ranges = []
    for line in lines:
        start, size, name = line.split(" ", 2)
        ranges.append((int(start, 16), int(start, 16) + int(size, 16), name))
    names = [name for *_, name in ranges]
    assert "vm_dispatch" in names
    assert sum(name.startswith("vmjit") for name in names) > 100
    starts = [start for start, *_ in ranges]
    assert len(set(starts)) == len(starts)
    assert all(end > start for start, end, _ in ranges)


def _spin(words: list[int]):
    """``words`` (a loop that never ends) to be run by a JitEngine on a thread of its own:
    the engine, the state, the memory, the thread and where its ``run`` result goes."""
    import threading

    memory_mod = pytest.importorskip("vm_runtime.linux.memory")
    from vm_engine_jit import state_class
    from vm_engine_jit.jit import JitEngine
    from vm_frontend_riscv.frontend import RiscvFrontend

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import interp_support as s

    frontend = RiscvFrontend()
    mem = memory_mod.AddressSpace(1 << 24)
    mem.map(0x10000, 0x1000, memory_mod.PROT_READ | memory_mod.PROT_EXEC)
    mem.write_unchecked(0x10000, s.code(*words))
    engine = JitEngine(frontend, hot_runs=2, background=False)
    engine.on_translate = lambda block: mem.mark_code(block.pc, block.length)
    state = state_class(frontend.state_layout)()
    state.pc = 0x10000
    result: list = []
    thread = threading.Thread(target=lambda: result.append(engine.run(state, mem)), daemon=True)
    return engine, state, mem, thread, result


@pytest.mark.parametrize("shape", ["one-block", "three-blocks"])
def test_kick_stops_native_code_that_never_leaves(shape: str) -> None:
    """A loop that runs forever in native code (a block looping on itself, or blocks chained
    to each other), run with no instruction budget, returns soon after another thread
    ``kick``s it: with no trap, at a pc of the loop, having run natively."""
    import time

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import interp_support as s

    if shape == "one-block":
        words = [s.addi("a0", "a0", 1), s.addi("a1", "a1", 2), s.jal("zero", -8)]
    else:
        words = [s.addi("a0", "a0", 1),              # 0x10000
                 s.branch("beq", "a0", "zero", 8),   # never taken: ends a block
                 s.addi("a1", "a1", 2),              # 0x10008
                 s.branch("bne", "a1", "zero", -12)]  # always taken, back to 0x10000
    engine, state, _mem, thread, result = _spin(words)
    thread.start()
    deadline = time.monotonic() + 60
    while not engine.native and time.monotonic() < deadline:  # compiled at its second run
        time.sleep(0.01)
    time.sleep(0.2)  # and now running natively, without end
    assert engine.native, "the loop was never compiled"
    assert thread.is_alive()
    engine.kick(state)
    thread.join(timeout=10)
    assert not thread.is_alive(), "kick did not stop the loop"
    assert result == [None]
    assert 0x10000 <= state.pc < 0x10000 + 4 * len(words)
    assert engine.native_insns > 10_000
    assert state.x[11] == 2 * state.x[10] or state.x[11] == 2 * state.x[10] - 2


def test_a_kick_before_run_makes_it_return_at_once() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import interp_support as s

    engine, state, mem, _thread, _ = _spin([s.addi("a0", "a0", 1), s.jal("zero", -4)])
    engine.kick(state)  # as if the signal came while the thread was on its way to ``run``
    assert engine.run(state, mem) is None
    assert state.pc == 0x10000 and state.x[10] == 0
    assert id(state) not in engine._kicked  # the kick was for that run only
