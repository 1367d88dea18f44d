"""The integration's Kafka source (kafka-python) with SASL logins, run through main() against tansu behind the
SASL-authenticating proxy and the TLS proxy (tests/servers/kafka_sasl_proxy.py).

kafka-python retries a refused password (or mechanism) until its 30 s bootstrap timeout and then says only
"Unable to bootstrap"; test-module and fetch-incidents now do the login before it and report the refusal at once."""
from __future__ import annotations

import json
import time

import pytest

from .conftest import run_command

USER, PASSWORD = "wia-xsoar", "xsoar-sasl-Pa55-51-0b7e2d"
WRONG_PASSWORD = "xsoar-not-the-Pa55-51-9ac3"
#: A Kafka user whose name SCRAM must send escaped (RFC 5802: ',' as =2C, '=' as =3D); same password.
ESCAPED_USER = "svc,wia=xsoar"
#: The pre-flight login is a round trip or two; kafka-python took 30 s.
FAST_SECONDS = 5

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def sasl_topic(tmp_path_factory, sample_events):
    """(server, topic) with the sample events written over SASL_SSL by the project's sink."""
    from servers.kafka_sasl_proxy import start_sasl_kafka
    from wia_security.connectors.config import Secret
    from wia_security.connectors.kafka import KafkaSink
    server = start_sasl_kafka({USER: PASSWORD, ESCAPED_USER: PASSWORD},
                              tls_directory=tmp_path_factory.mktemp("xsoar-kafka-sasl"))
    try:
        topic = server.create_topic(server.client_config(USER, PASSWORD, "SCRAM-SHA-512"), partitions=2)
        with KafkaSink.from_url(f"kafka+sasl_ssl://{server.bootstrap}/{topic}?ssl.ca.location={server.ca}",
                                username=USER, password=Secret(PASSWORD, "test")) as sink:
            assert sink.send(sample_events).merge(sink.flush()).delivered == len(sample_events)
        yield server, topic
    finally:
        server.stop()


@pytest.fixture
def trusted(monkeypatch, sasl_topic):
    monkeypatch.setenv("SSL_CERT_FILE", str(sasl_topic[0].ca))


def params(url: str, password: str, user: str = USER) -> dict:
    return {"url": url, "source_type": "kafka", "insecure": False, "max_fetch": "50",
            "credentials": {"identifier": user, "password": password}}


def war_room_and_logs(demisto) -> str:
    return json.dumps(demisto.results_log) + json.dumps(demisto.logs)


def test_scram_sha_512_over_sasl_ssl_passes_test_module_and_fetches(integration, demisto, sasl_topic, sample_events,
                                                                   trusted):
    from servers.kafka_sasl_proxy import Login
    server, topic = sasl_topic
    url = f"kafka+sasl_ssl://{server.bootstrap}/{topic}?sasl_mechanism=SCRAM-SHA-512"
    before = len(server.logins)
    assert run_command(integration, demisto, "test-module", params=params(url, PASSWORD)) == ["ok"]
    run_command(integration, demisto, "fetch-incidents", params=params(url, PASSWORD))
    assert sorted(json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]) == \
        sorted(e["id"] for e in sample_events)
    logins = server.logins[before:]
    assert len(logins) >= 2 and all(login == Login("SCRAM-SHA-512", USER, True) for login in logins)
    assert PASSWORD not in war_room_and_logs(demisto)


@pytest.mark.parametrize("query,mechanism", [("?sasl_mechanism=SCRAM-SHA-512", "SCRAM-SHA-512"),
                                             ("?sasl_mechanism=SCRAM-SHA-256", "SCRAM-SHA-256"),
                                             ("", "SCRAM-SHA-512"),             # discovered
                                             ("?sasl_mechanism=PLAIN", "PLAIN")])
