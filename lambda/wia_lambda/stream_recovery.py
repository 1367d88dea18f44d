"""Recovery of Kinesis batches that failed every retry.

When a Kinesis batch fails `MaximumRetryAttempts` times, Lambda sends the event source mapping's
on-failure destination (the template's `StreamFailureQueue`) an invocation record naming the batch,
without its records (Lambda developer guide, "Example invocation record" for Kinesis):

    {"requestContext": {"requestId", "functionArn", "condition": "RetryAttemptsExhausted", "approximateInvokeCount"},
     "responseContext": {"statusCode", "executedVersion", "functionError"},
     "version": "1.0", "timestamp": "...",
     "KinesisBatchInfo": {"shardId", "startSequenceNumber", "endSequenceNumber", "approximateArrivalOfFirstRecord",
                          "approximateArrivalOfLastRecord", "batchSize", "streamArn"}}

The forwarder consumes that queue too (SQS trigger, `WIA_KINESIS_FAILURE_QUEUE` names it). For each
failure record it reads the batch back from the stream (GetShardIterator AT_SEQUENCE_NUMBER
startSequenceNumber, then GetRecords until past endSequenceNumber) and hands the records' values to
the normal path under the names the Kinesis trigger gives them (`kinesis:<stream>:<sequence>:line`),
so a value is delivered, or dead-lettered with the same `dead_letter_id` as on the stream. The SQS
message is what is retried (from its resume point, below): a destination that still fails reports it
back, and on its last receive (`WIA_SQS_MAX_RECEIVE_COUNT`) the failing events are dead-lettered with
the reason.

Records no longer in the stream (trimmed after the retention period, the shard or stream gone) are
one dead letter naming the stream, shard and sequence range with how many of `batchSize` were
found (`LOST_REASON`), the failure record (without a resume point) as `raw`. It is written when the reading ends, on every
reading of the message (a message reported back for another reason writes it again, with the same
`dead_letter_id`); if it cannot be written, reading the message fails and it is retried. A starting
sequence number Kinesis refuses (older than the trim horizon) is read past from the trim horizon, so
records still there are forwarded; a resume point's record cut in its middle and trimmed since is a
dead letter of its own (`Reading._gone`).

The reading is weighed against the invocation's time (`handler.time_left`: what the Lambda context has left
before `WIA_TIME_RESERVE`): a Kinesis call, or a throttling backoff and the call after it, is not started
when it could end inside the reserve, a call counted as long as the longest one of this reading so far (SDK
retries included), and so is a GetObject of an S3 object a record names once values of the range were handed
over on this receive (`_open_object`: the record is cut before it, or retried); no Kinesis record is
started, and no further value of one is handed over, once the reserve is reached. Each Kinesis record of the
range is its own relay record (`Part`), so the relay accounts for each one. A reading that stops (out of
time, throttled throughout, the loss's dead letter not written, a destination failing) keeps what it settled
(every value delivered or dead-lettered): the forwarder sends the failure queue a copy of the failure record
with a resume point (`RESUME`: the last record settled from the range's start on, how many of its values
were settled when it was cut in its middle, how many records of the range were read back so far, and runs of
records settled further on, after one still to retry, and one such record cut in its middle), and the
message itself is not reported back (Lambda deletes it). The next reading starts after that point and hands
over nothing of a settled run (nor the settled values of the cut record), so nothing already handed over is
sent again, and nothing unsettled is skipped. No resume point can be written (no progress, or the
SendMessage failed): the message is reported back and read again from its own start (or resume point).

A record cut in its middle can name S3 objects, which can change between two receives: the resume point
pins the ones it had opened (ETag, and VersionId in a versioned bucket, S3's "null" one included), and the
settled values are skipped only in those versions (`_open_object`). An object that changed is read as it
is now from its start, with a dead letter saying so (duplicates over a silent loss).

With ParallelizationFactor above 1 several invocations read one shard, each a share of the partition
keys, and a failure record's range then also holds the other shares' records, which the range cannot
tell apart: they are forwarded again too (never skipped), a warning is logged when the range holds
more records than `batchSize`, and a loss is then counted against a number that includes them. The
template sets no ParallelizationFactor (1).
"""
from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from wia_security.connectors.base import Rejected
from wia_security.connectors.relay import OutOfTime, RecordOutcome, SourceRecord
from wia_security.errors import ParseError
from wia_security.reader import Item

from .handler import ENV_TIME_RESERVE, time_left, time_to_deadline
from .logs import get_logger
from .payloads import (ObjectChanged, ObjectDenied, ObjectMissing, ObjectVersion, body_items, get_object, missing_item,
                       object_items)

