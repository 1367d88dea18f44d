"""WebSocket client for the gateway's `/v1/stream`: subscribe with filters, reconnect with backoff and jitter, resume by sequence.

    async with StreamClient("wss://gw.example/v1/stream", token=token,
                            subscriptions=[StreamSubscription("alerts", severity_min=7)]) as client:
        async for item in client.events():
            handle(item.event)                      # a WIA event dict; item.sequence orders them

Reconnects: on a dropped connection (network, gateway restart, slow-consumer close 4008) the
client waits a full-jitter exponential backoff (at least the server's `reconnect_delay_seconds`, or the
`Retry-After` of an HTTP 503 at the handshake, either capped at `max_backoff`: a misconfigured or
hostile server cannot park the client for hours),
reconnects, and subscribes again with `resume: {stream_id, sequence}` = the last event it saw.
The gateway replays what the client missed from its replay buffer; events are de-duplicated by
sequence, so `events()` yields each at most once and in order. What cannot be replayed (the
gateway restarted, or the buffer no longer reaches back) is reported in `gaps` and to `on_gap`;
backfill those from `GET /v1/events`. A consumer that persists (item.stream_id, item.sequence) of each event
it handled starts again where it stopped with `StreamClient(..., resume_from=(stream_id, sequence))`.
A 401/403 at the handshake is not retried (StreamAuthError; with `token_file=` a 401 waits for the file to hold
another token, so a rotation goes on without a restart), nor is a gateway certificate that does not verify, a
redirect from wss:// to ws:// or an HTTP proxy refusing the tunnel (403, 407: StreamError); a 400, 404, 405 or
426 (a wrong URL, a proxy without WebSocket support), or a WebSocket server that does not answer the
subscription, ends in StreamError after a few tries (PERMANENT_HANDSHAKE_STATUSES). The client's position is its
last event's or heartbeat's sequence; its own keepalive (ping_interval, ping_timeout) leaves a dead peer; publish()
keeps to the limits the gateway's `subscribed` reply states (message size, messages per second).
Built on `websockets` (the asyncio API).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import ssl as _ssl
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Sequence
from urllib.parse import unquote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (ConnectionClosed, InvalidHandshake, InvalidProxy, InvalidProxyStatus, InvalidStatus,
                                   InvalidURI, SecurityError)
from websockets.proxy import get_proxy
from websockets.uri import WebSocketURI, parse_uri

from wia_security.errors import WiaError
from wia_security.redact import remember, remember_basic_auth, remember_proxy_credentials

log = logging.getLogger("wia_security.connectors.websocket_client")

PROTOCOL_VERSION = "1.0"
DEFAULT_INITIAL_BACKOFF = 0.5
DEFAULT_MAX_BACKOFF = 30.0
#: The client's own keepalive (websockets' ping): a gateway that answers no ping within DEFAULT_PING_TIMEOUT of
#: one sent every DEFAULT_PING_INTERVAL seconds (a network cut, a NAT or proxy that dropped the flow without a
#: FIN, a frozen process) is closed with 1011 and reconnected to, instead of read from for ever.
DEFAULT_PING_INTERVAL = 20.0
DEFAULT_PING_TIMEOUT = 20.0
#: The gateway's default `max_message_size`; larger server messages close the connection (1009).
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: request_id of the subscribe message: an error carrying it means the subscription itself was refused.
SUBSCRIBE_REQUEST_ID = "subscribe"
#: The gateway's "unavailable" error: a refusal that a later try may not get (docs/connectors/gateway.md, Errors).
UNAVAILABLE_CODE = "E3003"
#: Entries kept in each of stats.errors, stats.gaps and stats.close_codes (the latest; the `*_total`
#: counters count them all): a client lives for months, and a buggy or hostile server can send errors or
#: unusable messages without end. STATS_MESSAGE_CHARS: an error's message kept at most this long.
STATS_KEPT = 1000
STATS_MESSAGE_CHARS = 500


class StreamError(WiaError):
    """The stream cannot go on (auth refused, reconnect attempts exhausted, server said not to reconnect)."""


class StreamAuthError(StreamError):
    def __init__(self, status: int, url: str = "", token_file: str = "", waited: float = 0.0) -> None:
        self.status = status
        where = f" at {url}" if url else ""
        # The gateway answers 401 to a missing or wrong token; 403 (an empty body) is how it (Starlette) refuses a
        # WebSocket handshake on a path it does not serve.
        hint = "; or a path the gateway does not serve: its stream is /v1/stream" if status == 403 else ""
        if token_file:
            hint += (f"; read from {token_file}, which held no other token within {waited:g} s: "
                     "write the gateway's new token there")
        super().__init__(f"the gateway{where} refused the token (HTTP {status}){hint}")


#: Handshake answers no retry can mend: the URL is not a WebSocket endpoint that takes this request (400, 404,
#: 405) or a proxy on the way does not pass the upgrade (426). Retried a few times only, because a load
#: balancer answers 404 for a while during a deploy: `StreamError` after PERMANENT_REFUSALS_FIRST such
#: answers in a row when the URL has never opened a stream (a misconfiguration, found within seconds at
#: start), after PERMANENT_REFUSALS_AFTER_CONNECT (minutes at the default backoff) when it has (a route
#: changing under a deploy). 5xx, 429 and connection errors are retried as before.
PERMANENT_HANDSHAKE_STATUSES = frozenset({400, 404, 405, 426})
PERMANENT_REFUSALS_FIRST = 3
PERMANENT_REFUSALS_AFTER_CONNECT = 20
#: With `token_file`: seconds a client whose token was refused (HTTP 401: revoked in a rotation, the
#: connection closed with 4001) waits for the file to hold another token before StreamAuthError. A secret
#: volume (Kubernetes) can bring the new version a minute after the gateway dropped the old token.
TOKEN_FILE_WAIT_SECONDS = 120.0
#: How often the file is looked at meanwhile.
TOKEN_FILE_POLL_SECONDS = 1.0
#: An HTTP proxy's answers to CONNECT that no retry can mend: it wants credentials or refused the ones in its
#: URL (407, 401), or its rules do not let this client reach the gateway's host and port (403). `StreamError`
#: at once; they were taken for network failures and retried for ever, logged at INFO only. A proxy's 400, 404,
#: 405 or 501 (it does not do CONNECT) counts as a permanent handshake answer; its 5xx and 429 are retried.
PROXY_REFUSALS = frozenset({401, 403, 407})
PROXY_PERMANENT_STATUSES = frozenset({400, 404, 405, 501})


@dataclass
class StreamSubscription:
    """One subscription: a channel (events, alerts, threat_intel, ...) and optional filters."""

    channel: str = "events"
    event_types: Sequence[str] | None = None
    severity_min: float | None = None
    severity_max: float | None = None
    severity: Sequence[str] | None = None          # band names: informational ... emergency
    tags: Sequence[str] | None = None              # any of these in meta.tags
    categories: Sequence[str] | None = None        # data.category

    def to_wire(self) -> dict[str, Any]:
        filters = {k: (list(v) if isinstance(v, (list, tuple, set, frozenset)) else v)
                   for k, v in self.__dict__.items() if k != "channel" and v is not None}
        return {"channel": self.channel, "filters": filters}


@dataclass
class StreamEvent:
    sequence: int
    channel: str
    event: dict[str, Any]
    subscription_ids: list[str]
    timestamp: str
    stream_id: str


@dataclass
class StreamStats:
    connects: int = 0
    reconnects: int = 0
    events: int = 0
    duplicates_skipped: int = 0
    replayed: int = 0
    dropped_by_server: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)      # the latest STATS_KEPT of each
    gaps: list[dict[str, Any]] = field(default_factory=list)
    close_codes: list[int | None] = field(default_factory=list)
    errors_total: int = 0
    gaps_total: int = 0

    def record_error(self, msg: dict[str, Any]) -> None:
        """An error the server sent or a message the client could not use: its code, request id and
        message (cut to STATS_MESSAGE_CHARS), never the whole message, which may be megabytes."""
        self.errors_total += 1
        entry = {k: msg[k] for k in ("action", "code", "request_id") if k in msg}
        entry["message"] = str(msg.get("message", ""))[:STATS_MESSAGE_CHARS]
        _keep(self.errors, entry)

    def record_gap(self, info: dict[str, Any]) -> None:
        self.gaps_total += 1
        _keep(self.gaps, info)

    def record_close(self, code: int | None) -> None:
        _keep(self.close_codes, code)


def _keep(entries: list[Any], entry: Any) -> None:
    entries.append(entry)
    if len(entries) > STATS_KEPT:
        del entries[:len(entries) - STATS_KEPT]


class StreamClient:
    def __init__(self, url: str, *, token: Any = None, subscriptions: Sequence[StreamSubscription] = (StreamSubscription(),),
                 reconnect: bool = True, initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
                 max_backoff: float = DEFAULT_MAX_BACKOFF, max_attempts: int | None = None,
                 client_id: str | None = None, open_timeout: float = 10.0, ssl: _ssl.SSLContext | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 on_gap: Callable[[dict[str, Any]], None] | None = None,
                 resume_from: tuple[str, int] | None = None, proxy: str | bool | None = True,
                 token_file: str | os.PathLike[str] | None = None,
                 token_file_wait: float = TOKEN_FILE_WAIT_SECONDS, ping_interval: float = DEFAULT_PING_INTERVAL,
                 ping_timeout: float = DEFAULT_PING_TIMEOUT) -> None:
        """`resume_from`: (stream_id, sequence) of the last event a consumer handled, as it persisted them from
        a StreamEvent: the first connection resumes there, so a restarted consumer gets what it missed, once.
        `proxy`: True (the default) takes it from the environment (HTTPS_PROXY, ALL_PROXY, ... and NO_PROXY, as
        websockets reads them), a URL (`http://user:password@proxy:3128`) names one, None goes direct.
        `token_file`: instead of `token`, a file holding it (its first line that is not blank or a `#` comment),
        read at each handshake: a token rotated there is used from the next reconnect on, and a 401 is waited
        out for `token_file_wait` seconds in case the file is about to change."""
        if not subscriptions:
            raise ValueError("at least one subscription")
        stream_id, last_sequence = _resume_point(resume_from)
        self.url = url
        self._ws_uri = _stream_uri(url)
        self.proxy = proxy
        # websockets quotes a proxy URL whole in its errors (InvalidProxy), credentials and all.
        remember_proxy_credentials(proxy if isinstance(proxy, str) else None)
        if token is not None and token_file is not None:
            raise ValueError("give token or token_file, not both")
        for name, value in (("ping_interval", ping_interval), ("ping_timeout", ping_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                # None would turn the keepalive off: a dead gateway would then look like a quiet stream for ever
                raise ValueError(f"{name} must be a number of seconds above 0, not {value!r}")
        self.ping_interval = float(ping_interval)
        self.ping_timeout = float(ping_timeout)
        self._token = token.reveal() if hasattr(token, "reveal") else token
        remember(self._token)
        self.token_file = os.fspath(token_file) if token_file is not None else None
        self.token_file_wait = token_file_wait
        user_info = urlsplit(url)
        if user_info.password:                   # websockets sends it as Basic auth, unquoted
            remember_basic_auth(unquote(user_info.username or ""), unquote(user_info.password))
        self.subscriptions = list(subscriptions)
        self.reconnect = reconnect
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        self.client_id = client_id
        self.open_timeout = open_timeout
        self.ssl = ssl
        self.max_message_bytes = max_message_bytes
        self.on_gap = on_gap
        self.stream_id: str | None = stream_id
        self.last_sequence = last_sequence
        self.subscription_ids: list[str] = []
        self._closed_at: int | None = None      # the `sequence` of the current stream's last close message
        self.stats = StreamStats()
        self._ws: ClientConnection | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._pending: dict[str, asyncio.Future] = {}
        self._request_seq = 0
        self._resume_sent = False
        self._subscribed_here = False             # this connection's `subscribed` reply has arrived
        self._ever_subscribed = False             # some connection's subscription was answered: the URL is right
        self._unanswered = False                  # this connection's subscription got no answer in open_timeout
        self._no_reply_close: asyncio.Future | None = None
        # The gateway's limits for this connection's messages, from its `subscribed` reply's config
        self._server_max_message: int | None = None
        self._pacer: RequestPacer | None = None

    def __repr__(self) -> str:
        return f"<StreamClient {self.safe_url}>"

    @property
    def safe_url(self) -> str:
        """The URL as shown in repr() and errors: scheme://host:port/path, never user info (websockets sends it
        as Basic auth) nor a query (it may carry a token)."""
        return _safe(self.url)

    async def __aenter__(self) -> "StreamClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closing = True
        self._closed.set()
        if self._ws is not None:
            await self._ws.close()

    # --- the event stream ---
    async def events(self) -> AsyncIterator[StreamEvent]:
        attempt = 0
        refusals = 0                                    # permanent-looking handshake answers since a stream opened
        while not self._closing:
            server_delay = 0.0
            reconnect_allowed = True
            subscribed_at: float | None = None
            self._unanswered = False
            watchdog: asyncio.TimerHandle | None = None
            try:
                async with self._connect() as ws:
                    if self._closing:
                        # close() came during the handshake, when there was no connection for it to close:
                        # going on would read (and yield) events for ever after it.
                        return
                    self._ws = ws
                    self.stats.connects += 1
                    if self.stats.connects > 1:
                        self.stats.reconnects += 1
                    await ws.send(json.dumps(self._subscribe_message()))
                    # A WebSocket server that is not the gateway (another service at a wrong URL, an echo) answered
                    # no subscription and the client waited on it for ever, a quiet stream.
                    watchdog = asyncio.get_running_loop().call_later(self.open_timeout, self._no_reply, ws)
                    async for raw in ws:
                        msg = self._decode(raw)
                        if msg is None:
                            continue
                        action = msg.get("action")
                        if action == "event":
                            item = self._accept_event(msg)
                            if item is not None:
                                attempt = 0                  # a working stream resets the backoff
                                yield item
                        elif action == "subscribed":
                            # Not a reset by itself: a server (or a proxy) closing right after the reply would
                            # be asked again within initial_backoff for ever, max_attempts never reached.
                            subscribed_at = time.monotonic()
                            watchdog.cancel()
                            refusals = 0
                            self._ever_subscribed = True
                            self._on_subscribed(msg)
                        elif action == "close":
                            # Capped: a server asking for hours (misconfigured or hostile) must not park the client.
                            server_delay = min(_number(msg.get("reconnect_delay_seconds")), self.max_backoff)
                            reconnect_allowed = bool(msg.get("reconnect_allowed", True))
                            if msg.get("stream_id") == self.stream_id and isinstance(msg.get("sequence"), int):
                                self._closed_at = msg["sequence"]
                        elif action == "dropped":
                            self.stats.dropped_by_server += int(_number(msg.get("count")))
                            self._gap({"status": "dropped", "count": msg.get("count"), "after": self.last_sequence})
                        elif action == "error":
                            self.stats.record_error(msg)
                            log.warning("stream error %s: %s", msg.get("code"),
                                        str(msg.get("message"))[:STATS_MESSAGE_CHARS])
                            if msg.get("request_id") == SUBSCRIBE_REQUEST_ID:
                                if msg.get("code") == UNAVAILABLE_CODE:
                                    # Busy, not wrong (the gateway's subscription cap, a replay still being
                                    # written, a shutdown): asked again over the reconnect backoff.
                                    break
                                # Reconnecting would send the same subscription and be refused again.
                                raise StreamError(f"the gateway refused the subscription: {msg.get('code')}: "
                                                  f"{msg.get('message')}")
                            self._settle(msg)
                        elif action in ("published", "unsubscribed", "pong"):
                            self._settle(msg)
                        elif action == "heartbeat":
                            self._on_heartbeat(msg)
                    self.stats.record_close(ws.close_code)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status == 401 and self.token_file is not None:
                    refused = self._token
                    log.warning("stream: the gateway at %s refused the token read from %s (HTTP 401); waiting up to %g s "
                                "for the file to hold another", self.safe_url, self.token_file, self.token_file_wait)
                    changed = await self._token_file_changed(refused)
                    if self._closing:
                        return
                    if changed:
                        log.info("stream: the token in %s changed after HTTP 401; reconnecting with it", self.token_file)
                        continue                 # at once, and not a failed attempt: the refusal is answered
                    raise StreamAuthError(status, self.safe_url, self.token_file, self.token_file_wait) from None
                if status in (401, 403):
                    raise StreamAuthError(status, self.safe_url) from None
                log.warning("stream handshake at %s refused with HTTP %s", self.safe_url, status)
                if status in PERMANENT_HANDSHAKE_STATUSES:
                    refusals += 1
                    allowed = PERMANENT_REFUSALS_AFTER_CONNECT if self._ever_subscribed else PERMANENT_REFUSALS_FIRST
                    if refusals >= allowed:
                        raise StreamError(f"the stream handshake at {self.safe_url} was answered HTTP {status} "
                                          f"{refusals} times in a row: not the gateway's stream endpoint (its path "
                                          "is /v1/stream), or a proxy that does not pass WebSocket upgrades") from None
                # The gateway answers 503 with Retry-After when it shuts down or has its maximum of stream
                # connections: waited for, capped like reconnect_delay_seconds.
                server_delay = min(_retry_after(exc.response.headers.get("Retry-After")), self.max_backoff)
            except ConnectionClosed as exc:
                self.stats.record_close(exc.rcvd.code if exc.rcvd else None)
                # Said once per drop: a keepalive timeout (1011 sent, nothing received) left no line at all
                log.info("stream connection to %s closed: %s", self.safe_url, exc)
                if exc.sent is not None and exc.sent.code == 1009 and exc.rcvd_then_sent is not True:
                    # This client refused a message as too big: a resume would bring the same one back.
                    raise StreamError(f"the gateway sent a message larger than max_message_bytes "
                                      f"({self.max_message_bytes}); raise it to read this stream") from None
            except _ssl.SSLCertVerificationError as exc:
                # Not a network failure (it is an OSError too): the gateway's certificate is not trusted, or not
                # for this host. Retrying cannot mend that, and a peer impersonating the gateway showed only as
                # INFO lines of a client retrying for ever.
                raise StreamError(f"TLS verification of the gateway failed: {exc.verify_message or exc} (give "
                                  "ssl= a context trusting its CA; verification stays on)") from None
            except InvalidProxy as exc:
                # A proxy URL websockets cannot use: its message quotes the URL, credentials and all.
                raise StreamError(f"the proxy {_safe(exc.proxy)} for {self.safe_url} cannot be used: {exc.msg}") from None
            except InvalidProxyStatus as exc:
                status = exc.response.status_code
                proxy = self._proxy_shown()
                where = f"a tunnel to {self._ws_uri.host}:{self._ws_uri.port}"
                if status in PROXY_REFUSALS:
                    why = ("it wants credentials, or refused those in its URL (http://user:password@host:port)"
                           if status in (401, 407) else "its rules do not allow this host and port, or this client")
                    raise StreamError(f"the HTTP proxy {proxy} refused {where} (HTTP {status}): {why}; "
                                      "the stream cannot reach the gateway through it") from None
                log.warning("the HTTP proxy %s answered HTTP %s to %s", proxy, status, where)
                if status in PROXY_PERMANENT_STATUSES:
                    refusals += 1
                    if refusals >= PERMANENT_REFUSALS_FIRST:
                        raise StreamError(f"the HTTP proxy {proxy} answered HTTP {status} to {where} {refusals} times "
                                          "in a row: it does not open tunnels (CONNECT) to this gateway") from None
            except SecurityError as exc:
                # websockets refused the handshake for safety (a redirect from wss:// to ws://, a limit passed):
                # the same answer would come back each time.
                raise StreamError(f"the gateway's handshake was refused: {exc}") from None
            except (OSError, asyncio.TimeoutError, InvalidHandshake) as exc:
                log.info("stream connection failed: %s", exc)
            finally:
                if watchdog is not None:
                    watchdog.cancel()
                self._ws = None
                self._pacer = None
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(StreamError("the connection closed before the reply"))
                self._pending.clear()
            if self._closing:
                return
            if self._unanswered:
                refusals += 1
                log.warning("stream: %s accepted the WebSocket but did not answer the subscription within %g s",
                            self.safe_url, self.open_timeout)
                if refusals >= (PERMANENT_REFUSALS_AFTER_CONNECT if self._ever_subscribed else PERMANENT_REFUSALS_FIRST):
                    raise StreamError(f"{self.safe_url} accepted the WebSocket but did not answer the subscription "
                                      f"within {self.open_timeout:g} s, {refusals} times in a row: not the gateway's "
                                      "stream endpoint (its path is /v1/stream)?")
            if subscribed_at is not None and time.monotonic() - subscribed_at >= self.max_backoff:
                attempt = 0                              # a quiet stream that stayed up is a working one too
            if not self.reconnect or not reconnect_allowed:
                raise StreamError("the stream closed and reconnecting is off (or the server said not to)")
            attempt += 1
            if self.max_attempts is not None and attempt > self.max_attempts:
                raise StreamError(f"gave up after {self.max_attempts} reconnect attempts")
            try:                                 # close() ends the wait at once
                await asyncio.wait_for(self._closed.wait(), self.reconnect_delay(attempt, server_delay))
            except asyncio.TimeoutError:
                pass

    def _no_reply(self, ws: ClientConnection) -> None:
        """The subscription got no answer within open_timeout: the connection is closed and counted as a refusal."""
        self._unanswered = True
        # Kept: the event loop holds tasks weakly, and one collected before it ran would leave the connection open
        self._no_reply_close = asyncio.ensure_future(ws.close(1000, "no reply to the subscription"))

    def reconnect_delay(self, attempt: int, server_delay: float = 0.0) -> float:
        """Seconds to wait before reconnect `attempt` (1-based). The jitter added to a server's delay is drawn
        up to that delay (at most max_backoff), not up to this attempt's backoff ceiling: on a first attempt
        that was initial_backoff (0.5 s), so every client of a gateway restart (its close message says 5 s)
        came back within the same half second."""
        if server_delay > 0:
            return reconnect_wait(server_delay, self.max_backoff)
        return reconnect_wait(0.0, backoff_ceiling(self.initial_backoff, self.max_backoff, attempt))

    def _proxy_shown(self) -> str:
        """The proxy this client goes through, as shown in errors: scheme://host:port, never its credentials."""
        proxy = get_proxy(self._ws_uri) if self.proxy is True else self.proxy
        return _safe(proxy) if isinstance(proxy, str) else "(none)"

    def _read_token_file(self) -> str:
        """The token in `token_file`: its first line that is not blank or a comment. StreamError naming the file
        and what is wrong with it, never its content."""
        path = str(self.token_file)
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(64 * 1024)
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise StreamError(f"the stream's token file {path} cannot be read: {why}") from None
        token = next((line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")),
                     None)
        if token is None:
            raise StreamError(f"the stream's token file {path} holds no token (blank lines and # comments only)")
        remember(token)
        return token

    async def _token_file_changed(self, refused: str | None) -> bool:
        """Whether `token_file` comes to hold another token than `refused` within `token_file_wait` seconds (or
        until close()). A file that is briefly unreadable or empty while it is rewritten counts as unchanged."""
        deadline = time.monotonic() + self.token_file_wait
        while not self._closing:
            try:
                if self._read_token_file() != refused:
                    return True
            except StreamError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._closed.wait(), min(TOKEN_FILE_POLL_SECONDS, left))
            except asyncio.TimeoutError:
                pass
        return False

    def _connect(self) -> Any:
        if self.token_file is not None:
            # Each handshake: a rotated token is taken on the next one. A file unusable for a moment (rewritten in
            # place) after a token was read leaves that one in use; a wrong one is then a 401, waited out above.
            try:
                self._token = self._read_token_file()
            except StreamError as exc:
                if self._token is None:
                    raise
                log.warning("%s; the token read before is used", exc)
        headers = {"X-WIA-Protocol-Version": PROTOCOL_VERSION}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if self.client_id:
            headers["X-WIA-Client-ID"] = self.client_id
        kwargs: dict[str, Any] = {"additional_headers": headers, "open_timeout": self.open_timeout,
                                  "max_size": self.max_message_bytes, "proxy": self.proxy,
                                  "ping_interval": self.ping_interval, "ping_timeout": self.ping_timeout}
        if self.proxy is True:
            remember_proxy_credentials()          # the environment's, as websockets reads them now
        if self.ssl is not None:
            kwargs["ssl"] = self.ssl
        return connect(self.url, **kwargs)

    def _subscribe_message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"action": "subscribe", "subscriptions": [s.to_wire() for s in self.subscriptions],
                               "request_id": SUBSCRIBE_REQUEST_ID}
        self._resume_sent = self.stream_id is not None
        self._subscribed_here = False
        if self._resume_sent:
            msg["resume"] = {"stream_id": self.stream_id, "sequence": self.last_sequence}
        return msg

    def _on_heartbeat(self, msg: dict[str, Any]) -> None:
        """The gateway queues a heartbeat behind every event before it, so its `sequence` is where this client's
        position stands even when its filters matched none of the events since the last it got. Without this a
        rare-event subscription resumed from its last event after a drop, far behind the replay buffer, and
        reported as a gap events it had never been meant to get."""
        sequence = msg.get("sequence")
        # Only once this connection is subscribed: one queued before the `subscribed` reply precedes the replay.
        if (self._subscribed_here and msg.get("stream_id") == self.stream_id and isinstance(sequence, int) and not isinstance(sequence, bool)
                and sequence > self.last_sequence):
            self.last_sequence = sequence

    def _on_subscribed(self, msg: dict[str, Any]) -> None:
        self.subscription_ids = _strings(msg.get("subscription_ids"))
        config = msg.get("config") if isinstance(msg.get("config"), dict) else {}
        size, rate = config.get("max_message_size"), config.get("rate_limit_per_second")
        self._server_max_message = int(size) if _number(size) >= 1 else None
        self._pacer = RequestPacer(float(rate)) if _number(rate) >= 1 else None
        resume = msg.get("resume")
        if not isinstance(resume, dict):
            resume = None
        new_stream = msg.get("stream_id")
        self._subscribed_here = True
        if resume is None and self._resume_sent:
            # A gateway (or something in front of it) that ignored the resume: what it missed cannot be known.
            resume = {"status": "resume_not_answered", "replayed": 0}
        if resume is not None:
            self.stats.replayed += int(_number(resume.get("replayed")))
            if resume.get("status") != "complete":
                info = {**resume, "after": self.last_sequence, "stream_id": self.stream_id}
                if resume.get("status") == "unknown_stream" and self._closed_at is not None:
                    # The old stream's close message said where it ended: `closed_at` == `after`
                    # means nothing of the old stream was missed.
                    info["closed_at"] = self._closed_at
                self._gap(info)
        if resume is not None and resume.get("status") == "resume_not_answered":
            self.stream_id = new_stream           # live events from here, as on a first connection
            self.last_sequence = int(_number(msg.get("sequence")))
        elif new_stream != self.stream_id:
            # First connection: live events from here. The gateway restarted (a resume was sent): it
            # replays its new stream from the start, so every sequence of it is new to this client.
            self.stream_id = new_stream
            self.last_sequence = 0 if resume is not None else int(_number(msg.get("sequence")))
        missed_to = resume.get("missed_to") if resume is not None else None
        if isinstance(missed_to, int) and not isinstance(missed_to, bool) and missed_to > self.last_sequence:
            # Reported once: a drop before the next event must not resume from before the gap and report it again.
            self.last_sequence = missed_to
        self._closed_at = None

    def _decode(self, raw: str | bytes) -> dict[str, Any] | None:
        """A server message as a dict; anything else is recorded in stats.errors and skipped."""
        try:
            msg = json.loads(raw)
        except ValueError as exc:                 # also UnicodeDecodeError of a binary frame
            msg = {"code": "client", "message": f"the gateway sent a message that is not JSON: {exc}"}
        else:
            if isinstance(msg, dict) and (msg.get("action") != "event" or (
                    isinstance(msg.get("sequence"), int) and isinstance(msg.get("event"), dict))):
                return msg
            msg = {"code": "client", "message": "the gateway sent a message this client does not understand: "
                   f"{str(raw)[:200]}"}
        self.stats.record_error({"action": "error", **msg})
        log.warning("stream: %s", msg["message"])
        return None

    def _accept_event(self, msg: dict[str, Any]) -> StreamEvent | None:
        sequence = msg["sequence"]
        if msg.get("stream_id", self.stream_id) == self.stream_id and sequence <= self.last_sequence:
            self.stats.duplicates_skipped += 1
            return None
        self.last_sequence = sequence
        self.stats.events += 1
        return StreamEvent(sequence, msg.get("channel", ""), msg["event"], _strings(msg.get("subscription_ids")),
                           msg.get("timestamp", ""), msg.get("stream_id", self.stream_id or ""))

    def _gap(self, info: dict[str, Any]) -> None:
        self.stats.record_gap(info)
        log.warning("stream gap: %s", info)
        if self.on_gap is not None:
            self.on_gap(info)

    # --- requests on the open connection (publish, unsubscribe) ---
    async def publish(self, events: Sequence[dict[str, Any]], timeout: float = 30.0) -> dict[str, Any]:
        """Send events to the gateway over the stream; returns its `published` reply (per-event results).

        Needs `events()` to be running (it reads the replies)."""
        return await self._request({"action": "publish", "events": list(events)}, timeout)

    async def _request(self, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self._ws is None:
            raise StreamError("not connected")
        self._request_seq += 1
        request_id = f"r{self._request_seq}"
        text = json.dumps({**msg, "request_id": request_id})      # events that are not JSON: TypeError, nothing kept
        limit = self._server_max_message
        if limit is not None and len(text) > limit:        # json.dumps writes ASCII only: characters are bytes
            # The gateway would close the connection with 1009: every subscription's stream broken for one request,
            # and the caller told only that the connection closed.
            raise StreamError(f"this {msg.get('action')} is {len(text)} bytes as JSON; the gateway "
                              f"takes at most {limit} per message (max_message_size): send fewer events at a "
                              "time, or POST them to /v1/events")
        pacer = self._pacer
        if pacer is not None:
            await pacer.take()
        ws = self._ws
        if ws is None or pacer is not self._pacer:
            raise StreamError("the connection closed before the request was sent")
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            # Inside the try: a send that fails (the connection closed under it) left its entry behind until
            # the connection ended, one more per failed publish.
            try:
                await ws.send(text)
            except ConnectionClosed as exc:
                raise StreamError(f"the connection closed before the request was sent ({exc})") from None
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(request_id, None)

    def _settle(self, msg: dict[str, Any]) -> None:
        future = self._pending.pop(str(msg.get("request_id")), None)
        if future is None or future.done():
            return
        if msg.get("action") == "error":
            future.set_exception(StreamError(f"{msg.get('code')}: {msg.get('message')}"))
        else:
            future.set_result(msg)


#: Share of the gateway's rate_limit_per_second a client's requests keep to: messages sent evenly can still
#: arrive bunched (the gateway reads a connection's next message only once the last is handled).
PACE_SHARE = 0.9


class RequestPacer:
    """The gateway's token bucket for a connection (`rate` messages a second, bursts up to `rate`), mirrored on the
    client side so its requests never pass it: past it the gateway answers E3002, and after 10 seconds' worth of
    refusals closes with 4029. A caller publishing one event at a time, each awaited, went past 100 a second on
    a near gateway."""

    def __init__(self, rate: float) -> None:
        self.rate = rate * PACE_SHARE
        self.capacity = max(1.0, rate - 1)       # the subscribe message took one
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:               # callers in turn: concurrent publishes share the bucket
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


def _safe(url: str) -> str:
    """scheme://host:port/path of `url`: no user info (credentials), query or fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a URL that cannot be parsed)"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _stream_uri(url: str) -> WebSocketURI:
    """`url` checked as websockets will read it: its own error (InvalidURI) quotes the URL whole, with a password
    in its user info or a token in its query, and came only from events(), once the consumer was running."""
    try:
        return parse_uri(url)
    except InvalidURI as exc:
        raise ValueError(f"the stream URL {_safe(url)} cannot be used: {exc.msg} "
                         "(ws://host:port/v1/stream or wss://...)") from None
    except ValueError as exc:               # a port out of range, a bad IPv6 literal (urllib's messages name no part)
        raise ValueError(f"the stream URL {_safe(url)} cannot be used: {exc}") from None


def _resume_point(resume_from: Any) -> tuple[str | None, int]:
    """(stream_id, sequence) to start from; (None, 0) for live events only."""
    if resume_from is None:
        return None, 0
    if not (isinstance(resume_from, (tuple, list)) and len(resume_from) == 2):
        raise ValueError("resume_from must be (stream_id, sequence), as in the last StreamEvent handled")
    stream_id, sequence = resume_from
    if not isinstance(stream_id, str) or not stream_id:
        raise ValueError(f"resume_from: the stream_id must be a non-empty string, not {stream_id!r}")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise ValueError(f"resume_from: the sequence must be an integer >= 0, not {sequence!r}")
    return stream_id, sequence


#: Doublings of the backoff counted at most: 2 ** 1024 no longer fits a float (OverflowError), which a
#: gateway away for about four hours (~1,024 failed attempts at the defaults) used to raise out of events().
MAX_DOUBLINGS = 1000


def backoff_ceiling(initial: float, maximum: float, attempt: int) -> float:
    """The upper bound of the full-jitter wait before reconnect `attempt` (1-based): `initial` doubled per
    failed attempt, at most `maximum`, however many attempts have failed."""
    return min(maximum, initial * 2 ** min(attempt - 1, MAX_DOUBLINGS))


def reconnect_wait(server_delay: float, ceiling: float) -> float:
    """Seconds to wait before reconnecting: full jitter up to `ceiling`, or the server's delay plus a
    jitter of up to as much again (bounded by `ceiling`), so that clients a restart or a refusal sent
    away together do not all come back at the same instant."""
    if server_delay > 0:
        return server_delay + random.uniform(0, min(ceiling, server_delay))
    return random.uniform(0, ceiling)


def _retry_after(value: str | None) -> float:
    """Retry-After in seconds (its HTTP-date form is not used by the gateway and counts as 0)."""
    try:
        return _number(float(value)) if value is not None else 0.0
    except ValueError:
        return 0.0


def _strings(value: Any) -> list[str]:
    """A list of ids from a server message; what is not a list of strings counts as none (a number there ended
    events() with TypeError)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _number(value: Any) -> float:
    """A count or delay from a server message; 0 for anything that is not a non-negative finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        return 0.0
    return float(value)