def test_a_user_name_with_a_comma_and_an_equals_sign_logs_in_with_kafka_python_too(
        integration, demisto, sasl_topic, sample_events, trusted, query, mechanism):
    """kafka-python 3.0's SCRAM sends the name unescaped ('n=svc,wia=xsoar'), which the broker cannot read: the
    pre-flight (which escapes) logged in, then kafka-python's logins were refused until its 30 s "Unable to
    bootstrap". kafka-python now gets the name escaped for SCRAM, and as it is for PLAIN (escaped there, it would
    name another user)."""
    from servers.kafka_sasl_proxy import Login
    server, topic = sasl_topic
    before = len(server.logins)
    run_command(integration, demisto, "fetch-incidents",
                params=params(f"kafka+sasl_ssl://{server.bootstrap}/{topic}{query}", PASSWORD, ESCAPED_USER))
    assert demisto.incidents_out, war_room_and_logs(demisto)
    assert sorted(json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]) == \
        sorted(e["id"] for e in sample_events)
    logins = server.logins[before:]
    assert len(logins) >= 2 and all(login == Login(mechanism, ESCAPED_USER, True) for login in logins), logins
    assert PASSWORD not in war_room_and_logs(demisto)


def test_a_user_name_kafka_python_cannot_send_with_scram_is_refused_before_it_starts(
        integration, demisto, sasl_topic, trusted, monkeypatch):
    """Should the embedded kafka-python's SCRAM client not be found where kafka-python 3.0 keeps it, how it sends
    ',' and '=' is unknown: a name with them is refused at once, naming the parameter and why, not left to
    kafka-python's 30 s "Unable to bootstrap". Names without them are not affected."""
    from servers.kafka_sasl_proxy import Login

    def moved(name: str) -> bytes:
        raise ImportError("No module named 'kafka.net.sasl.scram'")

    monkeypatch.setattr(integration, "kafka_python_scram_first", moved)
    server, topic = sasl_topic
    before = len(server.logins)
    started = time.monotonic()
    (entry,) = run_command(integration, demisto, "test-module", params=params(
        f"kafka+sasl_ssl://{server.bootstrap}/{topic}?sasl_mechanism=SCRAM-SHA-512", PASSWORD, ESCAPED_USER))
    assert time.monotonic() - started < FAST_SECONDS and entry["Type"] == 4
    assert ("the Kafka user in the Credentials parameter ('svc,wia=xsoar') contains ',' or '=', which SCRAM sends as "
            "=2C and =3D (RFC 5802)") in entry["Contents"]
    assert server.logins[before:] == [Login("SCRAM-SHA-512", ESCAPED_USER, True)]     # the pre-flight's alone
    assert run_command(integration, demisto, "test-module", params=params(
        f"kafka+sasl_ssl://{server.bootstrap}/{topic}?sasl_mechanism=SCRAM-SHA-512", PASSWORD)) == ["ok"]


def test_kafka_sasl_ssl_to_a_plain_kafka_listener_that_cuts_the_hello_off_is_named_at_once(integration, demisto,
                                                                                           sasl_topic):
    """The SASL proxy's own plain port: like Apache Kafka (a request above socket.request.max.bytes), it reads the
    ClientHello as a request of 369 MB and closes at once, the hello unread (a reset); the pre-flight recorded
    "[Errno 104] Connection reset by peer" and left it to kafka-python. It now asks on a plain connection."""
    server, topic = sasl_topic
    bootstrap = f"127.0.0.1:{server.sasl.port}"
    before = len(server.logins)
    started = time.monotonic()
    (entry,) = run_command(integration, demisto, "test-module",
                           params=params(f"kafka+sasl_ssl://{bootstrap}/{topic}", PASSWORD))
    assert time.monotonic() - started < FAST_SECONDS and entry["Type"] == 4, entry
    assert entry["Contents"].endswith(
        f"the Kafka broker {bootstrap} answered a Kafka request sent without TLS, and not the TLS handshake: this is "
        "a plaintext Kafka listener. Use the port of the brokers' TLS listener in the Source URL, or kafka+sasl:// "
        "to read this one without TLS."), entry["Contents"]
    assert server.logins[before:] == []                 # no login: no password sent without TLS
    assert PASSWORD not in war_room_and_logs(demisto)


