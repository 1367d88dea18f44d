"""NDJSON file sink: `file:///path/events.ndjson` (or `-` for stdout), optionally in another format.

`file:///tmp/out.ndjson?format=ocsf` writes one OCSF document per line; text formats (LEEF,
CEF) write one record per line.
"""
from __future__ import annotations

import sys
from typing import IO, Any, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError, ConversionError
from wia_security.formats import get_format

from .base import BaseSink, DeliveryReport, Rejected


class FileSink(BaseSink):
    def __init__(self, path: str, *, format: str = "wia", append: bool = True) -> None:
        self.path = path
        self.format = get_format(format)
        self.name = f"file:{path}"
        # Unbuffered: a batch is on its way to the disk when send() reports it, and a failed write
        # leaves nothing behind in a buffer to surface later.
        self._fh: IO[bytes] | None = None if path == "-" else open(path, "ab" if append else "wb", buffering=0)  # noqa: SIM115

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "FileSink":
        parts = urlsplit(url)
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
        view = memoryview(data)
        while view:                              # an unbuffered write may take part of the data
            view = view[self._fh.write(view) or 0:]

    def flush(self) -> DeliveryReport:
        return DeliveryReport(self.name)         # send() writes through

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
