"""QRadar: LEEF 2.0 (or CEF) over syslog — UDP, TCP with RFC 6587 octet counting, TLS — and offense read-back over REST.

Sink URLs: `qradar+tcp://qradar.example:514`, `qradar+udp://...:514`, `qradar+tls://...:6514?ca_file=/ca.pem`;
`syslog+tls://...?format=cef` sends CEF instead (ArcSight, Sentinel's AMA collector).

Framing (IBM "LEEF event components": the optional syslog header must follow RFC 3164 or RFC
5424): RFC 5424, because it carries a full-year timestamp with milliseconds and zone, which 3164
lacks: `<PRI>1 2025-12-14T09:30:00.000Z HOST wia-security - TYPE - LEEF:2.0|...`. PRI =
facility (default 13, log audit) * 8 + a syslog severity from the WIA band. TCP and TLS frame
each message as `LENGTH SP MESSAGE` (RFC 6587 section 3.4.1 octet counting), so nothing in a
message can split it; `framing=lf` ends each message with a line feed instead (section 3.4.2,
non-transparent framing) for a listener that splits on newlines only (LEEF and CEF lines escape
their line feeds, so none is inside a message; one that has one is dead-lettered). UDP sends one
message per datagram (RFC 5426).

Delivery: syslog has no application-level acknowledgement. An event counts as delivered when its
bytes were written to the connection (TCP/TLS) or handed to the kernel (UDP). Before each batch
the sink checks whether the server closed the connection and reconnects; a failed write is
retried on a new connection (so a message can arrive twice: at-least-once). Messages larger than
`max_message_bytes` are dead-lettered, not truncated.

`QRadarClient` reads offenses back (`GET /api/siem/offenses`, `SEC` token header, `Version`
header, `Range: items=x-y` paging answered by `Content-Range`); `offense_to_wia` makes each one a
WIA `incident`.
"""
from __future__ import annotations

import ipaddress
import select
import socket
import ssl
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import parse_qsl, urlsplit

from wia_security.errors import ConfigError, ConversionError, DeliveryError
from wia_security.formats import convert
from wia_security.formats.leef import delimiter_problem
from wia_security.kafka_sasl import refuses_client_certificate, tls_alert
from wia_security.severity import band
from wia_security.timeutil import from_epoch_ms

from .config import reveal
from .delivery.batching import Batch, BatchingSink, Outcome, classify_exception
from .delivery.policy import DeliveryPolicy, parse_retry_after
from .delivery.urls import refuse_repeated_keys, seconds, tls_options, tls_verification, warn_plain_http_secret

TRANSPORTS = ("udp", "tcp", "tls")
DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}
#: The largest UDP payload IPv4 can carry; QRadar's own limit (its "Max UDP Syslog Payload Length"
#: setting) is usually lower and truncates longer messages, so raise that setting or use TCP.
UDP_MAX_MESSAGE_BYTES = 65_507
#: Default cap on one syslog message (QRadar's largest configurable syslog payload length).
DEFAULT_MAX_MESSAGE_BYTES = 32_000
#: Bytes written per batch on a stream (one sendall).
MAX_BATCH_BYTES = 1_000_000
DEFAULT_FACILITY = 13                 # log audit (RFC 5424 table 1)
#: Seconds a graceful close waits for the server's EOF (it reads what the server sends meanwhile).
CLOSE_DRAIN_SECONDS = 2.0
#: Seconds a new TLS 1.3 connection waits for the server's first records before the first write. Under TLS 1.3
#: the client's side of the handshake ends before the server has checked the client's certificate: a server that
#: requires one (QRadar's "TLS and Client Authentication" mode, rsyslog's x509 auth modes) answers a missing or
#: untrusted one with an alert, one that accepts sends session tickets. Written at once, the first batch went into
#: a connection the server had already refused and counted as delivered (every batch, on each new connection).
TLS_CONFIRM_SECONDS = 2.0
#: Most reads of what a server sent, before a batch, looking for the EOF behind it (64 KiB each).
PEER_READS = 64
APP_NAME = "wia-security"
#: WIA severity band -> RFC 5424 severity (1 alert .. 6 informational).
SYSLOG_SEVERITY = {"emergency": 1, "critical": 2, "high": 3, "medium": 4, "low": 5, "informational": 6, "unknown": 5}
#: URL query keys besides the delivery policy's; `ca_certs` and `verify` are older spellings of ca_file and
#: tls_verify, still read
_URL_KEYS = ("format", "facility", "hostname", "tls_verify", "ca_file", "server_name", "timeout", "max_message_bytes",
             "delimiter", "framing", "ca_certs", "verify", "client_cert", "client_key")
