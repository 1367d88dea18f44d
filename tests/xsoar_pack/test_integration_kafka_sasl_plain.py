"""The integration's Kafka source never sends the SASL password in PLAIN unless PLAIN is configured (?sasl_mechanism=
in the Source URL) or the connection is TLS that verifies the broker (wia_security.kafka_sasl.discovery_choices, the
Kafka connector's rule).

Without ?sasl_mechanism= the pre-flight login picked PLAIN whenever the broker listed it alone, and after refused
SCRAM logins, over kafka+sasl:// and with "Trust any certificate" too; and when the pre-flight could not ask the
broker, kafka-python got PLAIN, the integration's old default. Run through main() against tansu behind the
SASL-authenticating proxy, plain and behind the TLS proxy (tests/servers/kafka_sasl_proxy.py; its `received` is
every frame a client sent before its login ended, so "no password sent" is checked on the bytes). PLAIN by discovery
over TLS that verifies the broker: test_integration_kafka_sasl.py (PLAIN alone); refused SCRAM logins without TLS not
followed by PLAIN: test_without_a_mechanism_a_refused_password_names_each_mechanism_tried there."""
from __future__ import annotations

import json
import ssl

import pytest

from servers.kafka_sasl_proxy import Login

from .conftest import run_command

USER, PASSWORD = "wia-xsoar", "xsoar-plain-Pa55-71-8d0b3f"

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def sasl_kafka(sample_events):
    """(server, topic): tansu behind the SASL proxy alone (SASL_PLAINTEXT), the sample events written with PLAIN."""
    from servers.kafka_sasl_proxy import start_sasl_kafka
    from wia_security.connectors.config import Secret
    from wia_security.connectors.kafka import KafkaSink
    server = start_sasl_kafka({USER: PASSWORD})
    try:
        topic = server.create_topic(server.client_config(USER, PASSWORD, "PLAIN"))
        with KafkaSink.from_url(f"kafka+sasl://{server.bootstrap}/{topic}", username=USER,
                                password=Secret(PASSWORD, "test"), sasl_mechanism="PLAIN") as sink:
            assert sink.send(sample_events).merge(sink.flush()).delivered == len(sample_events)
        yield server, topic
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sasl_ssl_kafka(tmp_path_factory):
    from servers.kafka_sasl_proxy import start_sasl_kafka
    server = start_sasl_kafka({USER: PASSWORD}, tls_directory=tmp_path_factory.mktemp("xsoar-kafka-plain"))
    try:
        yield server
    finally:
        server.stop()


def params(url: str, **extra) -> dict:
    return {"url": url, "source_type": "kafka", "insecure": False, "max_fetch": "50",
            "credentials": {"identifier": USER, "password": PASSWORD}, **extra}


def shown(demisto) -> str:
    return json.dumps(demisto.results_log) + json.dumps(demisto.logs)


def password_sent(server, since: int) -> bool:
    """Whether a frame a client sent the proxy before its login ended, from the `since`th on, holds the password."""
    return any(PASSWORD.encode() in frame for frame in server.sasl.received[since:])


def errors_of(integration, demisto, url: str, **extra) -> list[str]:
    """The war-room error of test-module and of fetch-incidents (each also in the server log)."""
    contents = []
    for command in ("test-module", "fetch-incidents"):
        (entry,) = run_command(integration, demisto, command, params=params(url, **extra))
        assert entry["Type"] == 4, entry
        assert ("error", entry["Contents"]) in demisto.logs
        assert demisto.incidents_out == [] and PASSWORD not in shown(demisto)
        contents.append(entry["Contents"])
    return contents


# (a) PLAIN alone where it may not be picked unasked --------------------------------------------------------------


def test_without_tls_a_broker_listing_plain_alone_gets_no_password_and_the_error_says_what_to_set(
        integration, demisto, sasl_kafka, monkeypatch):
    """The upgrade case: an instance without ?sasl_mechanism= that logged in with PLAIN over kafka+sasl://."""
    server, topic = sasl_kafka
    monkeypatch.setattr(server.sasl, "mechanisms", ("PLAIN",))
    logins, frames = len(server.logins), len(server.sasl.received)
    for text in errors_of(integration, demisto, f"kafka+sasl://{server.bootstrap}/{topic}"):
        assert text.endswith(
            f"SASL login not attempted: the Kafka broker {server.bootstrap} lists PLAIN and the connection has no TLS: "
            "PLAIN would send the password readable on the network, so PLAIN is not chosen when no mechanism is "
            "configured. Add ?sasl_mechanism=PLAIN to the Source URL to log in with PLAIN anyway, or use "
            "kafka+sasl_ssl:// to a TLS listener"), text
    assert server.logins[logins:] == [] and len(server.sasl.received) > frames
    assert not password_sent(server, frames)


def test_with_trust_any_certificate_a_broker_listing_plain_alone_gets_no_password(integration, demisto,
                                                                                  sasl_ssl_kafka, monkeypatch):
    monkeypatch.setattr(sasl_ssl_kafka.sasl, "mechanisms", ("PLAIN",))
    logins, frames = len(sasl_ssl_kafka.logins), len(sasl_ssl_kafka.sasl.received)
    for text in errors_of(integration, demisto, f"kafka+sasl_ssl://{sasl_ssl_kafka.bootstrap}/wia-events",
                          insecure=True):
        assert ("lists PLAIN and the connection's TLS does not verify the broker's certificate and host name: PLAIN "
                "would hand the password to whatever answers for the broker, so PLAIN is not chosen when no mechanism "
                "is configured. Add ?sasl_mechanism=PLAIN to the Source URL to log in with PLAIN anyway, or untick "
                "Trust any certificate") in text
    assert sasl_ssl_kafka.logins[logins:] == [] and not password_sent(sasl_ssl_kafka, frames)


