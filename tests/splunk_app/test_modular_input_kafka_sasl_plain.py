"""The wia_events input's Kafka source never sends the SASL password in PLAIN unless PLAIN is configured or the
connection is TLS that verifies the broker (wia_security.kafka_sasl.discovery_choices, the Kafka connector's rule).

Without ?sasl_mechanism= the pre-flight login picked PLAIN whenever the broker listed it alone, and after refused
SCRAM logins, over kafka+sasl:// and with verify_tls = false too: anything on the path could strip SCRAM from the
broker's list to be sent the password readable. And when the pre-flight could not finish (an answer that is not
Kafka, a slow one), kafka-python got PLAIN, the app's old default. Run as Splunk runs it (the built app), against
tansu behind the SASL-authenticating proxy, plain and behind the TLS proxy (tests/servers/kafka_sasl_proxy.py);
the proxy's `received` is every frame a client sent before its login ended, so "no password sent" is checked on
the bytes. PLAIN by discovery over TLS that verifies the broker: test_modular_input_kafka_sasl.py
(test_without_a_mechanism_the_strongest_the_broker_offers_is_used_and_logged, PLAIN alone)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from servers.kafka_sasl_proxy import Login
from wia_security import AlertBuilder

from .test_modular_input import input_xml, run_input, streamed

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")

USER, PASSWORD = "wia-reader", "splunk-plain-Pa55-71-5c2e81"
SESSION_KEY = "splunkd-session-key-kafka-plain-71"


@pytest.fixture(scope="module")
def sasl_kafka():
    """tansu behind the SASL proxy alone (SASL_PLAINTEXT; tansu advertises the proxy)."""
    from servers.kafka_sasl_proxy import start_sasl_kafka
    server = start_sasl_kafka({USER: PASSWORD})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sasl_ssl_kafka(tmp_path_factory):
    from servers.kafka_sasl_proxy import start_sasl_kafka
    server = start_sasl_kafka({USER: PASSWORD}, tls_directory=tmp_path_factory.mktemp("splunk-kafka-plain"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def splunkd():
    from .splunkd_stub import Splunkd
    with Splunkd(session_key=SESSION_KEY) as server:
        server.passwords[("wia_security", "kafka_reader")] = PASSWORD
        yield server


def password_sent(server, since: int) -> bool:
    """Whether a frame a client sent the proxy before its login ended, from the `since`th on, holds the password
    (a PLAIN token carries it readable; SCRAM never sends it)."""
    return any(PASSWORD.encode() in frame for frame in server.sasl.received[since:])


def run(app, splunkd, tmp_path, url: str, **params: str):
    return run_input(app, [], input_xml(splunkd, tmp_path, "kafka", {
        "source_url": url, "credential": "kafka_reader", "username": USER, **params}))


def error_line(stderr: str) -> str:
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("ERROR wia_events input=wia_events://kafka: ")]
    return line


def assert_nothing_read(result, tmp_path: Path) -> None:
    assert result.returncode == 1 and streamed(result.stdout) == [], result.stderr
    assert not list(tmp_path.glob("wia_events_*.json"))          # no checkpoint written
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout and SESSION_KEY not in result.stderr + result.stdout


def publish_plain(server, n: int = 3) -> tuple[str, list[dict]]:
    """A new topic with `n` events, written over kafka+sasl:// with PLAIN configured (the project's sink)."""
    from wia_security.connectors.config import Secret
    from wia_security.connectors.kafka import KafkaSink
    topic = server.create_topic(server.client_config(USER, PASSWORD, "PLAIN"))
    events = [AlertBuilder().title(f"sasl plain {i}").severity(3).build().to_dict() for i in range(n)]
    with KafkaSink.from_url(f"kafka+sasl://{server.bootstrap}/{topic}", username=USER,
                            password=Secret(PASSWORD, "test"), sasl_mechanism="PLAIN") as sink:
        assert sink.send(events).merge(sink.flush()).delivered == n
    return topic, events


# (a) PLAIN alone where it may not be picked unasked --------------------------------------------------------------


