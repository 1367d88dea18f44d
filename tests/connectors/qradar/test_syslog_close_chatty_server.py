"""Closing a TCP syslog sink whose server keeps sending: the graceful close reads until the server's EOF (so
unread bytes do not turn the close into a reset), but that read was bounded per recv only, so a server that
sent a byte now and then held close() for as long as it went on. Now the drain ends after
CLOSE_DRAIN_SECONDS and the sink hangs up. A plain TCP listener stands in for the chatty server."""
from __future__ import annotations

import socket
import threading
import time

from wia_security.builders import AlertBuilder
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.connectors.qradar import SyslogSink

TRICKLE_FOR = 20.0          # seconds the server keeps sending unless the client hangs up first


class ChattyServer:
    """Reads the client's frames and, once the client has sent its FIN, sends a byte every 0.1 s for up
    to TRICKLE_FOR seconds; records whether the client hung up (a send failing) before that."""

    def __init__(self) -> None:
        self.received = b""
        self.client_hung_up = threading.Event()
        self.done = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            while data := conn.recv(65536):
                self.received += data
            end = time.monotonic() + TRICKLE_FOR
            try:
                while time.monotonic() < end:
                    conn.sendall(b".")
                    time.sleep(0.1)
            except OSError:
                self.client_hung_up.set()
        self.done.set()

    def close(self) -> None:
        self._sock.close()


def test_close_hangs_up_on_a_server_that_keeps_sending():
    server = ChattyServer()
    event = AlertBuilder().title("chatty").build().to_dict()
    sink = SyslogSink("127.0.0.1", server.port, transport="tcp", delivery=DeliveryPolicy(max_wait=0))
    try:
        report = sink.send([event]).merge(sink.flush())
        sink.close()
        assert server.done.wait(TRICKLE_FOR + 10)
    finally:
        server.close()
    assert report.delivered == 1 and b"LEEF:2.0|" in server.received
    assert server.client_hung_up.is_set(), "close() read on until the server stopped sending"
