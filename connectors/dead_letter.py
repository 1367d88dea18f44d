"""The dead-letter output: every event that was not delivered, with the reason, as NDJSON.

One line per rejected event: `{"reason", "failed_at", "dead_letter_id", "errors", "where", "sink", "event"}`,
or `raw` (text) / `raw_base64` (bytes that are not UTF-8) when the input never parsed. `dead_letter_id`
is the same for the same value refused again from the same place (a redelivery, a rerun): count
repeats once by it. `wia-security replay dead.ndjson --to URL` sends the events again, each once
(core/cli/replay.py; docs/connectors/delivery.md, "Replay").
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


def rejected_from_record(record: dict[str, Any]) -> Rejected:
    """The Rejected a dead-letter record was made from (failed_at and dead_letter_id aside): what
    `dead_letter_record` of it gives back has the same dead_letter_id."""
    raw: bytes | None = None
    if record.get("event") is None:
        if isinstance(record.get("raw"), str):
            raw = record["raw"].encode("utf-8", "surrogatepass")
        elif isinstance(record.get("raw_base64"), str):
            try:
                raw = base64.b64decode(record["raw_base64"])
            except ValueError:                   # not base64 (a hand-edited record): its text stands for it
                raw = record["raw_base64"].encode("utf-8", "surrogatepass")
    errors = record.get("errors")
    return Rejected(str(record.get("reason", "")), event=record.get("event"),
                    errors=errors if isinstance(errors, list) else [],
                    where=record["where"] if isinstance(record.get("where"), str) else None, raw=raw,
                    sink=record["sink"] if isinstance(record.get("sink"), str) else None)


def as_dead_letter_record(value: Any) -> dict[str, Any] | None:
    """`value` as a dead-letter record, or None when it is not one: a record as `dead_letter_record`
    makes it (a line of a DeadLetterFile, a row of a SQLite dead letter), or an event a SinkDeadLetter
    sent on, with the record under meta.custom.dead_letter (the record gets the event back, without
    that annotation)."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("reason"), str) and ("event" in value or "raw" in value or "raw_base64" in value):
        return value
    meta = value.get("meta")
    custom = meta.get("custom") if isinstance(meta, dict) else None
    annotation = custom.get("dead_letter") if isinstance(custom, dict) else None
    if not isinstance(annotation, dict) or not isinstance(annotation.get("reason"), str):
        return None
    event = dict(value)
    event["meta"] = meta = dict(meta)
    meta["custom"] = custom = dict(custom)
    del custom["dead_letter"]
    record = dict(annotation)
    added = record.pop("added", None)   # what SinkDeadLetter made to hold the annotation
    if added == "meta" and meta == {"custom": {}}:
        del event["meta"]
    elif added == "custom" and not custom:
        del meta["custom"]
    record["event"] = event
    return record


def create_private(path: str) -> None:
    """Create `path` readable and writable by its owner only (0600 whatever the umask), if it does not
    exist. Dead letters hold whole events and undecodable input: security telemetry, often with user
    names, command lines and whatever secret an event carried, which a umask of 022 would let every
    local user read. A file that exists keeps the mode its owner gave it."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


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
        self.put_record(dead_letter_record(rejected))

    def put_record(self, record: dict[str, Any]) -> None:
        """Append a record as it is (`wia-security replay` carries records it cannot replay unchanged)."""
        data = (_dumps(record) + "\n").encode("utf-8", "surrogatepass")
        with self._lock:
            try:
                if self._fh is None:
                    create_private(self.path)
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
