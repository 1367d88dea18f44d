"""The wia_events input's Kafka source with SASL logins, run as Splunk runs it (the built app, `bin/wia_events.py`
with only bin/lib on the path), against tansu behind the SASL-authenticating proxy and the TLS proxy
(tests/servers/kafka_sasl_proxy.py): kafka+sasl_ssl:// with SCRAM-SHA-512 (as MSK) and PLAIN (as Confluent
Cloud and Event Hubs), and kafka+sasl:// straight to the SASL proxy; without ?sasl_mechanism=, the mechanism
the login (wia_security.kafka_sasl, vendored in bin/lib) chooses from the broker's list.

A refused password made kafka-python retry until its 30 s bootstrap timeout and then say "Unable to
bootstrap" (the broker's reason, if at all, only in kafka-python's silent logger); the pre-flight check now
does the login itself and reports the refusal at once."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from servers.kafka_sasl_proxy import Login
from wia_security import AlertBuilder

from .test_modular_input import input_xml, run_input, streamed

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")

USER, PASSWORD = "wia-reader", "splunk-sasl-Pa55-51-3f9d0c"
#: A Kafka user whose name SCRAM must send escaped (RFC 5802: ',' as =2C, '=' as =3D); same password.
ESCAPED_USER = "svc,wia=reader"
WRONG_PASSWORD = "splunk-not-the-Pa55-51-e4a2"
SESSION_KEY = "splunkd-session-key-kafka-sasl-51"
#: The pre-flight login is one round trip or two; kafka-python took 30 s.
FAST_SECONDS = 5


@pytest.fixture(scope="module")
def sasl_ssl_kafka(tmp_path_factory):
    from servers.kafka_sasl_proxy import start_sasl_kafka
    server = start_sasl_kafka({USER: PASSWORD, ESCAPED_USER: PASSWORD},
                              tls_directory=tmp_path_factory.mktemp("splunk-kafka-sasl"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def splunkd(sasl_ssl_kafka, monkeypatch):
    """splunkd with the SASL password stored; the test CA is Splunk's Python's trust store (SSL_CERT_FILE)."""
    from .splunkd_stub import Splunkd
    monkeypatch.setenv("SSL_CERT_FILE", str(sasl_ssl_kafka.ca))
    with Splunkd(session_key=SESSION_KEY) as server:
        server.passwords[("wia_security", "kafka_reader")] = PASSWORD
        yield server


def checkpoint_of(directory: Path) -> bytes | None:
    files = list(directory.glob("wia_events_*.json"))
    return files[0].read_bytes() if files else None


def publish(server, mechanism: str, n: int) -> tuple[str, list[dict]]:
    from wia_security.connectors.config import Secret
    from wia_security.connectors.kafka import KafkaSink
    topic = server.create_topic(server.client_config(USER, PASSWORD, mechanism), partitions=2)
    events = [AlertBuilder().title(f"sasl {mechanism} {i}").severity(i % 10).build().to_dict() for i in range(n)]
    with KafkaSink.from_url(f"kafka+sasl_ssl://{server.bootstrap}/{topic}?ssl.ca.location={server.ca}",
                            username=USER, password=Secret(PASSWORD, "test"), sasl_mechanism=mechanism) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == n
    return topic, events


def read_all(app, splunkd, tmp_path, server, query: str = "", user: str = USER):
    """(run, the proxy's logins during the run) for an input reading a new topic of 4 events over SASL_SSL (`query`:
    ?sasl_mechanism=..., or none): every event is indexed once, and the password and session key shown nowhere."""
    topic, events = publish(server, "PLAIN", 4)
    before = len(server.logins)
    run = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka+sasl_ssl://{server.bootstrap}/{topic}{query}", "credential": "kafka_reader",
        "username": user}))
    assert run.returncode == 0, run.stderr
    assert sorted(g["event"]["id"] for g in streamed(run.stdout)) == sorted(e["id"] for e in events)
    assert PASSWORD not in run.stderr + run.stdout and SESSION_KEY not in run.stderr + run.stdout
    return run, server.logins[before:]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN", "SCRAM-SHA-256"])
def test_a_sasl_ssl_login_reads_each_event_once(built_app, splunkd, tmp_path, sasl_ssl_kafka, mechanism):
    """A configured mechanism is used as it is, though the broker offers a stronger one."""
    app, _ = built_app
    run, logins = read_all(app, splunkd, tmp_path, sasl_ssl_kafka, f"?sasl_mechanism={mechanism}")
    # the pre-flight login and kafka-python's, all as the configured user with the configured mechanism
    assert len(logins) >= 2 and all(login == Login(mechanism, USER, True) for login in logins)
    assert "no SASL mechanism configured" not in run.stderr


@pytest.mark.parametrize("offered,chosen", [
    (("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), "SCRAM-SHA-512"),     # as the project's connector defaults to
    (("PLAIN", "SCRAM-SHA-256"), "SCRAM-SHA-256"),
    (("PLAIN",), "PLAIN")])                                              # as Confluent Cloud: the old default's case
def test_without_a_mechanism_the_strongest_the_broker_offers_is_used_and_logged(
        built_app, splunkd, tmp_path, sasl_ssl_kafka, monkeypatch, offered, chosen):
    """The input used PLAIN when source_url named no mechanism, the connector (the CLI) SCRAM-SHA-512: a URL that
    worked with `wia-security pull` failed here. Both now ask the broker (its SaslHandshake answer lists them)."""
    app, _ = built_app
    monkeypatch.setattr(sasl_ssl_kafka.sasl, "mechanisms", offered)
    run, logins = read_all(app, splunkd, tmp_path, sasl_ssl_kafka)
    assert len(logins) >= 2 and all(login == Login(chosen, USER, True) for login in logins)
    assert (f"INFO wia_events input=wia_events://kafka: no SASL mechanism configured: the Kafka broker {sasl_ssl_kafka.bootstrap} "
            f"lists {', '.join(offered)}; using {chosen}\n") in run.stderr


def test_without_a_mechanism_a_user_the_broker_knows_for_plain_only_still_logs_in(
        built_app, splunkd, tmp_path, sasl_ssl_kafka, monkeypatch):
    """An input that worked with the old default (PLAIN) against a broker that also offers SCRAM, for a user who has no
    SCRAM credential there (Kafka keeps those per mechanism, apart from PLAIN's users): SCRAM-SHA-512 and -256 are
    refused, then PLAIN logs in, and kafka-python uses PLAIN."""
    app, _ = built_app
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        monkeypatch.delitem(sasl_ssl_kafka.sasl._scram[mechanism], USER)
    run, logins = read_all(app, splunkd, tmp_path, sasl_ssl_kafka)
    assert logins[:3] == [Login("SCRAM-SHA-512", USER, False), Login("SCRAM-SHA-256", USER, False),
                          Login("PLAIN", USER, True)]
    assert len(logins) >= 4 and all(login == Login("PLAIN", USER, True) for login in logins[3:])
    assert ("using PLAIN (refused before it: SCRAM-SHA-512 (SASL_AUTHENTICATION_FAILED: Authentication failed during "
            "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512); SCRAM-SHA-256") in run.stderr
    assert "configure PLAIN to skip them" in run.stderr


@pytest.mark.parametrize("query,mechanism", [("?sasl_mechanism=SCRAM-SHA-512", "SCRAM-SHA-512"),
                                             ("?sasl_mechanism=SCRAM-SHA-256", "SCRAM-SHA-256"),
                                             ("", "SCRAM-SHA-512"),             # discovered
                                             ("?sasl_mechanism=PLAIN", "PLAIN")])
def test_a_user_name_with_a_comma_and_an_equals_sign_logs_in_with_kafka_python_too(
        built_app, splunkd, tmp_path, sasl_ssl_kafka, query, mechanism):
    """kafka-python 3.0's SCRAM sends the name unescaped ('n=svc,wia=reader'), which the broker cannot read: the
    pre-flight (which escapes) logged in, then kafka-python's logins were refused until its 30 s "Unable to
    bootstrap". kafka-python now gets the name escaped for SCRAM, and as it is for PLAIN (escaped there, it would
    name another user)."""
    app, _ = built_app
    _, logins = read_all(app, splunkd, tmp_path, sasl_ssl_kafka, query, user=ESCAPED_USER)
    assert len(logins) >= 2 and all(login == Login(mechanism, ESCAPED_USER, True) for login in logins), logins


def test_kafka_sasl_ssl_to_a_plain_kafka_listener_that_cuts_the_hello_off_is_named_at_once(
        built_app, splunkd, tmp_path, sasl_ssl_kafka):
    """The SASL proxy's own plain port behind a kafka+sasl_ssl:// URL: like Apache Kafka (a request above
    socket.request.max.bytes), it reads the ClientHello as a request of 369 MB and closes at once, the hello unread:
    a reset, which read "no TLS handshake ([Errno 104] Connection reset by peer); is the listener TLS (kafka+ssl://)
    or plain (kafka://)?". The pre-flight now asks on a plain connection and names the listener."""
    app, _ = built_app
    bootstrap = f"127.0.0.1:{sasl_ssl_kafka.sasl.port}"
    before = len(sasl_ssl_kafka.logins)
    started = time.monotonic()
    run = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka+sasl_ssl://{bootstrap}/wia-events", "credential": "kafka_reader", "username": USER}))
    took = time.monotonic() - started
    assert run.returncode == 1 and took < FAST_SECONDS, f"took {took:.1f} s: {run.stderr}"
    assert (f"the Kafka broker {bootstrap} answered a Kafka request sent without TLS, and not the TLS handshake: this "
            "is a plaintext Kafka listener. Use the port of the brokers' TLS listener, or kafka+sasl:// to read this "
            "one without TLS (source_url starts with kafka+sasl_ssl://)") in run.stderr
    assert "not retried" in run.stderr and streamed(run.stdout) == [] and checkpoint_of(tmp_path) is None
    assert sasl_ssl_kafka.logins[before:] == []                 # no login: no password sent without TLS
    assert PASSWORD not in run.stderr + run.stdout


def refused(mechanism: str) -> str:
    """Kafka's message for a refused login (the proxy's wording)."""
    return ("SASL_AUTHENTICATION_FAILED: " + ("Authentication failed: Invalid username or password" if mechanism == "PLAIN"
            else f"Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"))


@pytest.mark.parametrize("scheme,mechanism", [("kafka+sasl_ssl", "SCRAM-SHA-512"), ("kafka+sasl", "PLAIN"),
                                              ("kafka+sasl_ssl", None)])
def test_a_refused_password_is_named_at_once_with_the_brokers_reason_and_never_shown(
        built_app, splunkd, tmp_path, sasl_ssl_kafka, scheme, mechanism):
    """Without a mechanism, each one the broker offers is tried, strongest first, and each refusal named."""
    app, _ = built_app
    splunkd.passwords[("wia_security", "kafka_reader")] = WRONG_PASSWORD
    # kafka+sasl:// goes straight to the SASL proxy (no TLS in front): only the bootstrap login is reached
    bootstrap = sasl_ssl_kafka.bootstrap if scheme == "kafka+sasl_ssl" else f"127.0.0.1:{sasl_ssl_kafka.sasl.port}"
    before = len(sasl_ssl_kafka.logins)
    started = time.monotonic()
    run = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"{scheme}://{bootstrap}/wia-events" + (f"?sasl_mechanism={mechanism}" if mechanism else ""),
        "credential": "kafka_reader", "username": USER}))
    took = time.monotonic() - started
    assert run.returncode == 1 and took < FAST_SECONDS, f"took {took:.1f} s: {run.stderr}"
    assert streamed(run.stdout) == [] and checkpoint_of(tmp_path) is None
    tried = [mechanism] if mechanism else ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
    said = (f"with the SASL mechanism {mechanism} ({refused(mechanism)})" if mechanism else
            "with each SASL mechanism it offers: " + "; ".join(f"{m} ({refused(m)})" for m in tried) +
            " (no SASL mechanism configured; the broker lists PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
    assert f"SASL login refused: the Kafka broker {bootstrap} refused user '{USER}' {said}; check" in run.stderr
    assert "not retried" in run.stderr and "Unable to bootstrap" not in run.stderr
    assert sasl_ssl_kafka.logins[before:] == [Login(m, USER, False) for m in tried]   # the pre-flight's, and no other
    everything = run.stderr + run.stdout
    assert WRONG_PASSWORD not in everything and PASSWORD not in everything and SESSION_KEY not in everything


def test_a_broker_that_cannot_prove_it_knows_the_scram_password_is_refused(built_app, splunkd, tmp_path, sasl_ssl_kafka,
                                                                           monkeypatch):
    """SCRAM is mutual: a broker holding the right StoredKey (it accepts the proof) but not the ServerKey (a leaked
    credential store) sends a server signature that does not verify."""
    import dataclasses
    app, _ = built_app
    credentials = sasl_ssl_kafka.sasl._scram["SCRAM-SHA-512"]
    monkeypatch.setitem(credentials, USER, dataclasses.replace(credentials[USER], server_key=b"\x00" * 64))
    bootstrap = f"127.0.0.1:{sasl_ssl_kafka.sasl.port}"
    run = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka+sasl://{bootstrap}/wia-events?sasl_mechanism=SCRAM-SHA-512", "credential": "kafka_reader",
        "username": USER}))
    assert run.returncode == 1 and streamed(run.stdout) == [] and "Traceback" not in run.stderr, run.stderr
    assert (f"the Kafka broker {bootstrap} failed the SASL SCRAM-SHA-512 exchange: the server signature does not "
            "verify") in run.stderr
    assert PASSWORD not in run.stderr + run.stdout


def test_without_a_mechanism_a_broker_failing_the_scram_signature_is_not_given_the_password_in_plain(
        built_app, splunkd, tmp_path, sasl_ssl_kafka, monkeypatch):
    """The next mechanism is tried after a refusal only: a broker that cannot prove it holds the credential may be
    an impostor, and PLAIN would hand it the password."""
    import dataclasses
    app, _ = built_app
    credentials = sasl_ssl_kafka.sasl._scram["SCRAM-SHA-512"]
    monkeypatch.setitem(credentials, USER, dataclasses.replace(credentials[USER], server_key=b"\x00" * 64))
    handshakes = len(sasl_ssl_kafka.sasl.handshakes)
    run = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka+sasl_ssl://{sasl_ssl_kafka.bootstrap}/wia-events", "credential": "kafka_reader",
        "username": USER}))
    assert run.returncode == 1 and streamed(run.stdout) == [], run.stderr
    assert "failed the SASL SCRAM-SHA-512 exchange: the server signature does not verify" in run.stderr
    # the proxy records a handshake before it answers it (its record of a login may come after the client gave up)
    assert [name for _, name in sasl_ssl_kafka.sasl.handshakes[handshakes:]] == ["SCRAM-SHA-512"]
