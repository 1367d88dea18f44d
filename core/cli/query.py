"""`wia-security query`: read events back from the embedded SQLite store."""
from __future__ import annotations

import argparse
import os
import re
import sqlite3
import sys
from datetime import datetime, timezone
from typing import Any

from .. import jsonio
from ..errors import ConfigError
from ..schemas import EVENT_TYPES
from ..severity import band
from ..timeutil import parse_iso, time_or_relative
from .common import EXIT_CODES_HELP, closest, fail, printable, sqlite_slashes_hint
from .forward import DEFAULT_DESTINATION

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("query", help="read events from the embedded store",
                              description="Query the embedded SQLite event store, newest first. The store is "
                                          "opened read-only (never migrated or written). Events go to "
                                          "standard output; when --limit cut the list short, a note says so on "
                                          "standard error.",
                              epilog=EXIT_CODES_HELP)
    p.add_argument("--db", default=DEFAULT_DESTINATION, metavar="URL",
                   help=f"store URL or path (default {DEFAULT_DESTINATION})")
    p.add_argument("--type", dest="types", action="append", default=[], metavar="TYPE",
                   help=f"event type (repeatable): {', '.join(EVENT_TYPES)}")
    p.add_argument("--since", metavar="TIME", help="RFC 3339 time with its offset (Z, +09:00), or relative: 30m, 24h, 7d")
    p.add_argument("--until", metavar="TIME", help="RFC 3339 time with its offset, or relative (exclusive)")
    p.add_argument("--min-severity", type=float, metavar="N", help="severity at least N (0 to 10)")
    p.add_argument("--max-severity", type=float, metavar="N", help="severity at most N (0 to 10)")
    p.add_argument("--source", metavar="NAME", help="source.name")
    p.add_argument("--id", dest="event_id", metavar="UUID", help="the event with this id")
    p.add_argument("--limit", type=int, default=100, metavar="N",
                   help="at most N events (default 100; 0 = no limit)")
    p.add_argument("--oldest-first", action="store_true", help="oldest events first (default newest first)")
    p.add_argument("--format", choices=("table", "ndjson", "json"), default="table",
                   help="table (default), ndjson (one event per line) or json (one array)")
    p.add_argument("--count", action="store_true", help="print only the number of matching events")
    p.set_defaults(run=run)


def _bound(value: str | None, now: datetime) -> str | None:
    return None if value is None else time_or_relative(value, now)


def run(args: argparse.Namespace) -> int:
    from wia_security.connectors.sqlite import EventStore, path_from_url
    try:
        path = path_from_url(args.db)
    except Exception as exc:  # noqa: BLE001 - ConfigError with a clear message
        return fail(exc)
    problem = _filter_problem(args)
    if problem:
        return fail(problem)
    if not os.path.exists(path):
        return fail(f"{path}: no event store here (run `wia-security forward` first)"
                    f"{sqlite_slashes_hint(args.db, path)}")
    from .report import ImmutableConnection, _check_unchanged, _file_state, _open_read_only
    try:
        # Read-only, as report and compliance read it: no migration, no write lock, nothing created.
        db = _open_read_only(path)
        store = EventStore.reader(path, db)
    except ConfigError as exc:
        return fail(exc)
    # Read as immutable (no lock), a writer that starts meanwhile writes under the read: what was shown could
    # mix two states, so the file is checked unchanged once read and such a run fails (after its output).
    state = _file_state(path) if isinstance(db, ImmutableConnection) else None
    try:
        now = datetime.now(timezone.utc)           # one reading of the clock for both relative bounds
        filters = dict(types=args.types, since=_bound(args.since, now), until=_bound(args.until, now),
                       min_severity=args.min_severity, max_severity=args.max_severity, source=args.source,
                       event_id=args.event_id)
        if args.count:
            count = store.count(**filters)
            _check_unchanged(path, state)
            print(count)
            return 0
        rows = store.query(**filters, limit=args.limit or None, newest_first=not args.oldest_first)
        shown = 0
        if args.format == "ndjson":
            for shown, row in enumerate(rows, 1):
                sys.stdout.write(jsonio.dumps(row.event) + "\n")
        elif args.format == "json":
            # One array, written an event at a time: a whole store (--limit 0) never sits in memory at once.
            sys.stdout.write("[")
            for shown, row in enumerate(rows, 1):
                sys.stdout.write(("," if shown > 1 else "") + jsonio.dumps(row.event))
            sys.stdout.write("]\n")
        else:
            print(f"{'timestamp':<26} {'type':<15} {'sev':>4} {'band':<13} {'source':<24} {'id':<36}  summary")
            for shown, row in enumerate(rows, 1):
                # the stored text is the producer's: printed with its control characters escaped
                print(f"{printable(row.timestamp):<26} {printable(row.type):<15} {row.severity:>4g} "
                      f"{band(row.severity):<13} {printable(row.source_name or '')[:24]:<24} {printable(row.id):<36}  "
                      f"{printable(_headline(row.event))}")
        if shown == 0:
            sys.stdout.flush()
            print(f"wia-security: no events match; {_store_extent(store)}", file=sys.stderr)
        elif args.limit and shown == args.limit:
            matching = store.count(**filters)
            if matching > shown:
                sys.stdout.flush()
                print(f"wia-security: showing {shown:,} of {matching:,} matching events "
                      f"({'oldest' if args.oldest_first else 'newest'} first); --limit 0 shows all", file=sys.stderr)
        _check_unchanged(path, state)
    except ValueError as exc:
        return fail(f"bad time filter: {exc}")
    except ConfigError as exc:
        sys.stdout.flush()
        return fail(exc)
    except sqlite3.Error as exc:            # a damaged file, a disk error while reading
        try:
            _check_unchanged(path, state)
        except ConfigError as changed:
            return fail(changed)
        return fail(ConfigError(f"cannot read the event store: {exc}", source=path))
    finally:
        store.close()
    return 0


