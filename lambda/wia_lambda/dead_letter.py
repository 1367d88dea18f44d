"""The forwarder's S3 dead letter (`WIA_DEAD_LETTER=s3://<bucket>/<prefix>`): one object per rejection,
named by its `dead_letter_id`, so a redelivery that rejects the same value again overwrites its object
instead of adding a copy.

Asynchronous sources (S3 notifications, EventBridge) retry a failed invocation whole (Lambda: up to 2
more times), and Kinesis re-reads from the lowest failed record: values rejected on the first attempt
are rejected again on the next. The id (`wia_security.connectors.dead_letter.dead_letter_id`) hashes where
the value came from (`s3://bucket/key:line`, `sqs:<message id>:line`, ...), the refusing destination
and the value itself, never the reason or the time: a repeat gets the same key, a changed object (new
content at the same line) a new one.

    <prefix>/<dead_letter_id>.ndjson.gz     one NDJSON line: reason, where, sink, event or raw, dead_letter_id

Also the log dead letter used without `WIA_DEAD_LETTER` (`PartedLogDeadLetter`): one ERROR entry per
record, or, for a record too long for one CloudWatch log event, several entries in parts.
"""
from __future__ import annotations

import contextvars
import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from wia_security import jsonio
from wia_security.connectors.base import Rejected
from wia_security.connectors.dead_letter import dead_letter_record
from wia_security.connectors.dead_letter import dead_letter_id
from wia_security.connectors.relay import LogDeadLetter
from wia_security.errors import ConfigError

#: PutObject calls in flight: a batch of bad lines is written in parallel (boto3 clients are thread-safe;
#: botocore's default connection pool holds 10).
PUT_WORKERS = 8


class KeyedS3DeadLetter:
    """put(Rejected) / flush() -> the Rejected not stored / close(), as the relay expects."""

    def __init__(self, spec: str, client: Any) -> None:
        parts = urlsplit(spec)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError("expected s3://<bucket>/<prefix>", key="dead_letter")
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        self._client = client
        self._pending: list[Rejected] = []
        self.count = 0

    def key_of(self, rejected: Rejected) -> str:
        return "/".join(p for p in (self.prefix, f"{dead_letter_id(rejected)}.ndjson.gz") if p)

    def put(self, rejected: Rejected) -> None:
        self._pending.append(rejected)

    def _store(self, rejected: Rejected) -> bool:
        record = dead_letter_record(rejected)
        body = gzip.compress((jsonio.dumps(record) + "\n").encode("utf-8", "surrogatepass"), mtime=0)
        try:
            self._client.put_object(Bucket=self.bucket, Key=self.key_of(rejected), Body=body,
                                    ContentType="application/x-ndjson", ContentEncoding="gzip")
        except Exception:  # noqa: BLE001 - returned unstored: the relay retries its record
            return False
        return True

    def flush(self) -> list[Rejected]:
        pending, self._pending = self._pending, []
        if not pending:
            return []
        with ThreadPoolExecutor(max_workers=min(PUT_WORKERS, len(pending))) as pool:
            # each write in a copy of the caller's context: the invocation's deadline (handler.time_to_deadline,
            # a context variable) fits its client; a pool thread's own context has none, so the writes waited
            # botocore's 60 s per try, past the invocation's end
            contexts = [contextvars.copy_context() for _ in pending]          # copied here, in the caller's thread
            stored = list(pool.map(lambda context, rejected: context.run(self._store, rejected), contexts, pending))
        self.count += sum(stored)
        return [r for r, ok in zip(pending, stored) if not ok]

    def close(self) -> None:
        self.flush()


#: The longest dead-letter log line written whole. Lambda hands each stdout line to CloudWatch Logs as a
#: log event of at most 256 KB (PutLogEvents' event limit; a longer line arrives as several events cut at
#: 262,118 bytes, none of them JSON), and lines cut at 65,536 bytes have been seen too: below both, a dead
#: letter is one JSON event that `{ $.wia_dead_letter.dead_letter_id = * }` and Logs Insights can read.
LOG_LINE_BUDGET = 60 * 1024
#: Characters of the record's JSON text per part: at most 4 bytes each in the line (a backslash doubled,
#: an astral character), so <= 32 KiB, and the header (reason <= 1000 characters) stays well under the budget.
LOG_PART_CHARS = 8 * 1024


class PartedLogDeadLetter(LogDeadLetter):
    """The log dead letter (one ERROR entry per record, `wia_dead_letter`), writing a record whose line
    would pass `LOG_LINE_BUDGET` as several entries instead: each `wia_dead_letter` then holds
    `dead_letter_id`, `failed_at`, `where`, `sink`, `reason` (first 1000 characters), `part`, `parts` and
    `record_part`; joined in `part` order the `record_part`s of one write (same `dead_letter_id` and
    `failed_at`) are the record's JSON text."""

    def _log(self, record: dict[str, Any]) -> None:
        """One record (put's, or put_record's: what the dead-letter destination refused), in parts when long."""
        from wia_security.connectors.aws.dead_letter import record_parts

        from .logs import scrub

        text = json.dumps(record, default=str, ensure_ascii=False)
        if len(text.encode("utf-8", "surrogatepass")) <= LOG_LINE_BUDGET:
            self.logger.error("dead letter", extra={"wia_dead_letter": record})
        else:
            # masked whole before it is cut: a secret split across two parts would escape the line's masking
            parts = record_parts(record, scrub(text), LOG_PART_CHARS)
            for part in parts:
                self.logger.error("dead letter (part %d of %d)", part["part"], part["parts"],
                                  extra={"wia_dead_letter": part})
        self.count += 1
