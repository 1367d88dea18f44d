"""`wia-security report`: the self-contained HTML dashboard and its JSON twin, from the store or input files."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Iterator

from ..reader import InputSource
from ..validation import Validator
from .common import fail, missing_inputs
from .forward import DEFAULT_DESTINATION
from .query import relative_time


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report", help="write an HTML dashboard (and its JSON twin) with compliance coverage",
        description="Aggregate events over a time window into a self-contained HTML dashboard (charts drawn "
                    "inline, no network needed to view it) and a JSON report with the same numbers. Reads the "
                    f"embedded store ({DEFAULT_DESTINATION} by default) or the given input files.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="event files (JSON, JSON array, NDJSON, gzip; - for stdin) instead of the store")
    p.add_argument("--db", default=DEFAULT_DESTINATION, metavar="URL",
                   help=f"store URL or path when no PATH is given (default {DEFAULT_DESTINATION})")
    p.add_argument("--since", metavar="TIME", help="window start: RFC 3339 time, or relative: 30m, 24h, 7d")
    p.add_argument("--until", metavar="TIME", help="window end (exclusive): RFC 3339 time, or relative")
    p.add_argument("-o", "--out", default="wia-report.html", metavar="FILE", help="HTML output (default wia-report.html)")
    p.add_argument("--json", dest="json_out", metavar="FILE",
                   help="JSON twin (default: the HTML path with .json); '-' writes it to stdout")
    p.add_argument("--title", default="WIA Security dashboard")
    p.add_argument("--lenient", action="store_true",
                   help="input files: treat optional fields that are null as absent instead of rejecting the event")
    p.add_argument("--no-compliance", action="store_true", help="leave out the compliance coverage section")
    p.add_argument("--framework", dest="frameworks", action="append", default=[], metavar="ID",
                   help="compliance framework to include (repeatable; default all): "
                        "nist-csf-2.0, nist-sp800-53r5, cis-v8, iso27001-2022")
    p.set_defaults(run=run)


def _store_events(url: str, since: str | None, until: str | None) -> Iterator[dict[str, Any]]:
    from wia_security.connectors.sqlite import EventStore, path_from_url
    path = path_from_url(url)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no event store here (run `wia-security forward` first, or give input files)")
    store = EventStore(path)
    try:
        for row in store.query(since=since, until=until, limit=None, newest_first=False):
            yield row.event
    finally:
        store.close()


def _file_events(paths: list[str], problems: list[str], lenient: bool = False) -> Iterator[dict[str, Any]]:
    """Valid events from files; each unreadable or invalid one is reported (file:line, JSON path) and skipped."""
    validator = Validator(lenient=lenient, warnings=False)
    for path in paths:
        with InputSource(path) as src:
            for item in src.items():
                if item.error is not None:
                    problems.append(f"{item.where}: {item.error.reason} [parse_error]")
                    continue
                result = validator.validate(item.value)
                if not result.valid:
                    first = result.errors[0]
                    problems.append(f"{item.where}: {first.path or '/'}: {first.message} [{first.code}]"
                                    + (f" (+{len(result.errors) - 1} more)" if len(result.errors) > 1 else ""))
                    continue
                yield result.event if isinstance(result.event, dict) else item.value


def event_stream(args: argparse.Namespace, problems: list[str]) -> Iterator[dict[str, Any]]:
    """Events from the input files (validated; rejects described in `problems`) or from the store."""
    if args.paths:
        return _file_events(args.paths, problems, getattr(args, "lenient", False))
    return _store_events(args.db, relative_time(args.since), relative_time(args.until))


def run(args: argparse.Namespace) -> int:
    from wia_security.dashboard import DashboardAggregator, write_report
    since, until = relative_time(args.since), relative_time(args.until)
    try:
        aggregator = DashboardAggregator(since, until)
    except ValueError as exc:
        return fail(f"bad time window: {exc}")
    tracker = None
    if not args.no_compliance:
        from wia_security.compliance import ComplianceTracker
        try:
            tracker = ComplianceTracker(frameworks=args.frameworks or None)
        except KeyError as exc:
            return fail(f"unknown framework {exc.args[0]!r}")
    problems: list[str] = []
    if args.paths and missing_inputs(args.paths):
        return 2
    events = event_stream(args, problems)
    try:
        for event in events:
            if aggregator.add(event) and tracker is not None:
                tracker.add(event)
    except FileNotFoundError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"{exc.filename or ''}: {exc.strerror or exc}")
    report = aggregator.report()
    report["title"] = args.title
    report["inputs"]["rejected"] = len(problems)
    if tracker is not None:
        report["compliance"] = tracker.report()
    json_out = args.json_out or str(Path(args.out).with_suffix(".json"))
    try:
        write_report(report, args.out, None if json_out == "-" else json_out)
    except OSError as exc:
        return fail(f"{exc.filename or args.out}: {exc.strerror or exc}")
    if json_out == "-":
        import json
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    for line in problems:
        print(f"wia-security: {line}", file=sys.stderr)
    print(f"{report['totals']['events']:,} events in window -> {args.out}"
          + (f" and {json_out}" if json_out != "-" else ""), file=sys.stderr)
    return 1 if problems else 0
