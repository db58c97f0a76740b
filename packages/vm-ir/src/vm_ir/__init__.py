"""vm-ir: a standalone typed SSA IR for guest code.

    import vm_ir
    m = vm_ir.parse(TEXT)                 # text -> Module (ParseError with the line)
    assert vm_ir.verify(m) == []          # every error, with its location
    vm_ir.optimize(m)                     # constant folding, copy propagation, DCE, forwarding
    print(vm_ir.print_module(m))          # Module -> text that parses back to the same
    vm_ir.evaluate(m, "f", [1, 2])        # the reference semantics: Returned / Exited / Trapped

No dependencies beyond the standard library. See docs/ir.md for the specification.
"""

from .builder import BuildError, FunctionBuilder, parse_field_ref
from .evaluator import (
    EvaluationError,
    Exited,
    FlatMemory,
    GuestTrap,
    HelperContext,
    Memory,
    MemoryFault,
    Result,
    Returned,
    State,
    Trapped,
    UndefinedBehavior,
    evaluate,
)
from .ir import (
    Block,
    FieldRef,
    Function,
    HelperDecl,
    Inst,
    MemFlags,
    Module,
    StateField,
    StateLayout,
    Target,
    Value,
)
from .ops import OPS, Effect, OpDef, Operand, OperandKind, op_named
from .parser import ParseError, parse, parse_function
from .passes import optimize
from .printer import format_function, format_inst, format_module
from .types import ALL_TYPES, F32, F64, I1, I8, I16, I32, I64, I128, V128, Type, type_named
from .values import format_value, parse_value
from .verifier import VerifierError, verify, verify_function

__version__ = "0.1.0"


def print_module(module: Module) -> str:
    """The text form of ``module``; ``parse`` reads it back."""
    return format_module(module)


__all__ = [
    "ALL_TYPES", "F32", "F64", "I1", "I8", "I16", "I32", "I64", "I128", "OPS", "V128",
    "Block", "BuildError", "Effect", "EvaluationError", "Exited", "FieldRef", "FlatMemory",
    "Function", "FunctionBuilder", "GuestTrap", "HelperContext", "HelperDecl", "Inst",
    "MemFlags", "Memory", "MemoryFault", "Module", "OpDef", "Operand", "OperandKind",
    "ParseError", "Result", "Returned", "State", "StateField", "StateLayout", "Target",
    "Trapped", "Type", "UndefinedBehavior", "Value", "VerifierError", "evaluate",
    "format_function", "format_inst", "format_module", "format_value", "op_named",
    "optimize", "parse", "parse_field_ref", "parse_function", "parse_value", "print_module",
    "type_named", "verify", "verify_function",
]
