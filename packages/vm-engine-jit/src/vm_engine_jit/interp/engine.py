"""The interpreter tier: lift a block on first use, compile it to Python, cache it by pc, and
run blocks in a tight loop until a trap.

    engine = InterpEngine(frontend)
    trap = engine.run(state, memory)     # -> vm_core.Trap (a syscall, a fault, ...)

Correct first; fast as Python allows (see ``pygen`` for what the generated code does). A
block goes through three tiers:

1. **cold**: most blocks of a program run once or twice (start-up, error paths), and
   compiling one costs as much as running it a few hundred times, so a new block's IR, as
   lifted, runs on vm-ir's reference evaluator;
2. **compiled**: its ``hot_runs``-th run (default: the second) optimises and compiles it to
   a Python function; a block that jumps back to its own start becomes a Python loop;
3. **region**: the dispatcher samples the pc it dispatches (one dispatch in
   ``SAMPLE_EVERY``); a compiled block sampled ``REGION_SAMPLES`` times becomes the head of
   a region: it and the sampled (hot) compiled blocks its exits lead to, directly or
   through each other (statically, or where a dynamic exit went while it was cold),
   compiled into one function that goes from block to block without coming back here.

A translation stays valid until ``invalidate(start, length)`` drops it (``fence.i``, writes
to code, munmap); a region is dropped with any of its blocks. Generated code is bound to one
guest memory (its permission table and views are in the code): running with another memory
object drops every translation first.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vm_core import GuestMemoryError, LiftedBlock, Trap, TrapKind
from vm_ir import Exited, GuestTrap, evaluate
from vm_ir.semantics import UndefinedBehavior
from vm_telemetry import Registry

from .pygen import (
    BlockFn,
    BlockOptions,
    BlockTrap,
    MemoryBinding,
    RegionMember,
    bind_memory,
    compile_block,
    compile_region,
)

PAGE_SHIFT = 12
#: the dispatcher samples one dispatch in this many (a power of two)
SAMPLE_EVERY = 256
#: samples that make a compiled block the head of a region
REGION_SAMPLES = 2
#: at most this many guest blocks in a region
REGION_BLOCKS = 16


@dataclass
class EngineStats:
    """Counters an engine keeps; ``vm run --stats`` prints them.

    ``blocks_executed`` counts dispatches: a loop block (a block jumping back to its own
    start, compiled as a Python loop) or a region counts once however far it goes;
    ``loop_insns`` is how many of the ``insns`` ran inside such loops and regions.
    ``translate_seconds`` is thread CPU time spent lifting, optimising and compiling.
    The JIT tier adds: ``native_insns`` and ``native_blocks`` (run by compiled code: its
    code cache hits), ``cache_misses`` (dispatches that found no compiled code),
    ``compile_seconds`` (LLVM, also in ``translate_seconds``), ``evictions`` and
    ``code_bytes`` (machine code the native code cache holds).
    """

    insns: int = 0
    blocks_executed: int = 0
    blocks_translated: int = 0
    blocks_compiled: int = 0
    regions_compiled: int = 0
    translate_seconds: float = 0.0
    invalidations: int = 0
    loop_insns: int = 0
    exits: dict[str, int] = field(default_factory=dict)
    native_insns: int = 0
    native_blocks: int = 0
    cache_misses: int = 0
    compile_seconds: float = 0.0
    evictions: int = 0
    code_bytes: int = 0

    def count_exit(self, reason: str) -> None:
        self.exits[reason] = self.exits.get(reason, 0) + 1

    def publish(self, registry: Registry) -> Registry:
        """These counts as vm-telemetry metrics (``vm run --stats`` prints from them)."""
        counters = {
            "guest_instructions": ("guest instructions executed", self.insns),
            "native_instructions": ("of them, run by compiled code", self.native_insns),
            "dispatches": ("blocks dispatched (a loop or region counts once)",
                           self.blocks_executed),
            "blocks_translated": ("blocks lifted to vm-ir", self.blocks_translated),
            "blocks_compiled": ("functions compiled (Python or native)", self.blocks_compiled),
            "regions_compiled": ("of them, regions of several blocks", self.regions_compiled),
            "code_cache_hits": ("dispatches to compiled native code", self.native_blocks),
            "code_cache_misses": ("dispatches that found no native code", self.cache_misses),
            "code_cache_evictions": ("native functions dropped to bound the cache",
                                     self.evictions),
            "invalidations": ("translations dropped because their code changed",
                              self.invalidations),
        }
        for name, (text, value) in counters.items():
            registry.counter(name, text).set_total(value)
        registry.counter("translate_seconds", "CPU seconds lifting and compiling").set_total(
            round(self.translate_seconds, 6))
        registry.counter("compile_seconds", "CPU seconds in LLVM").set_total(
            round(self.compile_seconds, 6))
        registry.gauge("code_cache_bytes", "native code held").set(self.code_bytes)
        for reason, n in self.exits.items():
            registry.counter("exits", "exits from the engine by reason",
                             reason=reason).set_total(n)
        return registry


class HelperContext:
    """What a helper sees under this engine (the same shape as vm-ir's evaluator gives).

    ``left`` and ``ran`` are the engine's talk with loop blocks and regions: the instruction
    budget left when one starts, and how many guest instructions it ran.
    """

    __slots__ = ("engine", "left", "memory", "ran", "state")

    def __init__(self, state: Any, memory: Any, engine: Any = None) -> None:
        self.state = state
        self.memory = memory
        self.engine = engine
        self.left = 0
        self.ran = 0


class EngineError(Exception):
    """The engine itself failed on guest code (a lifter or codegen bug), with the guest pc."""


class _Translation:
    """What the engine knows of one translated block."""

    __slots__ = ("block", "compiled", "last_exit", "loop", "next_try", "regioned", "runs",
                 "samples")

    def __init__(self, block: LiftedBlock) -> None:
        self.block = block
        self.runs = 0  # cold runs
        self.last_exit: int | None = None  # where the last cold run went
        self.compiled = False
        self.loop = False
        self.samples = 0  # how often the dispatcher's sampling caught it
        self.next_try = 0  # the sample count at which to try (again) to head a region
        self.regioned = False


class InterpEngine:
    """Interpreter tier over any frontend (see vm_core.Frontend).

    ``hot_runs``: the run of a block that compiles it (1: compile at once; runs before it use
    the evaluator). ``loops=False`` compiles self-loops as ordinary blocks and ``regions=False``
    forms no regions (for comparison and debugging); ``sample_every`` (a power of two) and
    ``region_samples`` say when a block heads a region.
    """

    name = "interp"

    def __init__(self, frontend: Any, *, max_block_insns: int = 64,
                 on_translate: Callable[[LiftedBlock], None] | None = None,
                 loops: bool = True, regions: bool = True, hot_runs: int = 2,
                 sample_every: int = SAMPLE_EVERY, region_samples: int = REGION_SAMPLES) -> None:
        if sample_every < 1 or sample_every & (sample_every - 1):
            raise ValueError(f"sample_every must be a power of two, not {sample_every}")
        self.frontend = frontend
        self.helpers = dict(frontend.helpers)
        self.max_block_insns = max_block_insns
        self.on_translate = on_translate
        self.loops = loops
        self.regions = regions
        self.hot_runs = max(1, hot_runs)
        self.sample_every = sample_every
        self.region_samples = max(1, region_samples)
        #: pc -> (compiled block, guest instructions it counts; 0: it counts itself)
        self.cache: dict[int, tuple[BlockFn, int]] = {}
        #: guest page -> pcs of the cache entries whose code lies on it
        self.pages: dict[int, set[int]] = {}
        self.stats = EngineStats()
        self.trace: Callable[[int, LiftedBlock], None] | None = None
        #: bumped whenever translations are dropped; loops and regions watch it
        self.epoch = [0]
        layout = getattr(frontend, "state_layout", None)
        pc = layout.field("pc") if layout is not None else None
        self.pc_field = "pc" if pc is not None and pc.count is None else None
        self._binding: MemoryBinding | None = None
        self._blocks: dict[int, _Translation] = {}
        try:
            self._lift_raw = "optimize" in inspect.signature(frontend.lift).parameters
        except (TypeError, ValueError):
            self._lift_raw = False
        engine = self

        def for_evaluator(impl: Callable) -> Callable:
            def call(ectx: Any, *args: int) -> Any:  # the evaluator's context lacks .engine
                return impl(HelperContext(ectx.state, ectx.memory, engine), *args)
            return call

        self._eval_helpers = {name: for_evaluator(impl) for name, impl in self.helpers.items()}

    # -- translation -------------------------------------------------------------------------
    def _bind(self, memory: Any) -> MemoryBinding:
        binding = self._binding
        if binding is None or binding.memory is not memory:
            if self.cache:  # compiled for another memory
                self.cache.clear()
                self.pages.clear()
                self._blocks.clear()
                self.epoch[0] += 1
            binding = self._binding = bind_memory(memory)
        return binding

    def _options(self, block: LiftedBlock, binding: MemoryBinding, loops: bool) -> BlockOptions:
        return BlockOptions(name=f"{block.pc:#x}", start_pc=block.pc, pc_field=self.pc_field,
                            memory=binding, loop_insns=block.insns if loops else None,
                            epoch=self.epoch)

    def _lift(self, memory: Any, pc: int, optimize: bool) -> LiftedBlock:
        if self._lift_raw:
            return self.frontend.lift(memory, pc, max_insns=self.max_block_insns,
                                      optimize=optimize)
        return self.frontend.lift(memory, pc, max_insns=self.max_block_insns)

    def _register(self, pc: int, start: int, length: int) -> None:
        """The cache entry at ``pc`` holds code of [start, start + length)."""
        for page in range(start >> PAGE_SHIFT, ((start + max(length, 1) - 1) >> PAGE_SHIFT) + 1):
            self.pages.setdefault(page, set()).add(pc)

    def translate(self, pc: int, memory: Any) -> tuple[BlockFn, int]:
        """Lift the block at ``pc`` and cache it: cold (evaluated) or compiled."""
        t0 = time.thread_time()
        binding = self._bind(memory)
        cold = self.hot_runs > 1
        block = self._lift(memory, pc, optimize=False)  # pygen needs no vm-ir passes
        info = _Translation(block)
        self._blocks[pc] = info
        if cold and not _has_atomics(block.func):
            entry: tuple[BlockFn, int] = (self._cold(info), block.insns)
        else:
            entry = self._compile(info, binding)
        self.cache[pc] = entry
        self._register(pc, pc, block.length)
        self.stats.blocks_translated += 1
        self.stats.translate_seconds += time.thread_time() - t0
        if self.trace is not None:
            self.trace(pc, block)
        if self.on_translate is not None:
            self.on_translate(block)
        return entry

    def _compile(self, info: _Translation, binding: MemoryBinding) -> tuple[BlockFn, int]:
        block = info.block
        fn, _source = compile_block(block.func, block.module, self.helpers,
                                    options=self._options(block, binding, self.loops))
        info.compiled = True
        info.loop = fn.is_loop  # type: ignore[attr-defined]
        self.stats.blocks_compiled += 1
        return fn, 0 if fn.counts_itself else block.insns  # type: ignore[attr-defined]

    def _cold(self, info: _Translation) -> BlockFn:
        """A block not compiled yet: each run evaluates its IR; the ``hot_runs``-th compiles
        it first (for the runs after this one)."""
        engine = self
        block = info.block
        pc, module, func = block.pc, block.module, block.func
        helpers = self._eval_helpers

        def cold(state: Any, memory: Any, ctx: Any) -> int:
            info.runs += 1
            if info.runs >= engine.hot_runs:
                current = engine.cache.get(pc)
                if current is not None and current[0] is cold:  # not invalidated meanwhile
                    t0 = time.thread_time()
                    engine.cache[pc] = engine._compile(info, engine._bind(memory))
                    engine.stats.translate_seconds += time.thread_time() - t0
            state.pc = pc
            result = evaluate(module, func, state=state, memory=memory, helpers=helpers,
                              check=False)
            if result.__class__ is Exited:
                info.last_exit = result.pc  # type: ignore[union-attr]
                return result.pc  # type: ignore[union-attr]
            raise BlockTrap(result.kind, result.addr)  # type: ignore[union-attr]

        cold.counts_itself = False  # type: ignore[attr-defined]
        return cold

    def _sampled(self, pc: int, memory: Any) -> None:
        """The dispatcher is about to run ``pc``: one more sample of it."""
        info = self._blocks.get(pc)
        if info is None or not info.compiled or info.loop or info.regioned:
            return
        if not info.samples:
            info.next_try = self.region_samples
        info.samples += 1
        if info.samples >= info.next_try:
            t0 = time.thread_time()
            info.regioned = self._form_region(info, memory)
            if not info.regioned:  # its successors are not hot (yet): try again later
                info.next_try = 2 * info.samples
            self.stats.translate_seconds += time.thread_time() - t0

    def _form_region(self, head: _Translation, memory: Any) -> bool:
        members = [head]
        seen = {head.block.pc}
        i = 0
        while i < len(members) and len(members) < REGION_BLOCKS:
            info = members[i]
            i += 1
            for target in _successors(info):
                if target in seen:
                    continue
                seen.add(target)
                m = self._blocks.get(target)
                if m is not None and m.compiled and m.samples and not m.loop and \
                        len(m.block.func.blocks) == 1 and len(members) < REGION_BLOCKS:
                    members.append(m)
        if len(members) < 2:
            return False
        members = _reverse_postorder(members)
        binding = self._bind(memory)
        head_pc = head.block.pc
        fn, _source = compile_region(
            [RegionMember(m.block.pc, m.block.func, m.block.module, m.block.insns)
             for m in members], self.helpers,
            BlockOptions(name=f"region {head_pc:#x}", pc_field=self.pc_field, memory=binding,
                         epoch=self.epoch))
        self.cache[head_pc] = (fn, 0)
        for m in members:
            self._register(head_pc, m.block.pc, m.block.length)
        self.stats.regions_compiled += 1
        return True

    def source_of(self, pc: int, memory: Any) -> str:
        """The Python the interpreter runs for the block at ``pc`` (for --trace and tests):
        the block alone, as the compiled tier has it."""
        block = self.frontend.lift(memory, pc, max_insns=self.max_block_insns)
        binding = self._binding
        if binding is None or binding.memory is not memory:
            binding = bind_memory(memory)
        return compile_block(block.func, block.module, self.helpers,
                             options=self._options(block, binding, self.loops))[1]

    def invalidate(self, start: int, length: int) -> None:
        """Forget translations of code overlapping [start, start + length)."""
        if length <= 0 or not self.pages:
            return
        first, last = start >> PAGE_SHIFT, (start + length - 1) >> PAGE_SHIFT
        if last - first > len(self.pages):
            pages = [p for p in self.pages if first <= p <= last]
        else:
            pages = [p for p in range(first, last + 1) if p in self.pages]
        for page in pages:
            for pc in self.pages.pop(page, ()):
                self._blocks.pop(pc, None)
                if self.cache.pop(pc, None) is not None:
                    self.stats.invalidations += 1
                    self.epoch[0] += 1

    def invalidate_all(self) -> None:
        self.stats.invalidations += len(self.cache)
        self.cache.clear()
        self.pages.clear()
        self._blocks.clear()
        self.epoch[0] += 1

    # -- execution ---------------------------------------------------------------------------
    def run(self, state: Any, memory: Any, *, max_insns: int | None = None,
            gate: Callable[[int], bool] | None = None) -> Trap | None:
        """Run from ``state.pc`` until a trap (returned) or until about ``max_insns`` guest
        instructions have run (None returned; the budget is checked between blocks, and a
        loop or region stops when it is spent). ``gate(pc)``, asked before each block after
        the first, stops the run there (None returned) when it says True; it sees every pass
        of a loop, which then runs one pass per call."""
        binding = self._binding
        if binding is None or binding.memory is not memory:
            self._bind(memory)
        cache_get = self.cache.get
        ctx = HelperContext(state, memory, self)
        budget = max_insns if max_insns is not None else 1 << 62
        sample = self.sample_every - 1 if self.regions else -1
        insns = 0
        blocks = 0
        looped = 0
        pc = state.pc
        try:
            try:
                while insns < budget:
                    if gate is not None and blocks and gate(pc):
                        break
                    entry = cache_get(pc)
                    if entry is None:
                        state.pc = pc
                        entry = self.translate(pc, memory)
                    fn, n = entry
                    blocks += 1
                    if not blocks & sample:
                        self._sampled(pc, memory)
                    if n:
                        pc = fn(state, memory, ctx)
                        insns += n
                    else:  # a loop or region: it runs what the budget allows, says how much
                        # (one pass at a time when gated, so that the gate sees each one)
                        ctx.left = budget - insns if gate is None else 1
                        pc = fn(state, memory, ctx)
                        insns += ctx.ran
                        looped += ctx.ran
                        ctx.ran = 0
            except BaseException:
                insns += ctx.ran  # what a loop or region ran before it trapped
                looped += ctx.ran
                raise
            state.pc = pc
            return None
        except BlockTrap as trap:
            kind = TrapKind(trap.kind)
            self.stats.count_exit(kind.value)
            if kind is TrapKind.MEM_FAULT and trap.addr is None:  # an instruction fetch
                return Trap(kind, state.pc, addr=state.pc, detail="exec")
            return Trap(kind, state.pc, addr=trap.addr)
        except GuestMemoryError as fault:
            self.stats.count_exit("mem_fault")
            return Trap(TrapKind.MEM_FAULT, state.pc, addr=fault.fault_addr, detail=fault.access)
        except GuestTrap as trap:  # raised by a helper
            self.stats.count_exit(trap.kind)
            return Trap(TrapKind(trap.kind), state.pc, addr=trap.addr)
        except (UndefinedBehavior, ArithmeticError, TypeError, IndexError, KeyError,
                NameError, ValueError) as exc:
            raise EngineError(f"engine failure in the block at pc {state.pc:#x}: {exc}") from exc
        finally:
            stats = self.stats
            stats.insns += insns
            stats.blocks_executed += blocks
            stats.loop_insns += looped

    def step(self, state: Any, memory: Any) -> Trap | None:
        """Run one guest instruction (a one-instruction block, not cached)."""
        binding = self._bind(memory)
        block = self.frontend.lift(memory, state.pc, max_insns=1)
        fn, _ = compile_block(block.func, block.module, self.helpers,
                              options=self._options(block, binding, loops=False))
        try:
            state.pc = fn(state, memory, HelperContext(state, memory, self))
        except BlockTrap as trap:
            if trap.kind == "mem_fault" and trap.addr is None:
                return Trap(TrapKind.MEM_FAULT, state.pc, addr=state.pc, detail="exec")
            return Trap(TrapKind(trap.kind), state.pc, addr=trap.addr)
        except GuestMemoryError as fault:
            return Trap(TrapKind.MEM_FAULT, state.pc, addr=fault.fault_addr, detail=fault.access)
        except GuestTrap as trap:
            return Trap(TrapKind(trap.kind), state.pc, addr=trap.addr)
        self.stats.insns += 1
        return None


def _has_atomics(func: Any) -> bool:
    """Atomic ops must run compiled (the evaluator's read-modify-write is not atomic across
    guest threads)."""
    return any(inst.op.name in ("atomic_rmw", "cmpxchg")
               for block in func.blocks for inst in block.insts)


def _successors(info: _Translation) -> list[int]:
    """Where a block's exit may go: its constant targets, or where it went when cold."""
    func = info.block.func
    if len(func.blocks) != 1 or not func.blocks[0].insts:
        return []
    insts = func.blocks[0].insts
    term = insts[-1]
    if term.op.name != "exit":
        return []
    consts = {i.result: int(i.imms["imm"]) for i in insts  # type: ignore[call-overload]
              if i.op.name == "iconst" and i.result is not None}
    v = term.args[0]
    if v in consts:
        return [consts[v]]
    d = next((i for i in insts if i.result is v), None)
    if d is not None and d.op.name == "select" and all(a in consts for a in d.args[1:]):
        return [consts[d.args[1]], consts[d.args[2]]]
    return [info.last_exit] if info.last_exit is not None else []


def _reverse_postorder(members: list[_Translation]) -> list[_Translation]:
    """The region's blocks in reverse postorder from its head: every edge but a loop's back
    edge goes to a block further down, which the generated code reaches by falling through."""
    by_pc = {m.block.pc: m for m in members}
    order: list[_Translation] = []
    seen: set[int] = set()

    def visit(m: _Translation) -> None:
        seen.add(m.block.pc)
        for target in _successors(m):
            if target in by_pc and target not in seen:
                visit(by_pc[target])
        order.append(m)

    visit(members[0])
    order.reverse()
    return order
