"""Findings of a review of destination URL errors (helper 54): a password with a raw '?' or '#' (not
percent-encoded) must not be echoed in part, and a URL whose port does not parse is a usage error, not a
traceback that quotes the password."""
from __future__ import annotations

import pytest

from bad_inputs import valid_line


@pytest.mark.parametrize("url", [
    "nosuch://admin:pa?ssw0rd@host:8088/path",          # a raw "?" in the password ended the "host" early
    "nosuch://admin:pa#ssw0rd@host:8088",
    "nosuch://admin:12?ssw0rd@host:8088",               # ... whose start looks like a port
    "nosuch://admin:pa?ss/w0rd@host",
])
def test_a_raw_query_or_fragment_character_in_a_password_is_not_echoed(cli, tmp_path, url):
    (tmp_path / "in.json").write_bytes(valid_line())
    r = cli("forward", "--to", url, "in.json")
    assert r.code == 2 and "unknown destination scheme 'nosuch'" in r.err
    shown = r.err.split("wia-security: ", 1)[1].split(": url:", 1)[0]
    assert shown in ("nosuch://host:8088/...", "nosuch://host/...", "nosuch://***/..."), r.err


def test_a_query_with_an_at_sign_keeps_the_url_redacted(cli, tmp_path):
    (tmp_path / "in.json").write_bytes(valid_line())
    r = cli("forward", "--to", "nosuch://host:8088?user=me@example.com&token=abc", "in.json")
    assert r.code == 2 and "abc" not in r.err and "me@" not in r.err and "nosuch://" in r.err


@pytest.mark.parametrize("url", [
    "elasticsearch+https://elastic:pa?ssw0rd@es.example:9200/idx",
    "elasticsearch+https://es.example:92OO/idx",
])
def test_a_url_whose_port_does_not_parse_is_a_usage_error(cli, tmp_path, url):
    """ElasticSink read `urlsplit(url).port`: its ValueError escaped forward as a traceback ending in
    "Port could not be cast to integer value as 'pa'", the start of the password."""
    (tmp_path / "in.json").write_bytes(valid_line())
    r = cli("forward", "--to", url, "in.json")
    assert r.code == 2 and "port" in r.err and "percent-encoded" in r.err, r.err
    assert "'pa'" not in r.err and "elastic:" not in r.err and "ssw0rd" not in r.err
