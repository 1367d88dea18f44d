"""Dead letters on AWS: an SQS queue (one record a message) or S3 objects (NDJSON, gzip).

Both follow the dead-letter protocol (`put`, `flush`, `close`, `count`) with one addition the
function relay relies on: `flush()` returns the Rejected it could not store (empty when all were
stored), so the records they came from are reported back for retry instead of being lost.

    sqs://sqs.<region>.amazonaws.com/<account>/<queue>   (or the https:// queue URL itself)
    s3://<bucket>/<prefix>

SQS: SendMessageBatch of at most 10 entries (`MAX_BATCH_ENTRIES`) and, per message and per batch, the
queue's message limit: its MaximumMessageSize (1,024 to 1,048,576 bytes, `MAX_MESSAGE_BYTES`; 1 MiB by
default since 2025, 256 KiB for a queue created before), read once with GetQueueAttributes; a batch is
also bounded by SQS's batch total (`MAX_BATCH_BYTES`, 1 MiB), so never by more than the queue's own
message limit. A record bigger than one message (a big unreadable line, a big refused event) is sent as
several messages (`record_parts`, `RECORD_PART_CHARS` characters per 256 KiB of the limit): each carries
`dead_letter_id`, `failed_at`, `where`, `sink`, `reason`, `part`, `parts` and `record_part`, a piece of the
record's JSON text; joined in `part` order they give the record back. U+FFFE and U+FFFF, which SQS
refuses in a body, are written as JSON escapes. A batch SQS refuses whole (400) is sent again one message
at a time, so a message the queue refuses returns its record alone.

A queue set below 256 KiB refuses a message over its limit (InvalidParameterValue "... Message must be
shorter than N bytes."): without its limit, such a record was returned unstored, retried with its source
record until the source gave up, and then neither it nor its reason reached the dead letter. The limit is
read from the queue (`sqs:GetQueueAttributes` on it); when that read is refused (a role without it) the
writer starts at 256 KiB (`CLASSIC_MESSAGE_BYTES`: no queue at or above it refuses such a message, and no
refusal names a bigger limit to learn) and learns a smaller limit from the first refusal naming it: the
refused record is cut again to that size, as a new write (a later `failed_at`) when some of its parts were
already stored, and sent again in the same flush.

S3: one object per flush, `<prefix>/YYYY/MM/DD/<time>-<uuid>.ndjson.gz`.
"""
from __future__ import annotations

import datetime as dt
import gzip
import logging
import re
import time
import uuid
from typing import Any, Callable
from urllib.parse import urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError
from wia_security.timeutil import now_iso

from ..base import Rejected
from ..dead_letter import dead_letter_record

log = logging.getLogger(__name__)

#: SendMessageBatch: at most 10 entries per call.
MAX_BATCH_ENTRIES = 10
#: The largest MaximumMessageSize SQS allows a queue (1 MiB since 2025; SetQueueAttributes: "from 1,024 bytes
#: (1 KiB) up to 1,048,576 bytes (1 MiB)", the default for a new queue).
MAX_MESSAGE_BYTES = 1_048_576
#: SendMessageBatch's total payload, the sum of its messages' sizes: 1 MiB ("The maximum allowed individual
#: message size and the maximum total payload size ... are both 1 MiB").
MAX_BATCH_BYTES = 1_048_576
#: The classic limit, 262,144 bytes: what a queue created before 2025 takes, and what the writer sends when
#: it cannot read the queue's limit (a bigger queue takes it, a smaller one's refusal names its own).
CLASSIC_MESSAGE_BYTES = 256 * 1024
#: The smallest MaximumMessageSize SQS allows a queue.
MIN_QUEUE_MESSAGE_BYTES = 1024
#: SQS's refusal of a message, or a batch, over the limit, naming the limit (InvalidParameterValue "...
#: Message must be shorter than N bytes.", BatchRequestTooLong "Batch requests cannot be longer than N bytes.")
_SIZE_REFUSAL = re.compile(r"(?:shorter|longer) than (\d+) bytes")
#: Characters of a big record's JSON text per part for each 256 KiB of the queue's limit (32K at 256 KiB or
#: less, shrunk to fit a smaller queue; 128K at 1 MiB): at most 6 bytes each once written into a message
#: (a control character escaped as \\u00XX), so <= 3/4 of the limit, leaving room for the header (reason
#: <= 1000 characters).
RECORD_PART_CHARS = 32 * 1024
#: Characters of the reason repeated in every part (the whole reason is in the joined record).
PART_REASON_CHARS = 1000


