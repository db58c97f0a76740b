"""vm_core.decodetree: the table format, the loader's checks, and the decision tree.

- Fixtures: every ``decodetree_fixtures/err_*.decode`` must fail to load with the
  error its ``# expect: LINE: TEXT`` line gives; every ``ok_*.decode`` must load and
  decode each word of its ``# decode:`` lines as written.
- Fields: segments, sign extension, shifts and biases against bit arithmetic.
- Properties (hypothesis): for random tables of non-overlapping patterns, and of
  priority groups, the tree decodes every word exactly as a linear scan does; and
  any two overlapping patterns outside a group are rejected.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vm_core import VmError
from vm_core.decodetree import DecodeTableError, FieldDef, Match, load_table, parse_table

FIXTURES = Path(__file__).parent / "decodetree_fixtures"
ERR_FIXTURES = sorted(FIXTURES.glob("err_*.decode"))
OK_FIXTURES = sorted(FIXTURES.glob("ok_*.decode"))

# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


def test_there_are_fixtures_for_each_kind_of_error() -> None:
    kinds = {p.name.split("_")[1] for p in ERR_FIXTURES}
    assert {"width", "field", "format", "name", "overlap", "group", "syntax"} <= kinds


@pytest.mark.parametrize("path", ERR_FIXTURES, ids=lambda p: p.name)
def test_bad_table_is_rejected_with_its_line(path: Path) -> None:
    m = re.search(r"^# expect: (\d+): (.*)$", path.read_text(), re.MULTILINE)
    assert m, f"{path.name} has no '# expect: LINE: TEXT' line"
    line, text = int(m.group(1)), m.group(2)
    with pytest.raises(DecodeTableError) as info:
        load_table(path)
    err = info.value
    assert str(err).startswith(f"{path}:{line}: "), str(err)
    assert text in str(err)
    assert err.line == line and err.source == str(path)
    assert isinstance(err, VmError) and isinstance(err, ValueError)
    assert err.fix  # every message says what to do


def _expected_decodes(path: Path) -> list[tuple[int, str | None, dict[str, str]]]:
    out = []
    for m in re.finditer(r"^# decode: (0x[0-9a-f]+) (\S+)(.*)$", path.read_text(), re.MULTILINE):
        pairs = dict(kv.split("=", 1) for kv in m.group(3).split())
        out.append((int(m.group(1), 16), None if m.group(2) == "-" else m.group(2), pairs))
    return out


@pytest.mark.parametrize("path", OK_FIXTURES, ids=lambda p: p.name)
def test_good_table_decodes_as_written(path: Path) -> None:
    table = load_table(path)
    cases = _expected_decodes(path)
    assert cases
    for word, name, pairs in cases:
        got = table.decode(word)
        assert got == table.decode_linear(word)
        if name is None:
            assert got is None, hex(word)
            continue
        assert got is not None and got.name == name, hex(word)
        assert got.ext == pairs.pop("ext", None)
        for key, value in got.extra.items():
            assert str(value) == pairs.pop(key)
        assert got.fields == {k: int(v, 0) for k, v in pairs.items()}


# ---------------------------------------------------------------------------
# Fields and matches
# ---------------------------------------------------------------------------


def _bits(word: int, hi: int, lo: int) -> int:
    return (word >> lo) & ((1 << (hi - lo + 1)) - 1)


def _sext(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


FIELD_TABLE = """
.width 32
%plain   11:7
%signed  31:20 sext
%b_imm   31 7 30:25 11:8 sext <<1
%j_imm   31 19:12 20 30:21 sext <<1
%biased  4:2 +8
%neg     3:0 -3
@all plain=%plain signed=%signed b_imm=%b_imm j_imm=%j_imm biased=%biased neg=%neg k=7
"""


@given(st.integers(0, 2**32 - 1))
def test_fields_extract_as_bit_arithmetic_says(word: int) -> None:
    table = parse_table(FIELD_TABLE + "any " + "." * 32 + " @all ext=X op=thing n=0x10\n")
    expected = {
        "plain": _bits(word, 11, 7),
        "signed": _sext(_bits(word, 31, 20), 12),
        "b_imm": _sext(
            _bits(word, 31, 31) << 12 | _bits(word, 7, 7) << 11
            | _bits(word, 30, 25) << 5 | _bits(word, 11, 8) << 1, 13),
        "j_imm": _sext(
            _bits(word, 31, 31) << 20 | _bits(word, 19, 12) << 12
            | _bits(word, 20, 20) << 11 | _bits(word, 30, 21) << 1, 21),
        "biased": _bits(word, 4, 2) + 8,
        "neg": _bits(word, 3, 0) - 3,
        "k": 7,
    }
    m = table.decode(word)
    assert m == Match("any", expected, "X", {"op": "thing", "n": 16})
    assert table.decode_linear(word) == m
    for name, fdef in table.fields.items():
        assert fdef.extract(word) == expected[name]


def test_the_module_docstring_example_is_a_valid_table() -> None:
    import vm_core.decodetree as module

    doc = module.__doc__ or ""
    block = doc.split("A table has four kinds of line::", 1)[1].split("\nThe pattern name", 1)[0]
    table = parse_table(textwrap.dedent(block), "docstring")
    assert table.decode(0x00A00093) == Match("addi", {"rd": 1, "rs1": 0, "imm": 10}, "I", {})
    assert table.decode(0xFFF0350B) == Match("my.li", {"rd": 10, "rs1": 0, "imm": -1}, "X",
                                             {"op": "addi"})
    assert table.decode(0x0005B50B) == Match("my.ld", {"rd": 10, "rs1": 11, "imm": 0}, "X", {})
    assert table.decode(0x0000300B) is None


def test_field_def_mask_and_width() -> None:
    f = FieldDef("imm", ((31, 31), (7, 7), (30, 25), (11, 8)), signed=True, shift=1)
    assert f.nbits == 12
    assert f.mask == 0xFE000F80


def test_illegal_patterns_decode_to_none_and_groups_pick_the_first() -> None:
    table = parse_table("""
        .width 8
        %lo 3:0
        {
          illegal  0000 0000
          zero_hi  0000 ....  lo=%lo
          any      .... ....
        }
    """)
    assert table.decode(0x00) is None
    assert table.decode(0x05) == Match("zero_hi", {"lo": 5}, None, {})
    assert table.decode(0x15) == Match("any", {}, None, {})


def test_words_no_pattern_matches_decode_to_none() -> None:
    table = parse_table(".width 16\nonly 1111 0000 .... 0000\n")
    assert table.decode(0xF050) is not None
    assert table.decode(0xF051) is None
    assert table.decode(0x0050) is None


def test_the_tree_splits_on_common_bits() -> None:
    lines = [".width 16"] + [f"p{i} {i:08b} ....  ....\n" for i in range(256)]
    table = parse_table("\n".join(lines))
    assert table.depth() == 1
    assert table.decode(0x2A77).name == "p42"  # type: ignore[union-attr]


def test_pattern_lookup_by_name() -> None:
    table = parse_table(".width 8\na 0000 ....\nb 1111 ....\n")
    assert table.pattern("b").value == 0xF0
    with pytest.raises(KeyError):
        table.pattern("c")


def test_error_message_names_the_source_string() -> None:
    with pytest.raises(DecodeTableError, match=r"^mytable:2: "):
        parse_table(".width 8\nx 0000\n", "mytable")


# ---------------------------------------------------------------------------
# Properties: random tables
# ---------------------------------------------------------------------------

WIDTH = 16
FULL = (1 << WIDTH) - 1


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return (a[1] ^ b[1]) & a[0] & b[0] == 0


def _covers(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] & b[0] == a[0] and b[1] & a[0] == a[1]


def _bits_text(mask: int, value: int) -> str:
    return "".join(
        "." if not (mask >> i) & 1 else str((value >> i) & 1) for i in range(WIDTH - 1, -1, -1)
    )


def _free_run(mask: int) -> tuple[int, int] | None:
    """The lowest run of free bits in a pattern, for a field."""
    free = ~mask & FULL
    if not free:
        return None
    lo = (free & -free).bit_length() - 1
    hi = lo
    while hi + 1 < WIDTH and (free >> (hi + 1)) & 1:
        hi += 1
    return hi, lo


@st.composite
def pattern_masks(draw: st.DrawFn) -> tuple[int, int]:
    mask = draw(st.integers(0, FULL)) | draw(st.integers(0, FULL))  # mostly fixed bits
    return mask, draw(st.integers(0, FULL)) & mask


@st.composite
def random_tables(draw: st.DrawFn) -> tuple[str, list[list[tuple[int, int]]]]:
    """A table text and its entries: lone patterns and priority groups, none overlapping."""
    entries: list[list[tuple[int, int]]] = []
    for _ in range(draw(st.integers(1, 40))):
        if draw(st.booleans()) or not entries:
            group = [draw(pattern_masks())]
        else:  # a priority group: later members may overlap earlier ones, never be covered
            group = []
            for _ in range(draw(st.integers(1, 4))):
                p = draw(pattern_masks())
                if not any(_covers(q, p) for q in group):
                    group.append(p)
        outside = [p for e in entries for p in e]
        if all(not _overlap(p, q) for p in group for q in outside):
            entries.append(group)
    lines = [f".width {WIDTH}"]
    n = 0
    for group in entries:
        if len(group) > 1:
            lines.append("{")
        for mask, value in group:
            run = _free_run(mask)
            field = ""
            if run and draw(st.booleans()):
                lines.append(f"%f{n} {run[0]}:{run[1]}" + (" sext" if draw(st.booleans()) else ""))
                field = f"x=%f{n}"
            name = "illegal" if draw(st.integers(0, 9)) == 0 else f"p{n}"
            if name == "illegal":
                field = ""
            lines.append(f"{name} {_bits_text(mask, value)} {field}")
            n += 1
        if len(group) > 1:
            lines.append("}")
    return "\n".join(lines) + "\n", entries


def _words_for(entries: list[list[tuple[int, int]]]) -> st.SearchStrategy[int]:
    near = [
        st.tuples(st.just(p), st.integers(0, FULL), st.integers(0, WIDTH)).map(
            lambda t: (t[0][1] | (t[1] & ~t[0][0])) ^ ((1 << t[2]) >> 1)
        )
        for e in entries
        for p in e
    ]
    return st.one_of(st.integers(0, FULL), *near[:20]) if near else st.integers(0, FULL)


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_tree_decodes_like_a_linear_scan(data: st.DataObject) -> None:
    text, entries = data.draw(random_tables())
    table = parse_table(text)
    words = data.draw(st.lists(_words_for(entries), min_size=1, max_size=60))
    for word in words:
        assert table.decode(word) == table.decode_linear(word), hex(word)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_lone_patterns_match_at_most_once(data: st.DataObject) -> None:
    text, entries = data.draw(random_tables())
    table = parse_table(text)
    lone = [p for p in table.patterns if p.group is None]
    for word in data.draw(st.lists(_words_for(entries), min_size=1, max_size=30)):
        assert sum(p.matches(word) for p in lone) <= 1


@given(pattern_masks(), pattern_masks())
def test_overlapping_patterns_are_rejected(a: tuple[int, int], b: tuple[int, int]) -> None:
    # Make b agree with a wherever both fix a bit: then a|b's fixed bits match both.
    b = (b[0], (b[1] & ~a[0]) | (a[1] & b[0]))
    text = f".width {WIDTH}\na {_bits_text(*a)}\nb {_bits_text(*b)}\n"
    with pytest.raises(DecodeTableError, match=r":3: pattern b overlaps a \(line 2\)"):
        parse_table(text)
    # In a priority group they are fine, unless the first covers the second.
    grouped = f".width {WIDTH}\n{{\na {_bits_text(*a)}\nb {_bits_text(*b)}\n}}\n"
    if _covers(a, b):
        with pytest.raises(DecodeTableError, match="can never match"):
            parse_table(grouped)
    else:
        table = parse_table(grouped)
        word = a[1] | b[1]
        assert table.decode(word) == Match("a", {}, None, {})
