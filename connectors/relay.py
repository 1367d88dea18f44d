"""The cloud-function relay: records from a trigger -> validate -> deliver -> one outcome per record.

A trigger (an SQS batch, a Kinesis batch, an Event Hub batch, an S3 object, an HTTP body) hands over
`SourceRecord`s; each carries zero or more values (reader `Item`s, so a bad line is reported as
`record:line`). The relay validates and normalizes every value, delivers the valid events to the
destination sink in chunks (memory stays flat for a multi-gigabyte S3 object), and accounts for
every record as exactly one of:

- done: every value it carried was delivered, or dead-lettered with the reason (invalid JSON,
  schema errors, permanent destination refusals);
- retry: a destination failed in a way worth retrying (or the dead letter could not be written, or
  the destination's report accounts for fewer events than it was given, so which were delivered is
  unknown), so the trigger reports the record back (`batchItemFailures`, an exception, HTTP 503) and the
  platform redelivers it. Nothing is dropped; a retried record may deliver some events twice
  (at-least-once; idempotent destinations report duplicates).

The relay never decides *how* a trigger reports retries: `RelayResult.retry` lists the record ids in
input order and the trigger shapes its own response. When the platform will not deliver a record
again (an SQS message on its last receive, an Event Hub batch on its last retry, a Pub/Sub message on
its last delivery attempt), the trigger calls `Relay.give_up`, which dead-letters what is still
unsettled with the reason, so a record never leaves the platform's hands with its reason only in a log.

Every dead-letter record has a `dead_letter_id` (`wia_security.connectors.dead_letter.dead_letter_id`): a hash of where the value came
from, the destination that refused it and the value itself, never of the reason or the time. A
redelivered record that is rejected again gets the same id, so a consumer (or a store keyed by it,
such as the Lambda's S3 dead letter) can tell a repeat from a new failure.
"""
from __future__ import annotations

import io
import logging
import time
import zlib
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Sequence

from wia_security.errors import ParseError
from wia_security.pipeline import normalize
from wia_security.reader import GZIP_READ_BYTES, GunzipStream, Item, iter_items
from wia_security.validation import Validator

from .base import DeliveryReport, Rejected

log = logging.getLogger(__name__)

#: A record or request body is never inflated beyond this: a gzip bomb is refused, not unpacked.
MAX_BODY_BYTES = 64 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


class GzipBodyError(ParseError):
    """Gzip data that cannot be unpacked: corrupt, cut short, followed by other bytes, or `too_large`."""

    def __init__(self, reason: str, *, source: str | None = None, too_large: bool = False) -> None:
        super().__init__(reason, source=source)
        self.too_large = too_large


