"""vm-accel's tests import `kvm_guest_support` from this directory.

With ``--import-mode=importlib`` pytest does not put test directories on
``sys.path``; this file does, for this directory only.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))
