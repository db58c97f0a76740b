"""Machines, Linux user mode, boot, snapshots and lifecycle."""
