"""The integration's Kafka source (kafka-python) over TLS, run through main() against tansu behind a
TLS-terminating proxy with a throwaway CA (tests/servers/kafka_tls_proxy.py): unticked, "Trust any
certificate" verifies the broker's certificate and host name against the trusted CAs; ticked, it
reads a self-signed broker (it used to switch off only the host-name check, so it still failed)."""
from __future__ import annotations

import json
import re
import ssl
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


# --- mutual TLS: a broker that demands a client certificate ------------------------------------------

KEY_PASSPHRASE = "client-key-Pa55phrase-41c7"


@pytest.fixture(scope="module")
def mtls_topic(tmp_path_factory, sample_events):
    """(server, topic) behind a proxy that demands a client certificate issued by the client CA; the client
    key is encrypted with KEY_PASSPHRASE. The sample events are written over mutual TLS by the project's sink."""
    from servers.kafka_tls_proxy import make_client_certificate, start_tls_kafka
    from wia_security.connectors.kafka import KafkaSink
    from wia_security.connectors.config import Secret
    directory = tmp_path_factory.mktemp("xsoar-kafka-mtls")
    make_client_certificate(directory, passphrase=KEY_PASSPHRASE)
    server = start_tls_kafka(directory, client_ca=directory / "client-ca.pem")
    try:
        topic = server.create_topic(partitions=2, config={**server.client_config(), "ssl.key.password": KEY_PASSPHRASE})
        url = (f"kafka+ssl://{server.bootstrap}/{topic}?ssl.ca.location={server.ca}"
               f"&ssl.certificate.location={directory / 'client.pem'}&ssl.key.location={directory / 'client.key'}")
        with KafkaSink.from_url(url, ssl_key_password=Secret(KEY_PASSPHRASE, "test")) as sink:
            assert sink.send(sample_events).delivered == len(sample_events)
        yield server, topic
    finally:
        server.stop()


def client_certificate(server, *, passphrase: str | None = KEY_PASSPHRASE, one_line: bool = False) -> dict:
    """The two credentials parameters as XSOAR hands them over: {identifier, password} each."""
    cert = (server.directory / "client.pem").read_text()
    key = (server.directory / "client.key").read_text()
    if one_line:                    # pasted into a one-line field: the line breaks arrive as spaces
        cert, key = cert.replace("\n", " "), key.replace("\n", " ")
    extra = {"kafka_client_certificate": {"identifier": cert, "password": key}}
    if passphrase is not None:
        extra["kafka_client_key_passphrase"] = {"identifier": "", "password": passphrase}
    return extra


def test_mtls_without_a_client_certificate_is_refused_at_once_saying_so(integration, demisto, mtls_topic, monkeypatch):
    server, topic = mtls_topic
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))
    started = time.monotonic()
    (entry,) = run_command(integration, demisto, "test-module", params=params(server.bootstrap, topic, insecure=False))
    assert time.monotonic() - started < 5          # not kafka-python's 30 s "Unable to bootstrap"
    # the proxy's alert, also when the request's write met the reset after it first (read after the write failed)
    assert entry["Type"] == 4 and f"refused the TLS connection ({server.bootstrap}: TLSV13_ALERT_CERTIFICATE_REQUIRED)" \
        in entry["Contents"], entry["Contents"]
    assert "no client certificate was given" in entry["Contents"]
    (entry,) = run_command(integration, demisto, "fetch-incidents", params=params(server.bootstrap, topic, insecure=False),
                           last_run={"offsets": {"0": 1}})
    assert entry["Type"] == 4 and demisto.incidents_out == [] and demisto.last_run == {"offsets": {"0": 1}}


