"""vm-telemetry's metrics: counters only go up, labels make series, the exports are the
formats they claim (Prometheus text parsed back line by line)."""

from __future__ import annotations

import json
import re

import pytest

from vm_telemetry import MetricError, Registry


def test_counters_gauges_and_labels() -> None:
    r = Registry("vm")
    c = r.counter("guest_instructions", "guest instructions executed")
    c.inc(5)
    c.inc()
    assert r.counter("guest_instructions") is c
    r.counter("exits", "exits by reason", reason="syscall").inc(3)
    r.counter("exits", reason="mem_fault").inc()
    g = r.gauge("code_bytes")
    g.set(10)
    g.inc(-4)
    assert r.snapshot() == {"guest_instructions": 6, 'exits{reason="syscall"}': 3,
                            'exits{reason="mem_fault"}': 1, "code_bytes": 6}
    assert r.value("exits", reason="syscall") == 3
    assert r.value("never") == 0
    assert r.family("exits") == {(("reason", "syscall"),): 3, (("reason", "mem_fault"),): 1}
    assert json.loads(r.json())["guest_instructions"] == 6


def test_counters_refuse_to_go_down_and_kinds_do_not_mix() -> None:
    r = Registry()
    c = r.counter("n")
    c.set_total(10)
    with pytest.raises(MetricError):
        c.inc(-1)
    with pytest.raises(MetricError):
        c.set_total(9)
    with pytest.raises(MetricError):
        r.gauge("n")
    with pytest.raises(MetricError):
        r.counter("bad name")


def test_prometheus_text() -> None:
    r = Registry("vm")
    r.counter("exits", 'exits "by" reason', reason='a"b').inc(2)
    r.counter("exits", reason="syscall").inc(1)
    r.gauge("ratio").set(0.5)
    text = r.prometheus()
    lines = text.splitlines()
    assert lines[0] == '# HELP vm_exits exits "by" reason'
    assert lines[1] == "# TYPE vm_exits counter"
    assert 'vm_exits{reason="a\\"b"} 2' in lines
    assert 'vm_exits{reason="syscall"} 1' in lines
    assert "# TYPE vm_ratio gauge" in lines and "vm_ratio 0.5" in lines
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="([^"\\]|\\.)*",?)*\})? \S+$')
    assert all(line.startswith("#") or sample.match(line) for line in lines)
    assert text.endswith("\n")
