"""The JIT's native interface: the state struct, guest memory with page permissions (a bad
access is a guest fault, never a host crash), helpers called back into Python, control flow
that LLVM needs spelled differently, and the compiler itself."""

from __future__ import annotations

import ctypes

import pytest

from vm_engine_jit.jit import (
    STATUS_EXITED,
    JitCompiler,
    JitContext,
    NativeMemory,
    StateStruct,
    run,
)
from vm_engine_jit.jit.abi import CTX, PAGE_SIZE, PERM_READ, PERM_RW
from vm_ir import (
    F32,
    F64,
    I1,
    I8,
    I16,
    I64,
    I128,
    V128,
    EvaluationError,
    Exited,
    FieldRef,
    FlatMemory,
    GuestTrap,
    MemoryFault,
    Returned,
    State,
    StateLayout,
    Trapped,
    evaluate,
    parse,
)

_COMPILER = JitCompiler()


def compile_text(text: str) -> dict:
    return _COMPILER.compile_module(parse(text))


# --- the state struct ------------------------------------------------------------------------


def test_state_struct_layout_is_natural_alignment_in_declaration_order() -> None:
    layout = StateLayout()
    layout.add("flag", I1)
    layout.add("x", I64, 3)
    layout.add("h", I16)
    layout.add("q", I128)
    layout.add("s", F32)
    layout.add("vec", V128)
    layout.add("b", I8)
    ss = StateStruct(layout)
    assert {name: slot.offset for name, slot in ss.fields.items()} == {
        "flag": 0, "x": 8, "h": 32, "q": 48, "s": 64, "vec": 80, "b": 96}
    assert ss.size == 112
    assert ss.offset(FieldRef("x", 2)) == 24 and ss.offset(("x", 1)) == 16
    buf = ss.new()
    ss.write(buf, ("x", 2), -1)
    ss.write(buf, "q", (1 << 128) - 2)
    assert buf.x[2] == (1 << 64) - 1  # the ctypes Structure sees the same bytes
    assert ss.read(buf, "q") == (1 << 128) - 2
    state = State(layout)
    state["flag"] = 1
    state["x", 1] = 7
    state["s"] = 0x7FC00001
    ss.load(buf, state)
    again = State(layout)
    ss.store(buf, again)
    assert again.values == state.values


def test_state_fields_of_every_type_round_trip_through_code() -> None:
    fns = compile_text("""
state {
    a: i1
    b: i8
    c: i16
    d: i32[2]
    e: i64
    f: i128
    g: f32
    h: f64
    v: v128
}
func @rotate() {
block0:
    v0 = get a
    v1 = get b
    v2 = get c
    v3 = get d[1]
    v4 = get e
    v5 = get f
    v6 = get g
    v7 = get h
    v8 = get v
    v9 = not v0
    set a, v9
    v10 = zext.i16 v1
    set c, v10
    set d[0], v3
    v11 = zext.i128 v4
    set f, v11
    v12 = bitcast.f64 v4
    set h, v12
    v13 = bitcast.v128 v5
    set v, v13
    v14 = bitcast.i32 v6
    set d[1], v14
    ret
}
""")
    state = State(fns["rotate"].module.state)
    for name, value in [("a", 0), ("b", 0xAB), ("c", 0x1234), (("d", 1), 0xDEADBEEF),
                        ("e", 0x7FF0000000000001), ("f", (1 << 127) | 5), ("g", 0x7F800001),
                        ("h", 0), ("v", 3)]:
        state[name] = value  # type: ignore[index]
    want = State(state.layout)
    want.values = {k: list(v) if isinstance(v, list) else v for k, v in state.values.items()}
    evaluate(fns["rotate"].module, "rotate", state=want)
    assert run(fns["rotate"], state=state) == Returned(())
    assert state.values == want.values
    assert state["h"] == 0x7FF0000000000001  # a NaN payload survives get/bitcast/set


# --- memory ----------------------------------------------------------------------------------

