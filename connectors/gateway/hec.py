"""Splunk-HEC-compatible ingest, so existing HEC forwarders can point at the gateway.

Follows Splunk's documented HEC contract ("Format events for HTTP Event Collector", "Troubleshoot
HTTP Event Collector"): `POST /services/collector/event` (and `/services/collector`,
`/services/collector/event/1.0`) with JSON event objects concatenated; `Authorization: Splunk
<token>` (Bearer and Basic with the token as password work too); replies `{"text", "code"}`.
Each HEC object's `event` must be a WIA event (an object, or a string holding one). As Splunk
does with a bad event in a batch, the reply is 400 code 6 with `invalid-event-number` (the first invalid
one); unlike Splunk, the valid events after it are taken too (forwarders that treat a 400 as final would lose
them; one that re-sends them sends events already stored, which are not stored or handed on twice), and so are the
objects after one HEC's own rules refuse, even one that does not parse (hec_pieces finds where the next begins).
With a channel (`X-Splunk-Request-Channel` or `?channel=`) a reply carries an
`ackId`; since the gateway answers only after storing, every issued ackId is already true at
`POST /services/collector/ack`.

`POST /services/collector/raw` (Splunk's raw endpoint, which Vector, Fluent Bit and OpenTelemetry's splunk_hec
exporter can send to) takes the body as POST /v1/events does (NDJSON, one JSON document or an array), each value
a WIA event. A channel is required (code 10 without one), as Splunk requires for raw data. Text that is no WIA
event (a log line, an invalid event) is dead-lettered with its reason and answered code 6 with the first such
value's number; as on the event endpoint, the values after it are still taken (a forwarder that treats a 400 as
final, as Vector and the OTel exporter do, would otherwise lose them); a re-sent batch stores nothing twice.
"""
from __future__ import annotations

import collections
import io
import json
import re
import threading
from typing import Any, Iterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wia_security import jsonio
from wia_security.errors import ParseError
from wia_security.reader import Item, iter_items

from .auth import credential
from .dispatch import Busy, StoreUnavailable
from ..base import Rejected
from .ingest import (BadEncoding, BodiesInFlight, BodyReservation, BodyStalled, BodyTooLarge, TooManyValues, Verdicts,
                     read_body, split_values, validate_items)

EVENT_PATHS = ("/services/collector", "/services/collector/event", "/services/collector/event/1.0")
RAW_PATHS = ("/services/collector/raw", "/services/collector/raw/1.0")
ACK_PATH = "/services/collector/ack"
HEALTH_PATHS = ("/services/collector/health", "/services/collector/health/1.0")
CHANNEL_HEADER = "x-splunk-request-channel"
#: Channels whose ackIds are remembered (least recently used beyond this are forgotten).
MAX_ACK_CHANNELS = 10_000
#: Longest channel name taken. Splunk's channels are GUIDs (36 characters); unbounded names let a token holder keep
#: MAX_ACK_CHANNELS names of up to a request line's size each (~160 MB).
MAX_CHANNEL_CHARS = 128

#: HEC code -> (HTTP status, text), from Splunk's status-code table.
CODES: dict[int, tuple[int, str]] = {
    0: (200, "Success"), 2: (401, "Token is required"), 3: (401, "Invalid authorization"),
    4: (403, "Invalid token"), 5: (400, "No data"), 6: (400, "Invalid data format"),
    8: (500, "Internal server error"), 9: (503, "Server is busy"), 10: (400, "Data channel is missing"),
    11: (400, "Invalid data channel"), 16: (400, "Query string authorization is not enabled"),
    12: (400, "Event field is required"), 13: (400, "Event field cannot be blank"), 17: (200, "HEC is healthy"),
    18: (503, "HEC is unhealthy, queues are full"),
}


