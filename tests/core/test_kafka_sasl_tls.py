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
