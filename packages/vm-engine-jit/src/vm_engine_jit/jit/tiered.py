"""``JitEngine``: the interpreter for cold blocks, LLVM-compiled code for hot ones.

    engine = JitEngine(frontend)
    trap = engine.run(state, memory)     # the same API as InterpEngine

A block runs on the interpreter (``InterpEngine``, one block per call) until it has been
dispatched ``hot_runs`` times; then it and the other warm blocks are compiled in one batch by
``JitCompiler`` and run natively from then on. Guest state lives in a native ``StateStruct``
while native blocks run one after another (chained by the loop in ``run``) and is copied back
to the Python ``CpuState`` when control leaves native code: before a cold block, around each
helper call, on a trap and when ``run`` returns. Guest memory is the ``AddressSpace``'s own
bytes (``base``) and permission table: a refused access is a ``mem_fault`` trap at the pc the
lifter stored before the access.

Limits of this first version: native stores do not check the ``CODE`` bit of a page, so guest
code that overwrites already-compiled code through a native store is not invalidated (stores
from the interpreter and the kernel still are); native atomics are host atomics, not under the
interpreter's atomic lock.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from vm_core import GuestMemoryError, LiftedBlock, Trap, TrapKind
from vm_ir import FieldRef, GuestTrap, MemoryFault

from ..interp.engine import EngineError, HelperContext, InterpEngine
from .abi import (
    HELPER_FN,
    STATUS_ERROR,
    STATUS_EXITED,
    STATUS_TRAP,
    TRAP_STATUS,
    JitContext,
    StateStruct,
    read_slot,
    trap_kind,
)
from .dispatch import Dispatcher, Io
from .engine import JitCompiler
from .lower import LoweringError

PAGE_SHIFT = 12
#: dispatches of a block before it is compiled
HOT_RUNS = 50
#: at most this many blocks in one compile batch
BATCH_MAX = 64


class _Native:
    __slots__ = ("address", "fn", "helpers", "insns", "length", "pc", "table")

    def __init__(self, pc: int, length: int, insns: int, fn: Any, table: Any,
                 address: int) -> None:
        self.pc = pc
        self.address = address
        self.length = length
        self.insns = insns
        self.fn = fn  # the ctypes entry point
        self.table = table
        self.helpers = ctypes.addressof(table)


class _Run:
    """One ``run`` in progress: the context block, state struct and the Python state."""

    __slots__ = ("buf", "ctx", "error", "hctx", "state")

    def __init__(self, buf: Any, state: Any, hctx: HelperContext) -> None:
        self.ctx = JitContext()
        self.buf = buf
        self.state = state
        self.hctx = hctx
        self.error: BaseException | None = None


class JitEngine:
    """The tiered engine (see the module docstring); ``hot_runs``: dispatches before a block
    is compiled (default: ``$VM_JIT_HOT_RUNS`` or ``HOT_RUNS``)."""

    name = "jit"

    def __init__(self, frontend: Any, *, hot_runs: int | None = None, max_block_insns: int = 64,
                 opt_level: int = 2, native_dispatch: bool = True) -> None:
        self.frontend = frontend
        self.interp = InterpEngine(frontend, max_block_insns=max_block_insns, regions=False)
        self.stats = self.interp.stats
        self.helpers = self.interp.helpers
        if hot_runs is None:  # VM_JIT_HOT_RUNS: for tests and experiments
            hot_runs = int(os.environ.get("VM_JIT_HOT_RUNS", HOT_RUNS))
        self.hot_runs = max(1, hot_runs)
        self.opt_level = opt_level
        self._compiler: JitCompiler | None = None
        self.native: dict[int, _Native] = {}
        self.pages: dict[int, set[int]] = {}
        self.counts: dict[int, int] = {}
        self.failed: set[int] = set()
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
        self._trampolines: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._memory: Any = None
        self._perms: Any = None
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
        if self._compiler is None:
            self._compiler = JitCompiler(opt_level=self.opt_level)
        return self._compiler

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

    def _from_native(self, buf: Any, state: Any) -> None:
        for name in self._scalars:
            setattr(state, name, getattr(buf, name))
        for name in self._arrays:
            getattr(state, name)[:] = getattr(buf, name)
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
    def _compile_hot(self) -> None:
        """Compile the hot block just found and the other warm ones, as one batch."""
        t0 = time.thread_time()
        warm = self.hot_runs // 4
        candidates = sorted((pc for pc, n in self.counts.items()
                             if n >= warm and pc not in self.native and pc not in self.failed),
                            key=lambda pc: -self.counts[pc])[:BATCH_MAX]
        blocks = []
        for pc in candidates:
            info = self.interp._blocks.get(pc)
            if info is not None:
                blocks.append(info.block)
        try:
            if blocks:
                self._compile_blocks(blocks)
        finally:
            dt = time.thread_time() - t0
            self.compile_seconds += dt
            self.stats.translate_seconds += dt

    def _compile_blocks(self, blocks: list[LiftedBlock]) -> None:
        try:
            compiled = self.compiler.compile([(b.module, b.func) for b in blocks])
        except LoweringError:
            if len(blocks) == 1:
                self.failed.add(blocks[0].pc)
                return
            half = len(blocks) // 2  # find the block(s) the lowering refuses
            self._compile_blocks(blocks[:half])
            self._compile_blocks(blocks[half:])
            return
        for block, fn in zip(blocks, compiled, strict=True):
            if fn.state.size != self.struct.size:
                self.failed.add(block.pc)
                continue
            native = _Native(block.pc, block.length, block.insns, fn.entry,
                             self._helper_table(block.module), fn.address)
            self.native[block.pc] = native
            for page in range(block.pc >> PAGE_SHIFT,
                              ((block.pc + max(block.length, 1) - 1) >> PAGE_SHIFT) + 1):
                self.pages.setdefault(page, set()).add(block.pc)
            self.stats.blocks_compiled += 1
        self._rebuild()

    def _rebuild(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.rebuild({pc: (n.address, n.insns, n.helpers)
                                     for pc, n in self.native.items()})

    # -- invalidation -------------------------------------------------------------------------
    def invalidate(self, start: int, length: int) -> None:
        self.interp.invalidate(start, length)
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

    def invalidate_all(self) -> None:
        self.interp.invalidate_all()
        self.stats.invalidations += len(self.native)
        self.native.clear()
        self.pages.clear()
        self.counts.clear()
        self.failed.clear()
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

    def run(self, state: Any, memory: Any, *, max_insns: int | None = None) -> Trap | None:
        mem_host, mem_size, perms = self._perms_of(memory)
        budget = max_insns if max_insns is not None else 1 << 62
        buf = self.struct.new()
        run = _Run(buf, state, HelperContext(_StateView(self.struct, buf), memory, self.interp))
        ctx = run.ctx
        ctx.state = ctypes.addressof(buf)
        ctx.mem_host = mem_host
        ctx.mem_guest = 0
        ctx.mem_size = mem_size
        ctx.perms = perms
        key = ctypes.addressof(ctx)
        self._active[key] = run
        interp = self.interp
        stats = self.stats
        native_get = self.native.get
        counts = self.counts
        hot = self.hot_runs
        in_native = False
        dispatcher = self.dispatcher
        io = Io()
        insns = 0
        nblocks = 0
        ninsns = 0
        pc = state.pc
        try:
            while insns < budget:
                nat = native_get(pc)
                if nat is None:
                    n = counts.get(pc, 0) + 1
                    counts[pc] = n
                    if n >= hot and pc not in self.failed and pc in interp._blocks:
                        self._compile_hot()
                        nat = native_get(pc)
                if nat is None:
                    if in_native:
                        self._from_native(buf, state)
                        in_native = False
                    state.pc = pc
                    before = stats.insns
                    trap = interp.run(state, memory, max_insns=1)
                    insns += stats.insns - before
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
                if dispatcher is None or status == STATUS_EXITED:  # one block from Python
                    buf.pc = pc
                    ctx.helpers = nat.helpers
                    status = nat.fn(key)
                    if status == STATUS_EXITED:
                        pc = ctx.exit_pc
                        insns += nat.insns
                        ninsns += nat.insns
                        nblocks += 1
                        continue
                # a trap or an error: the state struct holds the pc of the faulting insn
                self._from_native(buf, state)
                in_native = False
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
            stats.insns += ninsns
            stats.blocks_executed += nblocks
            self.native_insns += ninsns
            self.native_blocks += nblocks


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
