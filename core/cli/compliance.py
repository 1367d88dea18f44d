"""`wia-security compliance`: control coverage per framework, with the evidence events, from the store or files."""
from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from .common import counted, fail, missing_inputs, repeated_inputs
from .forward import DEFAULT_DESTINATION
from .report import (RejectLog, Versions, add_progress_option, event_stream, read_counts, sources_problem,
                     start_progress, stopped_by_sigterm, summary_line, window)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compliance", help="map events to NIST CSF 2.0, SP 800-53 r5, CIS v8 and ISO 27001:2022 controls",
        description="Which framework controls the events evidence (by event-type rules), with coverage and score "
                    "per framework and the evidence events of each control; and, apart, the controls made relevant "
                    "by the ATT&CK techniques seen (listed with their techniques and events, never counted as "
                    "coverage). Mapping sources and definitions: docs/compliance.md.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="event files instead of the store (- for stdin)")
    p.add_argument("--db", default=None, metavar="URL",
                   help=f"store URL or path, read when no PATH is given (default {DEFAULT_DESTINATION})")
    p.add_argument("--since", metavar="TIME", help="RFC 3339 time, or relative: 30m, 24h, 7d")
    p.add_argument("--until", metavar="TIME", help="RFC 3339 time, or relative (exclusive)")
    p.add_argument("--framework", dest="frameworks", action="append", default=[], metavar="ID",
                   help="nist-csf-2.0, nist-sp800-53r5, cis-v8 or iso27001-2022 (repeatable; default all)")
    p.add_argument("--lenient", action="store_true", help="files: treat null optional fields as absent")
    p.add_argument("--controls", action="store_true", help="text format: list the evidenced controls, the in-scope ones with no evidence and the relevant ones too")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text (default): a table on standard output; json: the whole report, controls and evidence included")
    add_progress_option(p)
    p.set_defaults(run=run)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")   # and bidi overrides
#: Event ids are UUIDs once validated; one inserted into the store unvalidated is cut to this many characters.
ID_CHARS = 40


def _shown(event_id: str) -> str:
    """An event id for the terminal: control characters (escape sequences) escaped, and cut."""
    text = event_id if len(event_id) <= ID_CHARS else event_id[: ID_CHARS - 1] + "\u2026"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if m.group() < "\u0100"
                        else f"\\u{ord(m.group()):04x}", text)


def run(args: argparse.Namespace) -> int:
    from wia_security.compliance import ComplianceTracker
    from wia_security.dashboard.report import dumps
    if problem := sources_problem(args):
        return fail(problem)
    try:
        tracker = ComplianceTracker(frameworks=args.frameworks or None)
        in_window = window(args)
    except KeyError as exc:                     # UnknownFrameworkError: names the id and the known ones
        return fail(exc)
    except ValueError as exc:
        return fail(f"bad time window: {exc}")
    if args.paths and (missing_inputs(args.paths) or repeated_inputs(args.paths, "read twice")):
        return 2
    progress, where = start_progress(args)
    problems = RejectLog(progress)
    versions = Versions()
    try:
        with stopped_by_sigterm():
            for event in event_stream(args, problems, in_window, where, versions, progress):
                if in_window.add(event):            # the same window rules as the dashboard
                    tracker.add(event)
                progress.update(max(in_window.seen, versions.read), problems.count)
        progress.update(max(in_window.seen, versions.read), problems.count, force=True)
    except FileNotFoundError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"{exc.filename or 'input'}: {exc.strerror or exc}")
    finally:
        progress.close()
    report = tracker.report()
    inputs = read_counts({"events_read": in_window.seen, "in_window": tracker.events,
                          "outside_window": in_window.outside_window, "without_timestamp": in_window.without_timestamp},
                         versions, problems)
    if args.format == "json":
        sys.stdout.write(dumps({"inputs": inputs, **report}, indent=2) + "\n")
    else:
        print(counted(report['events'], "event"))
        print(f"{'framework':<26} {'coverage':>9} {'score':>7} {'evidenced':>10} {'in scope':>9} {'attention':>10} "
              f"{'relevant':>9}")
        for fw in report["frameworks"]:
            print(f"{fw['name']:<26} {fw['coverage_percent']:>8}% {fw['score_percent']:>6}% "
                  f"{fw['controls_evidenced']:>10} {fw['controls_in_scope']:>9} {fw['controls_attention']:>10} "
                  f"{fw['controls_relevant']:>9}")
            if args.controls:
                for c in fw["controls"]:
                    print(f"    {c['id']:<10} {c['status']:<11} {c['evidence_count']:>6} events  "
                          f"{(c['title'] or '')[:60]}  e.g. {', '.join(map(_shown, c['evidence'][:2]))}")
                for c in fw["no_evidence"]:
                    print(f"    {c['id']:<10} {'no evidence':<11} {0:>6} events  {(c['title'] or '')[:60]}")
                for c in fw["relevant"]:
                    seen = ", ".join(map(_shown, c["techniques"][:3])) + (" ..." if len(c["techniques"]) > 3 else "")
                    print(f"    {c['id']:<10} {'relevant':<11} {c['event_count']:>6} events  "
                          f"{(c['title'] or '')[:60]}  techniques {seen or 'by tactic'}  "
                          f"e.g. {', '.join(map(_shown, c['events'][:2]))}")
        print("coverage and score count only controls an event-type rule evidenced; relevant = further controls "
              "that address ATT&CK techniques seen (not evidence that they operate; see docs/compliance.md)")
    print(summary_line(inputs), file=sys.stderr)
    return 1 if problems.count else 0
