"""The dead-letter output: every event that was not delivered, with the reason, as NDJSON.

One line per rejected event: `{"reason", "failed_at", "dead_letter_id", "errors", "where", "sink", "event"}`,
or `raw` (text) / `raw_base64` (bytes that are not UTF-8) when the input never parsed. `dead_letter_id`
is the same for the same value refused again from the same place (a redelivery, a rerun): count
repeats once by it. Lines can be
fed back to `wia-security forward` after fixing: `jq -c .event dead.ndjson | wia-security forward -`.
"""
from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import threading
from typing import IO, Any

from wia_security import jsonio
from wia_security.errors import OutputError
from wia_security.outputs import open_append
from wia_security.timeutil import now_iso

from .base import Rejected


def dead_letter_id(rejected: Rejected) -> str:
    """A stable id for one rejection: where the value came from, the destination that refused it (none
    for invalid input) and the value, hashed; the reason and the time are left out, so a redelivered
    record rejected again (even with a reworded reason) gets the same id. Keys hash in the order the
    value has (a redelivery parses to the same order); stable within one installation (orjson or not)."""
    content: Any = rejected.event if rejected.event is not None else (rejected.raw or b"").decode("utf-8", "replace")
    subject = [rejected.where or "", rejected.sink or "", content]
    try:
        text = jsonio.dumpb(subject)
    except (TypeError, ValueError):     # NaN, a lone surrogate, a non-JSON object from a library caller
        text = json.dumps(subject, default=str).encode("ascii")
    return hashlib.sha256(text).hexdigest()[:32]


def dead_letter_record(rejected: Rejected) -> dict[str, Any]:
    record: dict[str, Any] = {"reason": rejected.reason, "failed_at": now_iso(), "dead_letter_id": dead_letter_id(rejected)}
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
    """Appends rejected events to an NDJSON file, created on the first rejection (so a clean run leaves none).

    Each record reaches the operating system in one O_APPEND write when `put` returns (no buffer),
    so a full disk or a vanished directory raises OutputError at the record that was lost, and
    `count` stays exact; flush() and close() fsync. A kill can leave at most the last record torn,
    and the next run starts a new line after it (see `wia_security.outputs.open_append`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0
        self._fh: IO[bytes] | None = None
        self._lock = threading.Lock()

    def put(self, rejected: Rejected) -> None:
        data = (_dumps(dead_letter_record(rejected)) + "\n").encode("utf-8", "surrogatepass")
        with self._lock:
            try:
                if self._fh is None:
                    self._fh = open_append(self.path)    # a torn last record (a crash) gets its newline
                view = memoryview(data)
                while view:                          # an unbuffered write may take part of the data
                    view = view[self._fh.write(view) or 0:]
            except OSError as exc:
                raise OutputError(f"the dead-letter file {self.path}", exc.strerror or str(exc)) from exc
            self.count += 1

    def flush(self) -> None:
        if self._fh is not None:
            self._sync(self._fh)

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            try:
                self._sync(fh)
            finally:
                fh.close()

    def _sync(self, fh: IO[bytes]) -> None:
        try:
            os.fsync(fh.fileno())
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOTSUP):
                return                  # a pipe or terminal (/dev/stderr): nothing to sync
            raise OutputError(f"the dead-letter file {self.path}", exc.strerror or str(exc)) from exc

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
