"""A Kafka SASL login on a socket, standard library only: ApiVersions, SaslHandshake, SaslAuthenticate; PLAIN and SCRAM.

One implementation for the three places that check a Kafka SASL login before their Kafka client does: the
Splunk app and the XSOAR pack (kafka-python retries a refused password until its 30 s bootstrap timeout and
then says only "Unable to bootstrap"), and the Kafka connector when no mechanism is configured (librdkafka
needs one; `log_in(..., mechanism=None)` asks the broker). Both deployables embed the core, so a fix here
lands in each of them.

Framing as in the Kafka protocol guide ("The Messages"): request header v1 (api_key, api_version,
correlation_id, client_id), response header v0; ApiVersions v0, SaslHandshake v1 (KIP-43),
SaslAuthenticate v0/v1 (KIP-152). PLAIN is RFC 4616; SCRAM-SHA-256/512 is RFC 5802 / RFC 7677 as Kafka
does it (no SASLprep, no channel binding), and the broker's server signature is verified: a broker that
cannot prove it holds the user's credential is refused, and the exchange is not tried again with PLAIN.

Mechanism discovery (no mechanism configured): the SaslHandshake answer lists the mechanisms the broker has
enabled, whether or not it accepts the one asked for. The strongest it lists of SCRAM-SHA-512, SCRAM-SHA-256
and PLAIN is tried first; a refused login tries the next one the broker lists (a Kafka user holds SCRAM
credentials per mechanism, and PLAIN users may live apart from SCRAM ones), each on a new connection (a
broker closes the connection after a refusal). PLAIN is among the choices only over TLS that verifies the
broker (discovery_choices): the one rule of the connector, the Splunk app and the XSOAR pack. Errors name the broker, the user, every mechanism tried and
the broker's reasons; never the password.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from typing import Callable

from .errors import WiaError

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
ERROR_NAMES = {33: "UNSUPPORTED_SASL_MECHANISM", 34: "ILLEGAL_SASL_STATE", 35: "UNSUPPORTED_VERSION",
               58: "SASL_AUTHENTICATION_FAILED"}
UNSUPPORTED_SASL_MECHANISM, UNSUPPORTED_VERSION = 33, 35
#: Mechanisms this module logs in with, strongest first: the order discovery tries them in.
MECHANISMS_BY_STRENGTH = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
#: A refusal's message is cut here: it reaches logs, errors and XSOAR war rooms.
MAX_REFUSAL_CHARS = 500
#: SCRAM iteration counts Kafka accepts (ScramMechanism: 4096 to 16384); outside them the broker is not Kafka's.
SCRAM_ITERATIONS = (4096, 16384)
#: Marks the requests of the check ("WIA1"): an answer with another correlation id is not an answer to it.
CORRELATION_ID = 0x57494131
#: Largest answer read: the check's answers are a few hundred bytes.
MAX_ANSWER = 1_000_000


class NotKafka(Exception):
    """What answered is not a Kafka response: the connection closed or reset before one, a size no Kafka answer
    has, another correlation id, a body that does not parse. `answer`: the bytes read, possibly none."""

    def __init__(self, answer: bytes, why: str = "not a Kafka answer") -> None:
        super().__init__(f"{why} ({len(answer)} bytes)")
        self.answer = answer


class SaslError(WiaError):
    """The broker did not take the SASL login. `describe()` says so without advice: each caller adds where its
    user fixes it (a Splunk credential, an XSOAR parameter, a config file option)."""

    def __init__(self, server: str, mechanism: str | None, offered: tuple[str, ...] = (), *,
                 discovered: bool = False) -> None:
        self.server = server
        self.mechanism = mechanism
        self.offered = offered
        self.discovered = discovered            # no mechanism configured: chosen from the broker's list
        super().__init__(self.describe())

    def describe(self) -> str:  # pragma: no cover - every subclass words its own
        return f"the Kafka broker {self.server} refused the SASL login"

    def _chosen(self) -> str:
        return (f" (no SASL mechanism configured; the broker lists {', '.join(self.offered) or 'none'})"
                if self.discovered else "")


class MechanismNotOffered(SaslError):
    """The broker does not enable `mechanism` (UNSUPPORTED_SASL_MECHANISM); with discovery, `mechanism` is None
    when it lists none of MECHANISMS_BY_STRENGTH."""

    def describe(self) -> str:
        listed = ", ".join(self.offered) or "none"
        if self.mechanism is None:
            return (f"the Kafka broker {self.server} offers none of the SASL mechanisms "
                    f"{', '.join(MECHANISMS_BY_STRENGTH)} (mechanisms it lists: {listed})")
        return (f"the Kafka broker {self.server} does not accept the SASL mechanism {self.mechanism} "
                f"(UNSUPPORTED_SASL_MECHANISM; mechanisms it lists: {listed}){self._chosen()}")


@dataclass(frozen=True)
class Refusal:
    """One refused login: the mechanism, Kafka's error name and the broker's message (the password masked)."""

    mechanism: str
    error: str
    message: str

    def __str__(self) -> str:
        return f"{self.mechanism} ({self.error}: {self.message})"


class PlainWithheld(MechanismNotOffered):
    """Discovery's choices (discovery_choices) leave PLAIN out, and PLAIN is the only mechanism of
    MECHANISMS_BY_STRENGTH the broker lists: nothing was sent. `mechanism` is None, as for MechanismNotOffered from
    discovery. Each caller says why (plain_withheld_reason) and names the setting that opts in to PLAIN."""

    def __init__(self, server: str, offered: tuple[str, ...]) -> None:
        super().__init__(server, None, offered, discovered=True)

    def describe(self) -> str:
        return (f"the Kafka broker {self.server} lists {', '.join(self.offered)}: of "
                f"{', '.join(MECHANISMS_BY_STRENGTH)} only PLAIN, which discovery does not pick without TLS that "
                "verifies the broker (nothing was sent)")


class LoginRefused(SaslError):
    """The broker refused the user's login with every mechanism tried (one, unless discovered). `plain_withheld`:
    the broker lists PLAIN too, which discovery did not try (discovery_choices)."""

    def __init__(self, server: str, username: str, refusals: list[Refusal], offered: tuple[str, ...] = (), *,
                 discovered: bool = False, plain_withheld: bool = False) -> None:
        self.username = username
        self.refusals = refusals
        self.plain_withheld = plain_withheld
        super().__init__(server, refusals[-1].mechanism, offered, discovered=discovered)

    def describe(self) -> str:
        withheld = ("; PLAIN, which it lists too, was not tried: discovery does not pick PLAIN without TLS that "
                    "verifies the broker" if self.plain_withheld else "")
        if len(self.refusals) == 1:
            refusal = self.refusals[0]
            return (f"the Kafka broker {self.server} refused user {self.username!r} with the SASL mechanism "
                    f"{refusal.mechanism} ({refusal.error}: {refusal.message}){self._chosen()}{withheld}")
        return (f"the Kafka broker {self.server} refused user {self.username!r} with each SASL mechanism "
                f"{'tried' if self.plain_withheld else 'it offers'}: {'; '.join(map(str, self.refusals))}"
                f"{self._chosen()}{withheld}")


class ExchangeFailed(SaslError):
    """The SASL exchange broke off on the client's side: a server message SCRAM cannot use, or a server signature
    that does not verify (a broker that does not hold the user's credential)."""

    def __init__(self, server: str, mechanism: str, reason: str, offered: tuple[str, ...] = (), *,
                 discovered: bool = False) -> None:
        self.reason = reason
        super().__init__(server, mechanism, offered, discovered=discovered)

    def describe(self) -> str:
        return f"the Kafka broker {self.server} failed the SASL {self.mechanism} exchange: {self.reason}{self._chosen()}"


class HandshakeRefused(SaslError):
    """A SaslHandshake answer with another error code than UNSUPPORTED_SASL_MECHANISM."""

    def __init__(self, server: str, mechanism: str, error_code: int) -> None:
        self.error_code = error_code
        super().__init__(server, mechanism)

    def describe(self) -> str:
        return (f"the Kafka broker {self.server} refused the SASL handshake for {self.mechanism} "
                f"({ERROR_NAMES.get(self.error_code, f'Kafka error code {self.error_code}')})")


@dataclass
class Login:
    """How a login went: the mechanism the broker accepted (or, where the check does not log in itself, the one
    to use), whether it was chosen from the broker's list, that list, and the refusals before it."""

    mechanism: str
    discovered: bool = False
    offered: tuple[str, ...] = ()
    refusals: list[Refusal] = field(default_factory=list)

    def describe(self, server: str, *, tls: bool = True) -> str:
        """A log line for a discovered mechanism (what was chosen and why). `tls`: whether the connection is
        encrypted; PLAIN without it shows the password to anyone on the network path."""
        before = (f" (refused before it: {'; '.join(map(str, self.refusals))}; configure {self.mechanism} to skip "
                  "them)" if self.refusals else "")
        clear = ("; PLAIN without TLS sends the password readable on the network: use SASL over TLS"
                 if self.mechanism == "PLAIN" and not tls else "")
        return (f"no SASL mechanism configured: the Kafka broker {server} lists {', '.join(self.offered)}; "
                f"using {self.mechanism}{before}{clear}")


# -- which mechanisms discovery may pick ----------------------------------------------------------------------


def verifies_broker(tls: ssl.SSLContext | None) -> bool:
    """Whether a connection with this TLS context (None: no TLS) proves it reached the broker: the certificate
    checked against trusted CAs and its host name."""
    return tls is not None and tls.verify_mode == ssl.CERT_REQUIRED and tls.check_hostname


def discovery_choices(tls: ssl.SSLContext | None) -> tuple[str, ...]:
    """The mechanisms discovery (log_in with mechanism=None) may pick on a connection with this TLS context, strongest
    first. PLAIN only over TLS that verifies the broker: without TLS, or with the check off, anything on the path
    could strip SCRAM from the broker's list (or refuse the SCRAM logins) to be sent the password readable. A user
    who configures PLAIN still gets it: that is their choice, not discovery's."""
    return MECHANISMS_BY_STRENGTH if verifies_broker(tls) else tuple(m for m in MECHANISMS_BY_STRENGTH if m != "PLAIN")


def plain_warning(tls: ssl.SSLContext | None) -> str | None:
    """What a log says when PLAIN is used as configured (the user's choice, honoured) on a connection with this TLS
    context; None over TLS that verifies the broker."""
    if verifies_broker(tls):
        return None
    return f"the SASL mechanism PLAIN is used as configured, though {plain_withheld_reason(tls)}"


def plain_withheld_reason(tls: ssl.SSLContext | None) -> str:
    """Why discovery_choices leaves PLAIN out for this context, for messages (each caller adds its own setting)."""
    if tls is None:
        return "the connection has no TLS: PLAIN would send the password readable on the network"
    return ("the connection's TLS does not verify the broker's certificate and host name: PLAIN would hand the "
            "password to whatever answers for the broker")


# -- framing ---------------------------------------------------------------------------------------------------


def string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">h", len(data)) + data


