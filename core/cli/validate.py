"""`wia-security validate PATH...|-`: per-event verdicts with file, line and JSON path."""
from __future__ import annotations

import argparse
import os
import stat
import sys
from collections import Counter
from typing import Any

from .. import jsonio
from ..locate import line_of
from ..progress import Progress
from ..reader import InputSource, Item
from ..validation import ValidationResult, Validator
from .common import EXIT_CODES_HELP, StopSignals, counted, fail, missing_inputs, no_events_of, printable


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "validate", help="check events against the WIA Security schemas",
        description="Validate WIA events in JSON, JSON-array or NDJSON files (gzip too; - for stdin). "
                    "Verdicts go to standard output, the summary to standard error (--format json: the summary is "
                    "the last line on standard output). Ctrl-C stops after the event being checked and prints the "
                    "counts so far.",
        epilog="Exit 0 when all are valid, 1 when any event is invalid or unparseable, or an input holds no event "
               "(an empty file, blank lines or an empty JSON array: more often a failed export than a check "
               "meant to pass; --allow-empty makes it a warning). " + EXIT_CODES_HELP)
    p.add_argument("paths", nargs="+", metavar="PATH", help="input files, or - for standard input")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text (default) or json: one result object per line, then a summary line")
    p.add_argument("--lenient", action="store_true",
                   help="treat optional fields that are null as absent (reported as warnings)")
    p.add_argument("--no-warnings", action="store_true", help="do not report advisory warnings")
    p.add_argument("--allow-empty", action="store_true",
                   help="an input with no event (empty, blank lines, []) is a warning, not an error: for a check "
                        "of exports that may rightly be empty (a quiet hour)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="text format: print only invalid events (and their errors, without warnings)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar on stderr (default: when stderr is a terminal and the verdicts do "
                        "not go to that terminal too)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.quiet and args.format == "json":
        return fail("validate: --quiet applies to --format text only")
    if missing := missing_inputs(args.paths):
        # Nothing left to read (every input missing, or `- -`): a usage error, not a run of 0 events.
        if all(path in missing for path in args.paths):
            return 2
    validator = Validator(lenient=args.lenient, warnings=not args.no_warnings)
    totals: Counter[str] = Counter()
    out = sys.stdout
    io_error = bool(missing)
    show_progress = args.progress
    if show_progress is None:      # verdicts on the same terminal as the bar would garble both
        show_progress = sys.stderr.isatty() and not sys.stdout.isatty()
    paths = [path for path in args.paths if path not in missing]
    sizes = [_size(path) for path in paths]
    reading: list[Any] = [0, None]   # bytes of the inputs read to their end, the InputSource being read
    progress = Progress(sum(sizes) or None, lambda: reading[0] + (reading[1].position() if reading[1] else 0),
                        enabled=show_progress)
    with StopSignals() as stop:
        for path, size in zip(paths, sizes):
            if stop.received is not None:
                break
            try:
                with InputSource(path) as src:
                    reading[1] = src
                    before = totals["events"]
                    for item in stop.items([src.items()]):
                        report(item, validator, args, totals, out)
                        progress.update(totals["events"], totals["invalid"] + totals["unparseable"])
                    if totals["events"] == before and stop.received is None:
                        progress.clear()
                        report_no_events(src, args, totals, out)
            except BrokenPipeError:
                raise                      # our reader went away: main() stops quietly
            except OSError as exc:
                progress.clear()
                fail(f"{path}: {exc.strerror or exc}")
                io_error = True
            reading[0], reading[1] = reading[0] + size, None
        progress.update(totals["events"], totals["invalid"] + totals["unparseable"], force=True)
        progress.close()
    summary = {"events": totals["events"], "valid": totals["valid"], "invalid": totals["invalid"],
               "unparseable": totals["unparseable"], "warnings": totals["warnings"]}
    if totals["empty_inputs"]:
        summary["empty_inputs"] = totals["empty_inputs"]
    if stop.received is not None:
        summary["interrupted"] = True
    if args.format == "json":
        out.write(jsonio.dumps({"summary": summary}) + "\n")
    else:
        print(f"{counted(summary['events'], 'event')}: {summary['valid']:,} valid, {summary['invalid']:,} invalid, "
              f"{summary['unparseable']:,} unparseable, {counted(summary['warnings'], 'warning')}"
              + (f"; {counted(totals['empty_inputs'], 'input')} with no event" if totals["empty_inputs"] else ""),
              file=sys.stderr)
    if stop.received is not None:
        out.flush()
        print(stop.note(), file=sys.stderr)
        return stop.exit_code or 130
    if io_error:
        return 2
    failed_empty = totals["empty_inputs"] and not args.allow_empty
    return 1 if totals["invalid"] or totals["unparseable"] or failed_empty else 0


def _size(path: str) -> int:
    """The bytes of a regular file (compressed ones for gzip), 0 for standard input, a FIFO or a device."""
    if path == "-":
        return 0
    try:
        info = os.stat(path)
    except OSError:
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def report_no_events(src: InputSource, args: argparse.Namespace, totals: Counter[str], out: Any) -> None:
    """An input read to its end without one event is a failed check, not a pass with nothing checked (with
    --allow-empty, a warning)."""
    totals["empty_inputs"] += 1
    reason = no_events_of(src)
    issue = {"path": "", "code": "no_events", "message": reason, "line": 0}
    if args.format == "json":
        out.write(jsonio.dumps({"source": src.name, "line": 0, "valid": args.allow_empty,
                                "errors": [] if args.allow_empty else [issue],
                                "warnings": [issue] if args.allow_empty else []}) + "\n")
    elif not args.allow_empty:
        out.write(f"{src.name}: error: {reason} [no_events]\n")
    elif not args.quiet and not args.no_warnings:
        out.write(f"{src.name}: warning: {reason} [no_events]\n")


def report(item: Item, validator: Validator, args: argparse.Namespace, totals: Counter[str], out: Any) -> None:
    totals["events"] += 1
    if item.error is not None:
        totals["unparseable"] += 1
        line = item.error.line or item.line
        # The column (from 1) where the parser stopped, when it knows: it points into a long line.
        column = item.error.column if item.error.line else None
        if args.format == "json":
            issue: dict[str, Any] = {"path": "", "code": "parse_error", "message": item.error.reason, "line": line}
            if column is not None:
                issue["column"] = column
            out.write(jsonio.dumps({"source": item.source, "line": item.line, "valid": False, "errors": [issue],
                                    "warnings": []}) + "\n")
        else:
            # line 0: the reader could not say where (a gzip stream that ends early)
            where = f"{item.error.source or item.source}:{line}" if line else f"{item.error.source or item.source}"
            if line and column is not None:
                where += f":{column}"
            out.write(f"{where}: error: {item.error.reason} [parse_error]\n")
        return
    result = validator.validate(item.value)
    totals["valid" if result.valid else "invalid"] += 1
    totals["warnings"] += len(result.warnings)
    text = item.raw.decode("utf-8", "replace") if item.raw else None

    def line(path: str) -> int:
        if text is None:
            return item.line
        found = line_of(text, path)
        return item.line + (found - 1 if found else 0)

    if args.format == "json":
        out.write(jsonio.dumps(_result_json(item, result, line)) + "\n")
        return
    if result.valid and args.quiet:
        return
    value = item.value if isinstance(item.value, dict) else {}
    label = " ".join(printable(str(v)[:40]) for v in (value.get("type"), value.get("id")) if isinstance(v, str))
    out.write(f"{item.where}: {'valid' if result.valid else 'INVALID'} {label}\n")
    for e in result.errors:
        out.write(f"{item.source}:{line(e.path)}: error: {e.path or '/'}: {e.message} [{e.code}]\n")
    if not args.quiet:
        for w in result.warnings:
            out.write(f"{item.source}:{line(w.path)}: warning: {w.path or '/'}: {w.message} [{w.code}]\n")


def _result_json(item: Item, result: ValidationResult, line: Any) -> dict[str, Any]:
    value = item.value if isinstance(item.value, dict) else {}
    return {
        "source": item.source, "line": item.line, "valid": result.valid,
        "id": value.get("id") if isinstance(value.get("id"), str) else None,
        "type": value.get("type") if isinstance(value.get("type"), str) else None,
        "errors": [{**e.to_dict(), "line": line(e.path)} for e in result.errors],
        "warnings": [{**w.to_dict(), "line": line(w.path)} for w in result.warnings],
    }
