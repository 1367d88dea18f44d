"""The wia_events input's Kafka source over TLS, run as Splunk runs it (the built app, `bin/wia_events.py`
with only bin/lib on the path), against tansu behind a TLS-terminating proxy with a throwaway CA
(tests/servers/kafka_tls_proxy.py; the proxy also listens on 127.0.0.2, an address the certificate does
not name). The trusted CAs are Splunk's Python's (OpenSSL's default paths): SSL_CERT_FILE, set in
splunkd's environment (splunk-launch.conf), is how an admin adds a private CA, so the tests set it too.

kafka-python logs a refused certificate only to its own (silent) logger and, 30 s later, raised
"Unable to bootstrap" without the reason; the source now shakes hands with the bootstrap brokers first.
Here kafka+sasl_ssl:// is run up to a refused certificate, and past TLS to tansu refusing the SASL mechanism;
SASL logins themselves (and a refused password) are in test_modular_input_kafka_sasl.py."""
from __future__ import annotations

import json
import re
import ssl
import time
from pathlib import Path

import pytest

from wia_security import AlertBuilder

from .test_modular_input import input_xml, run_input, streamed

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")

SASL_PASSWORD = "splunk-kafka-sasl-Pa55-9c2e71"
SESSION_KEY = "splunkd-session-key-kafka-tls-51f0"
#: A refusal must come long before kafka-python's 30 s bootstrap timeout, with its reason.
PROMPT_SECONDS = 10
#: What the pre-flight's Kafka requests tell (a TLS listener, a refused SASL mechanism) comes in one round trip.
FAST_SECONDS = 5


@pytest.fixture(scope="module")
def tls_kafka(tmp_path_factory):
    from servers.kafka_tls_proxy import start_tls_kafka
    server = start_tls_kafka(tmp_path_factory.mktemp("splunk-kafka-tls"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def splunkd():
    from .splunkd_stub import Splunkd
    with Splunkd(session_key=SESSION_KEY) as server:
        yield server


@pytest.fixture
def untrusted(monkeypatch):
    """Only the system's CAs, as on a Splunk host nobody added the broker's CA to."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture
def trusted(monkeypatch, tls_kafka):
    """The test CA as Splunk's Python's trust store (SSL_CERT_FILE in splunkd's environment)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_kafka.ca))


def alerts(n: int, tag: str) -> list[dict]:
    return [AlertBuilder().title(f"{tag} {i}").severity(i % 10).build().to_dict() for i in range(n)]


def publish(server, topic: str, events: list[dict]) -> None:
    """Written over TLS by the project's own kafka sink (key = event id, value = the event as JSON)."""
    from wia_security.connectors.kafka import KafkaSink
    with KafkaSink.from_url(f"kafka+ssl://{server.bootstrap}/{topic}?ssl.ca.location={server.ca}") as sink:
        assert sink.send(events).merge(sink.flush()).delivered == len(events)


def checkpoint_of(directory: Path) -> bytes | None:
    files = list(directory.glob("wia_events_*.json"))
    assert len(files) <= 1
    return files[0].read_bytes() if files else None


def timed_run(app: Path, conf: str):
    started = time.monotonic()
    run = run_input(app, [], conf)
    return run, time.monotonic() - started


def ids(run) -> list[str]:
    return sorted(g["event"]["id"] for g in streamed(run.stdout))


def test_the_self_signed_broker_is_refused_at_once_with_the_reason_and_the_checkpoint_stays(
        built_app, splunkd, tmp_path, tls_kafka, monkeypatch):
    app, _ = built_app
    topic = tls_kafka.create_topic(partitions=2)
    first, later = alerts(3, "first"), alerts(2, "later")
    publish(tls_kafka, topic, first)
    params = {"source_url": f"kafka+ssl://{tls_kafka.bootstrap}/{topic}"}
    # a checkpoint to keep: the first events read while the CA was trusted
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_kafka.ca))
    seeded = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", params))
    assert seeded.returncode == 0 and ids(seeded) == sorted(e["id"] for e in first), seeded.stderr
    saved = checkpoint_of(tmp_path)
    publish(tls_kafka, topic, later)

    monkeypatch.delenv("SSL_CERT_FILE")             # verify_tls unset: on, against the system CAs only
    refusals = len(tls_kafka.proxy.handshake_failures)
    run, took = timed_run(app, input_xml(splunkd, tmp_path, "kafka", params))
    # a source error: exit 1, nothing indexed, the next run resumes from the checkpoint
    assert run.returncode == 1 and streamed(run.stdout) == []
    assert took < PROMPT_SECONDS, f"took {took:.1f} s: {run.stderr}"
    assert ("the Kafka broker's TLS certificate was refused "
            f"({tls_kafka.bootstrap}: unable to get local issuer certificate)") in run.stderr
    assert "SSL_CERT_FILE" in run.stderr and "verify_tls = false" in run.stderr and "will resume" in run.stderr
    assert "Unable to bootstrap" not in run.stderr and "Traceback" not in run.stderr
    assert checkpoint_of(tmp_path) == saved
    assert tls_kafka.proxy.failures_past(refusals) > refusals           # the broker was met, and refused

    # trusted again: the run resumes there, the later events once, the first ones not again
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_kafka.ca))
    resumed = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", params))
    assert resumed.returncode == 0 and ids(resumed) == sorted(e["id"] for e in later), resumed.stderr