def gunzip(data: bytes, limit: int, source: str | None = None) -> bytes:
    """Every gzip member of `data` (RFC 1952 allows several: `cat a.gz b.gz`), inflated to at most
    `limit` bytes; NUL padding between and after members is allowed, as gzip(1) and the file reader
    (`GunzipStream`) allow it."""
    out: list[bytes] = []
    size = offset = 0                            # offset: where the current member starts
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise GzipBodyError(f"body is not valid gzip (member at byte {offset}): {exc}", source=source) from None
        size += len(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise GzipBodyError(f"gzip body inflates beyond {limit:,} bytes", source=source, too_large=True)
        if not inflater.eof:
            raise GzipBodyError(f"gzip body is truncated (member at byte {offset})", source=source)
        out.append(chunk)
        rest = inflater.unused_data.lstrip(b"\0")
        if not rest:
            return b"".join(out)
        if rest[:2] != GZIP_MAGIC:               # refused rather than ignored: it may be events
            raise GzipBodyError(f"{len(rest)} bytes after the end of the gzip data are not gzip", source=source)
        offset += len(data) - len(rest)
        data = rest


def body_lines(data: bytes, source: str | None = None, limit: int = MAX_BODY_BYTES) -> Iterator[bytes]:
    """The lines of a record or request body, unpacked first when it starts with gzip's magic bytes
    (GzipBodyError when that fails)."""
    if data[:2] == GZIP_MAGIC:
        data = gunzip(data, limit, source)
    return iter(io.BytesIO(data))


def record_items(data: bytes, source: str, limit: int = MAX_BODY_BYTES) -> Iterator[Item]:
    """The values of a queue or stream record's body, read as `body_lines` reads it; GzipBodyError only
    when the gzip inflates beyond `limit`. Gzip cut short, corrupt or followed by other bytes cannot be
    mended by retrying the record: the values of its lines before the break are read, and the line it
    broke in is one error item (with the bytes of it that were read), so nothing that arrived is lost."""
    try:
        return iter_items(body_lines(data, source, limit), source)
    except GzipBodyError as exc:
        if exc.too_large:
            raise
    gunzip = GunzipStream(io.BytesIO(data), limit)
    return _with_unread(gunzip.settle(iter_items(io.BufferedReader(gunzip, GZIP_READ_BYTES), source), source),
                        gunzip, data)


def _with_unread(items: Iterator[Item], gunzip: GunzipStream, data: bytes) -> Iterator[Item]:
    """`items`, the error item of a break between lines carrying the record's bytes from the member zlib
    refused on (bytes after the gzip data that may be events, a corrupt member): the record is gone once
    settled, so the dead letter is the only place they are kept."""
    for item in items:
        if (item.error is not None and item.raw is None and gunzip.unread_from is not None
                and item.line == gunzip.problem_line):
            item.raw = data[gunzip.unread_from:]
        yield item


#: Events handed to the sink per send(): bounds memory for huge records (S3 objects).
CHUNK_EVENTS = 500


class OutOfTime(Exception):
    """The invocation's time ran out before a record was (wholly) read: the trigger has it retried."""


def seconds_from_env(name: str, default: float, logger: logging.Logger) -> float:
    """A time budget in seconds from the environment variable `name` (unset or blank: `default`). One that is not a
    number of seconds >= 0 is warned about (naming it) and `default` used: refusing it would fail every invocation
    of a cloud function, and the platform would then move on past the events (silent before)."""
    import os
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        budget = float(text)
    except ValueError:
        budget = -1.0
    if not budget >= 0 or budget == float("inf"):
        logger.warning("%s=%r is not a number of seconds >= 0; using the default %g s", name, text[:40], default)
        return default
    return budget


def until(items: Iterable[Item], stop_at: float, why: str) -> Iterator[Item]:
    """`items` while time.monotonic() is before `stop_at`, then OutOfTime("not started|not finished: why").
    Checked before the first item (a record not started stays unopened: an S3 object is not fetched)
    and after reading each later one (a record read to its end in time is finished)."""
    iterator = iter(items)
    started = False
    try:
        while True:
            if not started and time.monotonic() >= stop_at:
                raise OutOfTime(f"not started: {why}")
            try:
                item = next(iterator)
            except StopIteration:
                return
            if started and time.monotonic() >= stop_at:
                raise OutOfTime(f"not finished: {why}")
            started = True
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


@dataclass
class SourceRecord:
    """One unit the trigger can report back: `id` is what the platform expects (SQS messageId, Kinesis
    sequence number, an S3 object URI, an HTTP item index); `items` the values it carries (lazy)."""

    id: str
    items: Iterable[Item]


@dataclass
class RecordOutcome:
    id: str
    values: int = 0
    delivered: int = 0           # events delivered to every destination (duplicates included)
    dead_lettered: int = 0       # dead-letter records written (one per value or per failed destination)
    retry: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)   # what went wrong, for HTTP answers/logs
    retryable: list[Rejected] = field(default_factory=list)      # the retryable failures, events included
    #: which of the record's values were settled is not known (it could not be read to its end, its
    #: destination's report did not add up, a dead letter was not stored): giving up on it must keep
    #: the whole record, not only `retryable`
    whole: bool = False
    #: rejections not yet dead-lettered because the record is delivered again (`process(hold_back=)`)
    held: list[Rejected] = field(default_factory=list)


@dataclass
class RelayResult:
    records: list[RecordOutcome] = field(default_factory=list)
    events: int = 0              # valid events handed to the destinations
    invalid: int = 0
    unparseable: int = 0

    @property
    def retry(self) -> list[str]:
        """Ids of the records to report back for retry, in input order."""
        return [r.id for r in self.records if r.retry]

    @property
    def delivered(self) -> int:
        return sum(r.delivered for r in self.records)

    @property
    def dead_lettered(self) -> int:
        return sum(r.dead_lettered for r in self.records)

    @property
    def held_back(self) -> int:
        return sum(len(r.held) for r in self.records if r.retry)

    def summary(self) -> dict[str, Any]:
        summary = {"records": len(self.records), "events": self.events, "delivered": self.delivered,
                   "dead_lettered": self.dead_lettered, "invalid": self.invalid, "unparseable": self.unparseable,
                   "retry": len(self.retry)}
        if self.held_back:
            summary["held_back"] = self.held_back
        return summary


#: Rejections one record may hold back (`Relay.process(hold_back=)`): a record's memory stays bounded
#: (an S3 object of bad lines); past this many, its rejections are written at once, and a redelivery
#: writes them again (same `dead_letter_id`).
HOLD_LIMIT = 1000

