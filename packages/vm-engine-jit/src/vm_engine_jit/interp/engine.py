"""The interpreter tier: lift a block on first use, compile it to Python, cache it by pc, and
chain blocks in a tight loop until a trap.

    engine = InterpEngine(frontend)
    trap = engine.run(state, memory)     # -> vm_core.Trap (a syscall, a fault, ...)

Correct first; fast as Python allows. A translated block stays valid until
``invalidate(start, length)`` drops it (``fence.i``, writes to code, munmap).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vm_core import GuestMemoryError, LiftedBlock, Trap, TrapKind
from vm_ir import GuestTrap
from vm_ir.semantics import UndefinedBehavior

from .pygen import BlockFn, BlockTrap, compile_block

PAGE_SHIFT = 12


@dataclass
class EngineStats:
    """Counters an engine keeps; ``vm run --stats`` prints them."""

    insns: int = 0
    blocks_executed: int = 0
    blocks_translated: int = 0
    translate_seconds: float = 0.0
    invalidations: int = 0
    exits: dict[str, int] = field(default_factory=dict)

    def count_exit(self, reason: str) -> None:
        self.exits[reason] = self.exits.get(reason, 0) + 1


class HelperContext:
    """What a helper sees under this engine (the same shape as vm-ir's evaluator gives)."""

    __slots__ = ("engine", "memory", "state")

    def __init__(self, state: Any, memory: Any, engine: Any = None) -> None:
        self.state = state
        self.memory = memory
        self.engine = engine


class EngineError(Exception):
    """The engine itself failed on guest code (a lifter or codegen bug), with the guest pc."""


class InterpEngine:
    """Interpreter tier over any frontend (see vm_core.Frontend)."""

    name = "interp"

    def __init__(self, frontend: Any, *, max_block_insns: int = 64,
                 on_translate: Callable[[LiftedBlock], None] | None = None) -> None:
        self.frontend = frontend
        self.helpers = dict(frontend.helpers)
        self.max_block_insns = max_block_insns
        self.on_translate = on_translate
        #: pc -> (compiled block, guest instruction count)
        self.cache: dict[int, tuple[BlockFn, int]] = {}
        #: guest page -> pcs of the blocks whose code lies on it
        self.pages: dict[int, set[int]] = {}
        self.stats = EngineStats()
        self.trace: Callable[[int, LiftedBlock], None] | None = None
        self._lifted: dict[int, LiftedBlock] = {}

    # -- translation -------------------------------------------------------------------------
    def translate(self, pc: int, memory: Any) -> tuple[BlockFn, int]:
        t0 = time.perf_counter()
        block: LiftedBlock = self.frontend.lift(memory, pc, max_insns=self.max_block_insns)
        fn, _source = compile_block(block.func, block.module, self.helpers, f"{pc:#x}")
        entry = (fn, block.insns)
        self.cache[pc] = entry
        first = pc >> PAGE_SHIFT
        last = (pc + max(block.length, 1) - 1) >> PAGE_SHIFT
        for page in range(first, last + 1):
            self.pages.setdefault(page, set()).add(pc)
        self.stats.blocks_translated += 1
        self.stats.translate_seconds += time.perf_counter() - t0
        if self.on_translate is not None:
            self.on_translate(block)
        return entry

    def source_of(self, pc: int, memory: Any) -> str:
        """The Python the interpreter runs for the block at ``pc`` (for --trace and tests)."""
        block = self.frontend.lift(memory, pc, max_insns=self.max_block_insns)
        return compile_block(block.func, block.module, self.helpers, f"{pc:#x}")[1]

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
                if self.cache.pop(pc, None) is not None:
                    self.stats.invalidations += 1

    def invalidate_all(self) -> None:
        self.stats.invalidations += len(self.cache)
        self.cache.clear()
        self.pages.clear()

    # -- execution ---------------------------------------------------------------------------
    def run(self, state: Any, memory: Any, *, max_insns: int | None = None) -> Trap | None:
        """Run from ``state.pc`` until a trap (returned) or until about ``max_insns`` guest
        instructions have run (None returned; the budget is checked between blocks)."""
        cache = self.cache
        ctx = HelperContext(state, memory, self)
        budget = max_insns if max_insns is not None else -1
        insns = 0
        blocks = 0
        pc = state.pc
        try:
            while budget < 0 or insns < budget:
                entry = cache.get(pc)
                if entry is None:
                    entry = self.translate(pc, memory)
                fn, n = entry
                state.pc = pc
                pc = fn(state, memory, ctx)
                insns += n
                blocks += 1
            state.pc = pc
            return None
        except BlockTrap as trap:
            kind = TrapKind(trap.kind)
            self.stats.count_exit(kind.value)
            if kind is TrapKind.MEM_FAULT:  # an instruction fetch that faulted
                return Trap(kind, state.pc, addr=state.pc, detail="exec")
            return Trap(kind, state.pc)
        except GuestMemoryError as fault:
            self.stats.count_exit("mem_fault")
            return Trap(TrapKind.MEM_FAULT, state.pc, addr=fault.fault_addr, detail=fault.access)
        except GuestTrap as trap:  # raised by a helper
            self.stats.count_exit(trap.kind)
            return Trap(TrapKind(trap.kind), state.pc, addr=trap.addr)
        except (UndefinedBehavior, ArithmeticError, TypeError, IndexError, KeyError) as exc:
            raise EngineError(f"engine failure in the block at pc {state.pc:#x}: {exc}") from exc
        finally:
            self.stats.insns += insns
            self.stats.blocks_executed += blocks

    def step(self, state: Any, memory: Any) -> Trap | None:
        """Run one guest instruction (a one-instruction block, not cached)."""
        block = self.frontend.lift(memory, state.pc, max_insns=1)
        fn, _ = compile_block(block.func, block.module, self.helpers, "step")
        try:
            state.pc = fn(state, memory, HelperContext(state, memory, self))
        except BlockTrap as trap:
            return Trap(TrapKind(trap.kind), state.pc)
        except GuestMemoryError as fault:
            return Trap(TrapKind.MEM_FAULT, state.pc, addr=fault.fault_addr, detail=fault.access)
        self.stats.insns += 1
        return None