MEMORY_OPS = """
func @ld(i64) -> i64 {
block0(v0: i64):
    v1 = load.i64 v0
    ret v1
}
func @st(i64, i64) {
block0(v0: i64, v1: i64):
    store v1, v0
    ret
}
func @rmw(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = atomic_rmw.i64 add v0, v1 seq_cst
    ret v2
}
func @cas(i64, i32, i32) -> i32 {
block0(v0: i64, v1: i32, v2: i32):
    v3 = cmpxchg.i32 v0, v1, v2 acq_rel
    ret v3
}
func @ld32(i32) -> i16 {
block0(v0: i32):
    v1 = load.i16 v0
    ret v1
}
"""


def test_page_permissions_refuse_accesses_without_touching_memory() -> None:
    fns = compile_text(MEMORY_OPS)
    mem = NativeMemory.aligned(4 * PAGE_SIZE, base=0x10000)
    mem.store(0x11008, 8, 0x1122334455667788)
    mem.protect(0x11000, PAGE_SIZE, PERM_READ)  # page 1 read-only
    mem.protect(0x12000, PAGE_SIZE, 0)  # page 2 no access
    assert run(fns["ld"], [0x11008], memory=mem) == Returned((0x1122334455667788,))
    assert run(fns["st"], [0x11008, 5], memory=mem) == Trapped("mem_fault", 0x11008)
    assert run(fns["rmw"], [0x11008, 5], memory=mem) == Trapped("mem_fault", 0x11008)
    assert run(fns["ld"], [0x12000], memory=mem) == Trapped("mem_fault", 0x12000)
    # straddling: the last byte's page decides too, and the fault is at the first byte
    assert run(fns["st"], [0x10FFC, -1], memory=mem) == Trapped("mem_fault", 0x10FFC)
    assert run(fns["ld"], [0x11FFC], memory=mem) == Trapped("mem_fault", 0x11FFC)
    assert mem.load(0x10FF8, 8) == 0 and mem.load(0x11000, 4) == 0
    assert mem.load(0x11008, 8) == 0x1122334455667788
    # outside the memory on both sides, wrapped addresses included
    for addr in (0x0, 0xFFFF, 0x14000, 0x13FF9, (1 << 64) - 8):
        assert run(fns["ld"], [addr], memory=mem) == Trapped("mem_fault", addr)
    assert run(fns["ld"], [0x13FF8], memory=mem) == Returned((0,))
    assert run(fns["st"], [0x13FF8, 9], memory=mem) == Returned(())
    assert run(fns["rmw"], [0x13FF8, 1], memory=mem) == Returned((9,))
    assert run(fns["cas"], [0x13FF8, 10, 3], memory=mem) == Returned((10,))
    assert mem.load(0x13FF8, 8) == 3
    assert run(fns["cas"], [0x13FFA, 10, 3], memory=mem) == Trapped("misaligned", 0x13FFA)
    with pytest.raises(MemoryFault):  # helpers see the same permissions
        mem.load(0x12000, 1)
    with pytest.raises(MemoryFault):
        mem.store(0x11000, 1, 0)


def test_i32_addresses_are_unsigned() -> None:
    fns = compile_text(MEMORY_OPS)
    mem = NativeMemory.aligned(PAGE_SIZE, base=0xFFFFF000)
    mem.store(0xFFFFFFFE, 2, 0xBEEF)
    assert run(fns["ld32"], [0xFFFFFFFE], memory=mem) == Returned((0xBEEF,))
    assert run(fns["ld32"], [0xFFFFFFFF], memory=mem) == Trapped("mem_fault", 0xFFFFFFFF)
    assert run(fns["ld32"], [0x0], memory=mem) == Trapped("mem_fault", 0)


def test_flat_memory_used_in_place_or_copied() -> None:
    fns = compile_text(MEMORY_OPS)
    for base in (0, 8, 0x1001):  # some bases cannot be used in place: then copy in and back
        flat = FlatMemory(0x100, base=base)
        assert run(fns["st"], [base + 0x10, 0x55], memory=flat) == Returned(())
        assert flat.load(base + 0x10, 8) == 0x55
        assert run(fns["ld"], [base + 0xF9], memory=flat) == Trapped("mem_fault", base + 0xF9)


def test_without_memory_every_access_faults() -> None:
    fns = compile_text(MEMORY_OPS)
    assert run(fns["ld"], [0]) == Trapped("mem_fault", 0)


