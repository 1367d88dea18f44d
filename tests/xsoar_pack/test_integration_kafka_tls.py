"""The integration's Kafka source (kafka-python) over TLS, run through main() against tansu behind a
TLS-terminating proxy with a throwaway CA (tests/servers/kafka_tls_proxy.py): unticked, "Trust any
certificate" verifies the broker's certificate and host name against the trusted CAs; ticked, it
reads a self-signed broker (it used to switch off only the host-name check, so it still failed)."""
from __future__ import annotations

import json
import time

import pytest

from .conftest import run_command

SASL_PASSWORD = "kafka-sasl-Pa55-w0rd-6d1e"

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def tls_topic(tmp_path_factory, sample_events):
    """(server, topic) with the sample events written over TLS by the project's sink."""
    from servers.kafka_tls_proxy import start_tls_kafka
    from wia_security.connectors.kafka import KafkaSink
    server = start_tls_kafka(tmp_path_factory.mktemp("xsoar-kafka-tls"))
    try:
        topic = server.create_topic(partitions=2)
        with KafkaSink.from_url(f"kafka+ssl://{server.bootstrap}/{topic}?ssl.ca.location={server.ca}") as sink:
            assert sink.send(sample_events).delivered == len(sample_events)
        yield server, topic
    finally:
        server.stop()


def params(bootstrap: str, topic: str, *, insecure: bool, scheme: str = "kafka+ssl", **extra) -> dict:
    return {"url": f"{scheme}://{bootstrap}/{topic}", "source_type": "kafka", "insecure": insecure, "max_fetch": "50",
            **extra}


def fetched_ids(demisto) -> list[str]:
    return sorted(json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1])


def war_room_and_logs(demisto) -> str:
    return json.dumps(demisto.results_log) + json.dumps(demisto.logs)


def test_unticked_the_self_signed_broker_is_refused_naming_the_certificate_problem(integration, demisto, tls_topic):
    server, topic = tls_topic
    started = time.monotonic()
    (entry,) = run_command(integration, demisto, "test-module", params=params(server.bootstrap, topic, insecure=False))
    assert entry["Type"] == 4 and "TLS certificate was refused" in entry["Contents"]
    assert "unable to get local issuer certificate" in entry["Contents"] and "Trust any certificate" in entry["Contents"]
    # at once, not after kafka-python's 30 s "Unable to bootstrap" that did not say why
    assert time.monotonic() - started < 10
    # a fetch fails the same way: no incident, last_run where it was
    (entry,) = run_command(integration, demisto, "fetch-incidents", params=params(server.bootstrap, topic, insecure=False),
                           last_run={"offsets": {"0": 1}})
    assert entry["Type"] == 4 and "TLS certificate was refused" in entry["Contents"]
    assert demisto.incidents_out == [] and demisto.last_run == {"offsets": {"0": 1}}


def test_a_tls_failure_with_sasl_credentials_never_shows_the_password(integration, demisto, tls_topic):
    server, topic = tls_topic
    (entry,) = run_command(integration, demisto, "test-module",
                           params=params(server.bootstrap, topic, insecure=False, scheme="kafka+sasl_ssl",
                                         credentials={"identifier": "wia-reader", "password": SASL_PASSWORD}))
    assert entry["Type"] == 4 and "TLS certificate was refused" in entry["Contents"]
    assert SASL_PASSWORD not in war_room_and_logs(demisto)


def test_trust_any_certificate_reads_the_self_signed_broker_with_a_warning(integration, demisto, tls_topic, sample_events):
    server, topic = tls_topic
    assert run_command(integration, demisto, "test-module", params=params(server.bootstrap, topic, insecure=True)) == ["ok"]
    assert any("not verified (not secure)" in message for level, message in demisto.logs if level == "info")
    run_command(integration, demisto, "fetch-incidents", params=params(server.bootstrap, topic, insecure=True))
    assert fetched_ids(demisto) == sorted(e["id"] for e in sample_events)
    assert set(demisto.last_run["offsets"]) == {"0", "1"}
    # neither the CA nor the host name is checked: an address the certificate does not list is read too
    run_command(integration, demisto, "fetch-incidents", params=params(server.unlisted_bootstrap, topic, insecure=True))
    assert fetched_ids(demisto) == sorted(e["id"] for e in sample_events)


def test_unticked_verifies_against_the_trusted_cas_and_the_host_name(integration, demisto, tls_topic, sample_events,
                                                                    monkeypatch):
    """The engine's trust store (SSL_CERT_FILE, as XSOAR passes custom CAs into its containers) holding the
    test CA: the broker is read; reached by an address its certificate does not name, it is refused."""
    server, topic = tls_topic
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))
    run_command(integration, demisto, "fetch-incidents", params=params(server.bootstrap, topic, insecure=False))
    assert fetched_ids(demisto) == sorted(e["id"] for e in sample_events)
    assert not any("not verified" in message for _, message in demisto.logs)
    (entry,) = run_command(integration, demisto, "test-module", params=params(server.unlisted_bootstrap, topic, insecure=False))
    assert entry["Type"] == 4 and "TLS certificate was refused" in entry["Contents"]
    assert "mismatch, certificate is not valid for '127.0.0.2'" in entry["Contents"]


def test_a_kafka_sasl_ssl_url_with_user_and_password_is_refused_without_repeating_them(integration, demisto):
    """urlsplit reads no scheme in kafka+sasl_ssl:// (the underscore), so user:password slipped through."""
    (entry,) = run_command(integration, demisto, "test-module",
                           params={"url": f"kafka+sasl_ssl://alice:{SASL_PASSWORD}@127.0.0.1:9/topic", "source_type": "kafka"})
    assert entry["Type"] == 4 and "Credentials parameter" in entry["Contents"]
    assert SASL_PASSWORD not in war_room_and_logs(demisto)
