"""The native interface of compiled code: one calling convention, a context block, the state
struct, argument slots and status codes. ``lower`` emits code against it; ``engine`` and
``executor`` fill it in from Python.

Every compiled function has the C signature ``int64_t fn(JitContext *ctx)`` and returns a status:

============================  ====================================================================
``STATUS_RETURNED`` (0)       ``ret``: the values are in ``ctx->rets``
``STATUS_EXITED`` (1)         ``exit pc``: the pc is in ``ctx->exit_pc``
``STATUS_ERROR`` (2)          a helper raised something other than a guest trap; the Python side
                              that ran the helper keeps the exception and raises it
``STATUS_CODE_WRITE`` (3)     a store to a page with ``PERM_CODE`` (translated code lives there):
                              nothing was written, the state is as before that instruction and
                              ``ctx->trap_addr`` holds the address; the caller runs the
                              instruction another way (and drops the translations it changes)
``STATUS_TRAP + k`` (16 + k)  ``trap``, a memory fault, a misaligned access or a helper's
                              ``GuestTrap``: ``k`` is the index of the kind in ``TRAP_KINDS``;
                              ``ctx->trap_addr`` holds the address when ``ctx->trap_flags & 1``
============================  ====================================================================

The context block (``JitContext``, 8-byte fields, offsets in ``CTX``)::

    0   state       host pointer to the state struct (``StateStruct``)
    8   mem_host    host address of guest address ``mem_guest``
    16  mem_guest   the lowest guest address of memory
    24  mem_size    bytes of guest memory from ``mem_guest``
    32  perms       one byte per 4 KiB guest page (``PAGE_SHIFT``): ``PERM_READ | PERM_WRITE``
    40  args        the function's parameters, one 16-byte slot each
    48  rets        where ``ret`` writes its values, one 16-byte slot each
    56  helpers     the helper table: one ``HELPER_FN`` pointer per helper the module declares,
                    in declaration order
    64  exit_pc     set by ``exit``
    72  trap_addr   the faulting guest address of a memory trap
    80  trap_flags  bit 0: ``trap_addr`` is valid
    88  user        the instruction budget of region code (``lower.Region``): each block
                    subtracts its instructions; otherwise free for the caller
    96  link        set by an ``exit`` that could not chain: the address of its link cell,
                    which the dispatcher points at the record of the block it finds next
                    (``lower._FunctionLowering._finish_out``, ``dispatch.py``)
    104 stop        non-zero: leave native code soon (another thread's ``kick``): no exit
                    chains, no edge inside region code loops, the dispatcher returns

A block record (``RECORD``, three 8-byte words: guest pc, function address, helper table) is
what a link cell points at; the engine zeroes the function word when that code is dropped.

User-mode memory: a guest access of ``n`` bytes at ``addr`` is allowed when
``0 <= addr - mem_guest`` and ``addr - mem_guest + n <= mem_size`` and the permission bytes of
its first and last page both have the bit the access needs (read, write, or both for atomics),
and for a write neither has ``PERM_CODE``;
it then touches host memory at ``mem_host + (addr - mem_guest)``. A refused access touches
nothing and returns a ``mem_fault`` trap with the guest address. ``mem_host - mem_guest`` must
be a multiple of 16 (so that naturally aligned guest atomics are aligned on the host).

A slot is 16 bytes holding a value little-endian in its low bytes (an ``i1`` as one byte, a float
as its bit pattern, an ``i128``/``v128`` whole); the bytes above the value's size are
unspecified. Helpers are called as ``int64_t helper(JitContext *ctx, slot *args, slot *ret)``
and return 0, or a trap status (after setting ``trap_addr``/``trap_flags``), or
``STATUS_ERROR``.

The state struct holds the fields of a ``StateLayout`` in declaration order, each element
naturally aligned (its size: 1, 2, 4, 8 or 16 bytes; an ``i1`` is one byte holding 0 or 1,
floats are their bit patterns, ``v128`` like ``i128``), arrays as consecutive elements, the
whole rounded up to 16 bytes. ``StateStruct`` computes the offsets and a matching ctypes
``Structure``.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from vm_ir import FieldRef, State, StateLayout, Type
from vm_ir.ops import TRAP_KINDS

STATUS_RETURNED = 0
STATUS_EXITED = 1
STATUS_ERROR = 2
STATUS_CODE_WRITE = 3
STATUS_TRAP = 16
#: the status of each trap kind
TRAP_STATUS: dict[str, int] = {kind: STATUS_TRAP + i for i, kind in enumerate(TRAP_KINDS)}

SLOT_BYTES = 16
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PERM_READ = 1
PERM_WRITE = 2
PERM_RW = PERM_READ | PERM_WRITE
#: translations of the page's code exist: a native store there stops (``STATUS_CODE_WRITE``)
PERM_CODE = 16


class JitContext(ctypes.Structure):
    """The context block every compiled function receives (see the module docstring)."""

    _fields_ = [
        ("state", ctypes.c_void_p),
        ("mem_host", ctypes.c_void_p),
        ("mem_guest", ctypes.c_uint64),
        ("mem_size", ctypes.c_uint64),
        ("perms", ctypes.c_void_p),
        ("args", ctypes.c_void_p),
        ("rets", ctypes.c_void_p),
        ("helpers", ctypes.c_void_p),
        ("exit_pc", ctypes.c_uint64),
        ("trap_addr", ctypes.c_uint64),
        ("trap_flags", ctypes.c_uint64),
        ("user", ctypes.c_uint64),
        ("link", ctypes.c_uint64),
        ("stop", ctypes.c_uint64),
    ]


#: a block record: (guest pc, function address or 0 once dropped, helper table address)
RECORD = ctypes.c_uint64 * 3


#: field name -> byte offset in ``JitContext``
CTX: dict[str, int] = {name: getattr(JitContext, name).offset for name, _ in JitContext._fields_}
assert all(CTX[name] == 8 * i for i, (name, _) in enumerate(JitContext._fields_))

#: the native signature of a compiled function
ENTRY_FN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p)
#: the native signature of a helper
HELPER_FN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def trap_kind(status: int) -> str:
    """The trap kind of a trap status."""
    return TRAP_KINDS[status - STATUS_TRAP]


def storage_bytes(t: Type) -> int:
    """Bytes a value of ``t`` occupies in the state struct and in memory (``i1``: one)."""
    return t.bytes


def new_slots(count: int) -> ctypes.Array:
    """Zeroed, 16-byte aligned room for ``count`` slots."""
    return (ctypes.c_uint64 * (2 * max(count, 1)))()


def write_slot(slots: ctypes.Array, index: int, value: int, t: Type) -> None:
    ctypes.memmove(ctypes.addressof(slots) + SLOT_BYTES * index,
                   (value & t.mask).to_bytes(SLOT_BYTES, "little"), SLOT_BYTES)


def read_slot(address: int, index: int, t: Type) -> int:
    raw = ctypes.string_at(address + SLOT_BYTES * index, storage_bytes(t))
    return int.from_bytes(raw, "little") & t.mask


# --- the state struct ------------------------------------------------------------------------

_UINT = {1: ctypes.c_uint8, 2: ctypes.c_uint16, 4: ctypes.c_uint32, 8: ctypes.c_uint64,
         16: ctypes.c_uint64 * 2}


@dataclass(frozen=True, slots=True)
class FieldSlot:
    """Where a state field lives: its offset, element size and count (None: a scalar)."""

    name: str
    type: Type
    offset: int
    elem_bytes: int
    count: int | None

    def offset_of(self, index: int | None) -> int:
        return self.offset + (index or 0) * self.elem_bytes


class StateStruct:
    """The native layout of a ``StateLayout``: offsets, size, a ctypes ``Structure`` type and
    conversion to and from the evaluator's ``State``.

        ss = StateStruct(layout)
        buf = ss.new()                  # a zeroed instance of ss.ctype
        ss.write(buf, "pc", 0x1000)     # or ss.write(buf, ("x", 3), 7)
        ss.offset(FieldRef("x", 3))     # the byte offset lowered code uses
    """

    def __init__(self, layout: StateLayout | None) -> None:
        self.layout = layout or StateLayout()
        self.fields: dict[str, FieldSlot] = {}
        ctypes_fields: list[tuple[str, object]] = []
        offset = 0
        for f in self.layout.fields:
            elem = storage_bytes(f.type)
            aligned = -(-offset // elem) * elem
            if aligned != offset:
                ctypes_fields.append((f"_pad{len(ctypes_fields)}", ctypes.c_uint8 * (aligned - offset)))
            offset = aligned
            self.fields[f.name] = FieldSlot(f.name, f.type, offset, elem, f.count)
            ctype = _UINT[elem]
            ctypes_fields.append((f.name, ctype * f.count if f.count is not None else ctype))
            offset += elem * (f.count if f.count is not None else 1)
        self.size = max(16, -(-offset // 16) * 16)
        if self.size != offset:
            ctypes_fields.append((f"_pad{len(ctypes_fields)}", ctypes.c_uint8 * (self.size - offset)))
        self.ctype: type[ctypes.Structure] = type(
            "NativeState", (ctypes.Structure,), {"_pack_": 1, "_fields_": ctypes_fields})
        assert ctypes.sizeof(self.ctype) == self.size
        for slot in self.fields.values():
            assert getattr(self.ctype, slot.name).offset == slot.offset

    def _slot(self, key: str | tuple[str, int] | FieldRef) -> tuple[FieldSlot, int | None]:
        if isinstance(key, FieldRef):
            name, index = key.name, key.index
        elif isinstance(key, tuple):
            name, index = key
        else:
            name, index = key, None
        return self.fields[name], index

    def offset(self, key: str | tuple[str, int] | FieldRef) -> int:
        """The byte offset of a field (an array element with an index)."""
        slot, index = self._slot(key)
        return slot.offset_of(index)

    def new(self) -> ctypes.Structure:
        """A zeroed state struct (all fields 0, as a fresh ``State``)."""
        return self.ctype()

    def read(self, buf: ctypes.Structure, key: str | tuple[str, int] | FieldRef) -> int:
        slot, index = self._slot(key)
        raw = ctypes.string_at(ctypes.addressof(buf) + slot.offset_of(index), slot.elem_bytes)
        return int.from_bytes(raw, "little") & slot.type.mask

    def write(self, buf: ctypes.Structure, key: str | tuple[str, int] | FieldRef,
              value: int) -> None:
        slot, index = self._slot(key)
        data = (value & slot.type.mask).to_bytes(slot.elem_bytes, "little")
        ctypes.memmove(ctypes.addressof(buf) + slot.offset_of(index), data, slot.elem_bytes)

    def load(self, buf: ctypes.Structure, state: State) -> None:
        """Copy every field of ``state`` into ``buf``."""
        for slot in self.fields.values():
            value = state.values[slot.name]
            if isinstance(value, list):
                for i, v in enumerate(value):
                    self.write(buf, (slot.name, i), v)
            else:
                self.write(buf, slot.name, value)

    def store(self, buf: ctypes.Structure, state: State) -> None:
        """Copy every field of ``buf`` into ``state``."""
        for slot in self.fields.values():
            if slot.count is None:
                state.values[slot.name] = self.read(buf, slot.name)
            else:
                state.values[slot.name] = [self.read(buf, (slot.name, i))
                                           for i in range(slot.count)]


class StateView:
    """A state struct seen as the evaluator's ``State`` (``view["pc"]``, ``view["x", 3]``,
    ``view.layout``): what helpers get while compiled code runs."""

    def __init__(self, struct: StateStruct, buf: ctypes.Structure) -> None:
        self.struct = struct
        self.buf = buf
        self.layout = struct.layout

    def __getitem__(self, key: str | tuple[str, int] | FieldRef) -> int:
        return self.struct.read(self.buf, key)

    def __setitem__(self, key: str | tuple[str, int] | FieldRef, value: int) -> None:
        self.struct.write(self.buf, key, value)


__all__ = [
    "CTX", "ENTRY_FN", "HELPER_FN", "PAGE_SHIFT", "PAGE_SIZE", "PERM_CODE", "PERM_READ",
    "PERM_RW", "PERM_WRITE", "RECORD", "SLOT_BYTES", "STATUS_CODE_WRITE", "STATUS_ERROR", "STATUS_EXITED", "STATUS_RETURNED",
    "STATUS_TRAP", "TRAP_STATUS", "FieldSlot", "JitContext", "StateStruct", "StateView",
    "new_slots", "read_slot", "storage_bytes", "trap_kind", "write_slot",
]
