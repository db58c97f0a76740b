"""The verifier: every rule of docs/ir.md checked, every error reported with its location.

``verify(module)`` returns a list of ``VerifierError`` (empty when the module is valid); it
never stops at the first error and never raises on malformed input.
"""

from __future__ import annotations

from dataclasses import dataclass

from .infer import result_type, type_variable, value_operands
from .ir import Block, FieldRef, Function, Inst, MemFlags, Module
from .ops import (
    FCMP_CONDS,
    ICMP_CONDS,
    ORDERS,
    RMW_OPS,
    TRAP_KINDS,
    OperandKind,
)
from .printer import format_inst
from .types import Type

_LOAD_ORDERS = (None, "relaxed", "acquire", "seq_cst")
_STORE_ORDERS = (None, "relaxed", "release", "seq_cst")
_FENCE_ORDERS = ("acquire", "release", "acq_rel", "seq_cst")
_CHOICES = {
    OperandKind.ICMP_COND: ("icmp condition", ICMP_CONDS),
    OperandKind.FCMP_COND: ("fcmp condition", FCMP_CONDS),
    OperandKind.RMW_OP: ("atomic_rmw op", RMW_OPS),
    OperandKind.TRAP_KIND: ("trap kind", TRAP_KINDS),
    OperandKind.ORDER: ("ordering", ORDERS),
}


@dataclass(frozen=True)
class VerifierError:
    """One broken rule and where: file and line when parsed, function, block, instruction."""

    message: str
    function: str | None = None
    block: str | None = None
    inst_index: int | None = None
    inst_text: str | None = None
    line: int | None = None
    filename: str = "<module>"

    @property
    def location(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"{self.filename}:{self.line}")
        where = []
        if self.function is not None:
            where.append(f"@{self.function}")
        if self.block is not None:
            where.append(self.block)
        if self.inst_index is not None and self.line is None:
            where.append(f"inst {self.inst_index}")
        if where:
            parts.append("in " + ", ".join(where))
        return ": ".join(parts) if parts else self.filename

    def __str__(self) -> str:
        inst = f" `{self.inst_text}`" if self.inst_text else ""
        return f"{self.location}:{inst} {self.message}"


