"""Errors before any HTTP answer, with both clients: an untrusted certificate (osmem behind a TLS proxy with a
private CA's certificate, the sink's defaults) and a closed port. elasticsearch-py's exceptions read only
"TLS error" / "Connection error" (elastic-transport keeps what happened in the urllib3 error it raises them from),
so the elasticsearch sink retried a certificate it does not trust as a passing network error, the whole retry
budget, and dead-lettered the events with "network error: TlsError: TLS error", retryable."""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Iterator

import pytest

from servers.certificates import issue, make_ca, write_certificate, write_key
from servers.fault_proxy import FaultProxy
from servers.osmem import EsCompatNode
from servers.ports import free_port
from strategies import event_dicts
from test_elastic_sink import CLIENTS

from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.connectors.elastic import ElasticSink, OpenSearchSink

THREE_TRIES = DeliveryPolicy(max_events=25, max_wait=0, max_attempts=3, initial_backoff=0.01, max_backoff=0.02)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca("wia-security elastic test CA")
    key, cert = issue(ca, "127.0.0.1", server=True, hosts=("127.0.0.1",))
    write_certificate(folder / "ca.pem", ca[1])
    write_certificate(folder / "cert.pem", cert)
    write_key(folder / "key.pem", key)
    return {name: str(folder / f"{name}.pem") for name in ("ca", "cert", "key")}


@pytest.fixture
def tls_osmem(osmem: str, pki: dict[str, str]) -> Iterator[str]:
    with FaultProxy(osmem, certfile=pki["cert"], keyfile=pki["key"]) as proxy:
        yield proxy.url


def sink(kind: str, url: str, **kw: Any) -> ElasticSink:
    kw.setdefault("delivery", THREE_TRIES)
    kw.setdefault("request_timeout", 30)
    if kind == "elasticsearch-py":
        return ElasticSink(url, client_options={"node_class": EsCompatNode}, mapping_dialect="opensearch", **kw)
    return OpenSearchSink(url, **kw)


def send(s: ElasticSink, events: list[dict[str, Any]]) -> Any:
    with s:
        report = s.send(events)
        return report.merge(s.flush())


@pytest.mark.parametrize("kind", CLIENTS)
def test_an_untrusted_certificate_fails_at_once_naming_it(kind: str, tls_osmem: str, pki: dict[str, str]) -> None:
    events = event_dicts(3, seed=61)
    report = send(sink(kind, tls_osmem), events)
    assert report.delivered == 0 and len(report.failed) == 3
    for rejected in report.failed:
        assert not rejected.retryable, rejected.reason
        assert "CERTIFICATE_VERIFY_FAILED" in rejected.reason and "gave up" not in rejected.reason, rejected.reason
    # the same server with its CA given: delivered
    assert send(sink(kind, tls_osmem, ca_file=pki["ca"]), events).delivered == 3


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_closed_port_is_retried_and_named(kind: str) -> None:
    report = send(sink(kind, f"http://127.0.0.1:{free_port()}"), event_dicts(2, seed=62))
    assert report.delivered == 0 and len(report.failed) == 2
    for rejected in report.failed:
        assert rejected.retryable and rejected.reason.startswith("gave up after 3 attempt(s)"), rejected.reason
        assert "refused" in rejected.reason.lower(), rejected.reason
