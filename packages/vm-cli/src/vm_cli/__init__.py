"""The `vm` command line."""

import gc

# Starting `vm` makes tens of thousands of objects that live to the end (modules, classes,
# then translations), and the collector's default thresholds re-scan them over and over:
# 2-3 ms of every start. Collect young objects 30 times less often from the first import on
# (`vm run` also freezes what start-up made: run.tune_gc).
gc.set_threshold(20_000, 20, 20)