def _type_class_ok(t: Type, cls: str) -> bool:
    if cls == "any":
        return True
    if cls == "int":
        return t.is_int
    if cls == "float":
        return t.is_float
    if cls == "int_multibyte":
        return t.is_int and t.bits >= 16
    raise AssertionError(cls)


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: "an int type", "a float type"."""
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _constraint_ok(t: Type, constraint: str, tvar: Type | None) -> str | None:
    """None when ``t`` satisfies ``constraint``, else what was expected."""
    if constraint == "T":
        return None if tvar is None or t == tvar else str(tvar)
    if constraint == "addr":
        return None if t.is_int and t.bits in (32, 64) else "i32 or i64 (an address)"
    if constraint in ("int", "float", "any"):
        return None if _type_class_ok(t, constraint) else _a(f"{constraint} type")
    return None if t.name == constraint else constraint


def _dominators(func: Function) -> dict[Block, set[Block]]:
    """Dominator sets of the blocks reachable from the entry."""
    blocks = func_blocks(func)
    reachable: list[Block] = []
    seen: set[Block] = set()
    stack = [func.entry]
    while stack:
        b = stack.pop()
        if b in seen:
            continue
        seen.add(b)
        reachable.append(b)
        stack.extend(s for s in b.successors() if s in blocks)
    preds: dict[Block, list[Block]] = {b: [] for b in reachable}
    for b in reachable:
        for s in b.successors():
            if s in preds:
                preds[s].append(b)
    dom = {b: set(reachable) for b in reachable}
    dom[func.entry] = {func.entry}
    changed = True
    while changed:
        changed = False
        for b in reachable[1:]:
            ps = [dom[p] for p in preds[b]]
            new = set.intersection(*ps) if ps else set()
            new = new | {b}
            if new != dom[b]:
                dom[b] = new
                changed = True
    return dom


def func_blocks(func: Function) -> set[Block]:
    return set(func.blocks)


class _FunctionVerifier:
    def __init__(self, module: Module | None, func: Function, filename: str) -> None:
        self.module = module
        self.func = func
        self.filename = filename
        self.errors: list[VerifierError] = []

    def error(self, message: str, block: Block | None = None, index: int | None = None,
              inst: Inst | None = None) -> None:
        text = None
        if inst is not None:
            try:
                text = format_inst(inst)
            except Exception:  # a malformed built instruction may not print
                text = f"<{inst.op.name}>"
        line = inst.loc if inst is not None else (block.loc if block is not None else self.func.loc)
        self.errors.append(VerifierError(message, self.func.name,
                                         block.name if block is not None else None, index, text,
                                         line, self.filename))

    def run(self) -> list[VerifierError]:
        func = self.func
        if not func.blocks:
            self.error("has no blocks")
            return self.errors
        names: set[str] = set()
        for b in func.blocks:
            if b.name in names:
                self.error(f"block name {b.name} is used twice", b)
            names.add(b.name)
        entry_types = [p.type for p in func.entry.params]
        if entry_types != func.params:
            self.error(f"entry block parameters ({', '.join(map(str, entry_types))}) differ from "
                       f"the signature ({', '.join(map(str, func.params))})", func.entry)
        self._check_definitions()
        for b in func.blocks:
            self._check_block(b)
        self._check_dominance()
        return self.errors

    def _check_definitions(self) -> None:
        self.def_site: dict[object, tuple[Block, int]] = {}
        ids: dict[int, str] = {}
        for b in self.func.blocks:
            defs = [(p, -1, None) for p in b.params]
            defs += [(i.result, n, i) for n, i in enumerate(b.insts) if i.result is not None]
            for value, n, inst in defs:
                if value in self.def_site or value.id in ids:
                    self.error(f"{value} is defined more than once", b, n if n >= 0 else None,
                               inst)
                self.def_site[value] = (b, n)
                ids[value.id] = b.name

    def _check_block(self, b: Block) -> None:
        if not b.insts:
            self.error("is empty: a block ends with a terminator (br, brif, exit, trap, ret)", b)
            return
        for n, inst in enumerate(b.insts):
            last = n == len(b.insts) - 1
            if inst.op.is_terminator and not last:
                self.error(f"terminator {inst.op.name} is not the last instruction", b, n, inst)
            if last and not inst.op.is_terminator:
                self.error("does not end with a terminator (br, brif, exit, trap, ret)", b, n,
                           inst)
            self._check_inst(b, n, inst)

    # -- one instruction ------------------------------------------------------------------------
    def _check_inst(self, b: Block, n: int, inst: Inst) -> None:
        op = inst.op

        def err(message: str) -> None:
            self.error(message, b, n, inst)

        fixed = value_operands(op)
        variadic = any(o.kind in (OperandKind.VALUES, OperandKind.HELPER) for o in op.operands)
        if not variadic and len(inst.args) != len(fixed):
            err(f"takes {len(fixed)} value operand(s), has {len(inst.args)}")
            return
        ntargets = sum(o.kind is OperandKind.TARGET for o in op.operands)
        if len(inst.targets) != ntargets:
            err(f"takes {ntargets} branch target(s), has {len(inst.targets)}")
            return
        if op.typed and inst.type is None:
            err(f"{op.name} needs a type")
            return
        if not op.typed and inst.type is not None:
            err(f"{op.name} takes no type")
        tvar = type_variable(op, inst.type, inst.args)
        if tvar is not None and not _type_class_ok(tvar, op.typevar):
            what = "an integer type of 16 bits or more" if op.typevar == "int_multibyte" \
                else _a(f"{op.typevar} type")
            err(f"type {tvar} is not {what}")
        for i, (constraint, arg) in enumerate(zip(fixed, inst.args, strict=False)):
            expected = _constraint_ok(arg.type, constraint, tvar)
            if expected is not None:
                err(f"arg {i} ({arg}) has type {arg.type}, expected {expected}")
        for spec in op.operands:
            if spec.kind in _CHOICES:
                what, choices = _CHOICES[spec.kind]
                value = inst.imms.get(spec.name)
                if value not in choices:
                    err(f"unknown {what} {value!r}")
        if op.rule:
            self._check_rule(inst, tvar, err)
        handler = getattr(self, f"_check_{op.name}", None)
        if handler is not None:
            handler(inst, tvar, err)
        # the result
        expected_result = result_type(op, inst.type, inst.args, inst.imms, self.module) \
            if op.result not in ("field", "helper") else None
        if op.result in ("", ) and inst.result is not None:
            err(f"{op.name} gives no value but has result {inst.result}")
        elif op.result not in ("", "helper") and inst.result is None:
            err(f"{op.name} gives a value but has no result")
        elif (inst.result is not None and expected_result is not None
              and inst.result.type != expected_result):
            err(f"result {inst.result} has type {inst.result.type}, expected {expected_result}")

    def _check_rule(self, inst: Inst, tvar: Type | None, err) -> None:
        if tvar is None or not inst.args:
            return
        src = inst.args[0].type
        rule = inst.op.rule
        ok = {
            "wider": src.is_int and src.bits < tvar.bits,
            "narrower": src.is_int and src.bits > tvar.bits,
            "same_width": src.bits == tvar.bits,
            "float_to_int": src.is_float,
            "int_to_float": src.is_int,
            "f32_to_f64": src.name == "f32" and tvar.name == "f64",
            "f64_to_f32": src.name == "f64" and tvar.name == "f32",
        }[rule]
        if not ok:
            explain = {
                "wider": f"{tvar} is not wider than {src}",
                "narrower": f"{tvar} is not narrower than {src}",
                "same_width": f"{src} and {tvar} differ in width",
                "f32_to_f64": f"converts f32 to f64, not {src} to {tvar}",
                "f64_to_f32": f"converts f64 to f32, not {src} to {tvar}",
            }.get(rule, f"cannot convert {src} to {tvar}")
            err(explain)

    def _check_iconst(self, inst: Inst, tvar: Type | None, err) -> None:
        imm = inst.imms.get("imm")
        if not isinstance(imm, int):
            err("immediate is not an integer")
        elif tvar is not None and tvar.is_int and not (
                -(1 << max(tvar.bits - 1, 0)) <= imm <= tvar.mask):
            err(f"immediate {imm} does not fit {tvar}")

    def _check_fconst(self, inst: Inst, tvar: Type | None, err) -> None:
        imm = inst.imms.get("imm")
        if not isinstance(imm, int) or (tvar is not None and not 0 <= imm <= tvar.mask):
            err(f"immediate is not a bit pattern of {tvar}")

    def _field(self, inst: Inst, err):
        ref = inst.imms.get("field")
        if not isinstance(ref, FieldRef):
            err("needs a state field")
            return None
        state = self.module.state if self.module is not None else None
        if state is None:
            err("uses state but the module declares no state layout")
            return None
        f = state.field(ref.name)
        if f is None:
            err(f"unknown state field {ref.name}")
            return None
        if f.count is None and ref.index is not None:
            err(f"field {f.name} is not an array")
        elif f.count is not None and ref.index is None:
            err(f"field {f.name} is an array of {f.count}: give an index")
        elif f.count is not None and not 0 <= ref.index < f.count:  # type: ignore[operator]
            err(f"index {ref.index} out of range for {f.name}[{f.count}]")
        return f

    def _check_get(self, inst: Inst, tvar: Type | None, err) -> None:
        f = self._field(inst, err)
        if f is not None and inst.result is not None and inst.result.type != f.type:
            err(f"result {inst.result} has type {inst.result.type}, field {f.name} is {f.type}")

    def _check_set(self, inst: Inst, tvar: Type | None, err) -> None:
        f = self._field(inst, err)
        if f is not None and inst.args and inst.args[0].type != f.type:
            err(f"arg 0 ({inst.args[0]}) has type {inst.args[0].type}, field {f.name} is {f.type}")

    def _check_flags(self, inst: Inst, vtype: Type | None, orders: tuple, err,
                     is_load: bool) -> None:
        flags = inst.imms.get("flags")
        if not isinstance(flags, MemFlags):
            err("needs memory flags")
            return
        if vtype is None:
            return
        if flags.size is not None:
            if flags.size not in (1, 2, 4, 8, 16):
                err(f"size {flags.size} is not 1, 2, 4, 8 or 16")
            elif flags.size > vtype.bytes:
                err(f"size {flags.size} is larger than {vtype} ({vtype.bytes} bytes)")
            elif flags.size != vtype.bytes and not vtype.is_int:
                err(f"{vtype} values are accessed whole: drop size {flags.size}")
        if flags.sext:
            if not is_load:
                err("sext applies to loads only")
            elif flags.size is None or flags.size >= vtype.bytes:
                err(f"sext needs a size smaller than {vtype}")
        if flags.align < 1 or flags.align & (flags.align - 1):
            err(f"align {flags.align} is not a power of two")
        if flags.order not in orders:
            err(f"ordering {flags.order} is not allowed on a {inst.op.name}")
        if flags.order is not None and flags.size is not None and flags.size != vtype.bytes:
            err("an atomic access is of the whole value: drop size")

    def _check_load(self, inst: Inst, tvar: Type | None, err) -> None:
        self._check_flags(inst, tvar, _LOAD_ORDERS, err, is_load=True)

    def _check_store(self, inst: Inst, tvar: Type | None, err) -> None:
        vtype = inst.args[0].type if inst.args else None
        self._check_flags(inst, vtype, _STORE_ORDERS, err, is_load=False)

    def _check_atomic_rmw(self, inst: Inst, tvar: Type | None, err) -> None:
        if tvar is not None and tvar.bits == 1:
            err("atomic_rmw on i1: use i8")

    def _check_cmpxchg(self, inst: Inst, tvar: Type | None, err) -> None:
        if tvar is not None and tvar.bits == 1:
            err("cmpxchg on i1: use i8")

    def _check_fence(self, inst: Inst, tvar: Type | None, err) -> None:
        if inst.imms.get("order") not in _FENCE_ORDERS:
            err(f"a fence is one of {', '.join(_FENCE_ORDERS)}")

    def _check_call(self, inst: Inst, tvar: Type | None, err) -> None:
        name = inst.imms.get("helper")
        decl = self.module.helpers.get(str(name)) if self.module is not None else None
        if decl is None:
            err(f"unknown helper @{name}")
            return
        if len(inst.args) != len(decl.params):
            err(f"@{name} takes {len(decl.params)} argument(s), has {len(inst.args)}")
        for i, (arg, t) in enumerate(zip(inst.args, decl.params, strict=False)):
            if arg.type != t:
                err(f"arg {i} ({arg}) has type {arg.type}, expected {t}")
        if inst.result is not None:
            if decl.result is None:
                err(f"@{name} returns nothing but has result {inst.result}")
            elif inst.result.type != decl.result:
                err(f"result {inst.result} has type {inst.result.type}, @{name} returns "
                    f"{decl.result}")

    def _check_targets(self, inst: Inst, err) -> None:
        blocks = func_blocks(self.func)
        for t in inst.targets:
            if t.block not in blocks:
                err(f"branches to {t.block.name}, which is not in @{self.func.name}")
                continue
            if t.block is self.func.entry:
                err("branches to the entry block")
            params = t.block.params
            if len(t.args) != len(params):
                err(f"passes {len(t.args)} argument(s) to {t.block.name}, which takes "
                    f"{len(params)}")
                continue
            for arg, p in zip(t.args, params, strict=True):
                if arg.type != p.type:
                    err(f"passes {arg} of type {arg.type} to {t.block.name}'s {p} of type {p.type}")

    def _check_br(self, inst: Inst, tvar: Type | None, err) -> None:
        self._check_targets(inst, err)

    def _check_brif(self, inst: Inst, tvar: Type | None, err) -> None:
        self._check_targets(inst, err)

    def _check_ret(self, inst: Inst, tvar: Type | None, err) -> None:
        types = [a.type for a in inst.args]
        if types != self.func.returns:
            err(f"returns ({', '.join(map(str, types))}), the signature says "
                f"({', '.join(map(str, self.func.returns))})")

    # -- SSA ------------------------------------------------------------------------------------
    def _check_dominance(self) -> None:
        dom = _dominators(self.func)
        for b in self.func.blocks:
            for n, inst in enumerate(b.insts):
                for v in inst.uses():
                    site = self.def_site.get(v)
                    if site is None:
                        self.error(f"{v} is not defined in @{self.func.name}", b, n, inst)
                        continue
                    if b not in dom:
                        continue  # unreachable: only definedness is checked
                    dblock, dindex = site
                    ok = (dindex < n) if dblock is b else dblock in dom[b]
                    if not ok:
                        where = "later in the block" if dblock is b else f"in {dblock.name}"
                        self.error(f"{v} is used where it is not defined (defined {where}, which "
                                   f"does not dominate this use)", b, n, inst)


def _check_state(module: Module, filename: str) -> list[VerifierError]:
    errors = []
    if module.state is not None:
        for f in module.state.fields:
            if f.count is not None and f.count < 1:
                errors.append(VerifierError(f"field {f.name} has {f.count} elements",
                                            line=module.state.loc, filename=filename))
    return errors


def verify_function(func: Function, module: Module | None = None) -> list[VerifierError]:
    filename = module.filename if module is not None else "<module>"
    return _FunctionVerifier(module, func, filename).run()


def verify(module: Module) -> list[VerifierError]:
    """Every error in ``module``, in source order; an empty list when it is valid."""
    errors = _check_state(module, module.filename)
    for func in module.functions.values():
        errors.extend(verify_function(func, module))
    return errors

