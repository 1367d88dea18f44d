"""The SOAR sinks at an IPv6 address: the base URL kept the address without its brackets
(`http://::1:8443`), so every request of a sink configured as `xsoar+http://[::1]:PORT` went nowhere and
each event was retried and dead-lettered. Contract servers listening on ::1, driven by demisto-py and requests."""
from __future__ import annotations

import pytest
from splunk_soar_contract import SplunkSoarServer
from xsoar_contract import XsoarServer

from wia_security.connectors import open_sink


class XsoarServerV6(XsoarServer):
    host = "::1"


class SplunkSoarServerV6(SplunkSoarServer):
    host = "::1"


@pytest.mark.parametrize("server_class, scheme, env", [
    (XsoarServerV6, "xsoar+http", "XSOAR_KEY"),
    (SplunkSoarServerV6, "splunksoar+http", "SOAR_TOKEN"),
])
def test_contract_a_sink_at_an_ipv6_address_delivers(server_class, scheme, env, sample_events, monkeypatch):
    with server_class() as server:
        secret = getattr(server, "api_key", None) or getattr(server, "token")
        monkeypatch.setenv(env, secret)
        url = server.url.replace("http://", f"{scheme}://") + f"?token_env={env}&max_wait=0&max_attempts=1"
        assert "[::1]" in url
        with open_sink(url) as sink:
            assert "[::1]" in sink.base_url
            report = sink.send(sample_events[:2])
            report.merge(sink.flush())
        assert (report.delivered, report.failed) == (2, [])
