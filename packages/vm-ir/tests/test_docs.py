"""docs/ir.md: its generated op reference is up to date, and its examples are valid vm-ir."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

import vm_ir
from vm_ir.filetest import run_filetest

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "ir.md"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_ir_docs", ROOT / "tools" / "gen_ir_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _generator()


def test_the_generated_reference_is_up_to_date() -> None:
    assert gen.main(["--check"]) == 0, "run `uv run python tools/gen_ir_docs.py`"


def test_check_fails_on_a_stale_doc_and_the_generator_fixes_it(tmp_path: Path) -> None:
    stale = tmp_path / "ir.md"
    stale.write_text(DOC.read_text().replace(
        "Wrapping addition.", "Addition, perhaps."))
    assert gen.main(["--check", "--doc", str(stale)]) == 1
    assert gen.main(["--doc", str(stale)]) == 0
    assert gen.main(["--check", "--doc", str(stale)]) == 0
    assert stale.read_text() == DOC.read_text()


def test_check_fails_without_the_markers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bare = tmp_path / "ir.md"
    bare.write_text("# vm-ir\n")
    assert gen.main(["--check", "--doc", str(bare)]) == 1
    assert "needs the markers" in capsys.readouterr().err


def test_the_reference_covers_every_op_with_its_syntax() -> None:
    text = DOC.read_text()
    for op in vm_ir.OPS.values():
        assert f"#### `{op.name}`" in text
        assert gen.syntax(op) in text
    assert "do not edit" in text
    assert gen.syntax(vm_ir.OPS["load"]) == "vN = load.T addr [size N] [sext] [align N] [ordering]"
    assert gen.syntax(vm_ir.OPS["atomic_rmw"]) == "vN = atomic_rmw.T op addr, v order"
    assert gen.syntax(vm_ir.OPS["brif"]) == "brif c, then(args...), else(args...)"
    assert gen.syntax(vm_ir.OPS["call"]) == "[vN =] call @helper(args...)"
    assert gen.syntax(vm_ir.OPS["icmp"]) == "vN = icmp cond a, b"


def _fenced_blocks(text: str) -> list[str]:
    return re.findall(r"```\n(.*?)```", text, flags=re.S)


def test_the_ir_examples_in_the_docs_parse_and_verify() -> None:
    examples = [b for b in _fenced_blocks(DOC.read_text())
                if b.lstrip().startswith(("func", "state"))]
    assert len(examples) >= 2
    for example in examples:
        module = vm_ir.parse(example, "docs/ir.md")
        assert vm_ir.verify(module) == [], example
        assert vm_ir.parse(vm_ir.print_module(module)) is not None


def test_the_filetest_example_in_the_docs_passes(tmp_path: Path) -> None:
    (example,) = [b for b in _fenced_blocks(DOC.read_text()) if b.startswith("test ")]
    path = tmp_path / "example.vmir"
    path.write_text(example)
    assert run_filetest(path) == []


def test_add_an_op_checklist_names_the_steps() -> None:
    text = (ROOT / "docs" / "add-an-op.md").read_text()
    for step in ("ops.py", "semantics.py", "evaluator.py", "verifier.py", "filetests",
                 "gen_ir_docs.py", "OpDef"):
        assert step in text, step


def test_the_readme_example_runs(capsys: pytest.CaptureFixture) -> None:
    readme = (ROOT / "packages" / "vm-ir" / "README.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "v3 = iconst.i64 7" in printed and "v1 = iconst" not in printed
