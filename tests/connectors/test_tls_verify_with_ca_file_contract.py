"""tls_verify=false together with a ca_file (Splunk HEC, Splunk SOAR, XSOAR) is read the safe way:
certificates are verified against the CA file, and the warning says tls_verify=false is ignored, not that
verification is off. Contract servers on TLS with a certificate from a private CA; HEC and Splunk SOAR
through requests, XSOAR through demisto-py."""
from __future__ import annotations

import json
import logging
import ssl
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "servers"))  # after site-packages, as the soar tests do

from certificates import issue, make_ca, write_certificate, write_key  # noqa: E402
from servers.hec_contract import HecContractServer  # noqa: E402
from splunk_soar_contract import SplunkSoarServer  # noqa: E402
from xsoar_contract import XsoarServer  # noqa: E402

from wia_security import validate_event  # noqa: E402
from wia_security.connectors.delivery import DeliveryPolicy  # noqa: E402
from wia_security.connectors.soar.splunk_soar import SplunkSoarSink  # noqa: E402
from wia_security.connectors.soar.xsoar import XsoarSink  # noqa: E402
from wia_security.connectors.splunk.hec import HecSink  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HEC_TOKEN = "5f0c3a1e-hec-tls-token"
ONCE = DeliveryPolicy(max_wait=0, max_attempts=1, initial_backoff=0.01, max_elapsed=30)
OFF = "TLS certificate verification is OFF"
IGNORED = "tls_verify=false is ignored because ca_file is given"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """(server SSLContext with a certificate from the server's CA, that CA's PEM, another CA's PEM)."""
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca("wia-security server CA")
    key, cert = issue(ca, "127.0.0.1", server=True, hosts=("127.0.0.1",))
    write_certificate(folder / "ca.pem", ca[1])
    write_certificate(folder / "other-ca.pem", make_ca("some other CA")[1])
    write_certificate(folder / "cert.pem", cert)
    write_key(folder / "key.pem", key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context, str(folder / "ca.pem"), str(folder / "other-ca.pem")


@pytest.fixture(scope="module")
def event():
    sample = json.loads((ROOT / "samples" / "alert-sample.json").read_text())
    return validate_event(sample, lenient=True).event


def on_tls(server, context):
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    server.url = server.url.replace("http://", "https://")
    return server


def hec(context):
    return HecContractServer({HEC_TOKEN: {}}, ssl_context=context)


def hec_sink(server, **tls):
    return HecSink(server.url, token=HEC_TOKEN, delivery=ONCE, sleep=lambda s: None, **tls)


def soar(context):
    return on_tls(SplunkSoarServer(), context)


def soar_sink(server, **tls):
    return SplunkSoarSink(server.url, token=server.token, delivery=ONCE, sleep=lambda s: None, **tls)


def xsoar(context):
    return on_tls(XsoarServer(), context)


def xsoar_sink(server, **tls):
    return XsoarSink(server.url, token=server.api_key, delivery=ONCE, sleep=lambda s: None, **tls)


CONNECTORS = [pytest.param(hec, hec_sink, id="splunk-hec"), pytest.param(soar, soar_sink, id="splunk-soar"),
              pytest.param(xsoar, xsoar_sink, id="xsoar")]


def deliver(sink, event):
    with sink:
        report = sink.send([event])
        return report.merge(sink.flush())


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("serve, sink_for", CONNECTORS)
def test_contract_tls_verify_false_with_a_ca_file_verifies_against_the_ca_file_and_says_so(pki, event, caplog,
                                                                                           serve, sink_for):
    context, ca, other_ca = pki
    with serve(context) as server:
        caplog.clear()
        report = deliver(sink_for(server, tls_verify=False, ca_file=other_ca), event)   # not the server's CA
        (failed,) = report.failed                                                    # verified: refused
        assert "TLS verification failed" in failed.reason and "CERTIFICATE_VERIFY_FAILED" in failed.reason
        assert not failed.retryable
        said = warnings(caplog)
        assert any(IGNORED in w and other_ca in w for w in said) and not any(OFF in w for w in said)
        caplog.clear()
        assert deliver(sink_for(server, tls_verify=False, ca_file=ca), event).delivered == 1
        assert any(IGNORED in w for w in warnings(caplog))


@pytest.mark.parametrize("serve, sink_for", CONNECTORS)
def test_contract_tls_verify_false_alone_is_off_and_says_so(pki, event, caplog, serve, sink_for):
    context, _, _ = pki
    with serve(context) as server:
        caplog.clear()
        assert deliver(sink_for(server, tls_verify=False), event).delivered == 1     # any certificate
        said = warnings(caplog)
        assert any(OFF in w for w in said) and not any(IGNORED in w for w in said)
        caplog.clear()
        assert deliver(sink_for(server), event).delivered == 0                       # on by default
        assert not any(OFF in w or IGNORED in w for w in warnings(caplog))


def test_contract_splunk_search_reads_tls_verify_and_ca_file_as_the_hec_sink_does(pki, caplog):
    """The search source (splunk-sdk) turned verification off when both were given, unlike HEC and SOAR."""
    from servers.splunk_rest_contract import SplunkRestContractServer
    from wia_security.connectors.splunk.search import SplunkSearchSource

    context, ca, other_ca = pki
    rest = SplunkRestContractServer({"rest-tls-token"})
    rest._server.socket = context.wrap_socket(rest._server.socket, server_side=True)
    with rest:
        rest.index({"event": {"x": 1}, "sourcetype": "_json"})
        url = f"https://127.0.0.1:{rest.port}"
        caplog.clear()
        wrong = SplunkSearchSource(url, token="rest-tls-token", tls_verify=False, ca_file=other_ca)
        with pytest.raises(Exception) as info:
            list(wrong.items("search index=*"))
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or "certificate verify failed" in str(info.value)
        assert any(IGNORED in w for w in warnings(caplog)) and not any(OFF in w for w in warnings(caplog))
        right = SplunkSearchSource(url, token="rest-tls-token", tls_verify=False, ca_file=ca)
        assert len(list(right.items("search index=*"))) == 1
        caplog.clear()
        off = SplunkSearchSource(url, token="rest-tls-token", tls_verify=False)
        assert len(list(off.items("search index=*"))) == 1
        assert any(OFF in w for w in warnings(caplog))


@pytest.mark.parametrize("kind", ["missing", "empty", "not PEM"])
def test_a_ca_file_without_a_readable_ca_is_refused_when_the_destination_is_opened(kind, tmp_path):
    """requests reads `ca_file` only when it sends, so a wrong path was an I/O error of every batch, retried to
    its last attempt and dead-lettered ("Could not find a suitable TLS CA certificate bundle"), never named as
    the option it is; `serve --config` even started with it. Refused at once, as Sentinel's was."""
    from wia_security.connectors.splunk.search import SplunkSearchSource
    from wia_security.errors import ConfigError
    path = tmp_path / "ca.pem"
    if kind == "empty":
        path.write_text("")
    elif kind == "not PEM":
        path.write_text("this is not a certificate\n")
    url = "https://127.0.0.1:1"
    makers = {
        "hec": lambda: HecSink(url, token=HEC_TOKEN, delivery=ONCE, ca_file=str(path)),
        "splunk-soar": lambda: SplunkSoarSink(url, token="soar-token-0123456789", delivery=ONCE, ca_file=str(path)),
        "xsoar": lambda: XsoarSink(url, token="xsoar-key-0123456789", delivery=ONCE, ca_file=str(path)),
        "splunk-search": lambda: SplunkSearchSource(url, token="search-token-0123456789", ca_file=str(path)),
    }
    for name, make in makers.items():
        with pytest.raises(ConfigError) as caught:
            make()
        assert caught.value.key == "ca_file" and str(path) in str(caught.value), (name, caught.value)
        assert "holds no CA certificate that can be read" in str(caught.value), name
