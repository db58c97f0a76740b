"""Disassembly text, byte for byte against capstone 5, for generated encodings.

For every instruction of the spec model (conftest.py), hypothesis draws operands
(registers, immediates with their edge values, rounding modes, CSRs, aq/rl,
fence sets), the model encodes them from the spec's bit layout, and our text
must equal capstone's ``f"{mnemonic} {op_str}".strip()``. Capstone 5 lacks
Zba/Zbb/Zbc/Zbs: those encodings are instead assembled back from our text by
GNU as, which must give the same word. The only text difference we keep is
capstone's swapped names for CSRs 0x3bd/0x3be (``CAPSTONE_CSR_SWAPS``).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vm_frontend_riscv.decoder import TABLE32, decode
from vm_frontend_riscv.disasm import disassemble, format_imm
from vm_frontend_riscv.regs import CSR_NAMES, CSR_NUMBERS, FREG_NAMES, XREG_NAMES, csr_name


def _check(spec: Any, args: dict[str, int], size: int, rvspec: Any) -> None:
    word = spec.encode(args)
    insn = decode(word)
    assert insn is not None, hex(word)
    ours = disassemble(insn, 0x1000)
    assert disassemble(word, 0x1000) == ours
    expected = rvspec.capstone_text_fixed(word, size, args.get("csr"))
    assert ours == expected, f"{word:#0{2 + 2 * size}x}"


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_text_equals_capstone_32(spec32_cs_name: str, rvspec: Any, data: st.DataObject) -> None:
    spec = rvspec.SPEC32[spec32_cs_name]
    _check(spec, data.draw(spec.args()), 4, rvspec)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_text_equals_capstone_16(spec16_name: str, rvspec: Any, data: st.DataObject) -> None:
    spec = rvspec.SPEC16[spec16_name]
    _check(spec, data.draw(spec.args()), 2, rvspec)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_zb_text_assembles_back_with_gnu_as(rvspec: Any, data: st.DataObject) -> None:
    if rvspec.GNU_AS is None:
        pytest.skip("riscv64-linux-gnu-as not found (apt-get install binutils-riscv64-linux-gnu)")
    words = []
    for name, spec in sorted(rvspec.SPEC32.items()):
        if spec.ext in rvspec.ZB_EXTENSIONS:
            words.append(spec.encode(data.draw(spec.args(), label=name)))
    assert len(words) == 43
    texts = [disassemble(w) for w in words]
    assert rvspec.gnu_assemble(texts) == words, texts


def test_every_word_of_every_pattern_kind_prints(rvspec: Any) -> None:
    """A quick sweep: each 32-bit pattern with its free bits all 0, all 1, and alternating."""
    for p in TABLE32.patterns:
        for fill in (0, 0xFFFFFFFF, 0x55555555, 0xAAAAAAAA):
            word = p.value | (fill & ~p.mask)
            insn = decode(word)
            if insn is None:  # a reserved rounding mode
                assert (word >> 12) & 7 in (5, 6)
                continue
            text = disassemble(insn)
            assert text and "None" not in text
            if insn.ext not in rvspec.ZB_EXTENSIONS and rvspec.capstone_text(word, 4) is not None:
                csr = insn.args.get("csr")
                assert text == rvspec.capstone_text_fixed(word, 4, csr), hex(word)


# ---------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (9, "9"), (10, "0xa"), (-9, "-9"), (-10, "-0xa"), (-2048, "-0x800"),
     (0xFFFFF, "0xfffff")],
)  # fmt: skip
def test_immediates_print_decimal_up_to_nine_then_hex(value: int, text: str) -> None:
    assert format_imm(value) == text


def test_register_and_csr_names() -> None:
    assert XREG_NAMES[0] == "zero" and XREG_NAMES[8] == "s0" and XREG_NAMES[31] == "t6"
    assert FREG_NAMES[0] == "ft0" and FREG_NAMES[10] == "fa0" and FREG_NAMES[31] == "ft11"
    assert len(set(XREG_NAMES)) == len(set(FREG_NAMES)) == 32
    assert csr_name(0x300) == "mstatus" and csr_name(0x7C0) == "1984"
    assert csr_name(0x3BD) == "pmpaddr13" and csr_name(0x3BE) == "pmpaddr14"
    assert all(CSR_NUMBERS[name] == num for num, name in CSR_NAMES.items())


def test_every_csr_name_matches_capstone(rvspec: Any) -> None:
    for csr in range(4096):
        word = csr << 20 | 11 << 15 | 2 << 12 | 10 << 7 | 0b1110011  # csrrs a0, csr, a1
        assert disassemble(word) == rvspec.capstone_text_fixed(word, 4, csr), hex(csr)


def test_branch_targets_can_be_absolute() -> None:
    beq = 0xFE000EE3  # beq zero, zero, -4
    assert disassemble(beq, 0x1000) == "beqz zero, -4"
    assert disassemble(beq, 0x1000, absolute=True) == "beqz zero, 0xffc"
    assert disassemble(0xA001, 0x2000, absolute=True) == "c.j 0x2000"


def test_illegal_words_print_as_unknown() -> None:
    assert disassemble(0x0000, 0) == "unknown"


@pytest.mark.parametrize(
    ("word", "text"),
    [
        (0x0000100F | 1 << 7, "fence.i"),  # ignored fields: capstone rejects, we print fence.i
        (0x8FF0000F, "fence"),  # reserved fm (fm=1000 with iorw, iorw) acts as a fence
        (0x0805853B, "zext.w a0, a1"),
        (0xD2017053, "fcvt.d.w ft0, sp, dyn"),  # rm != 0 on an exact conversion
        (0x4001, "c.li zero, 0"),  # HINTs capstone rejects
        (0x0006, "c.slli zero, 1"),
    ],
)
def test_encodings_capstone_lacks_print_cleanly(word: int, text: str, rvspec: Any) -> None:
    size = 2 if word & 3 != 3 else 4
    assert rvspec.capstone_text(word, size) is None
    assert disassemble(word) == text
