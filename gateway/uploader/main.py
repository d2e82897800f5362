"""``gateway uploader``: a PEP 3143 daemon (python-daemon), or in the foreground for systemd.

The pid file is locked before forking, so a second start is refused on the terminal that
typed it; the lock's descriptor is kept open through the fork and the daemon writes its own
pid into it. The daemon's stdout and stderr are the log file, so the logging set up before
the fork keeps writing after it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from gateway.logs import configure_logging, log_event
from gateway.settings import Settings, load_env_file
from gateway.store.layout import DataDir
from gateway.uploader.memory import fewer_malloc_arenas
from gateway.uploader.pidfile import AlreadyRunning, LockedPidFile

log = logging.getLogger("gateway.uploader")


def load_settings(overrides: dict | None = None) -> Settings:
    """The settings as the environment and ``GATEWAY_ENV_FILE`` say now: SIGHUP's reload."""
    load_env_file()
    return Settings.from_env(os.environ, **(overrides or {}))


def pidfile_path(settings: Settings) -> Path:
    return Path(settings.uploader_pidfile or DataDir(settings.data_dir).uploader_pidfile)


def log_file_path(settings: Settings) -> Path:
    return Path(settings.uploader_log_file or DataDir(settings.data_dir).uploader_log)


# Modules that libraries the uploader uses import only when they are installed, for features
# the uploader does not use; the dev venv has all of them, a Pi's install not all. botocore
# takes pyOpenSSL's SSLContext over the standard library's ssl (9.2 MiB of cryptography for the
# same TLS); luigi validates DictParameter schemas with jsonschema (none here; 2.7 MiB) and talks
# to a central scheduler with requests (it falls back to urllib; 3.6 MiB); tenacity (luigi's)
# retries tornado coroutines (none here; 2.2 MiB); dask draws HTML reprs with jinja2 (1.2 MiB).
# (Each figure: the uploader's RSS idle against moto, with the module and without.)
OPTIONAL_IMPORTS_SKIPPED = (
    "urllib3.contrib.pyopenssl",
    "jsonschema",
    "requests_unixsocket",
    "requests",
)
#: Skipped too unless the work goes to a Dask cluster (GATEWAY_DASK_SCHEDULER), whose client
#: (dask.distributed) needs them.
OPTIONAL_IMPORTS_SKIPPED_WITHOUT_CLUSTER = ("tornado", "jinja2")


def skip_optional_imports(settings: Settings) -> None:
    """Make ``import NAME`` raise ImportError for each optional module above not imported yet,
    so the libraries take the path they take where it is not installed. Only for the
    uploader's own process, before it imports boto3 and luigi."""
    names = OPTIONAL_IMPORTS_SKIPPED
    if not settings.dask_scheduler:
        names += OPTIONAL_IMPORTS_SKIPPED_WITHOUT_CLUSTER
    for name in names:
        sys.modules.setdefault(name, None)


def run_uploader(
    settings: Settings, *, foreground: bool, once: bool, overrides: dict | None = None
) -> int:
    fewer_malloc_arenas()  # before any thread starts
    skip_optional_imports(settings)  # before boto3 and luigi are imported
    if not settings.s3_bucket:
        print("gateway uploader: GATEWAY_S3_BUCKET is not set", file=sys.stderr)
        return 2
    pidfile = LockedPidFile(pidfile_path(settings))
    try:
        pidfile.acquire()
    except AlreadyRunning as error:
        print(f"gateway uploader: {error}", file=sys.stderr)
        return 1
    reload = lambda: load_settings(overrides)  # noqa: E731
    if foreground or once:
        with pidfile:
            return _serve(settings, once=once, reload=reload)
    return _daemonize(settings, pidfile, reload)


def _serve(settings: Settings, *, once: bool, reload, install_signals: bool = True) -> int:
    from gateway.uploader.service import UploaderService

    service = UploaderService(settings, once=once, reload=reload)
    if install_signals:
        service.install_signals()
    return service.run()


def _daemonize(settings: Settings, pidfile: LockedPidFile, reload) -> int:
    import daemon

    log_path = log_file_path(settings)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_stream = open(log_path, "a", buffering=1)  # noqa: SIM115 (the daemon's stderr)
    holder: dict = {}

    def on_stop(signum, frame):
        if "service" in holder:
            holder["service"].request_stop()
        else:
            raise SystemExit(0)

    def on_reload(signum, frame):
        if "service" in holder:
            holder["service"].request_reload()

    context = daemon.DaemonContext(
        working_directory="/",
        umask=0o022,
        pidfile=pidfile,
        detach_process=True,
        files_preserve=[pidfile.fileno(), log_stream],
        stdout=log_stream,
        stderr=log_stream,
        signal_map={
            signal.SIGTERM: on_stop,
            signal.SIGINT: on_stop,
            signal.SIGHUP: on_reload,
            signal.SIGTTIN: None,
            signal.SIGTTOU: None,
            signal.SIGTSTP: None,
        },
    )
    with context:
        # The same logfmt lines as in the foreground, now on the log file (our stderr).
        configure_logging(settings.log_level, stream=sys.stderr)
        log_event(log, logging.INFO, "uploader_daemonized", pid=os.getpid(), log=str(log_path))
        from gateway.uploader.service import UploaderService

        service = UploaderService(settings, once=False, reload=reload)
        holder["service"] = service
        status = service.run()
    return status
