"""``/metrics``: the site's view of the fleet in Prometheus text, the same for every worker.

Gateways, their states and frames come from the database; refusals, rejects and viewer drops
from the counters every worker adds to the shared store (:mod:`web.fleet.counters`). So any
worker answers for all of them, and a scrape through a load balancer reads the same numbers
whichever worker it reaches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from web.fleet import counters

STATES = ("online", "offline", "revoked")


def state_of(row: dict) -> str:
    if row["revoked"]:
        return "revoked"
    return "online" if row["online"] else "offline"


class SiteCollector(Collector):
    """Collects from fleet rows (``status.summary`` of each gateway) and counter totals."""

    def __init__(self, rows: Iterable[dict], totals: dict[str, int]) -> None:
        self.rows = list(rows)
        self.totals = totals

    def collect(self) -> Iterator[Metric]:
        states = Counter(state_of(row) for row in self.rows)
        gateways = GaugeMetricFamily(
            "fieldgate_gateways", "Registered gateways by state.", labels=("state",)
        )
        for state in STATES:
            gateways.add_metric([state], states[state])
        yield gateways

        frames = CounterMetricFamily(
            "fieldgate_frames_received",
            "Live frames the site received from the gateway (every worker).",
            labels=("gateway",),
        )
        seen = GaugeMetricFamily(
            "fieldgate_gateway_last_seen_timestamp_seconds",
            "When the gateway's last message arrived.",
            labels=("gateway",),
        )
        alerts = GaugeMetricFamily(
            "fieldgate_gateway_alert",
            "1 for each alert the fleet page shows for the gateway.",
            labels=("gateway", "alert", "severity"),
        )
        for row in self.rows:
            frames.add_metric([row["name"]], row["frames_in"])
            if row["last_seen"] is not None:
                seen.add_metric([row["name"]], row["last_seen"])
            for alert in row.get("alerts", ()):
                alerts.add_metric([row["name"], alert["name"], alert["severity"]], 1)
        yield from (frames, seen, alerts)

        refused = CounterMetricFamily(
            "fieldgate_ingest_connections_refused",
            "Gateway sockets refused at connect, by reason.",
            labels=("reason",),
        )
        for name in counters.REFUSED.values():
            refused.add_metric([name.removeprefix("ingest_refused_")], self.totals[name])
        rejected = CounterMetricFamily(
            "fieldgate_ingest_messages_rejected",
            "Gateway messages rejected (the socket is closed), by reason.",
            labels=("reason",),
        )
        for kind, name in counters.REJECTED.items():
            rejected.add_metric([kind], self.totals[name])
        dropped = CounterMetricFamily(
            "fieldgate_viewer_frames_dropped",
            "Frames a viewer did not get: held_back (it fell behind; newer frames replaced "
            "them) or lost_upstream (the channel layer dropped them).",
            labels=("cause",),
        )
        dropped.add_metric(["held_back"], self.totals[counters.DROPPED])
        dropped.add_metric(["lost_upstream"], self.totals[counters.LOST_UPSTREAM])
        yield from (refused, rejected, dropped)
        yield CounterMetricFamily(
            "fieldgate_ingest_frames",
            "Live frames received (every worker, counted as they arrive).",
            value=self.totals[counters.FRAMES],
        )
        yield CounterMetricFamily(
            "fieldgate_viewer_connections",
            "Viewer sockets opened (gateway pages).",
            value=self.totals[counters.VIEWERS],
        )
        yield from self.security()

    def security(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "fieldgate_login_failures",
            "Failed logins (wrong user name or password).",
            value=self.totals[counters.LOGIN_FAILED],
        )
        yield CounterMetricFamily(
            "fieldgate_login_refused",
            "Logins refused with 429: too many failures from the client or for the account.",
            value=self.totals[counters.LOGIN_THROTTLED],
        )
        yield CounterMetricFamily(
            "fieldgate_viewer_refused_origin",
            "People's sockets refused at the handshake: Origin not this site's.",
            value=self.totals[counters.VIEWER_REFUSED_ORIGIN],
        )
        yield CounterMetricFamily(
            "fieldgate_viewer_messages_rejected",
            "Viewer sockets closed for a message that is not an ack (4400, 4413).",
            value=self.totals[counters.VIEWER_REJECTED],
        )
        yield CounterMetricFamily(
            "fieldgate_ingest_closed_token_invalid",
            "Open gateway sockets closed because their token was revoked or rotated.",
            value=self.totals[counters.TOKEN_CLOSED],
        )
        yield CounterMetricFamily(
            "fieldgate_consumer_errors",
            "Exceptions in a socket consumer (logged with their traceback; closed with 1011).",
            value=self.totals[counters.CONSUMER_ERRORS],
        )


def registry(rows: Iterable[dict], totals: dict[str, int]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SiteCollector(rows, totals))
    return registry
