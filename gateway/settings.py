"""The one place that reads ``GATEWAY_*`` environment variables.

Each setting is declared once, as a field of :class:`Settings` made by :func:`setting`: its
variable, section, parse kind, default, doc, the values it allows (choices or bounds) and
whether it is a secret. Parsing, checking, ``gateway config check|show`` and the README's
configuration tables (``python -m gateway.settings --update-readme``; a test keeps the README in
step) all read that declaration. Only rules a single declaration cannot say are code:
:func:`_rule_problems`. Defaults suit a Raspberry Pi.

Importing this module has no side effects and is cheap: the reader imports it.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import socket
import sys
from collections.abc import Callable, Collection, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from gateway.core.records import CODECS
from gateway.core.textcodecs import DELIMITERS

MiB = 1024 * 1024
PREFIX = "GATEWAY_"


class SettingsError(ValueError):
    """A GATEWAY_* variable has a value that cannot be used."""


class Section(enum.Enum):
    """The groups settings are shown in, in the README's order."""

    GENERAL = "General"
    SERIAL = "Serial port"
    LINES = "Lines and records"
    READER = "Reader"
    BATCHES = "Batches"
    RETENTION = "Retention and cleanup"
    STREAM = "Live stream"
    S3 = "S3"
    UPLOADER = "Uploader"
    DASK = "Dask"

    @property
    def key(self) -> str:
        """The section's name in machine-readable output: ``serial``, ``s3``..."""
        return self.name.lower()


# -- parse kinds ---------------------------------------------------------------------------------

FLAG_WORDS = "1/0, true/false, yes/no, on/off"


@dataclasses.dataclass(frozen=True)
class Kind:
    """How a variable's text becomes a value (``parse`` raises ValueError) and back (``format``)."""

    name: str  # the README's word for it
    type: type
    parse: Callable[[str], Any]
    format: Callable[[Any], str] = str


def _whole(text: str) -> int:
    try:
        return int(text.strip().replace("_", ""))
    except ValueError:
        raise ValueError("expected a whole number") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number") from None
    if value != value:  # NaN passes every bound: refuse it here
        raise ValueError("expected a number")
    return value


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected one of {FLAG_WORDS}")


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


TEXT = Kind("text", str, str)
PATH = Kind("path", Path, Path)
WHOLE = Kind("whole number", int, _whole)
NUMBER = Kind("number", float, _number, _number_text)
FLAG = Kind("flag", bool, _flag, lambda value: "1" if value else "0")
NAMES = Kind("comma-separated names", tuple, _names, ",".join)


# -- declarations --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The range a number must lie in, said the way the error messages say it."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False

    def allow(self, value: float) -> bool:
        low, high = self.minimum, self.maximum
        if low is not None and (value <= low if self.exclusive_minimum else value < low):
            return False
        return high is None or value <= high

    def __str__(self) -> str:
        low, high = self.minimum, self.maximum
        if self.exclusive_minimum:
            return f"a value above {low}" + (f" and at most {high}" if high is not None else "")
        if high is None:
            return f"{low} or more"
        if low is None:
            return f"{high} or less"
        return f"{low} to {high}"


POSITIVE = Bounds(0, exclusive_minimum=True)
NON_NEGATIVE = Bounds(0)


@dataclasses.dataclass(frozen=True)
class Computed:
    """A default known only where the gateway runs (its host name); ``doc`` names it."""

    doc: str
    compute: Callable[[], Any]


