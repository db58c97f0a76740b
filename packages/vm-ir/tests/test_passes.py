"""Each pass on small functions, with the expected output written out by hand."""

from __future__ import annotations

from textwrap import dedent

import pytest

import vm_ir
from vm_ir.passes import PASSES, constfold, copyprop, dce, forward, optimize

#: written with the functions' indentation, so that ``STATE + """..."""`` dedents as a whole
STATE = """\
        state {
            pc: i64
            x: i64[4]
            f: f32
        }
"""


def apply(passes, text: str) -> str:
    """Parse ``text``, run ``passes`` to their fixed point, check the result verifies, print."""
    module = vm_ir.parse(dedent(text))
    assert vm_ir.verify(module) == []
    optimize(module, passes)
    errors = vm_ir.verify(module)
    assert errors == [], "\n".join(map(str, errors))
    return vm_ir.print_module(module)


def same(text: str) -> str:
    return dedent(text)


# --- constfold ---------------------------------------------------------------------------------


def test_constfold_folds_integer_ops_into_constants_in_place():
    before = """\
        func @f() -> i32 {
        block0:
            v0 = iconst.i32 7
            v1 = iconst.i32 -3
            v2 = sdiv v0, v1
            v3 = srem v0, v1
            v4 = mul v2, v3
            v5 = icmp slt v4, v0
            v6 = zext.i32 v5
            v7 = add v4, v6
            v8 = shl v7, v0
            ret v8
        }
        """
    assert apply([constfold.run], before) == same("""\
        func @f() -> i32 {
        block0:
            v0 = iconst.i32 7
            v1 = iconst.i32 -3
            v2 = iconst.i32 -2
            v3 = iconst.i32 1
            v4 = iconst.i32 -2
            v5 = iconst.i1 1
            v6 = iconst.i32 1
            v7 = iconst.i32 -1
            v8 = iconst.i32 -128
            ret v8
        }
        """)


def test_constfold_folds_floats_and_conversions_to_exact_bit_patterns():
    before = """\
        func @f() -> f64, f64, i32, i1, f32, i64 {
        block0:
            v0 = fconst.f64 1.5
            v1 = fconst.f64 2.25
            v2 = fmul v0, v1
            v3 = fconst.f64 -1.0
            v4 = fsqrt v3
            v5 = fconst.f64 1e10
            v6 = fptosi.i32 v5
            v7 = fcmp uno v4, v0
            v8 = fptrunc.f32 v2
            v9 = bitcast.i64 v3
            ret v2, v4, v6, v7, v8, v9
        }
        """
    assert apply([constfold.run], before) == same("""\
        func @f() -> f64, f64, i32, i1, f32, i64 {
        block0:
            v0 = fconst.f64 1.5
            v1 = fconst.f64 2.25
            v2 = fconst.f64 3.375
            v3 = fconst.f64 -1.0
            v4 = fconst.f64 nan:0x7ff8000000000000
            v5 = fconst.f64 10000000000.0
            v6 = iconst.i32 0x7fffffff
            v7 = iconst.i1 1
            v8 = fconst.f32 3.375
            v9 = iconst.i64 0xbff0000000000000
            ret v2, v4, v6, v7, v8, v9
        }
        """)


def test_constfold_leaves_undefined_behaviour_alone():
    text = """\
        func @f() -> i32, i32, i8 {
        block0:
            v0 = iconst.i32 5
            v1 = iconst.i32 0
            v2 = udiv v0, v1
            v3 = iconst.i8 -128
            v4 = iconst.i8 -1
            v5 = sdiv v3, v4
            v6 = srem v3, v4
            v7 = urem v0, v1
            ret v2, v7, v6
        }
        """
    module = vm_ir.parse(dedent(text))
    assert constfold.run(module.functions["f"], module) is False
    assert vm_ir.print_module(module) == same(text)


