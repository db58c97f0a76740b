"""Running compiled functions from Python on the evaluator's terms: ``State`` in and out,
memory mapped natively, Python helpers called back, outcomes as ``Returned`` / ``Exited`` /
``Trapped``.

    from vm_ir.filetest import run_filetest
    from vm_engine_jit.jit import filetest_executor
    run_filetest(path, executors={"jit": filetest_executor})

``JitExecutor`` is a vm-ir filetest executor (``(module, func_name, args, state, memory,
helpers) -> Result``): it compiles each module it is given once, all its functions in one
batch. Like the evaluator it takes a ``FlatMemory`` (used in place when its buffer is aligned
as ``abi`` asks, else copied in and back) or a ``NativeMemory``. Undefined behaviour is not
reported (``reports_undefined`` is false): a division by zero gives some value.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence

from vm_ir import (
    EvaluationError,
    Exited,
    FlatMemory,
    GuestTrap,
    HelperContext,
    HelperDecl,
    Memory,
    MemoryFault,
    Module,
    Result,
    Returned,
    State,
    Trapped,
)

from .abi import (
    HELPER_FN,
    STATUS_ERROR,
    STATUS_EXITED,
    STATUS_RETURNED,
    STATUS_TRAP,
    TRAP_STATUS,
    JitContext,
    StateView,
    new_slots,
    read_slot,
    trap_kind,
    write_slot,
)
from .engine import CompiledFunction, JitCompiler
from .memory import NativeMemory

Helper = object  # a Python callable (HelperContext, *args) -> int | None


class _Invocation:
    """One native call in progress: its context block and what its helpers see."""

    def __init__(self, helper_ctx: HelperContext) -> None:
        self.ctx = JitContext()
        self.helper_ctx = helper_ctx
        self.error: BaseException | None = None


#: invocations in progress, by the address of their context block (helpers get that address)
_ACTIVE: dict[int, _Invocation] = {}


def _trap(inv: _Invocation, kind: str, addr: int | None) -> int:
    if kind not in TRAP_STATUS:
        inv.error = EvaluationError(f"a helper raised GuestTrap({kind!r}), not a trap kind")
        return STATUS_ERROR
    inv.ctx.trap_addr = (addr or 0) & ((1 << 64) - 1)
    inv.ctx.trap_flags = 1 if addr is not None else 0
    return TRAP_STATUS[kind]


def _trampoline(name: str, decl: HelperDecl, impls: Mapping[str, object]) -> object:
    """A native helper entry (``abi.HELPER_FN``) calling ``impls[name]`` (looked up per call)."""
    params, result = list(decl.params), decl.result

    def call(ctx_address: int, args_address: int, ret_address: int) -> int:
        inv = _ACTIVE[ctx_address]
        try:
            impl = impls.get(name)
            if impl is None:
                raise EvaluationError(f"helper @{name} has no implementation here")
            args = [read_slot(args_address, i, t) for i, t in enumerate(params)]
            value = impl(inv.helper_ctx, *args)  # type: ignore[operator]
            if result is not None:
                if not isinstance(value, int):
                    raise EvaluationError(f"helper @{name} returned {value!r}, not an int")
                ctypes.memmove(ret_address, (value & result.mask).to_bytes(16, "little"), 16)
            return 0
        except GuestTrap as trap:
            return _trap(inv, trap.kind, trap.addr)
        except MemoryFault as fault:
            return _trap(inv, "mem_fault", fault.addr)
        except BaseException as exc:  # a ctypes callback cannot raise: keep it for the caller
            inv.error = exc
            return STATUS_ERROR

    return HELPER_FN(call)


class HelperTable:
    """The native helper table of a module: one entry per declared helper, in declaration
    order, each calling the Python implementation of the same name (a missing one raises
    ``EvaluationError`` when called, as in the evaluator)."""

    def __init__(self, module: Module, impls: Mapping[str, object]) -> None:
        self.entries = [_trampoline(name, decl, impls) for name, decl in module.helpers.items()]
        addresses = [ctypes.cast(e, ctypes.c_void_p).value for e in self.entries]
        self.table = (ctypes.c_void_p * max(len(addresses), 1))(*addresses)

    @property
    def address(self) -> int:
        return ctypes.addressof(self.table)


def run(fn: CompiledFunction, args: Sequence[int] = (), *, state: State | None = None,
        memory: Memory | None = None, helpers: Mapping[str, object] | HelperTable | None = None,
        ) -> Result:
    """Run a compiled function like ``vm_ir.evaluate``: ``state`` is read before and written
    back after (also on a trap), ``memory`` (a ``FlatMemory`` or ``NativeMemory``; none: every
    access faults) is used in place or copied back."""
    module, func = fn.module, fn.function
    if len(args) != len(func.params):
        raise EvaluationError(f"@{func.name} takes {len(func.params)} argument(s), "
                              f"got {len(args)}")
    if state is None:
        state = State(module.state)
    copied_from: FlatMemory | None = None
    if memory is None:
        native = NativeMemory.aligned(0)
    elif isinstance(memory, NativeMemory):
        native = memory
    elif isinstance(memory, FlatMemory):
        native, copied = NativeMemory.over_flat(memory)
        copied_from = memory if copied else None
    else:
        raise TypeError(f"the JIT runs on FlatMemory or NativeMemory, not {type(memory).__name__}")
    table = helpers if isinstance(helpers, HelperTable) else HelperTable(module, helpers or {})
    struct = fn.state
    buf = struct.new()
    struct.load(buf, state)
    inv = _Invocation(HelperContext(StateView(struct, buf), native, module))  # type: ignore[arg-type]
    ctx = inv.ctx
    arg_slots = new_slots(len(args))
    for i, (value, t) in enumerate(zip(args, func.params, strict=True)):
        write_slot(arg_slots, i, value, t)
    ret_slots = new_slots(len(func.returns))
    ctx.state = ctypes.addressof(buf)
    native.fill_context(ctx)
    ctx.args = ctypes.addressof(arg_slots)
    ctx.rets = ctypes.addressof(ret_slots)
    ctx.helpers = table.address
    key = ctypes.addressof(ctx)
    _ACTIVE[key] = inv
    try:
        status = fn(ctx)
    finally:
        del _ACTIVE[key]
        struct.store(buf, state)
        if copied_from is not None:
            native.copy_back(copied_from)
    if status == STATUS_RETURNED:
        base = ctypes.addressof(ret_slots)
        return Returned(tuple(read_slot(base, i, t) for i, t in enumerate(func.returns)))
    if status == STATUS_EXITED:
        return Exited(ctx.exit_pc)
    if status == STATUS_ERROR:
        assert inv.error is not None
        raise inv.error
    if STATUS_TRAP <= status < STATUS_TRAP + len(TRAP_STATUS):
        return Trapped(trap_kind(status), ctx.trap_addr if ctx.trap_flags & 1 else None)
    raise EvaluationError(f"@{func.name} returned an unknown status {status}")


class JitExecutor:
    """A vm-ir filetest executor running the JIT (see the module docstring)."""

    reports_undefined = False

    def __init__(self, compiler: JitCompiler | None = None) -> None:
        self._compiler = compiler
        self._modules: dict[int, tuple[Module, dict[str, CompiledFunction]]] = {}
        self._tables: dict[tuple[int, int], tuple[Module, Mapping, HelperTable]] = {}

    @property
    def compiler(self) -> JitCompiler:
        if self._compiler is None:
            self._compiler = JitCompiler()
        return self._compiler

    def compiled(self, module: Module) -> dict[str, CompiledFunction]:
        """Every function of ``module``, compiled once (as one batch)."""
        cached = self._modules.get(id(module))
        if cached is None or cached[0] is not module:
            cached = (module, self.compiler.compile_module(module))
            self._modules[id(module)] = cached
        return cached[1]

    def __call__(self, module: Module, func_name: str, args: list[int], state: State,
                 memory: Memory, helpers: Mapping[str, object]) -> Result:
        fn = self.compiled(module).get(func_name)
        if fn is None:
            raise EvaluationError(f"no function @{func_name} in the module")
        return run(fn, args, state=state, memory=memory, helpers=self.helper_table(module, helpers))

    def helper_table(self, module: Module, helpers: Mapping[str, object]) -> HelperTable:
        """The native helper table calling these implementations (one per module and
        mapping; the mapping is read at each call)."""
        key = (id(module), id(helpers))
        cached = self._tables.get(key)
        if cached is None or cached[0] is not module or cached[1] is not helpers:
            cached = (module, helpers, HelperTable(module, helpers))
            self._tables[key] = cached
        return cached[2]


#: the JIT as a filetest executor: ``run_filetest(path, executors={"jit": filetest_executor})``
filetest_executor = JitExecutor()

__all__ = ["HelperTable", "JitExecutor", "filetest_executor", "run"]
