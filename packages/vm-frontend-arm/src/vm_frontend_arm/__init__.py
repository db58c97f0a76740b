"""AArch64 decoder and lifter to vm-ir."""