def strings(data: bytes) -> list[str]:
    """An ARRAY of STRING: INT32 count, then each as INT16 length + UTF-8."""
    (count,), data, out = struct.unpack(">i", data[:4]), data[4:], []
    for _ in range(max(count, 0)):
        (length,) = struct.unpack(">h", data[:2])
        if length < 0 or len(data) < 2 + length:
            raise struct.error("truncated string")
        out.append(data[2:2 + length].decode("utf-8"))
        data = data[2 + length:]
    return out


def broker_address(server: str) -> tuple[str, int]:
    """(host, port) of a bootstrap server `host[:port]` (an IPv6 literal in brackets, `[::1]:9093`); without a
    port Kafka's default 9092, as kafka-python and librdkafka take it. ValueError for a port that is no number."""
    host, sep, port = server.rpartition(":")
    if not sep or "]" in port:
        host, port = server, "9092"
    return host.strip("[]"), int(port)


def exchange(sock: socket.socket, api_key: int, version: int, body: bytes, client_id: str) -> bytes:
    """Sends one request and returns the response body after its header v0 (correlation_id). Raises NotKafka when
    the answer is no Kafka response; TimeoutError and other OSErrors as the socket raises them. The socket's
    timeout bounds the whole answer, not each read: a broker dripping it a byte at a time is as late as a
    silent one (the socket's timeout is as it was afterwards)."""
    message = struct.pack(">hhi", api_key, version, CORRELATION_ID) + string(client_id) + body
    timeout = sock.gettimeout()
    deadline = time.monotonic() + timeout if timeout else None     # None: blocking; 0: non-blocking, as it was
    received = bytearray()
    try:
        # the write inside: a peer that ended the connection first (a reset, TLS's EOF) is no Kafka answer either
        sock.sendall(struct.pack(">i", len(message)) + message)
        _receive(sock, received, 8, deadline, "the connection closed before an answer")
        size, correlation = struct.unpack(">ii", received)
        if correlation != CORRELATION_ID or not 4 <= size <= MAX_ANSWER:
            raise NotKafka(bytes(received))
        _receive(sock, received, 4 + size, deadline, "the connection closed within an answer")
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ssl.SSLEOFError):
        raise NotKafka(bytes(received), "the connection was reset before an answer") from None
    finally:
        if deadline is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(timeout)
    return bytes(received[8:])


