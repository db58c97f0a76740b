"""Execution engines: interpreter tier and LLVM JIT tier."""
