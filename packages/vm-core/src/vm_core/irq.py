"""`IrqLine`: one interrupt line from a device to an interrupt controller."""

from __future__ import annotations

import threading
from collections.abc import Callable


def _ignore(level: bool) -> None:
    """The default sink: a line nobody listens to."""


class IrqLine:
    """An interrupt line with a level, reported to `callback(level)` on every change.

    Level-triggered devices call `raise_()` and `lower()` (or `set_level`);
    edge-triggered ones call `pulse()`. The callback (the interrupt controller,
    or an accelerator's IRQ injection) runs on the caller's thread, in the
    order of the changes; it may use the line itself again.
    """

    def __init__(
        self, callback: Callable[[bool], None] | None = None, *, name: str = "irq"
    ) -> None:
        self.name = name
        self._callback = callback or _ignore
        self._level = False
        self._lock = threading.RLock()

    @property
    def level(self) -> bool:
        """True while the line is asserted."""
        return self._level

    def set_level(self, level: bool) -> None:
        """Drive the line to `level`; the callback runs only if the level changes."""
        with self._lock:
            if self._level == level:
                return
            self._level = level
            self._callback(level)

    def raise_(self) -> None:
        """Assert the line."""
        self.set_level(True)

    def lower(self) -> None:
        """Deassert the line."""
        self.set_level(False)

    def pulse(self) -> None:
        """Signal an edge: assert, then deassert, leaving the line low.

        On a line that is already high this only lowers it.
        """
        with self._lock:
            self.set_level(True)
            self.set_level(False)

    def __repr__(self) -> str:
        return f"IrqLine({self.name!r}, level={int(self._level)})"