def _receive(sock: socket.socket, received: bytearray, size: int, deadline: float | None, closed: str) -> None:
    """Reads into `received` until it holds `size` bytes, by `deadline` (time.monotonic()) if one is set."""
    while len(received) < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the Kafka broker's answer did not arrive in time")
            sock.settimeout(left)
        chunk = sock.recv(min(size - len(received), 65536))
        if not chunk:
            raise NotKafka(bytes(received), closed)
        received += chunk


# -- the TLS pre-flight: why a bootstrap server gave no Kafka answer over TLS -----------------------------------

#: Words in the reason of a TLS alert by which a broker refuses the client's certificate: a missing one under TLS 1.3
#: (CERTIFICATE_REQUIRED), an untrusted, unusable, expired or revoked one (UNKNOWN_CA, BAD_CERTIFICATE, ...).
CLIENT_CERTIFICATE_ALERTS = ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED")
#: What a failed TLS handshake's reason (OpenSSL's) most likely means for a Kafka bootstrap server.
TLS_HANDSHAKE_MEANINGS = {
    "WRONG_VERSION_NUMBER": "the listener does not speak TLS; a plaintext Kafka listener is read with kafka:// or "
                            "kafka+sasl://",
    "UNEXPECTED_EOF_WHILE_READING": "the listener closed the connection during the handshake, as one that does not "
                                    "speak TLS does",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the two sides share no TLS version or cipher or, under TLS 1.2, the broker "
                                     "demands a client certificate",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the two sides share no TLS version",
}


