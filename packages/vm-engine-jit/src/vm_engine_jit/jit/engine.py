"""Compiling batches of vm-ir functions to native code with LLVM (MCJIT through llvmlite).

    compiler = JitCompiler()
    [fn] = compiler.compile([(module, "f")])      # one LLVM module per batch, optimised at O2
    status = fn(ctx)                              # ctx: an abi.JitContext; see executor.py
    compiler.stats.per_function_ms                # lowering + LLVM time per function

A ``JitCompiler`` owns one MCJIT execution engine and the one ``TargetMachine`` it compiles with
(an LLVM target machine must not be shared between engines). Each ``compile`` call lowers its
batch into one LLVM module, optimises it with the new pass manager and adds it to the engine;
code stays valid as long as the compiler lives, and every ``CompiledFunction`` keeps its
compiler alive.

What compiling costs (``python -m vm_engine_jit.jit.bench``; CPU time on a busy 2-core x86-64
host, LLVM 22, O2): about 0.4 ms for a trivial function in a batch, 1.2 ms for a lifted block of
one guest instruction, 2.8 ms for 4, 4.3 ms for 8 and 10 ms for 24. LLVM's optimiser and code
generator take nearly all of it (lowering 5-10%), and guest memory accesses most of that: each
is a checked access with a branch (8 loads/stores cost ~7.5 ms, 8 ALU instructions ~1.7 ms). A
batch of one costs 1.5-2 times as much per function as a batch of ten or more: compile many
functions at once.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import llvmlite.binding as llvm

from vm_ir import Function, Module

from .abi import ENTRY_FN, JitContext, StateStruct
from .lower import BatchLowering, LoweringError, Region

_ids = itertools.count()

#: the passes for straight-line blocks: the state cache's ``alloca``s to SSA values, then
#: folding and dead code (the full pipeline costs about twice as much for little more here)
_QUICK = ("add_sroa_pass", "add_instruction_combine_pass", "add_simplify_cfg_pass",
          "add_dead_code_elimination_pass")
_target_lock = threading.Lock()
_target_ready = False


def _init_target() -> None:
    global _target_ready
    with _target_lock:
        if not _target_ready:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            llvm.initialize_native_asmparser()  # the empty inline asm of lower.canonical_opaque
            _target_ready = True


@dataclass
class CompileStats:
    """Where compile time went, summed over all batches (seconds)."""

    batches: int = 0
    functions: int = 0
    lower_s: float = 0.0  # vm-ir -> llvmlite.ir -> text
    parse_s: float = 0.0  # text -> LLVM module, verified
    optimize_s: float = 0.0  # the O2 pipeline
    codegen_s: float = 0.0  # machine code (MCJIT finalize)
    #: the CPU time of all of it (this process): what the wall times are on an idle host
    cpu_s: float = 0.0
    last_batch: dict[str, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.lower_s + self.parse_s + self.optimize_s + self.codegen_s

    @property
    def per_function_ms(self) -> float:
        """Wall time per function."""
        return 1000 * self.total_s / self.functions if self.functions else 0.0

    @property
    def per_function_cpu_ms(self) -> float:
        """CPU time per function."""
        return 1000 * self.cpu_s / self.functions if self.functions else 0.0


class CompiledFunction:
    """A compiled vm-ir function: ``fn(ctx)`` runs it on a ``JitContext`` and gives the status."""

    def __init__(self, compiler: JitCompiler, module: Module, function: Function, symbol: str,
                 address: int, state: StateStruct) -> None:
        self.compiler = compiler  # keeps the execution engine, and so the code, alive
        self.module = module
        self.function = function
        self.symbol = symbol
        self.address = address
        self.state = state
        self.entry = ENTRY_FN(address)
        #: its share of the batch's machine code (text and constants), in bytes
        self.code_bytes = 0

    def __call__(self, ctx: JitContext) -> int:
        return int(self.entry(ctypes.addressof(ctx)))

    def __repr__(self) -> str:
        return f"<CompiledFunction @{self.function.name} at {self.address:#x}>"


#: write ``/tmp/perf-PID.map`` (``VM_JIT_PERF_MAP=1``) so that ``perf report`` names native code
PERF_MAP = os.environ.get("VM_JIT_PERF_MAP", "0") not in ("", "0")
_perf_map_lock = threading.Lock()


def write_perf_map(functions: list[tuple[int, str]], last_size: int = 256) -> None:
    """Append ``functions`` (address, symbol) to perf's map of this process's JIT code.

    MCJIT does not say how long each function is: a function is taken to end where the next
    one of the same batch starts, the last ``last_size`` bytes after its start.
    """
    ordered = sorted(functions)
    lines = []
    for k, (address, symbol) in enumerate(ordered):
        end = ordered[k + 1][0] if k + 1 < len(ordered) else address + last_size
        lines.append(f"{address:x} {max(end - address, 1):x} {symbol}\n")
    with _perf_map_lock, open(f"/tmp/perf-{os.getpid()}.map", "a") as out:
        out.writelines(lines)


class JitCompiler:
    """Compiles batches of vm-ir functions into one MCJIT engine (see the module docstring).

    ``opt_level``: the LLVM pipeline (0-3); ``codegen_level``: instruction selection and
    register allocation (default: ``opt_level``; 0 is fast instruction selection, about half
    the compile time of 2 for slower code). ``cpu``/``features``: the target (default: the
    host's, so that e.g. ``fma`` and 16-byte ``cmpxchg`` are single instructions).
    ``chain``: a region's exits go through link cells that the native dispatcher fills, so
    that compiled blocks chain together (``lower._FunctionLowering._finish_out``).
    """

    def __init__(self, opt_level: int = 2, cpu: str | None = None,
                 features: str | None = None, codegen_level: int | None = None,
                 native_helpers: bool = True, chain: bool = True) -> None:
        _init_target()
        self.opt_level = opt_level
        self.codegen_level = opt_level if codegen_level is None else codegen_level
        if cpu is None:
            cpu = llvm.get_host_cpu_name()
        if features is None:
            features = llvm.get_host_cpu_features().flatten()
        self.cpu, self.features = cpu, features
        self.atomic128 = "+cx16" in features.split(",")
        target = llvm.Target.from_triple(llvm.get_process_triple())
        self._tm = target.create_target_machine(cpu=cpu, features=features,
                                                opt=self.codegen_level, jit=True)
        self.triple = llvm.get_process_triple()
        #: ``fp.*`` helpers as host SSE code (x86-64 only; elsewhere they call Python)
        self.native_helpers = native_helpers and self.triple.startswith("x86_64")
        #: regions' exits get link cells (``lower.BatchLowering``)
        self.chain = chain
        self.data_layout = str(self._tm.target_data)
        self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), self._tm)
        self._object_bytes = 0
        self._engine.set_object_cache(notify_func=self._object_compiled)
        #: machine code held by this compiler's engine, in bytes
        self.code_bytes = 0
        self._lock = threading.Lock()
        self._id = next(_ids)
        self._batches = 0
        self._states: dict[int, tuple[Module, StateStruct]] = {}
        self.stats = CompileStats()

    def _object_compiled(self, module: llvm.ModuleRef, buffer: bytes) -> None:
        """MCJIT's object cache hook: the size of the sections that are loaded for running."""
        size = 0
        for section in llvm.ObjectFileRef.from_data(buffer).sections():
            name = section.name() or ""
            if isinstance(name, bytes):
                name = name.decode(errors="replace")
            if section.is_text() or name.startswith((".rodata", ".data")):
                size += section.size()
        self._object_bytes += size

    def state_struct(self, module: Module) -> StateStruct:
        """The native state layout of ``module`` (one per module, cached)."""
        cached = self._states.get(id(module))
        if cached is None or cached[0] is not module:
            cached = (module, StateStruct(module.state))
            self._states[id(module)] = cached
        return cached[1]

    def lower(self, items: Iterable[tuple[Module, Function | str] | Region]
              ) -> tuple[BatchLowering, list[tuple[Module, Function, str]]]:
        """The LLVM module of a batch, unoptimised, and its (module, function, symbol)s."""
        batch = BatchLowering(f"vmjit{self._id}_{self._batches}", self.triple, self.data_layout,
                              atomic128=self.atomic128, native_helpers=self.native_helpers,
                              chain=self.chain)
        prefix = f"vmjit{self._id}.{self._batches}"
        self._batches += 1
        done = []
        for i, item in enumerate(items):
            if isinstance(item, Region):
                head = item.members[0]
                module, fn = head.module, head.func
                symbol = f"{prefix}.{i}.r{head.pc:x}"
                batch.add_region(item, symbol, self.state_struct(module))
            else:
                module, func = item
                fn = func if isinstance(func, Function) else module.functions[func]
                symbol = f"{prefix}.{i}.{fn.name}"
                batch.add(module, fn, symbol, self.state_struct(module))
            done.append((module, fn, symbol))
        return batch, done

    def llvm_ir(self, items: Iterable[tuple[Module, Function | str] | Region], optimized: bool = True
                ) -> str:
        """The LLVM IR of a batch as text (optimised as ``compile`` would), for reading."""
        with self._lock:
            batch, _ = self.lower(items)
            ref = llvm.parse_assembly(str(batch))
            if optimized:
                self._optimize(ref)
            return str(ref)

    def compile(self, items: Iterable[tuple[Module, Function | str] | Region]) -> list[CompiledFunction]:
        """Compile a batch of functions; their ``CompiledFunction``s in the same order.

        Code that loops (regions, self-loops, functions given directly) gets the full
        ``opt_level`` pipeline; straight-line blocks get a short one (``_QUICK``), as they
        are many and have little for the rest of it to find. Each kind is one LLVM module,
        and both are code-generated together."""
        items = list(items)
        with self._lock:
            c0 = time.process_time()
            s = self.stats
            kinds: dict[bool, list[int]] = {True: [], False: []}
            for i, item in enumerate(items):
                kinds[not isinstance(item, Region) or item.loops].append(i)
            compiled: list[CompiledFunction | None] = [None] * len(items)
            modules = []
            spent = {"lower_s": 0.0, "parse_s": 0.0, "optimize_s": 0.0, "codegen_s": 0.0}
            for full, indices in kinds.items():
                if not indices:
                    continue
                t0 = time.perf_counter()
                batch, done = self.lower(items[i] for i in indices)
                text = str(batch)
                t1 = time.perf_counter()
                try:
                    ref = llvm.parse_assembly(text)
                    ref.verify()
                except RuntimeError as exc:
                    raise LoweringError(f"LLVM rejected the lowered code: {exc}\n{text}") from exc
                t2 = time.perf_counter()
                self._optimize(ref, full)
                spent["lower_s"] += t1 - t0
                spent["parse_s"] += t2 - t1
                spent["optimize_s"] += time.perf_counter() - t2
                modules.append((ref, indices, done, [len(f) for f in batch.module.functions]))
            if not modules:
                return []
            t3 = time.perf_counter()
            self._object_bytes = 0
            for ref, *_ in modules:
                self._engine.add_module(ref)
            self._engine.finalize_object()
            # the objects' code, shared out by the size of each function's LLVM IR
            total = sum(sum(sizes) for *_, sizes in modules) or 1
            for _, indices, done, sizes in modules:
                for i, (module, fn, symbol), size in zip(indices, done, sizes, strict=True):
                    c = CompiledFunction(self, module, fn, symbol,
                                         self._engine.get_function_address(symbol),
                                         self.state_struct(module))
                    c.code_bytes = self._object_bytes * size // total
                    compiled[i] = c
            self.code_bytes += self._object_bytes
            if PERF_MAP:
                write_perf_map([(c.address, c.symbol) for c in compiled if c is not None])
            spent["codegen_s"] = time.perf_counter() - t3
            for name, seconds in spent.items():
                setattr(s, name, getattr(s, name) + seconds)
            s.batches += 1
            s.functions += len(items)
            s.cpu_s += time.process_time() - c0
            s.last_batch = {"functions": len(items), **spent}
            return compiled  # type: ignore[return-value]

    def compile_module(self, module: Module) -> dict[str, CompiledFunction]:
        """Every function of ``module``, compiled as one batch."""
        compiled = self.compile([(module, f) for f in module.functions.values()])
        return {c.function.name: c for c in compiled}

    def _optimize(self, ref: llvm.ModuleRef, full: bool = True) -> None:
        if self.opt_level <= 0:
            return
        pto = llvm.create_pipeline_tuning_options(speed_level=self.opt_level)
        pb = llvm.create_pass_builder(self._tm, pto)
        if full:
            pb.getModulePassManager().run(ref, pb)
            return
        pm = llvm.create_new_module_pass_manager()
        for add in _QUICK:
            getattr(pm, add)()
        pm.run(ref, pb)


__all__ = ["CompileStats", "CompiledFunction", "JitCompiler"]
