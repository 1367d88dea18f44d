"""The Starlette app: routes, auth, the ingest endpoints, the stream endpoint, and startup/shutdown (which flushes)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import difflib
import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from wia_security import jsonio
from wia_security.errors import ConfigError, WiaError
from wia_security.schemas import EVENT_TYPES
from wia_security.timeutil import time_or_relative
from wia_security.validation import Validator

from . import hec
from . import auth as auth_limits
from .auth import TokenFile, TokenSet, credential
from .dispatch import Busy, Dispatcher, StoreUnavailable
from .ingest import (BadEncoding, BodiesInFlight, BodyBudget, BodyReservation, BodyStalled, BodyTooLarge,
                     TooManyValues, Verdicts, read_body, split_values, validate_items)
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import GatewayMetrics, destination_name, endpoint_of, method_of, status_class
from .origin import RefuseCrossSite
from .settings import GatewaySettings, fit_connections, open_files_limit
from .stream import (CHANNELS, CLOSE_GOING_AWAY, CLOSE_RATE_LIMITED, CLOSE_SLOW_CONSUMER, CLOSE_TOKEN_REVOKED, E_INTERNAL,
                     E_INVALID_MESSAGE, E_RATE_LIMITED, E_UNAVAILABLE, PROTOCOL_VERSION, Client, FilterError, Hub,
                     RateLimiter, check_keys, owner_of, parse_message, sdk_to_action)
from . import stream as stream_limits

log = logging.getLogger("wia_security.gateway")
access_log = logging.getLogger("wia_security.gateway.access")

#: Largest page of GET /v1/events.
MAX_QUERY_LIMIT = 1000


class Gateway:
    """State shared by every request: tokens, validator, delivery thread, stream hub, TAXII collection."""

    def __init__(self, settings: GatewaySettings) -> None:
        settings.check()
        for note in fit_connections(settings, open_files_limit()):
            log.warning("%s", note)
        self.settings = settings
        # Read now (a bad file stops the start); re-read when they change (watch_token_files, SIGHUP).
        self.token_file = TokenFile(settings.token_file) if settings.token_file else None
        self.metrics_token_file = (TokenFile(settings.metrics_token_file, what="metrics token file")
                                   if settings.metrics_token_file else None)
        if not settings.tokens and not (self.token_file and self.token_file.tokens) and not settings.allow_anonymous:
            raise ConfigError(f"no bearer token configured: the token file {settings.token_file} holds none",
                              key="tokens")
        self.tokens = self._token_set()
        self.metrics_tokens = self._metrics_token_set()
        self._reload_lock = asyncio.Lock()       # the watch and SIGHUP never read a file at the same time
        # A thread of their own: in Starlette's worker threads (which validate every upload) a revocation waited
        # behind all the uploads queued for them, the removed token still accepted meanwhile.
        self._token_reader = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="wia-token-files")
        self.metrics = GatewayMetrics()
        self.validator = Validator(lenient=settings.lenient)
        self.hub = Hub(replay_events=settings.replay_events, client_queue=settings.client_queue,
                       client_queue_bytes=settings.client_queue_bytes,
                       slow_consumer=settings.slow_consumer, max_subscriptions=settings.max_subscriptions,
                       max_client_subscriptions=settings.max_client_subscriptions,
                       max_token_subscriptions=settings.max_token_subscriptions)
        self.dispatcher: Dispatcher | None = None
        self.store: Any = None
        self.taxii: Any = None
        self.hec_acks = hec.AckRegistry()
        self.body_budget = BodyBudget(settings.max_inflight_body_bytes)   # request bodies held at once
        self.started = time.time()
        self._streams: set[asyncio.Task] = set()
        self.closing = False
        self._ingesting = 0                      # ingest calls between their check of `closing` and their publish
        self.open_streams = 0                    # stream connections past the handshake checks, until they end
        self.handshakes = 0                      # stream handshakes whose request head is still arriving (server.py)
        # uvicorn's set of open connections (HTTP and stream), known once one is made (server.py), and the ones in it
        # refused beyond --max-connections whose 503 is being read, oldest first
        self.connections: set[Any] = set()
        self.lingering_refusals: dict[Any, None] = {}

    # --- lifecycle ---
    def open(self) -> None:
        """Opens the store, the destinations and the dead letter and starts the delivery thread, once: `serve`
        calls it before uvicorn starts (server.run), so a destination that fails only when opened (a CA file
        librdkafka cannot read, a client library not installed) is one line and exit status 2, not a traceback
        in uvicorn's start-up; the lifespan's call then finds everything open. Whatever was opened before a
        failure is closed again."""
        if self.dispatcher is not None:
            return
        from ..delivery.dead_letter import open_dead_letter
        from .. import open_sink
        s = self.settings
        store_sink: Any = None
        sinks: dict[str, Any] = {}
        dead_letter: Any = None
        try:
            store_sink = _opened("the store", lambda: open_sink(s.store)) if s.store else None
            if s.destinations:
                from ..config import load_config
                for d in load_config(s.destinations).destinations:
                    sinks[d.name] = _opened(f"destination {d.name}", d.open)
            for url in s.extra_sinks:
                # Named without credentials, path or query: the name is the dead letter's `sink` and a metrics label.
                name = destination_name(url, sinks)
                sinks[name] = _opened(f"destination {name}", lambda url=url: open_sink(url))
            dead_letter = _opened("the dead letter", lambda: open_dead_letter(s.dead_letter))
        except BaseException:
            for opened in (dead_letter, *sinks.values(), store_sink):
                if opened is not None:
                    opened.close()
            raise
        self.store = getattr(store_sink, "store", None)
        fanout = None
        if sinks:
            from ..delivery.fanout import FanOut
            fanout = FanOut(sinks)
        self.dispatcher = Dispatcher(store_sink, fanout, dead_letter, max_pending=s.max_pending_events,
                                     batch=s.delivery_batch)
        self.dispatcher.start()
        if s.taxii and store_sink is not None:
            from .taxii_server import TaxiiCollection
            try:
                self.taxii = TaxiiCollection(store_sink.store.path, title=s.taxii_title)
            except BaseException:
                self.dispatcher.close()             # closes the store, the destinations and the dead letter
                self.dispatcher = None
                raise

    async def close_streams(self, reason: str = "server_shutdown", delay: float = 5.0) -> None:
        """Tell every stream client to reconnect later, close with 1001, wait briefly for them.

        Ingest is refused from here on (503, `Busy`) and what was already on its way is published
        first: every event the gateway accepted then reaches the clients before their `close` message."""
        self.closing = True
        deadline = time.monotonic() + stream_limits.SHUTDOWN_DRAIN_SECONDS
        while self._ingesting and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for client in list(self.hub.clients):
            # Built when sent, after the client's queue drained: `sequence` is then the last event it was offered.
            client.close_with(CLOSE_GOING_AWAY, lambda client=client: client.control(
                "close", reason=reason, message="the gateway is shutting down", reconnect_allowed=True,
                reconnect_delay_seconds=delay, sequence=self.hub.sequence, stream_id=self.hub.stream_id))
        if self._streams:
            await asyncio.wait(list(self._streams), timeout=5)

    def close(self) -> None:
        """Drains the delivery queue, flushes and closes the sinks; a second call does nothing (server.run closes
        what it opened, after the lifespan did when uvicorn ran)."""
        self._token_reader.shutdown(wait=False)
        if self.dispatcher is not None:
            self.dispatcher.close()
            self.dispatcher = None
        if self.taxii is not None:
            self.taxii.close()
            self.taxii = None

    # --- auth ---
    def _token_set(self) -> TokenSet:
        file_tokens = self.token_file.tokens if self.token_file else []
        return TokenSet([*self.settings.tokens, *file_tokens], allow_anonymous=self.settings.allow_anonymous)

    def _metrics_token_set(self) -> TokenSet:
        file_tokens = self.metrics_token_file.tokens if self.metrics_token_file else []
        return TokenSet([*self.settings.metrics_tokens, *file_tokens])

    async def reload_tokens(self, *, force: bool = False) -> None:
        """Takes a changed token file (`force`: re-read it even when it looks unchanged, for SIGHUP).

        New requests are checked against the new set at once; open streams whose token is no longer in it
        are closed with CLOSE_TOKEN_REVOKED."""
        files = [f for f in (self.token_file, self.metrics_token_file) if f is not None]
        if not files:
            return
        async with self._reload_lock:
            changed = await asyncio.get_running_loop().run_in_executor(
                self._token_reader, lambda: [f.poll(force=force) is not None for f in files])
        for file, taken in zip(files, changed):
            if not taken:
                continue
            if file is self.token_file:
                before, self.tokens = self.tokens, self._token_set()
                log.info("%s %s reloaded: %d token(s) in force (was %d)", file.what, file.path,
                         len(self.tokens), len(before))
                self.revoke_streams()
            else:
                self.metrics_tokens = self._metrics_token_set()
                log.info("%s %s reloaded: %d token(s) in force", file.what, file.path, len(self.metrics_tokens))

    async def watch_token_files(self) -> None:
        """Looks at the token files every TOKEN_FILE_CHECK_SECONDS (one stat each) until cancelled."""
        while True:
            await asyncio.sleep(auth_limits.TOKEN_FILE_CHECK_SECONDS)
            try:
                await self.reload_tokens()
            except Exception:  # noqa: BLE001 - a fault here must not end the watch (the last good tokens stay)
                log.exception("checking the token files failed")

    def revoke_streams(self) -> None:
        """Closes every stream connection whose token the current set no longer accepts."""
        revoked = [c for c in list(self.hub.clients) if not self.tokens.check(c.credential)]
        for client in revoked:
            self._revoke(client)
        if revoked:
            log.info("closed %d stream connection(s) whose token was revoked (close code %d)",
                     len(revoked), CLOSE_TOKEN_REVOKED)

    def _revoke(self, client: Client) -> None:
        self.metrics.stream_token_revoked += 1
        client.revoke(lambda: client.control(
            "close", reason="token_revoked", message="the token this connection was opened with is no longer "
            "accepted; reconnect with a valid token", reconnect_allowed=True, reconnect_delay_seconds=0,
            sequence=self.hub.sequence, stream_id=self.hub.stream_id))

    def authorized(self, headers: Any, schemes: tuple[str, ...] = ("bearer", "basic")) -> bool:
        return self.tokens.check(credential(headers.get("authorization"), schemes)[1])

    def metrics_authorized(self, headers: Any) -> bool:
        """A gateway token, a metrics-only token, or nothing when `metrics_anonymous` says so."""
        if self.settings.metrics_anonymous:
            return True
        presented = credential(headers.get("authorization"), ("bearer", "basic"))[1]
        # Both sets are checked (no early exit), so the time does not tell which kind of token it was.
        return self.tokens.check(presented) | self.metrics_tokens.check(presented)

    # --- ingest shared by every entry point ---
    async def ingest(self, verdicts: Verdicts) -> None:
        """Deliver the accepted events (dead-letter the refused ones); publish to the stream.

        An event the store refused (already dead-lettered with the reason) becomes `rejected` in
        `verdicts`: `accepted` promises the event is stored."""
        assert self.dispatcher is not None
        if not verdicts.events and not verdicts.rejected:
            return
        if self.closing:      # an event accepted now would reach the store but no stream client (closed)
            raise Busy("the gateway is shutting down")
        self._ingesting += 1
        try:
            outcome = await self.dispatcher.submit(verdicts.events, verdicts.rejected)
            if outcome.not_stored:
                _mark_not_stored(verdicts, outcome.not_stored)
            # A re-send or an older version of a stored event is not published: a subscriber tracking events by
            # id would see a closed incident open again (the feed and a resume, read from the store, never show it).
            fresh = [e for e in verdicts.events if id(e) not in outcome.held_already]
            if fresh:
                try:
                    await self.hub.publish(fresh)
                except Exception:  # noqa: BLE001 - the events are stored; a stream fault must not fail the request
                    log.exception("publishing %d stored events to the stream failed", len(fresh))
                if self.taxii is not None and any(e.get("type") == "threat_intel" for e in fresh):
                    self.taxii.mark_dirty()
        finally:
            self._ingesting -= 1


def _mark_not_stored(verdicts: Verdicts, not_stored: dict[int, Any]) -> None:
    accepted = iter(verdicts.events)
    for result in verdicts.results:
        if result["status"] != "accepted":
            continue
        rejected = not_stored.get(id(next(accepted)))
        if rejected is not None:
            result["status"] = "rejected"
            result["errors"] = [{"path": "", "code": "store_refused", "message": rejected.reason}]
    verdicts.events = [e for e in verdicts.events if id(e) not in not_stored]


def unauthorized() -> JSONResponse:
    return JSONResponse({"error": {"code": "E2001", "message": "a valid bearer token is required"}}, 401,
                        headers={"WWW-Authenticate": 'Bearer realm="wia-security"'})


def gone() -> Response:
    """The client hung up mid-body: nobody reads this answer, but the access log gets a status."""
    return Response(status_code=499)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


async def post_events(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    if not gw.authorized(request.headers):
        gw.metrics.refuse("http", "auth")
        return unauthorized()
    reservation = gw.body_budget.reservation()
    try:
        return await _post_events(request, gw, reservation)
    finally:
        reservation.release()          # the body and what was made of it are no longer held


async def _post_events(request: Request, gw: Gateway, reservation: BodyReservation) -> Response:
    try:
        body = await read_body(request.headers, request.stream(), gw.settings.max_body_bytes,
                               gw.settings.body_idle_seconds, reservation)
    except BodiesInFlight as exc:
        gw.metrics.refuse("http", "busy")
        return error(503, "E3003", f"busy: {exc}", {"Retry-After": "1", "Connection": "close"})
    except BodyTooLarge as exc:
        gw.metrics.refuse("http", "too_large")
        return error(413, "E1001", str(exc))
    except BodyStalled as exc:
        gw.metrics.refuse("http", "timeout")
        return error(408, "E1001", str(exc), {"Connection": "close"})
    except BadEncoding as exc:
        gw.metrics.refuse("http", "bad_encoding")
        return error(400, "E1001", str(exc))
    except ClientDisconnect:
        gw.metrics.refuse("http", "client_gone")
        return gone()
    where = f"http:{request.client.host if request.client else '?'}"

    def validate() -> Verdicts:
        values = split_values(body, where, gw.settings.max_request_events)
        return validate_items(values.items, gw.validator, values.layout)
    try:
        verdicts = await run_in_threadpool(validate)
    except TooManyValues as exc:
        gw.metrics.refuse("http", "too_large")
        return error(413, "E1001", str(exc))
    if not verdicts.results:
        gw.metrics.refuse("http", "empty")
        return error(400, "E1001", "no events in the request body")
    if not gw.authorized(request.headers):
        # Removed from the token file while the body arrived (a body has no time limit): nothing is stored.
        gw.metrics.refuse("http", "auth")
        return unauthorized()
    try:
        await gw.ingest(verdicts)
    except Busy as exc:
        gw.metrics.refuse("http", "busy")
        return error(503, "E3003", f"busy: {exc}", {"Retry-After": "1"})
    except StoreUnavailable as exc:
        gw.metrics.refuse("http", "unavailable")
        return error(503, "E3003", f"the event store is unavailable: {exc}", {"Retry-After": "5"})
    gw.metrics.count_verdicts("http", verdicts.results)
    rejected = len(verdicts.results) - verdicts.accepted
    status = 200 if not rejected else (207 if verdicts.accepted else 400)
    reply: dict[str, Any] = {"accepted": verdicts.accepted, "rejected": rejected, "results": verdicts.results}
    if len(verdicts.results) == 1 and "id" in verdicts.results[0]:
        reply["id"] = verdicts.results[0]["id"]
    return Response(jsonio.dumpb(reply), status, media_type="application/json")


async def get_events(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    if not gw.authorized(request.headers):
        return unauthorized()
    if gw.store is None:
        return error(404, "E3001", "no event store is configured")
    q = request.query_params
    try:
        _known_params(q, "after" in q)
        types = _types_param(q)
    except ValueError as exc:
        return error(400, "E1001", f"bad query parameter: {exc}")
    if "after" in q:
        return await _events_after(gw, q, types)
    try:
        limit = _int_param(q, "limit", 100, 1, MAX_QUERY_LIMIT)
        filters = {
            "types": types, "since": _time_param(q, "since"), "until": _time_param(q, "until"),
            "min_severity": _severity_param(q, "severity_min"), "max_severity": _severity_param(q, "severity_max"),
            "event_id": q.get("id"),
        }
        if None not in (filters["min_severity"], filters["max_severity"]) \
                and filters["min_severity"] > filters["max_severity"]:
            raise ValueError("severity_min is above severity_max: nothing could match")
        order = q.get("order", "newest")
        if order not in ("newest", "oldest"):
            raise ValueError(f"order must be newest or oldest, not {order!r}")
        newest_first = order == "newest"
    except ValueError as exc:
        return error(400, "E1001", f"bad query parameter: {exc}")

    def query() -> list[dict[str, Any]]:
        from ..sqlite import EventStore
        store = EventStore(gw.store.path)     # its own connection: the delivery thread owns the other
        try:
            return [s.event for s in store.query(limit=limit, newest_first=newest_first, **filters)]
        finally:
            store.close()
    try:
        events = await run_in_threadpool(query)
    except ValueError as exc:
        return error(400, "E1001", f"bad query parameter: {exc}")
    return Response(jsonio.dumpb({"count": len(events), "events": events}), media_type="application/json")


#: Largest cursor SQLite can compare (a rowid is a signed 64-bit integer).
SQLITE_MAX_INT = 2 ** 63 - 1


def _int_param(q: Any, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter; above `high` is capped for `limit` (documented) and refused otherwise."""
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().lstrip("-").isdigit():
        raise ValueError(f"{name} must be an integer, not {raw[:40]!r}")
    value = int(raw)
    if value < low:
        raise ValueError(f"{name} must be at least {low}")
    if value > high:
        if name == "limit":
            return high
        raise ValueError(f"{name} must be at most {high}")
    return value


