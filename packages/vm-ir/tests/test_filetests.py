"""Every ``filetests/**/*.vmir`` file, one test each (id: its path under filetests/).

``VM_TEST_BLESS=1`` rewrites the ``; check:`` lines of ``test optimize`` files from the
current output instead of comparing (read the diff before committing it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vm_ir import OPS
from vm_ir.filetest import ops_run_by, read_filetest, run_filetest

ROOT = Path(__file__).resolve().parent / "filetests"
FILES = sorted(ROOT.rglob("*.vmir"))


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(ROOT).as_posix() for p in FILES])
def test_filetest(path: Path) -> None:
    failures = run_filetest(path)
    assert not failures, "\n".join(failures)


def test_there_are_enough_filetests() -> None:
    assert len(FILES) >= 60
    folders = {p.relative_to(ROOT).parts[0] for p in FILES}
    assert folders == {"optimize", "parse", "run", "verify"}


def test_every_op_is_executed_by_some_run_filetest() -> None:
    executed: set[str] = set()
    for path in FILES:
        executed |= ops_run_by(path)
    missing = sorted(set(OPS) - executed)
    assert not missing, f"ops no `test run` filetest executes: {', '.join(missing)}"


def test_every_filetest_states_what_it_tests() -> None:
    """Each file opens with its header and has at least one expectation of its kind."""
    for path in FILES:
        ft = read_filetest(path)
        assert ft.headers, path
        assert not ft.problems, (path, ft.problems)
        if "verify" in ft.headers and path.parent.name == "verify" and path.name != "clean.vmir":
            assert ft.errors, f"{path}: a verify/ file expects at least one error"


# --- the runner itself ---------------------------------------------------------------------

ADD = """
func @f(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = add v0, v1
    ret v2
}
"""


def _file(tmp_path: Path, text: str, name: str = "case.vmir") -> Path:
    path = tmp_path / name
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def _run(tmp_path: Path, text: str, **kw) -> list[str]:
    return run_filetest(_file(tmp_path, text), **kw)


def test_a_passing_file_gives_no_failures(tmp_path: Path) -> None:
    assert _run(tmp_path, "test run\n" + ADD + "; run: %f(1, 2) == 3\n") == []


def test_a_wrong_run_expectation_fails_with_file_line_and_executor(tmp_path: Path) -> None:
    failures = _run(tmp_path, "test run\n" + ADD + "; run: %f(1, 2) == 4\n")
    path = tmp_path / "case.vmir"
    assert failures == [f"{path}:8: [evaluator] %f: expected 4, got 3",
                        f"{path}:8: [optimized] %f: expected 4, got 3"]


def test_run_line_forms(tmp_path: Path) -> None:
    text = """
test run
state {
    x: i64[4]
    pc: i64
    counter: i64
}
helper @bump(i64) -> i64
helper @fail()

func @two(f64) -> f64, i8 {
block0(v0: f64):
    v1 = fneg v0
    v2 = iconst.i8 -1
    ret v1, v2
}
; run: %two(nan:0x7ff4000000000000) == nan:0xfff4000000000000, 255
; run: %two(1.0) == -1.0, -1

func @none() {
block0:
    ret
}
; run: %none() == ()

func @leave() {
block0:
    v0 = get x[1]
    v1 = load.i64 v0
    set x[2], v1
    v2 = call @bump(v1)
    v3 = get pc
    exit v3
}
; run: %leave() [x[1]=0x100, pc=0x1000, mem.i64[0x100]=7, counter=1] == exit 0x1000 [x[2]=7, counter=8]
; run: %leave() [x[1]=0x10000] == trap mem_fault at 0x10000
; run: %leave() [x[1]=0xfffc] == trap mem_fault [x[2]=0]

func @oops() -> f32 {
block0:
    call @fail()
    v0 = fconst.f32 0.0
    v1 = fdiv v0, v0
    ret v1
}
; run: %oops() == trap user

func @nan() -> f32 {
block0:
    v0 = fconst.f32 0.0
    v1 = fdiv v0, v0
    ret v1
}
; run: %nan() == nan:any