@pytest.mark.parametrize("scheme,mechanism", [("kafka+sasl_ssl", "SCRAM-SHA-512"), ("kafka+sasl", "PLAIN")])
def test_a_refused_password_fails_test_module_at_once_naming_broker_user_and_mechanism(
        integration, demisto, sasl_topic, trusted, scheme, mechanism):
    server, topic = sasl_topic
    # kafka+sasl:// goes straight to the SASL proxy (no TLS in front): only the bootstrap login is reached
    bootstrap = server.bootstrap if scheme == "kafka+sasl_ssl" else f"127.0.0.1:{server.sasl.port}"
    before = len(server.logins)
    started = time.monotonic()
    (entry,) = run_command(integration, demisto, "test-module",
                           params=params(f"{scheme}://{bootstrap}/{topic}?sasl_mechanism={mechanism}", WRONG_PASSWORD))
    assert time.monotonic() - started < FAST_SECONDS
    assert entry["Type"] == 4, entry
    assert (f"SASL login refused: the Kafka broker {bootstrap} refused user '{USER}' with the SASL mechanism "
            f"{mechanism} (SASL_AUTHENTICATION_FAILED: Authentication failed") in entry["Contents"]
    assert "Credentials parameter" in entry["Contents"]
    assert [(login.mechanism, login.accepted) for login in server.logins[before:]] == [(mechanism, False)]
    assert WRONG_PASSWORD not in war_room_and_logs(demisto) and PASSWORD not in war_room_and_logs(demisto)


def test_a_mechanism_the_broker_does_not_offer_is_named_at_once(integration, demisto, sasl_topic):
    server, topic = sasl_topic
    started = time.monotonic()
    (entry,) = run_command(integration, demisto, "test-module", params=params(
        f"kafka+sasl://127.0.0.1:{server.sasl.port}/{topic}?sasl_mechanism=GSSAPI", PASSWORD))
    assert time.monotonic() - started < FAST_SECONDS and entry["Type"] == 4
    assert ("does not accept the SASL mechanism GSSAPI (UNSUPPORTED_SASL_MECHANISM; mechanisms it lists: PLAIN, "
            "SCRAM-SHA-256, SCRAM-SHA-512): set ?sasl_mechanism= in the URL") in entry["Contents"]
    assert PASSWORD not in war_room_and_logs(demisto)


def test_a_broker_that_cannot_prove_it_knows_the_scram_password_is_refused(integration, demisto, sasl_topic, monkeypatch):
    """SCRAM is mutual: a broker holding the right StoredKey (so it accepts the proof) but not the ServerKey (a
    leaked credential store) sends a server signature that does not verify; the pre-flight's SCRAM client refuses it."""
    import dataclasses
    server, topic = sasl_topic
    credentials = server.sasl._scram["SCRAM-SHA-512"]
    monkeypatch.setitem(credentials, USER, dataclasses.replace(credentials[USER], server_key=b"\x00" * 64))
    (entry,) = run_command(integration, demisto, "test-module", params=params(
        f"kafka+sasl://127.0.0.1:{server.sasl.port}/{topic}?sasl_mechanism=SCRAM-SHA-512", PASSWORD))
    assert entry["Type"] == 4
    assert (f"the Kafka broker 127.0.0.1:{server.sasl.port} failed the SASL SCRAM-SHA-512 exchange: the server "
            "signature does not verify") in entry["Contents"]
    assert PASSWORD not in war_room_and_logs(demisto)


