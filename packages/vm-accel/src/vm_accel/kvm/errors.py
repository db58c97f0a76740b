"""Errors of the KVM backend, rooted in vm-core's `VmError`."""

from __future__ import annotations

import os

from vm_core import VmError


class KvmError(VmError):
    """Something the KVM backend could not do; the message says what and how to fix it."""


class KvmIoctlError(KvmError, OSError):
    """A KVM ioctl failed: `request` names it and `errno` holds the kernel's error number.

    It is also an `OSError`, so ``except OSError`` and ``e.errno`` work as usual.
    """

    def __init__(self, request: str, err: int, fix: str = "", context: str = "") -> None:
        self.request = request
        text = os.strerror(err) if err else "unknown error"
        super().__init__(
            f"{request} failed with errno {err} ({text}){f' {context}' if context else ''}",
            fix or "check the arguments against the KVM API documentation",
        )
        self.errno = err
        self.strerror = text

    def __str__(self) -> str:  # OSError would print only "[Errno n] text"
        return f"{self.problem}; {self.fix}"
