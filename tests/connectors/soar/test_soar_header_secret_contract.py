"""Splunk SOAR and XSOAR, contract test: a token (or XSOAR auth id) that cannot be an HTTP header value, most
often one read from an environment variable with a stray newline (a Kubernetes secret made from a file), is
refused when the sink is made, naming the option and why. Before, every request failed: Splunk SOAR retried
requests' InvalidHeader as an I/O error until the attempts ran out (a retryable failure: a queue trigger
redelivers it for days), XSOAR gave "unexpected error: ValueError: Invalid header value"; for every event."""
from __future__ import annotations

import pytest

from wia_security.connectors import open_sink
from wia_security.connectors.soar.splunk_soar import SplunkSoarSink
from wia_security.connectors.soar.xsoar import XsoarSink
from wia_security.errors import ConfigError

# The last two: a byte-order mark (a token file saved by Notepad read without its encoding) and a character outside
# Latin-1, which http.client cannot encode (UnicodeEncodeError on every request, retried as an I/O error).
BAD = ["{t}\n", "{t}\r\n", " {t}", "{t} ", "{t}\t", "ab\ncd{t}", "{t}\x00", "\ufeff{t}", "{t}\u2013x"]


@pytest.mark.parametrize("shape", BAD, ids=["lf", "crlf", "leading-blank", "trailing-blank", "tab", "inner-lf", "nul",
                                            "bom", "non-latin-1"])
def test_contract_a_token_that_cannot_be_a_header_is_refused_at_once(soar_server, xsoar_server, shape):
    for cls, server, secret in ((SplunkSoarSink, soar_server, soar_server.token),
                                (XsoarSink, xsoar_server, xsoar_server.api_key)):
        token = shape.format(t=secret)
        with pytest.raises(ConfigError, match="token has a line break, a control character") as caught:
            cls(server.url, token=token)
        assert secret not in str(caught.value) and caught.value.key == "token"
        assert not server.requests                                 # nothing sent


def test_contract_from_an_environment_variable_with_a_stray_newline(soar_server, xsoar_server, monkeypatch):
    monkeypatch.setenv("SOAR_TOKEN", soar_server.token + "\n")
    monkeypatch.setenv("XSOAR_KEY", xsoar_server.api_key + "\n")
    host = soar_server.url.split("://", 1)[1]
    with pytest.raises(ConfigError, match="Splunk SOAR token"):
        open_sink(f"phantom+http://{host}?token_env=SOAR_TOKEN")
    host = xsoar_server.url.split("://", 1)[1]
    with pytest.raises(ConfigError, match="XSOAR token"):
        open_sink(f"xsoar+http://{host}?token_env=XSOAR_KEY")
    with pytest.raises(ConfigError, match="XSOAR auth_id") as caught:
        XsoarSink(xsoar_server.url, token=xsoar_server.api_key, auth_id="17\n")
    assert caught.value.key == "auth_id"


def test_contract_a_clean_token_still_delivers(soar_server, xsoar_server, sample_events):
    for sink in (SplunkSoarSink(soar_server.url, token=soar_server.token),
                 XsoarSink(xsoar_server.url, token=xsoar_server.api_key)):
        with sink:
            report = sink.send(sample_events[:1])
            report.merge(sink.flush())
        assert report.delivered == 1, report


def test_contract_a_netrc_entry_for_the_soar_host_adds_no_basic_auth(soar_server, sample_events, tmp_path, monkeypatch):
    # requests (trust_env) adds Basic auth from ~/.netrc or $NETRC to a request without auth of its own: SOAR
    # would take the request as that user's, not the automation token's, and get that user's password
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1\nlogin admin\npassword netrc-password-5d1\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with SplunkSoarSink(soar_server.url, token=soar_server.token, playbook="local/wia_triage") as sink:
        report = sink.send(sample_events[:1])
        report.merge(sink.flush())
        sink.find_container(sample_events[0]["id"])
    assert report.delivered == 1
    assert soar_server.requests and all("authorization" not in r.headers for r in soar_server.requests)
