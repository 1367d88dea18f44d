"""Dead letters on AWS: an SQS queue (one record a message) or S3 objects (NDJSON, gzip).

Both follow the dead-letter protocol (`put`, `flush`, `close`, `count`) with one addition the
function relay relies on: `flush()` returns the Rejected it could not store (empty when all were
stored), so the records they came from are reported back for retry instead of being lost.

    sqs://sqs.<region>.amazonaws.com/<account>/<queue>   (or the https:// queue URL itself)
    s3://<bucket>/<prefix>

SQS: SendMessageBatch of at most 10 entries (`MAX_BATCH_ENTRIES`) and 256 KiB (`MAX_BATCH_BYTES`, the
classic per-message and per-batch limit every queue accepts). A record bigger than one message (a 600 KB
unreadable line, a big refused event) is sent as several messages (`record_parts`): each carries
`dead_letter_id`, `where`, `sink`, `reason`, `part`, `parts` and `record_part`, a piece of the record's
JSON text; joined in `part` order they give the record back. Returning it unstored instead had it
retried until its source gave up, and then it was lost. U+FFFE and U+FFFF, which SQS refuses in a body,
are written as JSON escapes. A batch SQS refuses whole (400) is sent again one message at a time, so a
message the queue refuses returns its record alone. S3: one object per flush,
`<prefix>/YYYY/MM/DD/<time>-<uuid>.ndjson.gz`.
"""
from __future__ import annotations

import datetime as dt
import gzip
import uuid
from typing import Any
from urllib.parse import urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError

from ..base import Rejected
from ..dead_letter import dead_letter_record

#: SendMessageBatch: at most 10 entries per call.
MAX_BATCH_ENTRIES = 10
#: The classic SQS message size limit, also the batch total: 262,144 bytes.
MAX_MESSAGE_BYTES = 256 * 1024
MAX_BATCH_BYTES = 256 * 1024
#: Characters of a big record's JSON text per part: at most 6 bytes each once written into a message
#: (a control character escaped as \\u00XX), so <= 192 KiB, leaving room for the header (reason <= 1000 characters).
RECORD_PART_CHARS = 32 * 1024
#: Characters of the reason repeated in every part (the whole reason is in the joined record).
PART_REASON_CHARS = 1000


def record_parts(record: dict[str, Any], text: str, part_chars: int = RECORD_PART_CHARS) -> list[dict[str, Any]]:
    """`text` (the record's JSON) cut into parts of `part_chars` characters, each a small record of its own
    naming the dead letter, so a reader can find, order and join them: `part` 1..`parts`, `record_part`."""
    chunks = [text[i:i + part_chars] for i in range(0, len(text), part_chars)] or [""]
    # failed_at tells one write of the record from another (a redelivered value refused again has the same
    # dead_letter_id but another text, cut at other places): a reader joins the parts of one write only
    header = {k: record[k] for k in ("dead_letter_id", "failed_at", "where", "sink") if k in record}
    header["reason"] = str(record.get("reason", ""))[:PART_REASON_CHARS]
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


def _message_bodies(rejected: Rejected) -> list[str]:
    """One SQS message body for the record, or its parts when it is bigger than one message."""
    record = dead_letter_record(rejected)
    body = _sqs_body(record)
    if len(body.encode("utf-8", "surrogatepass")) <= MAX_MESSAGE_BYTES:
        return [body]
    return [_sqs_body(part) for part in record_parts(record, body)]


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
        self._pending: list[tuple[Rejected, list[str]]] = []
        self.count = 0

    def put(self, rejected: Rejected) -> None:
        self._pending.append((rejected, _message_bodies(rejected)))

    def flush(self) -> list[Rejected]:
        pending, self._pending = self._pending, []
        failed: set[int] = set()             # positions in `pending` with a message not stored
        batch: list[tuple[int, str]] = []
        size = 0
        for position, (_, bodies) in enumerate(pending):
            for body in bodies:
                n = len(body.encode("utf-8", "surrogatepass"))
                if batch and (len(batch) == MAX_BATCH_ENTRIES or size + n > MAX_BATCH_BYTES):
                    failed |= self._send(batch)
                    batch, size = [], 0
                batch.append((position, body))
                size += n
        if batch:
            failed |= self._send(batch)
        # a record with one part missing is retried whole: its parts may repeat (same dead_letter_id), never go missing
        self.count += len(pending) - len(failed)
        return [pending[position][0] for position in sorted(failed)]

    def _send(self, batch: list[tuple[int, str]]) -> set[int]:
        entries = [{"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(batch)]
        try:
            response = self._client.send_message_batch(QueueUrl=self.url, Entries=entries)
        except Exception as exc:  # noqa: BLE001 - the caller retries the records; the reason is in its log
            if len(batch) > 1 and _refused_request(exc):
                # SQS refuses a whole batch for one entry (over the queue's MaximumMessageSize, ...): one by
                # one, only that record is returned; sent again with it, its neighbours would share its fate
                return set().union(*(self._send([entry]) for entry in batch))
            return {position for position, _ in batch}
        return {batch[int(entry["Id"])][0] for entry in response.get("Failed") or []}

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


def open_aws_dead_letter(spec: str) -> Any | None:
    """SqsDeadLetter / S3DeadLetter for an sqs:// , SQS https:// or s3:// spec; None for anything else."""
    if spec.startswith("sqs://") or (spec.startswith("https://sqs.") and ".amazonaws.com/" in spec):
        return SqsDeadLetter(spec)
    if spec.startswith("s3://"):
        return S3DeadLetter(spec)
    return None