@pytest.mark.parametrize("offered,chosen", [(("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), "SCRAM-SHA-512"),
                                            (("PLAIN",), "PLAIN")])
def test_without_a_mechanism_the_strongest_the_broker_offers_is_used_and_logged(
        integration, demisto, sasl_topic, sample_events, trusted, monkeypatch, offered, chosen):
    """The integration used PLAIN when the URL named no mechanism, the connector (the CLI) SCRAM-SHA-512; both now
    ask the broker. PLAIN alone (as Confluent Cloud) is the old default's case and keeps working."""
    from servers.kafka_sasl_proxy import Login
    server, topic = sasl_topic
    monkeypatch.setattr(server.sasl, "mechanisms", offered)
    before = len(server.logins)
    run_command(integration, demisto, "fetch-incidents", params=params(f"kafka+sasl_ssl://{server.bootstrap}/{topic}",
                                                                       PASSWORD))
    assert sorted(json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]) == \
        sorted(e["id"] for e in sample_events)
    logins = server.logins[before:]
    assert len(logins) >= 2 and all(login == Login(chosen, USER, True) for login in logins)
    assert ("info", f"WIA Security: no SASL mechanism configured: the Kafka broker {server.bootstrap} lists "
                    f"{', '.join(offered)}; using {chosen}") in demisto.logs
    assert PASSWORD not in war_room_and_logs(demisto)


def test_without_a_mechanism_a_user_the_broker_knows_for_plain_only_still_logs_in(
        integration, demisto, sasl_topic, sample_events, trusted, monkeypatch):
    """A URL that worked with the old default (PLAIN) against a broker that also offers SCRAM, for a user with no SCRAM
    credential there: SCRAM-SHA-512 and -256 are refused, PLAIN logs in, and kafka-python uses PLAIN."""
    from servers.kafka_sasl_proxy import Login
    server, topic = sasl_topic
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        monkeypatch.delitem(server.sasl._scram[mechanism], USER)
    before = len(server.logins)
    assert run_command(integration, demisto, "test-module",
                       params=params(f"kafka+sasl_ssl://{server.bootstrap}/{topic}", PASSWORD)) == ["ok"]
    logins = server.logins[before:]
    assert logins[:3] == [Login("SCRAM-SHA-512", USER, False), Login("SCRAM-SHA-256", USER, False),
                          Login("PLAIN", USER, True)]
    assert len(logins) >= 4 and all(login == Login("PLAIN", USER, True) for login in logins[3:])
    assert any("using PLAIN (refused before it: SCRAM-SHA-512" in text for _, text in demisto.logs)


def test_without_a_mechanism_a_refused_password_names_each_mechanism_tried(integration, demisto, sasl_topic):
    """kafka+sasl:// (no TLS): each SCRAM mechanism, and never PLAIN after them (test_integration_kafka_sasl_plain.py);
    the log says nothing chosen, since nothing logged in."""
    from servers.kafka_sasl_proxy import Login
    server, topic = sasl_topic
    bootstrap = f"127.0.0.1:{server.sasl.port}"
    before = len(server.logins)
    started = time.monotonic()
    (entry,) = run_command(integration, demisto, "test-module",
                           params=params(f"kafka+sasl://{bootstrap}/{topic}", WRONG_PASSWORD))
    assert time.monotonic() - started < FAST_SECONDS and entry["Type"] == 4
    assert (f"SASL login refused: the Kafka broker {bootstrap} refused user '{USER}' with each SASL mechanism tried: "
            "SCRAM-SHA-512 (SASL_AUTHENTICATION_FAILED: ") in entry["Contents"]
    assert ("SCRAM-SHA-256 (SASL_AUTHENTICATION_FAILED: Authentication failed during authentication due to invalid "
            "credentials with SASL mechanism SCRAM-SHA-256) (no SASL mechanism configured; the broker lists PLAIN, "
            "SCRAM-SHA-256, SCRAM-SHA-512); PLAIN, which it lists too, was not tried: discovery does not pick PLAIN "
            "without TLS that verifies the broker") in entry["Contents"]
    assert server.logins[before:] == [Login("SCRAM-SHA-512", USER, False), Login("SCRAM-SHA-256", USER, False)]
    assert WRONG_PASSWORD not in war_room_and_logs(demisto) and PASSWORD not in war_room_and_logs(demisto)


def test_a_bootstrap_server_without_a_port_is_checked_on_kafkas_port(integration, demisto, sasl_topic, monkeypatch):
    """kafka-python takes a server without a port as host:9092 (as the Splunk app and the connector do); the check
    skipped it (int('127.0.0.1') failed): no mechanism was discovered, kafka-python got PLAIN, and a refused password
    or certificate was again kafka-python's 30 s "Unable to bootstrap". 9092 is led to the SASL proxy here."""
    import socket
    import threading
    server, _ = sasl_topic
    asked = []
    connect, this_thread = socket.create_connection, threading.get_ident()

    def to_the_proxy(address, *args, **kwargs):
        if threading.get_ident() == this_thread:            # not the proxy's own connections to tansu
            asked.append(address)
        return connect(("127.0.0.1", server.sasl.port) if address == ("127.0.0.1", 9092) else address, *args, **kwargs)

    monkeypatch.setattr(integration.socket, "create_connection", to_the_proxy)
    config = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": None, "sasl_plain_username": USER,
              "sasl_plain_password": PASSWORD}
    integration.kafka_sasl_check(["127.0.0.1"], config)
    assert asked == [("127.0.0.1", 9092)] and config["sasl_mechanism"] == "SCRAM-SHA-512"
    wrong = {**config, "sasl_mechanism": None, "sasl_plain_password": WRONG_PASSWORD}
    with pytest.raises(Exception, match="SASL login refused"):
        integration.kafka_sasl_check(["[127.0.0.1]"], wrong)
    # each SCRAM mechanism offered, the second on a new connection (never PLAIN without TLS)
    assert asked[1:] == [("127.0.0.1", 9092)] * 2
