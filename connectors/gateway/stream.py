"""The WebSocket stream `/v1/stream`: subscriptions with filters, a replay buffer for resume, bounded per-client queues.

Wire protocol (docs/connectors/gateway.md): JSON text messages keyed by `action`, the Phase-3
spec's dialect (`subscribe` / `subscribed` / `event` / `heartbeat` / `close`), extended with
filters by event type, severity min/max and tags, `unsubscribe`, `publish`, `resume`. The upstream
Python/TypeScript SDK dialect (`{"type": ..., "payload": ...}`) is accepted too: a connection whose
first message has `type` instead of `action` is answered in that dialect.

Publishing never waits for a client: each event is offered to every connection's bounded queue.
A full queue is the slow-consumer case: policy `disconnect` closes the connection with code 4008
(the client resumes from its last sequence out of the replay buffer); `drop_oldest` drops the
oldest queued messages and tells the client how many in a `dropped` message. A resume's replay is
one queue entry (`Backlog`) written out event by event, so it may be longer than the queue.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

from wia_security import jsonio
from wia_security.errors import ParseError
from wia_security.severity import BAND_NAMES, band
from wia_security.timeutil import now_iso

from .settings import (DEFAULT_CLIENT_QUEUE_BYTES, DEFAULT_MAX_CLIENT_SUBSCRIPTIONS, DEFAULT_MAX_SUBSCRIPTIONS,
                       DEFAULT_MAX_TOKEN_SUBSCRIPTIONS)

log = logging.getLogger("wia_security.gateway.stream")

PROTOCOL_VERSION = "1.0"

#: channel -> the WIA event type it carries (None: every type)
CHANNELS: dict[str, str | None] = {
    "events": None,
    "alerts": "alert",
    "threat_intel": "threat_intel",
    "vulnerabilities": "vulnerability",
    "incidents": "incident",
    "network_events": "network_event",
    "endpoint_events": "endpoint_event",
    "auth_events": "auth_event",
}
EVENT_TYPES = tuple(t for t in CHANNELS.values() if t)
FILTER_KEYS = ("event_types", "severity_min", "severity_max", "severity", "tags", "categories")
#: The SDK dialect's camelCase filter keys.
SDK_FILTER_KEYS = {"eventTypes": "event_types", "severityMin": "severity_min", "severityMax": "severity_max",
                   "tags": "tags"}

# Close codes (RFC 6455 section 7.4; 4000-4999 are ours).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001           # the gateway shuts down; reconnect later
CLOSE_POLICY = 1008               # unauthorized
CLOSE_TOO_BIG = 1009              # a client message above max_message_size
CLOSE_SLOW_CONSUMER = 4008        # the client's queue overflowed (policy "disconnect"); resume to catch up
CLOSE_RATE_LIMITED = 4029         # the client kept sending past the rate limit
CLOSE_TOKEN_REVOKED = 4001        # the connection's token was removed from the token file (as HTTP 401)

# Error codes: the Phase-3 doc's table.
E_INVALID_MESSAGE = "E1001"
E_NOT_FOUND = "E3001"
E_RATE_LIMITED = "E3002"
E_UNAVAILABLE = "E3003"
E_INTERNAL = "E5001"

#: Subscriptions one connection may hold by default (`Hub.max_client_subscriptions`, --max-client-subscriptions):
#: every published event is matched against each of them on the event loop, so an unbounded number would let one
#: client slow the stream for everyone. All connections together: `Hub.max_subscriptions` (--max-subscriptions).
#: An `unsubscribe` may name no more ids or channels than a connection may hold subscriptions (repeats gain
#: nothing, and a megabyte of them used to be matched one by one on the event loop).
MAX_SUBSCRIPTIONS = DEFAULT_MAX_CLIENT_SUBSCRIPTIONS
#: Retry-After (seconds) of the HTTP 503 that refuses a stream handshake beyond --max-stream-clients.
STREAM_FULL_RETRY_AFTER_SECONDS = 5
#: Client messages longer than this (characters) are parsed in a worker thread, not on the event loop:
#: a 1.5 MB `publish` took ~70 ms to parse, and every other connection waited. Shorter ones (pings,
#: subscribes) stay on the loop, where parsing costs less than the hand-over to a thread.
PARSE_IN_THREAD_CHARS = 64 * 1024
#: Most JSON text the replay buffer keeps (characters, as for the client queues), beside its
#: `replay_events` count: 10,000 events of a megabyte each would otherwise hold 10 GB.
MAX_REPLAY_BYTES = 256 * 1024 * 1024
#: Filter matches (events x subscriptions) done between two yields to the event loop, by a resume (replayed records x
#: new subscriptions) and by publishing (events x every subscription of every connection): a million took 0.35 s to
#: 1.2 s, which every other connection waited for.
MATCHES_PER_YIELD = 20_000
#: Seconds a client whose queue overflowed may take to accept the message being written before it is
#: dropped without the 4008 close frame: a peer that stopped reading (its window is zero) would
#: otherwise hold the connection, its tasks and its socket buffer forever.
SLOW_CONSUMER_CLOSE_SECONDS = 10.0
#: At shutdown, seconds a client gets to take what is queued for it before the `close` message.
SHUTDOWN_DRAIN_SECONDS = 3.0
#: Keys each action's message may carry: a typo must not change what the message does (an
#: `unsubscribe` with `subscription_id` used to remove every subscription, a `subscribe` with
#: `filter` or `channels` to subscribe to every event).
MESSAGE_KEYS = {
    "subscribe": {"action", "request_id", "subscriptions", "channel", "filters", "resume"},
    "unsubscribe": {"action", "request_id", "subscription_ids", "channels"},
}
RESUME_KEYS = ("stream_id", "sequence")


class FilterError(ValueError):
    """A client message the gateway refuses; `code` is the error code sent back (E1001 unless said)."""

    def __init__(self, message: str, code: str = E_INVALID_MESSAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Filter:
    event_types: frozenset[str] | None = None
    severity_min: float | None = None
    severity_max: float | None = None
    bands: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    categories: frozenset[str] | None = None

    @classmethod
    def parse(cls, doc: Any) -> "Filter":
        if doc is None:
            return cls()
        if not isinstance(doc, dict):
            raise FilterError("filters must be an object")
        unknown = sorted(set(doc) - set(FILTER_KEYS))
        if unknown:
            raise FilterError(f"unknown filter key(s) {', '.join(unknown)}; known: {', '.join(FILTER_KEYS)}")
        f = cls()
        if doc.get("event_types") is not None:
            types = _strings(doc["event_types"], "event_types")
            bad = sorted(set(types) - set(EVENT_TYPES))
            if bad:
                raise FilterError(f"unknown event type(s) {', '.join(bad)}")
            f.event_types = frozenset(types)
        for key in ("severity_min", "severity_max"):
            value = doc.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10:
                    raise FilterError(f"{key} must be a number from 0 to 10")
                setattr(f, key, float(value))
        if f.severity_min is not None and f.severity_max is not None and f.severity_min > f.severity_max:
            raise FilterError(f"severity_min ({doc['severity_min']}) is greater than severity_max "
                              f"({doc['severity_max']}): the filter would match nothing")
        if doc.get("severity") is not None:
            bands = _strings(doc["severity"], "severity")
            bad = sorted(set(bands) - set(BAND_NAMES))
            if bad:
                raise FilterError(f"unknown severity band(s) {', '.join(bad)}; known: {', '.join(BAND_NAMES)}")
            f.bands = frozenset(bands)
        if doc.get("tags") is not None:
            f.tags = frozenset(_strings(doc["tags"], "tags"))
        if doc.get("categories") is not None:
            f.categories = frozenset(_strings(doc["categories"], "categories"))
        return f

    def matches(self, rec: "Record") -> bool:
        if self.event_types is not None and rec.type not in self.event_types:
            return False
        if self.severity_min is not None and rec.severity < self.severity_min:
            return False
        if self.severity_max is not None and rec.severity > self.severity_max:
            return False
        if self.bands is not None and rec.band not in self.bands:
            return False
        if self.tags is not None and not (rec.tags & self.tags):        # any tag matches
            return False
        if self.categories is not None and rec.category not in self.categories:
            return False
        return True


def _strings(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FilterError(f"{key} must be a list of strings")
    if not value:
        raise FilterError(f"{key} is an empty list, which would match nothing (leave it out to match any)")
    return value


@dataclass
class Subscription:
    id: str
    channel: str
    event_type: str | None
    filter: Filter

    def matches(self, rec: "Record") -> bool:
        return (self.event_type is None or rec.type == self.event_type) and self.filter.matches(rec)


@dataclass(slots=True)
class Record:
    """One published event: what filters look at and its JSON text (serialized once for all clients).
    Not the event's dict: in the replay buffer it would take several times the text's memory."""

    sequence: int
    type: str
    severity: float
    band: str
    tags: frozenset[str]
    category: str | None
    timestamp: str
    json: str


@dataclass(slots=True)
class Backlog:
    """The events replayed for a resume, in the client's queue as one entry and rendered one at a time
    when the sender reaches them: a replay can be far larger than the queue (10,000 events against
    1,000), which used to close every resuming client with 4008 before it saw `subscribed`. The
    records are held by the replay buffer anyway. A connection may have at most `replay_events` of
    them waiting (a client resuming again and again without reading must not pin memory)."""

    records: collections.deque[Record]
    subscriptions: list[Subscription]


def make_record(sequence: int, event: dict[str, Any], published: str) -> Record:
    meta = event.get("meta") or {}
    data = event.get("data") or {}
    severity = event.get("severity", 0)
    category = data.get("category") if isinstance(data, dict) else None
    return Record(sequence, event.get("type", ""), float(severity), band(severity),
                  frozenset(t for t in meta.get("tags", ()) if isinstance(t, str)) if isinstance(meta, dict) else frozenset(),
                  category if isinstance(category, str) else None, published, jsonio.dumps(event))


class Hub:
    """Every connected stream client, the sequence counter, and the replay buffer."""

    def __init__(self, *, replay_events: int, client_queue: int, slow_consumer: str,
                 client_queue_bytes: int = DEFAULT_CLIENT_QUEUE_BYTES, replay_bytes: int | None = None,
                 max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS,
                 max_client_subscriptions: int = DEFAULT_MAX_CLIENT_SUBSCRIPTIONS,
                 max_token_subscriptions: int = DEFAULT_MAX_TOKEN_SUBSCRIPTIONS) -> None:
        self.stream_id = uuid.uuid4().hex        # a new id per gateway process: sequences restart
        self.sequence = 0
        self.replay: collections.deque[Record] = collections.deque(maxlen=replay_events)
        self.replay_bytes = MAX_REPLAY_BYTES if replay_bytes is None else replay_bytes
        self.replay_chars = 0                    # JSON text in the replay buffer
        self.client_queue = client_queue
        self.client_queue_bytes = client_queue_bytes     # characters, counted with len(): cheap and close enough
        self.slow_consumer = slow_consumer
        self.max_subscriptions = max_subscriptions
        self.max_client_subscriptions = max_client_subscriptions
        self.max_token_subscriptions = max_token_subscriptions
        self.subscriptions = 0                   # held by the connections not yet ended (Client.release)
        # ... per owner (Client.owner: a token's digest, or an anonymous peer's address); no key at 0
        self.owner_subscriptions: collections.Counter[str] = collections.Counter()
        # `subscribe` messages refused: reason -> count (connection_limit: E1001, token_limit and gateway_limit: E3003)
        self.subscribes_refused = collections.Counter({"connection_limit": 0, "token_limit": 0, "gateway_limit": 0})
        self.clients: set[Client] = set()
        self.published = 0
        self.deliveries = 0
        self.slow_disconnects = 0
        self.dropped = 0                         # policy drop_oldest: messages dropped from queues
        self.discarded = 0                       # policy disconnect: messages queued for a client it closed

    async def publish(self, events: Iterable[dict[str, Any]]) -> None:
        """Called on the event loop after events were accepted. Never waits for a client.

        Between slices of a quarter of a client queue (in messages or in size) it yields to the
        loop once, so the senders of clients that keep up drain their queues into their sockets:
        one large request must not look like a slow consumer (a 1,500-event POST used to close
        every subscriber with 4008)."""
        published = now_iso()
        clients = list(self.clients)
        matches = sum(len(c.subscriptions) for c in clients)     # filter matches per event
        slice_events = max(1, self.client_queue // 4)
        slice_chars = max(1, self.client_queue_bytes // 4)
        count = chars = work = 0
        for event in events:
            self.sequence += 1
            rec = make_record(self.sequence, event, published)
            self._keep(rec)
            self.published += 1
            for client in clients:
                client.offer(rec)
            count += 1
            chars += len(rec.json)
            work += matches
            # also after MATCHES_PER_YIELD matches: 100 connections of 100 subscriptions (any token holder may open
            # them) made a slice of 250 events 2.5 million matches, and a 1,000-event POST held the loop 12 s
            if count >= slice_events or chars >= slice_chars or work >= MATCHES_PER_YIELD:
                count = chars = work = 0
                await asyncio.sleep(0)
                clients = list(self.clients)     # who connected or subscribed meanwhile gets the rest
                matches = sum(len(c.subscriptions) for c in clients)

    def _keep(self, rec: Record) -> None:
        """Appends to the replay buffer, evicting the oldest beyond its count or its size (the newest always stays)."""
        replay = self.replay
        if len(replay) == replay.maxlen:
            self.replay_chars -= len(replay[0].json)     # append() evicts it
        replay.append(rec)
        self.replay_chars += len(rec.json)
        while self.replay_chars > self.replay_bytes and len(replay) > 1:
            self.replay_chars -= len(replay.popleft().json)

    def replay_after(self, sequence: int) -> tuple[list[Record], bool]:
        """Records after `sequence` still buffered, and whether none in between was evicted."""
        if not self.replay:
            return [], sequence >= self.sequence
        oldest = self.replay[0].sequence
        complete = sequence >= oldest - 1
        if sequence >= self.sequence:
            return [], True
        start = max(0, sequence - oldest + 1)
        return list(self.replay)[start:], complete


class Client:
    """One WebSocket connection: its subscriptions, its bounded queue, its dialect."""

    def __init__(self, hub: Hub, send_text: Callable[[str], Awaitable[None]], *, client_id: str | None,
                 owner: str | None = None) -> None:
        self.hub = hub
        self.send_text = send_text
        self.id = client_id or f"client-{uuid.uuid4().hex[:12]}"
        # Whose subscriptions these are, for --max-token-subscriptions (owner_of); by default this connection alone.
        self.owner = owner or f"connection {uuid.uuid4().hex}"
        self.dialect = "action"                  # or "sdk" (upstream SDK's type/payload messages)
        self.subscriptions: dict[str, Subscription] = {}
        self.queue: collections.deque[str | Backlog] = collections.deque()
        self.queued_chars = 0
        self.wakeup = asyncio.Event()
        self.dropped_pending = 0
        self.overflowed = False
        # (close code, the final message built when it is sent) set at shutdown
        self.closing: tuple[int, Callable[[], str]] | None = None
        self.close_event = asyncio.Event()
        self.overflow_event = asyncio.Event()     # set with `overflowed`, or when drop_oldest drops
        self.stuck = False                       # dropped while a write to it was blocked
        self.replaying: Backlog | None = None    # the backlog the sender is writing out
        self.sent = 0
        self.credential: str | None = None       # the token it connected with (never logged or shown)
        self.revoked = False                     # that token was revoked: closing with CLOSE_TOKEN_REVOKED

    def __repr__(self) -> str:
        return f"<Client {self.id}>"

    def revoke(self, message: Callable[[], str]) -> None:
        """Its token was revoked: nothing more is offered or written, only `message`, then CLOSE_TOKEN_REVOKED."""
        self.revoked = True
        self.hub.clients.discard(self)
        self.queue.clear()
        self.queued_chars = 0
        if self.replaying is not None:
            self.replaying.records.clear()
        self.closing = (CLOSE_TOKEN_REVOKED, message)
        self.close_event.set()
        self.wakeup.set()

    def close_with(self, code: int, message: Callable[[], str]) -> None:
        self.closing = (code, message)
        self.close_event.set()
        self.wakeup.set()                        # the sender drains the queue, then stops

    def queued_messages(self) -> int:
        return sum(len(item.records) if isinstance(item, Backlog) else 1 for item in self.queue)

    def replay_pending(self) -> int:
        """Replayed events queued for this client or being written to it."""
        return (sum(len(item.records) for item in self.queue if isinstance(item, Backlog))
                + (len(self.replaying.records) if self.replaying is not None else 0))

    # --- publishing side (event loop, synchronous) ---
    def offer(self, rec: Record) -> None:
        if not self.subscriptions or self.overflowed:
            return
        matching = [s for s in self.subscriptions.values() if s.matches(rec)]
        if not matching:
            return
        self.enqueue(self.event_message(rec, matching))

    def enqueue(self, item: str | Backlog) -> None:
        hub = self.hub
        size = 0 if isinstance(item, Backlog) else len(item)
        while self.queue and (len(self.queue) >= hub.client_queue
                              or self.queued_chars + size > hub.client_queue_bytes):
            if hub.slow_consumer != "drop_oldest":
                self.overflowed = True           # the sender closes with CLOSE_SLOW_CONSUMER
                self.overflow_event.set()
                # the queue and the message that did not fit
                hub.discarded += self.queued_messages() + (len(item.records) if isinstance(item, Backlog) else 1)
                self.queue.clear()
                self.queued_chars = 0
                self.wakeup.set()
                return
            self.overflow_event.set()            # drop_oldest: the sender checks that the peer still reads
            oldest = self.queue.popleft()
            lost = len(oldest.records) if isinstance(oldest, Backlog) else 1
            if not isinstance(oldest, Backlog):
                self.queued_chars -= len(oldest)
            self.dropped_pending += lost
            hub.dropped += lost
        self.queue.append(item)
        self.queued_chars += size
        self.wakeup.set()

    def event_message(self, rec: Record, matching: list[Subscription]) -> str:
        if self.dialect == "sdk":
            return ('{"type":"event","id":"%d","timestamp":"%s","payload":%s}' % (rec.sequence, rec.timestamp, rec.json))
        ids = ",".join('"%s"' % s.id for s in matching)
        return ('{"action":"event","channel":"%s","sequence":%d,"stream_id":"%s","timestamp":"%s",'
                '"subscription_ids":[%s],"event":%s}'
                % (matching[0].channel, rec.sequence, self.hub.stream_id, rec.timestamp, ids, rec.json))

    # --- sending side ---
    async def sender(self) -> int | None:
        """Drains the queue to the socket; returns a close code when the client must be dropped, or
        None once the queue is empty after `close_with` (shutdown)."""
        while True:
            if self.closing is not None and not self.queue:
                return None
            await self.wakeup.wait()
            self.wakeup.clear()
            if self.revoked:
                return CLOSE_TOKEN_REVOKED
            if self.overflowed:
                return CLOSE_SLOW_CONSUMER
            if self.dropped_pending:
                count, self.dropped_pending = self.dropped_pending, 0
                await self.send_text(self.control("dropped", count=count,
                                                  message=f"{count} events dropped: this client reads too slowly"))
            while self.queue:
                item = self.queue.popleft()
                if isinstance(item, Backlog):
                    self.replaying = item
                    while item.records:
                        rec = item.records.popleft()
                        # `subscriptions` loses what `unsubscribe` removed meanwhile: their events are not sent
                        matching = [s for s in item.subscriptions if s.matches(rec)]
                        if not matching:
                            continue
                        await self._send(self.event_message(rec, matching))
                        if self.overflowed:
                            return CLOSE_SLOW_CONSUMER
                    self.replaying = None
                    continue
                self.queued_chars -= len(item)
                # _send's lines inline: an extra coroutine per delivery cost the fan-out ~5%
                await self.send_text(item)
                self.sent += 1
                self.hub.deliveries += 1
                if self.overflowed:
                    return CLOSE_SLOW_CONSUMER

    async def _send(self, text: str) -> None:
        await self.send_text(text)
        self.sent += 1
        self.hub.deliveries += 1

    def control(self, action: str, **fields: Any) -> str:
        if self.dialect == "sdk":
            sdk_type = {"subscribed": "ack", "unsubscribed": "ack", "published": "ack"}.get(action, action)
            message_id = fields.pop("request_id", None)
            doc: dict[str, Any] = {"type": sdk_type, "timestamp": now_iso(), "payload": fields}
            if message_id is not None:
                doc["id"] = message_id
            return jsonio.dumps(doc)
        if fields.get("request_id") is None:
            fields.pop("request_id", None)        # echoed only when the client sent one
        return jsonio.dumps({"action": action, **fields})

    # --- requests from the client ---
    def subscribe(self, specs: list[dict[str, Any]], resume: dict[str, Any] | None) -> tuple[dict[str, Any], Backlog | None]:
        """Adds subscriptions; returns the reply fields and, for a resume, the missed events.

        The caller queues the reply, then the backlog, with no await in between, so nothing
        published meanwhile is missed or doubled. The gateway calls subscribe_yielding instead."""
        new = self._parse_subscriptions(specs)
        plan = self._resume_plan(resume) if resume is not None else None
        matched = None if plan is None else collections.deque(
            rec for rec in plan.records if any(s.matches(rec) for s in new))
        return self._add(new, plan, matched)

    async def subscribe_yielding(self, specs: list[dict[str, Any]],
                                 resume: dict[str, Any] | None) -> tuple[dict[str, Any], Backlog | None]:
        """subscribe(), yielding to the event loop every MATCHES_PER_YIELD filter matches of a resume: each of
        up to --replay-events records is matched against up to --max-client-subscriptions, a million matches
        that held the loop 0.35 s per `subscribe` message, every other connection waiting (any token holder could
        repeat it). Events published meanwhile are matched after, without a yield, so the backlog still ends where
        live events begin."""
        new = self._parse_subscriptions(specs)
        if resume is None:
            return self._add(new, None, None)
        plan = self._resume_plan(resume)
        matched: collections.deque[Record] = collections.deque()
        work = 0
        for rec in plan.records:
            if any(s.matches(rec) for s in new):
                matched.append(rec)
            work += len(new)
            if work >= MATCHES_PER_YIELD:
                work = 0
                await asyncio.sleep(0)
        if self.hub.sequence > plan.upto:
            later, complete = self.hub.replay_after(plan.upto)
            if not complete:           # more than the replay buffer was published while this yielded
                raise FilterError("the stream moved on by more than the replay buffer while this resume was being "
                                  "prepared; resume again", code=E_UNAVAILABLE)
            matched.extend(rec for rec in later if any(s.matches(rec) for s in new))
        return self._add(new, plan, matched)

    def _check_room(self, count: int) -> None:
        """Refuses `count` more subscriptions beyond this connection's limit (E1001) or the gateway's (E3003)."""
        hub = self.hub
        if len(self.subscriptions) + count > hub.max_client_subscriptions:
            hub.subscribes_refused["connection_limit"] += 1
            raise FilterError(f"at most {hub.max_client_subscriptions} subscriptions per connection "
                              f"(this one has {len(self.subscriptions)}; unsubscribe first)")
        held = hub.owner_subscriptions[self.owner]
        if held + count > hub.max_token_subscriptions:
            hub.subscribes_refused["token_limit"] += 1
            raise FilterError(f"the stream connections of this token (or, without tokens, of this address) hold "
                              f"{held} subscriptions; at most {hub.max_token_subscriptions} together: retry later "
                              "or unsubscribe some", code=E_UNAVAILABLE)
        if hub.subscriptions + count > hub.max_subscriptions:
            hub.subscribes_refused["gateway_limit"] += 1
            raise FilterError(f"the gateway has its maximum of {hub.max_subscriptions} subscriptions across all "
                              f"stream connections ({hub.subscriptions} held); retry later or unsubscribe some",
                              code=E_UNAVAILABLE)

    def release(self) -> None:
        """The connection ended: its subscriptions no longer count against the gateway's or its token's maximum."""
        self._count(-len(self.subscriptions))
        self.subscriptions.clear()

    def _count(self, change: int) -> None:
        """Subscriptions taken (> 0) or given back (< 0), in the gateway's and the owner's totals."""
        hub = self.hub
        hub.subscriptions += change
        held = hub.owner_subscriptions[self.owner] + change
        if held > 0:
            hub.owner_subscriptions[self.owner] = held
        else:
            del hub.owner_subscriptions[self.owner]      # owners come and go: no key left behind

    def _parse_subscriptions(self, specs: list[dict[str, Any]]) -> list[Subscription]:
        # Before parsing them: a megabyte of `{}` (350,000 subscriptions) took 2 s of the event loop.
        self._check_room(len(specs))
        new: list[Subscription] = []
        for spec in specs:
            if not isinstance(spec, dict):
                raise FilterError("each subscription is an object {channel, filters}")
            unknown = sorted(set(spec) - {"channel", "filters"})
            if unknown:                          # e.g. "filter": ignoring it would subscribe to everything
                raise FilterError(f"unknown subscription key(s) {', '.join(map(str, unknown))}; known: channel, filters")
            channel = spec.get("channel", "events")
            if not isinstance(channel, str):
                raise FilterError("channel must be a string")
            if channel in CHANNELS:
                event_type = CHANNELS[channel]
            elif self.dialect == "sdk":
                event_type = None                # SDK channels are free names; the filter decides
            else:
                raise FilterError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
            flt = Filter.parse(spec.get("filters"))
            if event_type is not None and flt.event_types is not None and event_type not in flt.event_types:
                # As an empty list or severity_min > severity_max: a subscription that never gets an event
                raise FilterError(f"channel {channel!r} carries only {event_type} events: event_types "
                                  f"{', '.join(sorted(flt.event_types))} would match nothing (use channel 'events')")
            new.append(Subscription(f"sub-{uuid.uuid4()}", channel, event_type, flt))
        return new

    def _add(self, new: list[Subscription], plan: "_ResumePlan | None",
             matched: "collections.deque[Record] | None") -> tuple[dict[str, Any], Backlog | None]:
        """Checks the replay limit, then takes the subscriptions: from here on live events reach them."""
        reply: dict[str, Any] = {}
        replay: Backlog | None = None
        if plan is not None and matched is not None:
            pending = self.replay_pending()
            if matched and pending + len(matched) > (self.hub.replay.maxlen or 0):
                raise FilterError(f"this connection still has {pending} replayed events to take; resume again "
                                  "after they arrived", code=E_UNAVAILABLE)
            out = dict(plan.out)
            out.setdefault("status", "complete" if plan.complete else "gap")
            out["replayed"] = len(matched)
            if not plan.complete:
                out["missed_from"] = plan.sequence + 1
                out["missed_to"] = plan.records[0].sequence - 1 if plan.records else plan.upto
            reply["resume"], replay = out, Backlog(matched, new)
        self._check_room(len(new))               # again: a resume yields, and other connections subscribe meanwhile
        for sub in new:
            self.subscriptions[sub.id] = sub
        self._count(len(new))
        reply.update({
            "subscription_id": new[0].id if len(new) == 1 else None,
            "subscription_ids": [s.id for s in new],
            "channels": [s.channel for s in new],
            "stream_id": self.hub.stream_id,
            "sequence": self.hub.sequence,
        })
        return reply, replay

    def _resume_plan(self, resume: dict[str, Any]) -> "_ResumePlan":
        unknown = sorted(map(str, set(resume) - set(RESUME_KEYS)))
        if unknown:
            raise FilterError(f"unknown resume key(s) {', '.join(unknown)}; known: {', '.join(RESUME_KEYS)}")
        stream_id, sequence = resume.get("stream_id"), resume.get("sequence")
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
            raise FilterError("resume.sequence must be a non-negative integer")
        out: dict[str, Any] = {}
        if stream_id != self.hub.stream_id:
            # The gateway restarted: nothing of the old stream is here, but every event of this one
            # is new to the client, so it gets them from the first, as if it resumed from 0.
            out = {"status": "unknown_stream",
                   "message": "the gateway restarted since: events of the old stream after the client's "
                              "sequence cannot be replayed (backfill from GET /v1/events); this stream's are"}
            sequence = 0
        elif sequence > self.hub.sequence:
            raise FilterError(f"resume.sequence {sequence} is ahead of this stream (now at {self.hub.sequence})")
        records, complete = self.hub.replay_after(sequence)
        return _ResumePlan(out, sequence, self.hub.sequence, records, complete)

    def unsubscribe(self, ids: list[str] | None, channels: list[str] | None) -> list[str]:
        """Removes the named subscriptions (all of them when neither ids nor channels are given).

        Unknown ids are an error (E3001) and then nothing is removed: a client that unsubscribes
        an id it never got has lost track of its state and should hear about it."""
        most = self.hub.max_client_subscriptions
        for name, values in (("subscription_ids", ids), ("channels", channels)):
            if values is not None and len(values) > most:
                raise FilterError(f"{name} names at most {most} (a connection has at most {most} subscriptions), "
                                  f"not {len(values)}")
        wanted_ids: set[str] = set()
        if ids:
            unknown = [i for i in ids if not isinstance(i, str) or i not in self.subscriptions]
            if unknown:
                raise FilterError(f"unknown subscription id(s) {', '.join(map(str, unknown[:10]))}", code=E_NOT_FOUND)
            wanted_ids = set(ids)
        wanted_channels: set[str] = set()
        if channels:
            bad = [c for c in channels if not isinstance(c, str)]
            if bad:
                raise FilterError("channels must be a list of strings")
            unknown = sorted(set(channels) - set(CHANNELS))
            if unknown and self.dialect != "sdk":    # SDK channels are free names
                # As in subscribe: a typo ('alert') removed nothing, and the client went on getting those events
                raise FilterError(f"unknown channel(s) {', '.join(map(repr, unknown[:10]))}; known: "
                                  f"{', '.join(CHANNELS)}")
            wanted_channels = set(channels)
        everything = ids is None and channels is None
        removed = []
        for sub in list(self.subscriptions.values()):
            if everything or sub.id in wanted_ids or sub.channel in wanted_channels:
                del self.subscriptions[sub.id]
                removed.append(sub.id)
        self._count(-len(removed))
        if removed:
            self._forget_in_backlogs()
        return removed

    def _forget_in_backlogs(self) -> None:
        """Replays queued (or being written) for subscriptions that are gone: their events are not sent.
        A backlog left with no subscription is emptied, which also frees its share of `replay_pending`."""
        backlogs = [item for item in self.queue if isinstance(item, Backlog)]
        if self.replaying is not None:
            backlogs.append(self.replaying)
        for backlog in backlogs:
            backlog.subscriptions = [s for s in backlog.subscriptions if s.id in self.subscriptions]
            if not backlog.subscriptions:
                backlog.records.clear()


@dataclass
class _ResumePlan:
    """A resume checked and its records taken (those after `sequence` up to `upto`, the stream's sequence then)."""

    out: dict[str, Any]
    sequence: int
    upto: int
    records: list[Record]
    complete: bool


def owner_of(token: str | None, peer: str | None, *, anonymous: bool) -> str:
    """Whose a stream connection's subscriptions are, for --max-token-subscriptions: its token's digest (the token
    itself is not kept twice, and the digest never leaves the process), or in anonymous mode, where any token or
    none is taken, the peer's address (behind a proxy, every client is the proxy's)."""
    if anonymous or not token:
        return f"peer {peer or '?'}"
    return "token " + hashlib.sha256(token.encode("utf-8")).hexdigest()


class RateLimiter:
    """Token bucket: `rate` messages per second, bursts up to `rate`."""

    def __init__(self, rate: int) -> None:
        self.rate = float(rate)
        self.tokens = float(rate)
        self.stamp = time.monotonic()
        self.strikes = 0

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.strikes = 0
            return True
        self.strikes += 1
        return False


def parse_message(text: str) -> dict[str, Any]:
    try:
        doc = jsonio.loads(text, infinity=True)     # an event with 1e400 is refused alone, with its path
    except ParseError as exc:
        raise FilterError(f"not JSON: {exc.reason}") from None
    if not isinstance(doc, dict):
        raise FilterError("a message is a JSON object")
    return doc


def check_keys(doc: dict[str, Any]) -> None:
    """Refuses keys the message's action does not know (see MESSAGE_KEYS)."""
    action = doc.get("action")
    known = MESSAGE_KEYS.get(action) if isinstance(action, str) else None   # a list or object is unhashable
    if known is None:
        return
    unknown = sorted(map(str, set(doc) - known))
    if unknown:
        raise FilterError(f"unknown key(s) {', '.join(unknown)} in {doc['action']}; known: {', '.join(sorted(known))}")


def sdk_to_action(doc: dict[str, Any]) -> dict[str, Any]:
    """The upstream SDK's {type, payload, id} message as the equivalent action message."""
    kind = doc.get("type")
    out: dict[str, Any] = {"request_id": doc.get("id")}
    if kind == "event":                          # the payload is the event, checked by validation
        out.update(action="publish", events=[doc.get("payload")])
        return out
    payload = doc.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise FilterError("payload must be an object")
    if kind == "subscribe":
        unknown = sorted(map(str, set(payload) - {"channel", "filter"}))
        if unknown:                              # e.g. "filters": ignoring it would subscribe to everything
            raise FilterError(f"unknown payload key(s) {', '.join(unknown)}; known: channel, filter")
        sdk_filter = payload.get("filter") or {}
        if not isinstance(sdk_filter, dict):
            raise FilterError("payload.filter must be an object")
        filters = {SDK_FILTER_KEYS.get(k, k): v for k, v in sdk_filter.items() if v is not None}
        out.update(action="subscribe", subscriptions=[{"channel": payload.get("channel", "events"), "filters": filters}])
    elif kind == "unsubscribe":
        out.update(action="unsubscribe", channels=[payload.get("channel")])
    elif kind in ("heartbeat", "ack"):
        out.update(action="heartbeat_ack" if kind == "heartbeat" else "noop")
    else:
        out.update(action=kind)
    return out
