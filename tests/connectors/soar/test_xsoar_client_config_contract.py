"""XSOAR sink, contract tests: demisto-py is told everything, the environment nothing. demisto_client.configure
fills what it is not given from environment variables (DEMISTO_API_KEY_ID / XSIAM_AUTH_ID, set for
demisto-sdk on many a workstation and CI runner, turn on XSOAR 8 mode: /xsoar paths, an x-xdr-auth-id
header; DEMISTO_HTTP_HEADERS adds headers to every request), and with an auth id it rewrites an https
host to api-<host>: the API key went to a host nobody configured."""
from __future__ import annotations

import pytest

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.xsoar import XsoarSink
from wia_security.errors import ConfigError

from xsoar_contract import XsoarServer

FAST = DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0.01, max_elapsed=30)


@pytest.mark.parametrize("variable", ["DEMISTO_API_KEY_ID", "XSIAM_AUTH_ID"])
def test_contract_an_auth_id_in_the_environment_does_not_turn_an_xsoar_6_sink_into_xsoar_8(
        xsoar_server, sample_events, monkeypatch, variable):
    monkeypatch.setenv(variable, "42")
    monkeypatch.setenv("DEMISTO_HTTP_HEADERS", "x-injected=1")
    with XsoarSink(xsoar_server.url, token=xsoar_server.api_key, delivery=FAST) as sink:
        report = sink.send(sample_events[:2])
        report.merge(sink.flush())
    assert (report.delivered, report.failed) == (2, [])
    assert all(not r.path.startswith("/xsoar") for r in xsoar_server.requests)
    assert all("x-xdr-auth-id" not in r.headers and "x-injected" not in r.headers for r in xsoar_server.requests)


def test_contract_an_xsoar_8_sink_takes_its_auth_id_from_its_options_only(sample_events, monkeypatch):
    monkeypatch.setenv("DEMISTO_API_KEY_ID", "99")
    with XsoarServer(auth_id="17") as server:
        with XsoarSink(server.url, token=server.api_key, auth_id="17", delivery=FAST) as sink:
            report = sink.send(sample_events[:1])
            report.merge(sink.flush())
    assert (report.delivered, report.failed) == (1, [])


def test_an_auth_id_with_an_https_url_that_is_not_the_api_host_is_refused_not_rewritten():
    # demisto-py would send the key to https://api-xsoar.example.com/xsoar without a word
    with pytest.raises(ConfigError, match=r"https://api-xsoar\.example\.com") as caught:
        XsoarSink("https://xsoar.example.com", token="xsoar-key-8c1f", auth_id="17")
    assert caught.value.key == "url" and "xsoar-key-8c1f" not in str(caught.value)


def test_an_auth_id_with_the_api_host_is_used_as_given():
    sink = XsoarSink("https://api-tenant.xdr.us.paloaltonetworks.com", token="k", auth_id="17")
    assert sink.client.api_client.configuration.host == "https://api-tenant.xdr.us.paloaltonetworks.com/xsoar"
    sink.close()
