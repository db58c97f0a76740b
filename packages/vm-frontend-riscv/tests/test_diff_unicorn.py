"""Differential tests: generated RV64GC + Zba/Zbb/Zbc/Zbs programs, run by our frontend and
interpreter and by unicorn's riscv64 CPU from the same initial state, must end in the same
x registers, f registers (bit for bit, as far as unicorn follows the spec), fflags, frm and
data memory. The generator and the runners are in ``riscv_diff.py``.

Profiles: ``riscv-diff`` (the default, a couple of hundred programs plus a few per
instruction, well under a minute) and ``riscv-diff-long`` for a longer local hunt::

    VM_RISCV_DIFF_PROFILE=riscv-diff-long uv run --frozen pytest -n auto \\
        packages/vm-frontend-riscv/tests/test_diff_unicorn.py

Unicorn 2.1.4 (QEMU 5.0's RISC-V) and the spec (unprivileged ISA 20191213, F/D 2.2, A 2.1,
C 2.0, Zba/Zbb/Zbc/Zbs 1.0.0) disagree in these places; the harness follows the spec:

1. Single-precision results of arithmetic, conversions, fsgnj*, fmv.w.x are not NaN-boxed
   (the upper half is zero, or rs2's for fsgnj*); flw's result is. Our results are compared
   on the low 32 bits and must be boxed (f register tag S).
2. Single-precision operands are not checked for NaN-boxing (the spec reads an unboxed value
   as the canonical NaN): the generator gives single-precision operations only registers
   both sides agree on (tags B and S); unboxed operands are tested against the spec in
   test_riscv_insns.py.
3. No Zba, Zbb, Zbc or Zbs (illegal instruction): a unicorn code hook executes them from the
   spec's pseudo-code (``ZB_SPEC``), so they are checked against hand-written expectations
   inside the same programs.
4. fmin/fmax with exactly one NaN operand that is signaling give the canonical NaN
   (IEEE 754-2008 minNum, F/D before 2.2) instead of the other operand; a hook gives the
   spec's result there.
5. fmadd/fmsub/fnmadd/fnmsub with inf * 0 and a quiet NaN addend leave NV clear; the spec
   says the multiply-add "must set the invalid operation exception flag" then. A hook gives
   the spec's result.
6. SC to a misaligned address with no matching reservation does not trap (QEMU compares the
   address first, and only the cmpxchg it skips checks alignment); the A chapter says a
   misaligned LR/SC address raises an address-misaligned (or access-fault) exception. The
   generator only gives SC aligned addresses; the trap is tested in test_riscv_insns.py.
7. After an exception (UC_ERR_EXCEPTION from an illegal instruction), the registers unicorn
   reports are not those at the faulting instruction: pc and the x registers written by the
   instructions before it in the same translated block read stale. So generated programs do
   not trap, and traps (pc, what earlier instructions did) are tested against the spec in
   test_riscv_insns.py.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

pytest.importorskip("unicorn")


def _harness():
    name = "riscv_diff_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("riscv_diff.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


H = _harness()

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("riscv-diff", max_examples=200, deadline=None,
                          suppress_health_check=_QUIET)
settings.register_profile("riscv-diff-long", max_examples=5000, deadline=None,
                          suppress_health_check=_QUIET)
PROFILE = os.environ.get("VM_RISCV_DIFF_PROFILE", "riscv-diff")
DIFF = settings.get_profile(PROFILE)
FOCUS = settings(DIFF, max_examples=max(3, DIFF.max_examples // 50))


@DIFF
@given(prog=H.programs())
def test_programs_agree_with_unicorn(prog) -> None:
    H.check(prog)


@pytest.mark.parametrize("name", H.GENERATOR_NAMES)
def test_each_instruction_agrees_with_unicorn(name: str) -> None:
    """Programs where about half the items are ``name``: every instruction runs each time."""

    @FOCUS
    @given(prog=H.programs(max_items=8, focus=name))
    def run(prog) -> None:
        H.check(prog)

    run()


def test_generator_covers_every_decoded_instruction() -> None:
    """Every encoding name in the decode tables is generated (or left to the trap tests)."""
    from vm_frontend_riscv.decoder import TABLE16, TABLE32

    names = {p.name for p in (*TABLE32.patterns, *TABLE16.patterns)}
    missing = names - set(H.GENERATORS) - H.NOT_GENERATED
    assert not missing, f"the differential generator does not cover {sorted(missing)}"
    assert set(H.GENERATORS) <= names, sorted(set(H.GENERATORS) - names)


def test_zb_pseudocode_examples() -> None:
    """The spec's Zb* pseudo-code as written here, on the examples the spec and its
    commentary give (so that the unicorn hook itself is right)."""
    z = H.ZB_SPEC
    assert z["orc.b"](0x0001_0000_FF00_1000, 0) == 0x00FF_0000_FF00_FF00
    assert z["rev8"](0x0102_0304_0506_0708, 0) == 0x0807_0605_0403_0201
    assert z["clz"](1, 0) == 63 and z["clz"](0, 0) == 64 and z["ctz"](0, 0) == 64
    assert z["clzw"](0xFFFF_FFFF_0000_0001, 0) == 31 and z["ctzw"](1 << 40, 0) == 32
    assert z["cpopw"](0xFFFF_FFFF_0000_0003, 0) == 2
    assert z["clmul"](0b1011, 0b11) == 0b11101
    assert z["clmulh"](1 << 63, 1 << 63) == 1 << 62
    assert z["clmulr"](1 << 63, 1 << 63) == 1 << 63
    assert z["rorw"](0x8000_0001, 1) & H.M64 == 0xFFFF_FFFF_C000_0000
    assert z["sh3add.uw"](0xFFFF_FFFF_0000_0001, 0x10) == 0x18
    assert z["max"](H.M64, 1) == 1 and z["maxu"](H.M64, 1) == H.M64
