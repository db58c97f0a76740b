"""Hardware acceleration: KVM, HVF and WHPX backends."""