def _store_extent(store: Any) -> str:
    """What the store holds, so an empty answer shows whether the filters (often --since against old
    events) or the store are the reason."""
    total = store.count()
    if total == 0:
        return f"the store {store.path} holds no events"
    [newest] = store.query(limit=1, newest_first=True)
    [oldest] = store.query(limit=1, newest_first=False)
    return (f"the store holds {total:,} event{'s' if total != 1 else ''}, "
            f"timestamps from {oldest.timestamp} to {newest.timestamp}")


def _filter_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the filters, checked before the store is read (a typo must not look like
    'no events')."""
    unknown = [t for t in args.types if t not in EVENT_TYPES]
    if unknown:
        return (f"--type: unknown event type {unknown[0]!r}{closest(unknown[0], EVENT_TYPES)}; "
                f"known: {', '.join(EVENT_TYPES)}")
    for flag, value in (("--min-severity", args.min_severity), ("--max-severity", args.max_severity)):
        if value is not None and not 0 <= value <= 10:       # also refuses nan, which matches nothing
            return f"{flag}: {value:g} is outside the WIA severity range 0 to 10"
    if args.event_id is not None and not _UUID.match(args.event_id):
        return f"--id: {args.event_id!r} is not an event id (a UUID such as 550e8400-e29b-41d4-a716-446655440000)"
    for flag, value in (("--since", args.since), ("--until", args.until)):
        if value is not None:
            try:
                time_or_relative(value)
            except ValueError as exc:
                return f"{flag}: {exc}"
    if args.since is not None and args.until is not None:
        now = datetime.now(timezone.utc)        # one clock reading for both, as report reads them
        since, until = time_or_relative(args.since, now), time_or_relative(args.until, now)
        if parse_iso(since) >= parse_iso(until):
            relative = since != args.since or until != args.until
            return (f"--since {args.since}{f' ({since})' if since != args.since else ''} is not before --until "
                    f"{args.until}{f' ({until})' if until != args.until else ''}: nothing could match"
                    + (" (relative times count back from now: --since 2h --until 1h is the hour before last)"
                       if relative else ""))
    if args.limit < 0:
        return "--limit: must be 0 (no limit) or more"
    if None not in (args.min_severity, args.max_severity) and args.min_severity > args.max_severity:
        return "--min-severity is above --max-severity: nothing could match"
    return None


def _headline(event: dict[str, Any]) -> str:
    data = event.get("data") or {}
    for key in ("title", "threat_name", "event_type"):
        if isinstance(data.get(key), str):
            return data[key][:60]
    return ""
