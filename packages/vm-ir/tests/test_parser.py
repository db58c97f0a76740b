"""The parser: hand-written texts round-trip, and every ParseError says where and what."""

from __future__ import annotations

import pytest

import vm_ir
from vm_ir import F32, F64, I1, I8, I64, V128, MemFlags, ParseError, parse, parse_function

# Each text is written exactly as the printer writes it, so print(parse(text)) == text.
CANONICAL = {
    "state_helpers_and_memory": """\
state {
    x: i64[32]
    pc: i64
    f: f64[32]
    v: v128[2]
    flags: i8
}

helper @fsqrt_rm(f64, i8) -> f64 pure
helper @syscall()
helper @cpuid(i32, i32) -> i128

func @f(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = icmp slt v0, v1
    brif v2, block1(v0), block1(v1)
block1(v3: i64):
    v4 = get x[3]
    set pc, v4
    v5 = load.i32 v3 size 2 sext align 2
    v6 = load.i64 v3 acquire
    store v5, v3 size 1
    store v6, v3 release
    v7 = atomic_rmw.i64 umax v3, v6 acq_rel
    v8 = cmpxchg.i64 v3, v7, v6 seq_cst
    fence seq_cst
    v9 = get flags
    v10 = get f[31]
    v11 = call @fsqrt_rm(v10, v9)
    set f[0], v11
    call @syscall()
    v12 = trunc.i32 v8
    v13 = call @cpuid(v12, v12)
    v14 = get v[1]
    set v[0], v14
    ret v8
}
""",
    "constants_and_conversions": """\
func @c() -> i64, f64, f32, i8, i1 {
block0:
    v0 = iconst.i64 0x123456789abcdef0
    v1 = iconst.i64 -1
    v2 = fconst.f64 -0.0
    v3 = fconst.f64 nan:0x7ff4000000000001
    v4 = fconst.f32 0.1
    v5 = fconst.f64 inf
    v6 = fconst.f32 -inf
    v7 = iconst.i8 -128
    v8 = iconst.i1 1
    v9 = fptosi.i8 v3
    v10 = sitofp.f64 v0
    v11 = fpext.f64 v4
    v12 = fptrunc.f32 v11
    v13 = bitcast.i64 v2
    v14 = zext.i128 v13
    v15 = sext.i64 v7
    v16 = uitofp.f32 v1
    v17 = fptoui.i64 v5
    ret v1, v2, v12, v9, v8
}
""",
    "all_terminators": """\
func @t(i64, i1) {
block0(v0: i64, v1: i1):
    brif v1, block1, block2(v0)
block1:
    trap breakpoint
block2(v2: i64):
    v3 = iconst.i64 0
    v4 = icmp eq v2, v3
    brif v4, block3, block4
block3:
    exit v2
block4:
    br block5
block5:
    ret
}
""",
    "numbering_is_kept": """\
func @n(i64) -> i64 {
block7(v40: i64):
    br block3(v40)
block3(v9: i64):
    v100 = neg v9
    ret v100
}
""",
    "every_prefix_immediate": """\
func @p(f64, i64) -> i1 {
block0(v0: f64, v1: i64):
    v2 = fcmp uno v0, v0
    v3 = icmp sge v1, v1
    v4 = and v2, v3
    v5 = select v4, v0, v0
    v6 = fma v5, v5, v5
    v7 = atomic_rmw.i8 xchg v1, v1 relaxed
    ret v4
}
""",
}


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_canonical_text_round_trips(name: str) -> None:
    text = CANONICAL[name]
    module = parse(text)
    assert vm_ir.print_module(module) == text
    assert vm_ir.print_module(parse(vm_ir.print_module(module))) == text


def test_canonical_texts_verify() -> None:
    for name, text in CANONICAL.items():
        if name == "every_prefix_immediate":
            continue  # atomic_rmw.i8 on an i64 operand: a verifier error, not a parse error
        assert vm_ir.verify(parse(text)) == [], name


def test_free_form_text_prints_canonically() -> None:
    text = """
; comment
state {
  pc:i64   ; comment
}
func @f( i64 )->i64{
block0( v0 :i64 ):   ; comment
      v1=iconst.i64 0x10
  v2 = add v0,v1
    set pc , v2
  ret v2
}
"""
    printed = vm_ir.print_module(parse(text))
    assert printed == """\
state {
    pc: i64
}

func @f(i64) -> i64 {
block0(v0: i64):
    v1 = iconst.i64 16
    v2 = add v0, v1
    set pc, v2
    ret v2
}
"""


