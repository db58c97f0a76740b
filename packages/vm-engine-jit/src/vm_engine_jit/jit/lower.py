"""vm-ir to LLVM IR: each vm-ir function becomes ``i64 @sym(ptr %ctx)`` following ``abi``.

``BatchLowering`` collects the functions of one compile batch into one LLVM module (text,
written with ``emit``); ``BatchLowering.add`` lowers a function. Every op of ``vm_ir.OPS`` has a
lowering here (``_LOWERINGS``; importing this module fails for an op without one), with the
semantics of ``vm_ir.semantics`` and ``vm_ir.evaluator``:

- shift amounts are masked to the width; rotates are ``llvm.fshl``/``fshr``; ``umulh``/``smulh``
  multiply at double width; ``clz``/``ctz`` of 0 give the width (``is_zero_poison`` false);
- divisions never reach the host's divide instruction with a divisor of 0 or ``MIN / -1``:
  the IR leaves those undefined, and here they divide by 1 instead (no SIGFPE, ever);
- ``fptosi``/``fptoui`` saturate (``llvm.fpto[su]i.sat``; i128 through ``support``), NaN gives 0;
- a NaN produced by ``fadd`` ... ``fma``, ``fmin``/``fmax``, ``fpext``/``fptrunc`` is replaced by
  the canonical quiet NaN, so results match the evaluator bit for bit (the IR leaves which NaN
  unspecified; the cost is a compare and a select per op); ``fneg``/``fabs`` only touch the sign;
- ``fmin``/``fmax`` are IEEE 754-2019 minimumNumber/maximumNumber written out (NaN tests, an
  ordered compare, and for equal operands the OR / AND of their bits, which orders -0 below +0);
- a memory op computes whether the access is allowed (alignment, bounds, the permission bytes
  of its first and last page) without touching guest memory, then takes one branch: on to the
  access, or to the function's one fault block, which reports ``misaligned``, ``mem_fault``
  or (a write to a ``PERM_CODE`` page) ``STATUS_CODE_WRITE`` with the guest address; atomics are LLVM ``atomicrmw``/``cmpxchg``; atomic loads and stores
  are LLVM atomics when naturally aligned and at most 8 bytes, else plain accesses fenced
  ``seq_cst`` (x86-64 has no wider atomic load or store);
- ``call`` goes through the context's helper table with the arguments in 16-byte slots, unless
  the helper names a native operation ``nativefp`` implements;
- guest state fields are cached in ``alloca``s (see ``_FunctionLowering``), and a ``Region``
  lowers several lifted blocks as one function.

128-bit division and i128/float conversions call the routines of ``support`` instead of the
compiler-rt functions LLVM would call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vm_ir import OPS, Block, FieldRef, Function, HelperDecl, Inst, MemFlags, Module, Type, Value
from vm_ir.ops import TRAP_KINDS
from vm_ir.values import CANONICAL_NAN

from . import nativefp, support
from .abi import (
    CTX,
    PAGE_SHIFT,
    PERM_CODE,
    PERM_READ,
    PERM_RW,
    PERM_WRITE,
    SLOT_BYTES,
    STATUS_CODE_WRITE,
    STATUS_EXITED,
    STATUS_RETURNED,
    TRAP_STATUS,
    StateStruct,
)
from .emit import (
    INT_OF,
    WIDTH,
    BlockText,
    Builder,
    FunctionText,
    ModuleText,
    Phi,
    Val,
    const,
    float_const,
)


class LoweringError(Exception):
    """A function cannot be lowered (an op or type this lowering does not know)."""


_ORDERS = {"relaxed": "monotonic", "acquire": "acquire", "release": "release",
           "acq_rel": "acq_rel", "seq_cst": "seq_cst"}
#: a cmpxchg's failure ordering may not release
_FAIL_ORDERS = {"relaxed": "monotonic", "acquire": "acquire", "release": "monotonic",
                "acq_rel": "acquire", "seq_cst": "seq_cst"}
_RMW_OPS = {"xchg": "xchg", "add": "add", "sub": "sub", "and": "and", "or": "or", "xor": "xor",
            "umin": "umin", "umax": "umax", "smin": "min", "smax": "max"}
_INFINITY = {32: 0x7F800000, 64: 0x7FF0000000000000}


def llvm_type(t: Type) -> str:
    """The LLVM type of a vm-ir value type (``v128`` is carried as ``i128``)."""
    if t.is_float:
        return "float" if t.bits == 32 else "double"
    return f"i{t.bits}"


def memory_type(t: Type) -> str:
    """The LLVM type a value of ``t`` is stored as (``i1`` as a byte)."""
    return "i8" if t.bits == 1 else llvm_type(t)


def reachable_blocks(func: Function) -> list[Block]:
    """The blocks reachable from the entry, in reverse post-order (each block after the blocks
    that dominate it)."""
    seen = {id(func.entry)}
    order: list[Block] = []
    stack: list[tuple[Block, int]] = [(func.entry, 0)]
    while stack:
        block, i = stack.pop()
        succs = block.successors()
        if i < len(succs):
            stack.append((block, i + 1))
            nxt = succs[i]
            if id(nxt) not in seen:
                seen.add(id(nxt))
                stack.append((nxt, 0))
        else:
            order.append(block)
    order.reverse()
    return order


@dataclass(frozen=True, slots=True)
class RegionMember:
    """A lifted block in a region: its function (no parameters, ends in ``exit``s), the guest
    pc it starts at and how many guest instructions it counts for."""

    module: Module
    func: Function
    pc: int
    insns: int


@dataclass(frozen=True, slots=True)
class Region:
    """Lifted blocks compiled as one function, entered at the first.

    An ``exit`` to the pc of a member is a branch to it (a constant pc directly, a computed one
    through a ``switch`` LLVM folds for a ``select`` of two constants), so loops inside the
    region stay in one function with the guest registers in SSA values. Every member counts
    its ``insns`` off the budget in the context's ``user`` field on entry; an edge inside the
    region with the budget spent exits to that member's pc instead. The members' modules
    must declare the same helpers in the same order (one helper table serves them all).
    """

    members: tuple[RegionMember, ...]

    @property
    def pcs(self) -> list[int]:
        return [m.pc for m in self.members]

    @property
    def loops(self) -> bool:
        """Whether its function may branch back to a member: it has several, or its one
        block exits to its own start with a constant pc (a computed exit back to it is
        rare, and leaves through the dispatcher just as well)."""
        if len(self.members) > 1:
            return True
        member = self.members[0]
        constants: dict[object, object] = {}
        for block in member.func.blocks:
            for inst in block.insts:
                name = inst.op.name
                if name == "iconst":
                    constants[inst.result] = inst.imms["imm"]
                elif name == "exit" and constants.get(inst.args[0]) == member.pc:
                    return True
        return False


class BatchLowering:
    """One LLVM module (as text) holding the lowered functions of a compile batch.

    ``atomic128``: lower 16-byte ``atomic_rmw``/``cmpxchg`` to LLVM atomics (the host has
    ``cmpxchg16b``); without it they are plain read-modify-writes between ``seq_cst`` fences.
    """

    def __init__(self, name: str = "vmjit", triple: str = "", data_layout: str = "",
                 atomic128: bool = True, native_helpers: bool = True, chain: bool = True
                 ) -> None:
        self.module = ModuleText(name, triple, data_layout)
        self.atomic128 = atomic128
        self.native_helpers = native_helpers
        #: regions' exits get link cells (``_FunctionLowering._finish_out``)
        self.chain = chain
        self.symbols: list[str] = []

    def add(self, module: Module, func: Function, symbol: str,
            state: StateStruct | None = None) -> None:
        """Lower ``func`` of ``module`` as the function ``symbol``."""
        if state is None:
            state = StateStruct(module.state)
        fn = FunctionText(symbol, "i64", ["ptr noalias %ctx"])
        _FunctionLowering(self, module, func, fn, state).run()
        self.module.functions.append(fn.render())
        self.symbols.append(symbol)

    def add_region(self, region: Region, symbol: str, state: StateStruct | None = None) -> None:
        """Lower the lifted blocks of ``region`` as one function ``symbol`` (see ``Region``)."""
        first = region.members[0]
        if state is None:
            state = StateStruct(first.module.state)
        fn = FunctionText(symbol, "i64", ["ptr noalias %ctx"])
        _FunctionLowering(self, first.module, first.func, fn, state, region).run()
        self.module.functions.append(fn.render())
        self.symbols.append(symbol)

    def __str__(self) -> str:
        return self.module.render()


class _FunctionLowering:
    """One LLVM function: a vm-ir function, or the members of a ``Region``.

    Guest state fields the code reads or writes live in ``alloca``s while it runs (LLVM turns
    them into SSA values): each is loaded from the state struct once in the prologue, and the
    fields written anywhere in the function are written back at every ``ret`` and before each
    helper call (which may read them), and all are read again after one (which may write
    them). Where those writes go is only known when the whole function is lowered, so ``ret``
    sites and calls leave a marker (``_sync``) that ``_expand_syncs`` fills in at the end.
    """

    def __init__(self, batch: BatchLowering, module: Module, func: Function, fn: FunctionText,
                 state: StateStruct, region: Region | None = None) -> None:
        self.batch = batch
        self.module = module
        self.func = func
        self.fn = fn
        self.state = state
        self.region = region
        #: pc -> the block an edge inside the region goes to (checks the budget first)
        self._member_edge: dict[int, BlockText] = {}
        #: state location -> (alloca, memory type, offset; None: the budget in ctx.user)
        self._cache: dict[object, tuple[Val, str, int | None]] = {}
        self._written: set[object] = set()
        #: (block, line index, kind): "flush" before a ret, "flush_regs" too, "reload"
        self._syncs: list[tuple[BlockText, int, str]] = []
        self._out: tuple[BlockText, Phi, Phi, Phi] | None = None
        #: how many link cells its exits have (regions only)
        self.links = 0
        #: a select of two constant pcs, by its LLVM name: (condition, if true, if false)
        self._choices: dict[str, tuple[Val, int, int]] = {}
        self.helper_index = {name: i for i, name in enumerate(module.helpers)}
        self.values: dict[Value, Val] = {}
        self.blocks: dict[int, BlockText] = {}
        self.phis: dict[int, list[Phi]] = {}
        self.prologue = fn.block("prologue")
        self.b = Builder(fn, self.prologue, batch.module)
        self.ctx = Val("ptr", "%ctx")
        self._ctx_fields: dict[str, Val] = {}
        self._limits: dict[int, Val] = {}
        self._fault: tuple[BlockText, Phi, Phi, Phi] | None = None
        self._helper_failed: tuple[BlockText, Phi] | None = None
        self._slots: tuple[Val, Val] | None = None

    # -- structure ---------------------------------------------------------------------------
    def run(self) -> None:
        b = self.b
        if self.region is None:
            for i, (param, t) in enumerate(zip(self.func.entry.params, self.func.params,
                                               strict=True)):
                self.values[param] = self._load_slot(self._ctx_field("args"), i, t)
            entry = self._lower_body(self.func, "")
        else:
            entry = self._lower_region(self.region)
        b.at(self.prologue)  # its loads were added on demand; now it can end
        b.br(entry)
        self._finish_out()
        self._expand_syncs()

    def _lower_body(self, func: Function, prefix: str) -> BlockText:
        """Lower the blocks of ``func`` (labels prefixed); its entry block."""
        b = self.b
        order = reachable_blocks(func)
        for block in order:
            self.blocks[id(block)] = self.fn.block(prefix + block.name)
        for block in order[1:]:
            phis = [b.phi(llvm_type(p.type), self.blocks[id(block)]) for p in block.params]
            self.values.update(zip(block.params, phis, strict=True))
            self.phis[id(block)] = phis
        for block in order:
            b.at(self.blocks[id(block)])
            for inst in block.insts:
                result = _LOWERINGS[inst.op.name](self, inst)
                if inst.result is not None:
                    if result is None:  # pragma: no cover - a lowering bug
                        raise LoweringError(f"lowering of {inst.op.name} gave no value")
                    self.values[inst.result] = result
        return self.blocks[id(func.entry)]

    def _lower_region(self, region: Region) -> BlockText:
        b = self.b
        helpers = list(self.module.helpers)
        enters: list[BlockText] = []
        for k, member in enumerate(region.members):
            if member.func.params or list(member.module.helpers) != helpers:
                raise LoweringError(f"block {member.pc:#x} cannot join a region")
            enter = self.fn.block(f"b{k}")
            edge = self.fn.block(f"b{k}.edge")
            enters.append(enter)
            self._member_edge.setdefault(member.pc, edge)
            # an edge inside the region: on while budget is left, else exit to this pc
            b.at(edge)
            left = self._cached_load("budget")
            out = self.fn.block(f"b{k}.spent")
            b.cbr(b.op("and", b.icmp("sgt", left, const("i64", 0)), self._not_stopped()),
                  enter, out)
            b.at(out)
            self._leave(const("i64", STATUS_EXITED), const("i64", member.pc))
        for k, member in enumerate(region.members):
            self.module = member.module
            self.func = member.func
            body = self._lower_body(member.func, f"b{k}.")
            b.at(enters[k])
            left = self._cached_load("budget")
            self._cached_store("budget", b.op("sub", left, const("i64", member.insns)))
            if "pc" in self.state.fields:
                self._cached_store(FieldRef("pc"), const("i64", member.pc))
            b.br(body)
        return enters[0]

    # -- the state cache -----------------------------------------------------------------------
    def _location(self, key: object) -> tuple[Val, str, int | None]:
        entry = self._cache.get(key)
        if entry is None:
            if key == "budget":
                ty, offset = "i64", None
            else:
                assert isinstance(key, FieldRef)
                ty = memory_type(self.state.fields[key.name].type)
                offset = self.state.offset(key)
            slot = self._in_prologue(lambda b: b.alloca(ty, 16))

            def init(b: Builder) -> Val:
                b.store(self._read_home(b, ty, key, offset), slot, 16)
                return slot

            self._in_prologue(init)
            entry = (slot, ty, offset)
            self._cache[key] = entry
        return entry

    def _read_home(self, b: Builder, ty: str, key: object, offset: int | None) -> Val:
        if offset is None:
            return b.load(ty, b.gep(self.ctx, CTX["user"]), align=8)
        align = min(self.state.fields[key.name].elem_bytes, 8)  # type: ignore[attr-defined]
        return b.load(ty, b.gep(self._ctx_field("state"), offset), align)

    def _write_home(self, b: Builder, value: Val, key: object, offset: int | None) -> None:
        if offset is None:
            b.store(value, b.gep(self.ctx, CTX["user"]), align=8)
            return
        align = min(self.state.fields[key.name].elem_bytes, 8)  # type: ignore[attr-defined]
        b.store(value, b.gep(self._ctx_field("state"), offset), align)

    def _cached_load(self, key: object) -> Val:
        slot, ty, _ = self._location(key)
        return self.b.load(ty, slot, 16)

    def _cached_store(self, key: object, value: Val) -> None:
        slot, _, _ = self._location(key)
        self._written.add(key)
        self.b.store(value, slot, 16)

    def _sync(self, kind: str) -> None:
        """Mark where cached state is written back (``flush``: the budget and the written
        fields; ``budget``: the budget only) or read again (``reload``)."""
        self._syncs.append((self.b.block, len(self.b.block.lines), kind))

    def _ret(self, status: Val, kind: str = "flush") -> None:
        self._sync(kind)
        self.b.ret(status)

    def _leave(self, status: Val, exit_pc: Val | None = None, cell: Val | None = None) -> None:
        """Return ``status`` (with ``exit_pc``) through the function's one block that writes
        the cached state back (``_finish_out`` ends it); ``cell``: the link cell of a
        constant exit, through which that block may go straight on to the next one."""
        b = self.b
        if self._out is None:
            here = b.block
            block = self.fn.block("out")
            b.at(block)
            status_phi, pc_phi, cell_phi = b.phi("i64"), b.phi("i64"), b.phi("ptr")
            self._ctx_store("exit_pc", pc_phi)
            self._sync("flush")
            b.at(here)
            self._out = (block, status_phi, pc_phi, cell_phi)
        block, status_phi, pc_phi, cell_phi = self._out
        status_phi.add(status, b.block)
        pc_phi.add(exit_pc if exit_pc is not None else const("i64", 0), b.block)
        cell_phi.add(cell if cell is not None else Val("ptr", "null"), b.block)
        b.br(block)

    def _link(self) -> Val:
        """A new link cell for an exit: a global pointer to the record (``abi.RECORD``) of
        the block that exit went to last, set by the dispatcher (null at first)."""
        name = f"{self.fn.name}.link{self.links}"
        self.links += 1
        # not internal: LLVM must not assume what the dispatcher will store in it
        self.batch.module.piece(name, f'@"{name}" = global ptr null, align 8')
        return Val("ptr", f'@"{name}"')

    def _finish_out(self) -> None:
        """End the ``out`` block: return its status; but an exit whose link cell points at
        the record of the block at its pc, with native code and budget left, jumps straight
        to that code (a tail call, after storing the pc and helper table the dispatcher
        would have): blocks chain. An exit that does not leaves its cell in ``ctx->link``
        for the dispatcher to point at what it finds next (``dispatch.py``)."""
        if self._out is None:
            return
        b = self.b
        block, status, pc, cell = self._out
        b.at(block)
        if not self.links:
            b.ret(status)
            return
        null, zero = Val("ptr", "null"), const("i64", 0)
        linked, check, chain, miss, done = (
            self.fn.block(n) for n in ("linked", "check", "chain", "miss", "done"))
        b.cbr(b.icmp("ne", cell, null), linked, done)
        b.at(linked)
        record = b.load("ptr", cell, 8)
        b.cbr(b.icmp("ne", record, null), check, miss)
        b.at(check)
        target = b.load("i64", b.gep(record, 8), 8)
        left = b.load("i64", b.gep(self.ctx, CTX["user"]), 8)
        go = b.op("and", b.icmp("eq", b.load("i64", record, 8), pc),
                  b.op("and", b.icmp("ne", target, zero), b.icmp("sgt", left, zero)))
        go = b.op("and", go, self._not_stopped())
        b.cbr(go, chain, miss)
        b.at(chain)
        self._ctx_store("helpers", b.load("i64", b.gep(record, 16), 8))
        if "pc" in self.state.fields:
            state = self._ctx_field("state")
            b.store(pc, b.gep(state, self.state.offset(FieldRef("pc"))), 8)
        callee = b.cast("inttoptr", target, "ptr")
        b.ret(b._emit("i64", f"musttail call i64 {callee.ref}(ptr {self.ctx.ref})"))
        b.at(miss)
        self._ctx_store("link", b.cast("ptrtoint", cell, "i64"))
        b.ret(status)
        b.at(done)
        b.ret(status)

    def _not_stopped(self) -> Val:
        """Whether ``ctx->stop`` is clear: read anew each time (volatile), so that a loop sees
        another thread's ``kick``."""
        stop = self.b.load("i64", self.b.gep(self.ctx, CTX["stop"]), 8, volatile=True)
        return self.b.icmp("eq", stop, const("i64", 0))

    def _expand_syncs(self) -> None:
        # the state pointer is loaded in the prologue; make sure it is there before rendering
        if any(k != "budget" for k in self._cache):
            self._ctx_field("state")
        by_block: dict[int, list[tuple[int, str]]] = {}
        blocks: dict[int, BlockText] = {}
        for block, index, kind in self._syncs:
            by_block.setdefault(id(block), []).append((index, kind))
            blocks[id(block)] = block
        for key, sites in by_block.items():
            block = blocks[key]
            for index, kind in sorted(sites, reverse=True):
                scratch = BlockText("scratch")
                b = Builder(self.fn, scratch, self.batch.module)
                for loc, (slot, ty, offset) in self._cache.items():
                    if kind == "reload":
                        if loc != "budget":
                            b.store(self._read_home(b, ty, loc, offset), slot, 16)
                    elif loc in self._written and (kind == "flush" or loc == "budget"):
                        self._write_home(b, b.load(ty, slot, 16), loc, offset)
                block.lines[index:index] = scratch.lines
    def _in_prologue(self, emit: Callable[[Builder], Val]) -> Val:
        here = self.b.block
        self.b.at(self.prologue)
        value = emit(self.b)
        self.b.at(here)
        return value

    def _ctx_field(self, field: str) -> Val:
        """A field of the context block, loaded once in the prologue (the first time asked)."""
        value = self._ctx_fields.get(field)
        if value is None:
            ty = "i64" if field in ("mem_guest", "mem_size") else "ptr"
            value = self._in_prologue(
                lambda b: b.load(ty, b.gep(self.ctx, CTX[field]), align=8))
            self._ctx_fields[field] = value
        return value

    def _ctx_store(self, field: str, value: Val) -> None:
        self.b.store(value, self.b.gep(self.ctx, CTX[field]), align=8)

    def _load_slot(self, base: Val, index: int, t: Type) -> Val:
        raw = self.b.load(memory_type(t), self.b.gep(base, SLOT_BYTES * index), align=16)
        return self.b.cast("trunc", raw, "i1") if t.bits == 1 else raw

    def _store_slot(self, base: Val, index: int, t: Type, value: Val) -> None:
        if t.bits == 1:
            value = self.b.cast("zext", value, "i8")
        self.b.store(value, self.b.gep(base, SLOT_BYTES * index), align=16)

    def arg(self, inst: Inst, i: int) -> Val:
        return self.values[inst.args[i]]

    def _continue_if(self, ok: Val, otherwise: BlockText, name: str) -> BlockText:
        """Branch to a new block when ``ok``, else to ``otherwise``; go on in the new block.
        The block branched from."""
        here = self.b.block
        cont = self.fn.block(name)
        self.b.cbr(ok, cont, otherwise)
        self.b.at(cont)
        return here

    # -- constants and moves ------------------------------------------------------------------
    def iconst(self, inst: Inst) -> Val:
        t = inst.result.type  # type: ignore[union-attr]
        return const(llvm_type(t), int(inst.imms["imm"]))  # type: ignore[call-overload]

    def fconst(self, inst: Inst) -> Val:
        t = inst.result.type  # type: ignore[union-attr]
        return float_const(llvm_type(t), int(inst.imms["imm"]))  # type: ignore[call-overload]

    def copy(self, inst: Inst) -> Val:
        return self.arg(inst, 0)

    def select(self, inst: Inst) -> Val:
        c, a, b = self.arg(inst, 0), self.arg(inst, 1), self.arg(inst, 2)
        value = self.b.select(c, a, b)
        if a.ref.isdigit() and b.ref.isdigit():  # a branch's exit pc: see ``exit``
            self._choices[value.ref] = (c, int(a.ref), int(b.ref))
        return value

    # -- integers -----------------------------------------------------------------------------
    def int_binary(self, inst: Inst) -> Val:
        return self.b.op(inst.op.name, self.arg(inst, 0), self.arg(inst, 1))

    def mulh(self, inst: Inst) -> Val:
        b = self.b
        a, c = self.arg(inst, 0), self.arg(inst, 1)
        bits = WIDTH[a.ty]
        wide = f"i{2 * bits}"
        ext = "sext" if inst.op.name == "smulh" else "zext"
        product = b.op("mul", b.cast(ext, a, wide), b.cast(ext, c, wide))
        return b.cast("trunc", b.op("lshr", product, const(wide, bits)), a.ty)

    def division(self, inst: Inst) -> Val:
        b = self.b
        name = inst.op.name
        a, d = self.arg(inst, 0), self.arg(inst, 1)
        ty, bits = a.ty, WIDTH[a.ty]
        # undefined cases (d = 0; MIN / -1 for signed) divide by 1 instead of trapping the host
        bad = b.icmp("eq", d, const(ty, 0))
        if name in ("sdiv", "srem"):
            overflow = b.op("and", b.icmp("eq", a, const(ty, 1 << (bits - 1))),
                            b.icmp("eq", d, const(ty, -1)))
            bad = b.op("or", bad, overflow)
        safe = b.select(bad, const(ty, 1), d)
        if bits == 128:
            return support.divide128(b, name, a, safe)
        return b.op(name, a, safe)

    def shift(self, inst: Inst) -> Val:
        a, c = self.arg(inst, 0), self.arg(inst, 1)
        amount = self.b.op("and", c, const(c.ty, WIDTH[c.ty] - 1))
        return self.b.op(inst.op.name, a, amount)

    def rotate(self, inst: Inst) -> Val:
        a, c = self.arg(inst, 0), self.arg(inst, 1)
        if a.ty == "i1":
            return a
        name = "fshl" if inst.op.name == "rotl" else "fshr"
        return self.b.intrinsic(f"llvm.{name}.{a.ty}", a.ty, [a, a, c])  # amount modulo width

    def minmax(self, inst: Inst) -> Val:
        a, c = self.arg(inst, 0), self.arg(inst, 1)
        name = inst.op.name
        cond = name[0] + ("le" if name.endswith("min") else "ge")  # sle, sge, ule, uge
        return self.b.select(self.b.icmp(cond, a, c), a, c)

    def neg(self, inst: Inst) -> Val:
        a = self.arg(inst, 0)
        return self.b.op("sub", const(a.ty, 0), a)

    def not_(self, inst: Inst) -> Val:
        a = self.arg(inst, 0)
        return self.b.op("xor", a, const(a.ty, -1))

    def bitcount(self, inst: Inst) -> Val:
        a = self.arg(inst, 0)
        name = inst.op.name
        if a.ty == "i1":  # clz/ctz of an i1: 1 for 0, 0 for 1
            return a if name == "popcnt" else self.b.op("xor", a, const("i1", 1))
        if name == "popcnt":
            return self.b.intrinsic(f"llvm.ctpop.{a.ty}", a.ty, [a])
        intrinsic = "ctlz" if name == "clz" else "cttz"
        return self.b.intrinsic(f"llvm.{intrinsic}.{a.ty}", a.ty, [a, const("i1", 0)])

    def bswap(self, inst: Inst) -> Val:
        a = self.arg(inst, 0)
        return self.b.intrinsic(f"llvm.bswap.{a.ty}", a.ty, [a])

    def icmp(self, inst: Inst) -> Val:
        return self.b.icmp(str(inst.imms["cond"]), self.arg(inst, 0), self.arg(inst, 1))

    # -- conversions --------------------------------------------------------------------------
    def extend(self, inst: Inst) -> Val:
        return self.b.cast(inst.op.name, self.arg(inst, 0), llvm_type(inst.result.type))  # type: ignore[union-attr]

    def bitcast(self, inst: Inst) -> Val:
        return self.b.cast("bitcast", self.arg(inst, 0), llvm_type(inst.result.type))  # type: ignore[union-attr]

    def float_to_int(self, inst: Inst) -> Val:
        a = self.arg(inst, 0)
        ty = llvm_type(inst.result.type)  # type: ignore[union-attr]
        signed = inst.op.name == "fptosi"
        if ty == "i128":
            return support.float_to_int128(self.b, a, signed)
        name = "llvm.fptosi.sat" if signed else "llvm.fptoui.sat"
        suffix = "f32" if a.ty == "float" else "f64"
        return self.b.intrinsic(f"{name}.{ty}.{suffix}", ty, [a])

    def int_to_float(self, inst: Inst) -> Val:
        a = self.arg(inst, 0)
        ty = llvm_type(inst.result.type)  # type: ignore[union-attr]
        signed = inst.op.name == "sitofp"
        if a.ty == "i128":
            return support.int128_to_float(self.b, a, ty, signed)
        return self.b.cast(inst.op.name, a, ty)

    def float_resize(self, inst: Inst) -> Val:
        ty = llvm_type(inst.result.type)  # type: ignore[union-attr]
        return self.canonical(self.b.cast(inst.op.name, self.arg(inst, 0), ty))

    # -- floating point -----------------------------------------------------------------------
    def canonical(self, value: Val) -> Val:
        """``value``, or the canonical quiet NaN when it is a NaN."""
        nan = float_const(value.ty, CANONICAL_NAN[WIDTH[value.ty]])
        return self.b.select(self.b.fcmp("uno", value, value), nan, value)

    def canonical_opaque(self, value: Val) -> Val:
        """``canonical`` where LLVM would otherwise undo it.

        LLVM treats NaN payloads as unspecified and folds ``select(x < 0, NaN, sqrt(x))`` back
        to ``sqrt(x)`` in instruction selection, leaving the host's NaN. Passing the bits
        through an empty inline asm hides where they came from; the test and select are then
        on integers.
        """
        b = self.b
        bits = WIDTH[value.ty]
        it = INT_OF[value.ty]
        raw = b.asm_barrier(b.cast("bitcast", value, it))
        magnitude = b.op("and", raw, const(it, (1 << (bits - 1)) - 1))
        is_nan = b.icmp("ugt", magnitude, const(it, _INFINITY[bits]))
        return b.cast("bitcast", b.select(is_nan, const(it, CANONICAL_NAN[bits]), raw), value.ty)

    def float_binary(self, inst: Inst) -> Val:
        return self.canonical(self.b.op(inst.op.name, self.arg(inst, 0), self.arg(inst, 1)))

    def fsqrt(self, inst: Inst) -> Val:
        a = self.arg(inst, 0)
        return self.canonical_opaque(self.b.intrinsic(f"llvm.sqrt.{_fsuffix(a)}", a.ty, [a]))

    def fma(self, inst: Inst) -> Val:
        args = [self.arg(inst, i) for i in range(3)]
        ty = args[0].ty
        return self.canonical(self.b.intrinsic(f"llvm.fma.{_fsuffix(args[0])}", ty, args))

    def fminmax(self, inst: Inst) -> Val:
        b = self.b
        a, c = self.arg(inst, 0), self.arg(inst, 1)
        is_min = inst.op.name == "fmin"
        it = INT_OF[a.ty]
        a_nan = b.fcmp("uno", a, a)
        c_nan = b.fcmp("uno", c, c)
        first = b.fcmp("olt" if is_min else "ogt", a, c)
        equal = b.fcmp("oeq", a, c)
        ai, ci = b.cast("bitcast", a, it), b.cast("bitcast", c, it)
        # equal operands are the same bits or zeros of both signs: OR picks -0, AND +0
        tie = b.cast("bitcast", b.op("or" if is_min else "and", ai, ci), a.ty)
        numbers = b.select(first, a, b.select(equal, tie, c))
        result = b.select(a_nan, c, b.select(c_nan, a, numbers))
        return self.canonical(result)  # both NaN: the canonical NaN

    def fneg(self, inst: Inst) -> Val:
        return self.b.fneg(self.arg(inst, 0))

    def fabs(self, inst: Inst) -> Val:
        a = self.arg(inst, 0)
        return self.b.intrinsic(f"llvm.fabs.{_fsuffix(a)}", a.ty, [a])

    def fcmp(self, inst: Inst) -> Val:
        return self.b.fcmp(str(inst.imms["cond"]), self.arg(inst, 0), self.arg(inst, 1))

    # -- state --------------------------------------------------------------------------------
    def state_get(self, name: str) -> Val:
        """A scalar state field (not an ``i1``), read."""
        return self._cached_load(FieldRef(name))

    def state_set(self, name: str, value: Val) -> None:
        self._cached_store(FieldRef(name), value)

    def get(self, inst: Inst) -> Val:
        t = inst.result.type  # type: ignore[union-attr]
        raw = self._cached_load(inst.imms["field"])
        return self.b.cast("trunc", raw, "i1") if t.bits == 1 else raw

    def set(self, inst: Inst) -> None:
        value = self.arg(inst, 0)
        if value.ty == "i1":
            value = self.b.cast("zext", value, "i8")
        self._cached_store(inst.imms["field"], value)

    # -- memory -------------------------------------------------------------------------------
    def _fault_block(self) -> tuple[BlockText, Phi, Phi, Phi]:
        """The function's one block for refused accesses: from the guest address, the
        alignment mask and whether a write found a ``PERM_CODE`` page, ``misaligned``,
        ``STATUS_CODE_WRITE`` or ``mem_fault``."""
        if self._fault is None:
            here = self.b.block
            block = self.fn.block("mem_trap")
            b = self.b
            b.at(block)
            addr, mask, code = b.phi("i64"), b.phi("i64"), b.phi("i1")
            misaligned = b.icmp("ne", b.op("and", addr, mask), const("i64", 0))
            status = b.select(misaligned, const("i64", TRAP_STATUS["misaligned"]),
                              b.select(code, const("i64", STATUS_CODE_WRITE),
                                       const("i64", TRAP_STATUS["mem_fault"])))
            self._ctx_store("trap_addr", addr)
            self._ctx_store("trap_flags", const("i64", 1))
            self._leave(status)
            b.at(here)
            self._fault = (block, addr, mask, code)
        return self._fault

    def _host_address(self, addr: Val, size: int, align: int, need: int) -> Val:
        """Check an access of ``size`` bytes at guest ``addr`` (alignment, bounds, the page
        permissions of its first and last byte), going to the fault block when refused; its
        host address."""
        b = self.b
        a64 = b.cast("zext", addr, "i64")
        off = b.op("sub", a64, self._ctx_field("mem_guest"))
        # off + size <= mem_size, as off < mem_size - (size - 1) (0 when memory is smaller)
        inside = b.icmp("ult", off, self._limit(size))
        # the permission bytes are read at page 0 when out of bounds: never outside the table
        perms = self._ctx_field("perms")
        shift = const("i64", PAGE_SHIFT)
        first = b.select(inside, b.op("lshr", off, shift), const("i64", 0))
        granted = b.load("i8", b.gep(perms, first))
        if size > 1:
            last = b.select(inside, b.op("lshr", b.op("add", off, const("i64", size - 1)), shift),
                            const("i64", 0))
            granted = b.op("and", granted, b.load("i8", b.gep(perms, last)))
        need_c = const("i8", need)
        # a write must also find no translated code on the page (PERM_CODE)
        test = const("i8", need | PERM_CODE) if need & PERM_WRITE else need_c
        ok = b.op("and", inside, b.icmp("eq", b.op("and", granted, test), need_c))
        if need & PERM_WRITE:
            code = b.op("and", inside, b.icmp("ne", b.op("and", granted, const("i8", PERM_CODE)),
                                              const("i8", 0)))
        else:
            code = const("i1", 0)
        if align > 1:
            low = b.op("and", a64, const("i64", align - 1))
            ok = b.op("and", ok, b.icmp("eq", low, const("i64", 0)))
        block, addr_phi, mask_phi, code_phi = self._fault_block()
        source = self._continue_if(ok, block, "access")
        addr_phi.add(a64, source)
        mask_phi.add(const("i64", align - 1), source)
        code_phi.add(code, source)
        return b.gep(self._ctx_field("mem_host"), off)

    def _limit(self, size: int) -> Val:
        """``mem_size - (size - 1)``, saturating at 0, computed once in the prologue."""
        value = self._limits.get(size)
        if value is None:
            mem_size = self._ctx_field("mem_size")
            value = self._in_prologue(lambda b: b.intrinsic(
                "llvm.usub.sat.i64", "i64", [mem_size, const("i64", size - 1)]))
            self._limits[size] = value
        return value

    @staticmethod
    def _flags(inst: Inst) -> MemFlags:
        flags = inst.imms.get("flags")
        return flags if isinstance(flags, MemFlags) else MemFlags()

    def load(self, inst: Inst) -> Val:
        b = self.b
        t = inst.result.type  # type: ignore[union-attr]
        flags = self._flags(inst)
        size = flags.size or t.bytes
        ptr = self._host_address(self.arg(inst, 0), size, flags.align, PERM_READ)
        mt = memory_type(t) if size == t.bytes else f"i{8 * size}"
        if flags.order is not None and size <= 8 and flags.align >= size:
            raw = b.load(mt, ptr, size, _ORDERS[flags.order])
        else:
            raw = b.load(mt, ptr)
            if flags.order is not None:
                b.fence("seq_cst")
        if t.bits == 1:
            return b.cast("trunc", raw, "i1")
        if size != t.bytes:
            return b.cast("sext" if flags.sext else "zext", raw, llvm_type(t))
        return raw

    def store(self, inst: Inst) -> None:
        b = self.b
        t = inst.args[0].type
        flags = self._flags(inst)
        size = flags.size or t.bytes
        ptr = self._host_address(self.arg(inst, 1), size, flags.align, PERM_WRITE)
        value = self.arg(inst, 0)
        if t.bits == 1:
            value = b.cast("zext", value, "i8")
        elif size != t.bytes:
            value = b.cast("trunc", value, f"i{8 * size}")
        if flags.order is not None and size <= 8 and flags.align >= size:
            b.store(value, ptr, size, _ORDERS[flags.order])
        else:
            if flags.order is not None:
                b.fence("seq_cst")
            b.store(value, ptr)

    def _native_atomic(self, t: Type) -> bool:
        return t.bytes <= 8 or self.batch.atomic128

    def atomic_rmw(self, inst: Inst) -> Val:
        b = self.b
        t = inst.result.type  # type: ignore[union-attr]
        ptr = self._host_address(self.arg(inst, 0), t.bytes, t.bytes, PERM_RW)
        v = self.arg(inst, 1)
        op = str(inst.imms["op"])
        if self._native_atomic(t):
            return b.atomic_rmw(_RMW_OPS[op], ptr, v, _ORDERS[str(inst.imms["order"])])
        b.fence("seq_cst")
        old = b.load(v.ty, ptr)
        if op == "xchg":
            new = v
        elif op in ("add", "sub", "and", "or", "xor"):
            new = b.op(op, old, v)
        else:
            cond = op[0] + ("le" if op.endswith("min") else "ge")
            new = b.select(b.icmp(cond, old, v), old, v)
        b.store(new, ptr)
        b.fence("seq_cst")
        return old

    def cmpxchg(self, inst: Inst) -> Val:
        b = self.b
        t = inst.result.type  # type: ignore[union-attr]
        ptr = self._host_address(self.arg(inst, 0), t.bytes, t.bytes, PERM_RW)
        expected, new = self.arg(inst, 1), self.arg(inst, 2)
        order = str(inst.imms["order"])
        if self._native_atomic(t):
            return b.cmpxchg(ptr, expected, new, _ORDERS[order], _FAIL_ORDERS[order])
        b.fence("seq_cst")
        old = b.load(new.ty, ptr)
        b.store(b.select(b.icmp("eq", old, expected), new, old), ptr)
        b.fence("seq_cst")
        return old

    def fence(self, inst: Inst) -> None:
        self.b.fence(_ORDERS[str(inst.imms["order"])])

    # -- helpers ------------------------------------------------------------------------------
    def _helper_slots(self) -> tuple[Val, Val]:
        if self._slots is None:
            arity = max((len(d.params) for d in self.module.helpers.values()), default=0)
            self._slots = (
                self._in_prologue(lambda b: b.alloca(f"[{max(arity, 1)} x i128]")),
                self._in_prologue(lambda b: b.alloca("i128")))
        return self._slots

    def _failed_block(self) -> tuple[BlockText, Phi]:
        """The function's one block for helpers that did not return 0: returns their status."""
        if self._helper_failed is None:
            here = self.b.block
            block = self.fn.block("helper_failed")
            self.b.at(block)
            status = self.b.phi("i64")
            # the helper saw the state as it was written before the call, and may have
            # changed it: only the budget goes back
            self._ret(status, "budget")
            self.b.at(here)
            self._helper_failed = (block, status)
        return self._helper_failed

    def _native(self, decl: HelperDecl) -> bool:
        """Whether a call of ``decl`` runs as native code (``nativefp``) in this function."""
        if decl.native not in nativefp.SUPPORTED or not self.batch.native_helpers:
            return False
        fields = self.state.fields
        return all(name in fields and fields[name].count is None
                   and fields[name].type.bits == 64 for name in nativefp.STATE_FIELDS)

    def call(self, inst: Inst) -> Val | None:
        decl = self.module.helpers[str(inst.imms["helper"])]
        if self._native(decl):
            return nativefp.lower_call(self, inst, decl)
        return self.call_helper(inst, decl)

    def call_helper(self, inst: Inst, decl: HelperDecl) -> Val | None:
        """``inst`` as a call through the helper table (the implementation in Python)."""
        b = self.b
        name = decl.name
        args, ret = self._helper_slots()
        for i, (arg, t) in enumerate(zip(inst.args, decl.params, strict=True)):
            self._store_slot(args, i, t, self.values[arg])
        entry = b.gep(self._ctx_field("helpers"), 8 * self.helper_index[name])
        target = b.load("ptr", entry, align=8)
        self._sync("flush")
        status = b.call("i64", target.ref, [self.ctx, args, ret])
        block, phi = self._failed_block()
        source = self._continue_if(b.icmp("eq", status, const("i64", 0)), block, "helper_done")
        phi.add(status, source)
        self._sync("reload")
        if inst.result is None:
            return None
        assert decl.result is not None
        return self._load_slot(ret, 0, decl.result)

    # -- terminators --------------------------------------------------------------------------
    def _edge(self, target, from_block: BlockText) -> None:
        for phi, arg in zip(self.phis[id(target.block)], target.args, strict=True):
            phi.add(self.values[arg], from_block)

    def br(self, inst: Inst) -> None:
        target = inst.targets[0]
        self._edge(target, self.b.block)
        self.b.br(self.blocks[id(target.block)])

    def brif(self, inst: Inst) -> None:
        b = self.b
        then, other = inst.targets
        here = b.block
        then_block = self.blocks[id(then.block)]
        if then.block is other.block:  # two edges to one block: the second through its own
            else_block = self.fn.block(f"{other.block.name}_edge")
            self._edge(other, else_block)
            b.at(else_block)
            b.br(then_block)
            b.at(here)
        else:
            else_block = self.blocks[id(other.block)]
            self._edge(other, here)
        self._edge(then, here)
        b.cbr(self.arg(inst, 0), then_block, else_block)

    def exit(self, inst: Inst) -> None:
        b = self.b
        target = self.arg(inst, 0)
        chain = self.region is not None and self.batch.chain
        choice = self._choices.get(target.ref)
        if chain and choice is not None:  # a branch: a select of two constant pcs
            cond, taken, other = choice
            then, otherwise = self.fn.block("taken"), self.fn.block("not_taken")
            b.cbr(cond, then, otherwise)
            for block, pc in ((then, taken), (otherwise, other)):
                b.at(block)
                self._exit_to(const("i64", pc), chain)
            return
        self._exit_to(target, chain)

    def _exit_to(self, target: Val, chain: bool) -> None:
        b = self.b
        edges = self._member_edge
        if edges and target.ref.isdigit() and int(target.ref) in edges:
            b.br(edges[int(target.ref)])  # a constant pc inside the region
            return
        if edges and not target.ref.isdigit():  # computed: maybe a member, maybe not
            out = self.fn.block("leave")
            b.switch(target, out, sorted(edges.items()))
            b.at(out)
        self._leave(const("i64", STATUS_EXITED), target, self._link() if chain else None)

    def trap(self, inst: Inst) -> None:
        self._ctx_store("trap_flags", const("i64", 0))
        self._leave(const("i64", TRAP_STATUS[str(inst.imms["kind"])]))

    def ret(self, inst: Inst) -> None:
        rets = self.b.load("ptr", self.b.gep(self.ctx, CTX["rets"]), align=8)
        for i, (arg, t) in enumerate(zip(inst.args, self.func.returns, strict=True)):
            self._store_slot(rets, i, t, self.values[arg])
        self._leave(const("i64", STATUS_RETURNED))