def test_constfold_applies_integer_identities():
    before = """\
        func @f(i32, i32, i1) -> i32 {
        block0(v0: i32, v1: i32, v2: i1):
            v3 = iconst.i32 0
            v4 = iconst.i32 1
            v5 = iconst.i32 -1
            v6 = iconst.i32 32
            v7 = iconst.i32 8
            v10 = add v0, v3
            v11 = add v3, v0
            v12 = sub v0, v3
            v13 = mul v4, v1
            v14 = mul v0, v3
            v15 = and v0, v5
            v16 = and v3, v1
            v17 = or v0, v3
            v18 = or v5, v1
            v19 = xor v3, v1
            v20 = shl v0, v6
            v21 = rotr v1, v3
            v22 = sub v0, v0
            v23 = xor v1, v1
            v24 = umax v1, v1
            v25 = udiv v0, v4
            v26 = sub v3, v0
            v27 = shl v0, v4
            v28 = lshr v1, v7
            ret v27
        }
        """
    assert apply([constfold.run], before) == same("""\
        func @f(i32, i32, i1) -> i32 {
        block0(v0: i32, v1: i32, v2: i1):
            v3 = iconst.i32 0
            v4 = iconst.i32 1
            v5 = iconst.i32 -1
            v6 = iconst.i32 32
            v7 = iconst.i32 8
            v10 = copy v0
            v11 = copy v0
            v12 = copy v0
            v13 = copy v1
            v14 = iconst.i32 0
            v15 = copy v0
            v16 = iconst.i32 0
            v17 = copy v0
            v18 = iconst.i32 -1
            v19 = copy v1
            v20 = copy v0
            v21 = copy v1
            v22 = iconst.i32 0
            v23 = iconst.i32 0
            v24 = copy v1
            v25 = copy v0
            v26 = sub v3, v0
            v27 = shl v0, v4
            v28 = lshr v1, v7
            ret v27
        }
        """)


def test_constfold_simplifies_select():
    before = """\
        func @f(i64, i64, i1) -> i64, i64, i64, i64 {
        block0(v0: i64, v1: i64, v2: i1):
            v3 = iconst.i1 1
            v4 = iconst.i1 0
            v5 = select v3, v0, v1
            v6 = select v4, v0, v1
            v7 = select v2, v1, v1
            v8 = select v2, v0, v1
            ret v5, v6, v7, v8
        }
        """
    assert apply([constfold.run], before) == same("""\
        func @f(i64, i64, i1) -> i64, i64, i64, i64 {
        block0(v0: i64, v1: i64, v2: i1):
            v3 = iconst.i1 1
            v4 = iconst.i1 0
            v5 = copy v0
            v6 = copy v1
            v7 = copy v1
            v8 = select v2, v0, v1
            ret v5, v6, v7, v8
        }
        """)


def test_constfold_simplifies_a_v128_select_but_makes_no_v128_constant():
    before = """\
        func @f(v128, i128) -> v128, v128 {
        block0(v0: v128, v1: i128):
            v2 = iconst.i1 0
            v3 = select v2, v0, v0
            v4 = iconst.i128 5
            v5 = bitcast.v128 v4
            v6 = select v2, v5, v0
            ret v3, v6
        }
        """
    assert apply([constfold.run], before) == same("""\
        func @f(v128, i128) -> v128, v128 {
        block0(v0: v128, v1: i128):
            v2 = iconst.i1 0
            v3 = copy v0
            v4 = iconst.i128 5
            v5 = bitcast.v128 v4
            v6 = copy v0
            ret v3, v6
        }
        """)