def test_with_the_ca_trusted_each_event_is_read_once_and_the_checkpoint_moves(
        built_app, splunkd, tmp_path, tls_kafka, trusted):
    app, _ = built_app
    topic = tls_kafka.create_topic(partitions=2)
    first, later = alerts(5, "trusted"), alerts(2, "trusted later")
    publish(tls_kafka, topic, first)
    conf = input_xml(splunkd, tmp_path, "kafka", {"source_url": f"kafka+ssl://{tls_kafka.bootstrap}/{topic}",
                                                  "verify_tls": "true", "page_size": "2"})
    run = run_input(app, [], conf)
    assert run.returncode == 0, run.stderr
    assert [g["event"] for g in sorted(streamed(run.stdout), key=lambda g: g["event"]["id"])] == \
        sorted(first, key=lambda e: e["id"])
    offsets = json.loads(checkpoint_of(tmp_path))["position"]["offsets"]
    # the sink partitions by the (random) event id: all five land in one partition about once in sixteen runs
    assert set(offsets) <= {"0", "1"} and sum(offsets.values()) == len(first)
    again = run_input(app, [], conf)
    assert again.returncode == 0 and streamed(again.stdout) == []
    publish(tls_kafka, topic, later)
    more = run_input(app, [], conf)
    assert more.returncode == 0 and ids(more) == sorted(e["id"] for e in later)
    assert sum(json.loads(checkpoint_of(tmp_path))["position"]["offsets"].values()) == len(first) + len(later)


def test_one_unreachable_bootstrap_broker_does_not_stop_the_run(built_app, splunkd, tmp_path, tls_kafka, trusted):
    """The pre-flight check goes on to the next bootstrap broker, as kafka-python does."""
    app, _ = built_app
    topic = tls_kafka.create_topic(partitions=1)
    events = alerts(2, "second broker")
    publish(tls_kafka, topic, events)
    run = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka+ssl://127.0.0.1:9,{tls_kafka.bootstrap}/{topic}"}))
    assert run.returncode == 0 and ids(run) == sorted(e["id"] for e in events), run.stderr