def tls_alert(exc: BaseException) -> str | None:
    """The reason of the TLS alert an error reports (OpenSSL's name, e.g. TLSV13_ALERT_CERTIFICATE_REQUIRED), if any."""
    reason = getattr(exc, "reason", None) if isinstance(exc, ssl.SSLError) else None
    return reason if reason and "ALERT" in reason.upper() else None


def pending_tls_alert(tls: ssl.SSLSocket) -> str | None:
    """A TLS alert the peer sent before its connection ended, read after a write met that end first (the alert
    already received, the reset after it reported by the write)."""
    try:
        tls.settimeout(1)               # the connection has ended: the read returns at once
        tls.recv(1)
    except OSError as exc:
        return tls_alert(exc)
    return None


def refuses_client_certificate(reason: str) -> bool:
    """Whether a TLS error's reason is an alert by which the broker refused the client's certificate (or its absence)."""
    return "ALERT" in reason.upper() and any(word in reason.upper() for word in CLIENT_CERTIFICATE_ALERTS)


@dataclass
class TlsFindings:
    """What a TLS pre-flight (a handshake and an ApiVersions request per bootstrap server) found at servers that
    gave no Kafka answer, for the caller's error (each words its own remedy): `client_refused`, the first
    "server: alert" refusing the client's certificate (or its absence); `closed`, the first "server: why" that
    closed after the handshake without a word (a mutual-TLS broker may refuse so, or no Kafka TLS listener);
    `failures`, every other server that is no Kafka TLS listener, with what happened; `no_handshake`, each
    "server: no TLS handshake (why)" whose handshake got no TLS answer at all (handshake_unanswered). A certificate
    verification failure and a timeout after the handshake are the caller's: neither is recorded here."""

    client_refused: str | None = None
    closed: str | None = None
    failures: list[str] = field(default_factory=list)
    no_handshake: list[str] = field(default_factory=list)
    #: the first server found to be a plaintext Kafka listener (tls_handshake's PlainKafkaListener)
    plain_kafka: str | None = None

    def handshake_unanswered(self, server: str, exc: OSError, seconds: float) -> None:
        """A handshake ended by `exc`, an OSError that is no SSLError: a timeout (nothing answered the ClientHello
        within `seconds`, the connection's timeout) or the connection's end. A listener that does not speak TLS
        and waits for more (a plaintext Kafka listener reads the hello as the start of a request hundreds of MB
        long) does so, as does a broker too slow to be used; kafka-python would wait for it and then say only
        "Unable to bootstrap"."""
        why = (f"no answer to the TLS ClientHello within {seconds:g} s" if isinstance(exc, TimeoutError)
               else str(exc) or type(exc).__name__)
        self.no_handshake.append(f"{server}: no TLS handshake ({why})")

    def handshake_failed(self, server: str, exc: ssl.SSLError) -> str:
        """A handshake ended by `exc` (not an SSLCertVerificationError): a certificate alert, or OpenSSL's reason
        with its likely meaning. Returns the reason."""
        reason = exc.reason or str(exc)
        if refuses_client_certificate(reason):
            self.client_refused = self.client_refused or f"{server}: {reason}"
        else:
            meaning = TLS_HANDSHAKE_MEANINGS.get(reason)
            self.failures.append(f"{server}: the TLS handshake failed ({reason}{': ' + meaning if meaning else ''})")
        return reason

    def no_kafka_answer(self, server: str, exc: NotKafka | OSError, tls: ssl.SSLSocket) -> None:
        """The handshake succeeded, then the request (api_versions on `tls`) got no Kafka answer: `exc`, a NotKafka
        or an OSError other than a TimeoutError."""
        if isinstance(exc, NotKafka) and exc.answer:
            # an answer, but no Kafka one: another service on the port (an HTTPS server answers the request with
            # an HTTP error page)
            self.failures.append(f"{server}: the TLS handshake succeeded, but the peer did not answer as a Kafka "
                                 f"broker ({exc}, beginning {exc.answer[:8]!r})")
            return
        # Ended without answering: with a TLS alert (under TLS 1.3 a broker refuses a missing or untrusted client
        # certificate so, after the client's side of the handshake) or a bare close. When the request's write met
        # the reset that follows the alert, the alert is still there to read.
        alert = tls_alert(exc) or pending_tls_alert(tls)
        if alert and refuses_client_certificate(alert):
            self.client_refused = self.client_refused or f"{server}: {alert}"
        elif alert or not isinstance(exc, (NotKafka, ssl.SSLEOFError, ConnectionError)):
            self.failures.append(f"{server}: the TLS handshake succeeded, then the connection ended without a Kafka "
                                 f"answer ({alert or exc})")
        else:
            self.closed = self.closed or f"{server}: {exc}"