#: TCP/TLS message framing (RFC 6587): octet counting (3.4.1) or a line feed after each message (3.4.2)
FRAMINGS = ("octet", "lf")
_OLD_TLS_KEYS = ("ca_certs", "verify")


def syslog_message(payload: str, event: dict[str, Any], *, hostname: str, facility: int = DEFAULT_FACILITY) -> bytes:
    """One RFC 5424 message (HEADER SP STRUCTURED-DATA SP MSG) carrying a LEEF/CEF line."""
    pri = facility * 8 + SYSLOG_SEVERITY[band(event.get("severity"))]
    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    msgid = str(event.get("type") or "-")[:32]
    return f"<{pri}>1 {stamp} {hostname} {APP_NAME} - {msgid} - {payload}".encode("utf-8")


def _local_hostname() -> str:
    """This machine's short name for the RFC 5424 HOSTNAME, or its address whole when its name is one (a host
    named 10.0.0.5 was sent as "10", and QRadar routes events to log sources by this field)."""
    name = socket.gethostname()
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        return name.split(".")[0]


def _header_field(value: str) -> bool:
    return 0 < len(value) <= 255 and all(33 <= ord(c) <= 126 for c in value)


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 section 3.4.1: MSG-LEN SP SYSLOG-MSG."""
    return str(len(message)).encode("ascii") + b" " + message


class SyslogSink(BatchingSink):
    """LEEF (default) or CEF lines over syslog to QRadar or any syslog receiver."""

    item_separator = b""
    max_batch_bytes = MAX_BATCH_BYTES

    def __init__(self, host: str, port: int | None = None, *, transport: str = "tcp", format: str = "leef",
                 facility: int = DEFAULT_FACILITY, hostname: str | None = None, tls_verify: bool | None = None,
                 ca_file: str | None = None, ca_certs: str | None = None, verify: bool | None = None, server_name: str | None = None, timeout: float = 10.0,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, delimiter: str | None = None,
                 framing: str = "octet", client_cert: str | None = None, client_key: str | None = None,
                 delivery: DeliveryPolicy | None = None, dead_letter: Any = None,
                 name: str | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        if transport not in TRANSPORTS:
            raise ConfigError(f"transport must be one of {', '.join(TRANSPORTS)}", key="transport")
        if framing not in FRAMINGS:
            raise ConfigError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}", key="framing")
        if framing != "octet" and transport == "udp":
            raise ConfigError("framing applies to tcp and tls (UDP sends one message per datagram)", key="framing")
        self.framing = framing
        if format not in ("leef", "cef"):
            raise ConfigError("format must be leef or cef", key="format")
        # typed here, not only in URLs: a config file's "8000" or "abc" failed every event (or the open) with a bare
        # TypeError, and timeout = 0 made the socket non-blocking
        if not _whole(facility) or not 0 <= facility <= 23:
            raise ConfigError(f"facility is a whole number 0-23, got {facility!r}", key="facility")
        if not _whole(max_message_bytes) or max_message_bytes < 1:
            raise ConfigError(f"max_message_bytes is a whole number of bytes >= 1, got {max_message_bytes!r}",
                              key="max_message_bytes")
        if isinstance(timeout, bool):
            raise ConfigError(f"must be a number of seconds, got {timeout!r}", key="timeout")
        timeout = seconds(timeout, "timeout")
        if hostname is not None and not isinstance(hostname, str):
            raise ConfigError(f"hostname is text, got {hostname!r}", key="hostname")
        port = port or DEFAULT_PORTS[transport]
        super().__init__(name=name or f"{format}+{transport}:{host}:{port}", delivery=delivery,
                         dead_letter=dead_letter, sleep=sleep)
        self.host, self.port, self.transport, self.format = host, port, transport, format
        self.facility, self.timeout = int(facility), timeout
        if hostname is not None and not _header_field(hostname):
            # RFC 5424 HOSTNAME: 1-255 printable US-ASCII, no space; anything else shifts every header field
            raise ConfigError("hostname must be 1-255 printable ASCII characters without spaces", key="hostname")
        local = _local_hostname()
        self.hostname = hostname or (local if _header_field(local) else "-")
        self.max_message_bytes = min(max_message_bytes, UDP_MAX_MESSAGE_BYTES) if transport == "udp" else max_message_bytes
        if delimiter is not None:
            # checked here, not per event: a delimiter LEEF cannot use dead-lettered every event with the reason
            if format != "leef":
                raise ConfigError(f"delimiter applies to LEEF only, and this destination's format is {format}",
                                  key="delimiter", source=self.name)
            problem = delimiter_problem(delimiter)
            if problem is not None:
                raise ConfigError(problem, key="delimiter", source=self.name)
        self.format_options = {"delimiter": delimiter} if delimiter is not None else {}
        self._sock: socket.socket | None = None
        self._tls: ssl.SSLContext | None = None
        # tls_verify / ca_file as every connector reads them (verify / ca_certs: the older spellings)
        given = {"tls_verify": tls_verify, "ca_file": ca_file, "verify": verify, "ca_certs": ca_certs,
                 "server_name": server_name, "client_cert": client_cert, "client_key": client_key}
        tls = tls_options({k: v for k, v in given.items() if k not in ("server_name", "client_cert", "client_key")})
        if transport != "tls":
            # qradar+tcp://...?ca_file=... reads as "TLS with this CA", but tcp is plain text: sending the events
            # unencrypted while a TLS option sat unused is the one outcome the user did not ask for
            written = [k for k, v in given.items() if v is not None]
            if written:
                raise ConfigError(f"{', '.join(written)} applies to TLS only, and this destination's transport is "
                                  f"{transport} (plain text); for TLS use qradar+tls:// (or syslog+tls://), or transport = \"tls\"",
                                  key=written[0], source=self.name)
        if transport == "tls":
            verification = tls_verification(self.name, *tls)      # a CA file that cannot be read: ConfigError
            self._tls = ssl.create_default_context(cafile=verification if isinstance(verification, str) else None)
            if verification is False:
                self._tls.check_hostname = False
                self._tls.verify_mode = ssl.CERT_NONE
            self.server_name = server_name or host
            self._load_client_certificate(client_cert, client_key)

    def _load_client_certificate(self, client_cert: str | None, client_key: str | None) -> None:
        """Mutual TLS: the certificate (chain) this sink presents, and its key (in `client_cert` when not given)."""
        assert self._tls is not None
        if not client_cert:
            if client_key:
                raise ConfigError("client_key needs client_cert (the certificate it belongs to)", key="client_key",
                                  source=self.name)
            return

        def encrypted() -> str:
            # without a callback OpenSSL would prompt for the passphrase on the terminal and wait there
            raise ConfigError(f"the client key {client_key or client_cert} is encrypted: give an unencrypted PEM key "
                              "readable by this user only", key="client_key" if client_key else "client_cert",
                              source=self.name)
        try:
            self._tls.load_cert_chain(client_cert, client_key or None, password=encrypted)
        except OSError as exc:      # ssl.SSLError too: a file that is no PEM certificate, or a key that does not match
            raise ConfigError(f"cannot use the client certificate {client_cert}"
                              f"{' with the key ' + client_key if client_key else ''}: "
                              f"{getattr(exc, 'reason', None) or exc.strerror or exc}", key="client_cert",
                              source=self.name) from None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "SyslogSink":
        scheme, _, rest = url.partition("://")
        transport = scheme.split("+", 1)[1].lower() if "+" in scheme else "tcp"
        parts = urlsplit(f"x://{rest}")
        if not parts.hostname:
            raise ConfigError("a syslog destination needs a host", key="url", source=f"{scheme}://")
        refuse_repeated_keys(parts.query, f"{scheme}://{parts.hostname}")     # one value per option, as every URL
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        blank = sorted(k for k, v in query.items() if v == "")      # not strip(): a tab is a LEEF delimiter
        if blank:       # `?ca_file=$CA` with CA unset: dropped, it left system CAs, the machine's name... in its place
            raise ConfigError(f"{', '.join(blank)} is given without a value", key=blank[0],
                              source=f"{scheme}://{parts.hostname}")
        policy = {k: query.pop(k) for k in list(query) if k in DeliveryPolicy.keys()}
        unknown = set(query) - set(_URL_KEYS)
        if unknown:
            names = [k for k in _URL_KEYS if k not in _OLD_TLS_KEYS]
            raise ConfigError(f"unknown syslog option(s) {', '.join(sorted(unknown))}; known: {', '.join(names)} "
                              f"(tls_verify / ca_file also as verify / ca_certs) and the delivery keys",
                              key=sorted(unknown)[0], source=f"{scheme}://{parts.hostname}")
        where = f"{scheme}://{parts.hostname}"
        twice = sorted(set(query) & set(options))
        if twice:       # as parse_sink_url: one value per option, never one silently winning
            raise ConfigError(f"given in both the URL and the options: {', '.join(twice)}", key=twice[0], source=where)
        for key, value in query.items():
            if key in ("facility", "max_message_bytes"):
                if not value.strip().isdigit():
                    raise ConfigError(f"must be a whole number, got {value!r}", key=key, source=where)
                options[key] = int(value)
            elif key == "timeout":
                options[key] = seconds(value, key, where)
            else:
                options[key] = value
        if policy:
            options["delivery"] = DeliveryPolicy.from_mapping(policy, base=options.get("delivery"))
        return cls(parts.hostname, parts.port, transport=transport, **options)

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, event: dict[str, Any]) -> bytes:
        line = convert(event, to=self.format, **self.format_options)
        message = syslog_message(line, event, hostname=self.hostname, facility=self.facility)
        if len(message) > self.max_message_bytes:
            raise ValueError(f"syslog message is {len(message):,} bytes, over the {self.max_message_bytes:,}-byte "
                             f"limit of this destination (max_message_bytes)")
        if self.transport == "udp":
            return message
        if self.framing == "lf":
            if b"\n" in message:
                raise ValueError("the syslog message holds a line feed, which framing=lf would read as the end of a "
                                 "message (use the default octet-counting framing)")
            return message + b"\n"
        return octet_counted(message)

    # -- transport ------------------------------------------------------------------------------
    def _connect(self) -> socket.socket:
        if self.transport == "udp":
            return self._udp_socket()
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_hostname=self.server_name)
                self._confirm_accepted(sock)
            except ssl.SSLCertVerificationError as exc:
                sock.close()
                raise DeliveryError(f"TLS verification failed: {exc.verify_message or exc}", sink=self.name,
                                    retryable=False) from None
            except ssl.SSLError as exc:
                sock.close()
                alert = tls_alert(exc)
                if alert and refuses_client_certificate(alert):
                    raise DeliveryError(f"the syslog server refused this sink's TLS client certificate ({alert}): it "
                                        "requires mutual TLS with a certificate it trusts; give client_cert (and "
                                        "client_key)", sink=self.name, retryable=False) from None
                raise
            except BaseException:
                sock.close()
                raise
        return sock

    def _confirm_accepted(self, sock: ssl.SSLSocket) -> None:
        """Under TLS 1.3, wait (TLS_CONFIRM_SECONDS at most) for the server's first records after the handshake: an
        alert refusing the client's certificate raises it as an ssl.SSLError, session tickets say it accepted.
        Under TLS 1.2 the server refuses within the handshake itself, and a server that sends nothing is taken
        as accepting (there is nothing else to learn from it)."""
        if sock.version() != "TLSv1.3":
            return
        readable, _, _ = select.select([sock], [], [], min(self.timeout or TLS_CONFIRM_SECONDS, TLS_CONFIRM_SECONDS))
        if not readable:
            return
        sock.setblocking(False)
        try:
            if sock.recv(4096) == b"":
                raise ConnectionResetError("the syslog server closed the TLS connection right after the handshake")
        except ssl.SSLWantReadError:
            pass                                   # session tickets only: the server accepted the connection
        finally:
            sock.settimeout(self.timeout)

    def _udp_socket(self) -> socket.socket:
        """A connected datagram socket to the first of the host's addresses that takes one: the name may resolve to
        IPv6 only, or to both families on a host without IPv6 routes (connect on UDP sends nothing: it picks the
        route, and fails at once where there is none)."""
        error: OSError | None = None
        for family, kind, proto, _, address in socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM):
            sock = socket.socket(family, kind, proto)
            try:
                sock.connect(address)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error or OSError(f"no address for {self.host}")

    def _peer_closed(self, sock: socket.socket) -> bool:
        """True when the server has closed (or reset) a stream connection. A syslog server sends no
        application data, so what is readable is EOF, TLS housekeeping (TLS 1.3 session tickets), or
        words a server wrote before closing (a banner, an error line): non-blocking reads consume them
        up to the EOF behind them. One read stopped at such words, and the next batch went into the
        closed connection, counted as delivered. A server that keeps talking is read PEER_READS times."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            sock.setblocking(False)
            try:
                for _ in range(PEER_READS):
                    if sock.recv(65536) == b"":
                        return True
                return False
            finally:
                sock.settimeout(self.timeout)
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except (OSError, ssl.SSLError):
            return True

    def _drop(self, *, graceful: bool = False) -> None:
        """Close the connection. Gracefully: end the TLS session (close_notify), send FIN, and read
        until the server's EOF, so no unread bytes (e.g. TLS tickets) turn our close into a reset
        that would make the server discard messages it has not processed yet."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if graceful and self.transport != "udp":
                sock.settimeout(CLOSE_DRAIN_SECONDS)
                if isinstance(sock, ssl.SSLSocket):
                    try:
                        sock = sock.unwrap()
                    except (OSError, ssl.SSLError, ValueError):
                        pass
                sock.shutdown(socket.SHUT_WR)
                # Bounded in total, not per read: a server that keeps sending (a byte a second) held
                # close() for as long as it went on.
                deadline = time.monotonic() + CLOSE_DRAIN_SECONDS
                while time.monotonic() < deadline and sock.recv(4096):
                    pass
        except OSError:
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def post(self, batch: Batch) -> Sequence[Outcome] | None:
        try:
            if self._sock is not None and self.transport != "udp" and self._peer_closed(self._sock):
                self._drop()
            if self._sock is None:
                self._sock = self._connect()
            if self.transport == "udp":
                for payload in batch.payloads:
                    self._sock.send(payload)
            else:
                self._sock.sendall(batch.body())
        except DeliveryError:
            self._drop()
            raise
        except (OSError, ssl.SSLError) as exc:
            self._drop()
            raise DeliveryError(f"syslog {self.transport} to {self.host}:{self.port}: {type(exc).__name__}: {exc}",
                                sink=self.name, retryable=True) from None
        return None

    def close_transport(self) -> None:
        self._drop(graceful=True)


# --- REST: offense read-back ------------------------------------------------------------------------
#: The QRadar REST API version this client asks for (the `Version` header).
API_VERSION = "20.0"
OFFENSES_PATH = "/api/siem/offenses"
DEFAULT_PAGE_SIZE = 50
#: Bounds on one page's answer: bytes, and seconds in all (requests bounds each socket read only).
MAX_PAGE_BYTES = 64 * 1024 * 1024
PAGE_SECONDS = 300.0
#: Offense status -> WIA incident status.
OFFENSE_STATUS = {"OPEN": "investigating", "HIDDEN": "triaging", "CLOSED": "closed"}
#: Namespace of the deterministic WIA ids of offenses (uuid5 of "<console host>/<offense id>").
OFFENSE_NAMESPACE = uuid.UUID("0b7c2f8e-4c3d-5a61-9e0f-7d2a1b3c4e5f")


class QRadarClient:
    """A small client for the QRadar REST API (IBM "QRadar API" reference, /siem/offenses endpoint)."""

    def __init__(self, url: str, *, token: Any, version: str = API_VERSION, tls_verify: bool | None = None,
                 ca_file: str | None = None, verify: bool | str | None = None, timeout: float = 30.0,
                 max_page_bytes: int = MAX_PAGE_BYTES, page_seconds: float = PAGE_SECONDS) -> None:
        """`tls_verify` / `ca_file` as every connector reads them; `verify` (True, False or a CA bundle's path,
        requests' name) is their older spelling, still read."""
        from .delivery.http import new_session
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_page_bytes, self.page_seconds = max_page_bytes, page_seconds
        warn_plain_http_secret(f"qradar:{urlsplit(self.url).netloc}", self.url, "SEC token")
        verification = tls_verification(f"qradar:{urlsplit(self.url).netloc}", *tls_options(
            {"tls_verify": tls_verify, "ca_file": ca_file, "verify": verify}))
        sec = reveal(token)
        if not isinstance(sec, str) or not sec.strip():
            # an empty SEC header only earns a 401 per request, read as a wrong token
            raise ConfigError("a QRadar authorized service token (SEC) is required", key="token")
        # new_session: an explicit CA path or verify=False is not overridden by REQUESTS_CA_BUNDLE
        self.session = new_session(verify=verification, headers={"SEC": sec, "Version": version,
                                                           "Accept": "application/json"})

    def __repr__(self) -> str:
        return f"<QRadarClient {urlsplit(self.url).hostname}>"

    def offenses(self, *, filter: str | None = None, fields: str | None = None, sort: str | None = None,
                 page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every offense matching `filter` (QRadar's filter syntax), fetched `page_size` at a time.

        Without `sort`, by id: `sort=+id`, `Range: items=0-<size-1>` and `filter=id > <last id read>` (and the
        caller's filter), so offenses that leave the filter while the walk goes on (closed under
        `status = "OPEN"`) shift nothing and none is skipped. With `sort`, by offset (`Range: items=x-y`
        until `Content-Range: items x-y/<total>` says it is done), which skips an offense for each one that
        leaves the filter ahead of the walk: QRadar pages have no cursor."""
        if not _whole(page_size) or page_size < 1:      # "50" raised a bare TypeError; 2.5 asked for items=0-1.5
            raise ConfigError(f"page_size is a whole number of offenses >= 1, got {page_size!r}", key="page_size")
        if sort:
            yield from self._by_offset(filter, fields, sort, page_size)
        else:
            yield from self._by_id(filter, fields, page_size)

    def _by_id(self, filter: str | None, fields: str | None, page_size: int) -> Iterator[dict[str, Any]]:
        wanted = f"items=0-{page_size - 1}"
        last: int | None = None
        while True:
            where = filter if last is None else f"id > {last}" + (f" and ({filter})" if filter else "")
            params = {k: v for k, v in (("filter", where), ("fields", _with_id(fields)), ("sort", "+id")) if v}
            where_read = f"{wanted}, after id {last}" if last is not None else wanted
            page, content_range = self._page(params, wanted, where_read)
            ids = [o["id"] for o in page if isinstance(o, dict) and _whole(o.get("id"))]
            # Paging by id trusts the server to filter and sort by it: one that does not would make the walk
            # skip offenses (a descending page ends it early) or read the same ones for ever.
            if ids != sorted(set(ids)) or (last is not None and ids and ids[0] <= last):
                past = f" past {last}" if last is not None else " (each once)"
                raise DeliveryError(f"QRadar {OFFENSES_PATH} ({where_read}): the offense ids are {_few(ids)}, not "
                                    f"ascending{past}: the server ignores sort=+id or filter=id > N",
                                    sink="qradar", retryable=False)
            if len(page) >= page_size and not ids:
                raise DeliveryError(f"QRadar {OFFENSES_PATH} ({wanted}): a full page with no numeric offense id "
                                    "to page on", sink="qradar", retryable=False)
            yield from page
            if not ids or (len(page) < page_size and not _more(content_range, len(page))):
                return
            last = ids[-1]

    def _by_offset(self, filter: str | None, fields: str | None, sort: str,
                   page_size: int) -> Iterator[dict[str, Any]]:
        params = {k: v for k, v in (("filter", filter), ("fields", fields), ("sort", sort)) if v}
        first = 0
        previous: list[Any] | None = None
        while True:
            wanted = f"items={first}-{first + page_size - 1}"
            page, content_range = self._page(params, wanted, wanted)
            start = _start(content_range)
            # A server (or proxy) that ignores Range would hand out the same page for ever.
            if (start is not None and start != first) or (start is None and page and page == previous):
                raise DeliveryError(f"QRadar {OFFENSES_PATH}: asked for {wanted} but got "
                                    f"{content_range or 'the previous page again'}: the server ignores Range",
                                    sink="qradar", retryable=False)
            previous = page
            yield from page
            total = _total(content_range)
            first += len(page)
            if not page or (total is not None and first >= total) or (total is None and len(page) < page_size):
                return

    def _page(self, params: dict[str, str], wanted: str, where: str) -> tuple[list[Any], str | None]:
        """One answer of GET /api/siem/offenses: the JSON array and its Content-Range; DeliveryError otherwise."""
        import requests

        from .delivery.http_body import read_body
        try:
            response = self.session.get(self.url + OFFENSES_PATH, params=params, timeout=self.timeout,
                                        headers={"Range": wanted}, stream=True)
            read_body(response, max_bytes=self.max_page_bytes, seconds=self.page_seconds,
                      what=f"QRadar {OFFENSES_PATH} ({where})", sink="qradar")
        except requests.RequestException as exc:
            raise _request_error(exc) from None
        if response.status_code not in (200, 206):
            retryable = response.status_code in (429, 500, 502, 503, 504)
            raise DeliveryError(f"QRadar {OFFENSES_PATH}: HTTP {response.status_code}: {_qradar_error(response)}",
                                sink="qradar", status=response.status_code, retryable=retryable,
                                retry_after=parse_retry_after(response.headers.get("Retry-After"))
                                if retryable else None)
        try:
            page = response.json()
        except ValueError:
            raise DeliveryError(f"QRadar {OFFENSES_PATH} ({where}): the answer is not JSON: "
                                f"{response.text[:120]!r}", sink="qradar", retryable=True) from None
        if not isinstance(page, list):
            raise DeliveryError(f"QRadar {OFFENSES_PATH} ({where}): expected a JSON array of offenses, "
                                f"got {type(page).__name__}", sink="qradar", retryable=False)
        return page, response.headers.get("Content-Range")

    def close(self) -> None:
        self.session.close()


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _few(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:5])) + (", ..." if len(ids) > 5 else "") if ids else "none"


def _with_id(fields: str | None) -> str | None:
    """`fields` with `id` among its top-level names (paging by id needs it); None stays None (every field)."""
    if not fields:
        return fields
    depth, names, current = 0, [], ""
    for char in fields:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            names.append(current.strip())
            current = ""
        else:
            current += char
    names.append(current.strip())
    return fields if "id" in names else f"id,{fields}"


def _request_error(exc: Exception) -> DeliveryError:
    """requests' exception as the project's error. Its text may quote the SEC token: requests refuses a header
    value with a line break or leading blank (a token file or variable with a stray newline) quoting it with
    !r; DeliveryError masks it. Network failures are retryable; a refused header or TLS failure is not."""
    import requests
    if isinstance(exc, requests.exceptions.InvalidHeader):
        return DeliveryError(f"QRadar {OFFENSES_PATH}: a request header is not valid (a line break or a leading "
                             f"blank in the SEC token?): {exc}", sink="qradar", retryable=False)
    classified = classify_exception(exc)
    retryable = classified.retryable and isinstance(exc, (requests.ConnectionError, requests.Timeout,
                                                          requests.exceptions.ChunkedEncodingError))
    return DeliveryError(f"QRadar {OFFENSES_PATH}: {classified.reason}", sink="qradar", retryable=retryable)


def _total(content_range: str | None) -> int | None:
    """`items 0-49/120` -> 120 (None when absent or `*`)."""
    if not content_range or "/" not in content_range:
        return None
    total = content_range.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def _more(content_range: str | None, count: int) -> bool:
    """Whether a page of `count` offenses whose Content-Range says `items 0-29/120` leaves more to read: a server
    may answer fewer than the Range asked for (a page limit of its own), and only the total tells such a short
    page from the last one."""
    total = _total(content_range)
    return total is not None and total > count


def _start(content_range: str | None) -> int | None:
    """`items 50-99/120` -> 50 (None when absent or unreadable)."""
    if not content_range:
        return None
    first = content_range.strip().removeprefix("items").strip().split("-", 1)[0].strip()
    return int(first) if first.isdigit() else None


def _qradar_error(response: Any) -> str:
    """QRadar's error object (`message`, `description`); any other body (a proxy's JSON array or string, an
    HTML page) as its first 200 characters: it must not raise, or the status would be lost too."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    said = " ".join(str(body[k]) for k in ("message", "description") if isinstance(body.get(k), (str, int, float)))
    return said.strip()[:500] or str(body)[:200]


#: Offense fields that are epoch milliseconds.
_TIMES = ("start_time", "last_updated_time", "last_persisted_time", "close_time")


def _malformed(offense: dict[str, Any], field: str, why: str) -> ConversionError:
    return ConversionError("qradar", f"offense {str(offense.get('id'))[:40]}: {why}", path=f"/{field}")


def _number(offense: dict[str, Any], field: str) -> float | None:
    value = offense.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        raise _malformed(offense, field, f"{field} is {str(value)[:40]!r}, not a number")
    return value


def _epoch_ms(offense: dict[str, Any], field: str) -> str | None:
    value = _number(offense, field)
    if value is None:
        return None
    try:
        return from_epoch_ms(value)
    except (OverflowError, OSError, ValueError):
        raise _malformed(offense, field, f"{field} {value!r} is not a time QRadar can have (epoch milliseconds)") from None


def _text(offense: dict[str, Any], field: str) -> str | None:
    value = offense.get(field)
    if value is None or isinstance(value, str):
        return value
    raise _malformed(offense, field, f"{field} is a {type(value).__name__}, not a string")


def offense_to_wia(offense: dict[str, Any], *, console: str) -> dict[str, Any]:
    """One QRadar offense as a WIA `incident` (QRadar severity is already 0-10). An offense record
    that is not what the API documents raises ConversionError naming the field (`path`) and why."""
    if not isinstance(offense, dict):
        raise ConversionError("qradar", f"an offense is a JSON object, not {type(offense).__name__}", path="/")
    offense_id = offense.get("id")
    if isinstance(offense_id, bool) or not isinstance(offense_id, (int, str)) or offense_id == "":
        raise _malformed(offense, "id", "an offense needs an id (a number)")
    severity = _number(offense, "severity")
    severity = 5 if severity is None else max(0, min(10, severity))
    magnitude = _number(offense, "magnitude") or 0
    priority = "critical" if magnitude >= 8 else "high" if magnitude >= 6 else "medium" if magnitude >= 3 else "low"
    created, updated, closed = (_epoch_ms(offense, "start_time"),
                                _epoch_ms(offense, "last_updated_time") or _epoch_ms(offense, "last_persisted_time"),
                                _epoch_ms(offense, "close_time"))
    status = _text(offense, "status")
    description = (_text(offense, "description") or "").strip()
    assigned = _text(offense, "assigned_to")
    categories = offense.get("categories")
    if categories is not None and not (isinstance(categories, list) and all(isinstance(c, str) for c in categories)):
        raise _malformed(offense, "categories", "categories is not a list of names")
    data: dict[str, Any] = {
        "incident_id": str(offense_id),
        "title": description or f"QRadar offense {offense_id}",
        "category": "other",
        "status": OFFENSE_STATUS.get((status or "OPEN").upper(), "new"),
        "priority": priority,
    }
    if assigned:
        data["lead_analyst"] = assigned
    if created:
        data["created_at"] = created
    if updated:
        data["updated_at"] = updated
    if closed:
        data["closed_at"] = closed
    event: dict[str, Any] = {
        "$schema": "https://wia.live/security/v1/schema.json",
        "version": "1.0.0",
        "id": str(uuid.uuid5(OFFENSE_NAMESPACE, f"{console}/{offense_id}")),
        "type": "incident",
        "timestamp": updated or created or from_epoch_ms(0),
        "severity": severity,
        "source": {"type": "siem", "name": "IBM QRadar", "vendor": "IBM"},
        "data": data,
        "meta": {"custom": {"qradar": {k: offense[k] for k in ("id", "offense_type", "offense_source", "magnitude",
                                                                "credibility", "relevance", "categories",
                                                                "event_count", "flow_count") if k in offense}}},
    }
    if categories:
        event["meta"]["tags"] = list(categories)
    return event


__all__ = ["SyslogSink", "QRadarClient", "offense_to_wia", "syslog_message", "octet_counted",
           "UDP_MAX_MESSAGE_BYTES", "DEFAULT_MAX_MESSAGE_BYTES", "API_VERSION"]
