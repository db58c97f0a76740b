"""``JitEngine``: the interpreter for cold blocks, LLVM-compiled code for hot ones.

    engine = JitEngine(frontend)
    trap = engine.run(state, memory)     # the same API as InterpEngine

A block runs on the interpreter (``InterpEngine``, which asks ``gate`` before each block)
until it has been
dispatched ``hot_runs`` times; then it and the other warm blocks are compiled (``_submit``: on
the compile thread, hottest first, or here with ``background=False``) and run natively from
then on: a block jumps straight to the next one's native code through a link cell the
dispatcher filled, or returns to the native dispatcher (``dispatch.py``), which finds the
next block in its table (and fills the cell), or to Python when there is none. With ``promote_after`` set
(``$VM_JIT_PROMOTE``; off by default), a compiled block the dispatcher has run that many
times heads a region (``_promote``, ``lower.Region``). Guest state
lives in a native ``StateStruct`` while native code runs and is copied back to the Python
``CpuState`` when control leaves native code: before a cold block, on a trap and when ``run``
returns (helpers see the struct through ``_StateView``). Guest memory is the
``AddressSpace``'s own bytes (``base``) and permission table: a refused access is a
``mem_fault`` trap at the pc the lifter stored before the access, and a store to a page with
translated code (``PERM_CODE``) is run by the interpreter, which invalidates
(``STATUS_CODE_WRITE``).

Guest threads share the engine (``_lock`` guards the tables). Native atomics are host
atomics; the interpreter's are atomic only among themselves, so a block with atomics is
compiled before it runs while another guest thread is in the engine (``_atomics_first``).
Native code is bounded by ``code_cache_bytes`` in two generations (``_retire``).
"""

from __future__ import annotations

import atexit
import collections
import ctypes
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from vm_core import GuestMemoryError, LiftedBlock, Trap, TrapKind
from vm_ir import FieldRef, GuestTrap, MemoryFault

from ..interp.engine import EngineError, HelperContext, InterpEngine, _has_atomics
from .abi import (
    HELPER_FN,
    RECORD,
    STATUS_CODE_WRITE,
    STATUS_ERROR,
    STATUS_EXITED,
    STATUS_TRAP,
    TRAP_STATUS,
    JitContext,
    StateStruct,
    read_slot,
    trap_kind,
)
from .dispatch import NEVER, STATUS_HOT, Dispatcher, Io
from .engine import JitCompiler
from .lower import LoweringError, Region, RegionMember

PAGE_SHIFT = 12
#: dispatches of a block before it is compiled
HOT_RUNS = 50
#: at most this many blocks in one compile batch
BATCH_MAX = 64
#: the default bound on native code (``code_cache_bytes``)
CODE_CACHE_BYTES = 64 << 20
#: guest instructions in one background compile batch (more when one region has more)
BATCH_INSNS = 64
#: at most this many blocks in one region
REGION_MAX = 24
#: native runs of a compiled block before a region is compiled at it; 0: never (the
#: default: on bench_cpu, regions' LLVM time cost more than they saved, see docs/decisions.md)
PROMOTE_AFTER = 0
#: the GIL switch interval (s) while a compile thread exists (see ``_submit``)
SWITCH_INTERVAL = 0.0005


def _locked(method: Callable) -> Callable:
    """``method`` under the engine's lock."""

    def locked(self: Any, *args: Any) -> Any:
        with self._lock:
            return method(self, *args)

    locked.__doc__ = method.__doc__
    locked.__name__ = method.__name__
    return locked


_compiler_lock = threading.Lock()


class _Native:
    __slots__ = ("address", "compiled", "fn", "helpers", "insns", "length", "pc", "record",
                 "region", "table")

    def __init__(self, pc: int, length: int, insns: int, fn: Any, table: Any,
                 address: int) -> None:
        self.pc = pc
        self.address = address
        self.length = length
        self.insns = insns
        self.fn = fn  # the ctypes entry point
        self.table = table
        self.helpers = ctypes.addressof(table)
        self.region = False  # a region, or a block a region was tried at: never promoted
        self.compiled: Any = None
        #: what link cells point at (``abi.RECORD``)
        self.record: Any = None


class _Run:
    """One ``run`` in progress: the context block, state struct and the Python state."""

    __slots__ = ("buf", "ctx", "error", "hctx", "state", "stopped")

    def __init__(self, buf: Any, state: Any, hctx: HelperContext) -> None:
        self.ctx = JitContext()
        self.buf = buf
        self.state = state
        self.hctx = hctx
        self.error: BaseException | None = None
        #: ``kick``ed: return soon (``ctx.stop`` tells native code the same)
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        self.ctx.stop = 1


