"""Lifting RV64GC to vm-ir: one translator per operation, grouped by extension."""

from . import rva, rvf, rvi, rvm, zb, zicsr  # noqa: F401 - importing registers the translators
from .context import TRANSLATORS, LiftContext, trans

__all__ = ["TRANSLATORS", "LiftContext", "trans"]
