"""The interpreter tier: vm-ir blocks compiled to Python functions, cached and chained."""

from .engine import EngineError, EngineStats, HelperContext, InterpEngine
from .pygen import BlockTrap, CodegenError, compile_block

__all__ = [
    "BlockTrap", "CodegenError", "EngineError", "EngineStats", "HelperContext", "InterpEngine",
    "compile_block",
]
