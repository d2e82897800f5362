"""Helpers shared by tests/ and hil/: run gateway services as real processes, read batches."""
