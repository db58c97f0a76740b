"""Compile-time measurement: ``uv run --frozen python -m vm_engine_jit.jit.bench``.

Compiles synthetic blocks shaped like lifted guest code (per guest instruction: two register
reads, an ALU op, a load or a store, a register write, the pc written) in batches of several
sizes, and prints the time per function: wall time of each stage, and the process's CPU time
(closer to the truth on a busy host). A trivial function (``add``, ``mul``, ``ret``) compiled
the same way is the baseline.
"""

from __future__ import annotations

import argparse
import random
import time

import llvmlite.binding as llvm

from vm_ir import I64, FunctionBuilder, MemFlags, Module, StateLayout

from .engine import JitCompiler

_KINDS = ("add", "xor", "shl", "sub", "load", "store", "icmp")


def lifted_block(module: Module, name: str, rng: random.Random, insns: int) -> None:
    fb = FunctionBuilder(module, name)
    pc = 0x1000
    for _ in range(insns):
        a = fb.get(f"x[{rng.randrange(1, 32)}]")
        b = fb.get(f"x[{rng.randrange(1, 32)}]")
        kind = rng.choice(_KINDS)
        result = None
        if kind in ("load", "store"):
            addr = fb.add(a, fb.iconst(I64, rng.randrange(-2048, 2048)))
            if kind == "load":
                result = fb.load(I64, addr, MemFlags(size=4, sext=True))
            else:
                fb.store(b, addr, MemFlags())
        elif kind == "icmp":
            result = fb.zext(I64, fb.icmp("slt", a, b))
        else:
            result = fb.emit(kind, [a, b])
        if result is not None:
            fb.set(f"x[{rng.randrange(1, 32)}]", result)
        pc += 4
        fb.set("pc", fb.iconst(I64, pc))
    fb.exit(fb.iconst(I64, pc))


def lifted_module(count: int, insns: int, seed: int = 1) -> Module:
    layout = StateLayout()
    layout.add("x", I64, 32)
    layout.add("pc", I64)
    module = Module(state=layout)
    rng = random.Random(seed)
    for i in range(count):
        lifted_block(module, f"b{i}", rng, insns)
    return module


def trivial_cpu_ms(compiler: JitCompiler, count: int) -> float:
    """CPU ms per function for ``count`` trivial functions straight through LLVM."""
    text = "\n".join(f"define i64 @trivial{i}(i64 %a, i64 %b) {{\n  %c = add i64 %a, %b\n"
                     f"  %d = mul i64 %c, %a\n  ret i64 %d\n}}" for i in range(count))
    start = time.process_time()
    ref = llvm.parse_assembly(text)
    compiler._optimize(ref)
    compiler._engine.add_module(ref)
    compiler._engine.finalize_object()
    return 1000 * (time.process_time() - start) / count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opt", type=int, default=2, help="LLVM pipeline level")
    parser.add_argument("--codegen", type=int, default=None, help="codegen level")
    parser.add_argument("--functions", type=int, default=200, help="functions per setting")
    args = parser.parse_args(argv)
    compiler = JitCompiler(opt_level=args.opt, codegen_level=args.codegen)
    compiler.compile_module(lifted_module(2, 4))  # warm up
    print(f"trivial function, batch of 100: {trivial_cpu_ms(compiler, 100):.3f} ms CPU each")
    for insns in (1, 4, 8, 24):
        for batch in (1, 10, 50):
            compiler.stats.__init__()  # type: ignore[misc]
            for rep in range(max(1, args.functions // batch)):
                compiler.compile_module(lifted_module(batch, insns, seed=rep))
            s = compiler.stats
            n = s.functions
            print(f"{insns:2} guest insns, batch {batch:3}: {s.per_function_cpu_ms:6.3f} ms CPU "
                  f"per function (wall: lower {1000 * s.lower_s / n:.3f}, parse "
                  f"{1000 * s.parse_s / n:.3f}, optimize {1000 * s.optimize_s / n:.3f}, "
                  f"codegen {1000 * s.codegen_s / n:.3f})")


if __name__ == "__main__":
    main()
