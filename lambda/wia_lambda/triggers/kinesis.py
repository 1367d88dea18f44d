"""Kinesis Data Streams: each record (base64 data, gzip or not) is one record; failures are reported
by sequence number (`batchItemFailures`; Lambda checkpoints at the lowest one reported)."""
from __future__ import annotations

import base64
import binascii
from typing import Any, Iterator

from wia_security.connectors.relay import RelayResult, SourceRecord
from wia_security.errors import ParseError
from wia_security.reader import Item

from ..payloads import body_items


def records(event: dict[str, Any], runtime: Any) -> Iterator[SourceRecord]:
    for record in event["Records"]:
        sequence = record["kinesis"]["sequenceNumber"]
        source = f"kinesis:{record.get('eventSourceARN', '').rsplit('/', 1)[-1]}:{sequence}"
        try:
            data = base64.b64decode(record["kinesis"]["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            items = iter([Item(source, 0, error=ParseError(f"data is not base64: {exc}", source=source))])
        else:
            items = body_items(data, source, runtime.open_object)
        yield SourceRecord(sequence, items)


def respond(event: dict[str, Any], result: RelayResult) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in result.retry]}
