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
from ..reader import InputSource
from ..validation import Validator
from .common import (EXIT_CODES_HELP, StopSignals, counted, fail, missing_inputs, printable, repeated_inputs,
                     same_file)

BATCH = 100
MAX_NOTES = 3          # distinct reasons named on standard error
MAX_ECHOED = 20        # rejects named on standard error (all of them go to the dead-letter file)
DEFAULT_DEAD_LETTER = "wia-dead-letter.ndjson"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "enrich", help="add VirusTotal reputation to event indicators (meta.custom.enrichment)",
        description="Look up the hashes, URLs, domains and public IPs of each event on VirusTotal (vt-py) and "
                    "write the events, enriched under meta.custom.enrichment.virustotal, as NDJSON. Inputs that do "
                    f"not parse or are not valid events go to the dead-letter file with the reason (the first "
                    f"{MAX_ECHOED} are also named on standard error). Ctrl-C or SIGTERM stops reading, enriches and "
                    "writes what was read, prints the counts and exits 130 or 143. Needs the `intel` extra. See "
                    "docs/connectors/intel.md.",
        epilog=EXIT_CODES_HELP)
    p.add_argument("paths", nargs="+", metavar="PATH", help="event files (- for stdin)")
    p.add_argument("-o", "--out", default="-", metavar="FILE", help="NDJSON output (default stdout)")
    p.add_argument("--dead-letter", default=DEFAULT_DEAD_LETTER, metavar="PATH",
                   help=f"where rejected inputs go, one JSON line each with the reason (default {DEFAULT_DEAD_LETTER})")
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
    if any(p != "-" and same_file(p, args.dead_letter) for p in args.paths):
        return fail(f"--dead-letter {args.dead_letter} is also an input; it would be written while it is read")
    if args.out != "-" and same_file(args.out, args.dead_letter):
        return fail(f"--out and --dead-letter are the same file ({args.out})")
    from wia_security.outputs import unwritable
    problem = unwritable(args.dead_letter)
    if problem:
        return fail(f"cannot write the dead-letter file {args.dead_letter}: {problem}")
    key = os.environ.get(args.key_env, "")
    if not key:
        return fail(f"set the VirusTotal API key in ${args.key_env}")
    if missing_inputs(args.paths) or repeated_inputs(args.paths, "written twice"):
        return 2
    try:
        from wia_security.connectors.intel.cache import EnrichmentCache
        from wia_security.connectors.intel.virustotal import VirusTotalEnricher
    except ModuleNotFoundError as exc:
        return fail(missing_package(exc, "intel") or exc)
    enricher = VirusTotalEnricher(key, host=args.vt_url, cache=EnrichmentCache(args.cache, ttl=args.ttl),
                                  time_budget=args.budget)
    from wia_security.connectors.dead_letter import DeadLetterFile
    try:
        out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        enricher.close()
        return fail(f"{args.out}: {exc.strerror or exc}")
    written = 0
    degraded = Degraded(enricher)
    rejects = _Rejects(DeadLetterFile(args.dead_letter))
    stop = StopSignals()
    try:
        with stop:
            batch: list[dict[str, Any]] = []
            for event in _valid_events(args.paths, rejects, args.lenient, stop):
                batch.append(event)
                if len(batch) == BATCH:
                    written += _write(enricher.enrich_all(batch), out, degraded)
                    batch = []
            written += _write(enricher.enrich_all(batch), out, degraded)   # after a signal too: what was read
    except BrokenPipeError:
        raise                              # our reader went away: main() stops quietly
    except OSError as exc:
        return fail(f"{exc.filename or ''}: {exc.strerror or exc}")
    finally:
        enricher.close()
        rejects.close()
        if out is not sys.stdout:
            out.close()
    rejected = (f"; {counted(rejects.count, 'input')} rejected, written to {args.dead_letter}"
                if rejects.count else "")
    print(f"{counted(written, 'event')} written{rejected}; {counted(enricher.requests, 'VirusTotal request')}, "
          f"{counted(enricher.cache.hits, 'cache hit')}; circuit {enricher.breaker.state}", file=sys.stderr)
    for line in degraded.lines():
        # Exit status stays 0 (enrichment never fails a run), so say why reputations are missing: a wrong
        # key or --vt-url otherwise looks like a quiet success.
        print(f"wia-security: {line}", file=sys.stderr)
    if stop.received is not None:
        print(stop.note(), file=sys.stderr)
        return stop.exit_code or 130
    return 1 if rejects.count else 0


class _Rejects:
    """The dead-letter file of enrich, naming the first MAX_ECHOED rejects on stderr as `file:line: reason`."""

    def __init__(self, dead_letter: Any) -> None:
        self.dead_letter = dead_letter
        self.count = 0

    def put(self, rejected: Any) -> None:
        self.count += 1
        if self.count <= MAX_ECHOED:
            print(printable(f"wia-security: {rejected.where}: {rejected.reason}"), file=sys.stderr)
        elif self.count == MAX_ECHOED + 1:
            print("wia-security: (more rejects: see the dead-letter file)", file=sys.stderr)
        self.dead_letter.put(rejected)

    def close(self) -> None:
        self.dead_letter.close()


def _valid_events(paths: list[str], rejects: _Rejects, lenient: bool, stop: StopSignals) -> Any:
    """The valid events of the input files, until a stop signal; every input that does not parse or is invalid
    dead-lettered with why (its raw bytes, or the value), as forward and convert keep them."""
    from wia_security.connectors.base import Rejected
    validator = Validator(lenient=lenient, warnings=False)
    for path in paths:
        if stop.received is not None:
            return
        with InputSource(path) as src:
            for item in stop.items([src.items()]):
                if item.error is not None:
                    rejects.put(Rejected(f"unparseable input: {item.error.reason}", where=item.where, raw=item.raw,
                                         errors=[{"path": "", "code": "parse_error", "message": str(item.error)}]))
                    continue
                result = validator.validate(item.value)
                if not result.valid:
                    first = result.errors[0]
                    rejects.put(Rejected(f"invalid: {first.path or '/'}: {first.message}", event=item.value,
                                         where=item.where, errors=[e.to_dict() for e in result.errors]))
                    continue
                yield result.event if isinstance(result.event, dict) else item.value


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