def record_parts(record: dict[str, Any], text: str, part_chars: int = RECORD_PART_CHARS,
                 reason_chars: int = PART_REASON_CHARS) -> list[dict[str, Any]]:
    """`text` (the record's JSON) cut into parts of `part_chars` characters, each a small record of its own
    naming the dead letter, so a reader can find, order and join them: `part` 1..`parts`, `record_part`;
    each part repeats the first `reason_chars` characters of the reason."""
    chunks = [text[i:i + part_chars] for i in range(0, len(text), part_chars)] or [""]
    # failed_at tells one write of the record from another (a redelivered value refused again has the same
    # dead_letter_id but another text, cut at other places): a reader joins the parts of one write only
    header = {k: record[k] for k in ("dead_letter_id", "failed_at", "where", "sink") if k in record}
    header["reason"] = str(record.get("reason", ""))[:reason_chars]
    return [{**header, "part": number, "parts": len(chunks), "record_part": chunk}
            for number, chunk in enumerate(chunks, 1)]


#: Characters valid in UTF-8 and left as they are by JSON that SQS refuses in a body (InvalidMessageContents:
#: it takes #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF; JSON escapes the control characters).
_SQS_REFUSED = {0xFFFE: "\\ufffe", 0xFFFF: "\\uffff"}


def _sqs_body(record: Any) -> str:
    """The record's JSON as SQS takes it: U+FFFE/U+FFFF as JSON escapes (they only occur inside strings),
    which read back as the same characters. Written as they are, the message was refused, and with it its batch."""
    return jsonio.dumps(record).translate(_SQS_REFUSED)


def _refused_request(exc: Exception) -> bool:
    """Whether SQS answered the request 400 (the request itself refused; not throttling or an outage)."""
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 400


def _size(body: str) -> int:
    return len(body.encode("utf-8", "surrogatepass"))


