"""`vm ir check`, `vm ir opt` and `vm ir run` on small files; expected values worked by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

import vm_ir

MODULE = """\
state {
    x: i64[4]
    pc: i64
}

; (a - b) * 3 and a + b, in i32
func @arith(i32, i32) -> i32, i32 {
block0(v0: i32, v1: i32):
    v2 = sub v0, v1
    v3 = iconst.i32 3
    v4 = mul v2, v3
    v5 = add v0, v1
    ret v4, v5
}

func @half(f64, f64) -> f64 {
block0(v0: f64, v1: f64):
    v2 = fadd v0, v1
    v3 = fconst.f64 0.5
    v4 = fmul v2, v3
    ret v4
}

func @peek(i64) -> i32 {
block0(v0: i64):
    v1 = load.i32 v0
    ret v1
}

func @regs() -> i64 {
block0:
    v0 = get x[2]
    v1 = get pc
    v2 = add v0, v1
    ret v2
}

func @leave(i64) {
block0(v0: i64):
    exit v0
}

func @stop() {
block0:
    trap breakpoint
}

func @divide(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = udiv v0, v1
    ret v2
}
"""

BAD = """\
func @f(i64) -> i32 {
block0(v0: i64):
    v1 = add v0, v0
    ret v1
}

func @g(i8) -> i8 {
block0(v0: i8):
    v1 = iconst.i16 1
    v2 = add v0, v1
    ret v2
}
"""


@pytest.fixture
def module(write) -> Path:
    return write("module.vmir", MODULE)


# --- check -----------------------------------------------------------------------------------

def test_check_a_good_file(vm, module: Path) -> None:
    result = vm("ir", "check", module)
    assert (result.code, result.out, result.err) == (0, f"{module}: ok (7 functions)\n", "")


def test_check_reports_every_verifier_error_with_its_location(vm, write) -> None:
    path = write("bad.vmir", BAD)
    result = vm("ir", "check", path)
    assert result.code == 1
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == len(vm_ir.verify(vm_ir.parse(BAD, str(path)))) >= 2
    assert all(line.startswith(f"vm: error: {path}:") for line in lines)
    assert lines[0].startswith(f"vm: error: {path}:4: in @f, block0: `ret v1`")
    assert any(f"{path}:10: in @g" in line for line in lines)
    assert "Traceback" not in result.err


def test_check_a_parse_error(vm, write) -> None:
    path = write("parse.vmir", "func @f() {\nblock0:\n    v0 = frobnicate\n}\n")
    result = vm("ir", "check", path)
    assert result.code == 1
    assert result.err == f"vm: error: {path}:3: unknown op 'frobnicate'\n"


# --- opt -------------------------------------------------------------------------------------

def test_opt_prints_a_module_that_parses_back(vm, module: Path) -> None:
    result = vm("ir", "opt", module)
    assert result.code == 0, result.err
    again = vm_ir.parse(result.out, "optimised.vmir")
    assert vm_ir.verify(again) == []
    assert set(again.functions) == set(vm_ir.parse(MODULE).functions)
    assert vm_ir.evaluate(again, "arith", [2, 5]) == vm_ir.Returned((0xFFFFFFF7, 7))


def test_opt_refuses_an_invalid_module(vm, write) -> None:
    result = vm("ir", "opt", write("bad.vmir", BAD))
    assert result.code == 1 and result.out == ""


# --- run -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "expected"), [
    # (2 - 5) * 3 = -9, 2 + 5 = 7
    (["--func", "arith", "--args", "2", "--args", "5"], "-9\n7\n"),
    (["--func", "@arith", "--args", "2,5"], "-9\n7\n"),
    # (0x7fffffff - 1) * 3 = 0x17ffffffa, mod 2^32 0x7ffffffa; 0x7fffffff + 1 = 0x80000000
    (["-f", "arith", "-a", "0x7fffffff,1"], "0x7ffffffa\n0x80000000\n"),
    # (1.5 + 2.25) / 2
    (["--func", "half", "--args", "1.5,2.25"], "1.875\n"),
    (["--func", "peek", "--mem", "0x100:i32=-7", "--args", "0x100"], "-7\n"),
    (["--func", "peek", "--mem", "0x100:i16=0x1234", "--mem", "0x102:i8=1", "--args", "256"],
     "0x11234\n"),
    # one byte past the 64 KiB of memory
    (["--func", "peek", "--args", "0xfffd"], "trap mem_fault at 0xfffd\n"),
    (["--func", "regs", "--state", "x[2]=5", "--state", "pc=0x10"], "21\n"),
    (["--func", "regs"], "0\n"),
    (["--func", "leave", "--args", "4096"], "exit 0x1000\n"),
    (["--func", "stop"], "trap breakpoint\n"),
    (["--func", "divide", "--args", "-1,2"], "0x7fffffffffffffff\n"),
])
def test_run(vm, module: Path, options: list[str], expected: str) -> None:
    result = vm("ir", "run", module, *options)
    assert (result.code, result.out, result.err) == (0, expected, "")


def test_run_picks_the_only_function_or_main(vm, write) -> None:
    only = write("only.vmir",
                 "func @seven() -> i8 {\nblock0:\n    v0 = iconst.i8 7\n    ret v0\n}\n")
    assert vm("ir", "run", only).out == "7\n"
    two = write("two.vmir", only.read_text() + "\nfunc @main() -> i8 {\nblock0:\n"
                "    v0 = iconst.i8 -2\n    ret v0\n}\n")
    assert vm("ir", "run", two).out == "-2\n"


@pytest.mark.parametrize(("options", "message"), [
    ([], "module.vmir has functions @arith, @half, @peek, @regs, @leave, @stop, @divide and "
         "none is @main: pick one with --func"),
    (["--func", "nope"], "has no function @nope"),
    (["--func", "arith", "--args", "1"], "@arith takes 2 argument(s) (i32, i32), got 1"),
    (["--func", "arith", "--args", "1,x"],
     "argument 2 of @arith: 'x' is not a valid i32 value "
     "(write an integer from -2147483648 to 0xffffffff)"),
    (["--func", "arith", "--args", "1,0x100000000"], "'0x100000000' is not a valid i32 value"),
    (["--func", "half", "--args", "1,0x1"], "'0x1' is not a valid f64 value (write a decimal"),
    (["--func", "divide", "--args", "1,0"], "undefined behaviour: "),
    (["--func", "divide", "--args", "1,0"], "in @divide, block0: `v2 = udiv v0, v1`: division by zero"),
    (["--func", "regs", "--state", "y=1"], "no field y (its fields: x, pc)"),
    (["--func", "regs", "--state", "x=1"], "x is an array of 4: write x[INDEX]=VALUE"),
    (["--func", "regs", "--state", "pc[0]=1"], "pc is not an array"),
    (["--func", "regs", "--state", "x[4]=1"], "x has 4 elements"),
    (["--func", "regs", "--state", "pc"], "write FIELD=VALUE"),
    (["--func", "peek", "--args", "0", "--mem", "0:i7=1"], "no type i7"),
    (["--func", "peek", "--args", "0", "--mem", "0xffff:i16=1"], "memory is 0x10000 bytes"),
    (["--func", "peek", "--args", "0", "--mem", "0=1"], "write ADDR:TYPE=VALUE"),
])
def test_run_errors_are_one_line(vm, module: Path, options: list[str], message: str) -> None:
    result = vm("ir", "run", module, *options)
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("vm: error: ") and result.err.count("\n") == 1
    assert message in result.err
