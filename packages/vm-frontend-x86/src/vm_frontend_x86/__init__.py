"""x86_64 decoder and lifter to vm-ir."""
