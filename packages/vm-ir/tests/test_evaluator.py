"""The evaluator's machinery: memory, state, helpers, traps, outcomes and limits.

What each op computes is in filetests/run/; here is how the evaluator is driven and how it
reports what is not the program's meaning.
"""

from __future__ import annotations

import pytest

import vm_ir
from vm_ir import (
    I64,
    EvaluationError,
    Exited,
    FieldRef,
    FlatMemory,
    GuestTrap,
    HelperContext,
    MemoryFault,
    Returned,
    State,
    StateLayout,
    Trapped,
    UndefinedBehavior,
    evaluate,
    parse,
)

# --- FlatMemory --------------------------------------------------------------------------


def test_flat_memory_is_zeroed_little_endian_and_sized() -> None:
    mem = FlatMemory(0x100)
    assert mem.load(0, 8) == 0
    mem.store(0x10, 4, 0x11223344)
    assert mem.data[0x10:0x14] == bytes([0x44, 0x33, 0x22, 0x11])
    assert mem.load(0x11, 2) == 0x2233
    mem.store(0x20, 2, -1)  # stores the low bytes of any int
    assert mem.load(0x20, 4) == 0xFFFF
    mem.store(0xF8, 8, 0x0102030405060708)  # the last bytes are in range
    assert mem.load(0xF8, 8) == 0x0102030405060708


@pytest.mark.parametrize(("addr", "size"), [(0x100, 1), (0xFF, 2), (0xF9, 8), (-1, 1),
                                            (1 << 64, 1)])
def test_flat_memory_faults_outside_itself(addr: int, size: int) -> None:
    mem = FlatMemory(0x100)
    with pytest.raises(MemoryFault) as info:
        mem.load(addr, size)
    assert (info.value.addr, info.value.size, info.value.access) == (addr, size, "read")
    with pytest.raises(MemoryFault) as info:
        mem.store(addr, size, 0)
    assert info.value.access == "write"
    assert bytes(mem.data) == bytes(0x100)  # a faulting store wrote nothing


def test_flat_memory_at_a_base_address() -> None:
    mem = FlatMemory(0x10, base=0x8000)
    mem.store(0x8008, 8, 7)
    assert mem.load(0x8008, 8) == 7
    with pytest.raises(MemoryFault):
        mem.load(0x7FFF, 1)
    with pytest.raises(MemoryFault):
        mem.load(0x8010, 1)


def test_memory_fault_message() -> None:
    assert str(MemoryFault(0x10, 4, "write")) == "guest write of 4 byte(s) at 0x10 faulted"


# --- State -------------------------------------------------------------------------------


def _layout() -> StateLayout:
    layout = StateLayout()
    layout.add("x", I64, 4)
    layout.add("flag", vm_ir.I8)
    return layout


def test_state_starts_at_zero_and_masks_to_the_field_type() -> None:
    state = State(_layout())
    assert state["flag"] == 0 and [state["x", i] for i in range(4)] == [0, 0, 0, 0]
    state["flag"] = 0x1FF
    assert state["flag"] == 0xFF
    state["x", 2] = -1
    assert state["x", 2] == 0xFFFFFFFFFFFFFFFF
    assert state[FieldRef("x", 2)] == state["x", 2]
    state[FieldRef("x", 3)] = 5
    assert state.values["x"] == [0, 0, 0xFFFFFFFFFFFFFFFF, 5]


def test_state_rejects_unknown_fields_and_works_without_a_layout() -> None:
    state = State(_layout())
    with pytest.raises(KeyError):
        state["sp"] = 1
    with pytest.raises(KeyError):
        state["sp"]
    assert State(None).values == {}


# --- outcomes ------------------------------------------------------------------------------

MODULE = """\
state {
    pc: i64
    counter: i64
}

helper @twice(i64) -> i64
helper @boom(i64)
helper @touch(i64) -> i8
helper @nothing() -> i64

func @add(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = add v0, v1
    ret v2
}

func @leave(i64) {
block0(v0: i64):
    set pc, v0
    exit v0
}

func @stop() {
block0:
    trap halt
}

func @load(i64) -> i64 {
block0(v0: i64):
    v1 = load.i64 v0 align 8
    ret v1
}

func @helpers(i64) -> i64, i8 {
block0(v0: i64):
    v1 = call @twice(v0)
    call @boom(v1)
    v2 = call @touch(v1)
    ret v1, v2
}

func @nothing() -> i64 {
block0:
    v0 = call @nothing()
    ret v0
}

func @forever() {
block0:
    br block0a
block0a:
    br block0a
}

func @div(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = sdiv v0, v1
    ret v2
}
"""


@pytest.fixture(scope="module")
def module() -> vm_ir.Module:
    return parse(MODULE, "eval.vmir")


def test_returned_exited_trapped(module) -> None:
    assert evaluate(module, "add", [2, 3]) == Returned((5,))
    state = State(module.state)
    assert evaluate(module, "leave", [0x1000], state=state) == Exited(0x1000)
    assert state["pc"] == 0x1000
    assert evaluate(module, "stop") == Trapped("halt")