# (b) PLAIN configured: the user's choice; (c) SCRAM offered: SCRAM chosen -----------------------------------------


@pytest.mark.parametrize("query,mechanism", [("?sasl_mechanism=PLAIN", "PLAIN"), ("", "SCRAM-SHA-512")])
def test_without_tls_plain_as_configured_and_scram_as_discovered_fetch_every_event(
        integration, demisto, sasl_kafka, sample_events, query, mechanism):
    server, topic = sasl_kafka
    logins, frames = len(server.logins), len(server.sasl.received)
    url = f"kafka+sasl://{server.bootstrap}/{topic}{query}"
    assert run_command(integration, demisto, "test-module", params=params(url)) == ["ok"]
    run_command(integration, demisto, "fetch-incidents", params=params(url))
    assert sorted(json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]) == \
        sorted(e["id"] for e in sample_events)
    assert len(server.logins) - logins >= 2
    assert all(login == Login(mechanism, USER, True) for login in server.logins[logins:])
    warning = (f"WIA Security: the Kafka broker {server.bootstrap}: the SASL mechanism PLAIN is used as configured, "
               "though the connection has no TLS: PLAIN would send the password readable on the network")
    assert (("info", warning) in demisto.logs) == (mechanism == "PLAIN")
    assert password_sent(server, frames) == (mechanism == "PLAIN")       # PLAIN's token only when configured
    assert PASSWORD not in shown(demisto)


# the pre-flight cannot ask the broker -----------------------------------------------------------------------------


def test_without_tls_a_pre_flight_that_cannot_ask_fails_test_module_and_fetch_asking_for_the_mechanism(
        integration, demisto):
    """An answer that is not Kafka, and no broker reachable: kafka-python got PLAIN, the old default."""
    from servers.not_kafka import NotKafka
    from servers.tansu import free_port
    closed = free_port()
    with NotKafka() as listener:
        texts = errors_of(integration, demisto, f"kafka+sasl://127.0.0.1:{listener.port},127.0.0.1:{closed}/wia-events")
        received = bytes(listener.received)
    for text in texts:
        assert text.endswith(
            "no SASL mechanism configured and the pre-flight check could not ask the Kafka brokers which to use "
            f"(127.0.0.1:{listener.port}: not a Kafka answer (8 bytes); 127.0.0.1:{closed}: [Errno 111] Connection "
            "refused); the connection has no TLS: PLAIN would send the password readable on the network, so it is not "
            "assumed: add ?sasl_mechanism=SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN to the Source URL (the one the broker "
            "is configured for), or check that the brokers are reachable Kafka listeners"), text
    assert received and PASSWORD.encode() not in received


@pytest.mark.parametrize("verify", [True, False])
def test_over_tls_a_pre_flight_that_cannot_ask_keeps_plain_only_if_the_broker_is_verified(
        integration, demisto, tmp_path, monkeypatch, verify):
    """A TLS listener that takes the handshake and then answers nothing in time (the check's timeout shortened to
    0.5 s), verified or not ("Trust any certificate"). The pre-flight alone: kafka-python would then wait 30 s."""
    from servers.kafka_tls_proxy import TlsTerminatingProxy
    from servers.not_kafka import NotKafka
    from servers.rsyslog import make_certificates
    make_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    monkeypatch.setattr(integration, "KAFKA_CONNECT_TIMEOUT", 0.5)
    demisto.reset()
    client = integration.Client(base_url="kafka+sasl_ssl://unused/t", source_type="kafka", verify=verify, proxy=False,
                                token=PASSWORD, username=USER)
    config = {"security_protocol": "SASL_SSL", "sasl_mechanism": None, "sasl_plain_username": USER,
              "sasl_plain_password": PASSWORD}
    with NotKafka(silent=True) as listener:
        proxy = TlsTerminatingProxy(("127.0.0.1", listener.port), tmp_path / "server.pem", tmp_path / "server.key")
        try:
            context = client.kafka_tls_context()
            unasked: list[str] = []
            client.kafka_tls_check([f"127.0.0.1:{proxy.port}"], context, config, unasked)
        finally:
            proxy.close()
        received = bytes(listener.received)
    assert unasked == [f"127.0.0.1:{proxy.port}: The read operation timed out"]
    if verify:
        integration.kafka_undiscovered_mechanism(config, context, unasked)
        assert config["sasl_mechanism"] == "PLAIN"
        assert ("info", f"WIA Security: no SASL mechanism configured and the pre-flight check could not ask the Kafka "
                        f"brokers (127.0.0.1:{proxy.port}: The read operation timed out): using "
                        "PLAIN over TLS that verifies the broker; add ?sasl_mechanism= to the Source URL to choose") \
            in demisto.logs
    else:
        with pytest.raises(integration.DemistoException, match=r"could not ask the Kafka brokers which to use "
                           r"\(127\.0\.0\.1:\d+: The read operation timed out\); the connection's "
                           r"TLS does not verify the broker's certificate and host name: PLAIN would hand the password"):
            integration.kafka_undiscovered_mechanism(config, context, unasked)
        assert config["sasl_mechanism"] is None
    assert received and PASSWORD.encode() not in received      # the ApiVersions request only
    assert isinstance(context, ssl.SSLContext) and PASSWORD not in json.dumps(demisto.logs)