@dataclasses.dataclass(frozen=True)
class Setting:
    """Everything about one setting. Made by :func:`setting`; all of them are in SETTINGS."""

    section: Section
    env: str
    kind: Kind
    default: Any  # a value of ``kind.type``, or a Computed
    doc: str
    choices: tuple = ()  # an enumeration: text is matched case-insensitively
    bounds: Bounds | None = None
    secret: bool = False  # `gateway config show` masks it
    attribute: str = ""  # the field of Settings, filled in once the class exists

    def parse(self, text: str) -> Any:
        """The value ``text`` stands for; ValueError says what was expected instead."""
        value = self.kind.parse(text)
        return value.strip().lower() if self.choices and isinstance(value, str) else value

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed, as SettingsError says it; None when it is."""
        if self.choices:
            fits = value in self.choices
        else:
            fits = self.bounds is None or self.bounds.allow(value)
        return None if fits else f"{self.env}={value!r}: expected {self.allowed}"

    @property
    def allowed(self) -> str:
        """The values allowed, in words ("one of a, b", "a value above 0"), or ""."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        return str(self.bounds or "")

    def format(self, value: Any) -> str:
        """``value`` as the variable's text (it parses back to the same value)."""
        return self.kind.format(value)

    def default_value(self) -> Any:
        return self.default.compute() if isinstance(self.default, Computed) else self.default


def setting(
    section: Section,
    env: str,
    kind: Kind,
    default: Any,
    doc: str,
    *,
    choices: tuple = (),
    bounds: Bounds | None = None,
    secret: bool = False,
) -> Any:
    """Declare a field of Settings, for example::

        baud: int = setting(
            Section.SERIAL, "GATEWAY_BAUD", WHOLE, 115200, "Baud rate.", bounds=POSITIVE
        )

    It is a dataclass field with the declaration in its metadata; SETTINGS collects them.
    """
    declared = Setting(section, env, kind, default, doc, tuple(choices), bounds, secret)
    if isinstance(default, Computed):
        return dataclasses.field(default_factory=default.compute, metadata={"setting": declared})
    return dataclasses.field(default=default, metadata={"setting": declared})


