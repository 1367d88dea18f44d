"""EventBridge (asynchronous): `detail` is a WIA event (or a list of them), or an S3 "Object Created"
event whose object is streamed. One record per invocation; retries via `RetryInvocation`."""
from __future__ import annotations

from typing import Any, Iterator

from wia_security.connectors.relay import RelayResult, SourceRecord
from wia_security.reader import Item

from ..payloads import unwrap
from . import retry_invocation


def records(event: dict[str, Any], runtime: Any) -> Iterator[SourceRecord]:
    source = f"eventbridge:{event.get('id', '')}"
    yield SourceRecord(event.get("id", "event"), unwrap(iter([Item(source, 1, event)]), runtime.open_object))


def respond(event: dict[str, Any], result: RelayResult) -> dict[str, Any]:
    if result.retry:
        raise retry_invocation(result)
    return result.summary()
