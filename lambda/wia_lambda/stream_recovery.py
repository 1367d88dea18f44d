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
message is the unit of retry: a destination that still fails reports it back, and on its last
receive (`WIA_SQS_MAX_RECEIVE_COUNT`) the failing events are dead-lettered with the reason.

Records no longer in the stream (trimmed after the retention period, the shard or stream gone) are
one dead letter naming the stream, shard and sequence range with how many of `batchSize` were
found (`LOST_REASON`), the failure record as `raw`. It is written when the reading ends, on every
reading of the message (a message reported back for another reason writes it again, with the same
`dead_letter_id`); if it cannot be written, reading the message fails and it is retried.

The reading is weighed against the invocation's time (`handler.time_left`: what the Lambda context has
left before `WIA_TIME_RESERVE`): a Kinesis call, or a throttling backoff and the call after it, is not
started when it could end inside the reserve, a call counted as long as the longest one of this reading
so far (SDK retries included). The reading then stops (OutOfTime): the message is reported back and read
again from its start on a later receive, no loss dead letter written (the range was not read to its
end). Values read before the stop were handed to the destinations and are handed to them again on that
receive, under the same names: id-keyed destinations (Security Hub, OpenSearch, Kafka) keep one copy,
rejections are held back until the message settles and have the same `dead_letter_id`.
"""
from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from wia_security.connectors.base import Rejected
from wia_security.connectors.relay import OutOfTime
from wia_security.errors import ParseError
from wia_security.reader import Item

from .handler import ENV_TIME_RESERVE, time_left
from .logs import get_logger
from .payloads import body_items

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
    except ValueError:
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


def where_of(body: str | None, default: str) -> str:
    """The batch's name (`kinesis:<stream>:<shard>:<start>-<end>`) for a failure-record body, else `default`."""
    document = failure_record(body or "")
    try:
        return batch_info(document).where if document is not None else default
    except ParseError:
        return default


class Budget:
    """The reading's time: a Kinesis call, or a backoff wait and the call after it, is started only if it
    can end before the invocation's time reserve (`time_left`), a call counted as long as the longest one
    of this reading so far. Without a Lambda context (`time_left` None) there is no limit."""

    def __init__(self, left: Callable[[], float | None] = time_left) -> None:
        self._left = left
        self.longest = 0.0          # seconds the slowest Kinesis call of the reading took

    def call(self, operation: Callable[..., Any], **params: Any) -> Any:
        before = self._need(self.longest, "the next Kinesis call")
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


def _call(budget: Budget, operation: Callable[..., Any], **params: Any) -> Any:
    """One Kinesis call, retried with backoff while the shard's read throughput is exceeded and the
    invocation's time allows (OutOfTime when it does not)."""
    for attempt in range(THROTTLE_TRIES):
        try:
            return budget.call(operation, **params)
        except Exception as exc:  # noqa: BLE001 - botocore's ClientError, told apart by its code
            if _code(exc) not in THROTTLED:
                raise
            if attempt == THROTTLE_TRIES - 1:
                raise RecoveryIncomplete(f"the shard's read throughput was exceeded on {THROTTLE_TRIES} tries "
                                         f"({_code(exc)})") from None
            wait = min(THROTTLE_MAX_WAIT, THROTTLE_BACKOFF * 2 ** attempt)
            budget.wait(wait / 2 + random.uniform(0, wait / 2))
    raise AssertionError("unreachable")


def read_batch(kinesis: Any, info: BatchInfo, lost: list[str], budget: Budget) -> Iterator[dict[str, Any]]:
    """The batch's records still in the stream, in order (GetRecords' record dicts). Why others could not
    be read is appended to `lost` (an unreadable range is a loss, not an exception); a reading that cannot
    finish now raises RecoveryIncomplete, or OutOfTime when the invocation's `budget` is spent."""
    start, end = int(info.start), int(info.end)
    stream = {"StreamARN": info.stream_arn}
    after: str | None = None            # the last sequence number read, to resume after an expired iterator
    pages = 0

    def iterator() -> str:
        position = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after} if after else
                    {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": info.start})
        return _call(budget, kinesis.get_shard_iterator, **stream, ShardId=info.shard_id, **position)["ShardIterator"]

    try:
        shard_iterator: str | None = iterator()
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
            page = _call(budget, kinesis.get_records, **stream, ShardIterator=shard_iterator,
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
            if sequence >= start:
                yield record
            if sequence == end:
                return
        shard_iterator = page.get("NextShardIterator")
        if not page.get("Records") and page.get("MillisBehindLatest") == 0:
            lost.append("the stream's newest record comes before the end of the range")
            return
    lost.append("the shard is closed and ends before the end of the range")


def recovered_items(body: str, document: dict[str, Any], message_id: str, runtime: Any) -> Iterator[Item]:
    """The values of the failed batch a failure record names, read back from the stream; a record that is
    not a well-formed failure record is one unparseable item (dead-lettered, never retried)."""
    source = f"sqs:{message_id}"
    try:
        info = batch_info(document)
    except ParseError as exc:
        yield Item(source, 0, error=ParseError(exc.reason, source=source, path=exc.path),
                   raw=body.encode("utf-8", "surrogatepass")[:4096])
        return
    lost: list[str] = []
    found = 0
    for record in read_batch(runtime.settings.clients.client("kinesis"), info, lost, Budget()):
        found += 1
        yield from body_items(record["Data"], f"kinesis:{info.stream_name}:{record['SequenceNumber']}",
                              runtime.open_object)
    if found < info.batch_size:
        _dead_letter_loss(info, found, lost, body, runtime)
    log.info("kinesis batch read back", extra={"shard": info.shard_id, "start": info.start, "end": info.end,
                                                "batch_size": info.batch_size, "found": found})


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