func @ub(i32) -> i32 {
block0(v0: i32):
    v1 = iconst.i32 0
    v2 = sdiv v0, v1
    ret v2
}
; run: %ub(1) == undefined
"""
    assert _run(tmp_path, text) == []


def test_wrong_expectations_of_every_kind_fail(tmp_path: Path) -> None:
    text = """
test run
state {
    pc: i64
}

func @leave(i64) {
block0(v0: i64):
    set pc, v0
    v1 = load.i64 v0
    exit v0
}
; run: %leave(8) == exit 9
; run: %leave(8) == trap mem_fault
; run: %leave(0x10000) == trap misaligned
; run: %leave(0x10000) == trap mem_fault at 0x10008
; run: %leave(8) == exit 8 [pc=7]
; run: %leave(8) [mem.i64[0]=5] == exit 8 [mem.i64[0]=6]
; run: %leave(8) == undefined
"""
    failures = _run(tmp_path, text, executors={"evaluator": vm_ir_evaluator()})
    assert [f.split(": ", 1)[1] for f in failures] == [
        "[evaluator] %leave: expected exit 9, got exit 0x8",
        "[evaluator] %leave: expected trap mem_fault, got exit 0x8",
        "[evaluator] %leave: expected trap misaligned, got trap mem_fault at 0x10000",
        "[evaluator] %leave: expected trap mem_fault at 0x10008, got trap mem_fault at 0x10000",
        "[evaluator] %leave: after the call pc is 8, expected 7",
        "[evaluator] %leave: after the call mem.i64[0] is 5, expected 6",
        "[evaluator] %leave: expected undefined, got exit 0x8",
    ]
    assert [int(f.split(":")[1]) for f in failures] == [12, 13, 14, 15, 16, 17, 18]


def vm_ir_evaluator():
    from vm_ir.filetest import evaluator_executor

    return evaluator_executor


def test_undefined_behaviour_where_a_value_was_expected_fails(tmp_path: Path) -> None:
    text = """
test run
func @ub(i64) -> i64 {
block0(v0: i64):
    v1 = iconst.i64 0
    v2 = udiv v0, v1
    ret v2
}
; run: %ub(1) == 0
"""
    failures = _run(tmp_path, text, executors={"evaluator": vm_ir_evaluator()})
    assert len(failures) == 1
    assert "undefined behaviour" in failures[0] and "division by zero" in failures[0]


def test_bad_run_lines_are_reported(tmp_path: Path) -> None:
    text = "test run\n" + ADD + """
