"""Gateway settings: one dataclass with every limit named, and bearer tokens read from the environment or a file."""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field, fields
from typing import Sequence

from wia_security.errors import ConfigError

#: Largest request body accepted on the ingest endpoints (after gzip decoding too): 413 beyond.
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
#: Most values (events) one request may carry (POST /v1/events, the HEC endpoint, a stream `publish`): 413 (E1001
#: in a `publish`) beyond, before any is validated. Each refused value costs a result in the reply and a record in
#: the dead letter, several hundred bytes against the 2 of `0,`. A valid event takes 200 bytes at the very least
#: (real ones 300 bytes to kilobytes), so a body of real events within DEFAULT_MAX_BODY_BYTES stays below this.
DEFAULT_MAX_REQUEST_EVENTS = 50_000
#: Bytes of request bodies the ingest endpoints hold at once (arriving, validated, waiting for delivery): 503 with
#: Retry-After beyond (HEC code 9). A body being validated takes about 9 times its size in memory.
DEFAULT_MAX_INFLIGHT_BODY_BYTES = 64 * 1024 * 1024
#: Seconds between two pieces of a request body (POST /v1/events, HEC) after which the request is given up with 408:
#: uvicorn waits for a body for ever, so a peer gone mid-body without FIN or RST held its request for good. Between
#: pieces, not for the whole body: a slow uplink taking minutes over 10 MiB goes on as long as bytes arrive.
DEFAULT_BODY_IDLE_SECONDS = 60.0
#: Largest WebSocket message a client may send (the Phase-3 example's `max_message_size`).
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576
#: Messages queued for one stream client before the slow-consumer policy applies.
DEFAULT_CLIENT_QUEUE = 1_000
#: ... and the most characters those queued messages may hold: events can be megabytes each, so a
#: count alone would let one client that never reads hold gigabytes.
DEFAULT_CLIENT_QUEUE_BYTES = 16 * 1024 * 1024
#: Stream connections open at once; a handshake beyond it is HTTP 503 with Retry-After (the client retries).
#: Each connection may queue up to `client_queue_bytes`, so this bounds the stream's memory with it.
DEFAULT_MAX_STREAM_CLIENTS = 1_000
#: Connections (HTTP and stream together) open at once when `ulimit -n` allows it; a connection beyond is answered
#: HTTP 503 E3003 with Retry-After at once and closed. Without a bound a flood of idle or slow connections took
#: every file descriptor: then accept() fails (clients hang in the backlog) and so does every file the gateway opens
#: (the store, the dead letter, a destination's socket). An idle connection costs ~10-20 KB of memory, so 4,096
#: stay under 100 MB; 1,000 of them may be streams (DEFAULT_MAX_STREAM_CLIENTS), the rest HTTP.
DEFAULT_MAX_CONNECTIONS = 4_096
#: File descriptors kept out of `max_connections` when it is derived from `ulimit -n`: 128 for the store, the dead
#: letter, destinations' sockets, token files and logging; MAX_LINGERING_REFUSALS for connections refused beyond the
#: maximum while their 503 is read; 3 x DEFAULT_BACKLOG for bursts of connections accepted before the gateway sees
#: them (asyncio accepts a backlog's worth per wakeup, and the gateway's check runs two wakeups later).
FD_RESERVE = 384
#: Connections refused beyond `max_connections` kept open at once so their client can read the 503 (until it closes,
#: at most REFUSED_LINGER_SECONDS): beyond, the oldest of them is closed (its answer was written long ago).
MAX_LINGERING_REFUSALS = 64
#: The listening socket's queue of connections not yet accepted (the kernel caps it at net.core.somaxconn), which is
#: also how many asyncio accepts in one go before the gateway sees any of them: at uvicorn's 2,048, a burst of 400
#: connections against ulimit -n 300 took every descriptor at once (accept() failed with EMFILE 1,868 times, each an
#: ERROR traceback, accepting paused for a second each time) although the maximum was 44; at 128, still some under
#: load (three batches in flight). The gateway accepts at once and answers 503 beyond `max_connections`, so the
#: queue fills only while the event loop is stalled.
DEFAULT_BACKLOG = 64
#: Subscriptions one stream connection may hold (a `subscribe` past it is error E1001).
DEFAULT_MAX_CLIENT_SUBSCRIPTIONS = 100
#: Subscriptions all stream connections together may hold (a `subscribe` past it is error E3003). Every published
#: event is matched against every subscription on the event loop, 0.2 to 0.9 us each (measured: a filter that
#: fails early, one that matches and builds the message), and ingest waits for it: 1,000 connections of 100 would
#: be 20 to 90 ms per event. 10,000 keeps that under 10 ms and still allows 1,000 connections of 10 or 100 of 100.
DEFAULT_MAX_SUBSCRIPTIONS = 10_000
#: Subscriptions the stream connections of one token may hold together (anonymous mode: of one peer address); a
#: `subscribe` past it is error E3003, as past the gateway-wide maximum. Without it one token (a tenant, a leaked
#: credential, a client reconnecting in a loop) could take all DEFAULT_MAX_SUBSCRIPTIONS and starve every other
#: client. A tenth of the gateway's: 10 connections of 100, or 1,000 of one, per token, and ten tokens to fill it.
DEFAULT_MAX_TOKEN_SUBSCRIPTIONS = 1_000
#: Events kept for resume after a reconnect.
DEFAULT_REPLAY_EVENTS = 10_000
#: Application heartbeat on the stream (the Phase-3 example's `heartbeat_interval_seconds`).
DEFAULT_HEARTBEAT_SECONDS = 30.0
#: WebSocket ping on the stream, and how long its pong may take: a peer that answers none in time (gone without a
#: FIN or RST, a frozen process, one that stopped reading) is closed with 1011 and its place freed. The ping goes
#: behind whatever is still being written to the peer, so it is also a deadline for taking that.
DEFAULT_PING_INTERVAL_SECONDS = 20.0
DEFAULT_PING_TIMEOUT_SECONDS = 20.0
#: Client -> server stream messages per second (the Phase-3 doc's WebSocket rate limit).
DEFAULT_CLIENT_RATE = 100
#: Events waiting for the delivery thread before ingest answers 503 (HEC code 9) with Retry-After.
DEFAULT_MAX_PENDING_EVENTS = 100_000
#: Events per store/fan-out call: concurrent requests are grouped into one transaction up to this.
DEFAULT_DELIVERY_BATCH = 5_000
SLOW_CONSUMER_POLICIES = ("disconnect", "drop_oldest")
TOKEN_ENV = "WIA_GATEWAY_TOKENS"
#: Tokens accepted on GET /metrics only (a scraper needs no ingest rights); `serve` reads them from here.
METRICS_TOKEN_ENV = "WIA_GATEWAY_METRICS_TOKENS"


