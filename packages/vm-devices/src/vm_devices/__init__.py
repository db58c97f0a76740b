"""Device models: UARTs, virtio, interrupt controllers."""