def api_versions(sock: socket.socket, client_id: str) -> bytes:
    """An ApiVersions v0 exchange: the answer body (see api_version_range)."""
    return exchange(sock, API_VERSIONS, 0, b"", client_id)


def api_version_range(answer: bytes, api_key: int) -> tuple[int, int] | None:
    """(min, max) version of `api_key` in an ApiVersions v0 answer (error_code, then an ARRAY of api_key,
    min_version, max_version); None when not listed or the answer is an error."""
    try:
        error_code, count = struct.unpack(">hi", answer[:6])
        for index in range(count if error_code == 0 else 0):
            key, low, high = struct.unpack(">hhh", answer[6 + 6 * index:12 + 6 * index])
            if key == api_key:
                return low, high
    except struct.error:
        pass
    return None


# -- telling a plaintext Kafka listener from a TLS one ----------------------------------------------------------

#: Seconds a TLS handshake may go unanswered before tls_handshake asks whether the listener is plaintext Kafka. Such a
#: listener reads the ClientHello (16 03 01 02 00 ...) as the size of a request, about 369 MB, and waits for it
#: (tansu) or, above its socket.request.max.bytes (Apache Kafka: 100 MB by default), closes the connection at once
#: with the hello unread, a reset: neither says "plaintext Kafka" by itself.
PLAIN_PROBE_AFTER = 1.0
#: Most seconds plain_kafka_listener waits for its connection and answer (a Kafka broker answers ApiVersions at once).
PLAIN_PROBE_SECONDS = 2.0


class PlainKafkaListener(Exception):
    """A TLS handshake went unanswered or was cut off, and the listener answered a Kafka request sent without TLS: it
    is a plaintext Kafka listener (tls_handshake)."""


