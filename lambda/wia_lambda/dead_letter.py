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
"""
from __future__ import annotations

import gzip
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from wia_security import jsonio
from wia_security.connectors.base import Rejected
from wia_security.connectors.dead_letter import dead_letter_record
from wia_security.connectors.dead_letter import dead_letter_id
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
            stored = list(pool.map(self._store, pending))
        self.count += sum(stored)
        return [r for r, ok in zip(pending, stored) if not ok]

    def close(self) -> None:
        self.flush()