def test_a_broker_address_the_certificate_does_not_name_is_refused(built_app, splunkd, tmp_path, tls_kafka, trusted):
    app, _ = built_app
    topic = tls_kafka.create_topic(partitions=1)
    publish(tls_kafka, topic, alerts(1, "unlisted"))
    run, took = timed_run(app, input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka+ssl://{tls_kafka.unlisted_bootstrap}/{topic}"}))
    assert run.returncode == 1 and streamed(run.stdout) == [] and checkpoint_of(tmp_path) is None
    assert took < PROMPT_SECONDS, f"took {took:.1f} s: {run.stderr}"
    assert (f"TLS certificate was refused ({tls_kafka.unlisted_bootstrap}: IP address mismatch, "
            "certificate is not valid for '127.0.0.2'.)") in run.stderr


def test_verify_tls_off_reads_the_self_signed_broker_under_any_address(built_app, splunkd, tmp_path, tls_kafka, untrusted):
    """Neither the CA nor the host name is checked (not secure): the untrusted certificate, reached by an
    address it does not name, is read."""
    app, _ = built_app
    topic = tls_kafka.create_topic(partitions=2)
    events = alerts(3, "insecure")
    publish(tls_kafka, topic, events)
    conf = input_xml(splunkd, tmp_path, "kafka", {"source_url": f"kafka+ssl://{tls_kafka.unlisted_bootstrap}/{topic}",
                                                  "verify_tls": "false"})
    handshakes = tls_kafka.proxy.tls_connections
    run = run_input(app, [], conf)
    assert run.returncode == 0 and ids(run) == sorted(e["id"] for e in events), run.stderr
    assert tls_kafka.proxy.tls_connections > handshakes                     # over TLS, through the proxy
    assert sum(json.loads(checkpoint_of(tmp_path))["position"]["offsets"].values()) == len(events)


def test_kafka_sasl_ssl_refused_certificate_never_shows_the_password_or_session_key(
        built_app, splunkd, tmp_path, tls_kafka, untrusted):
    """kafka+sasl_ssl:// is parsed (SASL_SSL, the stored password as the SASL password), reaches the broker
    and is refused by its certificate before any SASL exchange; the password from storage/passwords and
    the session key appear nowhere in splunkd.log (stderr) or the stream."""
    app, _ = built_app
    splunkd.passwords[("wia_security", "kafka_reader")] = SASL_PASSWORD
    topic = tls_kafka.create_topic(partitions=1)
    refusals = len(tls_kafka.proxy.handshake_failures)
    run, took = timed_run(app, input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka+sasl_ssl://{tls_kafka.bootstrap}/{topic}?sasl_mechanism=SCRAM-SHA-512",
        "credential": "kafka_reader", "username": "wia-reader"}))
    assert run.returncode == 1 and took < PROMPT_SECONDS, run.stderr
    assert (f"TLS certificate was refused ({tls_kafka.bootstrap}: unable to get local issuer certificate)"
            in run.stderr)
    assert f"(kafka+sasl_ssl://{tls_kafka.bootstrap}/{topic})" in run.stderr
    assert tls_kafka.proxy.failures_past(refusals) > refusals
    everything = run.stderr + run.stdout
    assert SASL_PASSWORD not in everything and SESSION_KEY not in everything
    assert any("storage/passwords" in r.path for r in splunkd.requests)      # the password was read and handed on


@pytest.mark.parametrize("scheme", ["kafka", "kafka+ssl"])
def test_an_unreachable_broker_is_reported_at_once_with_the_reason(built_app, splunkd, tmp_path, scheme):
    """Nothing listens on the port: kafka-python said "Unable to bootstrap" after 30 s."""
    from servers.tansu import free_port
    app, _ = built_app
    port = free_port()
    run, took = timed_run(app, input_xml(splunkd, tmp_path, "kafka", {"source_url": f"{scheme}://127.0.0.1:{port}/t",
                                                                        "retries": "1", "retry_backoff": "0.01"}))
    assert run.returncode == 1 and took < PROMPT_SECONDS, run.stderr
    assert f"cannot reach any Kafka bootstrap broker (127.0.0.1:{port}: [Errno 111] Connection refused)" in run.stderr
    assert "attempt 1 of 2 failed" in run.stderr           # a temporary failure: retried within the run
    assert "gave up after 2 attempts; will resume from the last checkpoint" in run.stderr