def test_without_tls_a_broker_listing_plain_alone_gets_no_password_and_the_run_says_what_to_set(
        built_app, splunkd, tmp_path, sasl_kafka, monkeypatch):
    """The upgrade case: an input without ?sasl_mechanism= that logged in with PLAIN over kafka+sasl:// now ends at
    once with an error naming the setting to add (splunkd.log: the input's stderr)."""
    app, _ = built_app
    monkeypatch.setattr(sasl_kafka.sasl, "mechanisms", ("PLAIN",))
    handshakes, logins, frames = len(sasl_kafka.sasl.handshakes), len(sasl_kafka.logins), len(sasl_kafka.sasl.received)
    result = run(app, splunkd, tmp_path, f"kafka+sasl://{sasl_kafka.bootstrap}/wia-events")
    assert_nothing_read(result, tmp_path)
    assert error_line(result.stderr) == (
        f"ERROR wia_events input=wia_events://kafka: SASL login not attempted: the Kafka broker {sasl_kafka.bootstrap} "
        "lists PLAIN and the connection has no TLS: PLAIN would send the password readable on the network, so PLAIN "
        "is not chosen when no mechanism is configured. Add ?sasl_mechanism=PLAIN to source_url to log in with PLAIN "
        f"anyway, or use kafka+sasl_ssl:// to a TLS listener (kafka+sasl://{sasl_kafka.bootstrap}/wia-events); not "
        "retried (not a temporary failure); will resume from the last checkpoint")
    assert [name for _, name in sasl_kafka.sasl.handshakes[handshakes:]] == ["SCRAM-SHA-512"]   # asked, refused
    assert sasl_kafka.logins[logins:] == [] and len(sasl_kafka.sasl.received) > frames
    assert not password_sent(sasl_kafka, frames)


def test_over_tls_that_does_not_verify_the_broker_plain_alone_gets_no_password(
        built_app, splunkd, tmp_path, sasl_ssl_kafka, monkeypatch):
    """verify_tls = false: whatever answers for the broker can strip SCRAM from its list, as on kafka+sasl://."""
    app, _ = built_app
    monkeypatch.setattr(sasl_ssl_kafka.sasl, "mechanisms", ("PLAIN",))
    logins, frames = len(sasl_ssl_kafka.logins), len(sasl_ssl_kafka.sasl.received)
    result = run(app, splunkd, tmp_path, f"kafka+sasl_ssl://{sasl_ssl_kafka.bootstrap}/wia-events", verify_tls="false")
    assert_nothing_read(result, tmp_path)
    line = error_line(result.stderr)
    assert ("lists PLAIN and the connection's TLS does not verify the broker's certificate and host name: PLAIN "
            "would hand the password to whatever answers for the broker, so PLAIN is not chosen when no mechanism is "
            "configured. Add ?sasl_mechanism=PLAIN to source_url to log in with PLAIN anyway, or set verify_tls = "
            "true") in line
    assert sasl_ssl_kafka.logins[logins:] == [] and not password_sent(sasl_ssl_kafka, frames)


def test_without_tls_refused_scram_logins_are_not_followed_by_plain(built_app, splunkd, tmp_path, sasl_kafka,
                                                                    monkeypatch):
    """A user the broker knows for PLAIN only (no SCRAM credential): over TLS that verifies the broker PLAIN follows
    the refused SCRAM logins (test_modular_input_kafka_sasl.py); over kafka+sasl:// it is not tried."""
    app, _ = built_app
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        monkeypatch.delitem(sasl_kafka.sasl._scram[mechanism], USER)
    logins, frames = len(sasl_kafka.logins), len(sasl_kafka.sasl.received)
    result = run(app, splunkd, tmp_path, f"kafka+sasl://{sasl_kafka.bootstrap}/wia-events")
    assert_nothing_read(result, tmp_path)
    assert sasl_kafka.logins[logins:] == [Login("SCRAM-SHA-512", USER, False), Login("SCRAM-SHA-256", USER, False)]
    assert not password_sent(sasl_kafka, frames)
    line = error_line(result.stderr)
    assert (f"refused user '{USER}' with each SASL mechanism tried: SCRAM-SHA-512 (SASL_AUTHENTICATION_FAILED: ") in line
    assert ("(no SASL mechanism configured; the broker lists PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); PLAIN, which it "
            "lists too, was not tried: discovery does not pick PLAIN without TLS that verifies the broker; check the "
            "username and the password stored under 'credential', and ?sasl_mechanism= in source_url") in line


