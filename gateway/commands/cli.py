"""The ``gateway`` command and its subcommands."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from gateway.logs import configure_logging
from gateway.settings import SETTINGS, Settings, SettingsError, load_env_file


def _reader(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.reader.service import ReaderService
    from gateway.reader.sink import streams

    sink = None
    if streams(settings.mode, settings.stream_url):  # else 6 MiB of modules it does not need
        from gateway.reader.stream import make_sink

        sink = make_sink(settings)
    return ReaderService(settings, sink=sink).run()


def _uploader(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.uploader.main import run_uploader

    return run_uploader(
        settings, foreground=args.foreground, once=args.once, overrides=_overrides(args)
    )


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.commands.status import (
        EXIT_SERVICE_DOWN,
        collect_status,
        format_status,
        services_down,
    )

    status = collect_status(settings)
    if args.json:
        json.dump(status, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_status(status))
    return EXIT_SERVICE_DOWN if services_down(status) else 0


def _tables(args: argparse.Namespace, settings: Settings) -> int:

    from gateway.commands.tables import (
        TablesError,
        bucket_batches,
        local_batches,
        write_tables,
    )

    try:
        since, until = args.since, args.until
        read = bucket_batches if args.from_s3 else local_batches
        batches = read(settings, args.gateway, since, until)
        counts = write_tables(batches, Path(args.out))
    except ImportError as error:
        print(
            f"gateway tables --from-s3 needs the analysis extra ({error.name} is missing): "
            "pip install 'fieldgate[analysis]'",
            file=sys.stderr,
        )
        return 2
    except (TablesError, ValueError, OSError) as error:
        print(f"gateway tables: {error}", file=sys.stderr)
        return 2
    for name, rows in counts.items():
        print(f"{rows:>10} rows  {Path(args.out) / name}.csv")
    return 0


def _metrics(args: argparse.Namespace, settings: Settings) -> int:
    from prometheus_client import generate_latest, write_to_textfile

    from gateway.commands.metrics import registry

    if args.textfile:
        write_to_textfile(args.textfile, registry(settings))
    else:
        sys.stdout.write(generate_latest(registry(settings)).decode())
    return 0


def _cleanup(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.commands.cleanup import format_result
    from gateway.store.cleanup import run_cleanup

    result = run_cleanup(settings, dry_run=args.dry_run)
    if args.json:
        json.dump(result.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_result(result, args.dry_run))
    return 1 if result.errors else 0


def _audit(args: argparse.Namespace, settings: Settings) -> int:

    from gateway.commands.audit import format_audit, run_audit

    since, until = args.since, args.until
    audits = run_audit(
        settings, use_s3=not args.no_s3, since=since, until=until, strict=args.strict
    )
    if args.json:
        json.dump(
            [
                {"data_dir": str(a.data_dir), "gateway_id": a.gateway_id, **a.report.as_dict()}
                for a in audits
            ],
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        print(format_audit(audits))
    return 0 if audits and all(a.report.passed for a in audits) else 1


def _report(args: argparse.Namespace, settings: Settings) -> int:

    try:
        from gateway.core.report import format_summary
        from gateway.report.run import ReportError, run_report
    except ImportError as error:
        print(
            f"gateway report needs the analysis extra ({error.name} is missing): "
            "pip install 'fieldgate[analysis]'",
            file=sys.stderr,
        )
        return 2
    if args.dask_scheduler and args.data_dir:
        print("gateway: --dask-scheduler reads the bucket; drop --data-dir", file=sys.stderr)
        return 2
    try:
        since, until = args.since, args.until
        report = run_report(
            settings,
            from_s3=args.from_s3,
            out=Path(args.out),
            gateway_id=args.gateway,
            since=since,
            until=until,
            line_format=args.line_format,
            scheduler=args.dask_scheduler,
        )
    except (ReportError, ValueError) as error:
        print(f"gateway report: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # S3 and file errors only: anything else is re-raised
        from botocore.exceptions import BotoCoreError, ClientError

        if not isinstance(error, OSError | BotoCoreError | ClientError):
            raise
        # The bucket or a file could not be read: no report rather than a partial one.
        print(f"gateway report: cannot read the batches: {error}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report.summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_summary(report.summary))
        print(f"  wrote {', '.join(str(path) for path in report.files)}")
    return 1 if report.summary["unreadable_batches"] else 0


def _s3_check(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.commands.s3 import EXIT_UNVERIFIABLE, check_json, check_lines
    from gateway.uploader.probe import ProbeFailed, probe_store
    from gateway.uploader.runtime import verify_policy

    logging.getLogger("botocore").setLevel(logging.WARNING)  # "found credentials in ..."
    if not settings.s3_bucket:
        print("gateway s3 check: cannot upload: GATEWAY_S3_BUCKET is not set", file=sys.stderr)
        return EXIT_UNVERIFIABLE
    try:
        report = probe_store(settings)
    except ProbeFailed as error:
        print(f"gateway s3 check: cannot upload: {error}", file=sys.stderr)
        return EXIT_UNVERIFIABLE
    policy = verify_policy(settings, report.capabilities)
    if args.json:
        json.dump(check_json(report, policy), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("\n".join(check_lines(settings, report, policy)))
    problem = policy.unverifiable()
    if problem:
        print(f"gateway s3 check: uploads would not be verified: {problem}", file=sys.stderr)
        return EXIT_UNVERIFIABLE
    if not args.json:
        print("gateway s3 check: OK: uploads will be verified")
    return 0


def _config_check() -> int:
    from gateway.commands.config import check

    problems, all_fine = check(os.environ)
    print("\n".join(problems) or all_fine)
    return 1 if problems else 0


def _config_show(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.commands.config import format_shown, shown, shown_as_json

    rows = shown(settings, os.environ)
    if args.json:
        json.dump(shown_as_json(rows), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_shown(rows))
    return 0


class _PrintVersion(argparse.Action):
    """``--version``, looked up only when asked: reading package metadata takes tens of ms."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import version

        print(f"gateway {version('fieldgate')}")
        parser.exit()


