"""A TCP listener on 127.0.0.1 that is not Kafka: it answers whatever a connection sends first with an HTTP error
page and closes, as a web server on the broker's port does; `silent=True`: it answers nothing and holds the connection
until closed (a broker too slow for a client's timeout). `received` keeps every byte it was sent, so a test can check
what a client disclosed there. Behind kafka_tls_proxy.TlsTerminatingProxy it is a TLS listener that is not Kafka
either."""
from __future__ import annotations

import socket
import threading

ANSWER = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class NotKafka:
    def __init__(self, *, silent: bool = False) -> None:
        self.silent = silent
        self._closing = threading.Event()
        self.received = bytearray()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="not-kafka", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                data = conn.recv(65536)
                with self._lock:
                    self.received += data
                if self.silent:
                    self._closing.wait(60)
                    return
                conn.sendall(ANSWER)
            except OSError:
                pass

    def close(self) -> None:
        self._closing.set()
        self._listener.close()

    def __enter__(self) -> NotKafka:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
