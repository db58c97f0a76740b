"""Self-loop blocks (a block whose exit jumps back to its own start, compiled as one Python
loop with the guest registers in locals) against the same block run once per iteration by
the reference evaluator, on random loop bodies: state, memory and helper calls, loads and
stores that may fault, pc writes, a loop counter, and the instruction budget."""

from __future__ import annotations

import copy
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vm_engine_jit import HelperContext, state_class
from vm_engine_jit.interp.pygen import BlockOptions, bind_memory, compile_block
from vm_ir import (
    I8,
    I32,
    I64,
    Exited,
    FieldRef,
    FunctionBuilder,
    MemFlags,
    Module,
    State,
    evaluate,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interp_support as support

strategies = support.import_from(support.VM_IR_TESTS, "strategies")

pytestmark = pytest.mark.xdist_group("interp-loops")

HEAD = 0x4000
OTHER = 0x4100
MEMORY = 0x2000  # two pages; the second is read-only in some cases
_STATE_CLASS = state_class(strategies.STATE)


def loop_module(seed: int, *, allow_faults: bool = True) -> tuple[Module, int]:
    """A random single-block function ending in ``exit select(more, HEAD, OTHER)``, where
    ``more`` counts x[0] up to a small bound; gives it and its instruction count."""
    rng = random.Random(seed)
    module = Module(state=strategies.state_layout())
    for name, spec in strategies.HELPERS.items():
        module.declare_helper(name, list(spec.params), spec.result, spec.pure)
    fb = FunctionBuilder(module, "loop")
    vals = [fb.iconst(I64, rng.choice([0, 1, 7, 0xFFFFFFFFFFFFFFFF, 0x8000000000000000]))]

    def val():
        return rng.choice(vals)

    def address(size: int):
        base = fb.iconst(I64, rng.choice([0x100, 0x800, 0x1000 - size, 0x1800]))
        off = fb.and_(val(), fb.iconst(I64, rng.choice([0x7F8, 0xFF, 0x7])))
        if allow_faults and rng.random() < 0.1:
            off = fb.add(off, fb.iconst(I64, rng.choice([0x3000, 1 << 40])))
        return fb.add(base, off)

    for _ in range(rng.randint(1, 25)):
        kind = rng.choice(["get", "get", "set", "set", "arith", "arith", "arith", "cmp",
                           "load", "store", "pc", "call", "narrow"])
        if kind == "get":
            vals.append(fb.get(FieldRef("x", rng.randint(0, 3))))
        elif kind == "set":
            fb.set(FieldRef("x", rng.randint(1, 3)), val())
        elif kind == "narrow":
            w = fb.get(FieldRef("w"))
            vals.append(fb.sext(I64, w) if rng.random() < 0.5 else fb.zext(I64, w))
            fb.set(FieldRef("w"), fb.trunc(I32, val()))
        elif kind == "arith":
            op = rng.choice(["add", "sub", "mul", "xor", "or", "and", "shl", "lshr", "ashr",
                             "umulh", "smulh"])
            b = val() if rng.random() < 0.5 else fb.iconst(I64, rng.choice([1, 3, 13, 63, 64]))
            vals.append(getattr(fb, op if op not in ("and", "or") else op + "_")(val(), b))
        elif kind == "cmp":
            c = fb.icmp(rng.choice(["eq", "ne", "ult", "slt", "uge", "sge"]), val(), val())
            vals.append(fb.select(c, val(), val()) if rng.random() < 0.5 else fb.zext(I64, c))
        elif kind == "load":
            size, sext = rng.choice([(1, False), (1, True), (4, True), (4, False), (8, False)])
            v = fb.load(I64, address(size), MemFlags(size=size if size != 8 else None,
                                                     sext=sext))
            vals.append(v)
        elif kind == "store":
            size = rng.choice([1, 2, 4, 8])
            if size == 8:
                fb.store(val(), address(size))
            else:
                t = {1: I8, 2: strategies.I16, 4: I32}[size]
                fb.store(fb.trunc(t, val()), address(size))
        elif kind == "pc":
            fb.set(FieldRef("pc"), fb.iconst(I64, HEAD + 4 * rng.randint(0, 8)))
        else:
            name = rng.choice(["mix", "bump", "shuffle", "check", "peek"])
            if name == "mix":
                vals.append(fb.call("mix", val(), val()))
            elif name == "bump":
                vals.append(fb.call("bump", val()))
            elif name == "shuffle":
                fb.call("shuffle")
            elif name == "check" and allow_faults:
                fb.call("check", fb.trunc(I32, val()))
            elif name == "peek":
                vals.append(fb.call("peek", val()))
    count = fb.add(fb.get(FieldRef("x", 0)), fb.iconst(I64, 1))
    fb.set(FieldRef("x", 0), count)
    more = fb.icmp("ult", count, fb.iconst(I64, rng.randint(1, 40)))
    if rng.random() < 0.5:
        fb.exit(fb.select(more, fb.iconst(I64, HEAD), fb.iconst(I64, OTHER)))
    else:
        fb.exit(fb.select(fb.icmp("eq", more, fb.iconst(more.type, 0)),
                          fb.iconst(I64, OTHER), fb.iconst(I64, HEAD)))
    return module, rng.randint(1, 30)


def _initial(seed: int):
    rng = random.Random(seed ^ 0x5EED)
    values = {ref: rng.getrandbits(strategies.FIELD_TYPES[ref].bits) for ref in strategies.FIELD_REFS}
    values[FieldRef("x", 0)] = rng.randint(0, 5)
    values[FieldRef("pc")] = HEAD
    data = rng.randbytes(MEMORY)
    return values, data


def _memory(data: bytes, read_only_second_page: bool) -> support.PagedMemory:
    memory = support.PagedMemory(MEMORY)
    memory.data[:] = data
    if read_only_second_page:
        memory.protect(0x1000, 0x1000, support.R)
    return memory


def reference(module: Module, n: int, values, data, limit: int, ro: bool):
    """The engine's meaning of a loop block, one evaluator run per iteration."""
    state = State(module.state)
    for ref, v in values.items():
        state[ref] = v
    memory = _memory(data, ro)
    func = module.functions["loop"]
    outcome: tuple = ("exited", HEAD)
    done = 0
    for _ in range(limit):
        state["pc"] = HEAD
        result = evaluate(module, func, state=state, memory=memory,
                          helpers=strategies.HELPER_IMPLS, check=False)
        if isinstance(result, Exited):
            state["pc"] = result.pc
            done += 1
            outcome = ("exited", result.pc)
            if result.pc != HEAD:
                break
        else:
            outcome = ("trapped", result.kind, result.addr)
            break
    return outcome, done * n, state.values, bytes(memory.data)


def compiled(module: Module, n: int, values, data, left: int, ro: bool):
    state = _STATE_CLASS()
    for ref, v in values.items():
        state[ref] = v
    memory = _memory(data, ro)
    options = BlockOptions(start_pc=HEAD, pc_field="pc", memory=bind_memory(memory),
                           loop_insns=n, epoch=[0])
    fn, source = compile_block(module.functions["loop"], module, strategies.HELPER_IMPLS,
                               options=options)
    assert fn.is_loop, source
    ctx = HelperContext(state, memory)
    ctx.left = left
    outcome = support.call_compiled(fn, [], state, memory, ctx)
    if outcome[0] == "exited":
        state.pc = outcome[1]
    return outcome, ctx.ran, state.as_dict(), bytes(memory.data), source


@strategies.examples(300)
@given(st.integers(0, 2 ** 32), st.integers(0, 2 ** 32), st.integers(1, 400), st.booleans())
def test_loop_blocks_match_the_evaluator(seed: int, init: int, left: int, ro: bool) -> None:
    module, n = loop_module(seed)
    values, data = _initial(init)
    limit = left // n + 1  # what the engine's budget allows
    want = reference(module, n, values, data, limit, ro)
    got = compiled(module, n, values, data, left, ro)
    where = f"\n{module}\n--- generated Python ---\n{got[4]}"
    assert got[0] == want[0], f"outcome differs{where}"
    assert got[2] == copy.deepcopy(want[2]), f"state differs{where}"
    assert got[3] == want[3], f"memory differs{where}"
    assert got[1] == want[1], f"instruction count differs{where}"


def test_a_loop_leaves_when_the_engine_drops_translations() -> None:
    """A store that lands on a page with translated code bumps the engine's epoch (through
    the memory's on_code_write); the loop finishes its iteration and returns to its head."""
    module = Module(state=strategies.state_layout())
    fb = FunctionBuilder(module, "loop")
    x1 = fb.get(FieldRef("x", 1))
    fb.store(x1, fb.iconst(I64, 0x1008))
    fb.set(FieldRef("x", 1), fb.add(x1, fb.iconst(I64, 1)))
    fb.exit(fb.iconst(I64, HEAD))
    memory = support.PagedMemory(MEMORY)
    memory.mark_code(0x1000, 4)
    epoch = [0]
    memory.on_code_write = lambda addr, length: epoch.__setitem__(0, epoch[0] + 1)
    options = BlockOptions(start_pc=HEAD, pc_field="pc", memory=bind_memory(memory),
                           loop_insns=3, epoch=epoch)
    fn, source = compile_block(module.functions["loop"], module, {}, options=options)
    state = _STATE_CLASS()
    ctx = HelperContext(state, memory)
    ctx.left = 3000
    assert fn(state, memory, ctx) == HEAD
    assert ctx.ran == 3 and state.x[1] == 1 and epoch[0] == 1, source
    ctx.left = 3000  # the page has no CODE bit now: the loop runs out its budget
    assert fn(state, memory, ctx) == HEAD
    assert ctx.ran == 3003 and state.x[1] == 1002
    assert int.from_bytes(memory.data[0x1008:0x1010], "little") == 1001
