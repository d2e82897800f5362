"""``gateway metrics``: what the services published and the data dir holds, as Prometheus text.

The same facts as ``gateway status``, named and typed the Prometheus way (``_total`` counters,
``_bytes`` and ``_seconds`` units, ``_timestamp_seconds`` for times), one sample set per data
dir labelled with its gateway id. ``--textfile PATH`` writes them atomically for
node_exporter's textfile collector. Counters come from the services' own counts since they
started: Prometheus' ``rate()`` and ``increase()`` handle the reset at a restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from gateway.commands.status import SERVICES, collect_status
from gateway.core.not_stored import ACCEPTED_CAUSES
from gateway.settings import Settings
from gateway.store.layout import discover_data_dirs

# (metric, the reader counter it reports, help)
READER_COUNTERS = (
    ("fieldgate_bytes_read", "bytes_read", "Bytes read from the serial port."),
    ("fieldgate_lines_read", "lines_read", "Complete lines read from the serial port."),
    ("fieldgate_rows_accepted", "rows_accepted", "Lines accepted and numbered with a seq."),
    ("fieldgate_device_gaps", "device_gaps", "Jumps of the device counter (lines lost)."),
    (
        "fieldgate_device_lines_lost",
        "device_lines_lost",
        "Lines the device counter says are missing.",
    ),
    ("fieldgate_device_counter_resets", "counter_resets", "Times the device counter went back."),
    ("fieldgate_port_reconnects", "reconnects", "Times the serial port was opened again."),
    ("fieldgate_port_outages", "port_outages", "Times the serial port was lost."),
    (
        "fieldgate_port_open_failures",
        "port_open_failures",
        "Attempts to open the serial port that failed.",
    ),
    ("fieldgate_overflow_bytes", "overflow_bytes", "Bytes dropped because storing fell behind."),
    ("fieldgate_batches_sealed", "batches_sealed", "Batches sealed by the running reader."),
    ("fieldgate_store_errors", "store_errors", "Writes the disk refused."),
)
UPLOADER_COUNTERS = (
    ("fieldgate_upload_failures", "failures", "Failed upload attempts."),
    ("fieldgate_uploaded_bytes", "bytes", "Object bytes uploaded and verified."),
)


class GatewayCollector(Collector):
    """Reads the data dirs under ``GATEWAY_DATA_DIR`` at each collection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}

        def family(kind, name: str, doc: str, labels: tuple[str, ...] = ()) -> Metric:
            if name not in families:
                families[name] = kind(name, doc, labels=("gateway", *labels))
            return families[name]

        now = time.time()
        data_dirs = discover_data_dirs(self.settings.data_dir)
        yield GaugeMetricFamily(
            "fieldgate_data_dirs",
            "Data dirs (monitors) found under GATEWAY_DATA_DIR.",
            len(data_dirs),
        )
        for data_dir in data_dirs:
            status = collect_status(self.settings.replace(data_dir=data_dir.root))
            self._one(family, status, now)
        yield from families.values()

    def _one(self, family, status: dict, now: float) -> None:
        gw = status["gateway_id"]
        gauge, counter = GaugeMetricFamily, CounterMetricFamily
        for name in SERVICES:
            service = status["services"][name]
            family(
                gauge,
                "fieldgate_service_up",
                "1 when the service runs and publishes.",
                ("service",),
            ).add_metric([gw, name], 1.0 if service and service["alive"] else 0.0)
            if service:
                family(
                    gauge,
                    "fieldgate_service_last_update_timestamp_seconds",
                    "When the service last published its counters.",
                    ("service",),
                ).add_metric([gw, name], service.get("updated_at", 0.0))
        inventory = status["inventory"]
        for name, key, doc in (
            ("fieldgate_batches_pending", "pending_batches", "Sealed batches not yet uploaded."),
            ("fieldgate_batches_pending_bytes", "pending_bytes", "Bytes of those batches."),
            ("fieldgate_batches_uploaded", "touched_batches", "Uploaded batches still on disk."),
            ("fieldgate_quarantine_bytes", "quarantine_bytes", "Bytes of rejected lines kept."),
            ("fieldgate_disk_free_bytes", "bytes_free", "Free bytes on the data dir's disk."),
            ("fieldgate_disk_size_bytes", "bytes_total", "Size of the data dir's disk."),
        ):
            if inventory.get(key) is not None:
                family(gauge, name, doc).add_metric([gw], inventory[key])
        oldest = inventory.get("oldest_pending_at")
        family(
            gauge,
            "fieldgate_upload_backlog_age_seconds",
            "How long the oldest batch not yet uploaded has waited (0: none waits).",
        ).add_metric([gw], max(0.0, now - oldest) if oldest else 0.0)
        family(
            counter, "fieldgate_rows_lost_before_upload", "Rows cleanup deleted before upload."
        ).add_metric([gw], status["losses"]["rows"])

        reader = status["services"]["reader"]
        if reader:
            counts = reader.get("counters", {})
            for name, key, doc in READER_COUNTERS:
                family(counter, name, doc).add_metric([gw], counts.get(key, 0))
            rejected = family(
                counter, "fieldgate_rows_rejected", "Lines rejected, by reason.", ("reason",)
            )
            for reason, count in sorted(counts.get("rejected_by_reason", {}).items()):
                rejected.add_metric([gw, reason], count)
            not_stored = family(
                counter,
                "fieldgate_rows_not_stored",
                "Accepted lines not stored, by cause (disk_full, read_only, disk_error, "
                "disk_limit).",
                ("cause",),
            )
            by_cause = counts.get("not_stored_by_cause", {})
            for cause in ACCEPTED_CAUSES:
                not_stored.add_metric([gw, str(cause)], by_cause.get(cause, 0))
            family(gauge, "fieldgate_port_open", "1 while the serial port is open.").add_metric(
                [gw], 1.0 if reader.get("port_open") else 0.0
            )
            port_error = reader.get("port_error")
            family(
                gauge,
                "fieldgate_port_unavailable",
                "1 while the serial port cannot be opened, labelled with why (errno).",
                ("errno",),
            ).add_metric([gw, (port_error or {}).get("errno") or ""], 1.0 if port_error else 0.0)
            family(gauge, "fieldgate_storing", "1 while the reader stores rows.").add_metric(
                [gw], 1.0 if reader.get("storing", True) else 0.0
            )
            clock = reader.get("clock") or {}
            if clock.get("synced") is not None:
                family(
                    gauge,
                    "fieldgate_clock_synchronized",
                    "1 while the gateway's clock is synchronized (NTP), as the reader last saw.",
                ).add_metric([gw], 1.0 if clock["synced"] else 0.0)
            if clock:
                family(
                    counter, "fieldgate_clock_steps", "Steps of the wall clock the reader saw."
                ).add_metric([gw], clock.get("steps", 0))
            stream = reader.get("stream") or {}
            if stream:
                family(
                    gauge, "fieldgate_stream_connected", "1 while the live stream is connected."
                ).add_metric([gw], 1.0 if stream.get("connected") else 0.0)
                family(
                    gauge,
                    "fieldgate_stream_watched",
                    "1 while a live view is open (the site pauses frames while none is).",
                ).add_metric([gw], 0.0 if stream.get("watched") is False else 1.0)
                family(
                    counter, "fieldgate_stream_frames_sent", "Live frames sent to the site."
                ).add_metric([gw], stream.get("frames_sent", 0))
                family(
                    counter,
                    "fieldgate_stream_frames_dropped",
                    "Live frames dropped (the site away or slow).",
                ).add_metric([gw], stream.get("frames_dropped", 0))

        uploader = status["services"]["uploader"]
        if uploader:
            counts = uploader.get("counters", {})
            uploads = family(
                counter,
                "fieldgate_uploads",
                "Batches uploaded and verified, by result.",
                ("result",),
            )
            uploads.add_metric([gw, "uploaded"], counts.get("uploaded", 0))
            uploads.add_metric([gw, "already_there"], counts.get("already_there", 0))
            uploads.add_metric([gw, "quarantined"], counts.get("quarantined", 0))
            for name, key, doc in UPLOADER_COUNTERS:
                family(counter, name, doc).add_metric([gw], counts.get(key, 0))
            family(
                gauge, "fieldgate_batches_failing", "Batches whose last upload attempt failed."
            ).add_metric([gw], counts.get("failed", 0))
            for name, key, doc in (
                (
                    "fieldgate_upload_last_success_timestamp_seconds",
                    "last_success",
                    "When the last batch was uploaded and verified.",
                ),
                (
                    "fieldgate_upload_last_error_timestamp_seconds",
                    "last_error",
                    "When the last upload attempt failed.",
                ),
            ):
                if uploader.get(key):
                    family(gauge, name, doc).add_metric([gw], uploader[key]["at"])


def registry(settings: Settings) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(settings))
    return registry
