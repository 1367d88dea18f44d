"""A syslog listener that writes something (a banner, an error line) and then closes the connection between two
batches. The sink checks for the server's close before each batch; that check read once, found the words, took
the connection for open, and the next batch went into the closed connection: counted delivered, never received
(10 of 30 events lost here, over TCP and over TLS). Every event must reach the listener on a new connection."""
from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from servers.certificates import issue, make_ca, write_certificate, write_key
from strategies import event_dicts
from wia_security.connectors.delivery.policy import DeliveryPolicy
from wia_security.connectors.qradar import SyslogSink

POLICY = DeliveryPolicy(max_events=10, max_wait=0, initial_backoff=0.01, max_backoff=0.05)


class TalkingListener:
    """Counts the LEEF messages each connection brings; the first connection, once it has read one batch,
    writes a line and closes (`closed` is set then). TLS when given a server context."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.context = context
        self.counts: dict[int, int] = {}
        self.closed = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        number = 0
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            number += 1
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        if self.context is not None:
            conn = self.context.wrap_socket(conn, server_side=True)
        data = b""
        with conn:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
                self.counts[number] = data.count(b"LEEF:2.0|")
                if number == 1 and self.counts[number] >= 10:
                    conn.sendall(b"closing: maintenance in progress\n")
                    if isinstance(conn, ssl.SSLSocket):
                        conn.settimeout(1)             # close_notify after the words, as a TLS server ends; the
                        try:                           # sink answers it only when it reads, before its next batch
                            conn.unwrap()
                        except OSError:
                            pass
                    self.closed.set()
                    return

    def close(self) -> None:
        self._server.close()


def server_context(folder: Path) -> tuple[ssl.SSLContext, str]:
    ca = make_ca("talking listener CA")
    key, cert = issue(ca, "127.0.0.1", server=True, hosts=("127.0.0.1",))
    write_certificate(folder / "ca.pem", ca[1])
    write_certificate(folder / "server.pem", cert)
    write_key(folder / "server.key", key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return context, str(folder / "ca.pem")


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_a_listener_that_speaks_then_closes_between_batches_loses_no_event(transport: str, tmp_path: Path) -> None:
    options: dict[str, Any] = {}
    context = None
    if transport == "tls":
        context, ca = server_context(tmp_path)
        options["ca_file"] = ca
    listener = TalkingListener(context)
    sink = SyslogSink("127.0.0.1", listener.port, transport=transport, delivery=POLICY, hostname="sensor-1",
                      **options)
    report = sink.send(event_dicts(10, seed=1)).merge(sink.flush())
    assert listener.closed.wait(20), "the listener did not read the first batch"
    time.sleep(0.3)                                      # its words and its close are at the sink's end by now
    for seed in (2, 3):
        report.merge(sink.send(event_dicts(10, seed=seed))).merge(sink.flush())
    report.merge(sink.close())
    deadline = time.monotonic() + 20
    while sum(listener.counts.values()) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    listener.close()
    assert (report.delivered, report.failed) == (30, [])
    assert listener.counts[1] == 10 and sum(listener.counts.values()) == 30, listener.counts