class JitEngine:
    """The tiered engine (see the module docstring); ``hot_runs``: dispatches before a block
    is compiled (default: ``$VM_JIT_HOT_RUNS`` or ``HOT_RUNS``)."""

    name = "jit"

    def __init__(self, frontend: Any, *, hot_runs: int | None = None, max_block_insns: int = 64,
                 opt_level: int = 2, native_dispatch: bool = True,
                 background: bool | None = None, promote_after: int | None = None,
                 code_cache_bytes: int | None = None) -> None:
        self.frontend = frontend
        self.interp = InterpEngine(frontend, max_block_insns=max_block_insns, regions=False)
        self.stats = self.interp.stats
        self.helpers = self.interp.helpers
        if hot_runs is None:  # VM_JIT_HOT_RUNS: for tests and experiments
            hot_runs = int(os.environ.get("VM_JIT_HOT_RUNS", HOT_RUNS))
        self.hot_runs = max(1, hot_runs)
        #: native runs of a compiled block before a region is compiled at it (a sixteenth
        #: of that makes a block a member)
        if promote_after is None:  # VM_JIT_PROMOTE: for experiments
            promote_after = int(os.environ.get("VM_JIT_PROMOTE", PROMOTE_AFTER))
        self.promote_after = max(16, promote_after) if promote_after > 0 else 0
        self.opt_level = opt_level
        self._compiler: JitCompiler | None = None
        if code_cache_bytes is None:  # VM_JIT_CODE_CACHE: bytes, for tests and experiments
            code_cache_bytes = int(os.environ.get("VM_JIT_CODE_CACHE", CODE_CACHE_BYTES))
        #: the bound on native code: two generations of at most half of it each
        self.code_cache_bytes = max(4096, code_cache_bytes)
        self._old_compiler: JitCompiler | None = None
        #: compiles the blocks with atomics, on the guest's thread (never evicted: few)
        self._now_compiler: JitCompiler | None = None
        #: retired compilers, each with the runs that may still be inside its code
        self._graveyard: list[tuple[JitCompiler, set[int]]] = []
        self.native: dict[int, _Native] = {}
        self.pages: dict[int, set[int]] = {}
        self.counts: dict[int, int] = {}
        self.failed: set[int] = set()
        #: blocks known to have no atomics (``_atomics_first``)
        self._no_atomics: set[int] = set()
        self.native_insns = 0
        self.native_blocks = 0
        self.compile_seconds = 0.0
        layout = frontend.state_layout
        self.struct = StateStruct(layout)
        self._scalars = [f.name for f in layout.fields if f.count is None and f.type.bytes <= 8]
        self._arrays = [f.name for f in layout.fields if f.count is not None
                        and f.type.bytes <= 8]
        self._wide = [f for f in layout.fields if f.type.bytes > 8]
        self._active: dict[int, _Run] = {}
        #: ids of guest states ``kick``ed while no run of theirs was active (or about to be)
        self._kicked: set[int] = set()
        self._trampolines: dict[str, Any] = {}
        #: held while the tables of compiled code change (guest threads share the engine)
        self._lock = threading.RLock()
        self._memory: Any = None
        self._perms: Any = None
        self._succ: dict[int, tuple[LiftedBlock, list[int]]] = {}
        #: pc -> the record of its code in ``native`` (``_retire_records``)
        self._live_records: dict[int, Any] = {}
        #: every block record ever made: link cells may point at any, so none is freed
        self._records: list[Any] = []
        if background is None:  # VM_JIT_BACKGROUND=0: compile on the running thread
            background = os.environ.get("VM_JIT_BACKGROUND", "1") != "0"
        #: compile on a thread of its own while the guest runs on (the GIL is released
        #: while LLVM works)
        self.background = background
        self._pending: set[int] = set()
        self._generation = 0
        self._reset_worker()
        _engines.add(self)
        #: the native loop over compiled blocks (None: chain them in Python)
        self.dispatcher: Dispatcher | None = None
        pc = self.struct.fields.get("pc")
        if native_dispatch and pc is not None and pc.count is None and pc.elem_bytes == 8:
            self.dispatcher = Dispatcher(pc.offset)

    # -- the interpreter's hooks --------------------------------------------------------------
    @property
    def on_translate(self) -> Callable[[LiftedBlock], None] | None:
        return self.interp.on_translate

    @on_translate.setter
    def on_translate(self, value: Callable[[LiftedBlock], None] | None) -> None:
        self.interp.on_translate = value

    @property
    def trace(self) -> Callable[[int, LiftedBlock], None] | None:
        return self.interp.trace

    @trace.setter
    def trace(self, value: Callable[[int, LiftedBlock], None] | None) -> None:
        self.interp.trace = value

    @property
    def compiler(self) -> JitCompiler:
        with _compiler_lock:  # one per engine, even when two threads ask at once
            if self._compiler is None:
                self._compiler = self._new_compiler()
            return self._compiler

    def _new_compiler(self) -> JitCompiler:
        # blocks chain to each other, unless regions are wanted: they start from the
        # dispatcher's counters, which chained blocks go past
        return JitCompiler(opt_level=self.opt_level, chain=not self.promote_after)

    # -- state synchronisation ----------------------------------------------------------------
    def _to_native(self, state: Any, buf: Any) -> None:
        for name in self._scalars:
            setattr(buf, name, getattr(state, name))
        for name in self._arrays:
            getattr(buf, name)[:] = getattr(state, name)
        for f in self._wide:
            value = getattr(state, f.name)
            if f.count is None:
                self.struct.write(buf, f.name, value)
            else:
                for i, v in enumerate(value):
                    self.struct.write(buf, (f.name, i), v)

    def _new_buf(self) -> Any:
        """A state struct for a run, with typed views of its array fields (``tolist`` on a
        memoryview reads a register file about 5 times faster than a ctypes array slice)."""
        buf = self.struct.new()
        raw = memoryview(buf).cast("B")
        cls = type(buf)
        views = []
        for name in self._arrays:
            place = getattr(cls, name)
            code = type(getattr(buf, name))._type_._type_
            views.append((name, raw[place.offset:place.offset + place.size].cast(code)))
        buf.array_views = views
        return buf

    def _from_native(self, buf: Any, state: Any) -> None:
        for name in self._scalars:
            setattr(state, name, getattr(buf, name))
        for name, view in buf.array_views:
            getattr(state, name)[:] = view.tolist()
        for f in self._wide:
            if f.count is None:
                setattr(state, f.name, self.struct.read(buf, f.name))
            else:
                getattr(state, f.name)[:] = [self.struct.read(buf, (f.name, i))
                                             for i in range(f.count)]

    # -- helpers ------------------------------------------------------------------------------
    def _trampoline(self, name: str, decl: Any) -> Any:
        key = f"{name}/{decl.params}/{decl.result}"
        entry = self._trampolines.get(key)
        if entry is not None:
            return entry
        params, result = list(decl.params), decl.result
        readers = [_slot_reader(t) for t in params]
        impl = self.helpers.get(name)
        engine = self

        def call(ctx_address: int, args_address: int, ret_address: int) -> int:
            run = engine._active[ctx_address]
            try:
                if impl is None:
                    raise EngineError(f"helper @{name} has no implementation")
                args = [read(args_address + 16 * i) for i, read in enumerate(readers)]
                value = impl(run.hctx, *args)  # its state is a view of the state struct
                if result is not None:
                    ctypes.memmove(ret_address,
                                   (int(value) & result.mask).to_bytes(16, "little"), 16)
                return 0
            except GuestTrap as trap:
                return _trap_status(run, trap.kind, trap.addr)
            except GuestMemoryError as fault:
                return _trap_status(run, "mem_fault", fault.fault_addr)
            except MemoryFault as fault:
                return _trap_status(run, "mem_fault", fault.addr)
            except BaseException as exc:  # a ctypes callback cannot raise
                run.error = exc
                return STATUS_ERROR

        entry = HELPER_FN(call)
        self._trampolines[key] = entry
        return entry

    def _helper_table(self, module: Any) -> Any:
        entries = [self._trampoline(name, decl) for name, decl in module.helpers.items()]
        addresses = [ctypes.cast(e, ctypes.c_void_p).value for e in entries]
        return (ctypes.c_void_p * max(len(addresses), 1))(*addresses)

    # -- compilation --------------------------------------------------------------------------
    @_locked
    def _compile_hot(self, trigger: int) -> None:
        """Compile the hot block just found and the other warm ones, as one batch (each a
        function of its own: self-loops stay in it; ``_promote`` makes larger regions)."""
        t0 = time.thread_time()
        warm = self.hot_runs // 4
        candidates = sorted((pc for pc, n in self.counts.items()
                             if n >= warm and pc not in self.native and pc not in self.failed
                             and pc not in self._pending and pc in self.interp._blocks),
                            key=lambda pc: (pc != trigger, -self.counts[pc]))[:BATCH_MAX]
        blocks = [self.interp._blocks[pc].block for pc in candidates]
        try:
            singles = [Region((RegionMember(b.module, b.func, b.pc, b.insns),))
                       for b in blocks]
            if self.background:
                for region in singles:  # each at its own heat
                    self._submit([region], self.counts.get(region.members[0].pc, 0))
            else:
                self._submit(singles, 0)
        finally:
            if not self.background:
                self._count_compile(time.thread_time() - t0)

    def _atomics_first(self, pc: int, memory: Any) -> _Native | None:
        """While another guest thread is in the engine, a block with atomics never runs on
        the interpreter: it is compiled here and now. The interpreter's atomics are atomic
        among themselves only, not with the host atomics of compiled code on another thread.
        (With the compile thread, a lone guest thread does not wait for this: llvmlite runs
        one LLVM call at a time, and the compile thread's can be long.) A block found to have
        none goes into ``_no_atomics``, and is not looked at again."""
        info = self.interp._blocks.get(pc)
        if info is None:
            try:
                self.interp.translate(pc, memory)
            except Exception:
                return None
            info = self.interp._blocks.get(pc)
        if info is None:
            return None
        if not _has_atomics(info.block.func):
            self._no_atomics.add(pc)
            return None
        with self._lock:
            if pc not in self.native:
                b = info.block
                # with a compiler of its own: the compile thread's may be busy for a while
                with _compiler_lock:
                    if self._now_compiler is None:
                        self._now_compiler = self._new_compiler()
                self._install(self._compile_regions(
                    [Region((RegionMember(b.module, b.func, b.pc, b.insns),))],
                    self._now_compiler))
        return self.native.get(pc)

    @_locked
    def _promote(self, head: int) -> None:
        """``head`` ran ``PROMOTE_AFTER`` times natively: compile it with the blocks its
        constant exits lead to that are hot too (breadth first) as one region."""
        t0 = time.thread_time()
        try:
            nat = self.native.get(head)
            if nat is not None:
                nat.region = True  # one try per block
            dispatcher = self.dispatcher
            assert dispatcher is not None
            blocks = self.interp._blocks
            warm = self.hot_runs // 4

            def hot(pc: int) -> bool:
                count = dispatcher.count(pc)
                if count is None:
                    return self.counts.get(pc, 0) >= warm
                runs = count - NEVER if count < NEVER // 2 else count + self.promote_after
                return runs >= self.promote_after // 16

            region = self._region(head, hot) if head in blocks else None
            if region is not None and len(region.members) > 1:
                self._submit([region], float(self.promote_after + self.hot_runs))
        finally:
            if not self.background:
                self._count_compile(time.thread_time() - t0)

    def _region(self, head: int, hot: Callable[[int], bool]) -> Region:
        """``head`` and the ``hot`` blocks its constant exits lead to, breadth first."""
        blocks = self.interp._blocks
        helpers = list(blocks[head].block.module.helpers)
        members = [head]
        seen = {head}
        i = 0
        while i < len(members) and len(members) < REGION_MAX:
            for succ in self._successors(blocks[members[i]].block):
                if succ in seen or len(members) >= REGION_MAX:
                    continue
                seen.add(succ)
                info = blocks.get(succ)
                if (info is not None and succ not in self.failed and hot(succ)
                        and list(info.block.module.helpers) == helpers):
                    members.append(succ)
            i += 1
        return Region(tuple(RegionMember(b.module, b.func, b.pc, b.insns)
                            for b in (blocks[pc].block for pc in members)))

    def _successors(self, block: LiftedBlock) -> list[int]:
        """The pcs a lifted block's ``exit``s name as constants (either arm of a select)."""
        cached = self._succ.get(block.pc)
        if cached is not None and cached[0] is block:
            return cached[1]
        defs = {}
        out: list[int] = []
        for b in block.func.blocks:
            for inst in b.insts:
                if inst.result is not None:
                    defs[inst.result] = inst
                if inst.op.name != "exit":
                    continue
                d = defs.get(inst.args[0])
                arms = [d] if d is not None and d.op.name == "iconst" else (
                    [defs.get(a) for a in d.args[1:]] if d is not None and d.op.name == "select"
                    else [])
                out += [int(a.imms["imm"]) for a in arms
                        if a is not None and a.op.name == "iconst"]
        self._succ[block.pc] = (block, out)
        return out

    def _submit(self, regions: list[Region], priority: float) -> None:
        """Compile ``regions``: on the compile thread, hottest first (installed by
        ``_drain`` when done), or here and now without one."""
        if not regions:
            return
        if not self.background:
            self._install(self._compile_regions(regions))
            return
        with self._wanted_cv:
            for region in regions:
                head = region.members[0].pc
                self._pending.add(head)
                self._wanted[head] = (priority, self._generation, region)
            if self._worker is None or not self._worker.is_alive():
                # The compile thread needs the GIL back after each LLVM call (a batch makes
                # dozens), and the guest's thread keeps it for the whole switch interval (5 ms
                # by default) when it runs Python: hot code waited twice as long for its
                # native code. Ask for the GIL to change hands more often.
                sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
                self._worker = threading.Thread(target=self._work, name="vm-jit-compile",
                                                daemon=True)
                self._worker.start()
            self._wanted_cv.notify()

    def _bump(self, pc: int, priority: float) -> None:
        """A block waiting to be compiled is still running hot: move it up the queue."""
        with self._wanted_cv:
            entry = self._wanted.get(pc)
            if entry is not None and entry[0] < priority:
                self._wanted[pc] = (priority, entry[1], entry[2])

    def _work(self) -> None:
        while True:
            with self._wanted_cv:
                while not self._wanted:
                    self._wanted_cv.wait()
                # hottest first, in batches small enough to come back soon (a batch is
                # installed whole)
                chosen = []
                cost = 0
                for pc, entry in sorted(self._wanted.items(), key=lambda kv: -kv[1][0]):
                    if chosen and (cost >= BATCH_INSNS or len(chosen) >= BATCH_MAX):
                        break
                    chosen.append((pc, entry))
                    cost += sum(m.insns for m in entry[2].members)
                for pc, _ in chosen:
                    del self._wanted[pc]
            entries = [(generation, region) for _, (_, generation, region) in chosen]
            with self._gate:
                t0 = time.thread_time()
                try:
                    results: Any = self._compile_regions([r for _, r in entries])
                except BaseException as exc:
                    results = exc
                self._count_compile(time.thread_time() - t0)
            self._done.append((entries, results))

    def _count_compile(self, seconds: float) -> None:
        self.compile_seconds += seconds
        self.stats.compile_seconds += seconds
        self.stats.translate_seconds += seconds

    def _drain(self) -> None:
        """Install what the compile thread finished (code of a generation that saw an
        invalidation is dropped: it may be of code since changed)."""
        with self._lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        while self._done:
            entries, results = self._done.popleft()
            for _, region in entries:
                self._pending.discard(region.members[0].pc)
            if isinstance(results, BaseException):
                raise EngineError(f"the JIT's compile thread failed: {results!r}") from results
            generations = {r.members[0].pc: g for g, r in entries}
            self._install([(region, fn) for region, fn in results
                           if generations.get(region.members[0].pc) == self._generation])

    def _compile_regions(self, regions: list[Region], compiler: JitCompiler | None = None
                         ) -> list[tuple[Region, Any | None]]:
        """Each region with its compiled function, or None where the lowering refuses it."""
        compiler = compiler or self.compiler
        try:
            compiled = compiler.compile(regions)
        except LoweringError:
            if len(regions) == 1:
                region = regions[0]
                if len(region.members) == 1:
                    return [(region, None)]
                # a member the lowering refuses: the head alone
                return self._compile_regions([Region(region.members[:1])], compiler)
            half = len(regions) // 2  # find the region(s) the lowering refuses
            return (self._compile_regions(regions[:half], compiler)
                    + self._compile_regions(regions[half:], compiler))
        return list(zip(regions, compiled, strict=True))

    def _install(self, results: list[tuple[Region, Any | None]]) -> None:
        for region, fn in results:
            head = region.members[0]
            if fn is None or fn.state.size != self.struct.size:
                self.failed.add(head.pc)
                continue
            info = self.interp._blocks.get(head.pc)
            if info is None:
                continue  # dropped meanwhile
            native = _Native(head.pc, info.block.length, head.insns, fn.entry,
                             self._helper_table(head.module), fn.address)
            native.region = len(region.members) > 1
            native.compiled = fn  # keeps its code (its compiler) alive
            native.record = RECORD(head.pc, fn.address, native.helpers)
            self._records.append(native.record)
            self.native[head.pc] = native
            for member in region.members:
                member_info = self.interp._blocks.get(member.pc)
                length = member_info.block.length if member_info is not None else 1
                for page in range(member.pc >> PAGE_SHIFT,
                                  ((member.pc + max(length, 1) - 1) >> PAGE_SHIFT) + 1):
                    self.pages.setdefault(page, set()).add(head.pc)
            self.stats.blocks_compiled += 1
            if len(region.members) > 1:
                self.stats.regions_compiled += 1
        held = sum(c.code_bytes for c in (self._old_compiler, self._compiler) if c is not None)
        compiler = self._compiler
        if compiler is not None and (compiler.code_bytes > self.code_cache_bytes // 2
                                     or held > self.code_cache_bytes):
            self._retire()
            held = sum(c.code_bytes for c in (self._old_compiler, self._compiler)
                       if c is not None)
        self.stats.code_bytes = held
        self._rebuild()

    def _retire(self) -> None:
        """The code cache is full: drop the older generation of native code (what was
        compiled before the current compiler began; its hot blocks come back through the
        interpreter and are compiled again) and start a new generation."""
        old = self._old_compiler
        if old is not None:
            evicted = [pc for pc, n in self.native.items()
                       if n.compiled is not None and n.compiled.compiler is old]
            for pc in evicted:
                self.native.pop(pc)
                self.counts.pop(pc, None)
            for page in list(self.pages):
                heads = self.pages[page]
                heads.difference_update(evicted)
                if not heads:
                    del self.pages[page]
            self.stats.evictions += len(evicted)
            # another guest thread may be running its code: freed when those runs end
            self._graveyard.append((old, set(self._active)))
        with _compiler_lock:
            self._old_compiler, self._compiler = self._compiler, None

    def _rebuild(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.rebuild({pc: (n.address, -self.promote_after
                                          if self.promote_after and not n.region else NEVER,
                                          n.helpers, ctypes.addressof(n.record))
                                     for pc, n in self.native.items()})
        self._retire_records()

    def _retire_records(self) -> None:
        """Zero the function word of the records of code that is no longer in ``native``
        (dropped, evicted or replaced): a link cell still pointing at one then stops
        chaining there. Records themselves are never freed (a cell may point at any)."""
        live = {pc: n.record for pc, n in self.native.items()}
        for pc, record in self._live_records.items():
            if live.get(pc) is not record:
                record[1] = 0
        self._live_records = live

    def _reset_worker(self) -> None:
        #: head pc -> (priority, generation, region): what the compile thread is to do
        self._wanted: dict[int, tuple[float, int, Region]] = {}
        self._wanted_cv = threading.Condition()
        self._done: collections.deque = collections.deque()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        #: held while a batch compiles; a fork waits for it (the child gets no half-built code)
        self._gate = threading.Lock()
        self._pending.clear()

    def _forget_wanted(self) -> None:
        with self._wanted_cv:
            for pc in self._wanted:
                self._pending.discard(pc)
            self._wanted.clear()

    # -- invalidation -------------------------------------------------------------------------
    @_locked
    def invalidate(self, start: int, length: int) -> None:
        self._generation += 1
        self._forget_wanted()
        self.interp.invalidate(start, length)
        self._no_atomics.clear()  # rewritten code may have atomics now
        if length <= 0 or not self.pages:
            return
        first, last = start >> PAGE_SHIFT, (start + length - 1) >> PAGE_SHIFT
        pages = [p for p in self.pages if first <= p <= last]
        for page in pages:
            for pc in self.pages.pop(page, ()):
                n = self.native.pop(pc, None)
                self.counts.pop(pc, None)
                if n is not None:
                    self.stats.invalidations += 1
        self._rebuild()

    @_locked
    def invalidate_all(self) -> None:
        self._generation += 1
        self._forget_wanted()
        self.interp.invalidate_all()
        self.stats.invalidations += len(self.native)
        self.native.clear()
        self.pages.clear()
        self.counts.clear()
        self.failed.clear()
        self._no_atomics.clear()
        self._rebuild()

    def step(self, state: Any, memory: Any) -> Trap | None:
        return self.interp.step(state, memory)

    # -- execution ----------------------------------------------------------------------------
    def _perms_of(self, memory: Any) -> tuple[int, int, int]:
        if self._memory is not memory:
            direct = memory.direct_access()
            if direct is None:
                raise EngineError("the JIT needs a little-endian host")
            perms = direct["perms"]
            self._perms = (ctypes.c_uint8 * len(perms)).from_buffer(perms)
            self._memory = memory
            if self.native:  # compiled code is not bound to a memory, but be safe
                self.invalidate_all()
        return memory.base, memory.size, ctypes.addressof(self._perms)

    def kick(self, state: Any) -> None:
        """Make the ``run`` of ``state`` (on another thread, now or about to start) return
        soon: native code stops at its next block exit or loop edge, the interpreter before
        its next block. A caller therefore need not bound ``run`` with ``max_insns`` to look
        at its signals now and then: it kicks the thread that should."""
        self._kicked.add(id(state))
        for run in list(self._active.values()):
            if run.state is state:
                run.stop()

    def run(self, state: Any, memory: Any, *, max_insns: int | None = None) -> Trap | None:
        mem_host, mem_size, perms = self._perms_of(memory)
        budget = max_insns if max_insns is not None else 1 << 62
        buf = self._new_buf()
        run = _Run(buf, state, HelperContext(_StateView(self.struct, buf), memory, self.interp))
        ctx = run.ctx
        ctx.state = ctypes.addressof(buf)
        ctx.mem_host = mem_host
        ctx.mem_guest = 0
        ctx.mem_size = mem_size
        ctx.perms = perms
        key = ctypes.addressof(ctx)
        self._active[key] = run
        if id(state) in self._kicked:  # kicked on its way here: see ``kick``
            run.stop()
        interp = self.interp
        stats = self.stats
        native = self.native
        native_get = native.get
        counts = self.counts
        hot = self.hot_runs
        in_native = False
        dispatcher = self.dispatcher
        done = self._done
        io = Io()
        insns = 0
        nblocks = 0
        ninsns = 0
        misses = 0
        pending = self._pending
        failed = self.failed
        bump = self._bump
        active = self._active
        plain = self._no_atomics

        def gate(pc: int) -> bool:
            """Whether the interpreter, about to run ``pc``, hands it back to this loop: it is
            native, compiled code waits to be installed, or it is due a decision here (its
            first run, it became hot, or it may have atomics while another guest thread is
            in the engine). Else its run is counted here and the interpreter goes on, so that
            code waiting for its native version runs block after block without a round trip
            through this loop."""
            if done or run.stopped or pc in native:
                return True
            if len(active) > 1 and pc not in plain and pc not in failed:
                return True
            n = counts.get(pc, 0) + 1
            waiting = pc in pending or pc in failed
            if n == 1 or (n >= hot and not waiting):
                return True
            counts[pc] = n
            if waiting and not n & 63:
                bump(pc, n)
            return False

        pc = state.pc
        try:
            while insns < budget and not run.stopped:
                if done:
                    self._drain()
                nat = native_get(pc)
                if nat is None:
                    n = counts.get(pc, 0) + 1
                    counts[pc] = n
                    if pc not in plain and pc not in failed and (
                            len(active) > 1 or (n == 1 and not self.background)):
                        nat = self._atomics_first(pc, memory)
                    if nat is None and n >= hot and pc not in self.failed and pc in interp._blocks:
                        if pc not in self._pending:
                            self._compile_hot(pc)
                        elif not n & 63:
                            self._bump(pc, n)
                        nat = native_get(pc)
                if nat is None:
                    if in_native:
                        self._from_native(buf, state)
                        in_native = False
                    state.pc = pc
                    before, blocks_before = stats.insns, stats.blocks_executed
                    trap = interp.run(state, memory, max_insns=budget - insns, gate=gate)
                    insns += stats.insns - before
                    misses += stats.blocks_executed - blocks_before
                    if trap is not None:
                        return trap
                    pc = state.pc
                    continue
                if not in_native:
                    self._to_native(state, buf)
                    in_native = True
                if dispatcher is not None:
                    io.pc = pc
                    io.left = budget - insns
                    io.ran = io.blocks = 0
                    status = dispatcher.run(key, io)
                    insns += io.ran
                    ninsns += io.ran
                    nblocks += io.blocks
                    if status == STATUS_EXITED and io.blocks:
                        pc = io.pc
                        continue
                    if status == STATUS_HOT:
                        self._promote(io.pc)
                        pc = io.pc
                        continue
                if dispatcher is None or status == STATUS_EXITED:  # one block from Python
                    buf.pc = pc
                    ctx.helpers = nat.helpers
                    left = max(budget - insns, 1)
                    ctx.user = left
                    status = nat.fn(key)
                    ran = left - ctx.user
                    insns += ran
                    ninsns += ran
                    nblocks += 1
                    if status == STATUS_EXITED:
                        pc = ctx.exit_pc
                        continue
                # a trap or an error: the state struct holds the pc of the faulting insn
                self._from_native(buf, state)
                in_native = False
                if status == STATUS_CODE_WRITE:
                    # a store into translated code: the interpreter runs it (the memory
                    # drops the translations of the page), then on as usual
                    stats.count_exit("code_write")
                    before = stats.insns
                    trap = interp.step(state, memory)
                    insns += stats.insns - before
                    if trap is not None:
                        return trap
                    pc = state.pc
                    continue
                if status == STATUS_ERROR:
                    error, run.error = run.error, None
                    if error is None:
                        raise EngineError(f"native block at {pc:#x} failed")
                    raise error
                if STATUS_TRAP <= status < STATUS_TRAP + len(TRAP_STATUS):
                    kind = TrapKind(trap_kind(status))
                    stats.count_exit(kind.value)
                    addr = ctx.trap_addr if ctx.trap_flags & 1 else None
                    if kind is TrapKind.MEM_FAULT and addr is None:
                        return Trap(kind, state.pc, addr=state.pc, detail="exec")
                    return Trap(kind, state.pc, addr=addr)
                raise EngineError(f"native block at {pc:#x} returned status {status}")
            if in_native:
                self._from_native(buf, state)
                in_native = False
            state.pc = pc
            return None
        finally:
            if in_native:
                self._from_native(buf, state)
            del self._active[key]
            self._kicked.discard(id(state))
            if self._graveyard:
                with self._lock:
                    for _, runs in self._graveyard:
                        runs.discard(key)
                    self._graveyard = [(c, runs) for c, runs in self._graveyard if runs]
            stats.insns += ninsns
            stats.blocks_executed += nblocks
            stats.native_insns += ninsns
            stats.native_blocks += nblocks
            stats.cache_misses += misses
            self.native_insns += ninsns
            self.native_blocks += nblocks


_engines: weakref.WeakSet[JitEngine] = weakref.WeakSet()


def _before_fork() -> None:
    for engine in list(_engines):
        engine._gate.acquire()


def _after_fork_parent() -> None:
    for engine in list(_engines):
        engine._gate.release()


def _after_fork_child() -> None:
    # the compile thread is not in the child: jobs it had are forgotten (their blocks are
    # compiled again when hot), and what it finished is installed as usual
    for engine in list(_engines):
        engine._reset_worker()


def _at_exit() -> None:
    # LLVM must not be compiling while the process tears its libraries down: wait for the
    # batch in progress, and take no other
    for engine in list(_engines):
        engine._gate.acquire()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                    after_in_child=_after_fork_child)
