"""The one place that reads ``GATEWAY_*`` environment variables.

Every setting has a default that suits a Raspberry Pi and a line in the README's configuration
table (``python -m gateway.settings`` prints that table; a test keeps the README in step).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

MiB = 1024 * 1024


class SettingsError(ValueError):
    """A GATEWAY_* variable has a value that cannot be used."""


def _env(name: str, doc: str):
    return {"env": name, "doc": doc}


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


LINE_FORMATS = ("csv", "csv-seq", "json", "nmea")
MODES = ("full", "local", "demo")
COMPRESSIONS = ("gzip", "none")
DASK_MODES = ("threads", "processes", "sync")


@dataclasses.dataclass(frozen=True)
class Settings:
    """All settings of the gateway services. Build it with :meth:`from_env`."""

    # Identity and storage
    gateway_id: str = dataclasses.field(
        default_factory=lambda: socket.gethostname(),
        metadata=_env("GATEWAY_ID", "Name of this gateway (or monitor); part of every S3 key."),
    )
    data_dir: Path = dataclasses.field(
        default=Path("/var/lib/fieldgate"),
        metadata=_env("GATEWAY_DATA_DIR", "Where batches, quarantine and state live."),
    )
    # Serial port
    port: str = dataclasses.field(
        default="/dev/monitor",
        metadata=_env("GATEWAY_PORT", "Serial device path or pyserial URL (`--port` overrides)."),
    )
    baud: int = dataclasses.field(
        default=115200,
        metadata=_env("GATEWAY_BAUD", "Baud rate (`--baud` overrides)."),
    )
    bytesize: int = dataclasses.field(
        default=8, metadata=_env("GATEWAY_BYTESIZE", "Data bits: 5, 6, 7 or 8.")
    )
    parity: str = dataclasses.field(
        default="none",
        metadata=_env("GATEWAY_PARITY", "Parity: none, even, odd, mark or space."),
    )
    stopbits: float = dataclasses.field(
        default=1.0, metadata=_env("GATEWAY_STOPBITS", "Stop bits: 1, 1.5 or 2.")
    )
    flow_control: str = dataclasses.field(
        default="none",
        metadata=_env("GATEWAY_FLOW_CONTROL", "Flow control: none, rtscts, dsrdtr or xonxoff."),
    )
    reconnect_max_seconds: float = dataclasses.field(
        default=2.0,
        metadata=_env(
            "GATEWAY_RECONNECT_MAX_SECONDS", "Longest wait between attempts to reopen a lost port."
        ),
    )
    # Lines and records
    line_format: str = dataclasses.field(
        default="csv-seq",
        metadata=_env(
            "GATEWAY_LINE_FORMAT", "Line format: csv, csv-seq, json or nmea (docs/formats.md)."
        ),
    )
    line_terminator: str = dataclasses.field(
        default="lf",
        metadata=_env("GATEWAY_LINE_TERMINATOR", "lf (also strips a `\\r` before it), crlf or cr."),
    )
    max_line_bytes: int = dataclasses.field(
        default=4096,
        metadata=_env(
            "GATEWAY_MAX_LINE_BYTES",
            "Longer lines are rejected; reading resumes at the next terminator.",
        ),
    )
    field_count: int = dataclasses.field(
        default=0,
        metadata=_env(
            "GATEWAY_FIELD_COUNT", "Device fields per line; 0 learns it from the first valid line."
        ),
    )
    field_names: tuple[str, ...] = dataclasses.field(
        default=(),
        metadata=_env(
            "GATEWAY_FIELD_NAMES",
            "Comma-separated CSV column names for the device fields (default `f0, f1, ...`).",
        ),
    )
    numeric_fields: bool = dataclasses.field(
        default=True,
        metadata=_env(
            "GATEWAY_NUMERIC_FIELDS",
            "Require every csv/csv-seq/nmea field to be a plain decimal number.",
        ),
    )
    nmea_sentence: str = dataclasses.field(
        default="",
        metadata=_env("GATEWAY_NMEA_SENTENCE", "Accept only this NMEA sentence name (empty: any)."),
    )
    # Batches
    batch_rows: int = dataclasses.field(
        default=60_000,
        metadata=_env("GATEWAY_BATCH_ROWS", "Seal a batch at this many rows."),
    )
    batch_bytes: int = dataclasses.field(
        default=8 * MiB,
        metadata=_env("GATEWAY_BATCH_BYTES", "Seal a batch at this many bytes."),
    )
    batch_seconds: float = dataclasses.field(
        default=60.0,
        metadata=_env("GATEWAY_BATCH_SECONDS", "Seal a batch this long after its first row."),
    )
    fsync_seconds: float = dataclasses.field(
        default=1.0,
        metadata=_env(
            "GATEWAY_FSYNC_SECONDS",
            "fsync the open batch this often: bounds what a power cut can lose.",
        ),
    )
    queue_bytes: int = dataclasses.field(
        default=16 * MiB,
        metadata=_env(
            "GATEWAY_QUEUE_BYTES",
            "Bound of the hand-off between serial reading and writing; overflow is counted.",
        ),
    )
    # Reader service
    mode: str = dataclasses.field(
        default="full",
        metadata=_env(
            "GATEWAY_MODE",
            "full (files and stream), local (files only) or demo (stream only); "
            "`--mode` overrides.",
        ),
    )
    status_seconds: float = dataclasses.field(
        default=2.0,
        metadata=_env(
            "GATEWAY_STATUS_SECONDS", "How often services publish counters for `gateway status`."
        ),
    )
    test_hooks: bool = dataclasses.field(
        default=False,
        metadata=_env(
            "GATEWAY_TEST_HOOKS",
            "Test-only triggers (never in production): SIGUSR2 hangs the reader's main loop, "
            "to prove the systemd watchdog restarts it.",
        ),
    )
    log_level: str = dataclasses.field(
        default="info",
        metadata=_env("GATEWAY_LOG_LEVEL", "debug, info, warning or error."),
    )
    # Retention and cleanup
    keep_free_bytes: str = dataclasses.field(
        default="10%",
        metadata=_env(
            "GATEWAY_KEEP_FREE_BYTES",
            "Keep this much of the data dir's file system free: bytes, or a percentage "
            "like `10%`. Uploaded data goes first to keep it.",
        ),
    )
    max_data_bytes: int = dataclasses.field(
        default=0,
        metadata=_env("GATEWAY_MAX_DATA_BYTES", "Most bytes the data dir may hold (0: no limit)."),
    )
    retain_uploaded_seconds: float = dataclasses.field(
        default=7 * 86400.0,
        metadata=_env(
            "GATEWAY_RETAIN_UPLOADED_SECONDS",
            "Uploaded batches are deleted this long after sealing (default 7 days).",
        ),
    )
    on_full: str = dataclasses.field(
        default="stop-accepting",
        metadata=_env(
            "GATEWAY_ON_FULL",
            "When a limit is reached and only data not yet uploaded is left: "
            "`stop-accepting` (keep it, store no new rows) or `drop-oldest` (delete the "
            "oldest). Either way each loss is counted and logged.",
        ),
    )
    max_quarantine_bytes: int = dataclasses.field(
        default=64 * MiB,
        metadata=_env("GATEWAY_MAX_QUARANTINE_BYTES", "Oldest quarantine files go beyond this."),
    )
    cleanup_seconds: float = dataclasses.field(
        default=60.0,
        metadata=_env(
            "GATEWAY_CLEANUP_SECONDS", "How often the reader checks disk space and retention."
        ),
    )
    # Live stream (web issue)
    stream_url: str = dataclasses.field(
        default="",
        metadata=_env(
            "GATEWAY_STREAM_URL", "Websocket URL of the site's ingest endpoint (empty: no stream)."
        ),
    )
    stream_token: str = dataclasses.field(
        default="",
        metadata=_env("GATEWAY_STREAM_TOKEN", "This gateway's ingest token (a secret)."),
    )
    stream_frame_rate: float = dataclasses.field(
        default=25.0,
        metadata=_env("GATEWAY_STREAM_FRAME_RATE", "Live frames sent per second."),
    )
    stream_points_per_second: float = dataclasses.field(
        default=500.0,
        metadata=_env(
            "GATEWAY_STREAM_POINTS_PER_SECOND",
            "Min/max buckets per second and channel in the live view (faster devices are "
            "decimated, spikes kept).",
        ),
    )
    stream_queue_rows: int = dataclasses.field(
        default=20_000,
        metadata=_env(
            "GATEWAY_STREAM_QUEUE_ROWS",
            "Rows waiting for the stream thread; beyond it the oldest are dropped (counted).",
        ),
    )
    stream_queue_frames: int = dataclasses.field(
        default=50,
        metadata=_env(
            "GATEWAY_STREAM_QUEUE_FRAMES",
            "Frames waiting for the site (e.g. while it is away); oldest dropped (counted).",
        ),
    )
    stream_heartbeat_seconds: float = dataclasses.field(
        default=5.0,
        metadata=_env(
            "GATEWAY_STREAM_HEARTBEAT_SECONDS", "How often the stream sends the gateway's status."
        ),
    )
    stream_reconnect_max_seconds: float = dataclasses.field(
        default=30.0,
        metadata=_env(
            "GATEWAY_STREAM_RECONNECT_MAX_SECONDS",
            "Longest wait between attempts to reach the site (jittered backoff).",
        ),
    )
    # Uploader (docs/uploader.md); credentials come from the standard AWS_* variables
    s3_bucket: str = dataclasses.field(
        default="",
        metadata=_env("GATEWAY_S3_BUCKET", "Bucket the uploader writes to (required to upload)."),
    )
    s3_prefix: str = dataclasses.field(
        default="",
        metadata=_env(
            "GATEWAY_S3_PREFIX", "Key prefix: objects are `<prefix>/<gateway id>/YYYY/MM/DD/...`."
        ),
    )
    s3_endpoint_url: str = dataclasses.field(
        default="",
        metadata=_env(
            "GATEWAY_S3_ENDPOINT_URL", "S3 endpoint for MinIO, Ceph or a test server (empty: AWS)."
        ),
    )
    s3_timeout_seconds: float = dataclasses.field(
        default=30.0,
        metadata=_env("GATEWAY_S3_TIMEOUT_SECONDS", "Connect and read timeout of S3 requests."),
    )
    s3_verify_etag: bool = dataclasses.field(
        default=True,
        metadata=_env(
            "GATEWAY_S3_VERIFY_ETAG",
            "Verify also checks an MD5-style ETag against the bytes sent; turn off for SSE-KMS "
            "buckets, whose ETags are not MD5.",
        ),
    )
    upload_compression: str = dataclasses.field(
        default="gzip",
        metadata=_env(
            "GATEWAY_UPLOAD_COMPRESSION",
            "gzip (objects end in `.csv.gz`) or none (`.csv`). Change it only with no backlog.",
        ),
    )
    upload_gzip_level: int = dataclasses.field(
        default=1,
        metadata=_env(
            "GATEWAY_UPLOAD_GZIP_LEVEL",
            "gzip level 1-9: 1 is several times faster than 6 for about 20% more bytes.",
        ),
    )
    upload_pipelines: int = dataclasses.field(
        default=2,
        metadata=_env(
            "GATEWAY_UPLOAD_PIPELINES",
            "Chunks in flight at once (one thread each): one's gzip overlaps another's upload.",
        ),
    )
    upload_chunk_batches: int = dataclasses.field(
        default=32,
        metadata=_env(
            "GATEWAY_UPLOAD_CHUNK_BATCHES",
            "Batches per Luigi task: fewer, bigger tasks keep the scheduler cheap.",
        ),
    )
    upload_chunk_bytes: int = dataclasses.field(
        default=64 * MiB,
        metadata=_env(
            "GATEWAY_UPLOAD_CHUNK_BYTES",
            "...and at most this many bytes per task (a bigger batch goes alone).",
        ),
    )
    upload_threads: int = dataclasses.field(
        default=4,
        metadata=_env("GATEWAY_UPLOAD_THREADS", "Objects (or parts) uploaded at the same time."),
    )
    upload_multipart_bytes: int = dataclasses.field(
        default=8 * MiB,
        metadata=_env(
            "GATEWAY_UPLOAD_MULTIPART_BYTES",
            "Objects this big go up in parts of this size (at least 5 MiB).",
        ),
    )
    upload_rescan_seconds: float = dataclasses.field(
        default=30.0,
        metadata=_env(
            "GATEWAY_UPLOAD_RESCAN_SECONDS", "Rescan the data dirs this often besides inotify."
        ),
    )
    upload_retry_base_seconds: float = dataclasses.field(
        default=1.0,
        metadata=_env("GATEWAY_UPLOAD_RETRY_BASE_SECONDS", "First wait after a failed upload."),
    )
    upload_retry_max_seconds: float = dataclasses.field(
        default=300.0,
        metadata=_env(
            "GATEWAY_UPLOAD_RETRY_MAX_SECONDS",
            "Longest wait between attempts (the doubling waits stop growing here).",
        ),
    )
    upload_once_attempts: int = dataclasses.field(
        default=5,
        metadata=_env(
            "GATEWAY_UPLOAD_ONCE_ATTEMPTS",
            "`--once` gives up on a batch after this many failed attempts (the daemon never does).",
        ),
    )
    upload_progress_seconds: float = dataclasses.field(
        default=10.0,
        metadata=_env(
            "GATEWAY_UPLOAD_PROGRESS_SECONDS",
            "Progress log line interval when stderr is not a terminal (a terminal gets a bar).",
        ),
    )
    uploader_pidfile: str = dataclasses.field(
        default="",
        metadata=_env(
            "GATEWAY_UPLOADER_PIDFILE",
            "Locked pid file of the uploader (empty: `<GATEWAY_DATA_DIR>/uploader.pid`).",
        ),
    )
    uploader_log_file: str = dataclasses.field(
        default="",
        metadata=_env(
            "GATEWAY_UPLOADER_LOG_FILE",
            "Where the detached daemon logs (empty: `<GATEWAY_DATA_DIR>/uploader.log`).",
        ),
    )
    dask_mode: str = dataclasses.field(
        default="threads",
        metadata=_env(
            "GATEWAY_DASK_MODE",
            "How Dask runs validation and gzip/SHA-256: threads, processes or sync.",
        ),
    )
    dask_workers: int = dataclasses.field(
        default=0,
        metadata=_env("GATEWAY_DASK_WORKERS", "Dask threads or processes (0: one per core)."),
    )
    dask_scheduler: str = dataclasses.field(
        default="",
        metadata=_env(
            "GATEWAY_DASK_SCHEDULER",
            "Address of a Dask distributed scheduler (empty: local Dask); workers must see "
            "the data dir at the same path.",
        ),
    )
    env_file: str = dataclasses.field(
        default="",
        metadata=_env(
            "GATEWAY_ENV_FILE",
            "A KEY=VALUE file whose values override the environment; the uploader re-reads "
            "it on SIGHUP.",
        ),
    )
    luigi_scheduler_url: str = dataclasses.field(
        default="",
        metadata=_env(
            "GATEWAY_LUIGI_SCHEDULER_URL",
            "URL of a central luigid (empty: Luigi's local scheduler in the uploader).",
        ),
    )

    def __post_init__(self) -> None:
        checks = {
            "GATEWAY_LINE_FORMAT": (self.line_format, LINE_FORMATS),
            "GATEWAY_LINE_TERMINATOR": (self.line_terminator, ("lf", "crlf", "cr")),
            "GATEWAY_PARITY": (self.parity, ("none", "even", "odd", "mark", "space")),
            "GATEWAY_FLOW_CONTROL": (self.flow_control, ("none", "rtscts", "dsrdtr", "xonxoff")),
            "GATEWAY_MODE": (self.mode, MODES),
            "GATEWAY_LOG_LEVEL": (self.log_level, ("debug", "info", "warning", "error")),
            "GATEWAY_ON_FULL": (self.on_full, ("stop-accepting", "drop-oldest")),
            "GATEWAY_UPLOAD_COMPRESSION": (self.upload_compression, COMPRESSIONS),
            "GATEWAY_DASK_MODE": (self.dask_mode, DASK_MODES),
        }
        for env, (value, allowed) in checks.items():
            if value not in allowed:
                raise SettingsError(f"{env}={value!r}: expected one of {', '.join(allowed)}")
        if self.stream_url and not self.stream_url.startswith(("ws://", "wss://")):
            raise SettingsError(
                f"GATEWAY_STREAM_URL={self.stream_url!r}: expected a ws:// or wss:// URL"
            )
        if self.bytesize not in (5, 6, 7, 8):
            raise SettingsError(f"GATEWAY_BYTESIZE={self.bytesize}: expected 5, 6, 7 or 8")
        if self.stopbits not in (1, 1.5, 2):
            raise SettingsError(f"GATEWAY_STOPBITS={self.stopbits}: expected 1, 1.5 or 2")
        for env, value in (
            ("GATEWAY_BAUD", self.baud),
            ("GATEWAY_MAX_LINE_BYTES", self.max_line_bytes),
            ("GATEWAY_BATCH_ROWS", self.batch_rows),
            ("GATEWAY_BATCH_BYTES", self.batch_bytes),
            ("GATEWAY_BATCH_SECONDS", self.batch_seconds),
            ("GATEWAY_FSYNC_SECONDS", self.fsync_seconds),
            ("GATEWAY_QUEUE_BYTES", self.queue_bytes),
            ("GATEWAY_STATUS_SECONDS", self.status_seconds),
            ("GATEWAY_RECONNECT_MAX_SECONDS", self.reconnect_max_seconds),
            ("GATEWAY_RETAIN_UPLOADED_SECONDS", self.retain_uploaded_seconds),
            ("GATEWAY_CLEANUP_SECONDS", self.cleanup_seconds),
            ("GATEWAY_STREAM_FRAME_RATE", self.stream_frame_rate),
            ("GATEWAY_STREAM_POINTS_PER_SECOND", self.stream_points_per_second),
            ("GATEWAY_STREAM_QUEUE_ROWS", self.stream_queue_rows),
            ("GATEWAY_STREAM_QUEUE_FRAMES", self.stream_queue_frames),
            ("GATEWAY_STREAM_HEARTBEAT_SECONDS", self.stream_heartbeat_seconds),
            ("GATEWAY_STREAM_RECONNECT_MAX_SECONDS", self.stream_reconnect_max_seconds),
        ):
            if value <= 0:
                raise SettingsError(f"{env}={value}: expected a value above 0")
        try:
            _ = self.keep_free
        except ValueError:
            raise SettingsError(
                f"GATEWAY_KEEP_FREE_BYTES={self.keep_free_bytes!r}: expected bytes or a "
                "percentage below 100 like 10%"
            ) from None
        if self.max_data_bytes < 0 or self.max_quarantine_bytes < 0:
            raise SettingsError("GATEWAY_MAX_DATA_BYTES and GATEWAY_MAX_QUARANTINE_BYTES: >= 0")
        for env, value in (
            ("GATEWAY_S3_TIMEOUT_SECONDS", self.s3_timeout_seconds),
            ("GATEWAY_UPLOAD_CHUNK_BATCHES", self.upload_chunk_batches),
            ("GATEWAY_UPLOAD_CHUNK_BYTES", self.upload_chunk_bytes),
            ("GATEWAY_UPLOAD_PIPELINES", self.upload_pipelines),
            ("GATEWAY_UPLOAD_THREADS", self.upload_threads),
            ("GATEWAY_UPLOAD_RESCAN_SECONDS", self.upload_rescan_seconds),
            ("GATEWAY_UPLOAD_RETRY_BASE_SECONDS", self.upload_retry_base_seconds),
            ("GATEWAY_UPLOAD_RETRY_MAX_SECONDS", self.upload_retry_max_seconds),
            ("GATEWAY_UPLOAD_ONCE_ATTEMPTS", self.upload_once_attempts),
            ("GATEWAY_UPLOAD_PROGRESS_SECONDS", self.upload_progress_seconds),
        ):
            if value <= 0:
                raise SettingsError(f"{env}={value}: expected a value above 0")
        if self.upload_multipart_bytes < 5 * MiB:
            raise SettingsError(
                f"GATEWAY_UPLOAD_MULTIPART_BYTES={self.upload_multipart_bytes}: S3 parts must be "
                f"at least {5 * MiB} bytes (5 MiB)"
            )
        if not 1 <= self.upload_gzip_level <= 9:
            raise SettingsError(
                f"GATEWAY_UPLOAD_GZIP_LEVEL={self.upload_gzip_level}: expected 1 to 9"
            )
        if self.dask_workers < 0:
            raise SettingsError(f"GATEWAY_DASK_WORKERS={self.dask_workers}: expected 0 or more")
        if self.field_count < 0:
            raise SettingsError(f"GATEWAY_FIELD_COUNT={self.field_count}: expected 0 or more")
        if self.field_names and self.field_count and len(self.field_names) != self.field_count:
            raise SettingsError(
                f"GATEWAY_FIELD_NAMES has {len(self.field_names)} names but "
                f"GATEWAY_FIELD_COUNT is {self.field_count}"
            )

    @property
    def keep_free(self) -> tuple[int, float]:
        """GATEWAY_KEEP_FREE_BYTES as (bytes, percent); one of them is 0."""
        text = self.keep_free_bytes.strip()
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 <= percent < 100:
                raise ValueError(text)
            return 0, percent
        value = int(text.replace("_", ""))
        if value < 0:
            raise ValueError(text)
        return value, 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Read every GATEWAY_* variable; ``overrides`` (e.g. from command-line options) win."""
        environ = os.environ if environ is None else environ
        values = {}
        for field in dataclasses.fields(cls):
            name = field.metadata["env"]
            if field.name in overrides and overrides[field.name] is not None:
                continue
            if name not in environ:
                continue
            text = environ[name]
            try:
                values[field.name] = _parse(field, text)
            except ValueError as error:
                raise SettingsError(f"{name}={text!r}: {error}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


def _parse(field: dataclasses.Field, text: str):
    kind = field.type if not isinstance(field.type, str) else _TYPES[field.type]
    if kind is bool:
        return _bool(text)
    if kind is int:
        try:
            return int(text.strip().replace("_", ""))
        except ValueError:
            raise ValueError("expected a whole number") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    if kind is Path:
        return Path(text)
    if kind == tuple[str, ...]:
        return tuple(name.strip() for name in text.split(",") if name.strip())
    return text.strip().lower() if field.name in _LOWERCASE else text


_TYPES = {
    "bool": bool,
    "int": int,
    "float": float,
    "Path": Path,
    "str": str,
    "tuple[str, ...]": tuple[str, ...],
}
_LOWERCASE = {
    "line_format",
    "line_terminator",
    "parity",
    "flow_control",
    "mode",
    "log_level",
    "on_full",
    "upload_compression",
    "dask_mode",
}


def _shown_default(field: dataclasses.Field) -> str:
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return "host name"
    value = field.default
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ", ".join(value) or "(empty)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if value != "" else "(empty)"


def markdown_table() -> str:
    """The README's configuration table, generated from the fields above."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in dataclasses.fields(Settings):
        env, doc = field.metadata["env"], field.metadata["doc"]
        rows.append(f"| `{env}` | `{_shown_default(field)}` | {doc} |")
    return "\n".join(rows)


README_BEGIN = "<!-- settings table: generated by `python -m gateway.settings --update-readme` -->"
README_END = "<!-- end of settings table -->"


def readme_with_table(readme: str) -> str:
    """``readme`` with the block between the markers replaced by the current table."""
    head, found, rest = readme.partition(README_BEGIN)
    _, found_end, tail = rest.partition(README_END)
    if not found or not found_end:
        raise ValueError("README.md lacks the settings table markers")
    return f"{head}{README_BEGIN}\n{markdown_table()}\n{README_END}{tail}"


if __name__ == "__main__":
    if sys.argv[1:] == ["--update-readme"]:
        path = Path(__file__).resolve().parent.parent / "README.md"
        path.write_text(readme_with_table(path.read_text()))
    else:
        sys.stdout.write(markdown_table() + "\n")
