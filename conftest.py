"""Repository-wide pytest configuration: strict tools.

Many tests need a host tool we did not write (qemu-user, gdb-multiarch, a cross
compiler, capstone, ``/dev/kvm``) and skip, with a reason, where it is missing.
On a developer's machine that is a convenience; in CI it would hide tests that
never ran. So, in *strict tools* mode, every skip becomes a failure that carries
the skip's reason:

- a skip in a test's setup (``@pytest.mark.skipif``, a fixture calling
  ``pytest.skip``) is reported as an ERROR at setup;
- a skip in a test's body (``pytest.skip(...)``, ``pytest.importorskip(...)``)
  is reported as FAILED;
- a skip while collecting a module (``pytest.importorskip`` or
  ``pytest.skip(..., allow_module_level=True)`` at module level) is reported as
  a collection error, which stops the session like any other collection error.

Expected failures (``xfail``) are not skips and are left alone.

Strict mode is on when ``VM_STRICT_TOOLS=1``. When ``VM_STRICT_TOOLS`` is unset
it follows ``CI`` (``CI=true``, as GitHub Actions sets it); ``VM_STRICT_TOOLS=0``
turns it off even in CI. ``.ci/run`` exports ``VM_STRICT_TOOLS=1``.

This file also registers the ``slow`` marker: slow tests are marked so that a
reader knows why they take time; they are never skipped, and ``-m "not slow"``
deselects them for a quick local run.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping

import pytest

_STRICT = pytest.StashKey[bool]()


def strict_tools_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether skips must fail: ``VM_STRICT_TOOLS`` if set, else ``CI=true``."""
    explicit = environ.get("VM_STRICT_TOOLS", "").strip()
    if explicit:
        return explicit not in {"0", "false", "no", "off"}
    return environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STRICT] = strict_tools_enabled()
    config.addinivalue_line("markers", "slow: takes seconds (builds, subprocesses); never skipped")


def pytest_report_header(config: pytest.Config) -> str:
    if config.stash[_STRICT]:
        return "strict tools: on (VM_STRICT_TOOLS / CI): a skipped test fails"
    return "strict tools: off (set VM_STRICT_TOOLS=1 to make skipped tests fail)"


def _message(reason: str) -> str:
    # The first line is what the -ra summary shows: the reason comes first.
    return (
        f"{reason} [a skip fails in strict tools mode]\n"
        "VM_STRICT_TOOLS=1 (or CI=true) makes every skip a failure: install what the test "
        "needs (CI installs it in .ci/run), or set VM_STRICT_TOOLS=0 to let it skip."
    )


def _skip_reason(longrepr: object) -> str:
    # A skip report's longrepr is (path, lineno, reason).
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, lineno, reason = longrepr
        return f"{reason.removeprefix('Skipped: ')} ({path}:{lineno})"
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    strict = item.config.stash[_STRICT]
    if strict and call.excinfo is not None and call.excinfo.errisinstance(pytest.skip.Exception):
        # Swap the skip for a failure before the report is built, so that pytest
        # reports it (and its reason, in the -ra summary) like any failure.
        skip = call.excinfo.value
        failure = pytest.fail.Exception(_message(str(skip)), pytrace=False)
        call.excinfo = pytest.ExceptionInfo.from_exception(
            failure.with_traceback(skip.__traceback__)
        )
    report = yield
    if strict and report.skipped and not hasattr(report, "wasxfail"):
        # Any skip that reached the report another way (e.g. unittest's skipTest).
        report.outcome = "failed"
        report.longrepr = _message(_skip_reason(report.longrepr))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if collector.config.stash[_STRICT] and report.skipped:
        report.outcome = "failed"
        report.longrepr = _message(_skip_reason(report.longrepr))
    return report
