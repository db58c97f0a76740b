"""Metrics, events, traces and the GDB remote protocol server."""

from .metrics import Counter, Gauge, MetricError, Registry

__all__ = ["Counter", "Gauge", "MetricError", "Registry"]
