"""The JIT against the reference evaluator on random vm-ir modules (vm-ir's hypothesis
strategies): the same outcome, the same final state, the same final memory, bit for bit."""

from __future__ import annotations

import copy
import random
import sys
from pathlib import Path

from hypothesis import given

from vm_engine_jit.jit import JitCompiler, run
from vm_ir import FlatMemory, State, print_module

_VM_IR_TESTS = Path(__file__).resolve().parents[2] / "vm-ir" / "tests"
if str(_VM_IR_TESTS) not in sys.path:
    sys.path.insert(0, str(_VM_IR_TESTS))

import strategies  # noqa: E402

_COMPILER = JitCompiler()


def _inputs(case: strategies.Case, module) -> tuple[State, FlatMemory]:
    state = State(module.state)
    for ref, v in case.state.items():
        state[ref] = v
    memory = FlatMemory(strategies.MEMORY_SIZE)
    memory.data[:] = random.Random(case.memory_seed).randbytes(strategies.MEMORY_SIZE)
    return state, memory


def _jit_outcomes(case: strategies.Case) -> dict[str, tuple]:
    module = case.module
    compiled = {c.function.name: c for c in _COMPILER.compile(
        [(module, f) for f in module.functions.values()])}
    outcomes = {}
    for name in module.functions:
        state, memory = _inputs(case, module)
        result = run(compiled[name], case.args[name], state=state, memory=memory,
                     helpers=strategies.HELPER_IMPLS)
        outcomes[name] = (strategies.describe(result), copy.deepcopy(state.values),
                          bytes(memory.data))
    return outcomes


def _check(case: strategies.Case) -> None:
    expected = strategies.run(case)
    actual = _jit_outcomes(case)
    for name, (want_result, want_state, want_memory) in expected.items():
        got_result, got_state, got_memory = actual[name]
        text = print_module(case.module)
        assert got_result == want_result, f"@{name}: outcome differs\n{text}"
        assert got_state == want_state, f"@{name}: state differs\n{text}"
        if got_memory != want_memory:
            diff = [hex(i) for i, (a, b) in enumerate(zip(got_memory, want_memory, strict=True))
                    if a != b]
            raise AssertionError(f"@{name}: memory differs at {diff[:16]}\n{text}")


@strategies.examples(200)
@given(strategies.cases())
def test_jit_matches_the_evaluator(case: strategies.Case) -> None:
    _check(case)


@strategies.examples(100)
@given(strategies.cases(profiles=("arith",)))
def test_jit_matches_the_evaluator_on_arithmetic(case: strategies.Case) -> None:
    _check(case)


@strategies.examples(100)
@given(strategies.cases(profiles=("state",)))
def test_jit_matches_the_evaluator_on_state_and_memory(case: strategies.Case) -> None:
    _check(case)
