"""The RV64 guest state as a vm-ir StateLayout.

``x`` and ``f`` hold the integer and floating-point registers (f as raw 64-bit patterns;
single-precision values are NaN-boxed as the F extension says). ``fflags`` and ``frm`` are the
two halves of fcsr. ``res_addr``/``res_val`` hold the LR/SC reservation: the address reserved
(all ones when none) and the value the LR read, which SC compares and swaps.
"""

from __future__ import annotations

from vm_ir import I64, StateLayout

NO_RESERVATION = (1 << 64) - 1


def make_layout() -> StateLayout:
    layout = StateLayout()
    layout.add("x", I64, 32)
    layout.add("f", I64, 32)
    layout.add("pc", I64)
    layout.add("fflags", I64)
    layout.add("frm", I64)
    layout.add("res_addr", I64)
    layout.add("res_val", I64)
    return layout


LAYOUT = make_layout()
