"""The uploader: every sealed batch to S3 exactly once, verified, then marked "touched"."""
