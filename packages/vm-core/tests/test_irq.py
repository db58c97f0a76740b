"""IrqLine: level changes reach the callback once each, in order."""

from __future__ import annotations

import itertools
import threading

from vm_core import IrqLine


def test_callback_sees_each_level_change_once() -> None:
    seen: list[bool] = []
    line = IrqLine(seen.append, name="uart")
    assert not line.level
    line.raise_()
    line.raise_()  # already high: no new event
    assert line.level
    line.lower()
    line.lower()
    line.set_level(True)
    assert seen == [True, False, True]


def test_pulse_gives_an_edge_and_leaves_the_line_low() -> None:
    seen: list[bool] = []
    line = IrqLine(seen.append)
    line.pulse()
    line.pulse()
    assert seen == [True, False, True, False]
    assert not line.level


def test_pulse_on_a_high_line_only_lowers_it() -> None:
    seen: list[bool] = []
    line = IrqLine(seen.append)
    line.raise_()
    line.pulse()
    assert seen == [True, False]


def test_default_callback_does_nothing() -> None:
    line = IrqLine()
    line.pulse()
    line.raise_()
    assert line.level
    assert "level=1" in repr(line)


def test_callback_may_use_the_line_again() -> None:
    seen: list[bool] = []

    def controller(level: bool) -> None:
        seen.append(level)
        if level:
            line.lower()  # e.g. an auto-acknowledging controller

    line = IrqLine(controller)
    line.raise_()
    assert seen == [True, False]
    assert not line.level


def test_concurrent_toggles_keep_events_alternating() -> None:
    seen: list[bool] = []
    line = IrqLine(seen.append)

    def toggle() -> None:
        for _ in range(500):
            line.raise_()
            line.lower()

    threads = [threading.Thread(target=toggle) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a != b for a, b in itertools.pairwise(seen))
    assert seen[0] is True
    assert seen[-1] is False