#: GetRecords calls for one failure record (ExpiredIterator re-reads included): a batch is at most
#: 10,000 records (the event source mapping's BatchSize limit) and one call returns up to 10,000, so
#: this only stops a reading that makes no progress (empty pages behind the tip, a misbehaving endpoint).
MAX_PAGES = 100
#: Tries of one Kinesis call answered ProvisionedThroughputExceeded (the shard's 5 reads a second are
#: shared with the event source mapping), waiting THROTTLE_BACKOFF * 2**n (at most THROTTLE_MAX_WAIT)
#: with jitter between them; after the last the message is retried (it comes back after its visibility timeout).
THROTTLE_TRIES = 6
THROTTLE_BACKOFF = 0.5
THROTTLE_MAX_WAIT = 4.0
THROTTLED = frozenset({"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException"})
#: Errors that mean the range cannot be read now or later: the stream or shard is gone, or the sequence
#: number is not (any more) one of the shard's.
GONE = frozenset({"ResourceNotFoundException", "InvalidArgumentException"})
#: A sequence number as the Kinesis API's pattern has it (ASCII digits only: str.isdigit() also takes
#: superscripts, which int() refuses, and int() refuses decimal text past 4300 digits).
SEQUENCE_NUMBER = re.compile(r"0|[1-9][0-9]{0,128}")
#: The largest BatchSize of a Kinesis event source mapping.
MAX_BATCH_SIZE = 10_000
#: The largest ParallelizationFactor of a Kinesis event source mapping: a range holds at most this many
#: times `batchSize` records (the other virtual shards' records are in it too); a reading past that stops
#: (RecoveryIncomplete), so a forged range cannot make the function hold a relay record per record for ever.
MAX_PARALLELIZATION_FACTOR = 10
#: The member of a failure record a resumed reading carries (added by the forwarder, never by Lambda):
#: `{"sequenceNumber": the last record settled from the range's start on (null: none yet), "values": how
#: many of its values were settled (0: all of them), "found": records of the range read back up to it,
#: that one included, "settled": [[first, last], ...] sequence numbers of records further on that were
#: settled (after one still to retry), "objects": [{"bucket", "key", "eTag", "versionId"}, ...] when
#: `values` is not 0: the S3 objects the record names that were opened before the cut, in order, as read
#: then (ETag, and VersionId in a versioned bucket; eTag null: the object was not there), "cut":
#: {"sequenceNumber", "values", "objects"} a record further on cut in its middle by the time (after one
#: still to retry): its first `values` values were settled, in those objects}`.
RESUME = "wiaResume"
#: Runs of settled records kept in a resume point (about 12 KB of a message): records of runs past these
#: are read and handed over again (repeats, never a loss).
MAX_SETTLED_RUNS = 100
#: S3 objects pinned in a resume point cut in a record's middle (`objects`): a record cut after opening more
#: is resumed at its start instead (its values settled are handed over again: repeats, never a skip of
#: values that may have changed).
MAX_PINNED_OBJECTS = 100
#: The largest message the failure queue is sure to take: 256 KiB, SQS's MaximumMessageSize for queues
#: created before 2025 (the template sets none, and a queue keeps the size it was created with).
MAX_MESSAGE_BYTES = 262_144
#: Bytes of one pinned `objects` list as written (JSON escapes a key's non-ASCII characters: 100 keys of
#: 1,024 UTF-8 bytes can take 300 KB): a record cut after opening objects that take more is resumed at its
#: start, as past MAX_PINNED_OBJECTS. Two lists (the head's and the cut's), MAX_SETTLED_RUNS runs and
#: Lambda's failure record stay under MAX_MESSAGE_BYTES; a resume point over it could never be sent.
MAX_PINS_BYTES = 96 * 1024
#: A pin's ETag: a strong entity tag as HTTP has it and S3 gives it (`"…"`, visible ASCII), not `*` (If-Match's
#: "any object", which passes for one rewritten since) nor a weak `W/"…"`; and its VersionId, visible ASCII.
#: Anything else in a (forged) resume point is refused: a CR LF fails the GetObject on every receive.
PIN_ETAG = re.compile(r'"[\x21\x23-\x7e]{0,1022}"')
PIN_VERSION_ID = re.compile(r"[\x21-\x7e]{1,1024}")

log = get_logger()
#: the throttling backoff's wait (tests drive it with the clock their Lambda context counts down with)
sleep = time.sleep


class RecoveryIncomplete(Exception):
    """The batch could not be read back now (throttled throughout, no progress): the message is retried."""


@dataclass(frozen=True)
class BatchInfo:
    """`KinesisBatchInfo` of a failure record, checked."""

    stream_arn: str
    shard_id: str
    start: str
    end: str
    batch_size: int

    @property
    def stream_name(self) -> str:
        return self.stream_arn.rsplit("/", 1)[-1]

    @property
    def where(self) -> str:
        """The dead letter's `where` for the batch as a whole (stable: a repeat gets the same dead_letter_id)."""
        return f"kinesis:{self.stream_name}:{self.shard_id}:{self.start}-{self.end}"

    def describe(self) -> str:
        return f"shard {self.shard_id} of {self.stream_arn}, sequence numbers {self.start} to {self.end}"


def failure_record(body: str) -> dict[str, Any] | None:
    """The parsed body when it is a Kinesis on-failure invocation record (has `KinesisBatchInfo`), else None."""
    if "KinesisBatchInfo" not in body:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):   # nested past the parser's stack (hand-made): read as an ingest message
        return None
    return document if isinstance(document, dict) and "KinesisBatchInfo" in document else None


def batch_info(document: dict[str, Any]) -> BatchInfo:
    """The checked `KinesisBatchInfo`; ParseError naming the first member missing or malformed."""
    info = document.get("KinesisBatchInfo")
    if not isinstance(info, dict):
        raise ParseError("Kinesis failure record: KinesisBatchInfo is not an object", path="/KinesisBatchInfo")
    for member in ("streamArn", "shardId", "startSequenceNumber", "endSequenceNumber"):
        value = info.get(member)
        if not isinstance(value, str) or not value or (member.endswith("SequenceNumber")
                                                       and not SEQUENCE_NUMBER.fullmatch(value)):
            raise ParseError(f"Kinesis failure record: KinesisBatchInfo.{member} is missing or malformed",
                             path=f"/KinesisBatchInfo/{member}")
    size = info.get("batchSize")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_BATCH_SIZE:
        raise ParseError("Kinesis failure record: KinesisBatchInfo.batchSize is missing or not a number from 1 to "
                         f"{MAX_BATCH_SIZE:,}",
                         path="/KinesisBatchInfo/batchSize")
    if int(info["startSequenceNumber"]) > int(info["endSequenceNumber"]):
        raise ParseError("Kinesis failure record: startSequenceNumber is after endSequenceNumber",
                         path="/KinesisBatchInfo/startSequenceNumber")
    return BatchInfo(info["streamArn"], info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], size)


@dataclass(frozen=True)
class Resume:
    """Where a resumed reading starts: after `values` values of the record `sequence` (after the whole
    record when `values` is 0; at the range's start when `sequence` is None); `found` records of the range
    were read back up to there. Records further on whose sequence number is in a `settled` run were
    settled before: they are read (and counted) but not handed over again."""

    sequence: str | None
    values: int
    found: int
    settled: tuple[tuple[int, int], ...] = ()
    #: the versions of the S3 objects the record `sequence` named up to its cut (None: a point written before
    #: they were pinned, whose skip trusts the objects as they are now)
    objects: tuple[ObjectVersion, ...] | None = None
    #: a record after the first still to retry, cut in its middle by the time
    cut: Cut | None = None

    def covers(self, sequence: str) -> bool:
        number = int(sequence)
        return any(first <= number <= last for first, last in self.settled)

    def as_json(self) -> dict[str, Any]:
        point: dict[str, Any] = {"sequenceNumber": self.sequence, "values": self.values, "found": self.found}
        if self.settled:
            point["settled"] = [[str(first), str(last)] for first, last in self.settled]
        if self.values and self.objects is not None:    # None: a point from before pins, carried as it was
            point["objects"] = _pins_json(self.objects)
        if self.cut is not None:
            point["cut"] = {"sequenceNumber": self.cut.sequence, "values": self.cut.values,
                            "objects": _pins_json(self.cut.objects)}
        return point


