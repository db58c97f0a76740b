"""The verifier: each rule, the error location format, and every error reported.

Rules a parsed text can break are also covered, line by line, by filetests/verify/; here are
the location format, the rules only a built (or hand-modified) module can break, and the
promise that the verifier never raises.
"""

from __future__ import annotations

import pytest

import vm_ir
from vm_ir import (
    F32,
    F64,
    I1,
    I8,
    I32,
    I64,
    OPS,
    Block,
    FunctionBuilder,
    Inst,
    MemFlags,
    Module,
    StateLayout,
    Target,
    Value,
    parse,
    verify,
    verify_function,
)


def _messages(module: Module) -> list[str]:
    return [e.message for e in verify(module)]


def _parsed_errors(body: str, prelude: str = "") -> list[str]:
    text = f"{prelude}func @f(i64, f64) -> i64 {{\nblock0(v0: i64, v1: f64):\n{body}\n}}\n"
    return [e.message for e in verify(parse(text))]


# --- the location format ---------------------------------------------------------------------


def test_error_location_of_a_parsed_module() -> None:
    text = """\
func @f(i64) -> i64 {
block0(v0: i64):
    br block1
block1:
    v1 = iconst.i32 1
    v2 = add v0, v1
    ret v2
}
"""
    (error,) = verify(parse(text, "prog.vmir"))
    assert str(error) == ("prog.vmir:6: in @f, block1: `v2 = add v0, v1` "
                          "arg 1 (v1) has type i32, expected i64")
    assert (error.line, error.function, error.block, error.inst_index) == (6, "f", "block1", 1)
    assert error.location == "prog.vmir:6: in @f, block1"
    assert error.inst_text == "v2 = add v0, v1"


def test_error_location_of_a_built_module_names_the_instruction_index() -> None:
    m = Module()
    fb = FunctionBuilder(m, "g", params=[I64], returns=[I64])
    (x,) = fb.params
    fb.add(x, fb.iconst(I32, 1))
    fb.ret(x)
    (error,) = verify(m)
    assert str(error) == "in @g, block0, inst 1: `v2 = add v0, v1` arg 1 (v1) has type i32, " \
                         "expected i64"
    assert error.line is None and error.filename == "<module>"


def test_block_and_function_level_errors_point_at_their_header() -> None:
    text = "func @f(i64) {\nblock0(v0: i64):\n    br block1\nblock1:\n}\n"
    (error,) = verify(parse(text, "e.vmir"))
    assert str(error) == ("e.vmir:4: in @f, block1: is empty: a block ends with a terminator "
                          "(br, brif, exit, trap, ret)")


def test_state_layout_errors_point_at_the_layout() -> None:
    m = parse("state {\n    x: i64[0]\n}\n", "s.vmir")
    (error,) = verify(m)
    assert str(error) == "s.vmir:1: field x has 0 elements"


# --- every error, in order ---------------------------------------------------------------


def test_all_errors_are_reported_in_source_order_across_functions() -> None:
    text = """\
state {
    pc: i64
}
func @a(i64) -> i64 {
block0(v0: i64):
    v1 = iconst.i8 300
    v2 = fadd v0, v0
    set pc, v1
    ret v1
}
func @b() {
block0:
    v0 = iconst.i64 1
block1:
    ret
}
"""
    errors = verify(parse(text, "many.vmir"))
    assert [(e.line, e.function, e.message) for e in errors] == [
        (6, "a", "immediate 300 does not fit i8"),
        (7, "a", "type i64 is not a float type"),
        (8, "a", "arg 0 (v1) has type i8, field pc is i64"),
        (9, "a", "returns (i8), the signature says (i64)"),
        (13, "b", "does not end with a terminator (br, brif, exit, trap, ret)"),
    ]


def test_one_instruction_may_break_several_rules() -> None:
    errors = _parsed_errors("    v2 = select v0, v1, v0\n    ret v0")
    assert errors == ["arg 0 (v0) has type i64, expected i1",
                      "arg 2 (v0) has type i64, expected f64"]


def test_a_valid_module_has_no_errors() -> None:
    assert _parsed_errors("    v2 = fptosi.i64 v1\n    v3 = add v0, v2\n    ret v3") == []


