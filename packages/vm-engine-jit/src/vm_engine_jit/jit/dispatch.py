"""A native dispatcher: runs compiled blocks one after another without coming back to
Python, looking each next pc up in a hash table of compiled blocks.

    d = Dispatcher(pc_offset)               # the byte offset of ``pc`` in the state struct
    d.rebuild({pc: (entry_address, counter_start, helper_table_address, record_address)})
    status = d.run(ctx, io)                 # io: Io(pc, left); on return io.pc, io.ran, ...

Each entry has a counter, counted up on each run of its block; one that reaches 0 stops the
loop with ``STATUS_HOT`` before the block runs (the engine then compiles a region there).
It stops with ``STATUS_EXITED`` when the next pc has no compiled block, the instruction
budget ``io.left`` is spent or the context's ``stop`` is set (``io.pc``: where to go on), else with the status of the block
that trapped or failed (``io.pc``: that block's start). Before each block it stores the
block's pc in the state struct, its helper table in the context and the budget left in the
context's ``user`` field, which compiled code counts down (``lower.Region``); what it counted
is what ran. A block that could not chain to the next one leaves the address of its link
cell in the context's ``link`` field; when the next pc is found, the cell is pointed at that
block's record, so that the next time the block goes there directly (an inline cache: a
computed exit's cell holds the last target; every block checks the record's pc).
"""

from __future__ import annotations

import ctypes
import threading

import llvmlite.binding as llvm

from .abi import CTX

#: ``run``'s status when an entry's counter reaches 0: ``io.pc`` is its pc, not yet run
STATUS_HOT = 4
#: a counter start that never reaches 0
NEVER = -(1 << 62)

# The loop keeps pc, budget and counts in registers and writes them to ``io`` once, at ``done``.
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
  %linkaddr = add i64 %ctx, {link}
  %linkptr = inttoptr i64 %linkaddr to ptr
  store i64 0, ptr %linkptr
  %stopaddr = add i64 %ctx, {stop}
  %stopptr = inttoptr i64 %stopaddr to ptr
  %useraddr = add i64 %ctx, {user}
  %userptr = inttoptr i64 %useraddr to ptr
  %iopc = inttoptr i64 %io to ptr
  %ioleft.a = add i64 %io, 8
  %ioleft = inttoptr i64 %ioleft.a to ptr
  %ioran.a = add i64 %io, 16
  %ioran = inttoptr i64 %ioran.a to ptr
  %ioblk.a = add i64 %io, 24
  %ioblk = inttoptr i64 %ioblk.a to ptr
  %pc0 = load i64, ptr %iopc
  %left0 = load i64, ptr %ioleft
  %ran0 = load i64, ptr %ioran
  %blk0 = load i64, ptr %ioblk
  br label %loop
loop:
  %pc = phi i64 [ %pc0, %entry ], [ %npc, %cont ]
  %cell = phi i64 [ 0, %entry ], [ %ncell, %cont ]
  %left = phi i64 [ %left0, %entry ], [ %after, %cont ]
  %ran = phi i64 [ %ran0, %entry ], [ %ran2, %cont ]
  %blk = phi i64 [ %blk0, %entry ], [ %blk2, %cont ]
  %spent = icmp sle i64 %left, 0
  %stopv = load volatile i64, ptr %stopptr
  %stopped = icmp ne i64 %stopv, 0
  %leave = or i1 %spent, %stopped
  br i1 %leave, label %done, label %hash
hash:
  %h0 = lshr i64 %pc, 1
  %h = and i64 %h0, %mask
  br label %probe
probe:
  %i = phi i64 [ %h, %hash ], [ %inext, %next ]
  %off = shl i64 %i, 6
  %ea = add i64 %table, %off
  %ep = inttoptr i64 %ea to ptr
  %fna = add i64 %ea, 8
  %fnp = inttoptr i64 %fna to ptr
  %fn = load i64, ptr %fnp
  %empty = icmp eq i64 %fn, 0
  br i1 %empty, label %done, label %cmp
cmp:
  %epc = load i64, ptr %ep
  %same = icmp eq i64 %epc, %pc
  br i1 %same, label %hit, label %next
next:
  %i1 = add i64 %i, 1
  %inext = and i64 %i1, %mask
  br label %probe
hit:
  %ca = add i64 %ea, 16
  %cp = inttoptr i64 %ca to ptr
  %cnt = load i64, ptr %cp
  %cnt1 = add i64 %cnt, 1
  store i64 %cnt1, ptr %cp
  %hot = icmp eq i64 %cnt1, 0
  br i1 %hot, label %done, label %fill
fill:
  %hascell = icmp ne i64 %cell, 0
  br i1 %hascell, label %fillcell, label %call
