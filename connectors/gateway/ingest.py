"""Request bodies -> validated WIA events: size limits (413), gzip, JSON object / array / NDJSON, per-event verdicts."""
from __future__ import annotations

import asyncio
import io
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from wia_security import jsonio
from wia_security.errors import ParseError
from wia_security.pipeline import normalize
from wia_security.reader import Item, iter_items
from wia_security.validation import Validator

from ..base import Rejected
from ..relay import GzipBodyError, gunzip


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"request body larger than {limit} bytes")


class BadEncoding(Exception):
    pass


class TooManyValues(Exception):
    """A request carrying more values than `max_request_events`: refused whole (413), before any is validated.
    Each refused value costs a result in the reply and a record in the dead letter (~160 and ~300 bytes), so a
    body of `[0,0,...]` was an amplifier: 1 MB became an 80 MB reply, 150 MB of dead letter and 35 s of CPU."""

    def __init__(self, limit: int, layout: str) -> None:
        self.limit = limit
        what = {"array": "array elements", "lines": "values"}.get(layout, "values")
        super().__init__(f"more than {limit} {what} in one request: send at most {limit} per request")


class BodyStalled(Exception):
    """No byte of the request body arrived for `seconds`: the peer vanished mid-body (no FIN or RST: a NAT or
    firewall that forgot the connection, a crashed or suspended host) or is holding the request open on purpose."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"no byte of the request body arrived for {seconds:g} s: the request was dropped "
                         "(send it again)")


class BodiesInFlight(Exception):
    """Request bodies held at once (arriving, validated, waiting for delivery) would pass the gateway's budget."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"request bodies of more than {limit} bytes are being handled at once; retry later")


