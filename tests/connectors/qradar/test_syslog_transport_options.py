"""Syslog transports: TLS options on a plain-text transport are refused; UDP reaches a name that resolves to IPv6 only."""
from __future__ import annotations

import socket
from typing import Any

import pytest

from wia_security.builders import AlertBuilder
from wia_security.connectors import open_sink
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.connectors.qradar import SyslogSink
from wia_security.errors import ConfigError

POLICY = DeliveryPolicy(max_events=10, max_wait=0, initial_backoff=0.01, max_backoff=0.05)


@pytest.mark.parametrize("url, key", [
    ("qradar+tcp://127.0.0.1:514?ca_file=/etc/ssl/certs/ca-certificates.crt", "ca_file"),
    ("qradar+tcp://127.0.0.1:514?tls_verify=false", "tls_verify"),
    ("syslog+udp://127.0.0.1:514?server_name=qradar.example", "server_name"),
    ("qradar://127.0.0.1:514?verify=true", "verify"),
])
def test_a_tls_option_on_a_plain_text_transport_is_refused(url: str, key: str) -> None:
    # before: the option was ignored and the events went out in plain text
    with pytest.raises(ConfigError) as caught:
        open_sink(url)
    assert caught.value.key == key
    assert "applies to TLS only" in str(caught.value) and "qradar+tls://" in str(caught.value)


def test_a_tls_option_given_as_a_keyword_on_tcp_is_refused_too() -> None:
    with pytest.raises(ConfigError) as caught:
        SyslogSink("127.0.0.1", 514, transport="tcp", ca_file="/etc/ssl/certs/ca-certificates.crt")
    assert caught.value.key == "ca_file"


def test_tls_options_are_still_taken_by_the_tls_transport() -> None:
    sink = open_sink("qradar+tls://127.0.0.1:6514?tls_verify=false&server_name=qradar.example")
    assert sink.server_name == "qradar.example"


def test_udp_reaches_a_host_name_that_resolves_to_ipv6_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # A resolver stand-in: "qradar-v6.test" has an AAAA record only. Before, the sink opened an IPv4 socket for
    # any name without ":" and every event was dead-lettered ("Address family for hostname not supported").
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real("::1" if host == "qradar-v6.test" else host, port, *args, **kwargs)

    listener = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    listener.bind(("::1", 0))
    listener.settimeout(10)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    event = AlertBuilder().source("edr", "EDR").title("v6 only").severity(5).build().to_dict()
    with open_sink(f"qradar+udp://qradar-v6.test:{listener.getsockname()[1]}", delivery=POLICY) as sink:
        report = sink.send([event])
        report.merge(sink.flush())
    assert (report.delivered, report.failed) == (1, [])
    datagram = listener.recv(65535)
    assert b"LEEF:2.0" in datagram and event["id"].encode() in datagram
    listener.close()


@pytest.mark.parametrize("url, key", [
    ("qradar+tcp://127.0.0.1:514?format=cef&format=leef", "format"),
    ("syslog+tls://127.0.0.1:6514?ca_file=/etc/ssl/certs/ca-certificates.crt&ca_file=/tmp/other.pem", "ca_file"),
    ("qradar+udp://127.0.0.1:514?max_events=5&max_events=500", "max_events"),
])
def test_an_option_given_twice_in_the_url_is_refused_naming_it(url: str, key: str) -> None:
    # before: the last one was taken without a word, as every other connector's URL no longer does
    with pytest.raises(ConfigError, match="given more than once in the URL") as caught:
        open_sink(url)
    assert caught.value.key == key


@pytest.mark.parametrize("url, key", [
    ("qradar+tls://127.0.0.1:6514?ca_file=", "ca_file"),                # ?ca_file=$CA with CA unset
    ("qradar+tls://127.0.0.1:6514?server_name=&format=cef", "server_name"),
    ("qradar+tcp://127.0.0.1:514?hostname=", "hostname"),
    ("qradar+tls://127.0.0.1:6514?client_cert=", "client_cert"),
])
def test_an_option_given_without_a_value_is_refused_naming_it(url: str, key: str) -> None:
    # before: parse_qsl dropped it, and the default (system CAs, the URL's host, this machine's name, no client
    # certificate) was used without a word
    with pytest.raises(ConfigError, match="given without a value") as caught:
        open_sink(url)
    assert caught.value.key == key


@pytest.mark.parametrize("url, why", [
    ("qradar+tcp://127.0.0.1:514?delimiter=%7C", "the delimiter must be one character"),     # '|'
    ("qradar+tcp://127.0.0.1:514?delimiter=ab", "the delimiter must be one character"),
    ("syslog+tcp://127.0.0.1:514?format=cef&delimiter=%5E", "delimiter applies to LEEF only"),
])
def test_a_delimiter_that_cannot_be_used_is_refused_when_the_sink_is_made(url: str, why: str) -> None:
    # before: '|' or 'ab' dead-lettered every event, one by one, with the LEEF writer's reason; with CEF the
    # option was ignored
    with pytest.raises(ConfigError, match=why) as caught:
        open_sink(url)
    assert caught.value.key == "delimiter"


def test_a_usable_delimiter_is_written_into_the_leef_header() -> None:
    sink = open_sink("qradar+tcp://127.0.0.1:514?delimiter=%09")        # a tab: no "value" to strip() away
    line = sink.encode(AlertBuilder().title("x").severity(3).build().to_dict()).decode()
    assert "|x09|" in line


@pytest.mark.parametrize("option, value", [
    ("max_message_bytes", "8000"), ("max_message_bytes", 0), ("max_message_bytes", -5), ("facility", "x"),
    ("facility", True), ("facility", 24), ("timeout", "abc"), ("timeout", 0), ("timeout", -1),
    ("timeout", float("nan")), ("hostname", 5),
])
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_a_config_file_value_of_the_wrong_kind_is_a_config_error_naming_it(option: str, value: Any,
                                                                           transport: str) -> None:
    # before: a bare TypeError/ValueError when opened, or every event dead-lettered ("8000" compared with an
    # int; timeout "abc" failed each connect; 0 or -5 bytes refused every message), or facility true read as 1
    from wia_security.connectors.config import parse_config
    config = parse_config({"destinations": {"q": {"url": f"qradar+{transport}://127.0.0.1:1", option: value}}},
                          source="wia.toml")
    with pytest.raises(ConfigError) as caught:
        config.destinations[0].open()
    assert caught.value.key.endswith(option)
