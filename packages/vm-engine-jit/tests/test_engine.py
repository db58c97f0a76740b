"""The interpreter engine on small RISC-V programs: precise exceptions, code written by the
guest, the instruction budget, loop blocks, traps and their addresses, in every
configuration (compiled at once or after the evaluator, direct memory access or not, loops
compiled or not)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vm_core import TrapKind
from vm_engine_jit import InterpEngine, state_class

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interp_support as support
from interp_support import (
    EBREAK,
    ECALL,
    FENCE_I,
    R,
    W,
    X,
    addi,
    amoadd_w,
    branch,
    code,
    jal,
    load,
    lui,
    store,
)

CODE, DATA, DATA_END = 0x1000, 0x2000, 0x4000

#: (hot_runs, direct memory, loops, eager regions): compiled at once, after one evaluator
#: run, never; regions formed as soon as they can be (every dispatch sampled)
CONFIGS = [(1, True, True, False), (1, False, True, False), (1, True, False, False),
           (2, True, True, False), (10 ** 9, True, True, False), (1, True, True, True),
           (1, False, False, True)]
IDS = ["compiled-direct", "compiled-calls", "compiled-noloops", "tiered", "evaluator",
       "regions-direct", "regions-calls-noloops"]


@pytest.fixture(scope="module")
def frontend():
    from vm_frontend_riscv.frontend import RiscvFrontend

    return RiscvFrontend()


class Machine:
    """A guest memory (code page, two data pages, nothing mapped above), an engine wired to
    it as vm-runtime wires them, and a state at CODE."""

    def __init__(self, frontend, program: bytes, config=(1, True, True, False), *,
                 code_prot: int = R | X) -> None:
        hot_runs, direct, loops, regions = config
        self.mem = support.PagedMemory(0x6000, prot=0, core_faults=True, direct=direct)
        self.mem.protect(CODE, 0x1000, code_prot)
        self.mem.protect(DATA, DATA_END - DATA, R | W)
        self.mem.write(CODE, program)
        eager = {"sample_every": 1, "region_samples": 1} if regions else {}
        self.engine = InterpEngine(frontend, hot_runs=hot_runs, loops=loops, **eager)
        self.mem.on_code_write = self.engine.invalidate
        self.engine.on_translate = lambda block: self.mem.mark_code(block.pc, block.length)
        self.state = state_class(frontend.state_layout)()
        self.state.pc = CODE

    def run(self, max_insns: int | None = 1_000_000):
        return self.engine.run(self.state, self.mem, max_insns=max_insns)

    @property
    def x(self) -> list[int]:
        return self.state.x


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_a_faulting_store_leaves_the_writes_before_it_done(frontend, config) -> None:
    m = Machine(frontend, code(
        addi("a0", "zero", 1),
        addi("a1", "zero", 2),
        lui("a2", DATA_END >> 12),  # unmapped
        store("sd", "a1", "a2", 8),
        addi("a3", "zero", 3),
        EBREAK), config)
    m.x[13] = 0x77
    trap = m.run()
    assert trap is not None and trap.kind is TrapKind.MEM_FAULT
    assert trap.pc == CODE + 12 == m.state.pc
    assert trap.addr == DATA_END + 8
    assert (m.x[10], m.x[11], m.x[12], m.x[13]) == (1, 2, DATA_END, 0x77)
    assert m.engine.stats.exits == {"mem_fault": 1}


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_a_fault_in_the_third_round_of_a_loop(frontend, config) -> None:
    m = Machine(frontend, code(
        addi("a0", "a0", 1),
        store("sd", "a0", "a2", 0),
        addi("a2", "a2", 8),
        branch("bne", "a0", "a1", -12),
        EBREAK), config)
    m.x[11] = 100
    m.x[12] = DATA_END - 16
    trap = m.run()
    assert trap is not None and trap.kind is TrapKind.MEM_FAULT and trap.addr == DATA_END
    assert trap.pc == CODE + 4 == m.state.pc
    assert (m.x[10], m.x[12]) == (3, DATA_END)
    assert m.mem.read(DATA_END - 16, 16) == (1).to_bytes(8, "little") + (2).to_bytes(8, "little")
    assert m.engine.stats.insns == 8  # two whole rounds; a trapping block does not count


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_a_load_fault_reads_nothing_and_loads_work(frontend, config) -> None:
    m = Machine(frontend, code(
        load("ld", "a0", "a2", 0),
        load("lw", "a1", "a2", 4),
        load("lbu", "a3", "a2", 7),
        load("lb", "a4", "a2", 7),
        load("lhu", "a5", "a2", 5),  # misaligned: the memory's own load
        load("ld", "a6", "a2", 8),  # beyond the data pages
        EBREAK), config)
    m.mem.write(DATA_END - 8, bytes.fromhex("0102030405060780"))
    m.x[12] = DATA_END - 8
    m.x[16] = 0x55
    trap = m.run()
    assert trap is not None and trap.kind is TrapKind.MEM_FAULT and trap.addr == DATA_END
    assert trap.pc == CODE + 20
    assert m.x[10] == 0x8007060504030201
    assert m.x[11] == 0xFFFFFFFF80070605
    assert (m.x[13], m.x[14], m.x[15], m.x[16]) == (0x80, 0xFFFFFFFFFFFFFF80, 0x0706, 0x55)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_a_store_to_a_read_only_page_changes_nothing(frontend, config) -> None:
    m = Machine(frontend, code(
        addi("a0", "zero", -1),
        store("sw", "a0", "a2", 0),
        EBREAK), config)
    m.mem.protect(DATA, 0x1000, R)
    m.x[12] = DATA + 0x10
    trap = m.run()
    assert trap is not None and trap.kind is TrapKind.MEM_FAULT and trap.addr == DATA + 0x10
    assert trap.pc == CODE + 4 and m.x[10] == 0xFFFFFFFFFFFFFFFF
    assert m.mem.read(DATA + 0x10, 4) == bytes(4)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_code_written_by_the_guest_runs_after_fence_i(frontend, config) -> None:
    new = addi("a0", "zero", 42)
    m = Machine(frontend, code(
        lui("t0", CODE >> 12),
        load("lw", "t1", "t0", 0x40),
        store("sw", "t1", "t0", 0x20),
        FENCE_I,
        jal("zero", 0x10),
        0, 0, 0,
        addi("a0", "zero", 1),  # CODE + 0x20: patched
        EBREAK) + bytes(0x18) + new.to_bytes(4, "little"), config, code_prot=R | W | X)
    m.state.pc = CODE + 0x20
    for _ in range(3):  # the old code, translated (and compiled where the config does)
        m.state.pc = CODE + 0x20
        assert m.run().kind is TrapKind.BREAKPOINT and m.x[10] == 1
    m.state.pc = CODE
    trap = m.run()
    assert trap.kind is TrapKind.BREAKPOINT and trap.pc == CODE + 0x24
    assert m.x[10] == 42
    assert m.engine.stats.invalidations > 0


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_a_store_to_translated_code_invalidates_it(frontend, config) -> None:
    """Without fence.i: the memory tells the engine (the CODE bit), the next run sees it."""
    m = Machine(frontend, code(
        addi("a0", "zero", 1),
        EBREAK), config, code_prot=R | W | X)
    for _ in range(3):
        m.state.pc = CODE
        assert m.run().kind is TrapKind.BREAKPOINT and m.x[10] == 1
    m.mem.store(CODE, 4, addi("a0", "zero", 7))  # as a guest store would
    m.state.pc = CODE
    assert m.run().kind is TrapKind.BREAKPOINT and m.x[10] == 7


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_the_budget_stops_a_loop_and_it_goes_on_from_there(frontend, config) -> None:
    m = Machine(frontend, code(
        addi("a0", "a0", 1),
        branch("bne", "a0", "a1", -4),
        EBREAK), config)
    m.x[11] = 5000
    assert m.run(max_insns=1000) is None
    insns = m.engine.stats.insns
    assert 1000 <= insns <= 1004  # "about": a loop block stops within one round of it
    assert m.state.pc == CODE and m.x[10] == insns // 2
    trap = m.run(max_insns=None)
    assert trap.kind is TrapKind.BREAKPOINT and trap.pc == CODE + 8
    assert m.x[10] == 5000 and m.engine.stats.insns == 10000


def test_loop_blocks_are_compiled_as_loops(frontend) -> None:
    m = Machine(frontend, code(addi("a0", "a0", 1), branch("bne", "a0", "a1", -4), EBREAK))
    m.x[11] = 300
    assert m.run().kind is TrapKind.BREAKPOINT
    source = m.engine.source_of(CODE, m.mem)
    assert "# loop at 0x1000" in source and "for _it in range" in source
    assert m.engine.stats.loop_insns == 600 == m.engine.stats.insns
    assert m.engine.stats.blocks_executed == 2  # the loop, then the ebreak


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_traps_report_kind_pc_and_address(frontend, config) -> None:
    m = Machine(frontend, code(
        addi("a1", "zero", 1),
        ECALL,
        amoadd_w("a0", "a1", "a2"),  # misaligned
        EBREAK), config)
    m.x[12] = DATA + 2
    trap = m.run()
    assert trap.kind is TrapKind.SYSCALL and trap.pc == CODE + 4
    m.state.pc = trap.pc + 4
    trap = m.run()
    assert trap.kind is TrapKind.MISALIGNED and trap.pc == CODE + 8 and trap.addr == DATA + 2
    m.state.pc = CODE + 0x100  # zeros: an illegal instruction
    trap = m.run()
    assert trap.kind is TrapKind.ILLEGAL and trap.pc == CODE + 0x100
    m.state.pc = 0x5000  # not executable
    trap = m.run()
    assert trap.kind is TrapKind.MEM_FAULT and trap.pc == 0x5000 and trap.detail == "exec"


def test_step_runs_one_instruction(frontend) -> None:
    m = Machine(frontend, code(addi("a0", "zero", 5), addi("a1", "a0", 1), EBREAK))
    assert m.engine.step(m.state, m.mem) is None
    assert (m.state.pc, m.x[10], m.x[11]) == (CODE + 4, 5, 0)
    assert m.engine.step(m.state, m.mem) is None
    assert (m.state.pc, m.x[11]) == (CODE + 8, 6)
    assert m.engine.step(m.state, m.mem).kind is TrapKind.BREAKPOINT


def test_another_memory_gets_its_own_translations(frontend) -> None:
    one = Machine(frontend, code(addi("a0", "zero", 1), EBREAK))
    two = Machine(frontend, code(addi("a0", "zero", 2), EBREAK))
    engine = one.engine
    for m, want in ((one, 1), (two, 2), (one, 1)):
        m.state.pc = CODE
        assert engine.run(m.state, m.mem).kind is TrapKind.BREAKPOINT
        assert m.x[10] == want


def _two_block_loop() -> bytes:
    """a0 counts up to a1; each round stores a0 at a2 and moves a2 on, except the round where
    a0 == a3 (it takes another path): a loop of two blocks out of three."""
    return code(
        addi("a0", "a0", 1),  # 0x1000
        branch("beq", "a0", "a3", 8),  # 0x1004 -> 0x100c
        store("sd", "a0", "a2", 0),  # 0x1008
        addi("a2", "a2", 8),  # 0x100c
        branch("bne", "a0", "a1", -16),  # 0x1010 -> 0x1000
        EBREAK)  # 0x1014


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_a_loop_of_several_blocks_and_a_fault_in_it(frontend, config) -> None:
    m = Machine(frontend, _two_block_loop(), config)
    m.x[11], m.x[12], m.x[13] = 10 ** 6, DATA, 7
    trap = m.run(max_insns=None)
    rounds = (DATA_END - DATA) // 8 + 1  # round k stores at DATA + 8 (k - 1)
    assert trap is not None and trap.kind is TrapKind.MEM_FAULT and trap.addr == DATA_END
    assert trap.pc == CODE + 8 == m.state.pc
    assert (m.x[10], m.x[12]) == (rounds, DATA_END)
    assert m.mem.read(DATA + 5 * 8, 24) == b"".join(
        v.to_bytes(8, "little") for v in (6, 0, 8))  # round 7 stores nothing
    assert m.engine.stats.insns == 5 * (rounds - 1) - 1 + 2  # the last round: 2, then sd
    if config[3]:
        assert m.engine.stats.regions_compiled >= 1


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_the_budget_stops_a_region(frontend, config) -> None:
    m = Machine(frontend, _two_block_loop(), config)
    m.x[11], m.x[12], m.x[13] = 1000, DATA, 7
    for _ in range(20):
        before = m.engine.stats.insns
        assert m.run(max_insns=100) is None
        assert 100 <= m.engine.stats.insns - before <= 104
        assert m.state.pc in (CODE, CODE + 8, CODE + 0xC)
    trap = m.run(max_insns=None)
    assert trap.kind is TrapKind.BREAKPOINT and m.x[10] == 1000 and m.x[12] == DATA + 8 * 1000


def test_a_region_leaves_when_its_code_is_written(frontend) -> None:
    """A store into a block of the running region drops the region (the CODE bit tells the
    engine); the region stops at the next block boundary and the new code runs."""
    program = code(
        addi("a0", "a0", 1),  # 0x1000
        branch("beq", "a0", "a3", 8),  # 0x1004 -> 0x100c
        store("sw", "a4", "a5", 0),  # 0x1008: a5 = 0x100c, a4 = the new instruction
        addi("a2", "a2", 8),  # 0x100c: patched to addi a2, a2, 16
        branch("bne", "a0", "a1", -16),  # 0x1010 -> 0x1000
        EBREAK)
    m = Machine(frontend, program, (1, True, True, True), code_prot=R | W | X)
    m.x[11], m.x[13] = 100, 50  # the store starts in round 51
    m.x[14], m.x[15] = addi("a2", "a2", 16), CODE + 0xC
    m.x[13] = 0  # never equal: the store runs every round
    m.x[14] = addi("a2", "a2", 8)  # the same instruction: nothing changes but the CODE bit
    trap = m.run(max_insns=None)
    assert trap.kind is TrapKind.BREAKPOINT and m.x[12] == 8 * 100
    m.state.pc, m.x[10], m.x[12] = CODE, 0, 0
    m.x[14] = addi("a2", "a2", 16)
    trap = m.run(max_insns=None)
    assert trap.kind is TrapKind.BREAKPOINT
    assert m.x[12] == 16 * 100 - 8  # the first round ran the old addi: it was translated
