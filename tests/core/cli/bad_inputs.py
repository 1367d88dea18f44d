"""The hostile inputs every reading command must survive: each gets a clear error, never a crash."""
from __future__ import annotations

import json

VALID = {
    "$schema": "https://wia.live/security/v1/schema.json", "version": "1.0.0",
    "id": "550e8400-e29b-41d4-a716-446655440000", "type": "alert", "timestamp": "2025-12-14T04:30:00.000Z",
    "severity": 5, "source": {"type": "siem", "name": "test"},
    "data": {"alert_id": "A-1", "title": "t", "category": "other", "status": "new", "priority": "low"},
}


def valid_line() -> bytes:
    return json.dumps(VALID).encode()


#: name -> (file bytes, text the error must mention)
BAD_INPUTS: dict[str, tuple[bytes, str]] = {
    "truncated": (valid_line()[:-20] + b"\n", "truncated"),
    "non_utf8": (b'{"id": "\xff\xfe"}\n', "UTF-8"),
    "ten_mb_string": (json.dumps({**VALID, "id": "x" * 10_000_000}).encode() + b"\n", "not a valid uuid"),
    "nested_10000": (b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}\n", "nesting deeper"),
    "nan": (b'{"severity": NaN}\n', "NaN"),
    "top_level_array_of_numbers": (b"[1, 2]\n", "not of type object"),
    "top_level_string": (b'"just a string"\n', "not of type object"),
    "top_level_number": (b"42\n", "not of type object"),
}
