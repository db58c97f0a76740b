"""The builder makes the same functions the text form describes."""

import pytest

import vm_ir
from vm_ir import F64, I1, I32, I64, FunctionBuilder, MemFlags, Module, StateLayout


def test_builds_a_loop_that_prints_as_written_by_hand():
    m = Module()
    fb = FunctionBuilder(m, "sum_to", params=[I64], returns=[I64])
    (n,) = fb.params
    loop = fb.new_block(I64, I64)
    done = fb.new_block(I64)
    zero = fb.iconst(I64, 0)
    fb.br((loop, [zero, zero]))
    fb.switch_to(loop)
    i, acc = loop.params
    one = fb.iconst(I64, 1)
    i1 = fb.add(i, one)
    acc1 = fb.add(acc, i1)
    more = fb.icmp("ult", i1, n)
    fb.brif(more, (loop, [i1, acc1]), (done, [acc1]))
    fb.switch_to(done)
    fb.ret(done.params[0])
    assert vm_ir.print_module(m) == (
        "func @sum_to(i64) -> i64 {\n"
        "block0(v0: i64):\n"
        "    v4 = iconst.i64 0\n"
        "    br block1(v4, v4)\n"
        "block1(v1: i64, v2: i64):\n"
        "    v5 = iconst.i64 1\n"
        "    v6 = add v1, v5\n"
        "    v7 = add v2, v6\n"
        "    v8 = icmp ult v6, v0\n"
        "    brif v8, block1(v6, v7), block2(v7)\n"
        "block2(v3: i64):\n"
        "    ret v3\n"
        "}\n"
    )
    assert vm_ir.verify(m) == []
    assert vm_ir.evaluate(m, "sum_to", [10]) == vm_ir.Returned((55,))


def test_state_memory_and_helpers():
    m = Module(state=StateLayout())
    m.state.add("x", I64, 4)
    m.state.add("pc", I64)
    m.declare_helper("twice", [I64], I64, pure=True)
    fb = FunctionBuilder(m, "f")
    addr = fb.get("x[1]")
    val = fb.load(I32, addr, MemFlags(size=2, sext=True))
    wide = fb.sext(I64, val)
    doubled = fb.call("twice", wide)
    fb.set("x[2]", doubled)
    fb.store(doubled, addr, MemFlags(size=8))
    fb.fence("seq_cst")
    fb.exit(fb.get("pc"))
    assert vm_ir.verify(m) == []
    state = vm_ir.State(m.state)
    state["x", 1] = 0x10
    state["pc"] = 0x4000
    mem = vm_ir.FlatMemory(0x100)
    mem.store(0x10, 2, 0xFFFE)  # -2 as an i16
    result = vm_ir.evaluate(m, "f", state=state, memory=mem,
                            helpers={"twice": lambda ctx, v: v * 2})
    assert result == vm_ir.Exited(0x4000)
    assert state["x", 2] == (-4) & (2**64 - 1)
    assert mem.load(0x10, 8) == (-4) & (2**64 - 1)


def test_float_constant_from_bits_and_type_errors_reported_by_the_verifier():
    m = Module()
    fb = FunctionBuilder(m, "g", params=[I32], returns=[F64])
    (x,) = fb.params
    c = fb.fconst(F64, 0x3FF8000000000000)  # 1.5
    fb.add(x, fb.iconst(I1, 1))  # i32 + i1: a type error
    fb.ret(c)
    errors = vm_ir.verify(m)
    assert [e.message for e in errors] == ["arg 1 (v2) has type i1, expected i32"]
    assert str(errors[0]).startswith("in @g, block0, inst 2: `v3 = add v0, v2`")


def test_builder_refuses_appending_after_a_terminator_and_unknown_ops():
    fb = FunctionBuilder(Module(), "h")
    fb.trap("halt")
    with pytest.raises(vm_ir.BuildError):
        fb.trap("halt")
    with pytest.raises(AttributeError):
        fb.no_such_op  # noqa: B018
