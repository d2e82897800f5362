"""The uploader: every sealed batch to S3 exactly once, verified, then marked "touched"."""

import logging

# Luigi logs its configuration at import ("Loaded []") and summaries at INFO; the uploader logs
# each batch itself, so Luigi speaks only when something is wrong.
for _name in ("luigi", "luigi-interface", "luigi.scheduler", "luigi.worker"):
    logging.getLogger(_name).setLevel(logging.WARNING)