@pytest.mark.parametrize("one_line", [False, True], ids=["pem", "pem-pasted-on-one-line"])
def test_mtls_with_the_client_certificate_reads_the_topic(integration, demisto, mtls_topic, sample_events, monkeypatch,
                                                          one_line):
    server, topic = mtls_topic
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))
    subjects_before = len(server.proxy.client_subjects)
    run_command(integration, demisto, "fetch-incidents",
                params=params(server.bootstrap, topic, insecure=False, **client_certificate(server, one_line=one_line)))
    assert fetched_ids(demisto) == sorted(e["id"] for e in sample_events)
    assert set(demisto.last_run["offsets"]) == {"0", "1"}
    # every connection (pre-flight and kafka-python's) presented the client certificate
    assert set(server.proxy.client_subjects[subjects_before:]) == {"wia-client"}
    assert KEY_PASSPHRASE not in war_room_and_logs(demisto)


def test_a_wrong_key_passphrase_fails_at_once_without_showing_a_secret(integration, demisto, mtls_topic, monkeypatch):
    server, topic = mtls_topic
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))
    wrong = "not-the-passphrase-8d2f"
    handshakes = server.proxy.tls_connections + len(server.proxy.handshake_failures)
    key_body = (server.directory / "client.key").read_text().splitlines()[1]
    for passphrase, why in ((wrong, "could not be decrypted with the Kafka client private key passphrase"),
                            (None, "private key is encrypted: set the Kafka client private key passphrase")):
        started = time.monotonic()
        (entry,) = run_command(integration, demisto, "test-module",
                               params=params(server.bootstrap, topic, insecure=False,
                                             **client_certificate(server, passphrase=passphrase)))
        assert time.monotonic() - started < 2
        assert entry["Type"] == 4 and why in entry["Contents"]
        shown = war_room_and_logs(demisto)
        assert wrong not in shown and KEY_PASSPHRASE not in shown and key_body not in shown
    # refused before any connection to the broker
    assert server.proxy.tls_connections + len(server.proxy.handshake_failures) == handshakes


def test_client_certificate_misconfigurations_are_named(integration, demisto, mtls_topic, tmp_path, monkeypatch):
    from servers.kafka_tls_proxy import make_client_certificate
    server, topic = mtls_topic
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))
    make_client_certificate(tmp_path)                      # another CA's pair: the broker does not trust it
    mine = client_certificate(server)
    cases = [
        ({"kafka_client_certificate": {"identifier": (tmp_path / "client.pem").read_text(),
                                       "password": (tmp_path / "client.key").read_text()}},
         "kafka+ssl", "the client certificate given was not accepted"),
        ({"kafka_client_certificate": {"identifier": mine["kafka_client_certificate"]["identifier"],
                                       "password": (tmp_path / "client.key").read_text()}},
         "kafka+ssl", "does not belong to the client certificate"),
        ({"kafka_client_certificate": {"identifier": "not a certificate", "password": "x" * 20}},
         "kafka+ssl", "the Kafka client certificate is not PEM text"),
        ({"kafka_client_certificate": {"identifier": mine["kafka_client_certificate"]["identifier"]}},
         "kafka+ssl", "needs both the certificate (PEM) and its private key"),
        ({"kafka_client_certificate": {"identifier": mine["kafka_client_certificate"]["identifier"],    # two keys:
                                       "password": (tmp_path / "client.key").read_text()               # which one?
                                       + mine["kafka_client_certificate"]["password"]}},
         "kafka+ssl", "holds 2 private keys"),
        (mine, "kafka", "presented over TLS only: use kafka+ssl://"),
    ]
    for extra, scheme, why in cases:
        (entry,) = run_command(integration, demisto, "test-module",
                               params=params(server.bootstrap, topic, insecure=False, scheme=scheme, **extra))
        assert entry["Type"] == 4 and why in entry["Contents"], entry["Contents"]


