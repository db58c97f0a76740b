"""Guest CPU state for the engines: one Python object per vCPU, shaped by a vm-ir StateLayout.

Array fields (``x: i64[32]``) are Python lists, scalar fields plain attributes, all holding
unsigned ints as vm-ir values do. Indexing with the evaluator's keys works too
(``state["pc"]``, ``state["x", 3]``), so helpers run unchanged under the evaluator and the
engines.
"""

from __future__ import annotations

from typing import Any

from vm_ir import FieldRef, StateLayout

_CLASSES: dict[tuple, type] = {}


class CpuState:
    """Base of the generated state classes; see ``state_class``."""

    __slots__ = ()
    layout: StateLayout
    _arrays: frozenset[str]
    _masks: dict[str, int]

    # helpers (``ctx.state["fflags"]``) and the evaluator (``state[FieldRef]``) come here often:
    # the common key shapes are tested first, by exact class
    def __getitem__(self, key: str | tuple[str, int] | FieldRef) -> int:
        cls = key.__class__
        if cls is str:
            return getattr(self, key)  # type: ignore[arg-type]
        if cls is FieldRef:
            index = key.index  # type: ignore[union-attr]
            value = getattr(self, key.name)  # type: ignore[union-attr]
            return value if index is None else value[index]
        name, index = _split(key)
        value = getattr(self, name)
        return value[index] if index is not None else value

    def __setitem__(self, key: str | tuple[str, int] | FieldRef, value: int) -> None:
        cls = key.__class__
        if cls is str:
            setattr(self, key, value & self._masks[key])  # type: ignore[arg-type, index]
            return
        if cls is FieldRef:
            name, index = key.name, key.index  # type: ignore[union-attr]
        else:
            name, index = _split(key)
        value &= self._masks[name]
        if index is not None:
            getattr(self, name)[index] = value
        else:
            setattr(self, name, value)

    def copy(self) -> CpuState:
        """An independent copy (a new thread's registers start as its parent's)."""
        clone = type(self)()
        for f in self.layout.fields:
            v = getattr(self, f.name)
            setattr(clone, f.name, list(v) if f.count is not None else v)
        return clone

    def as_dict(self) -> dict[str, Any]:
        return {f.name: (list(getattr(self, f.name)) if f.count is not None
                         else getattr(self, f.name)) for f in self.layout.fields}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.as_dict()})"


def _split(key: str | tuple[str, int] | FieldRef) -> tuple[str, int | None]:
    if isinstance(key, FieldRef):
        return key.name, key.index
    if isinstance(key, tuple):
        return key[0], key[1]
    return key, None


def state_class(layout: StateLayout) -> type[CpuState]:
    """The CpuState subclass for ``layout`` (cached): ``state_class(layout)()`` is all zero."""
    key = tuple((f.name, f.type.name, f.count) for f in layout.fields)
    cls = _CLASSES.get(key)
    if cls is not None:
        return cls
    names = [f.name for f in layout.fields]
    arrays = {f.name: f.count for f in layout.fields if f.count is not None}

    def __init__(self: CpuState) -> None:
        for name in names:
            count = arrays.get(name)
            setattr(self, name, [0] * count if count is not None else 0)

    cls = type("CpuState_" + "_".join(names)[:40], (CpuState,), {
        "__slots__": tuple(names),
        "__init__": __init__,
        "layout": layout,
        "_arrays": frozenset(arrays),
        "_masks": {f.name: f.type.mask for f in layout.fields},
    })
    _CLASSES[key] = cls
    return cls