def test_a_wild_guest_address_is_a_guest_fault_not_a_host_crash() -> None:
    fns = compile_text(MEMORY_OPS)
    flat = FlatMemory(0x1000)
    for addr in (1 << 63, (1 << 64) - 1, 0x7FFF_FFFF_FFFF, 0x1000, 0xFFF9):
        assert run(fns["st"], [addr, 1], memory=flat) == Trapped("mem_fault", addr)
    assert not any(flat.data)


# --- helpers ---------------------------------------------------------------------------------

HELPERS = """
state {
    pc: i64
}
helper @h(i64, f64, i1, i128) -> i128
helper @boom(i64)
helper @nothing() -> i64
func @f(i64, f64, i1, i128) -> i128 {
block0(v0: i64, v1: f64, v2: i1, v3: i128):
    v4 = call @h(v0, v1, v2, v3)
    ret v4
}
func @g(i64) -> i64 {
block0(v0: i64):
    set pc, v0
    call @boom(v0)
    v1 = iconst.i64 0
    set pc, v1
    ret v1
}
func @n() -> i64 {
block0:
    v0 = call @nothing()
    ret v0
}
"""


def test_helpers_get_their_arguments_and_give_results() -> None:
    fns = compile_text(HELPERS)
    seen = []

    def h(ctx, a, b, c, d):
        seen.append((a, b, c, d, ctx.state["pc"]))
        ctx.state["pc"] = 0x99
        return -1

    state = State(fns["f"].module.state)
    state["pc"] = 0x40
    result = run(fns["f"], [5, 0x7FF4000000000000, 1, 1 << 100], state=state,
                 helpers={"h": h})
    assert result == Returned(((1 << 128) - 1,))
    assert seen == [(5, 0x7FF4000000000000, 1, 1 << 100, 0x40)]
    assert state["pc"] == 0x99


def test_helper_traps_and_errors() -> None:
    fns = compile_text(HELPERS)
    state = State(fns["g"].module.state)

    def trap_at(ctx, a):
        raise GuestTrap("breakpoint", a + 1)

    assert run(fns["g"], [7], state=state, helpers={"boom": trap_at}) == Trapped("breakpoint", 8)
    assert state["pc"] == 7  # set before the call, not after

    def fault(ctx, a):
        ctx.memory.load(a, 8)

    result = run(fns["g"], [0x5000], state=state, memory=FlatMemory(0x100),
                 helpers={"boom": fault})
    assert result == Trapped("mem_fault") and result.addr == 0x5000

    def crash(ctx, a):
        raise ZeroDivisionError("in the helper")

    with pytest.raises(ZeroDivisionError, match="in the helper"):
        run(fns["g"], [1], state=state, helpers={"boom": crash})
    assert state["pc"] == 1
    with pytest.raises(EvaluationError, match="no implementation"):
        run(fns["g"], [1], state=state, helpers={})
    with pytest.raises(EvaluationError, match="not an int"):
        run(fns["n"], [], helpers={"nothing": lambda ctx: None})


# --- control flow ----------------------------------------------------------------------------


def test_brif_to_one_block_with_different_arguments() -> None:
    fns = compile_text("""
func @f(i1, i64, i64) -> i64 {
block0(v0: i1, v1: i64, v2: i64):
    brif v0, block1(v1), block1(v2)
block1(v3: i64):
    ret v3
}
""")
    assert run(fns["f"], [1, 10, 20]) == Returned((10,))
    assert run(fns["f"], [0, 10, 20]) == Returned((20,))


def test_unreachable_blocks_are_not_lowered() -> None:
    # block2 is unreachable and uses a value that does not dominate it: valid vm-ir
    fns = compile_text("""
func @f(i64) -> i64 {
block0(v0: i64):
    br block1
block2:
    v5 = add v4, v4
    br block1
block1:
    v4 = iconst.i64 3
    ret v4
}
""")
    assert run(fns["f"], [1]) == Returned((3,))


SWAP = """
func @f(i64, i64) -> i64, i64 {
block0(v0: i64, v1: i64):
    v2 = iconst.i64 0
    br block1(v0, v1, v2)
block1(v3: i64, v4: i64, v5: i64):
    v6 = iconst.i64 1
    v7 = add v5, v6
    v8 = iconst.i64 BOUND
    v9 = icmp ult v7, v8
    brif v9, block1(v4, v3, v7), block2
block2:
    ret v3, v4
}
"""


