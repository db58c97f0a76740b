"""A native dispatcher: runs compiled blocks one after another without coming back to
Python, looking each next pc up in a hash table of compiled blocks.

    d = Dispatcher(pc_offset)               # the byte offset of ``pc`` in the state struct
    d.rebuild({pc: (entry_address, insns, helper_table_address)})
    status = d.run(ctx, io)                 # io: Io(pc, left); on return io.pc, io.ran, ...

It stops with ``STATUS_EXITED`` when the next pc has no compiled block or the instruction
budget ``io.left`` is spent (``io.pc``: where to go on), else with the status of the block
that trapped or failed (``io.pc``: that block's start). Before each block it stores the
block's pc in the state struct and its helper table in the context.
"""

from __future__ import annotations

import ctypes
import threading

import llvmlite.binding as llvm

from .abi import CTX

_IR = """
define i64 @vm_dispatch(i64 %ctx, i64 %table, i64 %mask, i64 %io, i64 %pcoff) {{
entry:
  %statep = inttoptr i64 %ctx to ptr
  %state = load i64, ptr %statep
  %pcaddr = add i64 %state, %pcoff
  %pcptr = inttoptr i64 %pcaddr to ptr
  %helpaddr = add i64 %ctx, {helpers}
  %helpptr = inttoptr i64 %helpaddr to ptr
  %exitaddr = add i64 %ctx, {exit_pc}
  %exitptr = inttoptr i64 %exitaddr to ptr
  %iopc = inttoptr i64 %io to ptr
  %ioleft.a = add i64 %io, 8
  %ioleft = inttoptr i64 %ioleft.a to ptr
  %ioran.a = add i64 %io, 16
  %ioran = inttoptr i64 %ioran.a to ptr
  %ioblk.a = add i64 %io, 24
  %ioblk = inttoptr i64 %ioblk.a to ptr
  br label %loop
loop:
  %pc = load i64, ptr %iopc
  %left = load i64, ptr %ioleft
  %spent = icmp sle i64 %left, 0
  br i1 %spent, label %stop, label %hash
hash:
  %h0 = lshr i64 %pc, 1
  %h = and i64 %h0, %mask
  br label %probe
probe:
  %i = phi i64 [ %h, %hash ], [ %inext, %next ]
  %off = shl i64 %i, 5
  %ea = add i64 %table, %off
  %ep = inttoptr i64 %ea to ptr
  %fna = add i64 %ea, 8
  %fnp = inttoptr i64 %fna to ptr
  %fn = load i64, ptr %fnp
  %empty = icmp eq i64 %fn, 0
  br i1 %empty, label %stop, label %cmp
cmp:
  %epc = load i64, ptr %ep
  %same = icmp eq i64 %epc, %pc
  br i1 %same, label %hit, label %next
next:
  %i1 = add i64 %i, 1
  %inext = and i64 %i1, %mask
  br label %probe
hit:
  %na = add i64 %ea, 16
  %np = inttoptr i64 %na to ptr
  %n = load i64, ptr %np
  %ha = add i64 %ea, 24
  %hp = inttoptr i64 %ha to ptr
  %helpers = load i64, ptr %hp
  store i64 %helpers, ptr %helpptr
  store i64 %pc, ptr %pcptr
  %f = inttoptr i64 %fn to ptr
  %status = call i64 %f(i64 %ctx)
  %ok = icmp eq i64 %status, 1
  br i1 %ok, label %cont, label %out
cont:
  %npc = load i64, ptr %exitptr
  store i64 %npc, ptr %iopc
  %left2 = sub i64 %left, %n
  store i64 %left2, ptr %ioleft
  %ran = load i64, ptr %ioran
  %ran2 = add i64 %ran, %n
  store i64 %ran2, ptr %ioran
  %b = load i64, ptr %ioblk
  %b2 = add i64 %b, 1
  store i64 %b2, ptr %ioblk
  br label %loop
out:
  ret i64 %status
stop:
  ret i64 1
}}
"""

DISPATCH_FN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64,
                               ctypes.c_uint64, ctypes.c_uint64)

_lock = threading.Lock()
_shared: list = []


def _compiled() -> object:
    """The dispatcher's entry (compiled once per process)."""
    with _lock:
        if not _shared:
            from .engine import _init_target

            _init_target()
            ref = llvm.parse_assembly(_IR.format(helpers=CTX["helpers"], exit_pc=CTX["exit_pc"]))
            ref.verify()
            target = llvm.Target.from_triple(llvm.get_process_triple())
            tm = target.create_target_machine(opt=2, jit=True)
            engine = llvm.create_mcjit_compiler(ref, tm)
            engine.finalize_object()
            fn = DISPATCH_FN(engine.get_function_address("vm_dispatch"))
            _shared.extend([engine, tm, fn])
        return _shared[2]


class Io(ctypes.Structure):
    """The dispatcher's in/out block: where to go, the budget left, what ran."""

    _fields_ = [("pc", ctypes.c_uint64), ("left", ctypes.c_int64), ("ran", ctypes.c_uint64),
                ("blocks", ctypes.c_uint64)]


class Dispatcher:
    """The hash table of compiled blocks and the native loop over it."""

    def __init__(self, pc_offset: int) -> None:
        self.fn = _compiled()
        self.pc_offset = pc_offset
        self.table = (ctypes.c_uint64 * 4)()
        self.mask = 0
        self._old: list = []  # tables another thread may still be reading

    def rebuild(self, entries: dict[int, tuple[int, int, int]]) -> None:
        """``entries``: pc -> (entry address, guest instructions, helper table address)."""
        cap = 4
        while cap < 2 * len(entries) + 2:
            cap *= 2
        table = (ctypes.c_uint64 * (4 * cap))()
        mask = cap - 1
        for pc, (fn, insns, helpers) in entries.items():
            i = (pc >> 1) & mask
            while table[4 * i + 1]:
                i = (i + 1) & mask
            table[4 * i:4 * i + 4] = [pc, fn, insns, helpers]
        self._old.append(self.table)
        self.table, self.mask = table, mask

    def run(self, ctx_address: int, io: Io) -> int:
        return int(self.fn(ctx_address, ctypes.addressof(self.table), self.mask,
                           ctypes.addressof(io), self.pc_offset))


__all__ = ["Dispatcher", "Io"]
