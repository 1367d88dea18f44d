"""Lambda Function URL and API Gateway (REST v1 and HTTP v2 payloads): POST a WIA event, a JSON array
or NDJSON (gzip allowed with Content-Encoding or by magic bytes).

Each value is one record, so the answer names values by their 0-based `index`:
200 `{"accepted", "delivered", "dead_lettered", "rejected": [{index, reason}]}` when every value is
settled (rejected ones are also dead-lettered); 503 with `Retry-After` and `"retry": [indexes]` when
some must be sent again; 405 for another method; 413 for a body over `MAX_BODY_BYTES`.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Iterator

from wia_security.connectors.relay import GzipBodyError, RelayResult, SourceRecord, body_lines, http_reply
from wia_security.reader import iter_items


#: Lambda's synchronous invocation payload limit is 6 MB; refuse more after decompression.
MAX_BODY_BYTES = 6 * 1024 * 1024


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def method_of(event: dict[str, Any]) -> str:
    return ((event.get("requestContext") or {}).get("http") or {}).get("method") or event.get("httpMethod") or ""


def body_of(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if not isinstance(body, str):           # API Gateway and Function URLs send text; a hand-made test event may not
        raise HttpError(400, "the body must be a string (JSON text or NDJSON, or base64 with isBase64Encoded)")
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)    # not validating would drop bad characters silently
        except (binascii.Error, ValueError):
            raise HttpError(400, "the body is marked base64 but is not valid base64") from None
    else:
        data = body.encode("utf-8")
    if not data.strip():
        raise HttpError(400, "empty body: POST WIA events (a JSON object, a JSON array or NDJSON)")
    if len(data) > MAX_BODY_BYTES:
        raise HttpError(413, f"body over {MAX_BODY_BYTES} bytes")
    return data


def records(event: dict[str, Any], runtime: Any) -> Iterator[SourceRecord]:
    if method_of(event).upper() != "POST":
        raise HttpError(405, "POST WIA events (a JSON object, a JSON array or NDJSON)")
    data = body_of(event)
    try:
        lines = body_lines(data, "request", MAX_BODY_BYTES)
    except GzipBodyError as exc:
        raise HttpError(413 if exc.too_large else 400, f"unreadable gzip body: {exc.reason}") from None
    for index, item in enumerate(iter_items(lines, "request")):
        yield SourceRecord(str(index), [item])


def respond(event: dict[str, Any], result: RelayResult) -> dict[str, Any]:
    status, body, headers = http_reply(result)
    return response(status, body, headers or None)


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json", **(headers or {})},
            "body": json.dumps(body), "isBase64Encoded": False}