# --- rules a text can break (one case each; filetests/verify has them all) ----------------


@pytest.mark.parametrize(("body", "message"), [
    ("    v2 = add v0, v1\n    ret v0", "arg 1 (v1) has type f64, expected i64"),
    ("    v2 = fneg v0\n    ret v0", "type i64 is not a float type"),
    ("    v2 = trunc.i8 v0\n    v3 = bswap v2\n    ret v0",
     "type i8 is not an integer type of 16 bits or more"),
    ("    v2 = zext.i32 v0\n    ret v0", "i32 is not wider than i64"),
    ("    v2 = fpext.f64 v1\n    ret v0", "converts f32 to f64, not f64 to f64"),
    ("    v2 = iconst.i8 -129\n    ret v0", "immediate -129 does not fit i8"),
    ("    ret v1", "returns (f64), the signature says (i64)"),
    ("    exit v1", "arg 0 (v1) has type f64, expected i64"),
    ("    v2 = load.f64 v0 size 4\n    ret v0", "f64 values are accessed whole: drop size 4"),
    ("    v2 = load.i64 v0 release\n    ret v0", "ordering release is not allowed on a load"),
    ("    fence relaxed\n    ret v0", "a fence is one of acquire, release, acq_rel, seq_cst"),
    ("    br block0(v0, v1)", "branches to the entry block"),
])
def test_rules_of_the_text(body: str, message: str) -> None:
    assert message in _parsed_errors(body)


# --- rules only a built or modified module can break ---------------------------------------


def _func(m: Module | None = None, returns=(I64,)) -> FunctionBuilder:
    return FunctionBuilder(m if m is not None else Module(), "f", params=[I64],
                           returns=list(returns))


def test_a_function_without_blocks() -> None:
    fb = _func()
    fb.func.blocks.clear()
    assert _messages(fb.module) == ["has no blocks"]


def test_duplicate_block_names() -> None:
    fb = _func()
    other = fb.new_block()
    fb.br(other)
    fb.switch_to(other)
    fb.ret(fb.params[0])
    other.name = "block0"
    assert "block name block0 is used twice" in _messages(fb.module)


def test_a_value_defined_twice() -> None:
    fb = _func()
    (x,) = fb.params
    a = fb.iconst(I64, 1)
    b = fb.iconst(I64, 2)
    b.id = a.id  # two definitions print as the same name
    fb.ret(x)
    assert _messages(fb.module) == [f"v{a.id} is defined more than once"]
    fb.module.functions["f"].entry.insts[1].result = a  # the very same Value twice
    assert f"v{a.id} is defined more than once" in _messages(fb.module)


def test_a_use_defined_nowhere() -> None:
    fb = _func()
    fb.ret(Value(99, I64))
    assert _messages(fb.module) == ["v99 is not defined in @f"]


def test_a_target_outside_the_function() -> None:
    fb = _func()
    stray = Block("block9")
    fb.emit("br", targets=[Target(stray)])
    assert _messages(fb.module) == ["branches to block9, which is not in @f"]


def test_wrong_operand_and_target_counts() -> None:
    fb = _func()
    (x,) = fb.params
    fb.block.insts.append(Inst(OPS["add"], [x], result=fb.func.new_value(I64)))
    fb.block.insts.append(Inst(OPS["br"], [], targets=[]))
    assert _messages(fb.module) == ["takes 2 value operand(s), has 1",
                                    "takes 1 branch target(s), has 0"]


def test_type_suffix_missing_or_extra() -> None:
    fb = _func()
    (x,) = fb.params
    fb.block.insts.append(Inst(OPS["iconst"], [], {"imm": 1}, result=fb.func.new_value(I64)))
    fb.block.insts.append(Inst(OPS["neg"], [x], type=I64, result=fb.func.new_value(I64)))
    fb.ret(x)
    assert _messages(fb.module) == ["iconst needs a type", "neg takes no type"]


def test_immediates_outside_their_choices() -> None:
    fb = _func()
    (x,) = fb.params
    fb.icmp("lt", x, x)
    fb.trap("oops")
    assert _messages(fb.module) == ["unknown icmp condition 'lt'", "unknown trap kind 'oops'"]