fillcell:
  %ra = add i64 %ea, 32
  %rp = inttoptr i64 %ra to ptr
  %record = load i64, ptr %rp
  %cellp = inttoptr i64 %cell to ptr
  store i64 %record, ptr %cellp
  br label %call
call:
  %ha = add i64 %ea, 24
  %hp = inttoptr i64 %ha to ptr
  %helpers = load i64, ptr %hp
  store i64 %helpers, ptr %helpptr
  store i64 %pc, ptr %pcptr
  store i64 %left, ptr %userptr
  %f = inttoptr i64 %fn to ptr
  %status = call i64 %f(i64 %ctx)
  %after = load i64, ptr %userptr
  %used = sub i64 %left, %after
  %ran2 = add i64 %ran, %used
  %blk2 = add i64 %blk, 1
  %ok = icmp eq i64 %status, 1
  br i1 %ok, label %cont, label %done
cont:
  %npc = load i64, ptr %exitptr
  %ncell = load i64, ptr %linkptr
  store i64 0, ptr %linkptr
  br label %loop
done:
  %rstatus = phi i64 [ 1, %loop ], [ 1, %probe ], [ {hot}, %hit ], [ %status, %call ]
  %rleft = phi i64 [ %left, %loop ], [ %left, %probe ], [ %left, %hit ], [ %after, %call ]
  %rran = phi i64 [ %ran, %loop ], [ %ran, %probe ], [ %ran, %hit ], [ %ran2, %call ]
  %rblk = phi i64 [ %blk, %loop ], [ %blk, %probe ], [ %blk, %hit ], [ %blk2, %call ]
  store i64 %pc, ptr %iopc
  store i64 %rleft, ptr %ioleft
  store i64 %rran, ptr %ioran
  store i64 %rblk, ptr %ioblk
  ret i64 %rstatus
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
            from .engine import PERF_MAP, _init_target, write_perf_map

            _init_target()
            ref = llvm.parse_assembly(_IR.format(
                helpers=CTX["helpers"], exit_pc=CTX["exit_pc"], user=CTX["user"],
                link=CTX["link"], stop=CTX["stop"], hot=STATUS_HOT))
            ref.verify()
            target = llvm.Target.from_triple(llvm.get_process_triple())
            tm = target.create_target_machine(opt=2, jit=True)
            engine = llvm.create_mcjit_compiler(ref, tm)
            engine.finalize_object()
            address = engine.get_function_address("vm_dispatch")
            fn = DISPATCH_FN(address)
            if PERF_MAP:
                write_perf_map([(address, "vm_dispatch")], last_size=512)
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
        self.table = (ctypes.c_int64 * _WORDS)()
        self.mask = 0
        self.index: dict[int, int] = {}
        self._old: list = []  # tables another thread may still be reading

    def rebuild(self, entries: dict[int, tuple[int, int, int, int]]) -> None:
        """``entries``: pc -> (entry address, counter start (negative, or ``NEVER``), helper
        table address, block record address (``abi.RECORD``)). An entry already there with
        the same address keeps its count."""
        old = self._slots()
        cap = 4
        while cap < 2 * len(entries) + 2:
            cap *= 2
        table = (ctypes.c_int64 * (_WORDS * cap))()
        mask = cap - 1
        index = {}
        for pc, (fn, start, helpers, record) in entries.items():
            i = (pc >> 1) & mask
            while table[_WORDS * i + 1]:
                i = (i + 1) & mask
            prev = old.get(pc)
            count = prev[1] if prev is not None and prev[0] == fn else start
            table[_WORDS * i:_WORDS * i + 5] = [_s64(pc), fn, count, helpers, record]
            index[pc] = i
        self._old.append(self.table)
        self.table, self.mask, self.index = table, mask, index

    def _slots(self) -> dict[int, tuple[int, int]]:
        t = self.table
        return {pc: (t[_WORDS * i + 1], t[_WORDS * i + 2]) for pc, i in self.index.items()}

    def count(self, pc: int) -> int | None:
        """The counter of ``pc``'s entry (None: no entry)."""
        i = self.index.get(pc)
        return None if i is None else self.table[_WORDS * i + 2]

    def set_count(self, pc: int, value: int) -> None:
        i = self.index.get(pc)
        if i is not None:
            self.table[_WORDS * i + 2] = value

    def run(self, ctx_address: int, io: Io) -> int:
        return int(self.fn(ctx_address, ctypes.addressof(self.table), self.mask,
                           ctypes.addressof(io), self.pc_offset))


#: words in a table entry: pc, function, counter, helper table, block record, 3 unused
_WORDS = 8


def _s64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


__all__ = ["NEVER", "STATUS_HOT", "Dispatcher", "Io"]
