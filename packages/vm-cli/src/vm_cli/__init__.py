"""The `vm` command line."""
