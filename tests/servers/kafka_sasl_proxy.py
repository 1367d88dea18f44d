"""Kafka with SASL logins for tests: a SASL-authenticating proxy in front of tansu, which advertises the proxy.

tansu 0.6.0 cannot hold SASL users with memory storage (see kafka_tls_proxy.py), so the login is done
here, as a Kafka broker does it, and only an authenticated connection is relayed to tansu:

- ApiVersions (api key 18) is forwarded to tansu and its answer rewritten to list SaslHandshake
  (17, v0-v1) and SaslAuthenticate (36, v0-v2), whatever tansu says about them (0.6.0 already lists
  exactly these; the rewrite keeps the proxy right for a build that does not).
- SaslHandshake (KIP-43): an unknown mechanism gets UNSUPPORTED_SASL_MECHANISM (33) with the enabled
  ones, then the connection is closed. v0 is followed by the SASL tokens framed by size alone; v1 by
  SaslAuthenticate requests (KIP-152; v2 is a flexible version: request header v2, response header v1).
- SaslAuthenticate before a handshake, or a second handshake, gets ILLEGAL_SASL_STATE (34) and a close.
- A refused login gets SASL_AUTHENTICATION_FAILED (58) with an error message (Kafka's wording), then a close.
- Any other request before the login completes is refused by closing the connection.
- Mechanisms: PLAIN (RFC 4616), SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677; 4096 iterations,
  Kafka's minimum). Once logged in, the connection is a plain relay to tansu.
- `received` keeps every frame clients sent up to the end of their login, so a test can check what a
  client disclosed (a password in a PLAIN token) whether or not a login followed.

SASL_SSL: `start_sasl_kafka(tls=True)` puts the TLS-terminating proxy of kafka_tls_proxy.py in front
(client -> TLS proxy -> SASL proxy -> tansu), and tansu advertises the TLS proxy.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import struct
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers.tansu import Tansu, free_port, start_tansu

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
SASL_VERSIONS = {SASL_HANDSHAKE: (0, 1), SASL_AUTHENTICATE: (0, 2)}
UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED = 33, 34, 58
SCRAM_ITERATIONS = 4096
#: After an error answer the proxy lets the client close first, for at most this long. Kafka delays the
#: failed-authentication answer and the close after it (KIP-306, connection.failed.authentication.delay.ms);
#: closing at once races the answer, and kafka-python 3.0 drops bytes that arrive together with the close.
CLOSE_AFTER_ERROR_SECONDS = 1.0
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: Kafka's messages for a refused login (PlainServerCallbackHandler, ScramSaslServer).
PLAIN_REFUSED = "Authentication failed: Invalid username or password"
SCRAM_REFUSED = "Authentication failed during authentication due to invalid credentials with SASL mechanism {}"


class LoginRefused(Exception):
    """The client's credentials or message were refused; the text goes to the client as the error message."""


@dataclass
class Login:
    """One SASL exchange the proxy finished: the mechanism, the user named (None if unreadable), the outcome."""

    mechanism: str
    username: str | None
    accepted: bool


