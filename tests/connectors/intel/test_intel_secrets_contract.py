"""Intel connectors keep their API keys out of logs and say loudly when TLS verification is off.
Contract servers driven by the real clients (pymisp, requests for OTX)."""
from __future__ import annotations

import logging
import ssl

import pytest

from misp_contract import Fault, MispServer
from otx_contract import OtxServer
from vt_contract import VirusTotalServer
from wia_security.builders import AlertBuilder, ThreatIntelBuilder
from wia_security.connectors import open_sink
from wia_security.connectors.config import parse_config
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.intel.misp import MispSource
from wia_security.connectors.intel.otx import OtxSource
from wia_security.connectors.intel.virustotal import CircuitBreaker, VirusTotalEnricher
from wia_security.errors import ConfigError, DeliveryError
from wia_security.redact import MASK

KEY = "misp-secret-key-0123456789abcdef"


def test_contract_misp_key_never_reaches_pymisp_logs(caplog):
    # pymisp logs its request headers (Authorization: the key) at DEBUG and a 4xx body at ERROR; a server
    # that echoes the key in its refusal would put it on stderr even with no logging configured.
    caplog.set_level(logging.DEBUG)
    with MispServer(key=KEY) as misp:
        misp.faults.append(Fault(403, {"name": "Authentication failed", "message": f"no user has key {KEY}"},
                                 path_prefix="/events"))
        source = MispSource(misp.url, KEY, retry=DeliveryPolicy(max_attempts=1))
        with pytest.raises(DeliveryError) as raised:
            list(source.events())
    assert KEY not in str(raised.value)
    pymisp_lines = [r.getMessage() for r in caplog.records if r.name == "pymisp"]
    assert any(f"'Authorization': '{MASK}'" in line for line in pymisp_lines)          # the DEBUG headers
    assert any(f"no user has key {MASK}" in line for line in pymisp_lines)             # the ERROR echo
    assert KEY not in caplog.text


# -- TLS: verified by default, a CA bundle for a private CA, and a loud warning when turned off -------------
TLS_OFF = "TLS certificate verification is OFF"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """(server SSLContext with a certificate from a private CA, path of that CA's PEM)."""
    from certificates import issue, make_ca, write_certificate, write_key
    folder = tmp_path_factory.mktemp("tls")
    ca = make_ca("wia-security test CA")
    key, cert = issue(ca, "127.0.0.1", server=True, hosts=("127.0.0.1",))
    write_certificate(folder / "ca.pem", ca[1])
    write_certificate(folder / "cert.pem", cert)
    write_key(folder / "key.pem", key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context, str(folder / "ca.pem")


def on_tls(server, context):
    """A contract server answering over TLS only (its listening socket wrapped before it starts)."""
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    server.url = server.url.replace("http://", "https://")
    return server


def tls_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and TLS_OFF in r.getMessage()]


def test_contract_misp_verifies_tls_by_default_takes_a_ca_bundle_and_warns_when_off(tls, caplog):
    context, ca = tls
    with on_tls(MispServer(key=KEY), context) as misp:
        with pytest.raises(ConfigError, match="cannot connect to MISP"):
            MispSource(misp.url, KEY)                                     # a private CA is not trusted
        assert tls_warnings(caplog) == []
        assert list(MispSource(misp.url, KEY, verify_tls=ca).events()) == []
        assert tls_warnings(caplog) == []
        sink = open_sink(f"misp+{misp.url}?verify=false", key=KEY)
        sink.close()
        assert len(tls_warnings(caplog)) == 1 and tls_warnings(caplog)[0].startswith("misp:127.0.0.1:")


def test_contract_otx_verifies_tls_by_default_takes_a_ca_bundle_and_warns_when_off(tls, caplog):
    context, ca = tls
    with on_tls(OtxServer(api_key=KEY), context) as otx:
        sleeps: list[float] = []
        with pytest.raises(DeliveryError, match="TLS certificate verification failed") as raised:
            list(OtxSource(KEY, base_url=otx.url, sleep=sleeps.append).poll())
        assert not raised.value.retryable and sleeps == []               # not retried: it cannot get better
        assert list(OtxSource(KEY, base_url=otx.url, verify_tls=ca).poll()) == []
        assert tls_warnings(caplog) == []
        assert list(OtxSource(KEY, base_url=otx.url, verify_tls=False).poll()) == []
        assert len(tls_warnings(caplog)) == 1


def looked_up(event: dict) -> list:
    return event["meta"]["custom"]["enrichment"]["virustotal"]["indicators"]


def test_contract_virustotal_verifies_tls_by_default_and_warns_when_off(tls, caplog):
    context, _ = tls
    with on_tls(VirusTotalServer(api_key=KEY), context) as vt:
        vt.add("domains", "malware.example.com", reputation=-30, last_analysis_stats={"malicious": 7})
        event = AlertBuilder().title("t").indicator("domain", "malware.example.com").build().to_dict()
        verified = VirusTotalEnricher(KEY, host=vt.url, breaker=CircuitBreaker(threshold=100))
        try:
            assert looked_up(verified.enrich(event)) == []
        finally:
            verified.close()
        assert tls_warnings(caplog) == [] and vt.calls() == []              # no request got past the handshake
        unverified = VirusTotalEnricher(KEY, host=vt.url, verify_tls=False)
        try:
            assert [i["value"] for i in looked_up(unverified.enrich(event))] == ["malware.example.com"]
        finally:
            unverified.close()
        assert len(tls_warnings(caplog)) == 1 and KEY not in caplog.text