@pytest.mark.parametrize("scheme,plain", [("kafka+ssl", "kafka://"), ("kafka+sasl_ssl", "kafka+sasl://")])
def test_a_tls_url_for_a_plain_kafka_listener_is_named_at_once(built_app, splunkd, tmp_path, tls_kafka, scheme, plain):
    """tansu's own plain port behind a kafka+ssl:// URL: it reads the ClientHello as a Kafka request of 369 MB and
    waits, so the handshake gave up after CONNECT_TIMEOUT (10 s) with "no TLS handshake ...; is the listener TLS or
    plain?". After a second without an answer the pre-flight asks on a plain connection (kafka_sasl.tls_handshake):
    a Kafka answer names the listener, not retried."""
    app, _ = built_app
    extra = {"credential": "kafka_reader", "username": "wia-reader"} if "sasl" in scheme else {}
    splunkd.passwords[("wia_security", "kafka_reader")] = SASL_PASSWORD
    run, took = timed_run(app, input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"{scheme}://{tls_kafka.broker.bootstrap}/t", **extra}))
    assert run.returncode == 1 and took < FAST_SECONDS, f"took {took:.1f} s: {run.stderr}"
    assert (f"the Kafka broker {tls_kafka.broker.bootstrap} answered a Kafka request sent without TLS, and not the TLS "
            f"handshake: this is a plaintext Kafka listener. Use the port of the brokers' TLS listener, or {plain} to "
            f"read this one without TLS (source_url starts with {scheme}://)") in run.stderr
    assert "not retried" in run.stderr and streamed(run.stdout) == [] and checkpoint_of(tmp_path) is None
    assert SASL_PASSWORD not in run.stderr + run.stdout


def test_a_refused_sasl_mechanism_is_named_at_once_and_the_password_stays_out_of_the_log(
        built_app, splunkd, tmp_path, tls_kafka, untrusted):
    """kafka+sasl_ssl:// with verify_tls off: TLS passes, then tansu (no SASL set up here) refuses the mechanism
    in its SaslHandshake answer. kafka-python retried until its 30 s bootstrap timeout ("Unable to bootstrap");
    the pre-flight check's own SaslHandshake reports it at once, not retried, without the stored SASL password
    or the session key."""
    app, _ = built_app
    splunkd.passwords[("wia_security", "kafka_reader")] = SASL_PASSWORD
    topic = tls_kafka.create_topic(partitions=1)
    handshakes = tls_kafka.proxy.tls_connections
    run, took = timed_run(app, input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka+sasl_ssl://{tls_kafka.bootstrap}/{topic}", "credential": "kafka_reader",
        "username": "wia-reader", "verify_tls": "false"}))
    assert run.returncode == 1 and took < FAST_SECONDS, run.stderr
    assert streamed(run.stdout) == [] and checkpoint_of(tmp_path) is None
    assert tls_kafka.proxy.tls_connections > handshakes                      # TLS was accepted, SASL was not
    # no ?sasl_mechanism=: the strongest asked for first; tansu refuses it while listing it
    assert (f"SASL login refused: the Kafka broker {tls_kafka.bootstrap} does not accept the SASL mechanism "
            "SCRAM-SHA-512 (UNSUPPORTED_SASL_MECHANISM; mechanisms it lists: SCRAM-SHA-512) (no SASL mechanism "
            "configured; the broker lists SCRAM-SHA-512); set ?sasl_mechanism=") in run.stderr
    assert "not retried" in run.stderr and "WARNING" not in run.stderr
    everything = run.stderr + run.stdout
    assert SASL_PASSWORD not in everything and SESSION_KEY not in everything


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_kafka_sasl_to_a_broker_without_the_mechanism_is_refused_at_once(built_app, splunkd, tmp_path, tls_kafka,
                                                                         mechanism):
    """kafka+sasl:// (SASL over plain TCP) to tansu's own plain port: the same SaslHandshake refusal."""
    app, _ = built_app
    splunkd.passwords[("wia_security", "kafka_reader")] = SASL_PASSWORD
    run, took = timed_run(app, input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"kafka+sasl://{tls_kafka.broker.bootstrap}/t?sasl_mechanism={mechanism}",
        "credential": "kafka_reader", "username": "wia-reader"}))
    assert run.returncode == 1 and took < FAST_SECONDS, run.stderr
    assert f"does not accept the SASL mechanism {mechanism} (UNSUPPORTED_SASL_MECHANISM" in run.stderr
    assert SASL_PASSWORD not in run.stderr + run.stdout


