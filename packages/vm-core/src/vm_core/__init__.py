"""Guest memory, bus, IRQ lines, trap kinds, the error hierarchy and the protocols every layer shares."""
