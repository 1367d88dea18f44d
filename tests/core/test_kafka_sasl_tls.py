"""wia_security.kafka_sasl's TLS pre-flight pieces, shared by the Splunk app and the XSOAR pack: a request written
after the peer ended the connection is no Kafka answer (NotKafka), not the socket's reset or TLS's EOF; and
TlsFindings reads a broker's client-certificate alert also when that write met the reset after it first. The TLS
listener is the tests' TLS-terminating proxy demanding a client certificate (TLS 1.3, as OpenSSL-based brokers
judge it after the client's side of the handshake: alert, then close with the client's Finished unread)."""
from __future__ import annotations

import socket
import ssl
import struct
import time

import pytest

from wia_security import kafka_sasl

TCP_CLOSE = 7         # linux/tcp_states.h: the reset received


def wait_for_tcp_close(sock: socket.socket) -> None:
    deadline = time.monotonic() + 5
    while sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] != TCP_CLOSE:
        assert time.monotonic() < deadline, "the peer's reset never arrived"
        time.sleep(0.01)


def test_a_request_written_after_a_reset_is_no_kafka_answer():
    """The write was outside exchange's try: ConnectionResetError escaped, where a reset while reading was NotKafka."""
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname(), timeout=5) as client:
        conn, _ = listener.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))    # close = reset
        conn.close()
        wait_for_tcp_close(client)
        with pytest.raises(kafka_sasl.NotKafka) as raised:
            kafka_sasl.api_versions(client, "wia-test")
    assert raised.value.answer == b"" and "reset" in str(raised.value)


@pytest.fixture
def mtls_listener(tmp_path):
    """(proxy, client context): a TLS 1.3 listener demanding a client certificate; the client trusts its CA and
    presents none."""
    from servers.kafka_tls_proxy import TlsTerminatingProxy, make_client_certificate
    from servers.not_kafka import NotKafka
    from servers.rsyslog import make_certificates
    make_certificates(tmp_path)
    make_client_certificate(tmp_path)
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    with NotKafka() as upstream:
        proxy = TlsTerminatingProxy(("127.0.0.1", upstream.port), tmp_path / "server.pem", tmp_path / "server.key",
                                    client_ca=tmp_path / "client-ca.pem")
        try:
            yield proxy, context
        finally:
            proxy.close()


def test_a_client_certificate_alert_is_read_after_the_requests_write_met_the_reset(mtls_listener):
    proxy, context = mtls_listener
    server = f"127.0.0.1:{proxy.port}"
    found = kafka_sasl.TlsFindings()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() == "TLSv1.3"
        wait_for_tcp_close(tls)                  # the alert and the reset after it have arrived, unread
        with pytest.raises(kafka_sasl.NotKafka) as raised:     # the write fails first (TLS's EOF), as NotKafka
            kafka_sasl.api_versions(tls, "wia-test")
        found.no_kafka_answer(server, raised.value, tls)
    assert found.client_refused == f"{server}: TLSV13_ALERT_CERTIFICATE_REQUIRED"
    assert found.closed is None and found.failures == []


@pytest.mark.parametrize("reason,kind,text", [
    ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "client_refused", "h:1: TLSV13_ALERT_CERTIFICATE_REQUIRED"),
    ("TLSV1_ALERT_UNKNOWN_CA", "client_refused", "h:1: TLSV1_ALERT_UNKNOWN_CA"),
    ("WRONG_VERSION_NUMBER", "failures", "h:1: the TLS handshake failed (WRONG_VERSION_NUMBER: the listener does not "
                                         "speak TLS; a plaintext Kafka listener is read with kafka:// or kafka+sasl://)"),
    ("SSLV3_ALERT_HANDSHAKE_FAILURE", "failures", "h:1: the TLS handshake failed (SSLV3_ALERT_HANDSHAKE_FAILURE: the "
                                                  "two sides share no TLS version or cipher or, under TLS 1.2, the "
                                                  "broker demands a client certificate)"),
    ("SOMETHING_ELSE", "failures", "h:1: the TLS handshake failed (SOMETHING_ELSE)"),
])
def test_a_failed_handshake_is_recorded_by_its_reason(reason, kind, text):
    found = kafka_sasl.TlsFindings()
    error = ssl.SSLError(1, "handshake")
    error.reason = reason
    assert found.handshake_failed("h:1", error) == reason
    recorded = {"client_refused": found.client_refused, "failures": "; ".join(found.failures) or None}
    assert recorded == {"client_refused": None, "failures": None, kind: text}