def test_the_client_key_is_never_written_to_disk_and_falls_back_to_private_files(integration, monkeypatch, tmp_path,
                                                                                 mtls_topic):
    """memfd where the kernel has it (nothing on disk); without it, 0600 files in a private directory, removed
    right after the key is loaded."""
    import os
    import ssl
    import tempfile
    server, _ = mtls_topic
    cert = (server.directory / "client.pem").read_text()
    key = (server.directory / "client.key").read_text()
    seen: list[tuple[str, int, int]] = []
    real_load = ssl.SSLContext.load_cert_chain

    def spy(self, certfile, keyfile=None, password=None):
        for path in (certfile, keyfile):
            seen.append((path, os.stat(path).st_mode & 0o777, os.stat(os.path.dirname(path)).st_mode & 0o777))
        return real_load(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    integration.load_client_certificate(ssl.create_default_context(), cert, key, KEY_PASSPHRASE)
    assert all(path.startswith("/proc/self/fd/") for path, _, _ in seen) and list(tmp_path.iterdir()) == []

    seen.clear()
    monkeypatch.delattr(os, "memfd_create")
    integration.load_client_certificate(ssl.create_default_context(), cert, key, KEY_PASSPHRASE)
    assert [(mode, dir_mode) for _, mode, dir_mode in seen] == [(0o600, 0o700)] * 2
    assert all(path.startswith(str(tmp_path)) for path, _, _ in seen)
    assert list(tmp_path.iterdir()) == []                  # files and their directory removed
    with pytest.raises(Exception, match="could not be decrypted"):
        integration.load_client_certificate(ssl.create_default_context(), cert, key, "wrong-passphrase")
    assert list(tmp_path.iterdir()) == []                  # removed on failure too


# --- a listener that is not a Kafka TLS broker: the error says what happened, not "refused ... client certificate" ---


@pytest.fixture
def tls_listener(tmp_path, monkeypatch):
    """Starts TLS-terminating proxies (trusted through SSL_CERT_FILE) in front of `upstream`; all closed after."""
    from servers.kafka_tls_proxy import TlsTerminatingProxy
    from servers.rsyslog import make_certificates
    make_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    started = []

    def start(upstream_port: int, **kwargs) -> TlsTerminatingProxy:
        proxy = TlsTerminatingProxy(("127.0.0.1", upstream_port), tmp_path / "server.pem", tmp_path / "server.key",
                                    **kwargs)
        started.append(proxy)
        return proxy
    yield start
    for proxy in started:
        proxy.close()


def tls_error(integration, demisto, port: int, **extra) -> str:
    started = time.monotonic()
    (entry,) = run_command(integration, demisto, "test-module",
                           params=params(f"127.0.0.1:{port}", "wia-events", insecure=False, **extra))
    assert time.monotonic() - started < 5        # the pre-flight's answer, not kafka-python's 30 s "Unable to bootstrap"
    assert entry["Type"] == 4
    return entry["Contents"]


def test_a_tls_listener_answering_http_is_named_as_no_kafka_broker(integration, demisto, tls_listener):
    """TLS, then an HTTP error page (an HTTPS server on the broker's port): the handshake succeeded, the answer was
    no Kafka one. It used to read "refused the TLS connection ...: no client certificate was given"."""
    from servers.not_kafka import NotKafka
    with NotKafka() as http:
        proxy = tls_listener(http.port)
        text = tls_error(integration, demisto, proxy.port)
    assert text.endswith(
        f"the Kafka brokers could not be reached over TLS (127.0.0.1:{proxy.port}: the TLS handshake succeeded, but "
        "the peer did not answer as a Kafka broker (not a Kafka answer (8 bytes), beginning b'HTTP/1.1')). Check that "
        "the Source URL names the brokers' Kafka TLS listener (host and port)."), text
    assert "client certificate" not in text and "refused" not in text


def test_with_a_client_certificate_an_http_answer_is_not_called_a_refused_certificate(integration, demisto, tmp_path,
                                                                                        tls_listener):
    """Mutual TLS taken (the proxy records the client certificate), then HTTP: it used to read "the client
    certificate given was not accepted"."""
    from servers.kafka_tls_proxy import make_client_certificate
    from servers.not_kafka import NotKafka
    make_client_certificate(tmp_path)
    cert = {"kafka_client_certificate": {"identifier": (tmp_path / "client.pem").read_text(),
                                         "password": (tmp_path / "client.key").read_text()}}
    with NotKafka() as http:
        proxy = tls_listener(http.port, client_ca=tmp_path / "client-ca.pem")
        text = tls_error(integration, demisto, proxy.port, **cert)
    assert proxy.client_subjects == ["wia-client"]
    assert "the TLS handshake succeeded, but the peer did not answer as a Kafka broker" in text, text
    assert "not accepted" not in text and "refused" not in text


def test_a_listener_without_tls_is_named_at_once(integration, demisto):
    """kafka+ssl:// to a plain listener: the handshake fails, and why; it used to fall to kafka-python's 30 s
    "Unable to bootstrap"."""
    from servers.not_kafka import NotKafka
    with NotKafka() as http:
        text = tls_error(integration, demisto, http.port)
    assert f"(127.0.0.1:{http.port}: the TLS handshake failed (WRONG_VERSION_NUMBER: the listener does not speak TLS; " \
           "a plaintext Kafka listener is read with kafka:// or kafka+sasl://))" in text, text


@pytest.mark.parametrize("scheme", ["kafka+ssl", "kafka+sasl_ssl"])
def test_a_tls_handshake_that_times_out_is_named_as_the_splunk_app_names_it(integration, demisto, monkeypatch, scheme):
    """A listener that takes the connection and the ClientHello and never answers (as a plaintext Kafka listener
    does: it reads the hello as the start of a request of 369 MB). The pre-flight let it go to kafka-python ("a slow
    broker"), which said "Unable to bootstrap" after 30 s; it now fails after the pre-flight's timeout (0.5 s here;
    KAFKA_CONNECT_TIMEOUT, 10 s) with what the Splunk app says (kafka_sasl.TlsFindings.handshake_unanswered)."""
    from servers.not_kafka import NotKafka
    monkeypatch.setattr(integration, "KAFKA_CONNECT_TIMEOUT", 0.5)
    extra = {"credentials": {"identifier": "wia-reader", "password": SASL_PASSWORD}} if "sasl" in scheme else {}
    with NotKafka(silent=True) as listener:
        text = tls_error(integration, demisto, listener.port, scheme=scheme, **extra)
        hello = bytes(listener.received)
    assert hello[:3] == b"\x16\x03\x01"                 # a TLS handshake record: the ClientHello, unanswered
    assert text.endswith(
        f"the TLS handshake with the Kafka brokers failed (127.0.0.1:{listener.port}: no TLS handshake (no answer to "
        "the TLS ClientHello within 0.5 s)); is the listener TLS (kafka+ssl://) or plain (kafka://)? Check the Source "
        "URL."), text
    assert SASL_PASSWORD not in war_room_and_logs(demisto)


@pytest.mark.parametrize("scheme,plain", [("kafka+ssl", "kafka://"), ("kafka+sasl_ssl", "kafka+sasl://")])
def test_a_tls_url_for_a_plain_kafka_listener_is_named_at_once(integration, demisto, tls_topic, scheme, plain):
    """tansu's own plain port: it reads the ClientHello as a Kafka request of 369 MB and waits, so the handshake
    timed out after KAFKA_CONNECT_TIMEOUT (10 s). After a second without an answer the pre-flight asks on a plain
    connection (kafka_sasl.tls_handshake): a Kafka answer names the listener."""
    server, topic = tls_topic
    extra = {"credentials": {"identifier": "wia-reader", "password": SASL_PASSWORD}} if "sasl" in scheme else {}
    text = tls_error(integration, demisto, server.broker.port, scheme=scheme, **extra)
    assert text.endswith(
        f"the Kafka broker {server.broker.bootstrap} answered a Kafka request sent without TLS, and not the TLS "
        "handshake: this is a plaintext Kafka listener. Use the port of the brokers' TLS listener in the Source URL, "
        f"or {plain} to read this one without TLS."), text
    assert SASL_PASSWORD not in war_room_and_logs(demisto)


def test_a_listener_closing_after_the_handshake_is_not_said_to_have_refused_a_certificate(integration, demisto,
                                                                                          tls_listener):
    """TLS taken, then a close without a word (the proxy's upstream is a closed port): under TLS 1.3 a broker may
    refuse a missing client certificate so, but it is not certain, and the message says both."""
    from servers.tansu import free_port
    proxy = tls_listener(free_port())
    text = tls_error(integration, demisto, proxy.port)
    # the close read as the answer's end, or met by the request's write (a reset, TLS's EOF)
    assert re.fullmatch(
        rf"(?s).*the Kafka broker closed the TLS connection after the handshake without answering \(127\.0\.0\.1:"
        rf"{proxy.port}: [^)]*(\(\d+ bytes\)|\(_ssl\.c:\d+\))?\): no client certificate was given, and a broker that "
        r"demands one \(mutual TLS\) may end the connection so: it needs the Kafka client certificate and key "
        r"parameters, with a certificate issued by a CA the broker trusts\. Otherwise check that the Source URL names "
        r"the brokers' Kafka TLS listener\.", text), text
    assert "refused" not in text


def test_a_tls_1_2_broker_demanding_a_client_certificate_names_the_handshake_failure(integration, demisto, tmp_path,
                                                                                     tls_listener):
    """Under TLS 1.2 OpenSSL ends the handshake with handshake_failure, which also means no shared version or
    cipher: the message gives the alert and both meanings."""
    from servers.kafka_tls_proxy import make_client_certificate
    from servers.not_kafka import NotKafka
    make_client_certificate(tmp_path)
    with NotKafka() as http:
        proxy = tls_listener(http.port, client_ca=tmp_path / "client-ca.pem")
        proxy.context.maximum_version = ssl.TLSVersion.TLSv1_2
        text = tls_error(integration, demisto, proxy.port)
    assert f"(127.0.0.1:{proxy.port}: the TLS handshake failed (SSLV3_ALERT_HANDSHAKE_FAILURE: the two sides share " \
           "no TLS version or cipher or, under TLS 1.2, the broker demands a client certificate))" in text, text


def test_a_client_certificate_alert_is_read_when_the_requests_write_met_the_reset_after_it(integration, demisto, tmp_path,
                                                                                          tls_listener, monkeypatch):
    """Under TLS 1.3 the broker judges the client certificate after the client's side of the handshake: it sends
    CERTIFICATE_REQUIRED and closes with the client's Finished unread, so a reset follows. A request written after
    the reset arrived fails (EOF), with the alert received but unread: the check reads it, so the error does not
    depend on timing (it said "closed the TLS connection ... without answering" when the write lost the race)."""
    import socket
    from servers.kafka_tls_proxy import make_client_certificate
    from servers.not_kafka import NotKafka
    make_client_certificate(tmp_path)
    real_api_versions = integration.kafka_sasl.api_versions
    states: list[int] = []

    def after_the_reset(sock, client_id):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:          # the client's TCP state: 7 = TCP_CLOSE, the reset received
            state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
            if state == 7:
                break
            time.sleep(0.01)
        states.append(state)
        return real_api_versions(sock, client_id)

    monkeypatch.setattr(integration.kafka_sasl, "api_versions", after_the_reset)
    with NotKafka() as http:
        proxy = tls_listener(http.port, client_ca=tmp_path / "client-ca.pem")
        text = tls_error(integration, demisto, proxy.port)
    assert states == [7]
    assert f"the Kafka broker refused the TLS connection (127.0.0.1:{proxy.port}: TLSV13_ALERT_CERTIFICATE_REQUIRED): " \
           "no client certificate was given." in text, text
