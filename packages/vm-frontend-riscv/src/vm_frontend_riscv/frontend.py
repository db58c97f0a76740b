"""The RISC-V frontend: RV64GC (+ Zba, Zbb, Zbc, Zbs) decoded, lifted to vm-ir, disassembled."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from vm_core import LiftedBlock, SyscallAbi
from vm_ir import Module

from . import helpers
from .decoder import OP_EXT, decode
from .lift import TRANSLATORS, LiftContext
from .state import LAYOUT, NO_RESERVATION

EXTENSIONS = frozenset({"I", "M", "A", "F", "D", "C", "Zicsr", "Zifencei",
                        "Zba", "Zbb", "Zbc", "Zbs"})
PAGE = 0x1000


def _fetch_word(mem: Any, pc: int) -> tuple[int, int] | None:
    """(word, size) of the instruction at pc, or None when it cannot be fetched."""
    data = mem.fetch(pc, 2)
    if len(data) < 2:
        return None
    if data[0] & 3 != 3:
        return int.from_bytes(data[:2], "little"), 2
    data = mem.fetch(pc, 4)
    if len(data) < 4:
        return None
    return int.from_bytes(data[:4], "little"), 4


class RiscvFrontend:
    """RV64GC for Linux user mode and (later) system mode."""

    arch = "riscv64"
    state_layout = LAYOUT
    syscall_abi = SyscallAbi(number="x[17]", args=tuple(f"x[{i}]" for i in range(10, 16)),
                             result="x[10]")
    gdb_target_xml = ""

    def __init__(self, extensions: frozenset[str] = EXTENSIONS) -> None:
        self.extensions = extensions
        self._helper_decls = helpers.DECLARATIONS

    @property
    def helpers(self) -> Mapping[str, Any]:
        return helpers.IMPLEMENTATIONS

    def reset_state(self) -> Any:
        from vm_ir import State

        state = State(LAYOUT)
        state["res_addr"] = NO_RESERVATION
        return state

    def decode(self, mem: Any, pc: int) -> Any:
        fetched = _fetch_word(mem, pc)
        return None if fetched is None else decode(fetched[0])

    def disassemble(self, mem: Any, pc: int) -> tuple[str, int]:
        from .disasm import disassemble

        fetched = _fetch_word(mem, pc)
        if fetched is None:
            return "<fetch fault>", 0
        word, size = fetched
        insn = decode(word)
        if insn is None:
            return (f".insn 0x{word:0{size * 2}x}" if size == 4 else f".2byte 0x{word:04x}"), size
        return disassemble(insn, pc), size

    def new_module(self) -> Module:
        return Module(state=LAYOUT, helpers=dict(self._helper_decls))

    def lift(self, mem: Any, pc: int, *, max_insns: int = 64,
             optimize: bool = True) -> LiftedBlock:
        """Lift from ``pc`` to the first jump, branch or trap, the end of the page, or
        ``max_insns`` instructions. ``optimize=False`` gives the IR as the translators wrote
        it (an engine that runs a block once or twice need not optimise it first)."""
        module = self.new_module()
        ctx = LiftContext(module, pc)
        page_end = (pc | (PAGE - 1)) + 1
        cur = pc
        count = 0
        while count < max_insns:
            fetched = _fetch_word(mem, cur)
            ctx.pc = cur
            if fetched is None:
                if count == 0:
                    ctx.trap("mem_fault")  # the fetch itself faults: SIGSEGV at pc
                    count = 1
                break
            word, size = fetched
            ctx.size = size
            insn = decode(word)
            count += 1
            cur += size
            if insn is None or insn.ext not in self.extensions or (
                    OP_EXT.get(insn.op, insn.ext) not in self.extensions):
                ctx.trap("illegal")
                break
            translator = TRANSLATORS.get(insn.op)
            if translator is None:
                _report_missing(insn.op)
                ctx.trap("illegal")
                break
            fields = SimpleNamespace(op=insn.op, **dict(insn.args))
            if not translator(ctx, fields):
                ctx.trap("illegal")
                break
            if ctx.ended or cur >= page_end:
                break
        if not ctx.ended:
            ctx.fb.exit(ctx.const(cur))
        func = ctx.fb.func
        if optimize:
            _optimize(func, module)
        return LiftedBlock(pc, cur - pc, count, func, module)


_MISSING: set[str] = set()


def _report_missing(op: str) -> None:
    """An instruction we decode but cannot lift yet: said once, loudly, then SIGILL."""
    if op not in _MISSING:
        _MISSING.add(op)
        sys.stderr.write(f"vm: riscv64 instruction {op} is not implemented yet\n")


def _optimize(func, module) -> None:
    from vm_ir.passes import optimize

    optimize(module)