def message_bodies(record: dict[str, Any], limit: int = CLASSIC_MESSAGE_BYTES) -> list[str] | None:
    """One SQS message body for the record, or its parts when it is bigger than `limit` bytes, each at
    most `limit` bytes; None when not even a part's header fits (a `where` of kilobytes in a 1 KiB queue)."""
    body = _sqs_body(record)
    if _size(body) <= limit:
        return [body]
    # the reason repeated in every part: 1000 characters in a 256 KiB message, 16 in a 1 KiB one
    reason_chars = min(PART_REASON_CHARS, limit // 64)
    # parts grow with a queue above 256 KiB (a 1 MiB queue: 4 times fewer); below it they shrink to fit
    part_chars = RECORD_PART_CHARS * max(limit, CLASSIC_MESSAGE_BYTES) // CLASSIC_MESSAGE_BYTES
    while part_chars >= 16:
        bodies = [_sqs_body(part) for part in record_parts(record, body, part_chars, reason_chars)]
        biggest = max(map(_size, bodies))
        if biggest <= limit:
            return bodies
        part_chars = min(part_chars * 7 // 8, part_chars * limit // biggest)
    return None


def _size_limit_named(code: str, message: str) -> int | None:
    """The byte limit SQS names when it refuses a message or a batch for its size; None for other refusals."""
    if code not in ("InvalidParameterValue", "BatchRequestTooLong") and not code.endswith(".BatchRequestTooLong"):
        return None
    found = _SIZE_REFUSAL.search(message or "")
    return int(found.group(1)) if found else None


def _size_limit_of_error(exc: Exception) -> int | None:
    error = (getattr(exc, "response", None) or {}).get("Error") or {}
    return _size_limit_named(str(error.get("Code", "")), str(error.get("Message", "")))


def _both(first: int | None, second: int | None) -> int | None:
    """Two refusals of one record's messages: a limit only if both were size refusals (the smaller one); a
    record refused for another reason too is returned for retry, not cut again."""
    return None if first is None or second is None else min(first, second)


def _message_bodies(rejected: Rejected) -> list[str]:
    """The SQS message bodies of a rejection's record at the classic limit (one, or its parts)."""
    return message_bodies(dead_letter_record(rejected)) or []


def _rewritten(record: dict[str, Any]) -> dict[str, Any]:
    """The record as a new write: a later failed_at, so its parts never join with those of the write
    some of whose parts were stored before it was cut again (a reader joins the parts of one write)."""
    failed_at = now_iso()
    while failed_at <= str(record.get("failed_at", "")):
        time.sleep(0.001)                       # failed_at has milliseconds: the next one is a millisecond away
        failed_at = now_iso()
    return {**record, "failed_at": failed_at}


def queue_url(spec: str) -> str:
    """An SQS queue URL from `sqs://host/account/queue` or an https:// queue URL."""
    if spec.startswith("https://") or spec.startswith("http://"):
        return spec
    parts = urlsplit(spec)
    if parts.scheme != "sqs" or not parts.netloc or parts.path.count("/") != 2:
        raise ConfigError("expected sqs://sqs.<region>.amazonaws.com/<account>/<queue> or the queue's https URL",
                          key="dead_letter")
    return f"https://{parts.netloc}{parts.path}"


def _region_of_queue(url: str) -> str | None:
    host = urlsplit(url).hostname or ""
    parts = host.split(".")
    return parts[1] if len(parts) > 3 and parts[0] == "sqs" else None


class SqsDeadLetter:
    def __init__(self, url: str, *, client: Any = None) -> None:
        self.url = queue_url(url)
        if client is None:
            from .securityhub import make_client
            client = make_client("sqs", _region_of_queue(self.url))
        self._client = client
        self._pending: list[tuple[Rejected, dict[str, Any]]] = []
        self._limit: int | None = None       # bytes a message (and a batch) may have: read once, lowered by refusals
        self.count = 0

    @property
    def message_limit(self) -> int:
        """The queue's MaximumMessageSize (1 KiB to 1 MiB), read with GetQueueAttributes on first use; 256 KiB
        when it cannot be read (a refusal naming a smaller limit lowers it then)."""
        if self._limit is None:
            try:
                attributes = self._client.get_queue_attributes(
                    QueueUrl=self.url, AttributeNames=["MaximumMessageSize"]).get("Attributes") or {}
                self._limit = max(MIN_QUEUE_MESSAGE_BYTES, min(int(attributes["MaximumMessageSize"]), MAX_MESSAGE_BYTES))
            except Exception as exc:  # noqa: BLE001 - a role without sqs:GetQueueAttributes still writes
                code = ((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code") or type(exc).__name__
                log.warning("could not read the dead-letter queue's MaximumMessageSize (%s): messages up to %d bytes "
                            "are sent and a smaller limit is learned from the queue's first refusal", code,
                            CLASSIC_MESSAGE_BYTES)
                if getattr(exc, "response", None) is None:
                    # no answer (a timeout, a connection cut, no time left to ask): asked again on the next flush;
                    # kept, a 1 MiB queue would get every big record in 256 KiB parts for the process's life
                    return CLASSIC_MESSAGE_BYTES
                self._limit = CLASSIC_MESSAGE_BYTES     # refused (no permission): the queue's refusals teach it
        return self._limit

    def put(self, rejected: Rejected) -> None:
        self._pending.append((rejected, dead_letter_record(rejected)))

    def flush(self) -> list[Rejected]:
        pending, self._pending = self._pending, []
        records = [record for _, record in pending]
        failed: set[int] = set()             # positions in `pending` with a message not stored
        todo = list(range(len(pending)))
        while todo:
            limit = self.message_limit
            refused, stored = self._send_records(records, todo, limit)
            todo = []
            for position, named in refused.items():
                if named is not None and MIN_QUEUE_MESSAGE_BYTES <= named < limit:
                    # the queue takes less than the limit used: cut the record again to what it named, now
                    self._limit = min(self.message_limit, named)
                    if position in stored:
                        records[position] = _rewritten(records[position])
                    todo.append(position)
                else:
                    failed.add(position)
        # a record with one part missing is retried whole: its parts may repeat (same dead_letter_id), never go missing
        self.count += len(pending) - len(failed)
        return [pending[position][0] for position in sorted(failed)]

    def _send_records(self, records: list[dict[str, Any]], positions: list[int],
                      limit: int) -> tuple[dict[int, int | None], set[int]]:
        """Send the records at `positions` in messages of at most `limit` bytes. Returns the positions with a
        message refused, each with the smaller limit a size refusal named (None: refused for another reason,
        or every refusal named no smaller limit), and the positions with a message stored."""
        refused: dict[int, int | None] = {}
        stored: set[int] = set()
        batch: list[tuple[int, str]] = []
        size = 0

        def send() -> None:
            outcome = self._send(batch)
            for index, (position, _) in enumerate(batch):
                if index not in outcome:
                    stored.add(position)        # this message is in the queue: a new cut is a new write
                else:
                    named = outcome[index]
                    refused[position] = _both(refused[position], named) if position in refused else named

        for position in positions:
            bodies = message_bodies(records[position], limit)
            if bodies is None:
                refused[position] = None
                continue
            for body in bodies:
                n = _size(body)
                # within the queue's own limit too: a batch over it has been reported refused whole (one of the
                # two answers tests/servers/sqs_contract.py plays), and a 1 MiB queue's batch is SQS's 1 MiB anyway
                if batch and (len(batch) == MAX_BATCH_ENTRIES or size + n > min(limit, MAX_BATCH_BYTES)):
                    send()
                    batch, size = [], 0
                batch.append((position, body))
                size += n
        if batch:
            send()
        return refused, stored

    def _send(self, batch: list[tuple[int, str]]) -> dict[int, int | None]:
        """Indexes in `batch` of the messages refused, each with the limit a size refusal named (else None)."""
        entries = [{"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(batch)]
        try:
            response = self._client.send_message_batch(QueueUrl=self.url, Entries=entries)
        except Exception as exc:  # noqa: BLE001 - the caller retries the records; the reason is in its log
            if len(batch) > 1 and _refused_request(exc):
                # SQS refuses a whole batch for one entry (over the queue's MaximumMessageSize, ...): one by
                # one, only that record is returned; sent again with it, its neighbours would share its fate
                return {index: named for index, entry in enumerate(batch) for named in self._send([entry]).values()}
            named = _size_limit_of_error(exc) if _refused_request(exc) else None
            return {index: named for index in range(len(batch))}
        return {int(entry["Id"]): _size_limit_named(str(entry.get("Code", "")), str(entry.get("Message", "")))
                for entry in response.get("Failed") or []}

    def close(self) -> None:
        self.flush()


class S3DeadLetter:
    def __init__(self, spec: str, *, client: Any = None) -> None:
        parts = urlsplit(spec)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError("expected s3://<bucket>/<prefix>", key="dead_letter")
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        if client is None:
            from .securityhub import make_client
            client = make_client("s3")
        self._client = client
        self._pending: list[Rejected] = []
        self.count = 0
        self.keys: list[str] = []

    def put(self, rejected: Rejected) -> None:
        self._pending.append(rejected)

    def flush(self) -> list[Rejected]:
        pending, self._pending = self._pending, []
        if not pending:
            return []
        body = gzip.compress(("\n".join(jsonio.dumps(dead_letter_record(r)) for r in pending) + "\n").encode())
        now = dt.datetime.now(dt.timezone.utc)
        key = "/".join(p for p in (self.prefix, now.strftime("%Y/%m/%d"),
                                   f"{now.strftime('%H%M%S')}-{uuid.uuid4().hex}.ndjson.gz") if p)
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson",
                                    ContentEncoding="gzip")
        except Exception:  # noqa: BLE001 - unstored: the caller retries the records
            return pending
        self.count += len(pending)
        self.keys.append(key)
        return []

    def close(self) -> None:
        self.flush()


def open_aws_dead_letter(spec: str, *, client_for: Callable[[str, str | None], Any] | None = None) -> Any | None:
    """SqsDeadLetter / S3DeadLetter for an sqs:// , SQS https:// or s3:// spec; None for anything else.
    `client_for(service, region)` gives the client to write with (the Lambda forwarder's, fitted to the
    invocation's time); by default one of botocore's own bounds."""
    if spec.startswith("sqs://") or (spec.startswith("https://sqs.") and ".amazonaws.com/" in spec):
        url = queue_url(spec)
        return SqsDeadLetter(url, client=client_for("sqs", _region_of_queue(url)) if client_for else None)
    if spec.startswith("s3://"):
        return S3DeadLetter(spec, client=client_for("s3", None) if client_for else None)
    return None
