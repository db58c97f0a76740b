"""Metrics: named counters and gauges in a registry, read out as a dict, JSON or the
Prometheus text format.

    registry = Registry("vm")
    insns = registry.counter("guest_instructions", "guest instructions executed")
    insns.inc(1000)
    registry.gauge("code_cache_bytes", "native code held").set(4096)
    registry.snapshot()     # {"guest_instructions": 1000, "code_cache_bytes": 4096}
    print(registry.prometheus())

A metric may carry labels: ``registry.counter("exits", "...", reason="syscall")`` is one
series of the family ``exits``. Hot loops keep plain integers and publish them here when
asked (``Counter.set_total``): a Python method call per event would cost more than the event.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*$")


class MetricError(ValueError):
    """A bad metric name, a label clash, or a counter going down."""


@dataclass
class _Metric:
    name: str
    help: str
    labels: tuple[tuple[str, str], ...]
    value: float = 0

    @property
    def key(self) -> str:
        if not self.labels:
            return self.name
        return self.name + "{" + ",".join(f'{k}="{v}"' for k, v in self.labels) + "}"


class Counter(_Metric):
    """A count that only goes up."""

    kind = "counter"

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise MetricError(f"counter {self.key} cannot go down (inc by {amount})")
        self.value += amount

    def set_total(self, total: float) -> None:
        """The count kept elsewhere (a hot loop's integer), published."""
        if total < self.value:
            raise MetricError(f"counter {self.key} cannot go down ({self.value} -> {total})")
        self.value = total


class Gauge(_Metric):
    """A value that goes up and down."""

    kind = "gauge"

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1) -> None:
        self.value += amount


@dataclass
class Registry:
    """The metrics of one component (``prefix`` starts every exported name)."""

    prefix: str = ""
    _metrics: dict[str, _Metric] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _get(self, cls: type[_Metric], name: str, help: str, labels: dict[str, str]) -> _Metric:
        if not _NAME.match(name) or not all(_NAME.match(k) for k in labels):
            raise MetricError(f"bad metric or label name in {name!r} {labels}")
        metric = cls(name, help, tuple(sorted((k, str(v)) for k, v in labels.items())))
        with self._lock:
            existing = self._metrics.get(metric.key)
            if existing is None:
                self._metrics[metric.key] = metric
                return metric
        if type(existing) is not cls:
            raise MetricError(f"{metric.key} is a {existing.kind}, not a {cls.kind}")  # type: ignore[attr-defined]
        return existing

    def counter(self, name: str, help: str = "", **labels: str) -> Counter:
        return self._get(Counter, name, help, labels)  # type: ignore[return-value]

    def gauge(self, name: str, help: str = "", **labels: str) -> Gauge:
        return self._get(Gauge, name, help, labels)  # type: ignore[return-value]

    def snapshot(self) -> dict[str, float]:
        """Every series by its key (``name`` or ``name{label="v"}``), integers as ints."""
        with self._lock:
            metrics = list(self._metrics.values())
        return {m.key: _number(m.value) for m in metrics}

    def value(self, name: str, **labels: str) -> float:
        """One series' value (0 when it was never set)."""
        key = _Metric(name, "", tuple(sorted((k, str(v)) for k, v in labels.items()))).key
        metric = self._metrics.get(key)
        return _number(metric.value) if metric is not None else 0

    def family(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """The series of one family by their labels."""
        return {m.labels: _number(m.value) for m in list(self._metrics.values())
                if m.name == name}

    def json(self) -> str:
        import json  # here: every vm run makes a Registry, few export one

        return json.dumps(self.snapshot(), sort_keys=True)

    def prometheus(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        lines: list[str] = []
        seen: set[str] = set()
        with self._lock:
            metrics = sorted(self._metrics.values(), key=lambda m: (m.name, m.labels))
        for m in metrics:
            full = f"{self.prefix}_{m.name}" if self.prefix else m.name
            if m.name not in seen:
                seen.add(m.name)
                if m.help:
                    lines.append(f"# HELP {full} {_escape_help(m.help)}")
                lines.append(f"# TYPE {full} {m.kind}")  # type: ignore[attr-defined]
            labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in m.labels)
            lines.append(f"{full}{{{labels}}} {_format(m.value)}" if labels
                         else f"{full} {_format(m.value)}")
        return "\n".join(lines) + "\n" if lines else ""


def _number(v: float) -> float:
    return int(v) if float(v).is_integer() else v


def _format(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    return str(_number(v))


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


__all__ = ["Counter", "Gauge", "MetricError", "Registry"]