def test_arguments_are_masked_and_a_function_object_works(module) -> None:
    assert evaluate(module, "add", [-1, 2]) == Returned((1,))
    assert evaluate(module, module.functions["add"], [1 << 64, 1]) == Returned((1,))


def test_memory_traps_carry_the_address(module) -> None:
    mem = FlatMemory(0x100)
    assert evaluate(module, "load", [0x104], memory=mem) == Trapped("misaligned")
    assert evaluate(module, "load", [0x104], memory=mem).addr == 0x104
    result = evaluate(module, "load", [0x100], memory=mem)
    assert result == Trapped("mem_fault") and result.addr == 0x100
    mem.store(0x18, 8, 42)
    assert evaluate(module, "load", [0x18], memory=mem) == Returned((42,))


def test_trapped_compares_kind_only() -> None:
    assert Trapped("mem_fault", 4) == Trapped("mem_fault", 8)
    assert Trapped("mem_fault") != Trapped("misaligned")
    assert Exited(1) != Exited(2) and Returned((1,)) != Returned((1, 2))


def test_helpers_see_state_memory_and_module(module) -> None:
    seen: list[object] = []

    def twice(ctx: HelperContext, v: int) -> int:
        seen.append((ctx.module is module, ctx.memory, ctx.state["counter"]))
        ctx.state["counter"] = ctx.state["counter"] + 1
        return v * 2

    def boom(ctx: HelperContext, v: int) -> None:
        if v > 100:
            raise GuestTrap("user", v)

    def touch(ctx: HelperContext, v: int) -> int:
        return ctx.memory.load(v, 1) + 0x100  # the result is masked to i8

    mem = FlatMemory(0x100)
    mem.store(0x10, 1, 7)
    state = State(module.state)
    state["counter"] = 3
    helpers = {"twice": twice, "boom": boom, "touch": touch}
    assert evaluate(module, "helpers", [8], state=state, memory=mem,
                    helpers=helpers) == Returned((16, 7))
    assert seen == [(True, mem, 3)] and state["counter"] == 4
    result = evaluate(module, "helpers", [60], memory=mem, helpers=helpers)
    assert result == Trapped("user") and result.addr == 120


def test_a_memory_fault_in_a_helper_is_a_mem_fault_trap(module) -> None:
    helpers = {"twice": lambda ctx, v: v, "boom": lambda ctx, v: None,
               "touch": lambda ctx, v: ctx.memory.load(v, 1)}
    result = evaluate(module, "helpers", [0x200], memory=FlatMemory(0x100), helpers=helpers)
    assert result == Trapped("mem_fault") and result.addr == 0x200


def test_what_is_not_the_programs_fault_is_an_evaluation_error(module) -> None:
    with pytest.raises(EvaluationError, match="helper @twice has no implementation"):
        evaluate(module, "helpers", [1])
    with pytest.raises(EvaluationError, match="helper @nothing returned None, not an int"):
        evaluate(module, "nothing", helpers={"nothing": lambda ctx: None})
    with pytest.raises(EvaluationError, match="load needs guest memory"):
        evaluate(module, "load", [0])
    with pytest.raises(EvaluationError, match="@add takes 2 argument"):
        evaluate(module, "add", [1])
    with pytest.raises(EvaluationError, match="no function @missing"):
        evaluate(module, "missing")


def test_the_step_limit(module) -> None:
    with pytest.raises(EvaluationError, match="ran more than 1000 steps"):
        evaluate(module, "forever", max_steps=1000)
    assert evaluate(module, "add", [1, 2], max_steps=2) == Returned((3,))
    with pytest.raises(EvaluationError):
        evaluate(module, "add", [1, 2], max_steps=1)


def test_undefined_behaviour_names_the_instruction(module) -> None:
    with pytest.raises(UndefinedBehavior) as info:
        evaluate(module, "div", [1, 0])
    line = MODULE.splitlines().index("    v2 = sdiv v0, v1") + 1
    assert str(info.value) == (f"eval.vmir:{line}: in @div, block0: `v2 = sdiv v0, v1`: "
                               "division by zero")
    with pytest.raises(UndefinedBehavior, match="overflow"):
        evaluate(module, "div", [1 << 63, -1])
    assert evaluate(module, "div", [-7, 2]) == Returned(((-3) & (2**64 - 1),))


def test_invalid_modules_are_refused_unless_check_is_off() -> None:
    bad = parse("func @f(i64) -> i64 {\nblock0(v0: i64):\n    v1 = iconst.i32 2\n"
                "    v2 = add v0, v1\n    ret v2\n}\n", "bad.vmir")
    with pytest.raises(EvaluationError) as info:
        evaluate(bad, "f", [1])
    assert str(info.value).startswith("invalid module:\nbad.vmir:4: in @f, block0")
    assert evaluate(bad, "f", [1], check=False) == Returned((3,))


def test_guest_trap_message() -> None:
    assert str(GuestTrap("user")) == "trap user"
    assert str(GuestTrap("mem_fault", 0x40)) == "trap mem_fault at 0x40"
