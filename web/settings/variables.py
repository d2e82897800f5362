"""Every ``FIELDGATE_WEB_*`` variable the site reads, declared once: its kind, default and
meaning. The profiles (``base``, ``gateway``, ``central``) and ``manage.py serve`` read them
through :func:`value`, and the README's site table is generated from here
(``python -m web.settings.variables --update-readme``), so code and table cannot drift apart.

No Django here: the table is made without settings, and a wrong value raises ``ValueError``
with one line naming the variable (the profiles turn it into ``ImproperlyConfigured``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

PREFIX = "FIELDGATE_WEB_"

TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Variable:
    name: str
    kind: str  # text, whole, flag or list
    default: str | int | bool | tuple[str, ...]
    doc: str
    profile: str = "both"  # the profile that reads it: both, gateway or central
    minimum: int = 1  # whole numbers only
    shown_default: str = ""  # the default as the table shows it, when not the value itself


def _text(name, default, doc, **more) -> Variable:
    return Variable(PREFIX + name, "text", default, doc, **more)


def _whole(name, default, doc, **more) -> Variable:
    return Variable(PREFIX + name, "whole", default, doc, **more)


def _flag(name, doc, **more) -> Variable:
    return Variable(PREFIX + name, "flag", False, doc, **more)


VARIABLES: tuple[Variable, ...] = (
    # -- the site ------------------------------------------------------------------------------
    _text("DATA_DIR", "/var/lib/fieldgate-web", "SQLite file and the generated secret key"),
    _text(
        "SECRET_KEY",
        "",
        "Django's secret key; set it for several workers. Generated, it is written whole or not "
        "at all; on a full or read-only data dir a key for this run is kept in memory (shared "
        "with the workers `serve` starts; logins end at a restart) and `secret_key_not_saved` "
        "says what to free",
        shown_default="(generated once into the data dir)",
    ),
    _flag("DEBUG", "Django debug pages (never in production)"),
    Variable(
        PREFIX + "ALLOWED_HOSTS",
        "list",
        (),
        "host names served (comma-separated); also the Origins viewer sockets accept",
        shown_default="`localhost,127.0.0.1,[::1],<host name>,<host name>.local`",
    ),
    Variable(
        PREFIX + "CSRF_TRUSTED_ORIGINS",
        "list",
        (),
        "origins trusted for forms, e.g. `https://central.example` behind TLS",
    ),
    _text(
        "LOG_LEVEL",
        "info",
        "the site's logs (logfmt on stderr); server errors (500) are logged at error level with "
        "their traceback whatever it is (`logger=django.request`)",
    ),
    _text("HOST", "127.0.0.1", "address `manage.py serve` listens on"),
    _whole("PORT", 8000, "port `manage.py serve` listens on"),
    _whole(
        "WORKERS",
        1,
        "uvicorn worker processes `manage.py serve` starts (above 1: the central profile)",
    ),
    # -- databases, channel layer ---------------------------------------------------------------
    _text(
        "SQLITE_PATH",
        "",
        "the gateway profile's database",
        profile="gateway",
        shown_default="`$FIELDGATE_WEB_DATA_DIR/web.sqlite3`",
    ),
    _text("DB_NAME", "fieldgate", "PostgreSQL database", profile="central"),
    _text("DB_USER", "fieldgate", "PostgreSQL user", profile="central"),
    _text("DB_PASSWORD", "", "PostgreSQL password", profile="central"),
    _text("DB_HOST", "127.0.0.1", "PostgreSQL host", profile="central"),
    _whole("DB_PORT", 5432, "PostgreSQL port", profile="central"),
    _text(
        "REDIS_URL",
        "redis://127.0.0.1:6379/0",
        "Redis for the channel layer, the counters and the rate limits",
        profile="central",
    ),
    _whole(
        "LAYER_CAPACITY",
        200,
        "messages a channel may hold in Redis (overflow shows as `lost_upstream`)",
        profile="central",
    ),
    # -- the live stream ------------------------------------------------------------------------
    _whole("MAX_MESSAGE_BYTES", 256 * 1024, "largest ingest message (else 4413)"),
    _whole("VIEWER_WINDOW", 64, "messages a viewer may have unacknowledged"),
    _whole(
        "VIEWER_PENDING", 8, "newest frames kept for a held-back viewer (older dropped, counted)"
    ),
    _whole("VIEWER_ACK_EVERY", 8, "a viewer acknowledges every this many messages"),
    _whole("OFFLINE_AFTER_SECONDS", 20, "no message for this long: the gateway shows offline"),
    _whole(
        "TOKEN_CHECK_SECONDS",
        3,
        "an open gateway socket checks its token this often (revoked: 4410, rotated: 4403)",
    ),
    _whole(
        "WATCH_SECONDS",
        5,
        "an open live view renews its watch this often; a gateway nobody has watched for 3 times "
        "this is told to pause its frames (status goes on; a viewer resumes them at once)",
    ),
    # -- history and export ---------------------------------------------------------------------
    _text(
        "GATEWAY_DATA_DIR",
        "",
        "the `GATEWAY_DATA_DIR` of the gateway this site runs on: its batches are the live "
        "view's history and the CSV export (the data dir's `identity.json` names the gateway). "
        "Empty: neither is served",
    ),
    _text(
        "S3_BUCKET",
        "",
        "the bucket the gateways' uploaders write to (their `GATEWAY_S3_BUCKET`; credentials "
        "from the standard `AWS_*` variables): the central site's CSV export reads the batches "
        "there. Empty: no export from S3",
    ),
    _text("S3_PREFIX", "", "their `GATEWAY_S3_PREFIX`"),
    _text("S3_ENDPOINT_URL", "", "their `GATEWAY_S3_ENDPOINT_URL` (empty: AWS)"),
    # -- defences -------------------------------------------------------------------------------
    _text(
        "METRICS_TOKEN",
        "",
        "`/metrics` only with `Authorization: Bearer <this>`; empty: only to requests from this "
        "host that no proxy forwarded",
    ),
    _whole(
        "LOGIN_FAILURES_PER_CLIENT",
        10,
        "failed logins a client address may have in the window; then 429",
    ),
    _whole(
        "LOGIN_FAILURES_PER_ACCOUNT",
        30,
        "failed logins a user name may have in the window, from any address; then 429",
    ),
    _whole("LOGIN_FAILURE_WINDOW_SECONDS", 900, "the login limits' sliding window"),
    _whole(
        "INGEST_FAILURES_PER_CLIENT",
        20,
        "refused gateway handshakes (any token refusal) a client address may have in the "
        "window; then 4429 before any token check",
    ),
    _whole("INGEST_FAILURE_WINDOW_SECONDS", 60, "that limit's sliding window"),
    _flag(
        "HTTPS",
        "`1`: the site is reached over https only: secure session and CSRF cookies, http "
        "redirected to https (except `/healthz` and `/metrics`, for probes and scrapers that "
        "reach a worker directly)",
    ),
    _flag(
        "TLS_PROXY",
        "`1`: a proxy terminates TLS and sets `X-Forwarded-Proto` (Django's "
        "`SECURE_PROXY_SSL_HEADER`); the proxy must set or strip that header on every request",
    ),
    _whole(
        "HSTS_SECONDS",
        0,
        "`Strict-Transport-Security` max-age (0: no header); with https only, and knowingly: "
        "browsers then refuse http for that long",
        minimum=0,
    ),
    _flag("HSTS_INCLUDE_SUBDOMAINS", "the HSTS header's `includeSubDomains`"),
    _flag("HSTS_PRELOAD", "the HSTS header's `preload`"),
)

BY_NAME: dict[str, Variable] = {variable.name: variable for variable in VARIABLES}


def _parse_whole(variable: Variable, text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"{variable.name}={text!r}: expected a whole number") from None
    if number < variable.minimum:
        expected = "above 0" if variable.minimum == 1 else f"of at least {variable.minimum}"
        raise ValueError(f"{variable.name}={number}: expected a value {expected}")
    return number


def _parse_flag(variable: Variable, text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE | FALSE:
        return word in TRUE
    raise ValueError(f"{variable.name}={text!r}: expected 1/0, true/false, yes/no or on/off")


def _parse_list(variable: Variable, text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


PARSERS: dict[str, Callable[[Variable, str], object]] = {
    "text": lambda variable, text: text,
    "whole": _parse_whole,
    "flag": _parse_flag,
    "list": _parse_list,
}


def value(name: str, environ: Mapping[str, str] | None = None):
    """The variable's value from ``environ`` (the process's by default), else its default."""
    variable = BY_NAME[name]
    environ = os.environ if environ is None else environ
    if name not in environ:
        return variable.default
    return PARSERS[variable.kind](variable, environ[name])


def problems(environ: Mapping[str, str]) -> list[str]:
    """What is wrong with the ``FIELDGATE_WEB_*`` names and values in ``environ``: unknown names
    (with the nearest known one) and values that do not parse."""
    import difflib

    found = []
    for name in sorted(key for key in environ if key.startswith(PREFIX)):
        if name in BY_NAME:
            try:
                value(name, environ)
            except ValueError as error:
                found.append(str(error))
            continue
        nearest = difflib.get_close_matches(name, BY_NAME, n=1)
        hint = f" (did you mean {nearest[0]}?)" if nearest else ""
        found.append(f"{name}: not a setting of the site{hint}")
    return found


def _shown(variable: Variable) -> str:
    if variable.shown_default:
        return variable.shown_default
    default = variable.default
    if variable.kind == "flag":
        default = "1" if default else "0"
    elif variable.kind == "list":
        default = ",".join(default)
    return f"`{default}`" if default != "" else "(empty)"


README_BEGIN = (
    "<!-- site settings table: generated by `python -m web.settings.variables --update-readme` -->"
)
README_END = "<!-- end of site settings table -->"


def markdown_table() -> str:
    lines = ["| variable | default | profile | meaning |", "|---|---|---|---|"]
    for variable in VARIABLES:
        lines.append(
            f"| `{variable.name}` | {_shown(variable)} | {variable.profile} | {variable.doc} |"
        )
    return "\n".join(lines)


def readme_with_table(readme: str) -> str:
    """``readme`` with the block between the markers replaced by the current table."""
    head, found, rest = readme.partition(README_BEGIN)
    _, found_end, tail = rest.partition(README_END)
    if not found or not found_end:
        raise ValueError("README.md lacks the site settings table markers")
    return f"{head}{README_BEGIN}\n\n{markdown_table()}\n\n{README_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m web.settings.variables",
        description="The site's FIELDGATE_WEB_* settings: the table, or a check of them.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--update-readme", action="store_true", help="rewrite README.md's table")
    action.add_argument(
        "--check",
        action="store_true",
        help="name unknown FIELDGATE_WEB_* variables and wrong values; exit 1 if any",
    )
    parser.add_argument("--env-file", help="check this file's assignments (e.g. the web.env)")
    args = parser.parse_args(argv)
    if args.update_readme:
        path = Path(__file__).resolve().parents[2] / "README.md"
        path.write_text(readme_with_table(path.read_text()))
        return 0
    if args.check:
        environ = dict(os.environ)
        if args.env_file:
            from gateway.settings import SettingsError, read_env_file

            try:
                environ.update(read_env_file(args.env_file))
            except (OSError, SettingsError) as error:
                print(f"site settings: {error}", file=sys.stderr)
                return 1
        found = problems(environ)
        for problem in found:
            print(f"site settings: {problem}", file=sys.stderr)
        print("site settings: OK" if not found else f"site settings: {len(found)} problem(s)")
        return 1 if found else 0
    sys.stdout.write(markdown_table() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