# (b) PLAIN configured: the user's choice --------------------------------------------------------------------------


def test_plain_configured_without_tls_is_honoured_with_a_warning(built_app, splunkd, tmp_path, sasl_kafka, monkeypatch):
    app, _ = built_app
    monkeypatch.setattr(sasl_kafka.sasl, "mechanisms", ("PLAIN",))
    topic, events = publish_plain(sasl_kafka)
    logins, frames = len(sasl_kafka.logins), len(sasl_kafka.sasl.received)
    result = run(app, splunkd, tmp_path, f"kafka+sasl://{sasl_kafka.bootstrap}/{topic}?sasl_mechanism=PLAIN")
    assert result.returncode == 0, result.stderr
    assert sorted(g["event"]["id"] for g in streamed(result.stdout)) == sorted(e["id"] for e in events)
    assert len(sasl_kafka.logins) - logins >= 2
    assert all(login == Login("PLAIN", USER, True) for login in sasl_kafka.logins[logins:])
    # a security warning, so WARNING in splunkd.log (it was INFO, among the notes such as the mechanism chosen)
    warning = (f"the Kafka broker {sasl_kafka.bootstrap}: the SASL mechanism PLAIN is used as configured, though the "
               "connection has no TLS: PLAIN would send the password readable on the network")
    assert f"\nWARNING wia_events input=wia_events://kafka: {warning}\n" in "\n" + result.stderr, result.stderr
    assert result.stderr.count(warning) == 1
    assert PASSWORD not in result.stderr + result.stdout
    assert password_sent(sasl_kafka, frames)          # PLAIN's token, as configured: what the other tests rule out


# (c) SCRAM offered: SCRAM chosen, without TLS too -----------------------------------------------------------------


def test_without_tls_scram_is_chosen_when_offered(built_app, splunkd, tmp_path, sasl_kafka):
    app, _ = built_app
    topic, events = publish_plain(sasl_kafka)
    logins, frames = len(sasl_kafka.logins), len(sasl_kafka.sasl.received)
    result = run(app, splunkd, tmp_path, f"kafka+sasl://{sasl_kafka.bootstrap}/{topic}")
    assert result.returncode == 0, result.stderr
    assert sorted(g["event"]["id"] for g in streamed(result.stdout)) == sorted(e["id"] for e in events)
    assert len(sasl_kafka.logins) - logins >= 2
    assert all(login == Login("SCRAM-SHA-512", USER, True) for login in sasl_kafka.logins[logins:])
    assert (f"no SASL mechanism configured: the Kafka broker {sasl_kafka.bootstrap} lists PLAIN, SCRAM-SHA-256, "
            "SCRAM-SHA-512; using SCRAM-SHA-512\n") in result.stderr
    assert not password_sent(sasl_kafka, frames)


# the pre-flight cannot ask the broker -----------------------------------------------------------------------------