def plain_kafka_listener(host: str, port: int, timeout: float, client_id: str) -> bool:
    """Whether host:port answers an ApiVersions v0 request sent without TLS as a Kafka broker does: an answer with the
    request's correlation id (exchange) whose body lists ApiVersions itself, or refuses v0 with UNSUPPORTED_VERSION.
    A TLS listener answers plaintext with an alert, a close or nothing, and another service does not return the
    request's correlation id in a Kafka frame: True is no guess. Nothing but the client id is sent."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            answer = api_versions(sock, client_id)
    except (OSError, NotKafka):
        return False
    if len(answer) < 2:
        return False
    return (api_version_range(answer, API_VERSIONS) is not None
            or struct.unpack(">h", answer[:2])[0] == UNSUPPORTED_VERSION)


def tls_handshake(raw: socket.socket, context: ssl.SSLContext, host: str, port: int, client_id: str) -> ssl.SSLSocket:
    """`context.wrap_socket(raw, server_hostname=host)` within raw's timeout, raising what that raises, except that a
    plaintext Kafka listener is named as soon as it can be told: when nothing answers the ClientHello for
    PLAIN_PROBE_AFTER seconds, or the connection ends during the handshake, plain_kafka_listener asks on a second
    connection, and a Kafka answer raises PlainKafkaListener. Otherwise the handshake goes on for the rest of the
    time. (A listener answering the hello with what is not TLS, WRONG_VERSION_NUMBER, is not asked: Kafka does not
    answer it.) The socket keeps raw's timeout."""
    timeout = raw.gettimeout()
    tls = context.wrap_socket(raw, server_hostname=host, do_handshake_on_connect=False)
    try:
        if not timeout:                           # blocking: no time to share with a probe
            tls.do_handshake()
            return tls
        deadline = time.monotonic() + timeout
        probe_timeout = min(PLAIN_PROBE_SECONDS, timeout)
        tls.settimeout(min(PLAIN_PROBE_AFTER, timeout))
        try:
            tls.do_handshake()
        except TimeoutError:
            if plain_kafka_listener(host, port, probe_timeout, client_id):
                raise PlainKafkaListener(f"{host}:{port}") from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            tls.settimeout(left)                  # OpenSSL resumes the handshake where it waited
            tls.do_handshake()
        except (ConnectionError, ssl.SSLEOFError):
            if plain_kafka_listener(host, port, probe_timeout, client_id):
                raise PlainKafkaListener(f"{host}:{port}") from None
            raise
        tls.settimeout(timeout)
        return tls
    except BaseException:
        tls.close()
        raise


def handshake(sock: socket.socket, mechanism: str, client_id: str) -> tuple[int, tuple[str, ...]]:
    """SaslHandshake v1: (error code, the mechanisms the broker enables)."""
    answer = exchange(sock, SASL_HANDSHAKE, 1, string(mechanism), client_id)
    try:
        return struct.unpack(">h", answer[:2])[0], tuple(strings(answer[2:]))
    except (struct.error, UnicodeDecodeError) as exc:
        raise NotKafka(answer, f"an unreadable SaslHandshake answer ({exc})") from None


def _authenticate_answer(answer: bytes) -> tuple[int, str | None, bytes]:
    """A SaslAuthenticate v0/v1 answer: error_code, error_message (NULLABLE_STRING), auth_bytes (BYTES)."""
    try:
        (error_code, length), offset = struct.unpack(">hh", answer[:4]), 4
        message = None
        if length >= 0:
            message, offset = answer[offset:offset + length].decode("utf-8", "replace"), offset + length
        (size,) = struct.unpack(">i", answer[offset:offset + 4])
    except struct.error as exc:
        raise NotKafka(answer, f"an unreadable SaslAuthenticate answer ({exc})") from None
    return error_code, message, answer[offset + 4:offset + 4 + max(size, 0)]


# -- mechanisms ------------------------------------------------------------------------------------------------


class PlainClient:
    """RFC 4616: one message, NUL user NUL password (no authorization id); the broker answers with nothing."""

    def __init__(self, username: str, password: str) -> None:
        self._message = f"\0{username}\0{password}".encode("utf-8")
        self.done = False

    def first(self) -> bytes:
        return self._message

    def receive(self, token: bytes) -> bytes | None:
        self.done = True
        return None


