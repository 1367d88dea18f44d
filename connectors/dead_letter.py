"""The dead-letter output: every event that was not delivered, with the reason, as NDJSON.

One line per rejected event: `{"reason", "errors", "where", "sink", "failed_at", "event"}`, or
`raw` (text) / `raw_base64` (bytes that are not UTF-8) when the input never parsed. Lines can be
fed back to `wia-security forward` after fixing: `jq -c .event dead.ndjson | wia-security forward -`.
"""
from __future__ import annotations

import base64
import os
import threading
from typing import IO, Any

from wia_security import jsonio
from wia_security.timeutil import now_iso

from .base import Rejected


def dead_letter_record(rejected: Rejected) -> dict[str, Any]:
    record: dict[str, Any] = {"reason": rejected.reason, "failed_at": now_iso()}
    if rejected.errors:
        record["errors"] = rejected.errors
    if rejected.where:
        record["where"] = rejected.where
    if rejected.sink:
        record["sink"] = rejected.sink
    if rejected.event is not None:
        record["event"] = rejected.event
    elif rejected.raw is not None:
        try:
            record["raw"] = rejected.raw.decode("utf-8")
        except UnicodeDecodeError:
            record["raw_base64"] = base64.b64encode(rejected.raw).decode("ascii")
    return record


class DeadLetterFile:
    """Appends rejected events to an NDJSON file, created on the first rejection (so a clean run leaves none)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0
        self._fh: IO[str] | None = None
        self._lock = threading.Lock()

    def put(self, rejected: Rejected) -> None:
        line = _dumps(dead_letter_record(rejected))
        with self._lock:
            if self._fh is None:
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            self._fh.write(line + "\n")
            self.count += 1

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self.flush()
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "DeadLetterFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dumps(record: dict[str, Any]) -> str:
    try:
        return jsonio.dumps(record)
    except (TypeError, ValueError):
        # An event with values JSON cannot carry (lone surrogates, NaN from a dict caller): keep it readable.
        import json
        return json.dumps(record, default=repr, ensure_ascii=True)
