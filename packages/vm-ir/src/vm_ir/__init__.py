"""The standalone typed SSA IR: types, ops as data, builder, text format, verifier, passes and reference evaluator."""