def test_without_tls_a_pre_flight_that_cannot_finish_ends_the_run_asking_for_the_mechanism(built_app, splunkd,
                                                                                         tmp_path):
    """kafka-python got PLAIN (the old default) and sent the password to whatever answered."""
    from servers.not_kafka import NotKafka
    app, _ = built_app
    with NotKafka() as listener:
        result = run(app, splunkd, tmp_path, f"kafka+sasl://127.0.0.1:{listener.port}/wia-events")
        received = bytes(listener.received)
    assert_nothing_read(result, tmp_path)
    assert error_line(result.stderr) == (
        "ERROR wia_events input=wia_events://kafka: no SASL mechanism configured and the pre-flight check could not "
        f"ask the Kafka broker 127.0.0.1:{listener.port} which to use (not a Kafka answer (8 bytes)); the connection "
        "has no TLS: PLAIN would send the password readable on the network, so it is not assumed: add "
        "?sasl_mechanism=SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN to source_url (the one the broker is configured for), "
        f"or check that 127.0.0.1:{listener.port} is a Kafka listener answering in time "
        f"(kafka+sasl://127.0.0.1:{listener.port}/wia-events); not retried (not a temporary failure); will resume "
        "from the last checkpoint")
    assert received and PASSWORD.encode() not in received          # the ApiVersions request and a TLS hello only


CHECK = """import sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/lib"]
from wia_app.pull import KafkaSource, SourceError, open_source
if len(sys.argv) > 5:                       # the pre-flight's timeout, shortened
    KafkaSource.CONNECT_TIMEOUT = float(sys.argv[5])
source = open_source(sys.argv[2], secret=sys.argv[3], username="wia-reader", verify_tls=sys.argv[4] == "true")
try:
    source._check_reachable()
except SourceError as exc:
    print("error:", exc)
else:
    print("mechanism:", source.config["sasl_mechanism"])
    for note in source.notes:
        print("note:", note)
    for warning in source.warnings:
        print("warning:", warning)
"""


@pytest.mark.parametrize("verify_tls", ["true", "false"])
def test_over_tls_a_pre_flight_that_cannot_finish_keeps_plain_only_if_the_broker_is_verified(built_app, tmp_path,
                                                                                             verify_tls):
    """The pre-flight alone (kafka-python would then wait 30 s for a broker that is not Kafka): a TLS listener that
    takes the handshake and then answers nothing in time (the check's timeout shortened to 0.5 s; one answering
    what is not Kafka is an error of its own, test_modular_input_kafka_tls.py). Over TLS that verifies the broker
    PLAIN stays the mechanism when the check cannot ask, logged; with verify_tls = false the run ends asking for
    ?sasl_mechanism=."""
    from servers.kafka_tls_proxy import TlsTerminatingProxy
    from servers.not_kafka import NotKafka
    from servers.rsyslog import make_certificates
    app, _ = built_app
    make_certificates(tmp_path)
    with NotKafka(silent=True) as listener:
        proxy = TlsTerminatingProxy(("127.0.0.1", listener.port), tmp_path / "server.pem", tmp_path / "server.key")
        try:
            url = f"kafka+sasl_ssl://127.0.0.1:{proxy.port}/wia-events"
            result = subprocess.run([sys.executable, "-I", "-S", "-c", CHECK, str(app / "bin"), url, PASSWORD,
                                     verify_tls, "0.5"], capture_output=True, text=True, timeout=60,
                                    env={"SSL_CERT_FILE": str(tmp_path / "ca.pem"), "PATH": "/usr/bin:/bin"})
        finally:
            proxy.close()
        received = bytes(listener.received)
    assert result.returncode == 0, result.stderr
    if verify_tls == "true":
        # PLAIN assumed: a warning (modinput logs source.warnings at WARNING level), not an INFO note
        assert result.stdout.splitlines() == [
            "mechanism: PLAIN",
            f"warning: no SASL mechanism configured and the pre-flight check could not ask the Kafka broker 127.0.0.1:{proxy.port} "
            "(The read operation timed out): using PLAIN over TLS that verifies the broker; add ?sasl_mechanism= to "
            "source_url to choose"]
    else:
        assert result.stdout.startswith(
            f"error: no SASL mechanism configured and the pre-flight check could not ask the Kafka broker "
            f"127.0.0.1:{proxy.port} which to use (The read operation timed out); the connection's TLS does not verify "
            "the broker's certificate and host name: PLAIN would hand the password to whatever answers for the broker, "
            "so it is not assumed: add ?sasl_mechanism=SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN to source_url"), result.stdout
    assert PASSWORD not in result.stdout + result.stderr and PASSWORD.encode() not in received
