"""The reader service: serial port in, batches and a live stream out."""