@dataclass(frozen=True)
class Cut:
    """A record after the settled head (after a record still to retry) cut in its middle by the time: its
    first `values` values were settled, reading the S3 objects it names in the versions `objects`."""

    sequence: str
    values: int
    objects: tuple[ObjectVersion, ...]


def _pins_json(objects: Iterable[ObjectVersion]) -> list[dict[str, Any]]:
    return [{"bucket": o.bucket, "key": o.key, "eTag": o.etag, **({"versionId": o.version_id} if o.version_id else {})}
            for o in objects]


def _pin_ok(pin: ObjectVersion) -> bool:
    """Whether a pin's ETag and VersionId are ones S3 gives (`PIN_ETAG`, `PIN_VERSION_ID`)."""
    return ((pin.etag is None or PIN_ETAG.fullmatch(pin.etag) is not None)
            and (pin.version_id is None or PIN_VERSION_ID.fullmatch(pin.version_id) is not None))


def _pinnable(objects: list[ObjectVersion]) -> bool:
    """Whether a resume point can pin the objects a record opened before its cut: not more than
    MAX_PINNED_OBJECTS, taking not more than MAX_PINS_BYTES as written, each pin one that `_pins_of` reads
    back."""
    return (len(objects) <= MAX_PINNED_OBJECTS and all(_pin_ok(o) for o in objects)
            and len(json.dumps(_pins_json(objects))) <= MAX_PINS_BYTES)


def resume_of(document: dict[str, Any], info: BatchInfo) -> Resume | None:
    """The checked resume point of a failure record (None when it has none); ParseError naming the member."""
    if RESUME not in document:
        return None
    resume = document[RESUME]
    if not isinstance(resume, dict):
        raise ParseError(f"Kinesis failure record: {RESUME} is not an object", path=f"/{RESUME}")
    start, end = int(info.start), int(info.end)

    def in_range(value: Any) -> bool:
        return isinstance(value, str) and bool(SEQUENCE_NUMBER.fullmatch(value)) and start <= int(value) <= end

    sequence = resume.get("sequenceNumber")
    if not (sequence is None or in_range(sequence)):
        raise ParseError(f"Kinesis failure record: {RESUME}.sequenceNumber is missing, malformed or outside the range",
                         path=f"/{RESUME}/sequenceNumber")
    # before any record is settled from the range's start, none of it was counted or cut
    limit = {"values": 0 if sequence is None else 1 << 31,
             "found": 0 if sequence is None else info.batch_size * MAX_PARALLELIZATION_FACTOR}
    for member, low in (("values", 0), ("found", 0 if sequence is None else 1)):
        value = resume.get(member)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= limit[member]:
            raise ParseError(f"Kinesis failure record: {RESUME}.{member} is missing or not a number from {low} to "
                             f"{limit[member]:,}", path=f"/{RESUME}/{member}")
    runs = resume.get("settled", [])
    if (not isinstance(runs, list) or len(runs) > MAX_SETTLED_RUNS
            or not all(isinstance(r, list) and len(r) == 2 and all(in_range(n) for n in r)
                       and int(sequence or -1) < int(r[0]) <= int(r[1]) for r in runs)):
        raise ParseError(f"Kinesis failure record: {RESUME}.settled is not a list of at most {MAX_SETTLED_RUNS} "
                         "[first, last] sequence numbers of the range after sequenceNumber", path=f"/{RESUME}/settled")
    settled = tuple((int(a), int(b)) for a, b in runs)
    return Resume(sequence, resume["values"], resume["found"], settled,
                  _pins_of(resume, f"/{RESUME}/objects"), _cut_of(resume, sequence, settled, in_range))


def _cut_of(resume: dict[str, Any], head: str | None, settled: tuple[tuple[int, int], ...],
            in_range: Callable[[Any], bool]) -> Cut | None:
    """The checked `cut` of a resume point (None when it has none); ParseError naming the member."""
    if "cut" not in resume:
        return None
    cut = resume["cut"]
    sequence = cut.get("sequenceNumber") if isinstance(cut, dict) else None
    values = cut.get("values") if isinstance(cut, dict) else None
    if (not isinstance(cut, dict) or set(cut) != {"sequenceNumber", "values", "objects"} or not in_range(sequence)
            or int(sequence) <= int(head or -1) or any(first <= int(sequence) <= last for first, last in settled)
            or not isinstance(values, int) or isinstance(values, bool) or not 1 <= values <= 1 << 31):
        raise ParseError(f"Kinesis failure record: {RESUME}.cut is not {{sequenceNumber, values, objects}} of a "
                         "record of the range after sequenceNumber and outside the settled runs, cut after 1 value "
                         "or more", path=f"/{RESUME}/cut")
    return Cut(sequence, values, _pins_of(cut, f"/{RESUME}/cut/objects") or ())


def _pins_of(resume: dict[str, Any], path: str) -> tuple[ObjectVersion, ...] | None:
    """The checked `objects` of a resume point or its cut (None when it has none); ParseError naming it."""
    if "objects" not in resume:
        return None

    def text(value: Any, nullable: bool = False) -> bool:
        return (value is None and nullable) or (isinstance(value, str) and 0 < len(value) <= 1024)

    pins = resume["objects"]
    if (not resume["values"] or not isinstance(pins, list) or len(pins) > MAX_PINNED_OBJECTS
            or not all(isinstance(p, dict) and set(p) <= {"bucket", "key", "eTag", "versionId"}
                       and text(p.get("bucket")) and text(p.get("key")) and text(p.get("eTag"), True)
                       and text(p.get("versionId"), True)
                       and _pin_ok(ObjectVersion(p["bucket"], p["key"], p.get("eTag"), p.get("versionId"))) for p in pins)):
        raise ParseError(f"Kinesis failure record: {path[1:].replace('/', '.')} is not a list of at most "
                         f"{MAX_PINNED_OBJECTS} {{bucket, key, eTag, versionId}} of a record cut in its middle (eTag "
                         'a strong entity tag "…", versionId visible ASCII)', path=path)
    return tuple(ObjectVersion(p["bucket"], p["key"], p.get("eTag"), p.get("versionId")) for p in pins)