def test_constfold_turns_decided_brifs_into_br():
    before = """\
        func @f(i64, i1) -> i64 {
        block0(v0: i64, v1: i1):
            v2 = iconst.i64 3
            v3 = iconst.i64 4
            v4 = icmp ult v2, v3
            brif v4, block1(v0), block2
        block1(v5: i64):
            brif v1, block2, block2
        block2:
            brif v1, block3(v0), block3(v2)
        block3(v6: i64):
            ret v6
        }
        """
    assert apply([constfold.run], before) == same("""\
        func @f(i64, i1) -> i64 {
        block0(v0: i64, v1: i1):
            v2 = iconst.i64 3
            v3 = iconst.i64 4
            v4 = iconst.i1 1
            br block1(v0)
        block1(v5: i64):
            br block2
        block2:
            brif v1, block3(v0), block3(v2)
        block3(v6: i64):
            ret v6
        }
        """)


def test_constfold_does_not_fold_float_identities_or_calls():
    text = STATE + """
        helper @h(i64) -> i64 pure

        func @f(f64) -> f64, i64 {
        block0(v0: f64):
            v1 = fconst.f64 0.0
            v2 = fadd v0, v1
            v3 = iconst.i64 2
            v4 = call @h(v3)
            v5 = get pc
            v6 = add v5, v3
            ret v2, v6
        }
        """
    assert apply([constfold.run], text) == same(text)


# --- copyprop ----------------------------------------------------------------------------------


def test_copyprop_replaces_uses_of_copies_and_removes_them():
    before = """\
        func @f(i64) -> i64 {
        block0(v0: i64):
            v1 = copy v0
            v2 = copy v1
            v3 = add v2, v1
            br block1(v2)
        block1(v4: i64):
            v5 = copy v4
            ret v5
        }
        """
    # the block parameter v4 receives v0 alone: it goes too
    assert apply([copyprop.run], before) == same("""\
        func @f(i64) -> i64 {
        block0(v0: i64):
            v3 = add v0, v0
            br block1
        block1:
            ret v0
        }
        """)


def test_copyprop_removes_a_parameter_that_every_predecessor_passes_the_same_value():
    before = """\
        func @f(i64, i1) -> i64, i64 {
        block0(v0: i64, v1: i1):
            v2 = iconst.i64 1
            brif v1, block1, block2
        block1:
            br block3(v0, v2)
        block2:
            br block3(v0, v0)
        block3(v3: i64, v4: i64):
            ret v3, v4
        }
        """
    assert apply([copyprop.run], before) == same("""\
        func @f(i64, i1) -> i64, i64 {
        block0(v0: i64, v1: i1):
            v2 = iconst.i64 1
            brif v1, block1, block2
        block1:
            br block3(v2)
        block2:
            br block3(v0)
        block3(v4: i64):
            ret v0, v4
        }
        """)


def test_copyprop_removes_a_loop_parameter_passed_around_unchanged():
    before = """\
        func @f(i64, i64) -> i64 {
        block0(v0: i64, v1: i64):
            v2 = iconst.i64 0
            br block1(v0, v2)
        block1(v3: i64, v4: i64):
            v5 = add v4, v3
            v6 = icmp ult v5, v1
            brif v6, block1(v3, v5), block2(v3)
        block2(v7: i64):
            ret v7
        }
        """
    assert apply([copyprop.run], before) == same("""\
        func @f(i64, i64) -> i64 {
        block0(v0: i64, v1: i64):
            v2 = iconst.i64 0
            br block1(v2)
        block1(v4: i64):
            v5 = add v4, v0
            v6 = icmp ult v5, v1
            brif v6, block1(v5), block2
        block2:
            ret v0
        }
        """)


def test_copyprop_keeps_parameters_that_receive_different_values():
    text = """\
        func @f(i64, i64, i1) -> i64 {
        block0(v0: i64, v1: i64, v2: i1):
            brif v2, block1(v0), block1(v1)
        block1(v3: i64):
            ret v3
        }
        """
    module = vm_ir.parse(dedent(text))
    assert copyprop.run(module.functions["f"], module) is False
    assert vm_ir.print_module(module) == same(text)


# --- dce ---------------------------------------------------------------------------------------


