"""fieldgate's gateway: serial reader, batch store, uploader and their pure core."""

__version__ = "0.1.0"