def where_of(body: str | None, default: str) -> str:
    """The batch's name (`kinesis:<stream>:<shard>:<start>-<end>`) for a failure-record body, else `default`."""
    document = failure_record(body or "")
    try:
        return batch_info(document).where if document is not None else default
    except ParseError:
        return default


class Budget:
    """The reading's time: a Kinesis call (an S3 read: `calls`), or a backoff wait and the call after it, is
    started only if it can end before the invocation's time reserve (`time_left`), a call counted as long as
    the longest one of this reading so far. Without a Lambda context (`time_left` None) there is no limit."""

    def __init__(self, left: Callable[[], float | None] = time_left, calls: str = "Kinesis call") -> None:
        self._left = left
        self.calls = calls
        self.longest = 0.0          # seconds the slowest call of the reading took

    def call(self, operation: Callable[..., Any], **params: Any) -> Any:
        return self.call_within(self.longest, operation, **params)

    def call_within(self, expected: float, operation: Callable[..., Any], **params: Any) -> Any:
        """`operation(**params)` if `expected` seconds (and more than none) are left before the reserve."""
        before = self._need(expected, f"the next {self.calls}")
        try:
            return operation(**params)
        finally:
            after = self._left() if before is not None else None
            if before is not None and after is not None:
                self.longest = max(self.longest, before - after)

    def wait(self, seconds: float) -> None:
        self._need(seconds + self.longest, f"a {seconds:.1f}s throttling backoff and the call after it")
        sleep(seconds)

    def _need(self, seconds: float, what: str) -> float | None:
        left = self._left()
        if left is not None and left <= seconds:
            raise OutOfTime(f"not finished: reading the batch back from the stream, {what} could end inside the "
                            f"invocation's time reserve ({ENV_TIME_RESERVE}; {max(left, 0):.1f}s left before it); "
                            "the message is retried")
        return left