# -- protocol primitives ----------------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    if not 0 <= size <= 100 * 1024 * 1024:
        raise ConnectionError(f"frame size {size}")
    return _recv_exact(sock, size)


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data, self.offset = data, offset

    def take(self, size: int) -> bytes:
        if size < 0 or self.offset + size > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def int16(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def int32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def rest(self) -> bytes:
        return self.data[self.offset:]


@dataclass
class _Request:
    api_key: int
    version: int
    correlation_id: int
    body: _Reader

    @property
    def flexible(self) -> bool:
        return self.api_key == SASL_AUTHENTICATE and self.version >= 2


def _parse_request(frame: bytes) -> _Request:
    """Request header v1 (v2 for flexible versions: tagged fields after the client id)."""
    reader = _Reader(frame)
    api_key, version, correlation_id = reader.int16(), reader.int16(), reader.int32()
    client_id_size = reader.int16()
    if client_id_size > 0:
        reader.take(client_id_size)
    request = _Request(api_key, version, correlation_id, reader)
    if request.flexible:
        reader.skip_tagged_fields()
    return request


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def rewrite_api_versions(version: int, body: bytes) -> bytes:
    """tansu's ApiVersions response body, listing SaslHandshake and SaslAuthenticate with our versions
    (v0: no throttle time; v3+: compact array, tagged fields per entry and at the end)."""
    reader = _Reader(body)
    error_code = reader.int16()
    if error_code:                    # e.g. UNSUPPORTED_VERSION, answered in the v0 layout: as it is
        return body
    flexible = version >= 3
    count = reader.uvarint() - 1 if flexible else reader.int32()
    entries: dict[int, bytes] = {}
    for _ in range(max(count, 0)):
        start = reader.offset
        api_key = reader.int16()
        reader.take(4)
        if flexible:
            reader.skip_tagged_fields()
        entries[api_key] = body[start:reader.offset]
    for api_key, (low, high) in SASL_VERSIONS.items():
        entries[api_key] = struct.pack(">hhh", api_key, low, high) + (b"\x00" if flexible else b"")
    listing = _uvarint(len(entries) + 1) if flexible else struct.pack(">i", len(entries))
    return struct.pack(">h", 0) + listing + b"".join(entries[k] for k in sorted(entries)) + reader.rest()


# -- mechanisms ---------------------------------------------------------------------------------------------


class _Plain:
    """RFC 4616: one message, [authzid] NUL authcid NUL passwd."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.username: str | None = None
        self.done = False

    def step(self, token: bytes) -> bytes:
        parts = token.split(b"\x00")
        if len(parts) != 3:
            raise LoginRefused("Invalid SASL/PLAIN response: expected 3 tokens")
        authzid, username, password = (p.decode("utf-8", "replace") for p in parts)
        self.username = username
        if not username or not password:
            raise LoginRefused(PLAIN_REFUSED)
        expected = self.users.get(username)
        if expected is None or not hmac.compare_digest(password.encode(), expected.encode()):
            raise LoginRefused(PLAIN_REFUSED)
        if authzid and authzid != username:
            raise LoginRefused("Authentication failed: Client requested an authorization id that is different "
                               "from username")
        self.done = True
        return b""


@dataclass(frozen=True)
class ScramCredential:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


def scram_credential(hash_name: str, password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> ScramCredential:
    """RFC 5802 section 3: what a server stores (never the password itself)."""
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hash_name).digest()
    return ScramCredential(salt, iterations, hashlib.new(hash_name, client_key).digest(),
                           hmac.new(salted, b"Server Key", hash_name).digest())


def _saslname(value: str) -> str:
    """RFC 5802 section 5.1: ',' and '=' come as =2C and =3D; any other '=' is malformed."""
    if "=" in value.replace("=2C", "").replace("=3D", ""):
        raise LoginRefused("Invalid SCRAM client first message: malformed user name")
    return value.replace("=2C", ",").replace("=3D", "=")


def _attributes(message: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise LoginRefused("Invalid SCRAM message")
        out.setdefault(key, value)
    return out


class _Scram:
    """RFC 5802 server: client-first -> server-first (nonce, salt, iterations); client-final (proof) ->
    server-final (server signature). An unknown user is refused at the first message, as Kafka does."""

    def __init__(self, mechanism: str, credentials: dict[str, ScramCredential]) -> None:
        self.mechanism = mechanism
        self.hash_name = "sha256" if mechanism == "SCRAM-SHA-256" else "sha512"
        self.credentials = credentials
        self.username: str | None = None
        self.done = False
        self._state = "first"

    def step(self, token: bytes) -> bytes:
        try:
            message = token.decode("utf-8")
        except UnicodeDecodeError:
            raise LoginRefused("Invalid SCRAM message: not UTF-8") from None
        if self._state == "first":
            return self._first(message)
        if self._state == "final":
            return self._final(message)
        raise LoginRefused("Invalid SCRAM exchange: unexpected message after the final one")

    def _first(self, message: str) -> bytes:
        # gs2-header: "n," or "y," (no channel binding; "p=" is not offered), an optional "a=authzid", ","
        flag, _, rest = message.partition(",")
        authzid, _, bare = rest.partition(",")
        if flag not in ("n", "y") or (authzid and not authzid.startswith("a=")):
            raise LoginRefused("Invalid SCRAM client first message: channel binding is not supported")
        attributes = _attributes(bare)
        if "m" in attributes or "n" not in attributes or not attributes.get("r"):
            raise LoginRefused("Invalid SCRAM client first message")
        self.username = _saslname(attributes["n"])
        if authzid and _saslname(authzid[2:]) != self.username:
            raise LoginRefused("Authentication failed: Client requested an authorization id that is different "
                               "from username")
        self._credential = self.credentials.get(self.username)
        if self._credential is None:
            raise LoginRefused(SCRAM_REFUSED.format(self.mechanism))
        self._gs2_header = message[:len(message) - len(bare)]
        self._nonce = attributes["r"] + base64.b64encode(os.urandom(18)).decode()
        self._server_first = (f"r={self._nonce},s={base64.b64encode(self._credential.salt).decode()},"
                              f"i={self._credential.iterations}")
        self._client_first_bare = bare
        self._state = "final"
        return self._server_first.encode()

    def _final(self, message: str) -> bytes:
        self._state = "over"
        without_proof, sep, proof_part = message.rpartition(",p=")
        if not sep:
            raise LoginRefused("Invalid SCRAM client final message: no proof")
        attributes = _attributes(without_proof)
        if attributes.get("c") != base64.b64encode(self._gs2_header.encode()).decode():
            raise LoginRefused("Invalid SCRAM client final message: channel binding does not match")
        if attributes.get("r") != self._nonce:
            raise LoginRefused("Invalid SCRAM client final message: nonce does not match")
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except ValueError:
            raise LoginRefused("Invalid SCRAM client final message: proof is not base64") from None
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        signature = hmac.new(self._credential.stored_key, auth_message, self.hash_name).digest()
        if len(proof) != len(signature):
            raise LoginRefused(SCRAM_REFUSED.format(self.mechanism))
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.new(self.hash_name, client_key).digest(), self._credential.stored_key):
            raise LoginRefused(SCRAM_REFUSED.format(self.mechanism))
        self.done = True
        server_signature = hmac.new(self._credential.server_key, auth_message, self.hash_name).digest()
        return b"v=" + base64.b64encode(server_signature)


# -- the proxy ----------------------------------------------------------------------------------------------


class SaslAuthenticatingProxy:
    """Listens on 127.0.0.1 (plain TCP); does the SASL login itself, then relays the connection to `upstream`."""

    def __init__(self, upstream: tuple[str, int], users: dict[str, str], *,
                 mechanisms: tuple[str, ...] = MECHANISMS) -> None:
        self.upstream = upstream
        self.mechanisms = mechanisms
        self._users = dict(users)
        self._scram = {m: {u: scram_credential("sha256" if m.endswith("256") else "sha512", p, os.urandom(16))
                           for u, p in users.items()} for m in mechanisms if m.startswith("SCRAM-")}
        self.logins: list[Login] = []
        self.refused_requests: list[int] = []     # api keys of requests sent before a login (connection closed)
        self.handshakes: list[tuple[int, str]] = []   # (SaslHandshake version, mechanism asked for)
        self.received: list[bytes] = []           # every frame a client sent before its login ended, as it came
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def __repr__(self) -> str:                          # the users' passwords stay out of test output
        return f"<SaslAuthenticatingProxy 127.0.0.1:{self.port} -> {self.upstream} {','.join(self.mechanisms)}>"

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open |= set(sockets)

    def _serve(self, client: socket.socket) -> None:
        try:
            self._serve_client(client)
        except OSError:
            # close() (the test ending) closes every open socket under this thread: EBADF wherever it was
            if not self._closing.is_set():
                raise

    def _serve_client(self, client: socket.socket) -> None:
        self._track(client)
        client.settimeout(30)                     # a client that stops mid-login does not hold a thread
        opened: list[socket.socket] = []          # the upstream connection, once ApiVersions or the login opened it
        try:
            upstream = self._login(client, opened)
        except (OSError, ConnectionError, ValueError, struct.error):
            self._close(client, *opened)
            return
        if upstream is None:                      # refused, with an answer the client should get to read
            self._close(*opened)
            self._close_after_error(client)
            return
        client.settimeout(None)
        upstream.settimeout(None)
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _connect_upstream(self, opened: list[socket.socket]) -> socket.socket:
        if not opened:
            opened.append(socket.create_connection(self.upstream, timeout=10))
            self._track(opened[0])
        return opened[0]

    def _login(self, client: socket.socket, opened: list[socket.socket]) -> socket.socket | None:
        """The connection's requests until the login ends: the upstream socket once authenticated; None when
        an error answer was sent (close after it); ConnectionError to close at once."""
        mechanism: _Plain | _Scram | None = None
        mechanism_name = ""
        handshake_version = 1
        while True:
            frame = _read_frame(client)
            self.received.append(frame)
            if mechanism is not None and handshake_version == 0:
                # KIP-43 v0: the SASL tokens themselves, framed by size only
                try:
                    reply = mechanism.step(frame)
                except LoginRefused:
                    self.logins.append(Login(mechanism_name, mechanism.username, False))
                    raise ConnectionError("refused")      # v0 has no way to say why: the connection just ends
                if mechanism.done:                # recorded before the client can see the answer
                    self.logins.append(Login(mechanism_name, mechanism.username, True))
                client.sendall(_frame(reply))
                if mechanism.done:
                    return self._connect_upstream(opened)
                continue
            request = _parse_request(frame)
            if request.api_key == API_VERSIONS and mechanism is None:
                upstream = self._connect_upstream(opened)
                upstream.sendall(_frame(frame))
                answer = _read_frame(upstream)
                correlation, body = answer[:4], answer[4:]   # ApiVersions responses keep header v0
                client.sendall(_frame(correlation + rewrite_api_versions(request.version, body)))
            elif request.api_key == SASL_HANDSHAKE and request.version in (0, 1):
                if mechanism is not None:
                    self._send_handshake(client, request, ILLEGAL_SASL_STATE)
                    return None
                mechanism_name = request.body.take(request.body.int16()).decode("utf-8", "replace")
                self.handshakes.append((request.version, mechanism_name))
                if mechanism_name not in self.mechanisms:
                    self._send_handshake(client, request, UNSUPPORTED_SASL_MECHANISM)
                    return None
                mechanism = (_Plain(self._users) if mechanism_name == "PLAIN"
                             else _Scram(mechanism_name, self._scram[mechanism_name]))
                handshake_version = request.version
                self._send_handshake(client, request, 0)
            elif request.api_key == SASL_AUTHENTICATE and request.version in (0, 1, 2):
                if mechanism is None:
                    self._send_authenticate(client, request, ILLEGAL_SASL_STATE,
                                            "Unexpected SaslAuthenticate request before a SaslHandshake")
                    return None
                size = request.body.uvarint() - 1 if request.flexible else request.body.int32()
                token = request.body.take(size)
                try:
                    reply = mechanism.step(token)
                except LoginRefused as refused:
                    self.logins.append(Login(mechanism_name, mechanism.username, False))
                    self._send_authenticate(client, request, SASL_AUTHENTICATION_FAILED, str(refused))
                    return None
                if mechanism.done:                # recorded before the client can see the answer (a test reads
                    self.logins.append(Login(mechanism_name, mechanism.username, True))    # it once logged in)
                self._send_authenticate(client, request, 0, None, reply)
                if mechanism.done:
                    return self._connect_upstream(opened)
            else:
                # Kafka: "Unexpected Kafka request of type ... during SASL handshake": the connection is closed
                self.refused_requests.append(request.api_key)
                raise ConnectionError("request before the login")

    def _send_handshake(self, client: socket.socket, request: _Request, error_code: int) -> None:
        body = struct.pack(">hi", error_code, len(self.mechanisms)) + b"".join(_string(m) for m in self.mechanisms)
        client.sendall(_frame(struct.pack(">i", request.correlation_id) + body))

    def _send_authenticate(self, client: socket.socket, request: _Request, error_code: int, message: str | None,
                           token: bytes = b"") -> None:
        if request.flexible:                      # response header v1 and body v2: compact types, tagged fields
            text = b"\x00" if message is None else _uvarint(len(message.encode()) + 1) + message.encode()
            body = (struct.pack(">h", error_code) + text + _uvarint(len(token) + 1) + token
                    + struct.pack(">q", 0) + b"\x00")
            header = struct.pack(">i", request.correlation_id) + b"\x00"
        else:
            text = struct.pack(">h", -1) if message is None else _string(message)
            body = struct.pack(">h", error_code) + text + struct.pack(">i", len(token)) + token
            if request.version >= 1:
                body += struct.pack(">q", 0)      # session_lifetime_ms: 0, no re-authentication (KIP-368)
            header = struct.pack(">i", request.correlation_id)
        client.sendall(_frame(header + body))

    def _close_after_error(self, client: socket.socket) -> None:
        try:
            client.settimeout(CLOSE_AFTER_ERROR_SECONDS)
            while client.recv(4096):
                pass
        except OSError:
            pass
        self._close(client)

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
            self._close(source, target)

    def _close(self, *sockets: socket.socket) -> None:
        for s in sockets:
            try:
                s.close()
            except OSError:
                pass
        with self._lock:
            self._open -= set(sockets)

    def close(self) -> None:
        self._closing.set()
        self._listener.close()
        with self._lock:
            for s in list(self._open):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


@dataclass
class SaslKafka:
    """tansu behind the SASL proxy (and, with TLS, behind the TLS proxy too): `bootstrap` is the only way in."""

    broker: Tansu
    sasl: SaslAuthenticatingProxy = field(repr=False)
    tls: Any = field(default=None, repr=False)        # kafka_tls_proxy.TlsTerminatingProxy, for SASL_SSL
    directory: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.tls.port if self.tls else self.sasl.port}"

    @property
    def ca(self) -> Path:
        assert self.directory is not None, "a SASL_PLAINTEXT broker has no CA"
        return self.directory / "ca.pem"

    @property
    def logins(self) -> list[Login]:
        return self.sasl.logins

    def client_config(self, username: str, password: str, mechanism: str) -> dict[str, Any]:
        """librdkafka settings of a client logging in as `username`."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap, "sasl.mechanism": mechanism,
                                  "sasl.username": username, "sasl.password": password,
                                  "security.protocol": "SASL_SSL" if self.tls else "SASL_PLAINTEXT"}
        if self.tls:
            config["ssl.ca.location"] = str(self.ca)
        return config

    def create_topic(self, config: dict[str, Any], partitions: int = 1) -> str:
        from confluent_kafka.admin import AdminClient, NewTopic
        name = f"wia-sasl-{uuid.uuid4().hex[:12]}"
        admin = AdminClient(config)                   # kept alive until the result
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(15)
        return name

    def stop(self) -> None:
        if self.tls is not None:
            self.tls.close()
        self.sasl.close()
        self.broker.kill()


def start_sasl_kafka(users: dict[str, str], *, tls_directory: Path | None = None,
                     mechanisms: tuple[str, ...] = MECHANISMS) -> SaslKafka:
    """tansu on a plain loopback port behind the SASL proxy; with `tls_directory`, behind the TLS proxy
    as well (its certificates written there), which is then what tansu advertises."""
    tansu_port = free_port()
    sasl = SaslAuthenticatingProxy(("127.0.0.1", tansu_port), users, mechanisms=mechanisms)
    tls = None
    try:
        if tls_directory is not None:
            from servers.kafka_tls_proxy import TlsTerminatingProxy
            from servers.rsyslog import make_certificates
            make_certificates(tls_directory)
            tls = TlsTerminatingProxy(("127.0.0.1", sasl.port), tls_directory / "server.pem",
                                      tls_directory / "server.key")
        broker = start_tansu(tansu_port, advertised_port=tls.port if tls else sasl.port)
    except BaseException:
        if tls is not None:
            tls.close()
        sasl.close()
        raise
    return SaslKafka(broker, sasl, tls, tls_directory)
