"""Serving the gateway with uvicorn: `run()` for the CLI, `GatewayServer` (in a thread) for tests and benchmarks.

Shutdown order on SIGINT/SIGTERM (or `stop()`): stream clients get a `close` message
(`reason: server_shutdown`, `reconnect_allowed: true`) and close code 1001; uvicorn stops
accepting and finishes in-flight requests; then the lifespan drains the delivery queue, flushes
every destination and the dead letter, and closes them. A second signal forces the exit.
"""
from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
import struct
import sys
import threading
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from . import stream as stream_limits
from .app import Gateway, create_app, error
from .metrics import GatewayMetrics
from .stream import E_UNAVAILABLE
from .settings import (DEFAULT_BACKLOG, DEFAULT_MAX_CONNECTIONS, FD_RESERVE, MAX_LINGERING_REFUSALS, METRICS_TOKEN_ENV, GatewaySettings,
                       load_tokens, raise_open_files_limit)

log = logging.getLogger("wia_security.gateway")
access_log = logging.getLogger("wia_security.gateway.access")

#: Seconds uvicorn waits for in-flight requests at shutdown before cancelling them.
GRACEFUL_SHUTDOWN_SECONDS = 15
#: A connection the gateway closes whose peer then takes nothing of what is still to be written for this long is
#: aborted (a reset; its socket freed). asyncio's close() waits until the peer has taken everything buffered (over TLS,
#: also for its close_notify): a peer gone without FIN or RST, or one that stopped reading, never does, so its
#: transport (and a stream's place of --max-stream-clients) stayed until TCP gave up, minutes, or for ever against
#: a zero window. A peer still taking data is given each further interval in which it takes some. A TLS peer that
#: has acknowledged everything but does not answer the close_notify gets a FIN instead (nothing of ours is lost).
CLOSE_STALL_SECONDS = 5.0
#: Seconds a connection has to send a whole request head (the request line and headers): uvicorn waits for
#: ever, so peers that open connections and send half a request (or nothing) were held without limit.
REQUEST_HEAD_TIMEOUT_SECONDS = 10.0
#: The request line (method, target, version) is at most this long: 414 URI Too Long beyond. Room for TAXII
#: filters listing a thousand ids or versions (a 33 KB query string: tests/connectors/taxii/...long_filters).
MAX_REQUEST_LINE_BYTES = 64 * 1024
#: The request head (the request line and every header) is at most this long: 431 Request Header Fields Too Large
#: beyond. h11 alone (uvicorn's `h11_max_incomplete_event_size`, 16 KiB) looks only at a head that is still
#: incomplete after a read, so whether a head passed depended on how the network cut it (on loopback, up to a read
#: of 256 KiB passed whole), and what it refused was a 400 written just before a close that left the rest of the
#: head unread: the kernel then resets the connection, and the client saw a reset instead of the answer.
MAX_REQUEST_HEAD_BYTES = 96 * 1024
#: Seconds a connection whose request head was refused is read (and what arrives dropped) after the answer, so the
#: client can finish sending and read it: a close with unread data in the socket is a reset, and the client's
#: kernel discards the answer it has not read yet. It is closed at the peer's FIN, or after this.
REFUSED_LINGER_SECONDS = 5.0
#: The end of a request head as h11 finds it (a blank line, CRLF or bare LF).
_HEAD_END = re.compile(rb"\n\r?\n")
STREAM_PATH = "/v1/stream"
#: Retry-After (seconds) of the 503 that refuses a connection beyond --max-connections: idle connections are closed
#: after 5 s (keep-alive) or 10 s (no request head), so places come free within seconds.
CONNECTIONS_FULL_RETRY_AFTER_SECONDS = 2

if sys.platform.startswith("linux"):
    import fcntl
    import termios

    def _kernel_unacked(sock: Any) -> int:
        """Bytes written to `sock` that its peer has not acknowledged yet (SIOCOUTQ, which is TIOCOUTQ on Linux)."""
        try:
            return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        except (AttributeError, OSError, ValueError):       # no socket, or closed (fileno -1)
            return 0
else:
    def _kernel_unacked(sock: Any) -> int:
        return 0                                            # asyncio's own buffers only