def reply(code: int, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    status, text = CODES[code]
    return JSONResponse({"text": text, "code": code, **extra}, status, headers=headers)


class AckRegistry:
    """Per channel, the next ackId. Every issued id is true: replies come after the events are stored."""

    def __init__(self) -> None:
        self._next: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.issued = 0

    @property
    def channels(self) -> int:
        return len(self._next)

    def issue(self, channel: str) -> int:
        with self._lock:
            self.issued += 1
            ack_id = self._next.pop(channel, 0)
            self._next[channel] = ack_id + 1
            while len(self._next) > MAX_ACK_CHANNELS:
                self._next.popitem(last=False)
            return ack_id

    def status(self, channel: str, ids: list[Any]) -> dict[str, bool]:
        """{"<id>": issued} for each id asked. Only JSON integers are ackIds: `true` is no ackId 1 (a bool is an int
        in Python), and a "1" beside 1 must not turn the answer for 1 to false (both are the key "1")."""
        with self._lock:
            issued = self._next.get(channel, 0)
        out: dict[str, bool] = {}
        for i in ids:
            key = str(i)
            out[key] = out.get(key, False) or (type(i) is int and 0 <= i < issued)
        return out


def _auth(request: Request) -> JSONResponse | None:
    denied = _check_auth(request)
    if denied is not None:
        request.app.state.gateway.metrics.refuse("hec", "auth")
    return denied


def _check_auth(request: Request) -> JSONResponse | None:
    gw = request.app.state.gateway
    header = request.headers.get("authorization")
    if not header:
        if gw.tokens.allow_anonymous:
            return None
        # a token in ?token= (Splunk's query-string authorization, off unless a token enables it) is never taken:
        # it ends up in proxy and access logs; said as Splunk says it, not as a missing token
        return reply(16 if "token" in request.query_params else 2)
    scheme, token = credential(header, ("splunk", "bearer", "basic"))
    if token is None:
        return None if gw.tokens.allow_anonymous else reply(3)
    return None if gw.tokens.check(token) else reply(4)


def _channel(request: Request) -> str | None:
    return request.headers.get(CHANNEL_HEADER) or request.query_params.get("channel")


def _bad_channel(request: Request) -> JSONResponse | None:
    """HEC code 11 for a channel longer than MAX_CHANNEL_CHARS or holding a control character, before the body."""
    channel = _channel(request)
    if channel and (len(channel) > MAX_CHANNEL_CHARS or any(c < " " or c == "\x7f" for c in channel)):
        request.app.state.gateway.metrics.refuse("hec", "bad_channel")
        return reply(11)
    return None


async def _body(request: Request, gw: Any, reservation: BodyReservation) -> bytes | Response:
    """The request body, or the HEC answer when it cannot be read (too large, bad gzip, hung up, too many held)."""
    try:
        return await read_body(request.headers, request.stream(), gw.settings.max_body_bytes,
                               gw.settings.body_idle_seconds, reservation)
    except BodiesInFlight:
        gw.metrics.refuse("hec", "busy")
        return reply(9, {"Retry-After": "1", "Connection": "close"})
    except BodyTooLarge:
        gw.metrics.refuse("hec", "too_large")
        return JSONResponse({"text": "Content too large", "code": 6}, 413)
    except BodyStalled:
        gw.metrics.refuse("hec", "timeout")
        return JSONResponse({"text": "Request timeout", "code": 6}, 408, headers={"Connection": "close"})
    except BadEncoding:
        gw.metrics.refuse("hec", "bad_encoding")
        return reply(6)
    except ClientDisconnect:
        gw.metrics.refuse("hec", "client_gone")
        return Response(status_code=499)          # nobody reads it; the access log records the hang-up


async def collector(request: Request) -> Response:
    gw = request.app.state.gateway
    denied = _auth(request) or _bad_channel(request)
    if denied is not None:
        return denied
    reservation = gw.body_budget.reservation()
    try:
        return await _collect(request, gw, reservation)
    finally:
        reservation.release()          # the body and what was made of it are no longer held


async def _collect(request: Request, gw: Any, reservation: BodyReservation) -> Response:
    body = await _body(request, gw, reservation)
    if isinstance(body, Response):
        return body
    if not body.strip():
        gw.metrics.refuse("hec", "empty")
        return reply(5)
    where = f"hec:{request.client.host if request.client else '?'}"

    hec_refused = 0           # HEC objects refused by HEC's own rules (not in the results)

    def validate() -> tuple[Verdicts, tuple[int, int] | None]:
        nonlocal hec_refused
        items, refused, failure = unwrap(body, where, gw.settings.max_request_events)
        verdicts = validate_items(items, gw.validator, "array")     # dead letter: `hec:<client>[event number]`
        verdicts.rejected.extend(refused)         # the HEC objects themselves were refused: dead-letter them too
        hec_refused = len(refused)
        # Answered as Splunk does (400, the code and number of the first bad event), but the valid events after it
        # are taken too: Fluent Bit, the OTel exporter and kafka-connect take a 400 as final and never send them
        # again; a forwarder that does re-send events the store then holds (not stored or handed on twice).
        # A result's index is its place among the items; its HEC event number is the item's `line`.
        invalid = next((items[r["index"]].line for r in verdicts.results if r["status"] == "rejected"), None)
        if invalid is not None and (failure is None or invalid < failure[1]):
            return verdicts, (6, invalid)
        return verdicts, failure
    try:
        verdicts, failure = await run_in_threadpool(validate)
    except TooManyValues:
        gw.metrics.refuse("hec", "too_large")
        return JSONResponse({"text": "Content too large", "code": 6}, 413)
    if not verdicts.results and not verdicts.rejected:
        # `[]` (an empty array of HEC objects): no event at all. It was answered Success, with an ackId.
        gw.metrics.refuse("hec", "empty")
        return reply(5)
    refused = await _ingest(request, gw, verdicts)
    if refused is not None:
        return refused
    gw.metrics.count_verdicts("hec", verdicts.results, hec_refused)
    if failure is not None:
        code, index = failure
        return reply(code, **{"invalid-event-number": index})
    extra: dict[str, Any] = {}
    channel = _channel(request)
    if channel:
        extra["ackId"] = gw.hec_acks.issue(channel)
    return reply(0, **extra)


async def _ingest(request: Request, gw: Any, verdicts: Verdicts) -> Response | None:
    """Store and hand on `verdicts` (the event and raw endpoints); the HEC answer when that was refused, else None."""
    denied = _auth(request)       # again: the token may have been removed while the body arrived (no time limit)
    if denied is not None:
        return denied
    try:
        await gw.ingest(verdicts)
    except Busy:
        gw.metrics.refuse("hec", "busy")
        return reply(9, {"Retry-After": "1"})
    except StoreUnavailable:
        gw.metrics.refuse("hec", "unavailable")
        return reply(9, {"Retry-After": "5"})
    return None


async def raw(request: Request) -> Response:
    """POST /services/collector/raw: each value of the body (a line of NDJSON, or one JSON document) a WIA event."""
    gw = request.app.state.gateway
    denied = _auth(request) or _bad_channel(request)
    if denied is not None:
        return denied
    if not _channel(request):
        gw.metrics.refuse("hec", "no_channel")
        return reply(10)
    reservation = gw.body_budget.reservation()
    try:
        return await _collect_raw(request, gw, reservation)
    finally:
        reservation.release()


async def _collect_raw(request: Request, gw: Any, reservation: BodyReservation) -> Response:
    body = await _body(request, gw, reservation)
    if isinstance(body, Response):
        return body
    where = f"hec-raw:{request.client.host if request.client else '?'}"

    def validate() -> Verdicts:
        values = split_values(body, where, gw.settings.max_request_events)
        return validate_items(values.items, gw.validator, values.layout)
    try:
        verdicts = await run_in_threadpool(validate)
    except TooManyValues:
        gw.metrics.refuse("hec", "too_large")
        return JSONResponse({"text": "Content too large", "code": 6}, 413)
    if not verdicts.results:
        gw.metrics.refuse("hec", "empty")
        return reply(5)
    refused = await _ingest(request, gw, verdicts)
    if refused is not None:
        return refused
    gw.metrics.count_verdicts("hec", verdicts.results)
    invalid = next((r["index"] for r in verdicts.results if r["status"] == "rejected"), None)
    if invalid is not None:
        return reply(6, **{"invalid-event-number": invalid})
    return reply(0, ackId=gw.hec_acks.issue(_channel(request) or ""))


_DECODER = json.JSONDecoder()
_BLANKS = " \t\r\n"
#: Where a HEC object may begin: `{` and one of HEC's keys (forwarders put `time`, `host`, `source` ... or `event`
#: first). Only these places are tried after a piece that does not parse.
_HEC_START = re.compile(r'\{[ \t\r\n]*"(?:event|time|host|source|sourcetype|index|fields)"[ \t\r\n]*:')
#: Places tried (in the whole body) before the rest of it is one piece: each costs ~15 us, and a body of nothing but
#: `{"event":1` has a million. Real broken objects hold a few (an inner object whose first key is `source`).
MAX_RESYNC_TRIES = 100_000
#: Characters of the body read at first by a try at one of those places (doubled while the value goes on).
_FIRST_WINDOW = 256


class _TooDeep(Exception):
    """Nested deeper than Python's parser goes."""


def _decode_at(text: str, start: int, windowed: bool) -> tuple[bool, Any, int]:
    """(True, value, end) for the JSON value at text[start:], (False, None, where it failed) when there is none;
    raises _TooDeep.

    `windowed`: reads a window of the text that doubles while the value goes on past it. A JSONDecodeError works out
    its line and column from the start of the string it was given, so a failed try on the whole body cost the length
    of all the text before it: quadratic in a body of many broken pieces (400 KB of `{"event":` took 15 s)."""
    size = _FIRST_WINDOW if windowed else len(text)
    while True:
        window = text[start:start + size] if windowed else text
        offset = start if windowed else 0
        whole = start + size >= len(text)            # the window reaches the end of the body
        try:
            value, end = _DECODER.raw_decode(window, 0 if windowed else start)
        except json.JSONDecodeError as exc:
            # cut by the window (at its end, inside an escape near it, or a string it does not close): read more
            if whole or not (exc.pos >= len(window) - 8 or exc.msg.startswith("Unterminated string")):
                return False, None, offset + exc.pos
        except RecursionError:
            raise _TooDeep from None
        else:
            if whole or end < len(window):           # a number at the window's end may go on past it
                return True, value, offset + end
        size *= 2


def hec_pieces(text: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, whole) for each value of a body of concatenated HEC objects, in order: `whole` when
    text[start:end] is one JSON value, else a piece that does not parse, ending where the next HEC object begins.

    HEC objects need no separator (`{..}{..}`), so one that is cut short (`{"event": {"a": 1}` then the next) would
    swallow every object after it when values are told apart by bracket depth, and text between two objects
    (`garbage {..}`) the object after it. After a value that does not parse, the piece ends at the first place at or
    after the point where parsing failed that opens a HEC object (`{` and a HEC key, _HEC_START) and parses as an
    object with an `event` key: a fragment of the broken one, such as its inner `{"a": 1}`, does not. Nothing
    matching: the rest is the piece, as it is after nesting deeper than Python's parser goes or MAX_RESYNC_TRIES
    places tried in the body. Each try is read from where the last one stopped, so the work stays linear in the
    body's size."""
    end_of_text = len(text)
    pos = 0
    # One object a line (NDJSON) is found by orjson, several times faster than the standard parser, while every line
    # so far was one value; a line that is not (objects concatenated on one line, a broken one) turns it off: it
    # would otherwise copy and read the rest of a long line again for each object on it.
    line_fast = jsonio.fast_loads
    windowed = False                                 # after the first failure: see _decode_at
    tries = 0
    while True:
        while pos < end_of_text and text[pos] in _BLANKS:
            pos += 1
        if pos >= end_of_text:
            return
        if line_fast is not None:
            line_end = text.find("\n", pos)
            line_end = end_of_text if line_end < 0 else line_end
            try:
                line_fast(text[pos:line_end])
                yield pos, line_end, True
                pos = line_end
                continue
            except ValueError:
                line_fast = None
        try:
            parsed, _, pos_end = _decode_at(text, pos, windowed)
        except _TooDeep:
            yield pos, end_of_text, False
            return
        if parsed:
            yield pos, pos_end, True
            pos = pos_end
            continue
        failed_at = max(pos_end, pos + 1)
        windowed = True
        start = pos
        while True:
            found = _HEC_START.search(text, failed_at) if tries < MAX_RESYNC_TRIES else None
            if found is None:
                yield start, end_of_text, False
                return
            tries += 1
            candidate = found.start()
            try:
                parsed, value, value_end = _decode_at(text, candidate, windowed)
            except _TooDeep:
                yield start, end_of_text, False
                return
            if parsed and isinstance(value, dict) and "event" in value:
                yield start, candidate, False
                pos = candidate
                break
            # not a value, or a whole object but no HEC one (a piece of the broken one): go on after it
            failed_at = max(value_end, candidate + 1)


def _hec_items(body: bytes, where: str) -> Iterator[Item]:
    """Items for the HEC objects of `body` (their value, or the error of a piece that does not parse), each with its
    raw text. A body that is a JSON array is read as before (iter_items: its elements are the objects)."""
    text = body.decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.lstrip(_BLANKS)[:1] == "[":
        yield from iter_items(io.BytesIO(body), where)
        return
    for start, end, _whole in hec_pieces(text):
        raw = text[start:end].rstrip(_BLANKS).encode("utf-8", "surrogateescape")
        try:   # parsed again by the project's parser: its verdicts (number limits, depth, UTF-8) are the ones kept
            yield Item(where, 1, jsonio.loads(raw, source=where), raw=raw)
        except ParseError as exc:
            yield Item(where, 1, error=exc, raw=raw)


def unwrap(body: bytes, where: str, limit: int | None = None) -> tuple[list[Item], list[Rejected],
                                                                     tuple[int, int] | None]:
    """HEC objects -> Items holding their `event` values; every object HEC itself refuses is set aside and the
    objects after it are still read.

    Returns the items, the refused objects as Rejected (for the dead letter) and the first one's (HEC code, number).
    An Item's `line` is its HEC event number (zero-based, as `invalid-event-number`), and a dead-letter record's
    `where` is `hec:<client>[number]`: forwarders send a batch on one line, where every line number is 1.
    Raises TooManyValues at object number `limit` (more than `limit` objects), before any is validated."""
    items: list[Item] = []
    refused: list[Rejected] = []
    first: tuple[int, int] | None = None
    for index, item in enumerate(_hec_items(body, where)):
        if limit is not None and index >= limit:
            raise TooManyValues(limit, "lines")
        code, why = 0, ""
        if item.error is not None:
            code, why = 6, f"unparseable HEC object: {item.error.reason}"
        elif not isinstance(item.value, dict):
            code, why = 6, f"a HEC object must be a JSON object, not {type(item.value).__name__}"
        elif "event" not in item.value:
            code, why = 12, "the HEC object has no event field"
        elif item.value["event"] is None or item.value["event"] == "" or item.value["event"] == {}:
            code, why = 13, "the HEC object's event field is blank"
        if code:
            refused.append(Rejected(f"HEC code {code}: {why}", event=item.value, where=f"{where}[{index}]",
                                    raw=item.raw,
                                    errors=[{"path": "", "code": f"hec_{code}", "message": why}]))
            first = first or (code, index)
            continue
        value = item.value["event"]
        if isinstance(value, str):
            try:
                value = jsonio.loads(value, source=item.source, line=item.line)
            except ParseError as exc:
                items.append(Item(item.source, index, error=exc, raw=value.encode("utf-8", "replace")))
                continue
        items.append(Item(item.source, index, value))
    return items, refused, first


async def ack(request: Request) -> Response:
    gw = request.app.state.gateway
    denied = _auth(request) or _bad_channel(request)
    if denied is not None:
        return denied
    channel = _channel(request)
    if not channel:
        gw.metrics.refuse("hec", "no_channel")
        return reply(10)
    reservation = gw.body_budget.reservation()
    try:
        return await _ack(request, gw, channel, reservation)
    finally:
        reservation.release()


async def _ack(request: Request, gw: Any, channel: str, reservation: BodyReservation) -> Response:
    body = await _body(request, gw, reservation)
    if isinstance(body, Response):
        return body
    denied = _auth(request)       # again, as for events: the token may have been removed while the body arrived
    if denied is not None:
        return denied

    def answer() -> Response:
        try:
            doc = jsonio.loads(body)
            ids = doc["acks"]
            if not isinstance(ids, list):
                raise TypeError
        except (ParseError, KeyError, TypeError):
            return reply(6)
        return Response(jsonio.dumpb({"acks": gw.hec_acks.status(channel, ids)}), media_type="application/json")
    # In a worker thread, as ingest bodies are parsed: a 9 MB query (1.3 million ackIds, which a forwarder with many
    # pending acks may send) held the event loop 5 s, every other request and stream waiting.
    return await run_in_threadpool(answer)


async def health(request: Request) -> Response:
    """17 while events are taken; 18 (503) while every one would be refused with code 9: the gateway is shutting
    down, or its delivery queue is full. Load balancers take a HEC receiver out of rotation on this endpoint."""
    gw = request.app.state.gateway
    d = gw.dispatcher
    if gw.closing or (d is not None and d.pending >= d.max_pending):
        return reply(18, {"Retry-After": "5" if gw.closing else "1"})
    return reply(17)


def routes() -> list[Route]:
    return [*(Route(p, collector, methods=["POST"]) for p in EVENT_PATHS),
            *(Route(p, raw, methods=["POST"]) for p in RAW_PATHS),
            Route(ACK_PATH, ack, methods=["POST"]),
            *(Route(p, health, methods=["GET", "POST"]) for p in HEALTH_PATHS)]
