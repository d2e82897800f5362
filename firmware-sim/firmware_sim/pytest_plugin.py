"""pytest fixtures shipped with the simulator (used by tests/ and hil/)."""
