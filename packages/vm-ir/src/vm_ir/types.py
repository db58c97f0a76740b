"""Value types of vm-ir: integers i1..i128, floats f32/f64, and the 128-bit vector v128."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Type:
    """A vm-ir value type. Instances are interned: compare with ``is`` or ``==``."""

    name: str
    kind: str  # "int", "float" or "vector"
    bits: int

    @property
    def is_int(self) -> bool:
        return self.kind == "int"

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def bytes(self) -> int:
        """Size in memory; i1 occupies one byte."""
        return max(1, self.bits // 8)

    @property
    def mask(self) -> int:
        return (1 << self.bits) - 1

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name.upper()


I1 = Type("i1", "int", 1)
I8 = Type("i8", "int", 8)
I16 = Type("i16", "int", 16)
I32 = Type("i32", "int", 32)
I64 = Type("i64", "int", 64)
I128 = Type("i128", "int", 128)
F32 = Type("f32", "float", 32)
F64 = Type("f64", "float", 64)
V128 = Type("v128", "vector", 128)

ALL_TYPES: tuple[Type, ...] = (I1, I8, I16, I32, I64, I128, F32, F64, V128)
INT_TYPES: tuple[Type, ...] = (I1, I8, I16, I32, I64, I128)
FLOAT_TYPES: tuple[Type, ...] = (F32, F64)
TYPES_BY_NAME: dict[str, Type] = {t.name: t for t in ALL_TYPES}


def type_named(name: str) -> Type:
    """The type spelled ``name`` (``"i64"``); ``KeyError`` if there is none."""
    return TYPES_BY_NAME[name]
