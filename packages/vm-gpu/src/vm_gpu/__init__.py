"""GPU compute offload: CUDA, ROCm and a CPU backend."""