@dataclasses.dataclass(frozen=True)
class Settings:
    """All settings of the gateway services. Build it with :meth:`from_env`."""

    gateway_id: str = setting(
        Section.GENERAL,
        "GATEWAY_ID",
        TEXT,
        Computed("host name", socket.gethostname),
        "Name of this gateway (or monitor); part of every S3 key.",
    )
    data_dir: Path = setting(
        Section.GENERAL,
        "GATEWAY_DATA_DIR",
        PATH,
        Path("/var/lib/fieldgate"),
        "Where batches, quarantine and state live.",
    )
    env_file: str = setting(
        Section.GENERAL,
        "GATEWAY_ENV_FILE",
        TEXT,
        "",
        "A KEY=VALUE file whose values override the environment, read by every command "
        "(`gateway --env-file PATH` sets it); the uploader re-reads it on SIGHUP.",
    )
    log_level: str = setting(
        Section.GENERAL,
        "GATEWAY_LOG_LEVEL",
        TEXT,
        "info",
        "The least severe log lines written.",
        choices=("debug", "info", "warning", "error"),
    )
    status_seconds: float = setting(
        Section.GENERAL,
        "GATEWAY_STATUS_SECONDS",
        NUMBER,
        2.0,
        "How often services publish counters for `gateway status`.",
        bounds=POSITIVE,
    )

    port: str = setting(
        Section.SERIAL,
        "GATEWAY_PORT",
        TEXT,
        "/dev/monitor",
        "Serial device path or pyserial URL (`--port` overrides).",
    )
    baud: int = setting(
        Section.SERIAL,
        "GATEWAY_BAUD",
        WHOLE,
        115200,
        "Baud rate (`--baud` overrides).",
        bounds=POSITIVE,
    )
    bytesize: int = setting(
        Section.SERIAL,
        "GATEWAY_BYTESIZE",
        WHOLE,
        8,
        "Data bits per character.",
        choices=(5, 6, 7, 8),
    )
    parity: str = setting(
        Section.SERIAL,
        "GATEWAY_PARITY",
        TEXT,
        "none",
        "Parity bit.",
        choices=("none", "even", "odd", "mark", "space"),
    )
    stopbits: float = setting(
        Section.SERIAL, "GATEWAY_STOPBITS", NUMBER, 1.0, "Stop bits.", choices=(1, 1.5, 2)
    )
    flow_control: str = setting(
        Section.SERIAL,
        "GATEWAY_FLOW_CONTROL",
        TEXT,
        "none",
        "Flow control: hardware (`rtscts`, `dsrdtr`) or software (`xonxoff`).",
        choices=("none", "rtscts", "dsrdtr", "xonxoff"),
    )
    reconnect_max_seconds: float = setting(
        Section.SERIAL,
        "GATEWAY_RECONNECT_MAX_SECONDS",
        NUMBER,
        2.0,
        "Longest wait between attempts to reopen a lost port.",
        bounds=POSITIVE,
    )
    gather_seconds: float = setting(
        Section.SERIAL,
        "GATEWAY_GATHER_SECONDS",
        NUMBER,
        0.07,
        "How long a trickle from the device gathers before the reader takes it while a live "
        "view is open: longer costs fewer wake-ups, more latency (8 ch x 1 kHz, the reader with "
        "its relay: 0.05 s 1.6-1.8 % of a core, 0.07 s 1.2-1.6 %; serial to viewer p99 52 and "
        "72 ms, the budget 100). A flood is read at once whatever this is.",
        bounds=Bounds(0.001, 1.0),
    )
    gather_unwatched_seconds: float = setting(
        Section.SERIAL,
        "GATEWAY_GATHER_UNWATCHED_SECONDS",
        NUMBER,
        0.2,
        "The same while nothing draws the rows at once: no live view open (the site paused the "
        "frames), local mode, no GATEWAY_STREAM_URL. Rows are stored as always, the reader "
        "wakes a third as often; a view opening brings GATEWAY_GATHER_SECONDS back within "
        "this time.",
        bounds=Bounds(0.001, 1.0),
    )

    line_format: str = setting(
        Section.LINES,
        "GATEWAY_LINE_FORMAT",
        TEXT,
        "auto",
        "Line format (docs/formats.md); `auto` decides from the first complete lines and "
        "falls back to `raw`, which keeps any text.",
        choices=tuple(CODECS),  # the codecs own the list of formats
    )
    line_terminator: str = setting(
        Section.LINES,
        "GATEWAY_LINE_TERMINATOR",
        TEXT,
        "lf",
        "What ends a line; `lf` also strips a `\\r` before it.",
        choices=("lf", "crlf", "cr"),
    )
    max_line_bytes: int = setting(
        Section.LINES,
        "GATEWAY_MAX_LINE_BYTES",
        WHOLE,
        4096,
        "Longer lines are rejected; reading resumes at the next terminator.",
        bounds=POSITIVE,
    )
    field_count: int = setting(
        Section.LINES,
        "GATEWAY_FIELD_COUNT",
        WHOLE,
        0,
        "Device fields per line; 0 learns it from several consistent lines.",
        bounds=NON_NEGATIVE,
    )
    field_names: tuple[str, ...] = setting(
        Section.LINES,
        "GATEWAY_FIELD_NAMES",
        NAMES,
        (),
        "CSV column names for the device fields (default `f0, f1, ...`).",
    )
    delimiter: str = setting(
        Section.LINES,
        "GATEWAY_DELIMITER",
        TEXT,
        "auto",
        "Field separator of `delimited` lines (`space`: runs of spaces); `auto` learns it.",
        choices=("auto", *DELIMITERS),  # the codec owns the separators
    )
    numeric_fields: bool = setting(
        Section.LINES,
        "GATEWAY_NUMERIC_FIELDS",
        FLAG,
        True,
        "Require every csv/csv-seq/nmea field to be a plain decimal number.",
    )
    nmea_sentence: str = setting(
        Section.LINES,
        "GATEWAY_NMEA_SENTENCE",
        TEXT,
        "",
        "Accept only this NMEA sentence name (empty: any).",
    )

    mode: str = setting(
        Section.READER,
        "GATEWAY_MODE",
        TEXT,
        "full",
        "full (files and stream), local (files only) or demo (stream only); `--mode` overrides.",
        choices=("full", "local", "demo"),
    )
    queue_bytes: int = setting(
        Section.READER,
        "GATEWAY_QUEUE_BYTES",
        WHOLE,
        16 * MiB,
        "Bound of the hand-off between serial reading and writing; overflow is counted.",
        bounds=POSITIVE,
    )
    test_hooks: bool = setting(
        Section.READER,
        "GATEWAY_TEST_HOOKS",
        FLAG,
        False,
        "Test-only triggers (never in production): SIGUSR2 hangs the reader's main loop, "
        "to prove the systemd watchdog restarts it.",
    )

    batch_rows: int = setting(
        Section.BATCHES,
        "GATEWAY_BATCH_ROWS",
        WHOLE,
        60_000,
        "Seal a batch at this many rows.",
        bounds=POSITIVE,
    )
    batch_bytes: int = setting(
        Section.BATCHES,
        "GATEWAY_BATCH_BYTES",
        WHOLE,
        8 * MiB,
        "Seal a batch at this many bytes.",
        bounds=POSITIVE,
    )
    batch_seconds: float = setting(
        Section.BATCHES,
        "GATEWAY_BATCH_SECONDS",
        NUMBER,
        60.0,
        "Seal a batch this long after its first row.",
        bounds=POSITIVE,
    )
    fsync_seconds: float = setting(
        Section.BATCHES,
        "GATEWAY_FSYNC_SECONDS",
        NUMBER,
        1.0,
        "fsync the open batch this often: bounds what a power cut can lose.",
        bounds=POSITIVE,
    )

    keep_free_bytes: str = setting(
        Section.RETENTION,
        "GATEWAY_KEEP_FREE_BYTES",
        TEXT,
        "10%",
        "Keep this much of the data dir's file system free: bytes, or a percentage below 100 "
        "like `10%`. Uploaded data goes first to keep it.",
    )
    max_data_bytes: int = setting(
        Section.RETENTION,
        "GATEWAY_MAX_DATA_BYTES",
        WHOLE,
        0,
        "Most bytes the data dir may hold (0: no limit).",
        bounds=NON_NEGATIVE,
    )
    retain_uploaded_seconds: float = setting(
        Section.RETENTION,
        "GATEWAY_RETAIN_UPLOADED_SECONDS",
        NUMBER,
        7 * 86400.0,
        "Uploaded batches are deleted this long after sealing (default 7 days).",
        bounds=POSITIVE,
    )
    on_full: str = setting(
        Section.RETENTION,
        "GATEWAY_ON_FULL",
        TEXT,
        "stop-accepting",
        "When a limit is reached and only data not yet uploaded is left: "
        "`stop-accepting` (keep it, store no new rows) or `drop-oldest` (delete the "
        "oldest). Either way each loss is counted and logged.",
        choices=("stop-accepting", "drop-oldest"),
    )
    max_quarantine_bytes: int = setting(
        Section.RETENTION,
        "GATEWAY_MAX_QUARANTINE_BYTES",
        WHOLE,
        64 * MiB,
        "Oldest quarantine files go beyond this.",
        bounds=NON_NEGATIVE,
    )
    cleanup_seconds: float = setting(
        Section.RETENTION,
        "GATEWAY_CLEANUP_SECONDS",
        NUMBER,
        60.0,
        "How often the reader checks disk space and retention.",
        bounds=POSITIVE,
    )

    stream_url: str = setting(
        Section.STREAM,
        "GATEWAY_STREAM_URL",
        TEXT,
        "",
        "Websocket URL (`ws://` or `wss://`) of the site's ingest endpoint (empty: no stream).",
    )
    stream_token: str = setting(
        Section.STREAM,
        "GATEWAY_STREAM_TOKEN",
        TEXT,
        "",
        "This gateway's ingest token.",
        secret=True,
    )
    stream_frame_rate: float = setting(
        Section.STREAM,
        "GATEWAY_STREAM_FRAME_RATE",
        NUMBER,
        25.0,
        "Live frames sent per second at most (one as soon as rows come).",
        bounds=POSITIVE,
    )
    stream_points_per_second: float = setting(
        Section.STREAM,
        "GATEWAY_STREAM_POINTS_PER_SECOND",
        NUMBER,
        500.0,
        "Min/max buckets per second and channel in the live view (faster devices are "
        "decimated, spikes kept).",
        bounds=POSITIVE,
    )
    stream_queue_rows: int = setting(
        Section.STREAM,
        "GATEWAY_STREAM_QUEUE_ROWS",
        WHOLE,
        20_000,
        "Rows waiting for the stream thread; beyond it the oldest are dropped (counted).",
        bounds=POSITIVE,
    )
    stream_queue_frames: int = setting(
        Section.STREAM,
        "GATEWAY_STREAM_QUEUE_FRAMES",
        WHOLE,
        50,
        "Frames waiting for the site (e.g. while it is away); oldest dropped (counted).",
        bounds=POSITIVE,
    )
    stream_heartbeat_seconds: float = setting(
        Section.STREAM,
        "GATEWAY_STREAM_HEARTBEAT_SECONDS",
        NUMBER,
        5.0,
        "How often the stream sends the gateway's status.",
        bounds=POSITIVE,
    )
    stream_reconnect_max_seconds: float = setting(
        Section.STREAM,
        "GATEWAY_STREAM_RECONNECT_MAX_SECONDS",
        NUMBER,
        30.0,
        "Longest wait between attempts to reach the site (jittered backoff).",
        bounds=POSITIVE,
    )

    # Credentials come from the standard AWS_* variables (docs/uploader.md).
    s3_bucket: str = setting(
        Section.S3,
        "GATEWAY_S3_BUCKET",
        TEXT,
        "",
        "Bucket the uploader writes to (required to upload).",
    )
    s3_prefix: str = setting(
        Section.S3,
        "GATEWAY_S3_PREFIX",
        TEXT,
        "",
        "Key prefix: objects are `<prefix>/<gateway id>/YYYY/MM/DD/...`.",
    )
    s3_endpoint_url: str = setting(
        Section.S3,
        "GATEWAY_S3_ENDPOINT_URL",
        TEXT,
        "",
        "S3 endpoint for MinIO, Ceph or a test server (empty: AWS).",
    )
    s3_timeout_seconds: float = setting(
        Section.S3,
        "GATEWAY_S3_TIMEOUT_SECONDS",
        NUMBER,
        30.0,
        "Connect and read timeout of S3 requests.",
        bounds=POSITIVE,
    )
    s3_verify: str = setting(
        Section.S3,
        "GATEWAY_S3_VERIFY",
        TEXT,
        "auto",
        "How Verify proves an object holds the bytes sent: `auto` (the SHA-256 checksum and "
        "MD5 ETag the store reports, else a GET of the object, hashed), `checksum`, `etag` or "
        "`read` alone (docs/uploader.md; `gateway s3 check` says what a store allows).",
        choices=("auto", "checksum", "etag", "read"),
    )
    s3_verify_etag: bool = setting(
        Section.S3,
        "GATEWAY_S3_VERIFY_ETAG",
        FLAG,
        True,
        "0: Verify never looks at ETags (`auto` no longer needs this off for SSE-KMS "
        "buckets: it tells an ETag that is not an MD5 by the store probe).",
    )

    upload_compression: str = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_COMPRESSION",
        TEXT,
        "gzip",
        "gzip (objects end in `.csv.gz`) or none (`.csv`). Change it only with no backlog.",
        choices=("gzip", "none"),
    )
    upload_gzip_level: int = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_GZIP_LEVEL",
        WHOLE,
        1,
        "gzip level: 1 is several times faster than 6 for about 20% more bytes.",
        bounds=Bounds(1, 9),
    )
    upload_pipelines: int = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_PIPELINES",
        WHOLE,
        2,
        "Chunks in flight at once (one thread each): one's gzip overlaps another's upload.",
        bounds=POSITIVE,
    )
    upload_chunk_batches: int = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_CHUNK_BATCHES",
        WHOLE,
        64,
        "Batches per Luigi task: fewer, bigger tasks keep the scheduler cheap.",
        bounds=POSITIVE,
    )
    upload_chunk_bytes: int = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_CHUNK_BYTES",
        WHOLE,
        64 * MiB,
        "...and at most this many bytes per task (a bigger batch goes alone).",
        bounds=POSITIVE,
    )
    upload_threads: int = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_THREADS",
        WHOLE,
        4,
        "Objects (or parts) uploaded at the same time.",
        bounds=POSITIVE,
    )
    upload_multipart_bytes: int = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_MULTIPART_BYTES",
        WHOLE,
        8 * MiB,
        "Objects this big go up in parts of this size (S3's smallest part is 5 MiB).",
        bounds=Bounds(5 * MiB),
    )
    upload_rescan_seconds: float = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_RESCAN_SECONDS",
        NUMBER,
        30.0,
        "Rescan the data dirs this often besides inotify.",
        bounds=POSITIVE,
    )
    upload_retry_base_seconds: float = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_RETRY_BASE_SECONDS",
        NUMBER,
        1.0,
        "First wait after a failed upload.",
        bounds=POSITIVE,
    )
    upload_retry_max_seconds: float = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_RETRY_MAX_SECONDS",
        NUMBER,
        300.0,
        "Longest wait between attempts (the doubling waits stop growing here).",
        bounds=POSITIVE,
    )
    upload_once_attempts: int = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_ONCE_ATTEMPTS",
        WHOLE,
        5,
        "`--once` gives up on a batch after this many failed attempts (the daemon never does).",
        bounds=POSITIVE,
    )
    upload_progress_seconds: float = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOAD_PROGRESS_SECONDS",
        NUMBER,
        10.0,
        "Progress log line interval when stderr is not a terminal (a terminal gets a bar).",
        bounds=POSITIVE,
    )
    uploader_pidfile: str = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOADER_PIDFILE",
        TEXT,
        "",
        "Locked pid file of the uploader (empty: `<GATEWAY_DATA_DIR>/uploader.pid`).",
    )
    uploader_log_file: str = setting(
        Section.UPLOADER,
        "GATEWAY_UPLOADER_LOG_FILE",
        TEXT,
        "",
        "Where the detached daemon logs (empty: `<GATEWAY_DATA_DIR>/uploader.log`).",
    )
    luigi_scheduler_url: str = setting(
        Section.UPLOADER,
        "GATEWAY_LUIGI_SCHEDULER_URL",
        TEXT,
        "",
        "URL of a central luigid (empty: Luigi's local scheduler in the uploader).",
    )

    dask_mode: str = setting(
        Section.DASK,
        "GATEWAY_DASK_MODE",
        TEXT,
        "threads",
        "How Dask runs validation and gzip/SHA-256 in the uploader.",
        choices=("threads", "processes", "sync"),
    )
    dask_workers: int = setting(
        Section.DASK,
        "GATEWAY_DASK_WORKERS",
        WHOLE,
        0,
        "Dask threads or processes (0: one per core).",
        bounds=NON_NEGATIVE,
    )
    dask_scheduler: str = setting(
        Section.DASK,
        "GATEWAY_DASK_SCHEDULER",
        TEXT,
        "",
        "Address of a Dask distributed scheduler (empty: local Dask); workers must see "
        "the data dir at the same path.",
    )

    def __post_init__(self) -> None:
        problems = find_problems(vars(self))
        if problems:
            raise SettingsError(problems[0])

    @property
    def keep_free(self) -> tuple[int, float]:
        """GATEWAY_KEEP_FREE_BYTES as (bytes, percent); one of them is 0."""
        return parse_keep_free(self.keep_free_bytes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Read every GATEWAY_* variable; ``overrides`` (e.g. from command-line options) win.

        Raises SettingsError with the first problem; ``gateway config check`` lists them all.
        """
        given = {name: value for name, value in overrides.items() if value is not None}
        values, problems = _parse_environment(os.environ if environ is None else environ, given)
        if problems:
            raise SettingsError(problems[0])
        return cls(**values, **given)

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


SETTINGS: dict[str, Setting] = {
    field.name: dataclasses.replace(field.metadata["setting"], attribute=field.name)
    for field in dataclasses.fields(Settings)
}
"""Every declaration by attribute name (``SETTINGS["baud"].env == "GATEWAY_BAUD"``), in order."""


def parse_keep_free(text: str) -> tuple[int, float]:
    """GATEWAY_KEEP_FREE_BYTES's syntax: bytes (``500_000_000``) or a percentage (``10%``)."""
    text = text.strip()
    if text.endswith("%"):
        percent = float(text[:-1])
        if not 0 <= percent < 100:
            raise ValueError(text)
        return 0, percent
    value = int(text.replace("_", ""))
    if value < 0:
        raise ValueError(text)
    return value, 0.0


def _named(attribute: str, value: Any) -> str:
    return f"{SETTINGS[attribute].env}={value!r}"


def _rule_problems(values: Mapping[str, Any]) -> Iterator[str]:
    """The rules one declaration cannot say: a syntax of their own, or settings together."""
    url = values["stream_url"]
    if url and not url.startswith(("ws://", "wss://")):
        yield f"{_named('stream_url', url)}: expected a ws:// or wss:// URL"
    try:
        parse_keep_free(values["keep_free_bytes"])
    except ValueError:
        yield (
            f"{_named('keep_free_bytes', values['keep_free_bytes'])}: expected bytes or a "
            "percentage below 100 like 10%"
        )
    if values["s3_verify"] == "etag" and not values["s3_verify_etag"]:
        yield (
            f"{SETTINGS['s3_verify'].env}=etag verifies by ETag, but "
            f"{SETTINGS['s3_verify_etag'].env}=0 forbids looking at ETags"
        )
    names, count = values["field_names"], values["field_count"]
    if names and count and len(names) != count:
        yield (
            f"{SETTINGS['field_names'].env} has {len(names)} names but "
            f"{SETTINGS['field_count'].env} is {count}"
        )


def find_problems(values: Mapping[str, Any]) -> list[str]:
    """What is wrong with a complete set of values by attribute, one line each."""
    problems = [
        problem
        for declared in SETTINGS.values()
        if (problem := declared.problem(values[declared.attribute])) is not None
    ]
    return problems + list(_rule_problems(values))


def _parse_environment(
    environ: Mapping[str, str], skip: Collection[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """The values of the variables set in ``environ`` (except ``skip``'s), by attribute, and
    the variables whose text does not parse."""
    values, problems = {}, []
    for declared in SETTINGS.values():
        if declared.attribute in skip or declared.env not in environ:
            continue
        text = environ[declared.env]
        try:
            values[declared.attribute] = declared.parse(text)
        except ValueError as error:
            problems.append(f"{declared.env}={text!r}: {error}")
    return values, problems


def environment_problems(environ: Mapping[str, str]) -> list[str]:
    """Everything wrong with the GATEWAY_* variables in ``environ``, all at once: unknown names
    (with the nearest known one), values that do not parse, values the rules refuse.

    Other variables (AWS_*, NOTIFY_SOCKET, ...) are not ours to judge and are left alone.
    """
    known = {declared.env for declared in SETTINGS.values()}
    problems = [
        _unknown(name)
        for name in sorted(environ)
        if name.upper().startswith(PREFIX) and name not in known
    ]
    values, parse_problems = _parse_environment(environ)
    defaults = {declared.attribute: declared.default_value() for declared in SETTINGS.values()}
    return problems + parse_problems + find_problems({**defaults, **values})


def _unknown(name: str) -> str:
    import difflib

    # Compared without the prefix every name shares, which would make any two look alike.
    by_suffix = {declared.env.removeprefix(PREFIX): declared.env for declared in SETTINGS.values()}
    nearest = difflib.get_close_matches(name.upper().removeprefix(PREFIX), by_suffix, n=1)
    if not nearest:
        return f"{name}: unknown setting"
    return f"{name}: unknown setting; did you mean {by_suffix[nearest[0]]}?"


# -- the env file --------------------------------------------------------------------------------


def read_env_file(path: str) -> dict[str, str]:
    """The KEY=VALUE pairs of an env file, in python-dotenv's syntax (systemd's EnvironmentFile
    reads the same plain files)."""
    from dotenv import dotenv_values  # only when there is a file: keeps the import cheap

    where = _named("env_file", path)
    try:
        with open(path, encoding="utf-8") as stream:
            values = dotenv_values(stream=stream)
    except FileNotFoundError:
        raise SettingsError(f"{where}: no such file") from None
    except OSError as error:
        raise SettingsError(f"{where}: cannot read it ({error.strerror})") from None
    return {name: value for name, value in values.items() if value is not None}


def load_env_file(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Overlay ``environ`` (default: this process's environment) with the file that
    GATEWAY_ENV_FILE names, if any; return what the file set.

    The file's values win and go into the environment, so the AWS_* credentials in it reach
    the next boto3 session too: the uploader calls this again on SIGHUP, and a fixed file plus
    a SIGHUP is enough. Raises SettingsError when the file cannot be read.
    """
    environ = os.environ if environ is None else environ
    path = environ.get(SETTINGS["env_file"].env, "")
    if not path:
        return {}
    values = read_env_file(path)
    environ.update(values)
    return values


# -- the README's tables -------------------------------------------------------------------------


def _shown_default(declared: Setting) -> str:
    if isinstance(declared.default, Computed):
        return declared.default.doc
    return declared.format(declared.default) or "(empty)"


def _shown_values(declared: Setting) -> str:
    if declared.choices:
        return ", ".join(f"`{choice}`" for choice in declared.choices)
    if declared.bounds:
        return f"{declared.kind.name}, {str(declared.bounds).removeprefix('a value ')}"
    return declared.kind.name


def markdown_table() -> str:
    """The README's configuration tables, one per section, generated from the declarations."""
    blocks = [
        f"Flags take {FLAG_WORDS}; choices are not case-sensitive; whole numbers may be "
        "written with `_` (`60_000`)."
    ]
    for section in Section:
        rows = [
            f"### {section.value}",
            "",
            "| variable | default | values | meaning |",
            "|---|---|---|---|",
        ]
        for declared in SETTINGS.values():
            if declared.section is section:
                doc = declared.doc + (
                    " A secret: `gateway config show` masks it." if declared.secret else ""
                )
                rows.append(
                    f"| `{declared.env}` | `{_shown_default(declared)}` | "
                    f"{_shown_values(declared)} | {doc} |"
                )
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks)


README_BEGIN = "<!-- settings table: generated by `python -m gateway.settings --update-readme` -->"
README_END = "<!-- end of settings table -->"


def readme_with_table(readme: str) -> str:
    """``readme`` with the block between the markers replaced by the current tables."""
    head, found, rest = readme.partition(README_BEGIN)
    _, found_end, tail = rest.partition(README_END)
    if not found or not found_end:
        raise ValueError("README.md lacks the settings table markers")
    return f"{head}{README_BEGIN}\n\n{markdown_table()}\n\n{README_END}{tail}"


if __name__ == "__main__":
    if sys.argv[1:] == ["--update-readme"]:
        path = Path(__file__).resolve().parent.parent / "README.md"
        path.write_text(readme_with_table(path.read_text()))
    else:
        sys.stdout.write(markdown_table() + "\n")