def test_dce_removes_unused_effect_free_instructions_and_keeps_effects():
    before = STATE + """
        helper @p(i64) -> i64 pure
        helper @q(i64) -> i64

        func @f(i64) -> i64 {
        block0(v0: i64):
            v1 = add v0, v0
            v2 = mul v1, v1
            v3 = get pc
            v4 = call @p(v0)
            v5 = call @q(v0)
            v6 = load.i64 v0
            v7 = fconst.f32 1.0
            set f, v7
            store v0, v0
            fence seq_cst
            v8 = udiv v0, v0
            v9 = sub v0, v0
            ret v9
        }
        """
    assert apply([dce.run], before) == same(STATE + """
        helper @p(i64) -> i64 pure
        helper @q(i64) -> i64

        func @f(i64) -> i64 {
        block0(v0: i64):
            v5 = call @q(v0)
            v6 = load.i64 v0
            v7 = fconst.f32 1.0
            set f, v7
            store v0, v0
            fence seq_cst
            v9 = sub v0, v0
            ret v9
        }
        """)


def test_dce_removes_unreachable_blocks():
    before = """\
        func @f(i64) -> i64 {
        block0(v0: i64):
            br block2(v0)
        block1:
            v1 = iconst.i64 1
            br block2(v1)
        block2(v2: i64):
            ret v2
        block3:
            br block3
        }
        """
    assert apply([dce.run], before) == same("""\
        func @f(i64) -> i64 {
        block0(v0: i64):
            br block2(v0)
        block2(v2: i64):
            ret v2
        }
        """)


def test_dce_removes_a_dead_loop_carried_parameter():
    before = """\
        func @f(i64) -> i64 {
        block0(v0: i64):
            v1 = iconst.i64 0
            br block1(v1, v1)
        block1(v2: i64, v3: i64):
            v4 = iconst.i64 1
            v5 = add v2, v4
            v6 = mul v3, v3
            v7 = icmp ult v5, v0
            brif v7, block1(v5, v6), block2
        block2:
            ret v0
        }
        """
    assert apply([dce.run], before) == same("""\
        func @f(i64) -> i64 {
        block0(v0: i64):
            v1 = iconst.i64 0
            br block1(v1)
        block1(v2: i64):
            v4 = iconst.i64 1
            v5 = add v2, v4
            v7 = icmp ult v5, v0
            brif v7, block1(v5), block2
        block2:
            ret v0
        }
        """)


def test_dce_keeps_entry_parameters():
    text = """\
        func @f(i64, i64) -> i64 {
        block0(v0: i64, v1: i64):
            ret v0
        }
        """
    assert apply([dce.run], text) == same(text)


# --- forward -----------------------------------------------------------------------------------


def test_forward_turns_gets_of_known_fields_into_copies():
    before = STATE + """
        helper @p(i64) -> i64 pure

        func @f(i64) -> i64 {
        block0(v0: i64):
            set x[1], v0
            v1 = get x[1]
            v2 = get x[2]
            v3 = call @p(v2)
            store v3, v0
            v4 = get x[2]
            v5 = add v1, v4
            ret v5
        }
        """
    assert apply([forward.run], before) == same(STATE + """
        helper @p(i64) -> i64 pure

        func @f(i64) -> i64 {
        block0(v0: i64):
            set x[1], v0
            v1 = copy v0
            v2 = get x[2]
            v3 = call @p(v2)
            store v3, v0
            v4 = copy v2
            v5 = add v1, v4
            ret v5
        }
        """)


def test_forward_forgets_everything_at_a_call_that_is_not_pure():
    text = STATE + """
        helper @q(i64)

        func @f(i64) -> i64 {
        block0(v0: i64):
            set pc, v0
            call @q(v0)
            v1 = get pc
            set pc, v1
            ret v1
        }
        """
    assert apply([forward.run], text) == same(text)


