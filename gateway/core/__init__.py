"""The pure core: framing, records, batching, keys, plans and arithmetic. No I/O, no clock.

Every module here imports only the standard library and other core modules, and never
reads the clock, the environment or a file: ``now``, limits and policies are arguments.
(tests/unit/core/test_purity.py walks this folder and checks it.)
"""
