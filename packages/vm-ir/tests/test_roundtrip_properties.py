"""Random modules (tests/strategies.py) verify, print and parse back to the same text, and the
parsed module means the same."""

from __future__ import annotations

import strategies
from hypothesis import given
from strategies import cases, examples, modules, run

import vm_ir
from vm_ir import OPS


def test_the_generator_covers_the_op_table():
    made = strategies.GENERIC_OPS | strategies.SPECIAL_OPS | strategies.TERMINATOR_OPS
    assert made | set(strategies.EXCLUDED_OPS) == set(OPS), (
        "ops the generator does not make: "
        f"{sorted(set(OPS) - made - set(strategies.EXCLUDED_OPS))}")
    assert not made & set(strategies.EXCLUDED_OPS)
    assert all(reason.strip() for reason in strategies.EXCLUDED_OPS.values())
    assert {n for n, op in OPS.items() if op.is_terminator} == strategies.TERMINATOR_OPS


def test_the_generic_recipe_only_makes_pure_ops():
    # an op with an effect or undefined behaviour needs a recipe of its own
    for name in strategies.GENERIC_OPS:
        assert OPS[name].is_pure and OPS[name].undefined == "nothing", name


@examples(120)
@given(modules())
def test_generated_modules_verify_and_print_parse_print_is_identical(module):
    text = vm_ir.print_module(module)
    assert vm_ir.verify(module) == [], text
    parsed = vm_ir.parse(text)
    assert vm_ir.verify(parsed) == []
    assert vm_ir.print_module(parsed) == text


@examples(60)
@given(cases())
def test_the_parsed_module_evaluates_identically(case):
    parsed = vm_ir.parse(vm_ir.print_module(case.module))
    assert run(case, parsed) == run(case)
