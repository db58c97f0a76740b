"""Execution engines for lifted guest code: the interpreter tier (vm-ir compiled to Python)
and, later, the LLVM JIT tier."""

from .cpu import CpuState, state_class
from .interp import BlockTrap, EngineError, EngineStats, HelperContext, InterpEngine, compile_block

__all__ = [
    "BlockTrap", "CpuState", "EngineError", "EngineStats", "HelperContext", "InterpEngine",
    "compile_block", "state_class",
]