def test_what_the_parser_builds() -> None:
    module = parse(CANONICAL["state_helpers_and_memory"], "m.vmir")
    assert module.filename == "m.vmir"
    assert [(f.name, f.type, f.count) for f in module.state.fields][:2] == [
        ("x", I64, 32), ("pc", I64, None)]
    assert module.state.loc == 1
    sqrt = module.helpers["fsqrt_rm"]
    assert (sqrt.params, sqrt.result, sqrt.pure, sqrt.loc) == ([F64, I8], F64, True, 9)
    assert module.helpers["syscall"].result is None and not module.helpers["syscall"].pure
    func = module.functions["f"]
    assert (func.params, func.returns, func.loc) == ([I64, I64], [I64], 13)
    block1 = func.block_named("block1")
    assert block1 is not None and block1.loc == 17
    load = block1.insts[2]
    assert load.name == "load" and load.loc == 20
    assert load.imms["flags"] == MemFlags(size=2, sext=True, align=2)
    assert block1.insts[3].imms["flags"] == MemFlags(order="acquire")
    assert str(block1.insts[0].imms["field"]) == "x[3]"
    brif = func.entry.insts[-1]
    assert [t.block.name for t in brif.targets] == ["block1", "block1"]
    assert [str(t.args[0]) for t in brif.targets] == ["v0", "v1"]


def test_result_types_are_inferred_in_any_order() -> None:
    func = parse_function("""
state {
    flag: i1
    v: v128[1]
}
helper @h(i64) -> f32
func @f(i64) {
block0(v0: i64):
    br block2
block1:
    v5 = select v4, v3, v3
    v6 = call @h(v2)
    v7 = get v[0]
    v8 = bitcast.i128 v7
    ret
block2:
    v2 = add v0, v0
    v3 = fconst.f64 1.5
    v4 = get flag
    br block1
}
""")
    types = {str(v): v.type for _, i in func.insts() if (v := i.result) is not None}
    assert types["v5"] is F64 and types["v6"] is F32 and types["v4"] is I1
    assert types["v7"] is V128 and types["v2"] is I64
    assert func.next_value == 9


def test_parse_function_and_its_errors() -> None:
    func = parse_function("func @g() {\nblock0:\n    ret\n}\n")
    assert func.name == "g"
    with pytest.raises(ParseError, match="expected one function, found 2"):
        parse_function("func @a() {\nblock0:\n ret\n}\nfunc @b() {\nblock0:\n ret\n}\n")


