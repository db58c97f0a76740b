"""Every pass, alone and in the ``optimize`` pipeline, keeps random modules valid and their
meaning: the same result (return values, exit pc, or trap kind and address), final state and
final memory, for random arguments, state and memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from strategies import cases, clone, examples, modules, run

import vm_ir
from vm_ir.passes import PASSES, constfold, copyprop, dce, forward, optimize

PIPELINES = {
    "constfold": [constfold.run],
    "copyprop": [copyprop.run],
    "forward": [forward.run],
    "dce": [dce.run],
    "optimize": list(PASSES),
}


def _check_meaning_kept(name, case):
    before = run(case)
    optimized = optimize(clone(case.module), PIPELINES[name])
    errors = vm_ir.verify(optimized)
    assert errors == [], "\n".join(map(str, errors)) + "\n" + vm_ir.print_module(optimized)
    assert run(case, optimized) == before, vm_ir.print_module(optimized)


@pytest.mark.parametrize("name", PIPELINES)
@examples(50)
@given(case=cases())
def test_a_pass_keeps_the_meaning(name, case):
    _check_meaning_kept(name, case)


@pytest.mark.parametrize("name", ["forward", "dce", "optimize"])
@examples(80)
@given(case=cases(profiles=["state"]))
def test_a_pass_keeps_the_meaning_of_state_heavy_code(name, case):
    # get/set of one field around calls, memory ops that may trap, and other accesses
    _check_meaning_kept(name, case)


@pytest.mark.parametrize("name", ["constfold", "optimize"])
@examples(60)
@given(case=cases(profiles=["arith"]))
def test_a_pass_keeps_the_meaning_of_arithmetic_on_constants(name, case):
    _check_meaning_kept(name, case)


@pytest.mark.parametrize("name", PIPELINES)
@examples(25)
@given(module=modules())
def test_a_pass_one_step_at_a_time_keeps_the_module_valid(name, module):
    # each single run of each pass (not only the fixed point) leaves a valid module
    for func in module.functions.values():
        for _ in range(3):
            for run_pass in PIPELINES[name]:
                run_pass(func, module)
                assert vm_ir.verify(module) == [], vm_ir.print_module(module)


@examples(60)
@given(module=modules())
def test_optimize_reaches_a_fixed_point_and_keeps_numbering(module):
    original = {(f.name, v.id): v.type for f in module.functions.values() for v in _values(f)}
    count = sum(len(b.insts) for f in module.functions.values() for b in f.blocks)
    optimize(module)
    for func in module.functions.values():
        for run_pass in PASSES:
            assert run_pass(func, module) is False, (run_pass, vm_ir.print_module(module))
    # no value renumbered or retyped, nothing added
    for func in module.functions.values():
        for v in _values(func):
            assert original.get((func.name, v.id)) == v.type, v
    assert sum(len(b.insts) for f in module.functions.values() for b in f.blocks) <= count
    text = vm_ir.print_module(module)
    assert vm_ir.print_module(vm_ir.parse(text)) == text


def _values(func):
    for block in func.blocks:
        yield from block.params
        yield from (i.result for i in block.insts if i.result is not None)