class ScramClient:
    """RFC 5802 client (RFC 7677 for SHA-256; Kafka's SCRAM-SHA-512 the same with SHA-512), as Kafka's
    ScramSaslClient: gs2 header "n,," (no channel binding, no authorization id), the password without SASLprep.
    `receive` raises ValueError for a server message it cannot use and for a server signature that does not verify."""

    def __init__(self, mechanism: str, username: str, password: str, nonce: str | None = None) -> None:
        self.hash_name = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
        self._password = password.encode("utf-8")
        self._nonce = nonce or base64.b64encode(os.urandom(24)).decode("ascii")
        self._client_first_bare = f"n={saslname(username)},r={self._nonce}"
        self._server_signature: bytes | None = None
        self.done = False

    def first(self) -> bytes:
        return f"n,,{self._client_first_bare}".encode("utf-8")

    def receive(self, token: bytes) -> bytes | None:
        """The server's message; returns the next client message, or None once the exchange is over."""
        text = token.decode("utf-8")
        if self._server_signature is None:
            return self._final(text)
        return self._verify(text)

    def _final(self, server_first: str) -> bytes:
        attributes = _scram_attributes(server_first)
        if "m" in attributes:
            raise ValueError("the server asks for a SCRAM extension this client does not know")
        nonce, salt, iterations = attributes.get("r", ""), attributes.get("s"), attributes.get("i", "")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise ValueError("the server's nonce does not extend the client's")
        if salt is None or not iterations.isdigit():
            raise ValueError("the server's first message has no salt or iteration count")
        if not SCRAM_ITERATIONS[0] <= int(iterations) <= SCRAM_ITERATIONS[1]:
            raise ValueError(f"the server asks for {iterations} iterations, outside Kafka's "
                             f"{SCRAM_ITERATIONS[0]} to {SCRAM_ITERATIONS[1]}")
        salted = hashlib.pbkdf2_hmac(self.hash_name, self._password, base64.b64decode(salt, validate=True),
                                     int(iterations))
        client_key = hmac.new(salted, b"Client Key", self.hash_name).digest()
        stored_key = hashlib.new(self.hash_name, client_key).digest()
        without_proof = f"c=biws,r={nonce}"            # biws: base64 of the gs2 header "n,,"
        auth_message = f"{self._client_first_bare},{server_first},{without_proof}".encode("utf-8")
        signature = hmac.new(stored_key, auth_message, self.hash_name).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", self.hash_name).digest()
        self._server_signature = hmac.new(server_key, auth_message, self.hash_name).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode('ascii')}".encode("utf-8")

    def _verify(self, server_final: str) -> None:
        attributes = _scram_attributes(server_final)
        if "e" in attributes:
            raise ValueError(f"the server ended the exchange: {attributes['e']}")
        try:
            signature = base64.b64decode(attributes.get("v", ""), validate=True)
        except ValueError:
            signature = b""
        if not signature or not hmac.compare_digest(signature, self._server_signature or b""):
            raise ValueError("the server signature does not verify: the broker does not hold this user's SCRAM "
                             "credential (or something between answers for it)")
        self.done = True
        return None


def saslname(username: str) -> str:
    """A user name as SCRAM's client-first message carries it (RFC 5802 section 5.1 "saslname"): ',' and '=' as
    =2C and =3D, which Kafka's ScramSaslServer decodes. Without it `a,b` reads as the name `a` and a broken
    attribute, `a=b` as a malformed name: the broker refuses the message."""
    return username.replace("=", "=3D").replace(",", "=2C")


#: The name scram_username_for gives a SCRAM client library to see how it sends ',' and '='.
SASLNAME_PROBE = "=,"


def scram_username_for(username: str, first_message: Callable[[str], bytes]) -> str | None:
    """The user name to hand a SCRAM client library so that the broker reads `username`: `first_message(name)` is
    the library's client-first message for `name` (with any password). A name without ',' or '=' is the same either
    way and the library is not asked. Otherwise: `username` when the library escapes them itself, saslname(username)
    when it sends names as given (kafka-python 3.0 does: its SCRAM puts `n=` + the name as is), None when its
    message for SASLNAME_PROBE is neither, or cannot be made: then no name works with it and the caller refuses the
    user name up front. The name for SCRAM only: PLAIN sends it as is, and escaped it names another user."""
    if saslname(username) == username:
        return username
    try:
        sent = first_message(SASLNAME_PROBE)
    except Exception:             # a library whose SCRAM client is not where, or not what, it was: undecided
        return None
    if not isinstance(sent, bytes):
        return None
    if sent.startswith(f"n,,n={saslname(SASLNAME_PROBE)},r=".encode("ascii")):
        return username
    if sent.startswith(f"n,,n={SASLNAME_PROBE},r=".encode("ascii")):
        return saslname(username)
    return None