@pytest.mark.parametrize("scheme,advice", [("kafka", "use kafka+ssl://"), ("kafka+sasl", "use kafka+sasl_ssl://")])
def test_a_plain_url_for_a_tls_listener_is_named_at_once(built_app, splunkd, tmp_path, tls_kafka, trusted, scheme,
                                                         advice):
    """kafka:// pointed at the TLS listener: kafka-python retried for 30 s and said "Unable to bootstrap". The
    pre-flight's ApiVersions request gets no Kafka answer (the proxy's TLS server drops the connection) and a
    second connection completes a TLS handshake: the listener is TLS, said at once and not retried."""
    app, _ = built_app
    splunkd.passwords[("wia_security", "kafka_reader")] = SASL_PASSWORD
    topic = tls_kafka.create_topic(partitions=1)
    extra = {"credential": "kafka_reader", "username": "wia-reader"} if "sasl" in scheme else {}
    run, took = timed_run(app, input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"{scheme}://{tls_kafka.bootstrap}/{topic}", **extra}))
    assert run.returncode == 1 and took < FAST_SECONDS, run.stderr
    assert f"the Kafka broker {tls_kafka.bootstrap} answered with TLS: this is a TLS listener, {advice}" in run.stderr
    assert "not retried" in run.stderr and streamed(run.stdout) == [] and checkpoint_of(tmp_path) is None
    assert SASL_PASSWORD not in run.stderr + run.stdout



# --- a listener that is not a Kafka TLS broker: splunkd.log says what happened, at once, not "refused ... client
# certificate" (which the check said of any close or alert after the handshake) nor kafka-python's 30 s timeout ---


@pytest.fixture
def tls_listener(tmp_path_factory, monkeypatch):
    """Starts TLS-terminating proxies (their CA trusted through SSL_CERT_FILE) in front of `upstream_port`; all
    closed after."""
    from servers.kafka_tls_proxy import TlsTerminatingProxy
    from servers.rsyslog import make_certificates
    directory = tmp_path_factory.mktemp("splunk-not-kafka-tls")
    make_certificates(directory)
    monkeypatch.setenv("SSL_CERT_FILE", str(directory / "ca.pem"))
    started = []

    def start(upstream_port: int, **kwargs) -> TlsTerminatingProxy:
        proxy = TlsTerminatingProxy(("127.0.0.1", upstream_port), directory / "server.pem", directory / "server.key",
                                    **kwargs)
        started.append(proxy)
        return proxy
    yield start
    for proxy in started:
        proxy.close()


def kafka_ssl_error(app: Path, splunkd, checkpoint_dir: Path, port: int, **extra: str) -> str:
    """A run against kafka+ssl://127.0.0.1:port: it must fail at once, not retried, and say why in splunkd.log."""
    run, took = timed_run(app, input_xml(splunkd, checkpoint_dir, "kafka", {
        "source_url": f"kafka+ssl://127.0.0.1:{port}/wia-events", "retries": "2", **extra}))
    assert run.returncode == 1 and streamed(run.stdout) == [] and checkpoint_of(checkpoint_dir) is None, run.stderr
    assert took < FAST_SECONDS, f"took {took:.1f} s: {run.stderr}"   # not kafka-python's 30 s "Unable to bootstrap"
    assert "not retried" in run.stderr and "attempt 1 of" not in run.stderr, run.stderr
    assert "Unable to bootstrap" not in run.stderr and "Traceback" not in run.stderr
    return run.stderr


