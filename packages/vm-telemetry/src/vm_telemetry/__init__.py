"""Metrics, events, traces and the GDB remote protocol server."""