#: what an HTTP trigger tells a client to wait before re-sending the records that may succeed later
RETRY_AFTER_SECONDS = 5


def http_reply(result: RelayResult) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, JSON body, headers) an HTTP trigger answers with: 200, or 503 + Retry-After naming the
    records to send again; records dead-lettered are listed with their reasons."""
    rejected = [{"index": _index(r.id), "reason": e["reason"]} for r in result.records for e in r.errors
                if e.get("dead_lettered")]
    body: dict[str, Any] = {"accepted": result.events, "delivered": result.delivered,
                            "dead_lettered": result.dead_lettered, "rejected": rejected}
    if result.retry:
        body["retry"] = [_index(i) for i in result.retry]
        return 503, body, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return 200, body, {}


def _index(record_id: str) -> int | str:
    """An HTTP item index as a number; any other record id as it is (never a ValueError in the reply)."""
    return int(record_id) if record_id.isdigit() else record_id


def _copied(copy: dict[str, Any], candidates: Sequence[tuple[RecordOutcome, dict[str, Any], str | None]],
            failed: set[int]) -> tuple[RecordOutcome, dict[str, Any], str | None] | None:
    """The value a sink's copy of an event stands for, among the values with its id (two values may share
    one): one not yet matched to a failure, an equal one first; else (a fan-out reports one failure per
    destination) an equal one, or the first; None when no value has that id."""
    unmatched = [c for c in candidates if id(c[1]) not in failed]
    for group in (unmatched, candidates):
        for candidate in group:
            if candidate[1] == copy:
                return candidate
    return unmatched[0] if unmatched else candidates[0] if candidates else None


class Relay:
    """Runs trigger records through validation into `sink` (one sink or a FanOut), dead-lettering what
    cannot be delivered. `dead_letter` has `put(Rejected)` and `flush()`; a `flush()` may return the
    Rejected it could not store, and a `put()` may raise: either way the records they came from are
    retried. `on_reject` is a notification (e.g. a log line): if it raises, that is logged and the
    rejection is still stored."""

    def __init__(self, sink: Any, dead_letter: Any, *, lenient: bool = False, chunk_events: int = CHUNK_EVENTS,
                 on_reject: Callable[[Rejected], None] | None = None) -> None:
        self.sink = sink
        self.dead_letter = dead_letter
        self.validator = Validator(lenient=lenient)
        self.chunk_events = chunk_events
        self.on_reject = on_reject
        self._hold_back: Callable[[str], bool] | None = None

    def process(self, records: Iterable[SourceRecord], *, hold_back: Callable[[str], bool] | None = None) -> RelayResult:
        """Every record's outcome. `hold_back(record id)` true means the platform delivers that record
        again if it is reported for retry (an SQS message before its last receive): its rejections
        are then written only once it settles, so a redelivery does not dead-letter the same values
        again; if it ends reported for retry they are dropped (the redelivery rejects them again) and
        counted in `RelayResult.held_back`."""
        self._hold_back = hold_back
        try:
            return self._process(records)
        finally:
            self._hold_back = None

    def _process(self, records: Iterable[SourceRecord]) -> RelayResult:
        result = RelayResult()
        pending: list[tuple[RecordOutcome, dict[str, Any], str | None]] = []     # (record, event, where it was read)
        dead: list[tuple[RecordOutcome, Rejected]] = []
        for record in records:
            outcome = RecordOutcome(record.id)
            result.records.append(outcome)
            try:
                for item in record.items:
                    outcome.values += 1
                    event = self._check(item, outcome, result, dead)
                    if event is not None:
                        pending.append((outcome, event, item.where))
                        if len(pending) >= self.chunk_events:
                            self._deliver(pending, dead)
                            pending = []
                            self._write_dead(dead)
                            dead = []
            except Exception as exc:  # noqa: BLE001 - reading the record failed (S3 read error, ...)
                outcome.retry = outcome.whole = True
                outcome.errors.append({"reason": f"could not read the record: {type(exc).__name__}: {exc}"})
        if pending:
            self._deliver(pending, dead)
        self._write_dead(dead)
        self._hold_back = None
        self._write_dead([(outcome, rejected) for outcome in result.records if not outcome.retry
                          for rejected in outcome.held])
        for outcome in result.records:
            if outcome.retry and outcome.held:
                outcome.errors.append({"reason": f"{len(outcome.held)} rejection(s) held back: the record is "
                                                 "delivered again and rejects them again"})
            elif outcome.held:
                outcome.held = []
        return result

    # -- steps ----------------------------------------------------------------------------------
    def _check(self, item: Item, outcome: RecordOutcome, result: RelayResult,
               dead: list[tuple[RecordOutcome, Rejected]]) -> dict[str, Any] | None:
        if item.error is not None:
            result.unparseable += 1
            dead.append((outcome, Rejected("unparseable input: " + item.error.reason, where=item.where, raw=item.raw,
                                           errors=[{"path": item.error.path or "", "code": "parse_error",
                                                    "message": str(item.error)}])))
            return None
        checked = self.validator.validate(item.value)
        if not checked.valid:
            result.invalid += 1
            first = checked.errors[0]
            dead.append((outcome, Rejected(f"invalid: {first.path or '/'}: {first.message}", event=item.value,
                                           where=item.where, errors=[e.to_dict() for e in checked.errors])))
            return None
        result.events += 1
        return normalize(checked.event)

    def _deliver(self, pending: list[tuple[RecordOutcome, dict[str, Any], str | None]],
                 dead: list[tuple[RecordOutcome, Rejected]]) -> None:
        by_object = {id(event): (outcome, event, where) for outcome, event, where in pending}
        by_event_id: dict[Any, list[tuple[RecordOutcome, dict[str, Any], str | None]]] = {}
        for outcome, event, where in pending:
            by_event_id.setdefault(event.get("id"), []).append((outcome, event, where))
        events = [event for _, event, _ in pending]
        try:
            report = self.sink.send(events)
            report.merge(self.sink.flush())
        except Exception as exc:  # noqa: BLE001 - a sink that raises: every event of the chunk is retried
            report = DeliveryReport(getattr(self.sink, "name", "sink"), failed=[
                Rejected(f"destination raised {type(exc).__name__}: {exc}", event=e, retryable=True) for e in events])
        failed_ids: set[int] = set()
        for rejected in report.failed:
            match = by_object.get(id(rejected.event))
            if match is None and isinstance(rejected.event, dict):   # a sink that copied the event
                match = _copied(rejected.event, by_event_id.get(rejected.event.get("id"), ()), failed_ids)
            if match is None:
                # a failure we cannot attribute (a sink bug): retry every record of the chunk rather than lose it
                for outcome, _, _ in pending:
                    outcome.retry = outcome.whole = True
                    outcome.errors.append({"reason": f"unattributable failure: {rejected.reason}", "retry": True})
                continue
            outcome, event, where = match
            failed_ids.add(id(event))
            if rejected.where is None and where is not None:
                # a destination knows the event, not where it was read: the dead letter names the value's
                # own place (`kinesis:<stream>:<sequence>:1`), not only its record or batch
                rejected = replace(rejected, where=where)
            if rejected.retryable:
                outcome.retry = True
                outcome.retryable.append(rejected)
                outcome.errors.append({"event_id": event.get("id"), "sink": rejected.sink,
                                       "reason": rejected.reason, "retry": True})
            else:
                dead.append((outcome, rejected))
        accounted = report.delivered + report.duplicates + len(report.failed)
        if accounted < len(events):
            # The destination says nothing about some events (a sink bug): which ones is unknown, so
            # every record of the chunk not already failed goes back rather than count them delivered.
            for outcome, event, _ in pending:
                if id(event) not in failed_ids and not outcome.retry:
                    outcome.retry = outcome.whole = True
                    outcome.errors.append({"reason": f"the destination accounted for {accounted} of {len(events)} "
                                                     "events (delivered + duplicates + failed)", "retry": True})
        for outcome, event, _ in pending:
            if id(event) not in failed_ids and not (accounted < len(events)):
                outcome.delivered += 1

    def _write_dead(self, dead: list[tuple[RecordOutcome, Rejected]]) -> None:
        if self._hold_back is not None:
            kept = []
            for outcome, rejected in dead:
                if len(outcome.held) < HOLD_LIMIT and self._hold_back(outcome.id):
                    outcome.held.append(rejected)
                else:
                    kept.append((outcome, rejected))
            dead = kept
        if not dead:
            return
        unstored: list[Rejected] = []
        for outcome, rejected in dead:
            if self.on_reject is not None:
                try:
                    self.on_reject(rejected)
                except Exception as exc:  # noqa: BLE001 - a notification hook must not cost the accounting
                    log.warning("on_reject failed for %s: %s: %s", rejected.where or "a rejected event",
                                type(exc).__name__, exc)
            try:
                self.dead_letter.put(rejected)
            except Exception as exc:  # noqa: BLE001 - this one is not stored: its record is retried
                unstored.append(rejected)
                outcome.errors.append({"reason": f"dead letter unavailable: {type(exc).__name__}: {exc}", "retry": True})
        try:
            unstored += self.dead_letter.flush() or []
        except Exception as exc:  # noqa: BLE001 - the dead letter is unavailable: retry the records
            unstored = [rejected for _, rejected in dead]
            for outcome, _ in dead:
                outcome.errors.append({"reason": f"dead letter unavailable: {type(exc).__name__}: {exc}", "retry": True})
        lost = {id(r) for r in unstored}
        for outcome, rejected in dead:
            if id(rejected) in lost:
                outcome.retry = outcome.whole = True
            else:
                outcome.dead_lettered += 1
                outcome.errors.append({"event_id": (rejected.event or {}).get("id") if isinstance(rejected.event, dict) else None,
                                       "where": rejected.where, "sink": rejected.sink, "reason": rejected.reason,
                                       "dead_lettered": True})

    def give_up(self, result: RelayResult, why: str, raw_of: Callable[[str], bytes | None],
                where_of: Callable[[str], str] = str) -> int:
        """Dead-letter every record of `result` still marked for retry, because the platform will not
        deliver it again (`why` says so, e.g. "receive 5 of 5"). A record whose unsettled values are
        known (destination failures, events included) has those dead-lettered, one record each with
        the destination's reason; any other (unread, partly read, unattributable) is dead-lettered
        whole: `raw_of(record id)` is its body, `where_of(record id)` its name in the dead letter
        (`sqs:<message id>`). A record whose dead letter is stored is no longer
        retried; one whose dead letter fails stays marked (the platform's own dead-letter queue then
        takes it, with this reason in the log). Returns the number of records given up."""
        given_up: list[tuple[RecordOutcome, list[Rejected]]] = []
        for outcome in result.records:
            if not outcome.retry:
                continue
            if outcome.retryable and not outcome.whole:
                letters = [Rejected(f"{why}: {r.reason}", event=r.event, errors=r.errors, where=r.where or where_of(outcome.id),
                                    sink=r.sink, retryable=True) for r in outcome.retryable]
            else:
                reasons = "; ".join(dict.fromkeys(e["reason"] for e in outcome.errors if e.get("retry") or
                                                  e["reason"].startswith("could not read"))) or "not settled"
                letters = [Rejected(f"{why}: {reasons}", where=where_of(outcome.id), raw=raw_of(outcome.id),
                                    retryable=True)]
            given_up.append((outcome, letters))
        if not given_up:
            return 0
        unstored: set[int] = set()
        try:
            for outcome, letters in given_up:
                for rejected in letters:
                    self.dead_letter.put(rejected)
            unstored = {id(r) for r in (self.dead_letter.flush() or [])}
        except Exception as exc:  # noqa: BLE001 - nothing given up: the platform's dead-letter queue takes them
            log.error("could not dead-letter records given up (%s): %s: %s", why, type(exc).__name__, exc)
            return 0
        done = 0
        for outcome, letters in given_up:
            if any(id(r) in unstored for r in letters):
                continue            # kept for the platform (a partial store may repeat, never lose)
            outcome.retry = False
            outcome.dead_lettered += len(letters)
            outcome.errors.extend({"where": r.where, "sink": r.sink, "reason": r.reason, "dead_lettered": True}
                                  for r in letters)
            done += 1
        return done



def items_of(values: Iterable[Any], source: str) -> Iterator[Item]:
    """Already-parsed values as Items named `source:1`, `source:2`, ... (for triggers that decode JSON)."""
    for index, value in enumerate(values, 1):
        yield Item(source, index, value)


class LogDeadLetter:
    """A dead letter that writes each record as one structured ERROR log entry (`wia_dead_letter`), for
    runtimes whose log service is the durable store (CloudWatch Logs, Cloud Logging) when no queue or
    bucket is configured. A log sink/subscription can route these entries elsewhere."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self.count = 0

    def put(self, rejected: Rejected) -> None:
        from .dead_letter import dead_letter_record
        self._log(dead_letter_record(rejected))

    def put_record(self, record: dict[str, Any]) -> None:
        """A record as it is: what a SinkDeadLetter's sink refused, rebuilt from its event's annotation."""
        self._log(record)

    def _log(self, record: dict[str, Any]) -> None:
        # not named through put_record here: the Lambda's least-privilege test reads `.put_record` as Kinesis'
        self.logger.error("dead letter", extra={"wia_dead_letter": record})
        self.count += 1

    def flush(self) -> list[Rejected]:
        return []

    def close(self) -> None:
        pass
