"""NDJSON file sink: `file:///path/events.ndjson` (or `-` for stdout), optionally in another format.

`file:///tmp/out.ndjson?format=ocsf` writes one OCSF document per line; text formats (LEEF,
CEF) write one record per line. Crash consistency: whole batches are appended with O_APPEND, a
file that a crash left ending in a torn record gets a newline before the next record (so that
record is not glued onto the fragment), and flush() fsyncs, so what a source commits after a
flush (a Kafka offset, a TAXII checkpoint) is on the disk.

A file the sink creates is readable and writable by its owner only (0600, whatever the umask), as the
event store and the dead letters holding the same events are; a file that exists keeps its mode.
"""
from __future__ import annotations

import os
import sys
from typing import IO, Any, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError, ConversionError, OutputError
from wia_security.formats import get_format
from wia_security.outputs import open_append, sync

from .base import BaseSink, DeliveryReport, Rejected


#: The mode of a file the sink creates: its events are security telemetry (user names, command lines).
PRIVATE = 0o600


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE)


class FileSink(BaseSink):
    def __init__(self, path: str, *, format: str = "wia", append: bool = True) -> None:
        self.path = path
        self.format = get_format(format)
        self.name = f"file:{path}"
        # Unbuffered: a batch is on its way to the disk when send() reports it, and a failed write
        # leaves nothing behind in a buffer to surface later.
        self._fh: IO[bytes] | None = (None if path == "-" else open_append(path, PRIVATE) if append
                                      else open(path, "wb", buffering=0, opener=_private))  # noqa: SIM115
        self._torn = False                       # a failed write may have left part of a line

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "FileSink":
        from .delivery.urls import refuse_repeated_keys
        parts = urlsplit(url)
        refuse_repeated_keys(parts.query, "file://")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = sorted((set(options) | set(query)) - {"format"})
        if unknown:
            raise ConfigError("unknown option for a file destination; it takes format", key=unknown[0])
        path = "-" if url == "-" else unquote(parts.path) if parts.scheme == "file" else url
        return cls(path, format=options.get("format", query.get("format", "wia")))

    def send(self, events: Sequence[dict[str, Any]]) -> DeliveryReport:
        report = DeliveryReport(self.name)
        lines: list[bytes] = []
        written: list[dict[str, Any]] = []
        for event in events:
            try:
                doc = self.format.from_wia(event)
                lines.append((doc if self.format.text else jsonio.dumps(doc)).encode("utf-8"))
                written.append(event)
            except (ConversionError, ValueError, TypeError, KeyError) as exc:
                report.failed.append(Rejected(f"{self.format.name} conversion failed: {exc}", event=event, sink=self.name))
        if lines:
            # Written through before counting them delivered: a full disk fails this batch's events
            # (to the dead letter), not events already reported.
            try:
                self._write(b"\n".join(lines) + b"\n")
            except BrokenPipeError:
                raise        # the reader of stdout or a FIFO went away (`| head`): the run stops, as cat does
            except OSError as exc:
                self._torn = True
                reason = f"cannot write to {self.path}: {exc.strerror or exc} (the file may end with part of this batch)"
                report.failed += [Rejected(reason, event=e, sink=self.name, retryable=True) for e in written]
                return report
        report.delivered = len(lines)
        return report

    def _write(self, data: bytes) -> None:
        if self._fh is None:
            sys.stdout.write(data.decode("utf-8"))
            sys.stdout.flush()
            return
        if self._torn:                           # start after the part of a line a failed write left
            data = b"\n" + data
        view = memoryview(data)
        while view:                              # an unbuffered write may take part of the data
            view = view[self._fh.write(view) or 0:]
        self._torn = False

    def flush(self) -> DeliveryReport:
        """send() writes through to the OS; this makes it durable (fsync), so a power cut after a
        source committed its position past these events cannot lose them. A failed sync raises
        OutputError (the run stops; a source does not move its position)."""
        if self._fh is not None:
            try:
                sync(self._fh.fileno())
            except OSError as exc:
                raise OutputError(f"the file {self.path}", f"fsync failed: {exc.strerror or exc}") from exc
        return DeliveryReport(self.name)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
