"""wia_security.kafka_sasl's framing against brokers that answer badly: late, dripping, oversized, negative, another
correlation id, closing mid-answer. A scripted socket server stands in for the broker: the answers are the point,
and no Kafka broker sends them on purpose (the login against real ones: test_kafka_sasl_scram.py's docstring)."""
from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from wia_security import kafka_sasl


def read_request(conn: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", conn.recv(4, socket.MSG_WAITALL))
    return conn.recv(size, socket.MSG_WAITALL)


@pytest.fixture
def broker() -> Iterator[Callable[[Callable[[socket.socket], None]], socket.socket]]:
    """broker(answer): a connected client socket whose peer reads one request and runs answer(conn)."""
    listener = socket.create_server(("127.0.0.1", 0))
    threads: list[threading.Thread] = []
    clients: list[socket.socket] = []
    stop = threading.Event()

    def start(answer: Callable[[socket.socket], None]) -> socket.socket:
        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                read_request(conn)
                try:
                    answer(conn)
                except OSError:
                    pass                        # the client gave up and closed: what some tests want
                stop.wait(5)                    # keep the connection open until the test is done
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        client = socket.create_connection(listener.getsockname(), timeout=5)
        clients.append(client)
        return client

    yield start
    stop.set()
    for client in clients:
        client.close()
    for thread in threads:
        thread.join(10)
    listener.close()


def header(size: int, correlation: int = kafka_sasl.CORRELATION_ID) -> bytes:
    return struct.pack(">ii", size, correlation)


def test_a_broker_dripping_its_answer_is_as_late_as_a_silent_one(broker):
    """The socket's timeout bounds the whole answer: one byte every 50 ms kept each read under a 0.3 s timeout, so
    the check waited for all of it (a 1 MB answer: 14 hours) instead of giving up after 0.3 s."""
    def drip(conn: socket.socket) -> None:
        conn.sendall(header(1004))
        for _ in range(60):                     # 3 s of bytes (then silence): the old reading took 3.3 s
            conn.sendall(b"\0")
            time.sleep(0.05)

    sock = broker(drip)
    sock.settimeout(0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        kafka_sasl.api_versions(sock, "wia-test")
    assert time.monotonic() - started < 1.5
    assert sock.gettimeout() == 0.3             # the caller's timeout, as it was


def test_an_answer_in_pieces_within_the_timeout_is_read_and_the_timeout_kept(broker):
    body = struct.pack(">hi", 0, 1) + struct.pack(">hhh", kafka_sasl.SASL_AUTHENTICATE, 0, 2)

    def pieces(conn: socket.socket) -> None:
        for part in (header(4 + len(body))[:3], header(4 + len(body))[3:], body[:5], body[5:]):
            conn.sendall(part)
            time.sleep(0.02)

    sock = broker(pieces)
    sock.settimeout(2.0)
    answer = kafka_sasl.api_versions(sock, "wia-test")
    assert kafka_sasl.api_version_range(answer, kafka_sasl.SASL_AUTHENTICATE) == (0, 2)
    assert sock.gettimeout() == 2.0


@pytest.mark.parametrize("answer,why", [
    (header(kafka_sasl.MAX_ANSWER + 1), "not a Kafka answer"),      # a huge size: never read, never allocated
    (header(-8), "not a Kafka answer"),
    (header(3), "not a Kafka answer"),
    (header(10, correlation=7), "not a Kafka answer"),             # another request's answer
    (header(10) + b"\0\0", "closed within an answer"),
    (b"\0\0\0", "closed before an answer")])
def test_what_is_no_kafka_answer_is_notkafka(broker, answer, why):
    def send_and_close(conn: socket.socket) -> None:
        conn.sendall(answer)
        conn.shutdown(socket.SHUT_WR)

    sock = broker(send_and_close)
    with pytest.raises(kafka_sasl.NotKafka, match=why):
        kafka_sasl.api_versions(sock, "wia-test")


@pytest.mark.parametrize("body", [
    b"\0",                                                     # no room for the error code
    struct.pack(">hi", 0, 1) + struct.pack(">h", 40) + b"PLAIN",  # a string longer than the answer
    struct.pack(">hi", 0, 1) + struct.pack(">h", -1),             # a null string in the list
    struct.pack(">hi", 0, 1) + struct.pack(">h", 2) + b"\xff\xfe"])  # not UTF-8
def test_an_unreadable_handshake_answer_is_notkafka(broker, body):
    sock = broker(lambda conn: conn.sendall(header(4 + len(body)) + body))
    with pytest.raises(kafka_sasl.NotKafka, match="unreadable SaslHandshake answer"):
        kafka_sasl.handshake(sock, "SCRAM-SHA-512", "wia-test")


def test_a_non_blocking_socket_raises_as_the_socket_does(broker):
    """A timeout of 0 is no deadline to count down: the read raises BlockingIOError as before, not TimeoutError."""
    sock = broker(lambda conn: None)            # never answers
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        kafka_sasl.api_versions(sock, "wia-test")
    assert sock.gettimeout() == 0.0


def test_a_refusal_message_is_cut_to_a_readable_length(broker):
    """A SaslAuthenticate error_message may be 32 KiB: the refusal carries its first 500 characters and its size,
    the password masked as ever."""
    message = ("no such user; " + "x" * 30_000 + " secret-pass").encode()
    body = struct.pack(">hh", 58, len(message)) + message + struct.pack(">i", 0)     # SASL_AUTHENTICATION_FAILED

    sock = broker(lambda conn: conn.sendall(header(4 + len(body)) + body))
    refusal = kafka_sasl.authenticate(sock, "b1:9092", "PLAIN", "wia", "secret-pass", 0, "wia-test")
    assert refusal is not None and refusal.message.startswith("no such user; xxx")
    assert len(refusal.message) < kafka_sasl.MAX_REFUSAL_CHARS + 40
    masked = len(message.decode().replace("secret-pass", "***"))
    assert refusal.message == f"{message.decode()[:kafka_sasl.MAX_REFUSAL_CHARS]}... ({masked:,} characters)"
    assert "secret-pass" not in refusal.message
