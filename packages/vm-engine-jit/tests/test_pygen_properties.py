"""The interpreter tier's code generator against vm-ir's reference evaluator, on random
verifier-clean modules (vm-ir's hypothesis strategies: every op, branching CFGs with block
parameters and loops, state, memory, helpers, traps): the same outcome, the same final state
and the same final memory, for each way the engine compiles:

- with the memory's own ``load``/``store`` (``FlatMemory``);
- with direct access (inline permission check and typed views, ``PagedMemory``);
- as the engine compiles guest blocks: a ``pc_field`` whose pending writes die at ``exit``
  and a start pc that a trap before any pc write reports.
"""

from __future__ import annotations

import copy
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given

from vm_engine_jit import state_class
from vm_engine_jit.interp.pygen import BlockOptions, bind_memory, compile_block

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interp_support as support

strategies = support.import_from(support.VM_IR_TESTS, "strategies")

pytestmark = pytest.mark.xdist_group("interp-properties")

_STATE_CLASS = state_class(strategies.STATE)


def _memory(case, direct: bool):
    if direct:
        memory = support.PagedMemory(strategies.MEMORY_SIZE)
    else:
        memory = strategies.FlatMemory(strategies.MEMORY_SIZE)
    memory.data[:] = random.Random(case.memory_seed).randbytes(strategies.MEMORY_SIZE)
    return memory


def _compiled_outcomes(case, *, direct: bool, engine_like: bool) -> dict[str, tuple]:
    outcomes = {}
    for name, func in case.module.functions.items():
        state = _STATE_CLASS()
        for ref, v in case.state.items():
            state[ref] = v
        memory = _memory(case, direct)
        start = state["pc"] if engine_like else None
        options = BlockOptions(name=name, memory=bind_memory(memory), start_pc=start,
                               pc_field="pc" if engine_like else None)
        fn, source = compile_block(func, case.module, strategies.HELPER_IMPLS, options=options)
        result = support.call_compiled(fn, case.args[name], state, memory)
        outcomes[name] = (result, state.as_dict(), bytes(memory.data), source)
    return outcomes


def _check(case, *, direct: bool = False, engine_like: bool = False) -> None:
    expected = strategies.run(case)
    actual = _compiled_outcomes(case, direct=direct, engine_like=engine_like)
    for name, (want_result, want_state, want_memory) in expected.items():
        got_result, got_state, got_memory, source = actual[name]
        want_state = copy.deepcopy(want_state)
        if engine_like and want_result[0] == "exited":
            # an exit sets the pc (the engine writes it): a pending pc write is dead
            want_state["pc"] = got_state["pc"] = want_result[1]
        where = f"\n{case.module}\n--- generated Python ---\n{source}"
        assert got_result == want_result, f"@{name}: outcome differs{where}"
        assert got_state == want_state, f"@{name}: state differs{where}"
        if got_memory != want_memory:
            diff = [hex(i) for i, (a, b) in enumerate(zip(got_memory, want_memory, strict=True))
                    if a != b]
            raise AssertionError(f"@{name}: memory differs at {diff[:16]}{where}")


@strategies.examples(300)
@given(strategies.cases())
def test_codegen_matches_the_evaluator(case) -> None:
    _check(case)


@strategies.examples(200)
@given(strategies.cases())
def test_codegen_with_direct_memory_matches_the_evaluator(case) -> None:
    _check(case, direct=True)


@strategies.examples(200)
@given(strategies.cases())
def test_codegen_as_for_guest_blocks_matches_the_evaluator(case) -> None:
    _check(case, direct=True, engine_like=True)
