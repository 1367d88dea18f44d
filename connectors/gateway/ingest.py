"""Request bodies -> validated WIA events: size limits (413), gzip, JSON object / array / NDJSON, per-event verdicts."""
from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from wia_security import jsonio
from wia_security.errors import ParseError
from wia_security.pipeline import normalize
from wia_security.reader import Item, iter_items
from wia_security.validation import Validator

from ..base import Rejected


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"request body larger than {limit} bytes")


class BadEncoding(Exception):
    pass


async def read_body(headers: Any, stream: AsyncIterator[bytes], limit: int) -> bytes:
    """The request body, refused past `limit` bytes before or after gzip decoding (no zip bombs)."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = (headers.get("content-encoding") or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise BadEncoding(f"body is not valid gzip: {exc}") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise BodyTooLarge(limit)
        if not inflater.eof:
            raise BadEncoding("gzip body is truncated")
    elif encoding not in ("", "identity"):
        raise BadEncoding(f"unsupported Content-Encoding {encoding!r} (gzip or none)")
    return body


def split_values(body: bytes, source: str) -> list[Item]:
    """One JSON object, a JSON array of objects, or NDJSON/concatenated objects -> Items in order."""
    stripped = body.strip()
    if not stripped:
        return []
    try:
        whole = jsonio.loads(stripped, source=source)
    except ParseError:
        whole = _MISSING
    if isinstance(whole, list):
        return [Item(source, i, value) for i, value in enumerate(whole)]
    if whole is not _MISSING:
        return [Item(source, 1, whole)]
    return list(iter_items(io.BytesIO(body), source))


_MISSING = object()


@dataclass
class Verdicts:
    """The outcome of validating one request's values, in request order."""

    events: list[dict[str, Any]] = field(default_factory=list)       # accepted, normalized
    results: list[dict[str, Any]] = field(default_factory=list)      # one per value
    rejected: list[Rejected] = field(default_factory=list)
    warnings: int = 0

    @property
    def accepted(self) -> int:
        return len(self.events)


def validate_items(items: list[Item], validator: Validator) -> Verdicts:
    out = Verdicts()
    for index, item in enumerate(items):
        if item.error is not None:
            reason = f"unparseable input: {item.error.reason}"
            errors = [{"path": "", "code": "parse_error", "message": str(item.error)}]
            out.results.append({"index": index, "status": "rejected", "errors": errors})
            out.rejected.append(Rejected(reason, errors=errors, where=item.where, raw=item.raw))
            continue
        result = validator.validate(item.value)
        out.warnings += len(result.warnings)
        if not result.valid:
            errors = [e.to_dict() for e in result.errors]
            first = result.errors[0]
            value = item.value
            entry: dict[str, Any] = {"index": index, "status": "rejected", "errors": errors}
            if isinstance(value, dict) and isinstance(value.get("id"), str):
                entry["id"] = value["id"]
            out.results.append(entry)
            out.rejected.append(Rejected(f"invalid: {first.path or '/'}: {first.message}", event=value,
                                         errors=errors, where=item.where))
            continue
        event = normalize(result.event)
        out.events.append(event)
        out.results.append({"index": index, "status": "accepted", "id": event["id"]})
    return out
