"""The LLVM JIT tier: vm-ir functions lowered to LLVM IR (llvmlite), compiled in batches with
MCJIT, and run natively on a guest state struct and user-mode guest memory.

    from vm_engine_jit.jit import JitCompiler, run
    [f] = JitCompiler().compile([(module, "f")])
    run(f, [1, 2], state=state, memory=FlatMemory())   # Returned / Exited / Trapped

- ``abi``: the calling convention (``int64_t fn(JitContext *)``), statuses, the context block,
  argument slots and the state struct layout (``StateStruct``);
- ``lower``: vm-ir to LLVM IR, every op of ``vm_ir.OPS``;
- ``support``: 128-bit division and i128/float conversions as LLVM IR;
- ``engine``: ``JitCompiler``, one MCJIT engine and target machine, batches, compile stats;
- ``memory``: ``NativeMemory``, guest memory with page permissions;
- ``executor``: ``run`` and the filetest executor ``filetest_executor``;
- ``tiered``: ``JitEngine``, the engine ``vm run --engine jit`` uses: the interpreter for cold
  blocks, hot blocks compiled in batches and chained by ``dispatch``'s native loop.

Not yet here: a software TLB for system mode, invalidation of compiled code that a native store
overwrites (stores from the interpreter and the kernel do invalidate).
"""

from .abi import (
    STATUS_ERROR,
    STATUS_EXITED,
    STATUS_RETURNED,
    STATUS_TRAP,
    TRAP_STATUS,
    JitContext,
    StateStruct,
    StateView,
)
from .engine import CompiledFunction, CompileStats, JitCompiler
from .executor import HelperTable, JitExecutor, filetest_executor, run
from .lower import LOWERED_OPS, BatchLowering, LoweringError
from .memory import NativeMemory
from .tiered import JitEngine

__all__ = [
    "LOWERED_OPS", "STATUS_ERROR", "STATUS_EXITED", "STATUS_RETURNED", "STATUS_TRAP",
    "TRAP_STATUS", "BatchLowering", "CompileStats", "CompiledFunction", "HelperTable",
    "JitCompiler", "JitContext", "JitEngine", "JitExecutor", "LoweringError", "NativeMemory", "StateStruct",
    "StateView", "filetest_executor", "run",
]
