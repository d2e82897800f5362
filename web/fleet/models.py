from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

# Also a Channels group name part: ASCII letters, digits, '-', '_' and '.', under 100 chars.
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class Gateway(models.Model):
    """A registered gateway: its ingest token (hashed) and what it last reported."""

    name = models.CharField(
        max_length=63, unique=True, validators=[RegexValidator(NAME_RE, "letters, digits, _ . -")]
    )
    token_hash = models.CharField(max_length=64)
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Ingest sockets open now (more than one while a restarted reader's old socket lingers).
    connections = models.IntegerField(default=0)
    last_seen = models.DateTimeField(null=True, blank=True)
    last_status = models.JSONField(default=dict, blank=True)
    frames_in = models.BigIntegerField(default=0)
    messages_rejected = models.BigIntegerField(default=0)
    rejected_by_reason = models.JSONField(default=dict, blank=True)
    # The sample rate of the last heartbeats, oldest first (None: no rate then): the fleet
    # page's sparkline. Bounded by web.fleet.display.RATE_HISTORY.
    rate_history = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