@dataclass
class GatewaySettings:
    tokens: Sequence[str] = ()                     # bearer tokens; empty only with allow_anonymous
    allow_anonymous: bool = False                  # explicit opt-out of auth (local development)
    store: str | None = "sqlite:///wia-events.db"  # the embedded store; None disables it (and TAXII)
    destinations: str | None = None                # TOML config with [destinations.*] (C1's format)
    extra_sinks: Sequence[str] = ()                # --to URLs
    dead_letter: str = "wia-dead-letter.ndjson"
    lenient: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_request_events: int = DEFAULT_MAX_REQUEST_EVENTS
    body_idle_seconds: float = DEFAULT_BODY_IDLE_SECONDS           # 408 when a request body stops arriving
    max_inflight_body_bytes: int = DEFAULT_MAX_INFLIGHT_BODY_BYTES  # request bodies held at once; 503 beyond
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    client_queue: int = DEFAULT_CLIENT_QUEUE
    client_queue_bytes: int = DEFAULT_CLIENT_QUEUE_BYTES
    slow_consumer: str = "disconnect"
    max_stream_clients: int = DEFAULT_MAX_STREAM_CLIENTS
    # HTTP and stream connections together; None: DEFAULT_MAX_CONNECTIONS or what `ulimit -n` allows (fit_connections)
    max_connections: int | None = None
    backlog: int = DEFAULT_BACKLOG
    max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS               # all stream connections together
    max_client_subscriptions: int = DEFAULT_MAX_CLIENT_SUBSCRIPTIONS  # one stream connection
    max_token_subscriptions: int = DEFAULT_MAX_TOKEN_SUBSCRIPTIONS    # one token's connections (anonymous: one peer)
    replay_events: int = DEFAULT_REPLAY_EVENTS
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    ping_interval_seconds: float = DEFAULT_PING_INTERVAL_SECONDS    # WebSocket pings on the stream (liveness)
    ping_timeout_seconds: float = DEFAULT_PING_TIMEOUT_SECONDS      # ... and their pong deadline (close 1011)
    client_rate: int = DEFAULT_CLIENT_RATE
    max_pending_events: int = DEFAULT_MAX_PENDING_EVENTS
    delivery_batch: int = DEFAULT_DELIVERY_BATCH
    ws_compression: bool = False                   # permessage-deflate on the stream (CPU per subscriber)
    taxii: bool = True                             # the TAXII 2.1 endpoint over the store
    taxii_title: str = "WIA Security gateway"
    metrics_tokens: Sequence[str] = ()             # accepted on GET /metrics only, beside `tokens`
    # Files of tokens, one a line, beside `tokens` / `metrics_tokens` (which cannot change at runtime): re-read
    # when they change (auth.TokenFile), so a token is added or revoked without a restart.
    token_file: str | None = None
    metrics_token_file: str | None = None
    metrics_anonymous: bool = False                # GET /metrics without a token (explicit opt-in)
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        # Not the dataclass repr, which lists the tokens (tracebacks with locals, debuggers, test failures).
        shown = [f"{f.name}=<{len(getattr(self, f.name))} token(s)>" if f.name in ("tokens", "metrics_tokens")
                 else f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)]
        return f"GatewaySettings({', '.join(shown)})"

    def check(self) -> None:
        if not self.tokens and not self.token_file and not self.allow_anonymous:
            raise ConfigError(f"no bearer token configured: set {TOKEN_ENV}, use --token-file, "
                              "or pass --allow-anonymous for local development", key="tokens")
        if self.slow_consumer not in SLOW_CONSUMER_POLICIES:
            raise ConfigError(f"must be one of {', '.join(SLOW_CONSUMER_POLICIES)}", key="slow_consumer")
        for key in ("max_body_bytes", "max_request_events", "max_inflight_body_bytes", "max_message_bytes",
                    "client_queue", "client_queue_bytes", "replay_events", "client_rate",
                    "max_pending_events", "delivery_batch", "max_stream_clients", "max_subscriptions",
                    "max_client_subscriptions", "max_token_subscriptions", "backlog"):
            if getattr(self, key) < 1:
                raise ConfigError("must be at least 1", key=key)
        if self.max_connections is not None:
            if self.max_connections < 2:
                raise ConfigError("must be at least 2 (a stream and an HTTP request)", key="max_connections")
            # (the default stream maximum is lowered to fit instead: fit_connections)
            if self.max_stream_clients >= self.max_connections and self.max_stream_clients != DEFAULT_MAX_STREAM_CLIENTS:
                raise ConfigError(f"must be below the connection maximum ({self.max_connections}): the difference is "
                                  "what HTTP requests (ingest, queries, health checks) always have",
                                  key="max_stream_clients")
        for key in ("heartbeat_seconds", "ping_interval_seconds", "ping_timeout_seconds", "body_idle_seconds"):
            value = getattr(self, key)
            # No way to turn it off: without it a vanished peer holds its place until TCP gives up (or for ever).
            if not (isinstance(value, (int, float)) and 0 < value < float("inf")):
                raise ConfigError("must be a number of seconds above 0", key=key)
        if any(len(t) < MIN_TOKEN_CHARS for t in [*self.tokens, *self.metrics_tokens]):
            raise ConfigError(f"tokens must be at least {MIN_TOKEN_CHARS} characters", key="tokens")


