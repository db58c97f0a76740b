"""The README's opening example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert example is not None, "README.md should open with a python example"
    exec(compile(example.group(1), str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert out.startswith("hi\n")
    assert "hits unmapped address 0x81000000" in out
