"""Ahead-of-time translation of ELF files to native code."""