# (text, line, message): every ParseError path with a line number and a message saying what
# is wrong.
F = "func @f(i64) -> i64 {{\nblock0(v0: i64):\n{}\n    ret v0\n}}\n"  # the body is line 3
ERRORS = [
    ("func @f() {\nblock0:\n    v0 = iconst.i64 $1\n}\n", 3, "cannot read '$1'"),
    (F.format("    v1 = frob v0"), 3, "unknown op 'frob'"),
    (F.format("    v1 = iconst.q8 1"), 3, "unknown type 'q8'"),
    (F.format("    v1 = add.i64 v0, v0"), 3, "add takes no type suffix"),
    (F.format("    v1 = iconst 1"), 3, "iconst needs a type suffix, as in iconst.i64"),
    (F.format("    v1 = add v0, w0"), 3, "expected a value (v<n>), found 'w0'"),
    (F.format("    v1 = add v0"), 3, "expected a value at end of line"),
    (F.format("    v1 = neg v0 v0"), 3, "unexpected 'v0'"),
    (F.format("    v1 = load.i64 v0 big"), 3, "unknown memory flag 'big' (size N, sext, "
                                               "align N, or an ordering)"),
    (F.format("    v1 = load.i64 v0 size"), 3, "expected a size at end of line"),
    (F.format("    v1 = load.i64 v0 align x"), 3, "expected an alignment, found 'x'"),
    (F.format("    v1 = icmp lt v0, v0"), 3, "unknown icmp condition 'lt' (one of eq, ne, ult, "
                                              "ule, ugt, uge, slt, sle, sgt, sge)"),
    (F.format("    v1 = fcmp lt v0, v0"), 3, "unknown fcmp condition 'lt'"),
    (F.format("    v1 = atomic_rmw.i64 nand v0, v0 seq_cst"), 3, "unknown atomic_rmw op 'nand'"),
    (F.format("    v1 = atomic_rmw.i64 add v0, v0 strong"), 3, "unknown ordering 'strong'"),
    (F.format("    trap oops"), 3, "unknown trap kind 'oops'"),
    (F.format("    v1 = fconst.f64 nan:0x1"), 3, "bad float 'nan:0x1'"),
    (F.format("    v1 = fconst.f64 0x1"), 3, "write a float as a decimal or nan:0x<bits>"),
    (F.format("    v1 = fconst.f64 v0"), 3, "bad float 'v0'"),
    (F.format("    v1 = iconst.i64 v0"), 3, "expected an integer, found 'v0'"),
    (F.format("    add v0, v0"), 3, "add gives a value: write vN = add ..."),
    (F.format("    v1 = fence seq_cst"), 3, "fence gives no value"),
    (F.format("    v1 = call sum(v0)"), 3, "expected a helper (@name), found 'sum'"),
    (F.format("    v1 = call @sum(v0)"), 3, "unknown helper @sum: declare it with helper @sum(...)"),
    (F.format("    v1 = get pc"), 3, "get needs a state layout: declare state { ... } first"),
    (F.format("    br 7"), 3, "expected a block, found '7'"),
    (F.format("    br block9"), 3, "unknown block block9"),
    (F.format("    set pc[x], v0"), 3, "expected an index, found 'x'"),
    (F.format("    v0 = iconst.i64 1"), 3, "v0 is defined twice (first on line 2)"),
    (F.format("    v1 = iconst.i64 1\n    v1 = iconst.i64 2"), 4,
     "v1 is defined twice (first on line 3)"),
    (F.format("    v1 = add v0, v9"), 3, "use of undefined value v9"),
    (F.format("    ret v9"), 3, "use of undefined value v9"),
    (F.format("block0:\n    ret v0"), 3, "block block0 is defined twice"),
    (F.format("block1(v0: i64):\n    ret v0"), 3, "v0 is defined twice (first on line 2)"),
    (F.format("block1(v7 i64):"), 3, "expected ':', found 'i64'"),
    (F.format("block1(v7: i64:"), 3, "expected ')', found ':'"),
    (F.format("    v1 = add v2, v2\n    v2 = add v1, v1"), 3,
     "cannot infer the type of v1: its operands depend on it"),
    ("func @f() {\n    ret\n}\n", 2, "an instruction before the first block header"),
    ("func @f() {\n}\n", 1, "function @f has no blocks"),
    ("func @f() {\nblock0:\n    ret\n", 1, "func @f without a closing }"),
    ("func @f() {\nblock0:\n    ret\n}\nfunc @f() {\nblock0:\n    ret\n}\n", 5,
     "function @f is defined twice"),
    ("func f() {\n", 1, "expected a function name (@name), found 'f'"),
    ("func @f i64 {\n", 1, "expected '(', found 'i64'"),
    ("func @f(i64 {\n", 1, "expected ')', found '{'"),
    ("func @f() -> {\n", 1, "expected a type, found '{'"),
    ("func @f() -> i64\n", 1, "expected '{', found end of line"),
    ("func @f() { x\n", 1, "unexpected 'x'"),
    ("funky\n", 1, "expected state, helper or func, found 'funky'"),
    ("\n\n  42\n", 3, "expected state, helper or func, found '42'"),
    ("helper sum()\n", 1, "expected a helper name (@name), found 'sum'"),
    ("helper @h(i64) -> i64 impure\n", 1, "unexpected 'impure'"),
    ("helper @h()\nhelper @h()\n", 2, "helper @h is declared twice"),
    ("state {\n    pc: i64\n", 1, "state { without a closing }"),
    ("state {\n    pc: i64\n}\nstate {\n}\n", 4, "a second state layout"),
    ("state {\n    pc: i64\n    pc: i64\n}\n", 3, "field pc is declared twice"),
    ("state {\n    pc i64\n}\n", 2, "expected ':', found 'i64'"),
    ("state {\n    x: i64[y]\n}\n", 2, "expected an element count, found 'y'"),
    ("state {\n    x: i64[4\n}\n", 2, "expected ']', found end of line"),
    ("state {\n    x: int\n}\n", 2, "unknown type 'int'"),
    ("state {\n    pc: i64\n} x\n", 3, "unexpected 'x'"),
    ("state {\n    pc: i64\n}\nfunc @f() -> i64 {\nblock0:\n    v0 = get sp\n    ret v0\n}\n",
     6, "unknown state field sp"),
    ("helper @h()\nfunc @f() -> i64 {\nblock0:\n    v0 = call @h()\n    ret v0\n}\n", 4,
     "helper @h returns nothing; drop the 'v0 ='"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS,
                         ids=[f"{i}-{m[:30]}" for i, (_, _, m) in enumerate(ERRORS)])
def test_parse_errors_say_where_and_what(text: str, line: int, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text, "bad.vmir")
    error = info.value
    assert error.line == line, error
    assert message in error.message
    assert error.filename == "bad.vmir"
    assert str(error) == f"bad.vmir:{line}: {error.message}"


def test_type_errors_are_not_parse_errors() -> None:
    """What reads but is wrong is the verifier's to report, with its location."""
    module = parse(F.format("    v1 = iconst.i32 1\n    v2 = add v0, v1"), "t.vmir")
    (error,) = vm_ir.verify(module)
    assert error.line == 4 and "has type i32, expected i64" in error.message