def _code(exc: Exception) -> str | None:
    return ((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code")


def _call(budget: Budget, operation: Callable[[], Callable[..., Any]], **params: Any) -> Any:
    """One Kinesis call, retried with backoff while the shard's read throughput is exceeded and the
    invocation's time allows (OutOfTime when it does not). `operation()` gives the client's method for each try:
    the client is the one fitted to the time left then (`_kinesis`)."""
    for attempt in range(THROTTLE_TRIES):
        try:
            return budget.call(operation(), **params)
        except Exception as exc:  # noqa: BLE001 - botocore's ClientError, told apart by its code
            if _code(exc) not in THROTTLED:
                raise
            if attempt == THROTTLE_TRIES - 1:
                raise RecoveryIncomplete(f"the shard's read throughput was exceeded on {THROTTLE_TRIES} tries "
                                         f"({_code(exc)})") from None
            wait = min(THROTTLE_MAX_WAIT, THROTTLE_BACKOFF * 2 ** attempt)
            budget.wait(wait / 2 + random.uniform(0, wait / 2))
    raise AssertionError("unreachable")


def read_batch(kinesis: Callable[[], Any], info: BatchInfo, lost: list[str], budget: Budget,
               resume: Resume | None = None) -> Iterator[dict[str, Any]]:
    """The batch's records still in the stream, in order (GetRecords' record dicts), from the `resume`
    point when given (the record it names again when only some of its values were settled). `kinesis()` gives
    the client for a call, chosen when the call starts (`_kinesis`). Why others
    could not be read is appended to `lost` (an unreadable range is a loss, not an exception); a reading
    that cannot finish now raises RecoveryIncomplete, or OutOfTime when the invocation's `budget` is spent."""
    start, end = int(info.start), int(info.end)
    stream = {"StreamARN": info.stream_arn}
    at = info.start if resume is None or resume.sequence is None else resume.sequence
    # the last sequence number read, to go on after an expired iterator (or after a resume point's record)
    after: str | None = resume.sequence if resume is not None and not resume.values else None
    first = int(at) if after is None else int(after) + 1        # the first sequence number to hand over
    horizon = False                     # read from the shard's trim horizon (the starting number was refused)
    pages = 0

    def iterator() -> str:
        position = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after} if after else
                    {"ShardIteratorType": "TRIM_HORIZON"} if horizon else
                    {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": at})
        return _call(budget, lambda: kinesis().get_shard_iterator, **stream, ShardId=info.shard_id,
                     **position)["ShardIterator"]

    if after is not None and int(after) == end:
        return                          # read to its end on an earlier receive
    try:
        try:
            shard_iterator: str | None = iterator()
        except Exception as exc:  # noqa: BLE001
            if _code(exc) != "InvalidArgumentException":
                raise
            # the starting sequence number refused: older than the shard's trim horizon (records after it
            # may still be there) or not one of the shard's: read from the horizon, handing over records from
            # `first` on only, so the records still there are read and only the missing ones counted lost
            lost.append(f"GetShardIterator refused sequence number {after or at} ({_code(exc)}: {exc}); the shard "
                        "was read from its trim horizon")
            log.warning("kinesis refused the starting sequence number: reading from the shard's trim horizon",
                        extra={"shard": info.shard_id, "sequence": after or at, "error": f"{_code(exc)}: {exc}"})
            after, horizon = None, True
            shard_iterator = iterator()
    except Exception as exc:  # noqa: BLE001
        if _code(exc) in GONE:
            lost.append(f"GetShardIterator: {_code(exc)}: {exc}")
            return
        raise
    while shard_iterator:
        pages += 1
        if pages > MAX_PAGES:
            raise RecoveryIncomplete(f"no end of the range after {MAX_PAGES} GetRecords calls")
        try:
            page = _call(budget, lambda: kinesis().get_records, **stream, ShardIterator=shard_iterator,
                         Limit=min(10_000, info.batch_size))
        except Exception as exc:  # noqa: BLE001
            if _code(exc) == "ExpiredIteratorException":
                shard_iterator = iterator()
                continue
            if _code(exc) in GONE:
                lost.append(f"GetRecords: {_code(exc)}: {exc}")
                return
            raise
        for record in page.get("Records") or []:
            sequence = int(record["SequenceNumber"])
            if sequence > end:
                return
            after = record["SequenceNumber"]
            if sequence >= max(start, first):
                yield record
            if sequence == end:
                return
        shard_iterator = page.get("NextShardIterator")
        if not page.get("Records") and page.get("MillisBehindLatest") == 0:
            lost.append("the stream's newest record comes before the end of the range")
            return
    lost.append("the shard is closed and ends before the end of the range")


@dataclass
class Part(SourceRecord):
    """One Kinesis record of the range as a relay record (or the reading's stop, or its end). It keeps the
    invocation's time itself, stopping only between two values (`Reading`), so `handler.in_time` passes it
    as it is: which values it handed over is then known exactly."""

    sequence: str | None = None         # None: the reading's stop or its end
    counts: bool = False                # a record of the range not counted by an earlier receive
    skipped: int = 0                    # its values settled on an earlier receive (a resume point in it)
    handed: int = 0                     # its values handed to the relay on this receive
    complete: bool = False              # every value of it handed over
    cut: bool = False                   # stopped by the time between two of its values
    covered: bool = False               # settled on an earlier receive (a resume point's run): not handed over
    keeps_time: bool = True
    pins: tuple[ObjectVersion, ...] | None = None   # the S3 objects it named as read before its cut (skipped)
    opened: list[ObjectVersion] = field(default_factory=list)   # the S3 objects it named, as read on this receive
    seen: int = 0                       # its values read so far on this receive (skipped or handed)
    changed: bool = False               # an S3 object it names changed since the skipped values were read
    notes: list[Item] = field(default_factory=list)  # dead letters about it, handed over before its next value


#: the readings of the running invocation by SQS message id (`records` starts them, `settle` ends them)
_readings: dict[str, "Reading"] = {}


@dataclass
class Reading:
    """A failure record's reading on this receive: its Parts in order, and what it started from."""

    message_id: str
    body: str
    document: dict[str, Any]
    info: BatchInfo
    resume: Resume | None
    #: the message's last receive (`WIA_SQS_MAX_RECEIVE_COUNT`): a pinned S3 read S3 still denies is given up
    last_receive: bool = False
    parts: list[Part] = field(default_factory=list)
    #: the time of the S3 reads (GetObject) of the objects the records name
    s3_budget: Budget = field(default_factory=lambda: Budget(calls="S3 read"))

    def records(self, runtime: Any) -> Iterator[SourceRecord]:
        """The range's records, one Part each, then a Part that stops the reading (its items raise why:
        out of time, throttled throughout, a Kinesis error) or the one that ends it (the loss's dead letter).
        Never raises itself: the relay accounts for a Part that does."""
        lost: list[str] = []
        found = self.resume.found if self.resume is not None else 0
        limit = self.info.batch_size * MAX_PARALLELIZATION_FACTOR
        records = read_batch(lambda: _kinesis(runtime), self.info, lost, Budget(), self.resume)
        # a record cut in its middle on an earlier receive, until it is read back again
        pending = self.resume if self.resume is not None and self.resume.values > 0 else None
        while True:
            try:
                _need_time("not started", "the next Kinesis record")
                record = next(records, None)
            except Exception as exc:  # noqa: BLE001 - the stop Part carries it to the relay
                yield self._stop(exc)
                return
            if record is None:
                break
            sequence = record["SequenceNumber"]
            if pending is not None and sequence != pending.sequence:
                yield self._gone(pending)
            pending = None
            resume = self.resume
            again = resume is not None and resume.values > 0 and sequence == resume.sequence
            cut = resume.cut if resume is not None and resume.cut is not None and sequence == resume.cut.sequence else None
            part = Part(f"{self.message_id}#{sequence}", [], sequence=sequence, counts=not again,
                        skipped=resume.values if again and resume is not None else cut.values if cut else 0,
                        pins=resume.objects if again and resume is not None else cut.objects if cut else None,
                        covered=resume is not None and resume.covers(sequence))
            found += part.counts
            if found > limit:
                yield self._stop(RecoveryIncomplete(
                    f"the range holds more than {limit:,} records ({MAX_PARALLELIZATION_FACTOR} x batchSize "
                    f"{self.info.batch_size}, the most a ParallelizationFactor allows)"))
                return
            part.items = self._values(part, record["Data"], runtime) if not part.covered else iter(())
            part.complete = part.covered
            self.parts.append(part)
            yield part
            if part.cut:
                yield self._stop(OutOfTime(f"not finished: {_time_reason()}"))
                return
        if pending is not None:
            yield self._gone(pending)
        end = Part(f"{self.message_id}#end", self._end(found, lost, runtime))
        self.parts.append(end)
        yield end

    def _values(self, part: Part, data: bytes, runtime: Any) -> Iterator[Item]:
        source = f"kinesis:{self.info.stream_name}:{part.sequence}"
        values = body_items(data, source, lambda bucket, key: _open_object(
            part, source, bucket, key, runtime, self.last_receive, self.s3_budget, self.handed_any))
        for item in _cut_before_late_reads(values, part):
            while part.notes:           # a change found opening an object: on record, not counted as a value
                yield part.notes.pop(0)
            index, part.seen = part.seen, part.seen + 1
            if index < part.skipped:    # settled on an earlier receive
                if _out_of_time():      # the skip alone can be long (a record naming a large S3 object)
                    raise OutOfTime(f"not finished: {_time_reason()} while skipping the {part.skipped:,} values "
                                    "of the record already settled")
                continue
            if part.handed and _out_of_time():
                part.cut = True
                return
            yield item
            part.handed += 1
        if part.cut:
            return
        yield from part.notes
        part.notes.clear()
        seen = part.seen
        if part.skipped and seen <= part.skipped and not part.changed:
            # a cut leaves a value after it, so the record gave more than it settled then; Kinesis data does
            # not change, but an S3 object it names can be rewritten or deleted (a resume point written before
            # objects were pinned, or a forged count): the values not delivered before are not there to skip
            # to, so their loss goes on record
            yield Item(source, 0, error=ParseError(
                f"the record now gives {seen:,} value{'s' if seen != 1 else ''} where {part.skipped:,} were settled "
                "on an earlier receive: what it names changed (an S3 object rewritten or deleted), and its values "
                "not yet delivered are not known", source=source), raw=data[:4096])
            part.handed += 1
        part.complete = True

    def handed_any(self) -> bool:
        """Whether a value of the range was handed over on this receive (a stop now keeps progress)."""
        return any(part.handed for part in self.parts)

    def _gone(self, resume: Resume) -> Part:
        """The record a resume point cut in its middle, no longer in the stream: its values not yet delivered
        are lost, one dead letter says so (the record was counted as found when it was cut, so the loss's
        dead letter does not count it)."""
        sequence, values = resume.sequence or "", resume.values
        source = f"kinesis:{self.info.stream_name}:{sequence}"
        reason = (f"the record {sequence} ({self.info.describe()}) is no longer in the stream (trimmed after its "
                  f"retention period, or the shard or stream is gone): {values:,} of its values were settled on an "
                  "earlier receive, and the ones after them are lost")
        log.error("kinesis record cut in its middle is no longer in the stream",
                  extra={"shard": self.info.shard_id, "sequence": sequence, "settled_values": values})
        raw = json.dumps({"streamArn": self.info.stream_arn, "shardId": self.info.shard_id, "sequenceNumber": sequence,
                          "settledValues": values}, sort_keys=True).encode()
        part = Part(f"{self.message_id}#{sequence}", [Item(source, 0, error=ParseError(reason, source=source), raw=raw)],
                    sequence=sequence, complete=True)
        self.parts.append(part)
        return part

    def _stop(self, why: Exception) -> Part:
        def raising() -> Iterator[Item]:
            raise why
            yield  # noqa: unreachable - makes this a generator the relay reads (and catches)
        stop = Part(f"{self.message_id}#stop", raising())
        self.parts.append(stop)
        return stop

    def _end(self, found: int, lost: list[str], runtime: Any) -> Iterator[Item]:
        if found > self.info.batch_size:
            log.warning("kinesis range holds more records than the failed batch: with a ParallelizationFactor "
                        "above 1 the other virtual shards' records are forwarded again",
                        extra={"shard": self.info.shard_id, "start": self.info.start, "end": self.info.end,
                               "batch_size": self.info.batch_size, "found": found})
        if found < self.info.batch_size:
            _dead_letter_loss(self.info, found, lost, self.original(), runtime)
        log.info("kinesis batch read back", extra={"shard": self.info.shard_id, "start": self.info.start,
                                                    "end": self.info.end, "batch_size": self.info.batch_size,
                                                    "found": found})
        return
        yield  # noqa: unreachable - a generator: the loss is written when the relay reads this Part

    def original(self) -> str:
        """The failure record without a resume point, in one spelling (the loss's dead letter: one
        `dead_letter_id` whichever receive writes it)."""
        return json.dumps({k: v for k, v in self.document.items() if k != RESUME}, sort_keys=True)

    def settled_to(self, outcomes: dict[str, RecordOutcome]) -> Resume | None:
        """The resume point after what this reading settled (delivered or dead-lettered, nothing to retry):
        the records settled from its start on, and runs of records settled further on; None when it settled
        nothing new (no progress to keep)."""
        old = self.resume or Resume(None, 0, 0)
        sequence, values, found = old.sequence, old.values, old.found
        records = [p for p in self.parts if p.sequence is not None]

        def settled(part: Part) -> bool:
            outcome = outcomes.get(part.id)
            return outcome is not None and not outcome.retry

        head = 0
        objects: tuple[ObjectVersion, ...] | None = old.objects
        while head < len(records) and settled(records[head]):
            part = records[head]
            if not part.complete and not _pinnable(part.opened):
                break                   # its objects cannot be pinned: read again from its start (repeats, no skip)
            found += part.counts
            sequence, values = part.sequence, 0 if part.complete else part.skipped + part.handed
            objects = tuple(part.opened) if values else None
            head += 1
        runs: list[tuple[int, int]] = []
        fresh = False                   # a record settled on this receive beyond the first still to retry
        joined = False
        cut: Cut | None = None
        old_cut_done = False            # the old point's cut record settled to its end on this receive
        for part in records[head:]:
            if settled(part) and part.complete:
                fresh |= not part.covered
                old_cut_done |= old.cut is not None and part.sequence == old.cut.sequence
                number = int(part.sequence or 0)
                if joined:
                    runs[-1] = (runs[-1][0], number)
                else:
                    runs.append((number, number))
                joined = True
            else:
                joined = False
                if settled(part) and part.cut and part.sequence and _pinnable(part.opened):
                    # cut by the time (the last record read): its settled values are not handed over again
                    cut = Cut(part.sequence, part.skipped + part.handed, tuple(part.opened))
                    fresh |= part.handed > 0
        # runs of the old point beyond the last record read on this receive still hold
        last = int(records[-1].sequence or 0) if records else -1
        runs += [(max(first, last + 1), end) for first, end in old.settled if end > last]
        # the settled head only grows, to the range's end; runs alone count once after it moved (the runs
        # kept are capped, so ones settled again past the cap must not make a new message each receive)
        if head == 0 and (not fresh or old.settled or old.cut is not None):
            return None
        floor = int(sequence) if sequence is not None else -1
        runs = [(first, end) for first, end in runs if first > floor][:MAX_SETTLED_RUNS]
        if cut is None and old.cut is not None and not old_cut_done:
            cut = old.cut               # not read to its end on this receive: what it settled before still holds
        if cut is not None and int(cut.sequence) <= floor:
            cut = None                  # the settled head reached it
        return Resume(sequence, values, found, tuple(runs), objects, cut)

    def resumed_body(self, point: Resume) -> str:
        return json.dumps({**self.document, RESUME: point.as_json()})


def _cut_before_late_reads(values: Iterator[Item], part: Part) -> Iterator[Item]:
    """`values`, ending with `part` cut when an S3 read was not started for the time (`_open_object`) after
    values of it were handed over on this receive (the resume point then keeps them); with none handed
    over yet, the OutOfTime goes on (the record is retried as it was)."""
    try:
        yield from values
    except OutOfTime:
        if not part.handed:
            raise
        part.cut = True


def _open_object(part: Part, source: str, bucket: str, key: str, runtime: Any, last_receive: bool = False,
                 budget: Budget | None = None, handed_any: Callable[[], bool] | None = None) -> Iterator[Item]:
    """The values of an S3 object the record `part` names. While the values of a resumed record settled on
    an earlier receive are being skipped, the object is read in the version read then (the resume point's
    pin: IfMatch its ETag, and its VersionId in a versioned bucket), so the values skipped are the ones
    settled. If it changed since (rewritten, that version deleted, the object deleted), the skip ends
    there: the object is read as it is now from its start (values delivered before are sent again:
    duplicates over a silent loss), and a dead letter says what changed, how many values had been
    settled from it and that values of the earlier version not yet delivered are lost unless it still
    holds them. A pinned read S3 answers AccessDenied (`ObjectDenied`: a deleted object, to a role without
    s3:ListBucket on the bucket, or no read access) fails the record, so the message is retried, up to its
    `last_receive`: there the object is given up as deleted, with the dead letter naming both causes.

    Each GetObject is weighed against the invocation's time (`budget`): once values of the range were handed
    over on this receive (`handed_any`), a read that could end inside the reserve (counted as long as the
    slowest S3 read of the reading) is not started: the record is cut before it when values of it were handed
    over (`_cut_before_late_reads`), else it fails and is retried, after what was settled before it; with
    none handed over yet, one is started while any time is left (not starting it would make no progress). The
    read itself is bounded too: its client is the time-fitted one the S3 trigger uses (`_fitted_get_object`;
    under 2 s left not one try fits, and the read is not started: OutOfTime)."""
    budget = budget or Budget(calls="S3 read")
    progress = handed_any or (lambda: part.handed > 0)

    def read(pinned: ObjectVersion | None = None) -> tuple[Any, ObjectVersion]:
        expected = budget.longest if progress() else 0.0
        return budget.call_within(expected, _fitted_get_object, runtime=runtime, bucket=bucket, key=key, pin=pinned)

    where = f"s3://{bucket}/{key}"
    index = len(part.opened)
    pinning = part.pins is not None and part.seen < part.skipped
    pin = part.pins[index] if pinning and part.pins is not None and index < len(part.pins) else None
    try:
        try:
            if pinning and (pin is None or (pin.bucket, pin.key) != (bucket, key)):
                raise ObjectChanged(ObjectVersion(bucket, key, None), "NotPinned")
            response, version = read(pin)
        except ObjectChanged as exc:
            settled = part.skipped - part.seen      # values of the record from this object on settled before
            part.skipped, part.changed = part.seen, True
            if exc.code == "Created":               # absent before: only its not-found item was settled
                response, version = read()
            else:
                try:
                    response, version = read()
                except ObjectMissing:               # gone: the note is its item (one dead letter, not two)
                    part.opened.append(ObjectVersion(bucket, key, None))
                    return iter([_change_note(source, exc.pin, exc.code, settled, still_there=False)])
                part.notes.append(_change_note(source, exc.pin, exc.code, settled, still_there=True))
        except ObjectDenied as exc:
            if not last_receive:
                raise                               # a refusal can pass (a policy being fixed): retried
            settled = part.skipped - part.seen
            part.skipped, part.changed = part.seen, True
            part.opened.append(ObjectVersion(bucket, key, None))
            return iter([_change_note(source, exc.pin, exc.code, settled, still_there=False)])
    except ObjectMissing as exc:
        part.opened.append(ObjectVersion(bucket, key, None))
        return iter([missing_item(where, exc.code)])
    part.opened.append(version)
    return object_items(where, response)


def _kinesis(runtime: Any) -> Any:
    """The Kinesis client for one call of the reading: its timeouts and attempts fit the time left before the
    reserve (settings.Clients.fitted; OutOfTime when not one try fits). With the shared client (botocore's 60 s
    connect and read timeouts, 3 attempts) a GetRecords that never answered held the invocation past its end: the
    budget is weighed before a call starts, not during it, and Lambda stopped the function mid-reading."""
    return runtime.settings.clients.fitted("kinesis", time_left(), "reading the batch back from the stream",
                                           "before the invocation's time reserve")


def _fitted_get_object(runtime: Any, bucket: str, key: str, pin: ObjectVersion | None) -> tuple[Any, ObjectVersion]:
    """GetObject with the S3 client chosen when the read starts, its timeouts and attempts fitting the time left
    before the reserve (settings.Clients.s3_reader; OutOfTime when not one try fits): with the shared client a
    request that never answered waited botocore's 60 s per timeout and attempt, past the invocation's end."""
    return get_object(runtime.settings.clients.s3_reader(time_left()), bucket, key, pin)


#: what changed, by the error code of the pinned read (`_change_note`)
_CHANGES = {"PreconditionFailed": "was rewritten (its ETag is no longer {etag})", "412": "was rewritten (its ETag "
            "is no longer {etag})", "NoSuchVersion": "lost the version read before ({version}: deleted)",
            "NoSuchKey": "was deleted", "404": "was deleted", "NoSuchBucket": "is gone with its bucket",
            "NotPinned": "is not one the resume point pinned (a resume point naming other objects)",
            "AccessDenied": "was deleted or cannot be read by the function: S3 answered AccessDenied to its read on "
                            "each receive up to the last (what S3 answers for a missing key to a role without "
                            "s3:ListBucket on the bucket)"}
_CHANGES["403"] = _CHANGES["AccessDenied"]


def _change_note(source: str, pin: ObjectVersion, code: str, settled: int, still_there: bool) -> Item:
    """The dead letter of an S3 object a resumed record names that changed between two receives."""
    what = _CHANGES.get(code, f"changed ({code})").format(etag=pin.etag, version=pin.version_id)
    then = ("it is read as it is now, from its start (values delivered before are sent again); values of the "
            "version read before that were not yet delivered are lost unless it still holds them" if still_there
            else "its values not yet delivered are not forwarded (still in the object if it is there)"
            if code in ("AccessDenied", "403") else "its values not yet delivered are lost")
    reason = (f"the S3 object s3://{pin.bucket}/{pin.key} named by this record {what} between two receives of its "
              f"failure record, after {settled:,} value{'s' if settled != 1 else ''} of the record from it on were "
              f"settled: {then}")
    log.warning("an S3 object named by a resumed kinesis record changed between receives",
                extra={"source": source, "bucket": pin.bucket, "key": pin.key, "code": code, "settled": settled})
    raw = json.dumps({"bucket": pin.bucket, "key": pin.key, "eTag": pin.etag, "versionId": pin.version_id,
                      "settledValues": settled, "change": code}, sort_keys=True).encode()
    return Item(source, 0, error=ParseError(reason, source=source), raw=raw)


def recovered_records(body: str, document: dict[str, Any], message_id: str, runtime: Any,
                      last_receive: bool = False) -> Iterator[SourceRecord]:
    """The failed batch a failure record names, read back from the stream, as relay records (`Reading`; on
    the message's `last_receive`, what is still refused is given up); a record that is not a well-formed
    failure record is one record of one unparseable item (dead-lettered, never retried)."""
    source = f"sqs:{message_id}"
    try:
        info = batch_info(document)
        resume = resume_of(document, info)
    except ParseError as exc:
        yield SourceRecord(message_id, [Item(source, 0, error=ParseError(exc.reason, source=source, path=exc.path),
                                             raw=body.encode("utf-8", "surrogatepass")[:4096])])
        return
    reading = _readings[message_id] = Reading(message_id, body, document, info, resume, last_receive)
    yield from reading.records(runtime)


def begin() -> None:
    """A new invocation: forget the readings of the last one."""
    _readings.clear()


def reading_of(message_id: str) -> Reading | None:
    return _readings.get(message_id)


def message_of(record_id: str) -> str:
    """The SQS message id a relay record id belongs to (a Part's id is `<message id>#<sequence|stop|end>`)."""
    return record_id.rsplit("#", 1)[0] if "#" in record_id else record_id


def resume_later(reading: Reading, outcomes: Iterable[RecordOutcome], runtime: Any) -> bool:
    """For a reading with Parts to retry that settled something new (`Reading.settled_to`), send the failure
    queue the failure record with that resume point and mark its Parts settled (the message is then
    deleted, and the new one read from that point). False (nothing changed) when there is no progress to
    keep or the message cannot be sent: the message is then retried from its own start (or resume point)."""
    outcomes = {o.id: o for o in outcomes}
    if not any(o.retry for o in outcomes.values()):
        return False
    point = reading.settled_to(outcomes)
    queue = runtime.settings.kinesis_failure_queue
    if point is None or not queue:
        return False
    try:
        # sent in the time reserve, after the relay: the client fits what is left of the invocation (a SendMessage
        # that never got its answer waited botocore's 60 s per try, past the invocation's end)
        runtime.settings.clients.fitted("sqs", time_to_deadline(), "writing the resume point").send_message(
            QueueUrl=queue_url(queue), MessageBody=reading.resumed_body(point))
    except Exception as exc:  # noqa: BLE001 - retried from the message's own start instead: repeats, no loss
        log.error("could not write the kinesis batch's resume point: the message is read again from its start",
                  extra={"shard": reading.info.shard_id, "resume_after": point.sequence,
                         "error": f"{type(exc).__name__}: {exc}"})
        return False
    log.warning("kinesis batch read back in part: the rest is read from a new failure-queue message",
                extra={"shard": reading.info.shard_id, "start": reading.info.start, "end": reading.info.end,
                       "resume_after": point.sequence, "values": point.values, "found": point.found})
    for outcome in outcomes.values():
        if outcome.retry:
            outcome.retry = False
            outcome.errors.append({"reason": f"resumed after sequence number {point.sequence} in a new message"})
    return True


def queue_url(arn: str) -> str:
    """The URL of the SQS queue an ARN names (`arn:<partition>:sqs:<region>:<account>:<name>`): SendMessage
    takes a URL, and looking it up (GetQueueUrl) would need one more permission."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {arn!r}")
    domain = "amazonaws.com.cn" if parts[1] == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{parts[3]}.{domain}/{parts[4]}/{parts[5]}"


def _out_of_time() -> bool:
    left = time_left()
    return left is not None and left <= 0


def _time_reason() -> str:
    return (f"reading the batch back from the stream, the invocation's time reserve ({ENV_TIME_RESERVE}) was "
            "reached; the rest is retried")


def _need_time(state: str, what: str) -> None:
    if _out_of_time():
        raise OutOfTime(f"{state}: {_time_reason()} before {what}")


#: the dead letter's reason for records of a failed batch that are no longer in the stream
LOST_REASON = ("Kinesis records lost: {missing} of the {size} records of the failed batch ({range}) are no "
               "longer in the stream (trimmed after its retention period, or the shard or stream is gone); "
               "{found} were read back")


def _dead_letter_loss(info: BatchInfo, found: int, lost: list[str], body: str, runtime: Any) -> None:
    reason = LOST_REASON.format(missing=info.batch_size - found, size=info.batch_size, range=info.describe(),
                                found=found)
    if lost:
        reason += f" ({'; '.join(lost)})"
    rejected = Rejected(reason, where=info.where, raw=body.encode("utf-8", "surrogatepass"), errors=[{
        "code": "kinesis_records_lost", "stream_arn": info.stream_arn, "shard_id": info.shard_id,
        "start_sequence_number": info.start, "end_sequence_number": info.end, "batch_size": info.batch_size,
        "found": found, "missing": info.batch_size - found}])
    log.error("kinesis records lost", extra={"shard": info.shard_id, "start": info.start, "end": info.end,
                                             "batch_size": info.batch_size, "found": found})
    dead_letter = runtime.relay.dead_letter
    dead_letter.put(rejected)
    if dead_letter.flush():
        # raised inside the record's reading: the relay reports the message back, so the loss is not forgotten
        raise RecoveryIncomplete("the dead letter for the lost range could not be written")