class BodyBudget:
    """Bytes of request bodies the ingest endpoints hold at once (`max_inflight_body_bytes`). Without it the number of
    bodies held was bounded by nothing: each 10 MiB body is kept while it waits for a worker thread, and a body being
    validated takes about 9 times its size (88 MB of RSS for 9.5 MiB), so concurrent large uploads, from one client
    or many, could take the process's memory. Used on the event loop only (no lock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def reservation(self) -> "BodyReservation":
        return BodyReservation(self)


class BodyReservation:
    """One request's share of the budget: taken chunk by chunk as the body arrives, given back when it is answered.
    A request that is alone may pass the budget (up to max_body_bytes), as one over max_pending events is taken."""

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.taken = 0

    def take(self, size: int) -> None:
        budget = self.budget
        if budget.held > self.taken and budget.held + size > budget.limit:
            raise BodiesInFlight(budget.limit)
        budget.held += size
        self.taken += size

    def release(self) -> None:
        self.budget.held -= self.taken
        self.taken = 0


async def read_body(headers: Any, stream: AsyncIterator[bytes], limit: int,
                    idle_seconds: float | None = None, reservation: BodyReservation | None = None) -> bytes:
    """The request body, refused past `limit` bytes before or after gzip decoding (no zip bombs), and given up
    (BodyStalled) when no byte of it arrives for `idle_seconds`: uvicorn waits for a body for ever, so a peer gone
    mid-body held its request, its connection and what it had sent so far until the process ended."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    chunk_iterator = stream.__aiter__()
    while True:
        try:
            async with asyncio.timeout(idle_seconds):      # from each chunk to the next (None: no limit)
                chunk = await anext(chunk_iterator)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise BodyStalled(idle_seconds or 0) from None
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        if reservation is not None:
            reservation.take(len(chunk))
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = (headers.get("content-encoding") or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        body = _gunzip(body, limit)
        if reservation is not None and len(body) > size:
            reservation.take(len(body) - size)          # what it inflated to is held too
    elif encoding not in ("", "identity"):
        raise BadEncoding(f"unsupported Content-Encoding {encoding!r} (gzip or none)")
    return body


def _gunzip(data: bytes, limit: int) -> bytes:
    try:
        return gunzip(data, limit)
    except GzipBodyError as exc:
        if exc.too_large:
            raise BodyTooLarge(limit) from None
        raise BadEncoding(exc.reason) from None


def split_values(body: bytes, source: str, limit: int | None = None) -> Values:
    """One JSON object, a JSON array of objects, or NDJSON/concatenated objects -> Items in order.

    Raises TooManyValues when there are more than `limit` values (counted before any Item is made)."""
    stripped = body.strip()
    if not stripped:
        return Values([], "lines")
    try:
        whole = jsonio.loads(stripped, source=source)
    except ParseError:
        whole = _MISSING
    if isinstance(whole, list):
        if limit is not None and len(whole) > limit:
            raise TooManyValues(limit, "array")
        return Values([Item(source, i, value) for i, value in enumerate(whole)], "array")
    if whole is not _MISSING:
        return Values([Item(source, 1, whole)], "object")
    items = iter_items(io.BytesIO(body), source)
    values = list(items if limit is None else itertools.islice(items, limit + 1))
    if limit is not None and len(values) > limit:
        raise TooManyValues(limit, "lines")
    return Values(values, "lines")


_MISSING = object()


@dataclass
class Values:
    """The values of one request body and how they were laid out: `object`, `array` (Item.line is
    the element's index) or `lines` (NDJSON or concatenated objects; Item.line is a line number)."""

    items: list[Item]
    layout: str


@dataclass
class Verdicts:
    """The outcome of validating one request's values, in request order."""

    events: list[dict[str, Any]] = field(default_factory=list)       # accepted, normalized
    results: list[dict[str, Any]] = field(default_factory=list)      # one per value
    rejected: list[Rejected] = field(default_factory=list)
    warnings: int = 0

    @property
    def accepted(self) -> int:
        return len(self.events)


#: Integers beyond what every JSON consumer downstream (orjson, Elasticsearch, Kafka consumers in
#: other languages) can hold; a value outside is refused rather than rounded or crashed on.
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 64 - 1


def out_of_range(value: Any, path: str = "") -> tuple[str, str] | None:
    """(JSON pointer, why) of the first number no JSON writer can reproduce: 1e400 parses to infinity,
    and integers past 64 bits cannot be serialized again (they would crash the store and the stream)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(item) in (dict, list, float, int):
                found = out_of_range(item, f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}")
                if found:
                    return found
    elif kind is list:
        for i, item in enumerate(value):
            if type(item) in (dict, list, float, int):
                found = out_of_range(item, f"{path}/{i}")
                if found:
                    return found
    elif kind is float:
        if value != value or value in (math.inf, -math.inf):
            return path, "number too large (not a finite double)"
    elif kind is int:
        if not INT_MIN <= value <= INT_MAX:
            return path, "integer outside the 64-bit range"
    return None


def validate_items(items: list[Item], validator: Validator, layout: str = "lines") -> Verdicts:
    """Validate each value. With layout `lines` results carry the `line` each value starts on, and
    dead-letter records say `source:line`; with `array` they say `source[index]`."""
    out = Verdicts()
    for index, item in enumerate(items):
        where = f"{item.source}[{item.line}]" if layout == "array" else item.where
        entry: dict[str, Any] = {"index": index}
        if layout == "lines":
            entry["line"] = item.line
        if item.error is not None:
            reason = f"unparseable input: {item.error.reason}"
            errors = [{"path": item.error.path or "", "code": "parse_error", "message": str(item.error)}]
            out.results.append({**entry, "status": "rejected", "errors": errors})
            out.rejected.append(Rejected(reason, errors=errors, where=where, raw=item.raw))
            continue
        value = item.value
        result = validator.validate(value)
        out.warnings += len(result.warnings)
        bad_number = out_of_range(value) if result.valid else None
        if not result.valid or bad_number:
            if bad_number:
                errors = [{"path": bad_number[0], "code": "number_range", "message": bad_number[1]}]
            else:
                errors = [e.to_dict() for e in result.errors]
            first = errors[0]
            entry["status"] = "rejected"
            entry["errors"] = errors
            if isinstance(value, dict) and isinstance(value.get("id"), str):
                entry["id"] = value["id"]
            out.results.append(entry)
            out.rejected.append(Rejected(f"invalid: {first['path'] or '/'}: {first['message']}", event=value,
                                         errors=errors, where=where))
            continue
        event = normalize(result.event)
        out.events.append(event)
        out.results.append({**entry, "status": "accepted", "id": event["id"]})
    return out
