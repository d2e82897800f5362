"""firmware-sim: a simulated sensor monitor on a real (socat) virtual serial port.

It never imports ``gateway``: it is an independent peer of the reader, written from
docs/formats.md, so a codec bug cannot hide on both sides at once.
"""

__version__ = "0.1.0"
