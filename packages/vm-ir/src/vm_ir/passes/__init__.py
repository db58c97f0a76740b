"""Optimisation passes (being written)."""

from __future__ import annotations

from ..ir import Module


def optimize(module: Module) -> Module:
    return module