; run: %f(1, 2 == 3
; run: %g(1, 2) == 3
; run: %f(1) == 3
; run: %f(1, 2) == 3, 4
; run: %f(1, 2) [y=1] == 3
; run: %f(1, 2) == 1.5
; run: %f(1, 2) == 3 [mem.q7[0]=1]
"""
    failures = _run(tmp_path, text)
    assert len(failures) == 1 and "cannot read run line" in failures[0]  # the unreadable one
    text = text.replace("; run: %f(1, 2 == 3\n", "")
    failures = _run(tmp_path, text, executors={"evaluator": vm_ir_evaluator()})
    messages = [f.split(": ", 1)[1] for f in failures]
    assert messages == [
        "[evaluator] %g: no function @g in the file",
        "[evaluator] %f: takes 2 argument(s), the run line gives 1",
        "[evaluator] %f: returns 1 value(s), the run line expects 2",
        "[evaluator] %f: bad run line: no state field 'y'",
        "[evaluator] %f: bad run line: invalid literal for int() with base 0: '1.5'",
        "[evaluator] %f: bad run line: unknown type 'q7' in 'mem.q7[0]'",
    ]


def test_custom_executors_get_the_module_function_and_inputs(tmp_path: Path) -> None:
    from vm_ir import Returned

    calls = []

    def fake(module, func_name, args, state, memory, helpers):
        calls.append((func_name, args, state["pc"], memory.load(0x10, 1), sorted(helpers)))
        return Returned((args[0] + 1,))

    text = """
test run
state {
    pc: i64
}
func @f(i64) -> i64 {
block0(v0: i64):
    ret v0
}
; run: %f(5) [pc=0x40, mem.i8[0x10]=3] == 6
; run: %f(5) == 5
; run: %f(5) == undefined
"""
    failures = _run(tmp_path, text, executors={"fake": fake})
    assert len(failures) == 1 and "[fake] %f: expected 5, got 6" in failures[0]
    assert calls[0][:4] == ("f", [5], 0x40, 3) and "bump" in calls[0][4]
    assert len(calls) == 2  # `undefined` is only checked where the executor reports it


def test_unexpected_verifier_error_fails(tmp_path: Path) -> None:
    text = """
test verify
func @f(i64, i32) -> i64 {
block0(v0: i64, v1: i32):
    v2 = add v0, v1
    ret v2
}
"""
    failures = _run(tmp_path, text)
    assert len(failures) == 1
    assert failures[0].startswith(f"{tmp_path / 'case.vmir'}:4: unexpected verifier error: ")
    assert "in @f, block0: `v2 = add v0, v1` arg 1 (v1) has type i32, expected i64" in failures[0]


def test_expected_error_that_is_not_reported_fails(tmp_path: Path) -> None:
    text = """
test verify
func @f(i64) -> i64 {
block0(v0: i64):
    v1 = add v0, v0           ; error: has type i32
    ret v1                    ; error: anything
}
"""
    failures = _run(tmp_path, text)
    assert [f.split(": ", 1)[1] for f in failures] == [
        "expected error 'has type i32' was not reported",
        "expected error 'anything' was not reported",
    ]


def test_expected_error_on_the_wrong_line_fails(tmp_path: Path) -> None:
    text = """
test verify
func @f(i64, i32) -> i64 {
block0(v0: i64, v1: i32):   ; error: has type i32
    v2 = add v0, v1
    ret v2
}
"""
    failures = _run(tmp_path, text)
    assert len(failures) == 2
    assert ":4: unexpected verifier error" in failures[0]
    assert ":3: expected error 'has type i32' was not reported" in failures[1]


def test_parse_errors_are_matched_like_verifier_errors(tmp_path: Path) -> None:
    text = """
test verify
func @f() {
block0:
    v0 = iconst.i64 $1        ; error: cannot read '$1'
    ret
}
"""
    assert _run(tmp_path, text) == []
    failures = _run(tmp_path, text.replace("cannot read", "cannot parse"))
    assert "unexpected parse error: cannot read '$1'" in failures[0]
    failures = _run(tmp_path, "test run\n" + ADD.replace("add", "plus") + "; run: %f(1, 2) == 3\n")
    assert failures == [f"{tmp_path / 'case.vmir'}:5: parse error: unknown op 'plus'"]


def test_a_clean_verify_file_must_round_trip(tmp_path: Path) -> None:
    assert _run(tmp_path, "test verify\n" + ADD) == []


def test_file_level_problems(tmp_path: Path) -> None:
    assert "no test header" in _run(tmp_path, ADD)[0]
    assert "unknown test 'frobnicate'" in _run(tmp_path, "test frobnicate\n" + ADD)[0]
    assert "has `; run:` lines but no `test run` header" in _run(
        tmp_path, "test verify\n" + ADD + "; run: %f(1, 2) == 3\n")[0]
    assert "`test run` without any `; run:` line" in _run(tmp_path, "test run\n" + ADD)[0]
    assert "without any `; check:` line" in _run(tmp_path, "test optimize\n" + ADD)[0]


IDENTITY = """
func @id(i64) -> i64 {
block0(v0: i64):
    ret v0
}
"""


def test_checks_match_in_order(tmp_path: Path) -> None:
    ok = "; check: func @id\n; nextln: block0(v0: i64):\n; check:   ret   v0\n; not: add\n"
    assert _run(tmp_path, "test optimize\n" + IDENTITY + ok) == []
    out_of_order = "; check: ret v0\n; check: block0\n"
    failures = _run(tmp_path, "test optimize\n" + IDENTITY + out_of_order)
    assert len(failures) == 1
    assert ":8: check not found (it occurs only before the previous match): 'block0'" in failures[0]
    assert "output:\nfunc @id(i64) -> i64 {" in failures[0]
    wrong_next = "; check: func @id\n; nextln: ret v0\n"
    failures = _run(tmp_path, "test optimize\n" + IDENTITY + wrong_next)
    assert "nextln not matched: 'ret v0'; the next line is 'block0(v0: i64):'" in failures[0]
    forbidden = "; check: block0\n; not: ret\n; check: }\n"
    failures = _run(tmp_path, "test optimize\n" + IDENTITY + forbidden)
    assert "`not` text found: 'ret'" in failures[0]
    assert _run(tmp_path, "test optimize\n" + IDENTITY + "; check: iconst\n")


def test_bless_rewrites_the_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vm_ir

    text = "test optimize\n; a comment that stays\n" + ADD + "; check: stale\n; not: mul\n"
    path = _file(tmp_path, text)
    assert run_filetest(path)  # the stale check fails
    assert run_filetest(path, bless=True) == []
    blessed = path.read_text()
    expected = vm_ir.print_module(vm_ir.optimize(vm_ir.parse(ADD)))
    checks = [line.removeprefix("; check: ") for line in blessed.splitlines()
              if line.startswith("; check: ")]
    assert checks == [line for line in expected.splitlines() if line.strip()]
    assert "stale" not in blessed and "; a comment that stays" in blessed
    assert "; not: mul" in blessed
    assert run_filetest(path) == []
    # the environment variable blesses too
    path.write_text(text)
    monkeypatch.setenv("VM_TEST_BLESS", "1")
    assert run_filetest(path) == []
    assert path.read_text() == blessed


def test_optimize_must_keep_the_module_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vm_ir.filetest as filetest

    def breaks_it(module):
        func = module.functions["f"]
        func.entry.insts.reverse()  # ret first: invalid
        return module

    monkeypatch.setattr(filetest, "optimize", breaks_it)
    failures = _run(tmp_path, "test optimize\ntest run\n" + ADD + "; check: ret\n"
                    "; run: %f(1, 2) == 3\n")
    assert any("optimize produced invalid IR" in f for f in failures)
    assert any("[optimized] %f: AssertionError: optimize produced invalid IR" in f
               for f in failures)
    assert not any("[evaluator]" in f for f in failures)


def test_the_optimized_executor_checks_that_passes_keep_meaning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vm_ir.filetest as filetest

    def miscompiles(module):
        module.functions["f"].entry.insts[0].op = OPS["sub"]
        return module

    monkeypatch.setattr(filetest, "optimize", miscompiles)
    failures = _run(tmp_path, "test run\n" + ADD + "; run: %f(5, 2) == 7\n")
    assert failures == [f"{tmp_path / 'case.vmir'}:8: [optimized] %f: expected 7, got 3"]


def test_ops_run_by_lists_ops_of_run_files_only(tmp_path: Path) -> None:
    assert ops_run_by(_file(tmp_path, "test run\n" + ADD + "; run: %f(1, 2) == 3\n")) == {
        "add", "ret"}
    assert ops_run_by(_file(tmp_path, "test verify\n" + ADD, "v.vmir")) == set()


def test_parse_run_line_parts() -> None:
    from vm_ir.filetest import RunLineError, parse_run_line

    run = parse_run_line("%f(1, -2, nan:0x7ff4000000000000) [x[1]=5, mem.i64[0x100]=7] "
                         "== 3, 4 [x[2]=12]", 9)
    assert (run.line, run.func, run.args) == (9, "f", ["1", "-2", "nan:0x7ff4000000000000"])
    assert run.pre == [("x[1]", "5"), ("mem.i64[0x100]", "7")]
    assert run.expect == ("values", ["3", "4"])
    assert run.post == [("x[2]", "12")]
    assert parse_run_line("%g() == ()").expect == ("values", [])
    assert parse_run_line("%g() == exit 0x1004").expect == ("exit", ["0x1004"])
    assert parse_run_line("%g() == trap user").expect == ("trap", ["user"])
    assert parse_run_line("%g() == trap mem_fault at 8").expect == ("trap", ["mem_fault", "8"])
    assert parse_run_line("%g() == undefined").expect == ("undefined", [])
    for bad in ("f(1) == 2", "%f(1 == 2", "%f(1) 2", "%f(1) ==", "%f(1) == exit",
                "%f(1) == trap", "%f(1,) == 2", "%f(1) [x] == 2", "%f(1) == 2 x]"):
        with pytest.raises(RunLineError):
            parse_run_line(bad)
