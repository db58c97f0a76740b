"""Every vm-ir filetest with ``; run:`` lines, run through the JIT executor: the same outcome,
state and memory the filetest expects of the evaluator (``== undefined`` lines are skipped:
the JIT does not report undefined behaviour)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vm_engine_jit.jit import JitCompiler, JitExecutor, filetest_executor
from vm_ir.filetest import read_filetest, run_filetest

ROOT = Path(__file__).resolve().parents[2] / "vm-ir" / "tests" / "filetests"
RUN_FILES = sorted(p for p in ROOT.rglob("*.vmir") if read_filetest(p).runs)


def test_there_are_run_filetests() -> None:
    assert len(RUN_FILES) >= 50
    assert {p.relative_to(ROOT).parts[0] for p in RUN_FILES} >= {"run", "optimize"}


@pytest.mark.parametrize("path", RUN_FILES, ids=[p.relative_to(ROOT).as_posix() for p in RUN_FILES])
def test_filetest_through_the_jit(path: Path) -> None:
    failures = run_filetest(path, executors={"jit": filetest_executor})
    assert not failures, "\n".join(failures)


def test_filetests_on_a_baseline_target() -> None:
    """The same files compiled for a CPU without FMA, AVX or cmpxchg16b: fma becomes a call to
    libm, 16-byte atomics plain read-modify-writes."""
    compiler = JitCompiler(cpu="x86-64", features="") if "x86_64" in _triple() else JitCompiler()
    executor = JitExecutor(compiler)
    failures = [f for path in RUN_FILES
                for f in run_filetest(path, executors={"jit-baseline": executor})]
    assert not failures, "\n".join(failures)


def _triple() -> str:
    import llvmlite.binding as llvm

    return llvm.get_process_triple()


def test_the_jit_executor_reports_wrong_expectations(tmp_path: Path) -> None:
    path = tmp_path / "wrong.vmir"
    path.write_text("""test run
state {
    pc: i64
}
func @f(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = add v0, v1
    ret v2
}
; run: %f(1, 2) == 4
func @g(i64) {
block0(v0: i64):
    set pc, v0
    v1 = load.i64 v0 align 8
    exit v0
}
; run: %g(0x10000) == trap mem_fault at 0x10008
; run: %g(0x101) == trap mem_fault
; run: %g(0x100) == exit 0x100 [pc=0x104]
; run: %g(0x100) == undefined
""")
    failures = run_filetest(path, executors={"jit": JitExecutor()})
    assert [f.split(": ", 1)[1] for f in failures] == [
        "[jit] %f: expected 4, got 3",
        "[jit] %g: expected trap mem_fault at 0x10008, got trap mem_fault at 0x10000",
        "[jit] %g: expected trap mem_fault, got trap misaligned at 0x101",
        "[jit] %g: after the call pc is 256, expected 0x104",
    ]