def _scram_attributes(message: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise ValueError("a SCRAM message that does not parse")
        out.setdefault(key, value)
    return out


def _client(mechanism: str, username: str, password: str) -> PlainClient | ScramClient:
    return PlainClient(username, password) if mechanism == "PLAIN" else ScramClient(mechanism, username, password)


# -- the login -------------------------------------------------------------------------------------------------


def authenticate(sock: socket.socket, server: str, mechanism: str, username: str, password: str, version: int,
                 client_id: str) -> Refusal | None:
    """The SASL exchange in SaslAuthenticate requests after an accepted SaslHandshake: None when the broker
    accepted the login, the Refusal when it refused it. Raises ExchangeFailed when the client breaks it off."""
    client = _client(mechanism, username, password)
    token: bytes | None = client.first()
    while token is not None:
        answer = exchange(sock, SASL_AUTHENTICATE, version, struct.pack(">i", len(token)) + token, client_id)
        error_code, message, server_token = _authenticate_answer(answer)
        if error_code:
            said = message or "no message"
            if password:
                said = said.replace(password, "***")
            if len(said) > MAX_REFUSAL_CHARS:     # a string may be 32 KiB: it goes into logs and war rooms
                said = f"{said[:MAX_REFUSAL_CHARS]}... ({len(said):,} characters)"
            return Refusal(mechanism, ERROR_NAMES.get(error_code, f"Kafka error code {error_code}"), said)
        try:
            token = client.receive(server_token)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ExchangeFailed(server, mechanism, str(exc)) from None
    return None


def log_in(sock: socket.socket, server: str, *, versions: bytes, mechanism: str | None, username: str,
           password: str, client_id: str, reconnect: Callable[[], socket.socket] | None = None,
           choices: tuple[str, ...] = MECHANISMS_BY_STRENGTH) -> Login:
    """The SASL login on `sock`, after its ApiVersions answer `versions`. `mechanism` None: chosen from the
    broker's list among `choices` (strongest first, discovery_choices for the connection; a refused login tries
    the next one listed, on a connection from `reconnect`, which this function closes). Returns the Login; raises
    MechanismNotOffered (PlainWithheld when the broker lists PLAIN alone of them and `choices` leave it out),
    LoginRefused, ExchangeFailed, HandshakeRefused, NotKafka, or the socket's OSError.

    Mechanisms other than PLAIN and SCRAM, and brokers without SaslAuthenticate v0/v1 (versions before
    KIP-152), get the handshake only: the client's own login decides."""
    discovered = mechanism is None
    asked = mechanism or choices[0]
    error_code, offered = handshake(sock, asked, client_id)
    if error_code == UNSUPPORTED_SASL_MECHANISM and (not discovered or asked in offered):
        # configured and not enabled; or refused while listed (tansu 0.6.0 with memory storage does so)
        raise MechanismNotOffered(server, asked, offered, discovered=discovered)
    if error_code and error_code != UNSUPPORTED_SASL_MECHANISM:
        raise HandshakeRefused(server, asked, error_code)
    candidates = [m for m in choices if m in offered] if discovered else [asked]
    if discovered and error_code == 0 and asked not in candidates:
        candidates.insert(0, asked)               # accepted without being listed: take the broker at its word
    if not candidates:
        if "PLAIN" in offered and "PLAIN" not in choices:
            raise PlainWithheld(server, offered)
        raise MechanismNotOffered(server, None, offered, discovered=True)
    authenticate_versions = api_version_range(versions, SASL_AUTHENTICATE)
    if asked not in MECHANISMS_BY_STRENGTH or authenticate_versions is None or authenticate_versions[0] > 1:
        return Login(candidates[0], discovered, offered)
    version = min(authenticate_versions[1], 1)    # v2 is a flexible version: not needed here
    refusals: list[Refusal] = []
    with contextlib.ExitStack() as opened:
        current: socket.socket | None = sock if error_code == 0 else None
        for candidate in candidates:
            if current is None:
                if reconnect is None:
                    return Login(candidate, discovered, offered, refusals=refusals)
                current = opened.enter_context(reconnect())
                code, _ = handshake(current, candidate, client_id)
                if code:
                    refusals.append(Refusal(candidate, ERROR_NAMES.get(code, f"Kafka error code {code}"),
                                            "the SaslHandshake was refused"))
                    current = None
                    continue
            try:
                refusal = authenticate(current, server, candidate, username, password, version, client_id)
            except ExchangeFailed as exc:         # never tried again with a weaker mechanism: the broker is suspect
                raise ExchangeFailed(server, candidate, exc.reason, offered, discovered=discovered) from None
            if refusal is None:
                return Login(candidate, discovered, offered, refusals=refusals)
            refusals.append(refusal)
            current = None                        # the broker closes a connection after a refused login
    raise LoginRefused(server, username, refusals, offered, discovered=discovered,
                       plain_withheld=discovered and "PLAIN" in offered and "PLAIN" not in choices)
