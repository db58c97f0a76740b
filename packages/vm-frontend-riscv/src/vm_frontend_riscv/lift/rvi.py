"""RV64I: the base integer instructions (and Zifencei)."""

from __future__ import annotations

from vm_ir import I32, I64

from .context import LiftContext, imm, trans

# -- upper immediates and jumps -----------------------------------------------------------------


@trans("lui")
def trans_lui(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, ctx.const(imm(a)))
    return True


@trans("auipc")
def trans_auipc(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, ctx.const(ctx.pc + a.imm))
    return True


@trans("jal")
def trans_jal(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, ctx.const(ctx.next_pc))
    ctx.jump(ctx.const(ctx.pc + a.imm))
    return True


@trans("jalr")
def trans_jalr(ctx: LiftContext, a) -> bool:
    fb = ctx.fb
    target = fb.and_(fb.add(ctx.x(a.rs1), ctx.const(imm(a))), ctx.const(~1))
    ctx.set_x(a.rd, ctx.const(ctx.next_pc))  # after reading rs1: rd may equal rs1
    ctx.jump(target)
    return True


_BRANCHES = {"beq": "eq", "bne": "ne", "blt": "slt", "bge": "sge", "bltu": "ult", "bgeu": "uge"}


@trans(*_BRANCHES)
def trans_branch(ctx: LiftContext, a) -> bool:
    cond = ctx.fb.icmp(_BRANCHES[a.op], ctx.x(a.rs1), ctx.x(a.rs2))
    ctx.branch(cond, ctx.pc + a.imm)
    return True


# -- loads and stores ---------------------------------------------------------------------------
_LOADS = {"lb": (1, True), "lh": (2, True), "lw": (4, True), "ld": (8, False),
          "lbu": (1, False), "lhu": (2, False), "lwu": (4, False)}
_STORES = {"sb": 1, "sh": 2, "sw": 4, "sd": 8}


@trans(*_LOADS)
def trans_load(ctx: LiftContext, a) -> bool:
    size, signed = _LOADS[a.op]
    addr = ctx.fb.add(ctx.x(a.rs1), ctx.const(imm(a)))
    ctx.set_x(a.rd, ctx.load(I64, addr, size, signed))
    return True


@trans(*_STORES)
def trans_store(ctx: LiftContext, a) -> bool:
    addr = ctx.fb.add(ctx.x(a.rs1), ctx.const(imm(a)))
    ctx.store(ctx.x(a.rs2), addr, _STORES[a.op])
    return True


# -- register-immediate and register-register ---------------------------------------------------
_ALU = {"add": "add", "sub": "sub", "xor": "xor", "or": "or", "and": "and",
        "sll": "shl", "srl": "lshr", "sra": "ashr"}
_ALU_IMM = {"addi": "add", "xori": "xor", "ori": "or", "andi": "and",
            "slli": "shl", "srli": "lshr", "srai": "ashr"}


@trans(*_ALU_IMM)
def trans_alu_imm(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, ctx.fb.emit(_ALU_IMM[a.op], [ctx.x(a.rs1), ctx.const(imm(a))]))
    return True


@trans(*_ALU)
def trans_alu(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, ctx.fb.emit(_ALU[a.op], [ctx.x(a.rs1), ctx.x(a.rs2)]))
    return True


@trans("slti", "sltiu", "slt", "sltu")
def trans_slt(ctx: LiftContext, a) -> bool:
    rhs = ctx.const(imm(a)) if a.op.endswith("i") or a.op == "sltiu" else ctx.x(a.rs2)
    cond = "ult" if a.op in ("sltu", "sltiu") else "slt"
    ctx.set_x(a.rd, ctx.bool64(ctx.fb.icmp(cond, ctx.x(a.rs1), rhs)))
    return True


# -- 32-bit (W) operations ----------------------------------------------------------------------
_ALU_W = {"addw": "add", "subw": "sub", "sllw": "shl", "srlw": "lshr", "sraw": "ashr"}
_ALU_IMM_W = {"addiw": "add", "slliw": "shl", "srliw": "lshr", "sraiw": "ashr"}


def _word_op(ctx: LiftContext, op: str, lhs, rhs) -> None:
    fb = ctx.fb
    result = fb.emit(op, [fb.trunc(I32, lhs), fb.trunc(I32, rhs)])
    return fb.sext(I64, result)


@trans(*_ALU_IMM_W)
def trans_alu_imm_w(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, _word_op(ctx, _ALU_IMM_W[a.op], ctx.x(a.rs1), ctx.const(imm(a))))
    return True


@trans(*_ALU_W)
def trans_alu_w(ctx: LiftContext, a) -> bool:
    ctx.set_x(a.rd, _word_op(ctx, _ALU_W[a.op], ctx.x(a.rs1), ctx.x(a.rs2)))
    return True


# -- system -------------------------------------------------------------------------------------
@trans("fence")
def trans_fence(ctx: LiftContext, a) -> bool:
    ctx.fb.fence("seq_cst")
    return True


@trans("fence.i")
def trans_fence_i(ctx: LiftContext, a) -> bool:
    ctx.call("fence_i", may_trap=False)
    ctx.end_here()
    return True


@trans("ecall")
def trans_ecall(ctx: LiftContext, a) -> bool:
    ctx.trap("syscall")
    return True


@trans("ebreak")
def trans_ebreak(ctx: LiftContext, a) -> bool:
    ctx.trap("breakpoint")
    return True
