"""vm-ir's tests import their shared hypothesis strategies as ``import strategies``.

pytest runs with ``--import-mode=importlib``, which does not put a test's directory on
``sys.path``; this file does, for this directory only.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent

if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

_other = sys.modules.get("strategies")
if _other is not None and Path(getattr(_other, "__file__", "") or "").resolve().parent != _HERE:
    raise ImportError(
        f"a module named 'strategies' from {_other.__file__} is already imported; vm-ir's "
        "tests need their own (packages/vm-ir/tests/strategies.py): rename one of them"
    )
