"""S3 event notifications invoking the function directly (asynchronous): each object is one record,
streamed. Retries are Lambda's asynchronous retries: `RetryInvocation` after everything else is settled."""
from __future__ import annotations

from typing import Any, Iterator

from wia_security.connectors.relay import RelayResult, SourceRecord

from ..payloads import s3_objects_of
from . import RetryInvocation


def records(event: dict[str, Any], runtime: Any) -> Iterator[SourceRecord]:
    for bucket, key in s3_objects_of(event) or []:
        yield SourceRecord(f"s3://{bucket}/{key}", runtime.open_object(bucket, key))


def respond(event: dict[str, Any], result: RelayResult) -> dict[str, Any]:
    if result.retry:
        raise RetryInvocation(f"{len(result.retry)} object(s) to retry: {', '.join(result.retry[:5])}")
    return result.summary()
