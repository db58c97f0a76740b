"""RV64GC decoder and lifter to vm-ir."""