def test_float_and_int_immediates_of_the_wrong_form() -> None:
    fb = _func(returns=())
    fb.fconst(F32, 1 << 40)
    fb.iconst(I64, "one")
    fb.ret()
    assert _messages(fb.module) == ["immediate is not a bit pattern of f32",
                                    "immediate is not an integer"]


def test_result_presence_and_type() -> None:
    fb = _func(returns=())
    (x,) = fb.params
    fb.block.insts.append(Inst(OPS["neg"], [x], result=Value(50, I32)))
    fb.block.insts.append(Inst(OPS["fence"], [], {"order": "seq_cst"}, result=Value(51, I64)))
    fb.block.insts.append(Inst(OPS["not"], [x]))
    fb.ret()
    assert _messages(fb.module) == ["result v50 has type i32, expected i64",
                                    "fence gives no value but has result v51",
                                    "not gives a value but has no result"]


def test_get_result_of_another_type_than_its_field() -> None:
    m = Module(state=StateLayout())
    m.state.add("pc", I64)
    fb = _func(m, returns=())
    fb.block.insts.append(Inst(OPS["get"], [], {"field": vm_ir.FieldRef("pc")},
                               result=Value(9, I32)))
    fb.ret()
    assert "result v9 has type i32, field pc is i64" in _messages(m)


def test_calls_against_their_declaration() -> None:
    m = Module()
    m.declare_helper("nop", [])
    m.declare_helper("two", [I64], I8)
    fb = _func(m, returns=())
    (x,) = fb.params
    fb.block.insts.append(Inst(OPS["call"], [], {"helper": "nop"}, result=Value(20, I64)))
    fb.block.insts.append(Inst(OPS["call"], [x], {"helper": "two"}, result=Value(21, I64)))
    fb.ret()
    assert _messages(m) == ["@nop returns nothing but has result v20",
                            "result v21 has type i64, @two returns i8"]


def test_memory_flags_missing() -> None:
    fb = _func(returns=())
    (x,) = fb.params
    fb.block.insts.append(Inst(OPS["store"], [x, x], {}))
    fb.ret()
    assert _messages(fb.module) == ["needs memory flags"]


def test_flags_of_a_built_load() -> None:
    fb = _func(returns=())
    (x,) = fb.params
    fb.load(I64, x, MemFlags(size=16))
    fb.load(F64, x, MemFlags(align=6, order="acq_rel"))
    fb.ret()
    assert _messages(fb.module) == ["size 16 is larger than i64 (8 bytes)",
                                    "align 6 is not a power of two",
                                    "ordering acq_rel is not allowed on a load"]


def test_entry_parameters_must_be_the_signature() -> None:
    fb = _func()
    fb.func.params = [I64, I1]
    fb.ret(fb.params[0])
    assert _messages(fb.module) == [
        "entry block parameters (i64) differ from the signature (i64, i1)"]


def test_state_rules_without_a_module() -> None:
    fb = FunctionBuilder(None, "f", params=[I64])
    fb.set("pc", fb.params[0])
    fb.ret()
    errors = verify_function(fb.func)
    assert [e.message for e in errors] == [
        "uses state but the module declares no state layout"]
    assert errors[0].filename == "<module>"


def test_the_verifier_never_raises_on_malformed_instructions() -> None:
    fb = _func(returns=())
    (x,) = fb.params
    fb.block.insts.append(Inst(OPS["set"], [x], {}))  # no field
    fb.block.insts.append(Inst(OPS["icmp"], [x, x], {}, result=Value(30, I1)))  # no cond
    fb.block.insts.append(Inst(OPS["call"], [x], {"helper": None}))
    fb.ret()
    messages = _messages(fb.module)
    assert messages == ["needs a state field", "unknown icmp condition None",
                        "unknown helper @None"]


def test_verify_is_what_evaluate_checks_first() -> None:
    fb = _func()
    fb.ret(Value(99, I64))
    with pytest.raises(vm_ir.EvaluationError, match="v99 is not defined in @f"):
        vm_ir.evaluate(fb.module, "f", [1])
