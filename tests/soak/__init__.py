"""Soak and crash campaigns (``python -m tests.soak``, ``make soak``, ``make crash``)."""
