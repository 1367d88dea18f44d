"""NDJSON file sink: `file:///path/events.ndjson` (or `-` for stdout), optionally in another format.

`file:///tmp/out.ndjson?format=ocsf` writes one OCSF document per line; text formats (LEEF,
CEF) write one record per line.
"""
from __future__ import annotations

import sys
from typing import IO, Any, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from wia_security import jsonio
from wia_security.errors import ConversionError
from wia_security.formats import get_format

from .base import BaseSink, DeliveryReport, Rejected


class FileSink(BaseSink):
    def __init__(self, path: str, *, format: str = "wia", append: bool = True) -> None:
        self.path = path
        self.format = get_format(format)
        self.name = f"file:{path}"
        self._fh: IO[str] = sys.stdout if path == "-" else open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "FileSink":
        if url == "-":
            return cls("-", **options)
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = unquote(parts.path) if parts.scheme == "file" else url
        return cls(path, format=options.get("format", query.get("format", "wia")))

    def send(self, events: Sequence[dict[str, Any]]) -> DeliveryReport:
        report = DeliveryReport(self.name)
        lines = []
        for event in events:
            try:
                doc = self.format.from_wia(event)
                lines.append(doc if self.format.text else jsonio.dumps(doc))
            except (ConversionError, ValueError, TypeError, KeyError) as exc:
                report.failed.append(Rejected(f"{self.format.name} conversion failed: {exc}", event=event, sink=self.name))
        if lines:
            self._fh.write("\n".join(lines) + "\n")
        report.delivered = len(lines)
        return report

    def flush(self) -> DeliveryReport:
        self._fh.flush()
        return DeliveryReport(self.name)

    def close(self) -> None:
        self._fh.flush()
        if self._fh is not sys.stdout:
            self._fh.close()