def fit_connections(settings: GatewaySettings, open_files: int | None) -> list[str]:
    """Sets `max_connections` when it is None (DEFAULT_MAX_CONNECTIONS, or `open_files` - FD_RESERVE when that is
    less) and lowers the default `max_stream_clients` to three quarters of it when it would leave HTTP no room.
    `open_files`: the process's soft RLIMIT_NOFILE (None: unknown). Returns what it changed, to log; raises ConfigError
    when a maximum given explicitly does not fit."""
    notes: list[str] = []
    # a backlog above the default takes its excess out of the room too (asyncio accepts that many at once)
    reserve = FD_RESERVE + 3 * max(0, settings.backlog - DEFAULT_BACKLOG)
    room = None if open_files is None else open_files - reserve
    if settings.max_connections is None:
        if room is not None and room < 2 * 16:
            raise ConfigError(f"the process may open only {open_files} files (ulimit -n), {reserve} of them kept "
                              "for the store, destinations, refused connections and the backlog: raise ulimit -n to "
                              f"at least {reserve + 32}", key="max_connections")
        settings.max_connections = DEFAULT_MAX_CONNECTIONS if room is None else min(DEFAULT_MAX_CONNECTIONS, room)
        if settings.max_connections < DEFAULT_MAX_CONNECTIONS:
            notes.append(f"at most {settings.max_connections} connections at once: the process may open {open_files} "
                         f"files (ulimit -n) and keeps {reserve} for itself; raise ulimit -n for more")
    elif room is not None and settings.max_connections > room:
        raise ConfigError(f"{settings.max_connections} connections need more files than the process may open "
                          f"({open_files}, ulimit -n; {reserve} are kept for the store, destinations, refused "
                          f"connections and the backlog): at most {room}, or raise ulimit -n", key="max_connections")
    if settings.max_stream_clients >= settings.max_connections:
        if settings.max_stream_clients != DEFAULT_MAX_STREAM_CLIENTS:
            raise ConfigError(f"must be below the connection maximum ({settings.max_connections}): the difference is "
                              "what HTTP requests (ingest, queries, health checks) always have",
                              key="max_stream_clients")
        settings.max_stream_clients = max(1, settings.max_connections * 3 // 4)
        notes.append(f"at most {settings.max_stream_clients} stream connections (not {DEFAULT_MAX_STREAM_CLIENTS}): "
                     f"the rest of the {settings.max_connections} connections is kept for HTTP requests")
    return notes


def open_files_limit() -> int | None:
    """The soft RLIMIT_NOFILE (`ulimit -n`), or None where there is none (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_files_limit(needed: int) -> tuple[int, int] | None:
    """Raises the soft RLIMIT_NOFILE towards `needed` (at most the hard limit), as servers do: the soft limit is 1,024
    by default on most Linux systems, below what the gateway's defaults need. Not further: a library calling select()
    fails on descriptors above 1,023. Returns (before, after) when it changed."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return None
        return soft, target
    return None


#: Shortest token accepted (from any source).
MIN_TOKEN_CHARS = 16


class NotARegularFile(OSError):
    """A token file that is a FIFO, a device, a directory or a socket: reading one may block for ever."""


_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISDIR, "a directory"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _require_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
        raise NotARegularFile(errno.EINVAL, f"it is {kind}, not a regular file")


def read_token_file(path: str) -> list[str]:
    """Tokens in a file, one per line (blank lines and # comments skipped). Raises OSError (NotARegularFile for
    a FIFO, a device, a directory: opening a FIFO blocks until a writer comes, and a read from one or from a device
    may never end, which stopped the token-reader thread for good). Never logged."""
    _require_regular(os.stat(path).st_mode)   # not opened at all when it is not a regular file
    # O_NONBLOCK: a FIFO put there after the stat does not block the open either (and is refused by fstat)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        _require_regular(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    with open(fd, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip() and not line.lstrip().startswith("#")]


def load_tokens(*, env: str = TOKEN_ENV, path: str | None = None) -> list[str]:
    """Tokens from a file (one per line, # comments) and/or the environment (comma-separated). Never logged."""
    tokens: list[str] = []
    if path:
        try:
            tokens += read_token_file(path)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"cannot read the token file: {reason}", key="token_file", source=path) from None
    value = os.environ.get(env, "")
    tokens += [t.strip() for t in value.split(",") if t.strip()]
    return tokens