class _BoundedCloseTransport:
    """The transport as uvicorn's protocols see it, except that close() has a deadline (CLOSE_STALL_SECONDS): once
    the peer takes nothing of what is left for that long, the transport is aborted and connection_lost follows (over
    TLS with nothing left unacknowledged, only the close_notify unanswered, the TCP connection is closed instead)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop,
                 metrics: GatewayMetrics | None = None) -> None:
        self.transport = transport
        # Over TLS, the TCP transport beneath: asyncio drops the TLS layer's link to it on a second close(), after
        # which the TLS transport can neither say what is unsent nor abort (uvicorn may well close twice).
        self._tcp: asyncio.Transport = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None) or transport
        self._loop = loop
        self._metrics = metrics
        # The calls made per message go straight to the transport
        self.write = transport.write
        self.is_closing = transport.is_closing
        self.get_extra_info = transport.get_extra_info
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading
        self._timer: asyncio.TimerHandle | None = None
        self._unsent = 0
        self.lost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)

    def close(self) -> None:
        self.transport.close()
        if self._timer is None and not self.lost:
            self._unsent = self.unsent()
            self._timer = self._loop.call_later(CLOSE_STALL_SECONDS, self._check)

    def unsent(self) -> int:
        """Bytes the peer has not taken yet: those still held by asyncio (over TLS, by the TLS layer and by the TCP
        transport beneath) and those in the kernel's send queue it has not acknowledged. asyncio's buffer alone
        does not show a slow reader's progress: the kernel (megabytes, autotuned) lets it write on only once a
        third of its buffer is free, so a peer steadily taking 400 KB/s left it unchanged for ~3 s at a time."""
        left = self._tcp.get_write_buffer_size() + _kernel_unacked(self._tcp.get_extra_info("socket"))
        if self._tcp is not self.transport:
            try:
                left += self.transport.get_write_buffer_size()
            except AttributeError:               # the TLS layer was dropped (a second close)
                pass
        return left

    def peer(self) -> str:
        peer = self._tcp.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"

    def _check(self) -> None:
        self._timer = None
        if self.lost:
            return
        left = self.unsent()
        if left < self._unsent:                  # the peer is still taking it: another interval
            self._unsent = left
            self._timer = self._loop.call_later(CLOSE_STALL_SECONDS, self._check)
            return
        if left == 0 and self._tcp is not self.transport:
            # A TLS peer that has acknowledged everything, our close_notify too, and does not answer it (an idle
            # keep-alive client such as requests' pool does not): nothing of ours is at risk, so the TCP connection
            # is closed normally (a FIN). A reset would be counted as an abort for a routine close, and some peers
            # (Windows) discard what they have received but not yet read when one arrives.
            log.debug("connection from %s took everything but did not answer the TLS close for %.0f s; closed",
                      self.peer(), CLOSE_STALL_SECONDS)
            self._tcp.close()                    # (already closing: its connection_lost is on its way)
            return
        log.info("connection from %s took nothing for %.0f s after it was closed (%d bytes unsent); aborted",
                 self.peer(), CLOSE_STALL_SECONDS, left)
        if self._metrics is not None:
            self._metrics.connections_aborted += 1
        self.abort()

    def abort(self) -> None:
        sock = self._tcp.get_extra_info("socket")
        try:
            # A reset: otherwise the kernel goes on trying to deliver the unsent bytes to a peer that takes none
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (AttributeError, OSError):
            pass
        self.transport.abort()
        self._tcp.abort()                        # over TLS, in case the TLS layer no longer reaches it

    def connection_lost(self) -> None:
        self.lost = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _BoundedClose:
    """For uvicorn's protocols: the transport they are given closes within CLOSE_STALL_SECONDS of a stalled peer.
    On a WebSocket upgrade the HTTP protocol hands its (already bounded) transport on."""

    transport: Any
    gateway: Gateway | None = None               # set per server (_protocol_for): its metrics count the aborts

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not isinstance(transport, _BoundedCloseTransport):
            metrics = self.gateway.metrics if self.gateway is not None else None
            transport = _BoundedCloseTransport(transport, asyncio.get_running_loop(), metrics)  # type: ignore[assignment]
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport.connection_lost()
        super().connection_lost(exc)  # type: ignore[misc]


class _WebSocketProtocol(_BoundedClose, WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, whose keepalive (ping every `ping_interval_seconds`, 1011 without a pong
    within `ping_timeout_seconds`) then ends with a bounded close: asyncio's close() alone waited for a peer that
    answers no ping to take the data still queued for it, so the gateway's stream task and its place stayed."""

    def keepalive_timeout(self) -> None:
        if self.read_paused and not (self.close_sent or self.transport.is_closing()):
            # uvicorn stops reading once a message waits for the app (the gateway handles one message at a time, a
            # publish perhaps for longer than the timeout): a pong would be waiting unread, and the peer that sent
            # that message was alive. Looked at again after another timeout; reading resumes when the app is done.
            self.pong_timer = self.loop.call_later(self.ping_timeout, self.keepalive_timeout)
            return
        if not (self.close_sent or self.transport.is_closing()):
            log.info("stream peer %s answered no ping within %g s; closing it (1011)", self.transport.peer(),
                     self.ping_timeout)
            if self.gateway is not None:
                self.gateway.metrics.stream_ping_timeouts += 1
        super().keepalive_timeout()


