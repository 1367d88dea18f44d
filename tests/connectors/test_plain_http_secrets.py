"""A token or password sent over plain http:// to a host that is not this machine is warned about, once per
destination: anyone on the network path could read it (found by a new-user walkthrough: splunk+http:// and
taxii+http:// sent their secrets in clear to any host, silently). Loopback and https:// stay quiet.
The hosts are TEST-NET addresses (RFC 5737): constructing the sinks and sources connects to nothing."""
from __future__ import annotations

import logging

import pytest

from wia_security.connectors import open_sink
from wia_security.connectors.delivery.urls import is_loopback_host
from wia_security.connectors.splunk.search import SplunkSearchSource
from wia_security.connectors.taxii import TaxiiSink, TaxiiSource
from wia_security.errors import ConfigError

TOKEN = "token-value-7d1c9e"


@pytest.fixture(autouse=True)
def secrets(monkeypatch):
    monkeypatch.setenv("SOME_TOKEN", TOKEN)
    monkeypatch.setenv("SOME_PASSWORD", TOKEN)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "plain HTTP" in r.getMessage()]


@pytest.mark.parametrize("open_, url, options, says", [
    (open_sink, "splunk+http://198.51.100.7:8088?token_env=SOME_TOKEN", {},
     "splunk:198.51.100.7:8088: the HEC token is sent over plain HTTP to http://198.51.100.7:8088, which is not "
     "this machine"),
    (TaxiiSource.from_url, "taxii+http://198.51.100.8/api/collections/c1/?token_env=SOME_TOKEN", {},
     "the TAXII token is sent over plain HTTP to http://198.51.100.8"),
    (TaxiiSink.from_url,
     "taxii+http://198.51.100.9:5000/api/collections/c1/?user=wia&password_env=SOME_PASSWORD&max_content_length=1000", {},
     "the TAXII password is sent over plain HTTP to http://198.51.100.9:5000"),
    (SplunkSearchSource.from_url, "splunk+http://198.51.100.10:8089?token_env=SOME_TOKEN", {},
     "the Splunk token is sent over plain HTTP to http://198.51.100.10:8089"),
    (open_sink, "phantom+http://198.51.100.11?token_env=SOME_TOKEN", {},
     "the Splunk SOAR automation token is sent over plain HTTP to http://198.51.100.11"),
    (open_sink, "xsoar+http://198.51.100.12?token_env=SOME_TOKEN", {},
     "the XSOAR API key is sent over plain HTTP to http://198.51.100.12"),
    (open_sink, "elasticsearch+http://198.51.100.13:9200", {"api_key": TOKEN},
     "the API key is sent over plain HTTP to http://198.51.100.13:9200"),
    (open_sink, "elasticsearch+http://198.51.100.14:9200", {"username": "wia", "password": TOKEN},
     "the password is sent over plain HTTP to http://198.51.100.14:9200"),
])
def test_a_secret_over_plain_http_to_another_host_is_warned(open_, url, options, says, caplog):
    caplog.set_level(logging.WARNING)
    open_(url, **options)
    [warning] = _warnings(caplog)
    assert says in warning and "Use https://" in warning
    assert TOKEN not in caplog.text


def test_the_warning_comes_once_per_destination(caplog):
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        open_sink("splunk+http://203.0.113.20:8088?token_env=SOME_TOKEN")
    open_sink("splunk+http://203.0.113.20:8089?token_env=SOME_TOKEN")            # another port: another destination
    assert [w.split(" to ", 1)[1].split(",")[0] for w in _warnings(caplog)] == [
        "http://203.0.113.20:8088", "http://203.0.113.20:8089"]


@pytest.mark.parametrize("url", [
    "splunk+http://127.0.0.1:8088?token_env=SOME_TOKEN",
    "splunk+http://127.8.9.10:8088?token_env=SOME_TOKEN",
    "splunk+http://localhost:8088?token_env=SOME_TOKEN",
    "splunk+https://203.0.113.21:8088?token_env=SOME_TOKEN",
    "taxii+https://203.0.113.22/api/collections/c1/?token_env=SOME_TOKEN",
    "taxii+http://203.0.113.23/api/collections/c1/",                       # no secret to expose
])
def test_loopback_https_and_no_secret_stay_quiet(url, caplog):
    caplog.set_level(logging.WARNING)
    (TaxiiSource.from_url if url.startswith("taxii") else open_sink)(url)
    assert _warnings(caplog) == []


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.255.0.9", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LOCALHOST.", True), ("192.0.2.1", False), ("localhost.example.com", False), ("0.0.0.0", False),
    ("::ffff:10.0.0.1", False), ("", False), (None, False),
])
def test_loopback_is_this_machine_only(host, loopback):
    assert is_loopback_host(host) is loopback


def test_the_misp_key_over_plain_http_is_warned_before_pymisp_connects(caplog):
    # PyMISP asks the server for its version when constructed: nothing answers at a TEST-NET address
    caplog.set_level(logging.WARNING)
    with pytest.raises(ConfigError, match="cannot connect to MISP"):
        open_sink("misp+http://198.51.100.15", key=TOKEN, timeout=0.5)
    [warning] = _warnings(caplog)
    assert "the MISP API key is sent over plain HTTP to http://198.51.100.15" in warning
    assert TOKEN not in caplog.text