atexit.register(_at_exit)


def _slot_reader(t: Any) -> Callable[[int], int]:
    if t.bytes <= 8:
        mask = t.mask
        from_address = ctypes.c_uint64.from_address
        return lambda address: from_address(address).value & mask
    return lambda address: read_slot(address, 0, t)


class _StateView:
    """The state struct as helpers see a ``CpuState`` (``state["fflags"]``,
    ``state["x", 3]``, ``state[FieldRef]``) while native code runs."""

    __slots__ = ("_buf", "_masks", "_struct", "_wide", "layout")

    def __init__(self, struct: StateStruct, buf: Any) -> None:
        self._struct = struct
        self._buf = buf
        self.layout = struct.layout
        self._masks = {f.name: f.type.mask for f in struct.layout.fields}
        self._wide = {f.name for f in struct.layout.fields if f.type.bytes > 8}

    def _key(self, key: Any) -> tuple[str, int | None]:
        if key.__class__ is str:
            return key, None
        if isinstance(key, FieldRef):
            return key.name, key.index
        return key[0], key[1]

    def __getitem__(self, key: Any) -> int:
        name, index = self._key(key)
        if name in self._wide:
            return self._struct.read(self._buf, name if index is None else (name, index))
        value = getattr(self._buf, name)
        return int(value if index is None else value[index])

    def __setitem__(self, key: Any, value: int) -> None:
        name, index = self._key(key)
        if name in self._wide:
            self._struct.write(self._buf, name if index is None else (name, index), value)
            return
        value &= self._masks[name]
        if index is None:
            setattr(self._buf, name, value)
        else:
            getattr(self._buf, name)[index] = value

    def __getattr__(self, name: str) -> Any:
        if name in self._masks:
            return self[name]
        raise AttributeError(name)


def _trap_status(run: _Run, kind: str, addr: int | None) -> int:
    if kind not in TRAP_STATUS:
        run.error = EngineError(f"a helper raised GuestTrap({kind!r}), not a trap kind")
        return STATUS_ERROR
    run.ctx.trap_addr = (addr or 0) & ((1 << 64) - 1)
    run.ctx.trap_flags = 1 if addr is not None else 0
    return TRAP_STATUS[kind]


__all__ = ["HOT_RUNS", "JitEngine"]
