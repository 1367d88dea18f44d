"""`wia-security enrich PATH...`: add VirusTotal reputation to the observables of events (NDJSON out).

The API key is read from an environment variable (never from the command line, where `ps` shows it).
Events always come out: when VirusTotal is slow, over quota or down, they carry the reason instead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from ..extras import missing_package
from .common import EXIT_CODES_HELP, counted, fail, missing_inputs, same_file
from .report import _file_events

BATCH = 100
MAX_NOTES = 3          # distinct reasons named on standard error


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "enrich", help="add VirusTotal reputation to event indicators (meta.custom.enrichment)",
        description="Look up the hashes, URLs, domains and public IPs of each event on VirusTotal (vt-py) and "
                    "write the events, enriched under meta.custom.enrichment.virustotal, as NDJSON. Needs the "
                    "`intel` extra. See docs/connectors/intel.md.",
        epilog=EXIT_CODES_HELP)
    p.add_argument("paths", nargs="+", metavar="PATH", help="event files (- for stdin)")
    p.add_argument("-o", "--out", default="-", metavar="FILE", help="NDJSON output (default stdout)")
    p.add_argument("--key-env", default="VT_API_KEY", metavar="NAME",
                   help="environment variable holding the VirusTotal API key (default VT_API_KEY)")
    p.add_argument("--vt-url", default=None, metavar="URL", help="API host (default https://www.virustotal.com)")
    p.add_argument("--cache", default=None, metavar="PATH", help="SQLite cache file shared across runs")
    p.add_argument("--ttl", type=float, default=24 * 3600, metavar="SECONDS", help="cache TTL (default 1 day)")
    p.add_argument("--budget", type=float, default=10.0, metavar="SECONDS",
                   help="time VirusTotal may take per batch of 100 events (default 10)")
    p.add_argument("--lenient", action="store_true", help="treat null optional fields as absent")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.ttl >= 0:
        return fail("--ttl must be 0 or more seconds")
    if not args.budget > 0:
        return fail("--budget must be a positive number of seconds")
    clash = next((p for p in args.paths if args.out != "-" and p != "-" and same_file(p, args.out)), None)
    if clash:
        return fail(f"--out {args.out} is also an input; it would be overwritten while it is read")
    key = os.environ.get(args.key_env, "")
    if not key:
        return fail(f"set the VirusTotal API key in ${args.key_env}")
    if missing_inputs(args.paths):
        return 2
    try:
        from wia_security.connectors.intel.cache import EnrichmentCache
        from wia_security.connectors.intel.virustotal import VirusTotalEnricher
    except ModuleNotFoundError as exc:
        return fail(missing_package(exc, "intel") or exc)
    enricher = VirusTotalEnricher(key, host=args.vt_url, cache=EnrichmentCache(args.cache, ttl=args.ttl),
                                  time_budget=args.budget)
    problems: list[str] = []
    try:
        out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        enricher.close()
        return fail(f"{args.out}: {exc.strerror or exc}")
    written = 0
    degraded = Degraded(enricher)
    try:
        batch: list[dict[str, Any]] = []
        for event in _file_events(args.paths, problems, args.lenient):
            batch.append(event)
            if len(batch) == BATCH:
                written += _write(enricher.enrich_all(batch), out, degraded)
                batch = []
        written += _write(enricher.enrich_all(batch), out, degraded)
    except BrokenPipeError:
        raise                              # our reader went away: main() stops quietly
    except OSError as exc:
        return fail(f"{exc.filename or ''}: {exc.strerror or exc}")
    finally:
        enricher.close()
        if out is not sys.stdout:
            out.close()
    for line in problems:
        print(f"wia-security: {line}", file=sys.stderr)
    print(f"{counted(written, 'event')} written; {counted(enricher.requests, 'VirusTotal request')}, "
          f"{counted(enricher.cache.hits, 'cache hit')}; circuit {enricher.breaker.state}", file=sys.stderr)
    for line in degraded.lines():
        # Exit status stays 0 (enrichment never fails a run), so say why reputations are missing: a wrong
        # key or --vt-url otherwise looks like a quiet success.
        print(f"wia-security: {line}", file=sys.stderr)
    return 1 if problems else 0


@dataclass
class Degraded:
    """Events whose VirusTotal lookups were not all made, and the first distinct reasons why; and the events the
    enricher passed on unenriched because the producer's own value holds the verdict's place (its `unplaced`)."""
    enricher: Any = None
    events: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, event: dict[str, Any]) -> None:
        verdict: Any = event
        for key in ("meta", "custom", "enrichment", "virustotal"):   # any of them may be the producer's own value
            verdict = verdict.get(key) if isinstance(verdict, dict) else None
        if not isinstance(verdict, dict) or verdict.get("provider") != "virustotal" \
                or verdict.get("status", "complete") == "complete":
            return
        self.events += 1
        for note in verdict.get("notes") or []:
            if note not in self.notes and len(self.notes) < MAX_NOTES:
                self.notes.append(note)

    def lines(self) -> list[str]:
        """What standard error says about them (enrich, forward --enrich): nothing when all went well."""
        lines = []
        if self.events:
            lines.append(f"{counted(self.events, 'event')} not fully checked on VirusTotal "
                         f"(meta.custom.enrichment.virustotal.not_checked lists them): {'; '.join(self.notes)}")
        unplaced = getattr(self.enricher, "unplaced", 0)
        if unplaced:
            paths = ", ".join(self.enricher.unplaced_paths[:MAX_NOTES])
            lines.append(f"{counted(unplaced, 'event')} not enriched: the producer's own value is at {paths} "
                         "(left as it was)")
        return lines


def _write(events: list[dict[str, Any]], out: Any, degraded: Degraded) -> int:
    for event in events:
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
        degraded.add(event)
    return len(events)