def _day(text: str):
    """An argparse type: the forms of :func:`gateway.core.dates.parse_day`, in UTC."""
    import datetime as dt

    from gateway.core.dates import NotADay, parse_day

    try:
        return parse_day(text, dt.datetime.now(dt.UTC).date())
    except NotADay as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _day_options(parser: argparse.ArgumentParser) -> None:
    days = "YYYY-MM-DD, today, yesterday, '3 days ago'"
    parser.add_argument(
        "--since", type=_day, metavar="DAY", help=f"only batches from this UTC day ({days})"
    )
    parser.add_argument("--until", type=_day, metavar="DAY", help="only batches up to this day")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="fieldgate gateway: read a serial monitor, keep every sample, upload it.",
        epilog="Other settings come from GATEWAY_* environment variables (see the README).",
    )
    parser.add_argument("--version", action=_PrintVersion, help="print the version and exit")
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="a KEY=VALUE file whose values override the environment (GATEWAY_ENV_FILE)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    reader = commands.add_parser("reader", help="read the serial port into batches and a stream")
    reader.add_argument("--port", help="device path or pyserial URL (GATEWAY_PORT)")
    reader.add_argument("--baud", type=int, help="baud rate (GATEWAY_BAUD)")
    reader.add_argument(
        "--mode",
        choices=SETTINGS["mode"].choices,
        help="files and stream, files only, or stream only (GATEWAY_MODE)",
    )
    reader.add_argument("--data-dir", help="data directory (GATEWAY_DATA_DIR)")
    reader.add_argument("--format", dest="line_format", help="line format (GATEWAY_LINE_FORMAT)")
    reader.set_defaults(run=_reader)

    uploader = commands.add_parser(
        "uploader", help="upload sealed batches to S3, verified, exactly once (a daemon)"
    )
    uploader.add_argument(
        "--foreground", action="store_true", help="do not fork (systemd Type=notify)"
    )
    uploader.add_argument(
        "--once", action="store_true", help="upload the backlog, then exit (0: all uploaded)"
    )
    uploader.add_argument("--data-dir", help="data dir or a parent of several (GATEWAY_DATA_DIR)")
    uploader.set_defaults(run=_uploader)

    status = commands.add_parser("status", help="inventory of the data dir and service counters")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--data-dir", help="data directory (GATEWAY_DATA_DIR)")
    status.set_defaults(run=_status)

    tables = commands.add_parser(
        "tables", help="the rows as one CSV table per record type (NMEA sentence, shape)"
    )
    where = tables.add_mutually_exclusive_group()
    where.add_argument("--data-dir", help="data dir or a parent of several (GATEWAY_DATA_DIR)")
    where.add_argument("--from-s3", action="store_true", help="read GATEWAY_S3_BUCKET instead")
    tables.add_argument("--gateway", metavar="ID", help="whose rows (default: the only one)")
    _day_options(tables)
    tables.add_argument("--out", default="tables", metavar="DIR", help="where (tables/)")
    tables.set_defaults(run=_tables)

    metrics = commands.add_parser(
        "metrics", help="the status as Prometheus text (or a file for node_exporter)"
    )
    metrics.add_argument(
        "--textfile",
        metavar="PATH",
        help="write it atomically to PATH (node_exporter's textfile collector) instead",
    )
    metrics.add_argument("--data-dir", help="data dir or a parent of several (GATEWAY_DATA_DIR)")
    metrics.set_defaults(run=_metrics)

    cleanup = commands.add_parser("cleanup", help="delete what retention allows (disk budget)")
    cleanup.add_argument("--dry-run", action="store_true", help="say what would go, and why")
    cleanup.add_argument("--json", action="store_true", help="machine-readable output")
    cleanup.add_argument("--data-dir", help="data directory (GATEWAY_DATA_DIR)")
    cleanup.set_defaults(run=_cleanup)

    audit = commands.add_parser(
        "audit", help="reconcile device counter, seq, batches and S3 objects; exit 0 on pass"
    )
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.add_argument("--data-dir", help="data directory (GATEWAY_DATA_DIR)")
    _day_options(audit)
    audit.add_argument("--no-s3", action="store_true", help="do not list the bucket")
    audit.add_argument(
        "--strict",
        action="store_true",
        help="also fail on device-side gaps (lost on the wire, rejected)",
    )
    audit.set_defaults(run=_audit)

    report = commands.add_parser(
        "report",
        help="plots and a summary of a session's batches, from the data dir or the bucket",
    )
    source = report.add_mutually_exclusive_group()
    source.add_argument("--data-dir", help="data dir or a parent of several (GATEWAY_DATA_DIR)")
    source.add_argument(
        "--from-s3",
        action="store_true",
        help="read the objects in GATEWAY_S3_BUCKET under GATEWAY_S3_PREFIX",
    )
    report.add_argument("--gateway", metavar="ID", help="whose batches (default: the only one)")
    _day_options(report)
    report.add_argument(
        "--format",
        dest="line_format",
        choices=SETTINGS["line_format"].choices,
        help="line format of the rows (default: the data dir's, else GATEWAY_LINE_FORMAT)",
    )
    report.add_argument("--out", default="report", metavar="DIR", help="where to write (report/)")
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.add_argument(
        "--dask-scheduler",
        metavar="URL",
        help="run the per-batch work on this Dask cluster (tcp://host:8786); reads the bucket",
    )
    report.set_defaults(run=_report)

    s3 = commands.add_parser("s3", help="the S3 store: what it supports, how uploads are verified")
    s3_commands = s3.add_subparsers(dest="s3_command", required=True, metavar="WHAT")
    s3_check = s3_commands.add_parser(
        "check",
        help="probe the store (checksums, ETags, If-None-Match, versioning); exit 0 when "
        "uploads will be verified",
    )
    s3_check.add_argument("--json", action="store_true", help="machine-readable output")
    s3_check.set_defaults(run=_s3_check)

    config = commands.add_parser("config", help="check the settings, or show them")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="WHAT")
    config_commands.add_parser(
        "check", help="report every unknown GATEWAY_* name and invalid value; exit 1 if any"
    )
    show = config_commands.add_parser(
        "show", help="the effective settings by section, with where each comes from"
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(run=_config_show)
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    """The settings given as command-line options; None where an option was not given."""
    overrides = {
        name: getattr(args, name, None)
        for name in ("port", "baud", "mode", "data_dir", "line_format")
    }
    if overrides["data_dir"] is not None:
        overrides["data_dir"] = Path(overrides["data_dir"])
    return overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.env_file is not None:
        # As if GATEWAY_ENV_FILE were set: the uploader's SIGHUP reload reads the same file.
        os.environ[SETTINGS["env_file"].env] = args.env_file
    try:
        load_env_file()
        if args.command == "config" and args.config_command == "check":
            return _config_check()  # it reports on settings that may well be invalid
        settings = Settings.from_env(**_overrides(args))
    except SettingsError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return args.run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