def test_block_parameters_swap_all_at_once() -> None:
    for bound, want in ((2, (2, 1)), (3, (1, 2))):  # one swap, two swaps
        module = parse(SWAP.replace("BOUND", str(bound)))
        f = _COMPILER.compile_module(module)["f"]
        assert run(f, [1, 2]) == evaluate(module, "f", [1, 2]) == Returned(want)


def test_exit_and_trap_outcomes() -> None:
    fns = compile_text("""
func @e(i64) {
block0(v0: i64):
    exit v0
}
func @t() {
block0:
    trap halt
}
""")
    assert run(fns["e"], [(1 << 64) - 4]) == Exited((1 << 64) - 4)
    result = run(fns["t"])
    assert result == Trapped("halt") and result.addr is None
    ctx = JitContext()
    ctx.args = ctypes.addressof(slots := (ctypes.c_uint64 * 2)(0x1234, 0))
    assert fns["e"](ctx) == STATUS_EXITED and ctx.exit_pc == 0x1234
    del slots


# --- the compiler ----------------------------------------------------------------------------


def test_a_batch_is_one_llvm_module_and_stats_are_kept() -> None:
    compiler = JitCompiler()
    module = parse("\n".join(f"""
func @f{i}(i64) -> i64 {{
block0(v0: i64):
    v1 = iconst.i64 {i}
    v2 = mul v0, v1
    ret v2
}}""" for i in range(20)))
    fns = compiler.compile_module(module)
    assert [run(fns[f"f{i}"], [3]) for i in (0, 7, 19)] == [Returned((0,)), Returned((21,)),
                                                             Returned((57,))]
    stats = compiler.stats
    assert stats.batches == 1 and stats.functions == 20
    assert stats.per_function_ms > 0 and stats.total_s == pytest.approx(
        stats.lower_s + stats.parse_s + stats.optimize_s + stats.codegen_s)
    text = compiler.llvm_ir([(module, "f7")])
    assert "mul i64" in text or "shl" in text


def test_compilers_are_independent_and_code_outlives_its_module_batches() -> None:
    text = "func @f(i64) -> i64 {\nblock0(v0: i64):\n    v1 = neg v0\n    ret v1\n}\n"
    a, b = JitCompiler(), JitCompiler(opt_level=0)
    fa = a.compile([(parse(text), "f")])[0]
    fb = b.compile([(parse(text), "f")])[0]
    a.compile([(parse(text), "f")])  # more batches into the same engine
    del a, b
    assert run(fa, [1]) == run(fb, [1]) == Returned(((1 << 64) - 1,))


def test_the_context_block_layout_is_documented() -> None:
    assert CTX == {"state": 0, "mem_host": 8, "mem_guest": 16, "mem_size": 24, "perms": 32,
                   "args": 40, "rets": 48, "helpers": 56, "exit_pc": 64, "trap_addr": 72,
                   "trap_flags": 80, "user": 88, "link": 96, "stop": 104}
    assert PERM_RW == 3


def test_floats_keep_nan_payloads_through_moves() -> None:
    fns = compile_text("""
func @f(f32, f64, i1) -> f32, f64 {
block0(v0: f32, v1: f64, v2: i1):
    v3 = fneg v0
    v4 = fabs v1
    v5 = copy v3
    brif v2, block1(v5, v4), block1(v0, v1)
block1(v6: f32, v7: f64):
    ret v6, v7
}
""")
    assert run(fns["f"], [0x7F800001, 0xFFF0000000000001, 1]) == Returned(
        (0xFF800001, 0x7FF0000000000001))
    assert F32.bits == 32 and F64.bits == 64


def test_block_names_cannot_clash_with_internal_names() -> None:
    fns = compile_text("""
func @f(i64) -> i64 {
block0(v0: i64):
    br prologue(v0)
prologue(v1: i64):
    v2 = load.i64 v1
    br access(v2)
access(v3: i64):
    br mem_trap(v3)
mem_trap(v4: i64):
    br t1(v4)
t1(v5: i64):
    ret v5
}
""")
    memory = FlatMemory(0x100)
    memory.store(0x10, 8, 42)
    assert run(fns["f"], [0x10], memory=memory) == Returned((42,))
    assert run(fns["f"], [0x100], memory=memory) == Trapped("mem_fault", 0x100)