def test_forward_removes_a_set_overwritten_before_anything_observes_it():
    before = STATE + """
        func @f(i64, i64) -> i64 {
        block0(v0: i64, v1: i64):
            set pc, v0
            set x[0], v0
            v2 = get x[0]
            set pc, v1
            set x[0], v2
            set x[0], v1
            ret v2
        }
        """
    assert apply([forward.run], before) == same(STATE + """
        func @f(i64, i64) -> i64 {
        block0(v0: i64, v1: i64):
            v2 = copy v0
            set pc, v1
            set x[0], v1
            ret v2
        }
        """)


def test_forward_keeps_a_set_that_a_get_a_call_or_a_trap_may_observe():
    text = STATE + """
        helper @q()

        func @f(i64, i64) {
        block0(v0: i64, v1: i64):
            set pc, v0
            v2 = load.i32 v1
            set pc, v1
            call @q()
            set pc, v0
            store v0, v1
            set pc, v1
            v3 = atomic_rmw.i64 add v1, v0 seq_cst
            set pc, v0
            v4 = cmpxchg.i32 v1, v2, v2 relaxed
            set pc, v1
            exit v0
        }
        """
    assert apply([forward.run], text) == same(text)


def test_forward_stays_within_a_block():
    text = STATE + """
        func @f(i64) -> i64 {
        block0(v0: i64):
            set pc, v0
            br block1
        block1:
            v1 = get pc
            set pc, v0
            ret v1
        }
        """
    assert apply([forward.run], text) == same(text)


def test_forward_removes_a_set_across_a_fence():
    # a fence orders memory; state is no memory, so the first set is overwritten unseen
    before = STATE + """
        func @f(i64, i64) {
        block0(v0: i64, v1: i64):
            set pc, v0
            fence seq_cst
            set pc, v1
            ret
        }
        """
    assert apply([forward.run], before) == same(STATE + """
        func @f(i64, i64) {
        block0(v0: i64, v1: i64):
            fence seq_cst
            set pc, v1
            ret
        }
        """)


# --- the pipeline ------------------------------------------------------------------------------


def test_optimize_runs_every_pass_to_a_fixed_point():
    before = STATE + """
        func @f(i64) -> i64 {
        block0(v0: i64):
            v1 = iconst.i64 2
            v2 = iconst.i64 3
            v3 = mul v1, v2
            v4 = icmp eq v3, v1
            set pc, v0
            v5 = get pc
            brif v4, block1(v5), block2(v5, v3)
        block1(v6: i64):
            ret v6
        block2(v7: i64, v8: i64):
            v9 = iconst.i64 0
            v10 = add v7, v9
            v11 = add v10, v8
            set x[3], v11
            exit v10
        }
        """
    assert apply(PASSES, before) == same(STATE + """
        func @f(i64) -> i64 {
        block0(v0: i64):
            v3 = iconst.i64 6
            set pc, v0
            br block2
        block2:
            v11 = add v0, v3
            set x[3], v11
            exit v0
        }
        """)


@pytest.mark.parametrize("run_pass", [constfold.run, copyprop.run, dce.run, forward.run])
def test_a_pass_says_whether_it_changed_anything(run_pass):
    # each pass has one thing to do here: add v0, 0; copy; get pc; an unused mul
    module = vm_ir.parse(dedent(STATE + """
        func @f(i64) -> i64 {
        block0(v0: i64):
            v1 = iconst.i64 0
            v2 = add v0, v1
            v3 = copy v2
            set pc, v3
            v4 = get pc
            v5 = mul v4, v4
            v6 = icmp eq v0, v1
            brif v6, block1, block2
        block1:
            ret v4
        block2:
            ret v3
        }
        """))
    func = module.functions["f"]
    assert run_pass(func, module) is True
    assert run_pass(func, module) is False
    assert vm_ir.verify(module) == []


def test_optimize_gives_back_the_module_it_changed():
    module = vm_ir.parse("func @f() {\nblock0:\n    v0 = iconst.i8 1\n    ret\n}\n")
    assert vm_ir.optimize(module) is module
    assert vm_ir.print_module(module) == "func @f() {\nblock0:\n    ret\n}\n"