#: The parameters of GET /v1/events, and of its arrival-order feed (`after`): anything else is refused,
#: since a misspelt filter (`severity=7`, `types=alert`) would otherwise answer with every event.
QUERY_PARAMS = frozenset({"type", "since", "until", "severity_min", "severity_max", "id", "limit", "order"})
FEED_PARAMS = frozenset({"after", "limit", "type"})


def closest(word: str, choices: Any) -> str:
    """` (did you mean 'x'?)` for the nearest choice, or ''."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _known_params(q: Any, feed: bool) -> None:
    """Refuse a parameter the query (or, with `after`, the feed) does not take; the list it gives names
    `after` too, which starts the feed rather than filtering the query."""
    known = FEED_PARAMS if feed else QUERY_PARAMS
    unknown = sorted(set(q.keys()) - known)
    if unknown:
        if feed:
            listed = f"known with after (the arrival-order feed): {', '.join(sorted(known))}"
        else:
            listed = (f"known: {', '.join(sorted(known))}; "
                      f"or after (the arrival-order feed, with {' and '.join(sorted(FEED_PARAMS - {'after'}))} only)")
        near = closest(unknown[0], sorted(known | ({"after"} if not feed else set())))
        raise ValueError(f"unknown parameter {unknown[0][:40]!r}{near}; {listed}")


def _types_param(q: Any) -> list[str]:
    types = q.getlist("type")
    for t in types:
        if t not in EVENT_TYPES:
            raise ValueError(f"type: unknown event type {t[:40]!r}{closest(t, EVENT_TYPES)}; "
                             f"known: {', '.join(EVENT_TYPES)}")
    return types


def _time_param(q: Any, name: str) -> str | None:
    """since / until: RFC 3339, or relative to now (30m, 24h, 7d) as `wia-security query` takes them."""
    raw = q.get(name)
    if raw is None:
        return None
    try:
        return time_or_relative(raw)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _severity_param(q: Any, name: str) -> float | None:
    raw = q.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number from 0 to 10, not {raw[:40]!r}") from None
    if not 0 <= value <= 10:                   # also refuses nan and inf
        raise ValueError(f"{name} must be a number from 0 to 10")
    return value


async def _events_after(gw: Gateway, q: Any, types: list[str]) -> Response:
    """Arrival-order feed: events stored after an opaque cursor, and the cursor to ask with next time."""
    try:
        after = _int_param(q, "after", 0, 0, SQLITE_MAX_INT)
        limit = _int_param(q, "limit", 100, 1, MAX_QUERY_LIMIT)
    except ValueError as exc:
        return error(400, "E1001", f"bad query parameter: {exc}")

    def read() -> tuple[list[dict[str, Any]], int]:
        import sqlite3
        db = sqlite3.connect(gw.store.path)
        try:
            sql = "SELECT rowid, body FROM events WHERE rowid > ?"
            args: list[Any] = [after]
            if types:
                sql += f" AND type IN ({','.join('?' * len(types))})"
                args += types
            rows = db.execute(sql + " ORDER BY rowid LIMIT ?", [*args, limit]).fetchall()
        finally:
            db.close()
        return [jsonio.loads(body) for _, body in rows], (rows[-1][0] if rows else after)
    events, cursor = await run_in_threadpool(read)
    return Response(jsonio.dumpb({"count": len(events), "events": events, "next": str(cursor)}),
                    media_type="application/json")


async def healthz(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return JSONResponse({"status": "shutting_down" if gw.closing else "ok"}, 503 if gw.closing else 200)


async def metrics(request: Request) -> Response:
    """Prometheus text format 0.0.4. Rendered on the event loop, which owns the hub and the handler counters."""
    gw: Gateway = request.app.state.gateway
    if not gw.metrics_authorized(request.headers):
        return unauthorized()
    from .metrics import render
    return Response(render(gw).encode("utf-8"), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def stats(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    if not gw.authorized(request.headers):
        return unauthorized()
    d = gw.dispatcher
    return JSONResponse({
        "uptime_seconds": round(time.time() - gw.started, 1),
        "delivery": d.stats.to_dict() if d else None,
        "pending": d.pending if d else 0,
        "connections": {"open": max(0, len(gw.connections) - len(gw.lingering_refusals)),
                        "max": gw.settings.max_connections},
        "stream": {"clients": len(gw.hub.clients), "max_clients": gw.settings.max_stream_clients,
                   "handshakes": gw.handshakes,
                   "subscriptions": gw.hub.subscriptions, "max_subscriptions": gw.settings.max_subscriptions,
                   "max_token_subscriptions": gw.settings.max_token_subscriptions,
                   "sequence": gw.hub.sequence, "stream_id": gw.hub.stream_id,
                   "published": gw.hub.published, "deliveries": gw.hub.deliveries,
                   "slow_disconnects": gw.hub.slow_disconnects, "dropped": gw.hub.dropped},
    })


# --- the WebSocket stream ---
async def stream(ws: WebSocket) -> None:
    gw: Gateway = ws.app.state.gateway
    token = credential(ws.headers.get("authorization"), ("bearer",))[1]
    if not gw.tokens.check(token):
        gw.metrics.refuse("stream", "auth")
        await deny(ws)
        return
    if gw.closing:
        # HTTP 503, not a close before accept: that is a 403, which clients take for a refused token
        # (StreamClient stopped for good with StreamAuthError) instead of retrying.
        gw.metrics.refuse("stream", "unavailable")
        await deny(ws, error(503, E_UNAVAILABLE, "the gateway is shutting down", {"Retry-After": "5"}))
        return
    limit = gw.settings.max_stream_clients
    if gw.open_streams >= limit:
        # Each connection may queue up to --client-queue-bytes: their number bounds the stream's memory.
        gw.metrics.refuse("stream", "too_many_clients")
        await deny(ws, error(503, E_UNAVAILABLE, f"the gateway has its maximum of {limit} stream connections; "
                             "retry later", {"Retry-After": str(stream_limits.STREAM_FULL_RETRY_AFTER_SECONDS)}))
        return
    gw.open_streams += 1                  # taken before the first await: concurrent handshakes see it
    try:
        await _serve_stream(gw, ws, token)
    finally:
        gw.open_streams -= 1


async def _serve_stream(gw: Gateway, ws: WebSocket, token: str | None) -> None:
    await ws.accept()
    gw.metrics.stream_connections += 1
    # Events go straight to the ASGI send (Starlette's WebSocket.send re-checks its state on every
    # message; at 100 subscribers that is a measurable share of the fan-out cost).
    asgi_send = ws._send

    async def send_text(text: str) -> None:
        await asgi_send({"type": "websocket.send", "text": text})
    client = Client(gw.hub, send_text, client_id=ws.headers.get("x-wia-client-id"),
                    owner=owner_of(token, ws.client.host if ws.client else None, anonymous=gw.tokens.allow_anonymous))
    client.credential = token             # checked again when the token file changes
    gw.hub.clients.add(client)
    if not gw.tokens.check(token):        # revoked while the handshake was being answered
        gw._revoke(client)
    task = asyncio.current_task()
    if task is not None:
        gw._streams.add(task)
    sender = asyncio.create_task(_sender(client))
    receiver = asyncio.create_task(_receiver(gw, ws, client))
    heartbeat = asyncio.create_task(_heartbeat(gw, client))
    close_code = None
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if sender in done and not sender.cancelled() and sender.exception() is None:
            close_code = sender.result()
        elif receiver in done and not receiver.cancelled() and receiver.exception() is None:
            close_code = receiver.result()
    finally:
        gw.hub.clients.discard(client)
        client.release()                  # its subscriptions no longer count against --max-subscriptions
        for t in (sender, receiver, heartbeat):
            t.cancel()
        if task is not None:
            gw._streams.discard(task)
    if close_code == CLOSE_SLOW_CONSUMER:
        gw.hub.slow_disconnects += 1
    if close_code is not None and not client.stuck:     # a stuck peer cannot take the close frame either
        try:
            await asyncio.wait_for(ws.close(close_code), 5)
        except (asyncio.TimeoutError, RuntimeError, WebSocketDisconnect, OSError):
            pass


async def unknown_stream_path(ws: WebSocket) -> None:
    """A WebSocket handshake to a path that serves none: HTTP 404 naming the stream's path. Starlette's own
    answer, a close before accept, reaches the client as HTTP 403, which reads as a refused token."""
    gw: Gateway = ws.app.state.gateway
    gw.metrics.refuse("stream", "not_found")
    path = ws.url.path
    await deny(ws, error(404, "E3001", f"no WebSocket stream at {path[:100]!r}: the stream is at /v1/stream"))


async def deny(ws: WebSocket, response: Response | None = None) -> None:
    """HTTP 401 (or `response`) at the handshake where the server supports it; otherwise close before accept (HTTP 403)."""
    try:
        await ws.send_denial_response(response or unauthorized())
    except RuntimeError:
        await ws.close(1008)


async def _sender(client: Client) -> int | None:
    """Runs the client's sender; returns the close code (None: the peer is gone).

    At shutdown (`close_with`) the queue is written out first, for at most SHUTDOWN_DRAIN_SECONDS, so
    a client that keeps up misses nothing published before the `close` message (whose `sequence` says
    where it stopped). A client whose queue overflowed while the sender waits for its socket gets
    SLOW_CONSUMER_CLOSE_SECONDS to take the message being written, then is dropped (`client.stuck`)."""
    sender = asyncio.ensure_future(client.sender())
    closer = asyncio.ensure_future(client.close_event.wait())
    overflow = asyncio.ensure_future(client.overflow_event.wait())
    try:
        done, _ = await asyncio.wait({sender, closer, overflow}, return_when=asyncio.FIRST_COMPLETED)
        while done == {overflow} and client.hub.slow_consumer == "drop_oldest":
            # drop_oldest keeps the client while it drops its oldest messages: one that took not a single
            # message in the grace stopped reading (its sender would wait on the full socket for ever)
            sent = client.sent
            done, _ = await asyncio.wait({sender, closer}, timeout=stream_limits.SLOW_CONSUMER_CLOSE_SECONDS)
            if done:
                break
            if client.sent == sent:
                sender.cancel()
                client.stuck = True
                log.info("stream client %s stopped reading; dropped without a close frame", client.id)
                return CLOSE_SLOW_CONSUMER
            client.overflow_event.clear()
            overflow = asyncio.ensure_future(client.overflow_event.wait())
            done, _ = await asyncio.wait({sender, closer, overflow}, return_when=asyncio.FIRST_COMPLETED)
        if client.revoked and client.closing is not None:
            # Its token is gone: nothing more is written, however much is queued; only the close message.
            sender.cancel()
            code, message = client.closing[0], client.closing[1]()
            try:
                await asyncio.wait_for(client.send_text(message), 2)
            except Exception:  # noqa: BLE001 - the peer is gone or stuck; close anyway
                pass
            return code
        if sender not in done:
            grace = stream_limits.SHUTDOWN_DRAIN_SECONDS if closer in done else stream_limits.SLOW_CONSUMER_CLOSE_SECONDS
            await asyncio.wait({sender}, timeout=grace)
        if not sender.done():
            sender.cancel()
            client.stuck = closer not in done
            if client.stuck:
                log.info("stream client %s stopped reading; dropped without a close frame", client.id)
                return CLOSE_SLOW_CONSUMER
        code = sender.result() if sender.done() and not sender.cancelled() and sender.exception() is None else None
        if client.closing is not None:
            client.hub.clients.discard(client)   # nothing more is offered: the close message's sequence is final
            code, message = CLOSE_GOING_AWAY, client.closing[1]()
        elif code == CLOSE_SLOW_CONSUMER:
            message = client.control(
                "close", reason="slow_consumer", message="this client fell behind the stream",
                reconnect_allowed=True, reconnect_delay_seconds=0, sequence=client.hub.sequence,
                stream_id=client.hub.stream_id)
        else:
            return code
        try:
            await asyncio.wait_for(client.send_text(message), 2)
        except Exception:  # noqa: BLE001 - the peer is gone or stuck; close anyway
            pass
        return code
    finally:
        for task in (sender, closer, overflow):
            task.cancel()


async def _heartbeat(gw: Gateway, client: Client) -> None:
    while True:
        await asyncio.sleep(gw.settings.heartbeat_seconds)
        now = _now()
        client.enqueue(client.control("heartbeat", timestamp=now, server_time=now, sequence=gw.hub.sequence,
                                      stream_id=gw.hub.stream_id))


def _now() -> str:
    from wia_security.timeutil import now_iso
    return now_iso()


async def _receiver(gw: Gateway, ws: WebSocket, client: Client) -> int | None:
    limiter = RateLimiter(gw.settings.client_rate)
    first = True
    while True:
        try:
            message = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        # Every frame counts against the rate limit, binary ones too (each earns an error reply).
        if not limiter.allow():
            if limiter.strikes > 10 * gw.settings.client_rate:
                return CLOSE_RATE_LIMITED
            client.enqueue(client.control("error", code=E_RATE_LIMITED,
                                          message=f"more than {gw.settings.client_rate} messages per second",
                                          request_id=_refused_request_id(message.get("text"))))
            continue
        text = message.get("text")
        if text is None:
            client.enqueue(client.control("error", code=E_INVALID_MESSAGE, message="binary messages are not accepted"))
            continue
        doc: Any = None            # the message as parsed (and converted), for the request id of an error
        try:
            # A large message is parsed in a worker thread: the loop serves every other connection meanwhile.
            # This connection's next message waits for it, so replies keep the order of the requests.
            doc = (await run_in_threadpool(parse_message, text) if len(text) > stream_limits.PARSE_IN_THREAD_CHARS
                   else parse_message(text))
            if first and "action" not in doc and "type" in doc:
                client.dialect = "sdk"
            first = False
            if client.dialect == "sdk":
                doc = sdk_to_action(doc)
            await _handle(gw, client, doc)
        except FilterError as exc:
            client.enqueue(client.control("error", code=exc.code, message=str(exc), request_id=_request_id(doc)))
        except Exception:  # noqa: BLE001 - a bug must not drop the connection silently or show a trace
            log.exception("stream message from %s failed", client.id)
            client.enqueue(client.control("error", code=E_INTERNAL, message="internal error handling this message; "
                                          "it was not processed", request_id=_request_id(doc)))


def _refused_request_id(text: str | None) -> Any:
    """The request id of a message refused by the rate limit, for its error: without it a client waiting for the
    reply to that request (StreamClient's publish) waited for its whole timeout. Read only from a message short
    enough to parse on the loop (PARSE_IN_THREAD_CHARS): a longer one is refused unread, its error without an id."""
    if not text or len(text) > stream_limits.PARSE_IN_THREAD_CHARS:
        return None
    try:
        return _request_id(parse_message(text))
    except FilterError:
        return None


def _request_id(doc: Any) -> Any:
    """The id to echo in an error: `request_id`, or the SDK dialect's `id` when the message was not converted yet."""
    if not isinstance(doc, dict):
        return None
    return doc["request_id"] if "request_id" in doc else doc.get("id") if "type" in doc else None


async def _handle(gw: Gateway, client: Client, doc: dict[str, Any]) -> None:
    if client.revoked:                   # its token was revoked: the connection is being closed
        return
    action = doc.get("action")
    request_id = doc.get("request_id")
    check_keys(doc)
    if action == "subscribe":
        specs = doc.get("subscriptions")
        if specs is None:
            specs = [{"channel": doc.get("channel", "events"), "filters": doc.get("filters")}]
        if not isinstance(specs, list) or not specs:
            raise FilterError("subscriptions must be a non-empty list")
        resume = doc.get("resume")
        if resume is not None and not isinstance(resume, dict):
            raise FilterError("resume must be an object {stream_id, sequence}")
        reply, replay = await client.subscribe_yielding(specs, resume)
        client.enqueue(client.control("subscribed", request_id=request_id, connected_at=_now(),
                                      protocol_version=PROTOCOL_VERSION, **reply, config={
                                          "heartbeat_interval_seconds": gw.settings.heartbeat_seconds,
                                          "rate_limit_per_second": gw.settings.client_rate,
                                          "max_message_size": gw.settings.max_message_bytes,
                                          "queue_limit": gw.settings.client_queue,
                                          "queue_limit_bytes": gw.settings.client_queue_bytes,
                                          "slow_consumer": gw.settings.slow_consumer,
                                          "replay_events": gw.settings.replay_events,
                                          "max_subscriptions_per_connection": gw.settings.max_client_subscriptions,
                                          "max_subscriptions_per_token": gw.settings.max_token_subscriptions,
                                          "channels": list(CHANNELS)}))
        if replay is not None:
            client.enqueue(replay)
    elif action == "unsubscribe":
        ids, channels = doc.get("subscription_ids"), doc.get("channels")
        if ids is not None and not isinstance(ids, list) or channels is not None and not isinstance(channels, list):
            raise FilterError("subscription_ids and channels must be lists")
        removed = client.unsubscribe(ids, channels)
        client.enqueue(client.control("unsubscribed", request_id=request_id, subscription_ids=removed))
    elif action == "publish":
        events = doc.get("events")
        if events is None and "event" in doc:
            events = [doc["event"]]
        if not isinstance(events, list) or not events:
            raise FilterError("publish needs events: [...] (or event: {...})")
        if len(events) > gw.settings.max_request_events:
            # As for POST /v1/events: each refused value would cost a result and a dead-letter record
            raise FilterError(f"publish carries {len(events)} events; at most {gw.settings.max_request_events} "
                              "per message")
        from wia_security.reader import Item
        items = [Item(f"ws:{client.id}", i, e) for i, e in enumerate(events)]
        # In a worker thread, as for POST /v1/events: 1,400 events took ~20 ms, which every other connection
        # waited for on the loop. This connection's receiver waits, so its replies keep their order.
        verdicts = await run_in_threadpool(validate_items, items, gw.validator, "array")
        if client.revoked:               # revoked while the events were validated: not accepted
            return
        try:
            await gw.ingest(verdicts)
        except (Busy, StoreUnavailable) as exc:
            gw.metrics.refuse("stream", "busy" if isinstance(exc, Busy) else "unavailable")
            client.enqueue(client.control("error", code=E_UNAVAILABLE, message=str(exc), request_id=request_id))
            return
        gw.metrics.count_verdicts("stream", verdicts.results)
        client.enqueue(client.control("published", request_id=request_id, accepted=verdicts.accepted,
                                      rejected=len(verdicts.results) - verdicts.accepted, results=verdicts.results))
    elif action in ("ping", "heartbeat"):
        client.enqueue(client.control("pong", timestamp=_now(), sequence=gw.hub.sequence, request_id=request_id))
    elif action in ("heartbeat_ack", "noop", "pong"):
        return
    else:
        raise FilterError(f"unknown action {action!r}; known: subscribe, unsubscribe, publish, ping")


class AccessLog:
    """Logs method, path (never the query string or headers: they may carry tokens), status and time;
    counts HTTP requests for /metrics by method, route template and status class."""

    def __init__(self, app: Any, metrics: GatewayMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = [0]
        if scope["type"] == "websocket":
            # Not wrapping send: a stream sends millions of messages; log the connection at its end.
            try:
                await self.app(scope, receive, send)
            finally:
                if access_log.isEnabledFor(logging.INFO):
                    client = scope.get("client") or ("-", 0)
                    access_log.info("%s WS %s closed after %.1fs", client[0], scope["path"], time.monotonic() - started)
            return

        metrics = self.metrics
        counted = [False]

        def count() -> None:
            # Counted when the response starts, before the client can have it: a scrape that follows a
            # reply already includes that reply's request.
            if metrics is not None and not counted[0]:
                counted[0] = True
                metrics.requests[(method_of(scope), endpoint_of(scope), status_class(status[0] or 500))] += 1
                metrics.in_flight -= 1

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                count()
            await send(message)
        if metrics is not None:
            metrics.in_flight += 1
        try:
            await self.app(scope, receive, capture)
        finally:
            count()                       # no response started (an exception): Starlette answers 500
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                access_log.info("%s %s %s %s %.1fms", client[0], scope.get("method", "WS"), scope["path"],
                                status[0], (time.monotonic() - started) * 1000)


def _opened(what: str, open_: Any) -> Any:
    """open_(); an error that is not already a configuration or I/O error naming it (a client library's own
    exception) becomes a ConfigError naming `what`, its text masked as every error is."""
    try:
        return open_()
    except (WiaError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - any library's failure to open: said in one line, not a traceback
        raise ConfigError(f"cannot be opened: {type(exc).__name__}: {exc}", source=what) from None


def create_app(settings: GatewaySettings, *, gateway: Gateway | None = None) -> Starlette:
    gw = gateway or Gateway(settings)
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await run_in_threadpool(gw.open)
        watch = asyncio.ensure_future(gw.watch_token_files())
        try:
            yield
        finally:
            watch.cancel()
            await gw.close_streams()
            await run_in_threadpool(gw.close)          # drains the delivery queue, flushes, closes sinks

    routes = [
        Route("/v1/events", post_events, methods=["POST"]),
        Route("/v1/events", get_events, methods=["GET"]),
        Route("/v1/stats", stats, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        WebSocketRoute("/v1/stream", stream),
        *hec.routes(),
    ]
    if settings.taxii and settings.store:
        from .taxii_server import routes as taxii_routes
        routes += taxii_routes()
    routes.append(WebSocketRoute("/{path:path}", unknown_stream_path))     # last: only what nothing else serves
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={Exception: internal_error})
    app.state.gateway = gw
    # added last, so it runs first after the access log: a refused cross-site request reaches no route
    app.add_middleware(_Wrap, inner=lambda inner_app: RefuseCrossSite(inner_app, lambda path: _count_cross_site(gw, path)))
    app.add_middleware(_Wrap, inner=lambda inner_app: AccessLog(inner_app, gw.metrics))
    return app


async def internal_error(request: Request, exc: Exception) -> Response:
    """An unexpected fault (uvicorn logs it with its traceback): answered in the shape of the API asked, never with
    the exception's text. Starlette's own answer was a text/plain 500 on every path, which HEC clients cannot read
    as Splunk's code 8."""
    path = request.url.path
    if path.startswith("/services/collector"):
        return hec.reply(8)
    if path.startswith("/taxii2"):
        from .taxii_server import taxii_error
        return taxii_error(500, "Internal server error", "the gateway failed handling this request (logged)")
    return error(500, E_INTERNAL, "internal error handling this request (logged on the gateway)")


def _count_cross_site(gw: Gateway, path: str) -> None:
    source = "http" if path == "/v1/events" else "stream" if path == "/v1/stream" else \
        "hec" if path.startswith("/services/collector") else None
    if source is not None:
        gw.metrics.refuse(source, "cross_site")


class _Wrap:
    """Adapter so a plain ASGI middleware class can be added with Starlette's add_middleware."""

    def __init__(self, app: Any, inner: Any) -> None:
        self.app = inner(app)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