def test_a_tls_listener_answering_http_is_named_as_no_kafka_broker(built_app, splunkd, tmp_path, tls_listener):
    """TLS, then an HTTP error page (an HTTPS server on the broker's port): the handshake succeeded, the answer was
    no Kafka one. It read "refused the TLS connection ...: no client certificate was given"."""
    from servers.not_kafka import NotKafka
    app, _ = built_app
    with NotKafka() as http:
        proxy = tls_listener(http.port)
        log = kafka_ssl_error(app, splunkd, tmp_path, proxy.port)
    assert (f"the Kafka brokers could not be reached over TLS (127.0.0.1:{proxy.port}: the TLS handshake succeeded, "
            "but the peer did not answer as a Kafka broker (not a Kafka answer (8 bytes), beginning b'HTTP/1.1')). "
            "Check that source_url names the brokers' Kafka TLS listener (host and port)") in log, log
    assert "client certificate" not in log and "refused" not in log


def test_kafka_ssl_to_a_listener_without_tls_names_the_failed_handshake_at_once(built_app, splunkd, tmp_path):
    """A plain listener that answers the TLS hello with bytes that are no TLS: OpenSSL's reason and its meaning."""
    from servers.not_kafka import NotKafka
    app, _ = built_app
    with NotKafka() as http:
        log = kafka_ssl_error(app, splunkd, tmp_path, http.port)
    assert (f"the Kafka brokers could not be reached over TLS (127.0.0.1:{http.port}: the TLS handshake failed "
            "(WRONG_VERSION_NUMBER: the listener does not speak TLS; a plaintext Kafka listener is read with kafka:// "
            "or kafka+sasl://))") in log, log
    assert "refused" not in log


def test_a_tls_listener_closing_after_the_handshake_is_not_said_to_have_refused_a_certificate(
        built_app, splunkd, tmp_path, tls_listener):
    """TLS taken, then a close without a word (the proxy's upstream is a closed port): under TLS 1.3 a broker may
    refuse a missing client certificate so, but it is not certain, and the line says both."""
    from servers.tansu import free_port
    app, _ = built_app
    proxy = tls_listener(free_port())
    log = kafka_ssl_error(app, splunkd, tmp_path, proxy.port)
    # the close read as the answer's end, or met by the request's write (a reset, TLS's EOF)
    assert re.search(
        rf"the Kafka broker closed the TLS connection after the handshake without answering \(127\.0\.0\.1:"
        rf"{proxy.port}: [^)]*\(0 bytes\)\): no client certificate was given, and a broker that demands one \(mutual "
        r"TLS\) may end the connection so: it needs client_certificate_credential naming a secret in "
        r"storage/passwords \(realm wia_security\) with a certificate issued by a CA the broker trusts and its "
        r"private key\. Otherwise check that source_url names the brokers' Kafka TLS listener", log), log
    assert "refused" not in log


def test_a_tls_1_2_listener_demanding_a_client_certificate_names_the_handshake_failure(
        built_app, splunkd, tmp_path, tmp_path_factory, tls_listener):
    """Under TLS 1.2 OpenSSL ends the handshake with handshake_failure, which also means no shared version or
    cipher: the line gives the alert and both meanings (it read "refused ... no client certificate was given")."""
    from servers.kafka_tls_proxy import make_client_certificate
    from servers.not_kafka import NotKafka
    app, _ = built_app
    clients = tmp_path_factory.mktemp("splunk-tls12-client-ca")
    make_client_certificate(clients)
    with NotKafka() as http:
        proxy = tls_listener(http.port, client_ca=clients / "client-ca.pem")
        proxy.context.maximum_version = ssl.TLSVersion.TLSv1_2
        log = kafka_ssl_error(app, splunkd, tmp_path, proxy.port)
    assert (f"the Kafka brokers could not be reached over TLS (127.0.0.1:{proxy.port}: the TLS handshake failed "
            "(SSLV3_ALERT_HANDSHAKE_FAILURE: the two sides share no TLS version or cipher or, under TLS 1.2, the broker "
            "demands a client certificate))") in log, log
    assert proxy.handshake_failures                              # the listener met the client, and ended it