def _fsuffix(v: Val) -> str:
    return "f32" if v.ty == "float" else "f64"


_L = _FunctionLowering
_LOWERINGS: dict[str, Callable[[_FunctionLowering, Inst], Val | None]] = {
    "iconst": _L.iconst, "fconst": _L.fconst, "copy": _L.copy, "select": _L.select,
    **dict.fromkeys(("add", "sub", "mul", "and", "or", "xor"), _L.int_binary),
    "umulh": _L.mulh, "smulh": _L.mulh,
    **dict.fromkeys(("udiv", "sdiv", "urem", "srem"), _L.division),
    **dict.fromkeys(("shl", "lshr", "ashr"), _L.shift),
    "rotl": _L.rotate, "rotr": _L.rotate,
    **dict.fromkeys(("smin", "smax", "umin", "umax"), _L.minmax),
    "neg": _L.neg, "not": _L.not_,
    **dict.fromkeys(("clz", "ctz", "popcnt"), _L.bitcount),
    "bswap": _L.bswap, "icmp": _L.icmp,
    **dict.fromkeys(("zext", "sext", "trunc"), _L.extend),
    "bitcast": _L.bitcast,
    "fptosi": _L.float_to_int, "fptoui": _L.float_to_int,
    "sitofp": _L.int_to_float, "uitofp": _L.int_to_float,
    "fpext": _L.float_resize, "fptrunc": _L.float_resize,
    **dict.fromkeys(("fadd", "fsub", "fmul", "fdiv"), _L.float_binary),
    "fsqrt": _L.fsqrt, "fma": _L.fma, "fmin": _L.fminmax, "fmax": _L.fminmax,
    "fneg": _L.fneg, "fabs": _L.fabs, "fcmp": _L.fcmp,
    "get": _L.get, "set": _L.set,
    "load": _L.load, "store": _L.store, "atomic_rmw": _L.atomic_rmw, "cmpxchg": _L.cmpxchg,
    "fence": _L.fence, "call": _L.call,
    "br": _L.br, "brif": _L.brif, "exit": _L.exit, "trap": _L.trap, "ret": _L.ret,
}

#: every op of the table has a lowering, and nothing else does
LOWERED_OPS = frozenset(_LOWERINGS)
_missing = sorted(set(OPS) - LOWERED_OPS)
_unknown = sorted(LOWERED_OPS - set(OPS))
if _missing or _unknown:
    raise AssertionError(f"jit/lower.py: ops without a lowering: {_missing}; lowerings of "
                         f"unknown ops: {_unknown}")
assert set(TRAP_STATUS) == set(TRAP_KINDS)

__all__ = ["LOWERED_OPS", "BatchLowering", "LoweringError", "Region", "RegionMember",
           "llvm_type", "memory_type", "reachable_blocks"]