def test_splunk_search_and_syslog_warn_when_verification_is_off(caplog):
    from wia_security.connectors.qradar import SyslogSink
    from wia_security.connectors.splunk.search import SplunkSearchSource
    SplunkSearchSource("https://splunk.example:8089", token="splunk-token-0123456789")
    SyslogSink("syslog.example", transport="tls").close()
    assert tls_warnings(caplog) == []
    SplunkSearchSource("https://splunk.example:8089", token="splunk-token-0123456789", tls_verify=False)
    SyslogSink("syslog.example", transport="tls", verify=False).close()
    assert [w.split(":")[0] for w in tls_warnings(caplog)] == ["splunk-search", "leef+tls"]


def test_contract_qradar_client_ca_bundle_is_not_overridden_by_requests_ca_bundle(tls, monkeypatch, tmp_path, caplog):
    # requests lets REQUESTS_CA_BUNDLE replace a plain Session's own CA path (psf/requests#3829)
    from certificates import make_ca, write_certificate
    from wia_security.connectors.qradar import QRadarClient
    context, ca = tls
    write_certificate(tmp_path / "other-ca.pem", make_ca("some other CA")[1])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "other-ca.pem"))
    with on_tls(MispServer(key=KEY), context) as server:                  # any HTTPS server: the handshake counts
        client = QRadarClient(server.url, token="qradar-sec-token-0123", verify=ca)
        with pytest.raises(DeliveryError, match="HTTP 40"):             # an HTTP answer: TLS was verified with `ca`
            list(client.offenses())
        assert tls_warnings(caplog) == []
        QRadarClient(server.url, token="qradar-sec-token-0123", verify=False)
        assert len(tls_warnings(caplog)) == 1


def test_contract_misp_key_from_a_config_file_by_file_reference_never_as_a_literal(tmp_path):
    # docs/connectors/intel.md: the key comes as key_env / key_file in a TOML table. key_file was passed on
    # unresolved (refused as an unknown MISP option) and a literal `key = "..."` was accepted, in plain text
    # in the Destination's repr: "key" was not a secret-looking name.
    secret_file = tmp_path / "misp.key"
    secret_file.write_text(KEY + "\n")
    with MispServer(key=KEY) as misp:
        url = misp.url.replace("http://", "misp+http://") + "?max_wait=0"
        config = parse_config({"destinations": {"m": {"url": url, "key_file": str(secret_file)}}})
        assert KEY not in repr(config)
        event = (ThreatIntelBuilder().threat("Emotet", "malware")
                 .indicator("domain", "c2.example.net").build().to_dict())
        with config.destinations[0].open() as sink:
            report = sink.send([event])
            report.merge(sink.flush())
        assert report.delivered == 1
    with pytest.raises(ConfigError) as refused:
        parse_config({"destinations": {"m": {"url": url, "key": KEY}}}, source="wia.toml")
    assert "key_file" in str(refused.value) and KEY not in str(refused.value)


@pytest.mark.parametrize("status, answer", [
    (403, {"name": "Authentication failed", "message": f"no user has key {KEY}"}),
    (500, f"Internal error handling key {KEY}".encode()),
    (200, f"<html>login page; you sent {KEY}</html>".encode()),         # a proxy's page, not JSON
])
def test_contract_misp_connection_failure_quoting_the_key_is_masked_on_the_command_line(
        status, answer, tmp_path, monkeypatch, capsys):
    # pymisp's connection error quotes the server's answer; `intel pull misp` printed it, key included
    from wia_security.cli import main
    with MispServer(key=KEY) as misp:
        misp.faults += [Fault(status, answer)] * 3
        monkeypatch.setenv("MISP_KEY", KEY)
        rc = main(["intel", "pull", "misp", "--url", misp.url, "--to", f"sqlite:///{tmp_path / 'intel.db'}"])
    out, err = capsys.readouterr()
    assert rc == 2 and "cannot connect to MISP" in err and MASK in err
    assert KEY not in out + err


def test_contract_intel_pull_trusts_a_private_ca_given_with_ca_file(tls, tmp_path, monkeypatch, capsys):
    # a self-hosted MISP often has a private CA; the command offered only --no-verify-tls
    from wia_security.cli import main
    context, ca = tls
    monkeypatch.setenv("MISP_KEY", KEY)
    with on_tls(MispServer(key=KEY), context) as misp:
        args = ["intel", "pull", "misp", "--url", misp.url, "--to", f"sqlite:///{tmp_path / 'intel.db'}"]
        assert main(args) == 2 and "cannot connect to MISP" in capsys.readouterr().err
        assert main(args + ["--ca-file", ca]) == 0
        assert "misp: 0 delivered" in capsys.readouterr().err
