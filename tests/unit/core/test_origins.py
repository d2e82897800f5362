"""The Origin check compares scheme, host and port (RFC 6454), not the host alone."""

import pytest

from gateway.core.origins import Origin, origin_allowed, own_origin, parse_origin


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("http://gw.local", Origin("http", "gw.local", 80)),
        ("HTTPS://Central.Example", Origin("https", "central.example", 443)),
        ("http://127.0.0.1:8000", Origin("http", "127.0.0.1", 8000)),
        ("http://[::1]:8000", Origin("http", "[::1]", 8000)),
        ("null", None),
        ("", None),
        (None, None),
        ("http://gw.local/path", None),
        ("ftp://gw.local", None),
        ("http://user@gw.local", None),
        ("http://gw.local:99999", None),
    ],
)
def test_an_origin_is_scheme_host_and_port(text, parsed):
    assert parse_origin(text) == parsed


def test_the_default_port_is_the_schemes():
    assert parse_origin("https://c.example:443") == parse_origin("https://c.example")
    assert str(parse_origin("https://c.example:443")) == "https://c.example"
    assert str(parse_origin("http://c.example:8000")) == "http://c.example:8000"


@pytest.mark.parametrize(
    ("origin", "secure", "host", "allowed"),
    [
        ("http://127.0.0.1:8000", False, "127.0.0.1:8000", True),
        ("http://127.0.0.1:9000", False, "127.0.0.1:8000", False),  # another port, same host
        ("http://127.0.0.1", False, "127.0.0.1:8000", False),
        ("https://127.0.0.1:8000", False, "127.0.0.1:8000", False),  # another scheme
        ("https://central.example", True, "central.example", True),
        ("http://central.example", True, "central.example", False),
        ("http://evil.example", False, "central.example", False),
        ("http://central.example", False, None, False),
        (None, False, "central.example", False),
    ],
)
def test_only_the_sites_own_origin_is_allowed(origin, secure, host, allowed):
    assert origin_allowed(origin, secure, host) is allowed


def test_a_trusted_origin_is_allowed_whole_not_by_host():
    trusted = ("https://central.example",)
    assert origin_allowed("https://central.example", False, "10.0.0.5:8000", trusted)
    assert not origin_allowed("https://central.example:8443", False, "10.0.0.5:8000", trusted)


def test_the_own_origin_comes_from_host_and_tls():
    assert own_origin(True, "central.example") == Origin("https", "central.example", 443)
    assert own_origin(False, "gw.local:8000") == Origin("http", "gw.local", 8000)
    assert own_origin(False, "") is None