class _HttpProtocol(_BoundedClose, H11Protocol):
    """uvicorn's h11 protocol, plus bounds on request heads still arriving:

    - a request line over MAX_REQUEST_LINE_BYTES is answered 414 and a head over MAX_REQUEST_HEAD_BYTES 431, however
      the network cut it; a head h11 cannot parse is answered 400 with the gateway's JSON error. Each is counted
      (`wia_gateway_http_request_heads_refused_total`) and the connection is read for REFUSED_LINGER_SECONDS more,
      so the client finishes sending and gets the answer instead of a reset;
    - every request head must arrive within REQUEST_HEAD_TIMEOUT_SECONDS, or the connection is closed;
    - a stream handshake (`GET /v1/stream`) counts in `Gateway.handshakes` from its request line until its
      head is complete: one that starts while open streams plus such handshakes reach --max-stream-clients
      gets the app's answer beyond the limit (HTTP 503, Retry-After) at once, and the connection closes;
    - a connection made while --max-connections others (HTTP and stream) are open is answered 503 at once and
      closed once its client has read it (_refuse_connection).
    A subclass per server sets `gateway`."""

    gateway: Gateway  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head = False
        self._line = b""
        self._line_read = False
        self._handshake = False                  # counted in gateway.handshakes
        self._head_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._refused = False                    # answered and lingering: what arrives is dropped
        self._peer_done = False                  # the peer half-closed after a whole request (eof_received)
        gw = self.gateway
        gw.connections = self.connections        # uvicorn's set: HTTP connections, and streams once upgraded
        if len(self.connections) - len(gw.lingering_refusals) > (gw.settings.max_connections or 0):
            self._refuse_connection()
            return
        self._start_head()
        self._arm_head_timer()                   # a peer that sends nothing at all

    def _refuse_connection(self) -> None:
        """Beyond --max-connections: 503 E3003 with Retry-After before the request has arrived (the client reads it
        once it has sent its request), then closed when the client closes, or after REFUSED_LINGER_SECONDS. Refused
        connections still open are bounded (MAX_LINGERING_REFUSALS; the oldest is closed), so a flood of connections
        that never send anything holds no more descriptors than that beyond the maximum."""
        gw = self.gateway
        lingering = gw.lingering_refusals
        if len(lingering) >= MAX_LINGERING_REFUSALS:
            oldest = next(iter(lingering))
            del lingering[oldest]
            gw.metrics.connections_refused["cut_short"] += 1
            oldest.transport.abort()
        lingering[self] = None
        gw.metrics.connections_refused["answered"] += 1
        limit = gw.settings.max_connections
        self._refuse(error(503, E_UNAVAILABLE, f"the gateway has its maximum of {limit} connections open; retry "
                           "later", {"Retry-After": str(CONNECTIONS_FULL_RETRY_AFTER_SECONDS)}))

    def _start_head(self) -> None:
        self._in_head, self._line, self._line_read = True, b"", False
        self._head_seen, self._head_tail, self._head_whole = 0, b"", False

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(REQUEST_HEAD_TIMEOUT_SECONDS, self._head_timeout)

    def _end_head(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._handshake:
            self._handshake = False
            self.gateway.handshakes -= 1

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return                               # lingering after a refused head: read and dropped
        if not self._in_head and self.conn.their_state is h11.IDLE:
            self._start_head()                   # the next request on a kept-alive connection
        if self._in_head and not self._line_read:
            self._line += data[:MAX_REQUEST_LINE_BYTES + 1 - len(self._line)]
            self._line_read = b"\n" in self._line or len(self._line) > MAX_REQUEST_LINE_BYTES
        if self._in_head and not self._head_whole and self._head_too_large(data):
            return
        super().data_received(data)
        if not self._in_head:
            return
        if self.transport.get_protocol() is not self or self.conn.their_state is not h11.IDLE:
            # Complete (or already a WebSocket): the app's checks apply. Before the closing check: a WebSocket
            # protocol that refused the handshake has closed the transport, and its end is never ours to see.
            self._end_head()
            return
        if self.transport.is_closing():
            return                               # connection_lost ends the head
        # Still arriving. (Armed only now: a head that arrives whole, the usual case, costs no timer.)
        self._arm_head_timer()
        if self._line_read and not self._handshake and self._is_stream_handshake(self._line.split(b"\n", 1)[0]):
            # A stream handshake whose head is still arriving. One that arrived whole is not counted here, so
            # peers that never finish theirs cannot keep out an authenticated client whose handshake is complete.
            self._take_place()

    def _head_too_large(self, data: bytes) -> bool:
        """Measures the head with `data` (before h11 sees it); answers 414 or 431 and returns True when it is too long."""
        # The blank line that ends the head may straddle two reads: the last two bytes of the previous one are kept.
        found = _HEAD_END.search(self._head_tail + data[:2])
        end = found.end() - len(self._head_tail) if found else -1
        if found is None:
            found = _HEAD_END.search(data)
            end = found.end() if found else -1
        size = self._head_seen + (end if end >= 0 else len(data))
        self._head_whole = end >= 0
        self._head_seen, self._head_tail = size, (self._head_tail + data)[-2:]
        if b"\n" not in self._line and len(self._line) > MAX_REQUEST_LINE_BYTES:
            self._refuse_head("uri_too_long", 414, f"the request line is longer than {MAX_REQUEST_LINE_BYTES} bytes")
        elif size > MAX_REQUEST_HEAD_BYTES:
            self._refuse_head("headers_too_large", 431, "the request line and headers are longer than "
                              f"{MAX_REQUEST_HEAD_BYTES} bytes")
        else:
            return False
        return True

    def _refuse_head(self, reason: str, status: int, message: str) -> None:
        self.gateway.metrics.heads_refused[reason] += 1
        # As the access log writes a request (AccessLog): the client's address and the status, never the head
        access_log.info("%s - - %d (request refused before any route: %s)", self.transport.peer().rsplit(":", 1)[0],
                        status, reason)
        self._refuse(error(status, "E1001", message))

    def send_400_response(self, msg: str) -> None:
        """h11 could not parse the request (its head, or a chunked body): the gateway's JSON error (uvicorn's was
        text/plain, then a close that left the rest of the request unread: a reset). When an answer to this request
        has begun (the app answered before reading the body, as a refused token is), none can follow: closed."""
        if self.cycle is not None and self.cycle.response_started:
            self.gateway.metrics.heads_refused["malformed"] += 1
            self._end_head()
            self._linger()                       # so the client can still read the answer it was given
            return
        self._refuse_head("malformed", 400, "malformed HTTP request: the request line, a header or the chunked "
                          "body is not valid HTTP/1.1")

    def eof_received(self) -> bool | None:
        """The peer closed its side. After a whole request whose answer is not written yet (a client that half-closes
        once it has sent, as `nc -N` and some scripts do) the connection stays open for the answer, then closes:
        asyncio closed it at once, and the answer was lost. Otherwise (idle, a head or body cut short, lingering
        after a refusal) it closes as before."""
        if self.conn.their_state is h11.DONE and self.cycle is not None and not self.cycle.response_complete:
            self._peer_done = True
            return True
        return None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # (unless a pipelined request sent before the FIN is being answered now: its answer closes)
        if self._peer_done and self.cycle is not None and self.cycle.response_complete \
                and not self.transport.is_closing():
            self.transport.close()               # the peer sends nothing more: no keep-alive

    def connection_lost(self, exc: Exception | None) -> None:
        self.gateway.lingering_refusals.pop(self, None)
        self._end_head()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    @staticmethod
    def _is_stream_handshake(line: bytes) -> bool:
        method, _, rest = line.partition(b" ")
        target = rest.partition(b" ")[0].partition(b"?")[0]
        try:
            return method == b"GET" and unquote(target.decode("ascii")) == STREAM_PATH
        except UnicodeDecodeError:
            return False

    def _take_place(self) -> None:
        gw = self.gateway
        limit = gw.settings.max_stream_clients
        if gw.open_streams + gw.handshakes < limit:
            gw.handshakes += 1
            self._handshake = True
            return
        gw.metrics.refuse("stream", "too_many_clients")
        self._refuse(error(503, E_UNAVAILABLE, f"the gateway has its maximum of {limit} stream connections "
                           "(open or being opened); retry later",
                           {"Retry-After": str(stream_limits.STREAM_FULL_RETRY_AFTER_SECONDS)}))

    def _refuse(self, response: Any) -> None:
        """Writes `response` as a whole HTTP/1.1 answer (its head may still be arriving), then closes once the peer
        has closed its side or after REFUSED_LINGER_SECONDS, reading and dropping what it still sends meanwhile."""
        head = [b"HTTP/1.1 %d %s\r\n" % (response.status_code, HTTPStatus(response.status_code).phrase.encode())]
        headers = [(k, v) for k, v in response.raw_headers if k.lower() != b"connection"] + [(b"connection", b"close")]
        head += [k + b": " + v + b"\r\n" for k, v in headers]
        self.transport.write(b"".join(head) + b"\r\n" + response.body)
        self._end_head()
        self._linger()

    def _linger(self) -> None:
        """Closes once the peer has closed its side or after REFUSED_LINGER_SECONDS, reading and dropping what it
        sends meanwhile: a close with unread data is a reset, and the peer's kernel drops what it has not read."""
        self._refused = True
        answered = self.cycle is None or self.cycle.response_complete    # else the app is still writing its answer
        if answered and self.transport.can_write_eof():
            try:
                self.transport.write_eof()       # a FIN after the answer, for a client that reads to the end
            except OSError:
                # The peer reset meanwhile (ENOTCONN from shutdown()): nobody to answer. Raised here it was an
                # "Exception in callback" traceback at ERROR, and the refusal never armed its close timer.
                self.transport.abort()
                return
        self.transport.resume_reading()
        self._linger_timer = self.loop.call_later(REFUSED_LINGER_SECONDS, self.transport.close)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.gateway.metrics.heads_refused["timeout"] += 1
            if self._handshake:
                self.gateway.metrics.refuse("stream", "timeout")
            self._end_head()
            self.transport.close()


def _protocol_for(gateway: Gateway) -> type[H11Protocol]:
    return type("GatewayHttpProtocol", (_HttpProtocol,), {"gateway": gateway})


def _ws_protocol_for(gateway: Gateway | None) -> type[WebSocketsSansIOProtocol]:
    return type("GatewayWebSocketProtocol", (_WebSocketProtocol,), {"gateway": gateway})


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway
        self._loop: asyncio.AbstractEventLoop | None = None
        self._graceful = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            # SIGHUP re-reads the token files at once, even when they look unchanged (the watch compares
            # inode, size and times once a second); it no longer ends the process.
            self._loop.add_signal_handler(signal.SIGHUP, self._reload_tokens)
        await super().serve(sockets)

    def _reload_tokens(self) -> None:
        log.info("SIGHUP: re-reading the token files")
        asyncio.ensure_future(self.gateway.reload_tokens(force=True))

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._graceful or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._graceful = True
        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._stop_streams_then_exit()))

    async def _stop_streams_then_exit(self) -> None:
        try:
            await self.gateway.close_streams()
        finally:
            self.should_exit = True


