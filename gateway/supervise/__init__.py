"""Supervised processes (``process``) and the chain's local pieces built on them (``chain``):
what ``make demo``, ``pytest hil/``, the soak and crash campaigns and the tests start."""

from gateway.supervise.process import (
    Service,
    Supervisor,
    free_port,
    listening,
    wait_for,
    wait_http,
)

__all__ = [
    "Service",
    "Supervisor",
    "free_port",
    "listening",
    "wait_for",
    "wait_http",
]