# -- a plaintext Kafka listener behind a kafka+ssl:// URL: named by tls_handshake, not after the whole timeout ----


@pytest.fixture(scope="module")
def plain_brokers():
    """(tansu's plain port, the SASL proxy's plain port): tansu reads the ClientHello as a request of 369 MB and
    waits for it; the proxy, like Apache Kafka above socket.request.max.bytes, closes at once (a reset, the hello
    unread). Both answer a plaintext ApiVersions request."""
    from servers.kafka_sasl_proxy import start_sasl_kafka
    server = start_sasl_kafka({"wia": "not-used-here"})
    try:
        yield server.broker.port, server.sasl.port
    finally:
        server.stop()


def any_certificate() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


@pytest.mark.parametrize("which", ["tansu waiting for the rest of the 'request'", "a broker closing at once"])
def test_a_plaintext_kafka_listener_is_named_instead_of_timing_out(plain_brokers, which):
    port = plain_brokers[0 if which.startswith("tansu") else 1]
    # without the probe: tansu leaves the handshake to time out, the proxy resets it; neither says "Kafka"
    with socket.create_connection(("127.0.0.1", port), timeout=kafka_sasl.PLAIN_PROBE_AFTER + 0.5) as raw:
        with pytest.raises(TimeoutError if which.startswith("tansu") else ConnectionResetError):
            any_certificate().wrap_socket(raw, server_hostname="127.0.0.1")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises(kafka_sasl.PlainKafkaListener, match=f"127.0.0.1:{port}"):
            kafka_sasl.tls_handshake(raw, any_certificate(), "127.0.0.1", port, "wia-test")
        assert raw.fileno() == -1                  # the TLS socket took it over and was closed
    assert time.monotonic() - started < 10 - 1     # not the whole timeout


def test_a_listener_answering_neither_tls_nor_kafka_still_times_out():
    """A silent listener (the ClientHello and the plaintext request both unanswered): no guess, the handshake's
    TimeoutError after the connection's timeout."""
    from servers.not_kafka import NotKafka
    with NotKafka(silent=True) as listener, \
            socket.create_connection(("127.0.0.1", listener.port), timeout=1.5) as raw:
        with pytest.raises(TimeoutError):
            kafka_sasl.tls_handshake(raw, any_certificate(), "127.0.0.1", listener.port, "wia-test")
        received = bytes(listener.received)
    assert received.startswith(b"\x16\x03\x01")     # the hello, then the probe's request (a Kafka frame)
    assert struct.pack(">hhi", kafka_sasl.API_VERSIONS, 0, kafka_sasl.CORRELATION_ID) in received


def test_a_slow_tls_broker_is_not_taken_for_plain_and_its_handshake_resumes(tmp_path):
    """A TLS listener that answers the hello only once the probe has come (its plaintext request refused with an
    alert): the handshake goes on where it waited and completes."""
    import threading
    from servers.rsyslog import make_certificates
    make_certificates(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    probed, handshaken, done, served = threading.Event(), threading.Event(), threading.Event(), []

    def serve() -> None:
        first, _ = listener.accept()             # the handshake's connection: held until the probe arrives
        probe, _ = listener.accept()
        probed.set()
        with probe:
            with pytest.raises(ssl.SSLError):    # a Kafka request is no ClientHello
                server_context.wrap_socket(probe, server_side=True)
        with server_context.wrap_socket(first, server_side=True) as tls:
            served.append(tls.version())
            handshaken.set()
            done.wait(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    with listener, socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with kafka_sasl.tls_handshake(raw, context, "127.0.0.1", port, "wia-test") as tls:
            assert probed.is_set() and handshaken.wait(5)
            assert tls.version() == served[0] == "TLSv1.3"
            assert tls.gettimeout() == 10            # the caller's timeout, as it was
            done.set()
    thread.join(5)