class _NotUtf8Filter(logging.Filter):
    """uvicorn (websockets-sansio) logs a text frame that is not UTF-8 with `logger.exception`: a traceback at
    ERROR, then closes with 1007. Any client could fill the error log with them (one per connection), so the
    record becomes one line at INFO without the traceback, or nothing when INFO is not enabled."""

    MESSAGE = "Invalid UTF-8 sequence received from client."

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != self.MESSAGE:
            return True
        exc = record.exc_info[1] if record.exc_info else None
        detail = f": {exc.reason} at byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else ""
        record.msg, record.args = "stream client sent a text message that is not UTF-8%s; closed with 1007", (detail,)
        record.exc_info = record.exc_text = None
        record.stack_info = None
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def _quiet_not_utf8(logger: logging.Logger) -> None:
    if not any(isinstance(f, _NotUtf8Filter) for f in logger.filters):
        logger.addFilter(_NotUtf8Filter())


def uvicorn_config(app: Any, settings: GatewaySettings, host: str, port: int, *, fd: int | None = None,
                   ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                   log_level: str = "info", gateway: Gateway | None = None) -> uvicorn.Config:
    config = uvicorn.Config(
        app, host=host, port=port, fd=fd, lifespan="on", log_level=log_level,
        # asyncio's loop, not uvloop where it is importable ("auto"): the bounded close (_BoundedCloseTransport)
        # reads asyncio's TLS and TCP transports; uvloop's TLS transport does not lead to the TCP one beneath and
        # its buffer, and a slow HTTPS reader still taking a response was reset. The tests run on asyncio's too.
        loop="asyncio",
        # h11 with bounded request heads (_HttpProtocol) when the gateway is known
        http=_protocol_for(gateway) if gateway is not None else "h11",
        access_log=False,                      # ours (AccessLog) never logs query strings or headers
        server_header=False, proxy_headers=False,
        # h11's own bound on an incomplete head, above the gateway's (_HttpProtocol measures every head first)
        h11_max_incomplete_event_size=2 * MAX_REQUEST_HEAD_BYTES,
        ws=_ws_protocol_for(gateway), ws_max_size=settings.max_message_bytes,
        # permessage-deflate costs one compression per message per subscriber (a third of the CPU
        # of a 100-subscriber fan-out, benchmarks/bench_gateway.py): off unless asked for.
        ws_per_message_deflate=settings.ws_compression,
        ws_ping_interval=settings.ping_interval_seconds, ws_ping_timeout=settings.ping_timeout_seconds,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # Not uvicorn's limit_concurrency: it counts stream connections too (1,000 idle streams would turn every HTTP
        # request away), answers text/plain only once a request has arrived, and lets connections in meanwhile.
        # The gateway's own bound is --max-connections (_HttpProtocol._refuse_connection).
        backlog=settings.backlog,
        ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    _quiet_not_utf8(logging.getLogger("uvicorn.error"))  # after Config, which (re)configures uvicorn's loggers
    return config


def run(settings: GatewaySettings, host: str = "127.0.0.1", port: int = 8088, **options: Any) -> None:
    """Serve until SIGINT/SIGTERM (blocking). Metrics-only tokens come from $WIA_GATEWAY_METRICS_TOKENS
    unless the settings name some (the command line has no flag for them)."""
    if not settings.metrics_tokens:
        settings.metrics_tokens = load_tokens(env=METRICS_TOKEN_ENV)
    raised = raise_open_files_limit((settings.max_connections or DEFAULT_MAX_CONNECTIONS) + FD_RESERVE
                                    + 3 * max(0, settings.backlog - DEFAULT_BACKLOG))
    if raised:
        log.info("open files limit (ulimit -n) raised from %d to %d for the connection maximum", *raised)
    gateway = Gateway(settings)
    # Before uvicorn starts: a store or destination that will not open is an error the caller reports (serve: one
    # line, exit status 2), not a traceback in the lifespan and uvicorn's status 3. The lifespan finds them open.
    gateway.open()
    try:
        server = _Server(uvicorn_config(create_app(settings, gateway=gateway), settings, host, port, gateway=gateway,
                                        **options), gateway)
        server.run()
    finally:
        gateway.close()          # when uvicorn stopped before its lifespan closed it (a TLS file it cannot load)


class GatewayServer:
    """The gateway on 127.0.0.1 in a background thread, on a free port: `with GatewayServer(settings) as gw: gw.url`."""

    def __init__(self, settings: GatewaySettings, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.settings = settings
        self.gateway = Gateway(settings)
        self.app = create_app(settings, gateway=self.gateway)
        # proto IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say TCP,
        # and without it every keep-alive response waits ~40 ms for the peer's delayed ACK (Nagle).
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        options.setdefault("log_level", "warning")
        self.server = _Server(uvicorn_config(self.app, settings, host, self.port, gateway=self.gateway, **options),
                              self.gateway)
        self._thread = threading.Thread(target=self._serve, name="wia-gateway", daemon=True)
        self.error: BaseException | None = None

    def _serve(self) -> None:
        try:
            asyncio.run(self.server.serve(sockets=[self._socket]))
        except BaseException as exc:  # noqa: BLE001 - reported by start()/stop()
            self.error = exc

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1/stream"

    def start(self, timeout: float = 15.0) -> "GatewayServer":
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if self.server.started or self.error is not None or not self._thread.is_alive():
                break
            deadline.wait(0.02)
        if not self.server.started:
            raise RuntimeError(f"the gateway did not start: {self.error!r}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """The same graceful path as a signal: streams closed with 1001, queue drained, sinks flushed."""
        if self._thread.is_alive():
            self.server.handle_exit(2, None)
            self._thread.join(timeout)
        self._socket.close()
        if self.error is not None:
            raise self.error

    def kill(self) -> None:
        """Abrupt stop (for fault tests): no close messages, but the lifespan still flushes."""
        self.server.should_exit = True
        self.server.force_exit = True
        self._thread.join(30)
        self._socket.close()

    def __enter__(self) -> "GatewayServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
