"""The root conftest.py turns skips into failures in strict tools mode.

Each test runs an inner pytest session, in a subprocess, in a temporary
directory holding a copy of the repository's conftest.py and a few tests that
skip the ways tool-dependent tests do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

TESTS = """
import pytest

@pytest.fixture
def gdb():
    pytest.skip("gdb-multiarch not found")

def test_skip_in_body():
    pytest.skip("qemu-riscv64 not found")

@pytest.mark.skipif(True, reason="capstone not installed")
def test_skip_mark():
    pass

def test_skip_in_fixture(gdb):
    pass

@pytest.mark.xfail(reason="known bug", strict=True)
def test_expected_failure():
    assert False

def test_passes():
    pass
"""

MODULE_SKIP = """
import pytest

pytest.importorskip("no_such_module_for_vm_tests")

def test_never_collected():
    pass
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester with the real conftest.py and no strictness inherited from outside."""
    pytester.makeconftest((ROOT / "conftest.py").read_text(encoding="utf-8"))
    monkeypatch.delenv("VM_STRICT_TOOLS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    return pytester


@pytest.mark.slow
def test_without_strict_tools_skips_are_skips(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_tools=TESTS)
    result = inner.runpytest_subprocess("-ra")
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*strict tools: off*"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "env",
    [{"VM_STRICT_TOOLS": "1"}, {"CI": "true"}],
    ids=["VM_STRICT_TOOLS=1", "CI=true"],
)
def test_strict_tools_turns_skips_into_failures(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    inner.makepyfile(test_tools=TESTS)
    result = inner.runpytest_subprocess("-ra")
    # A skip in the body fails the test; one in setup (mark, fixture) is a setup
    # error; xfail is untouched.
    result.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random(
        [
            "*strict tools: on*",
            "FAILED *::test_skip_in_body - *",
            "ERROR *::test_skip_mark - *",
            "ERROR *::test_skip_in_fixture - *",
            "*qemu-riscv64 not found [[]a skip fails in strict tools mode]",
            "*capstone not installed [[]a skip fails in strict tools mode]",
            "*gdb-multiarch not found [[]a skip fails in strict tools mode]",
        ]
    )


@pytest.mark.slow
def test_strict_tools_can_be_turned_off_in_ci(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("VM_STRICT_TOOLS", "0")
    inner.makepyfile(test_tools=TESTS)
    result = inner.runpytest_subprocess("-ra")
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)


@pytest.mark.slow
def test_strict_tools_fails_a_module_level_skip(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner.makepyfile(test_module_skip=MODULE_SKIP, test_other="def test_passes(): pass")
    result = inner.runpytest_subprocess("-ra")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK

    monkeypatch.setenv("VM_STRICT_TOOLS", "1")
    result = inner.runpytest_subprocess("-ra")
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the session
    result.stdout.fnmatch_lines(
        ["*could not import 'no_such_module_for_vm_tests'* [[]a skip fails in strict tools mode]"]
    )
