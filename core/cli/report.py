"""`wia-security report`: the self-contained HTML dashboard and its JSON twin, from the store or input files."""
from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import stat
import sys
import tempfile
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterator
from urllib.parse import quote

from .. import jsonio
from .._version import __version__
from ..errors import ConfigError, OutputError
from ..progress import Progress
from ..reader import InputSource
from ..timeutil import time_or_relative, to_epoch_ms as time_to_ms, to_iso
from ..validation import Validator
from .common import counted, fail, missing_inputs, printable, repeated_inputs
from .forward import DEFAULT_DESTINATION


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report", help="write an HTML dashboard (and its JSON twin) with compliance coverage",
        description="Aggregate events over a time window into a self-contained HTML dashboard (charts drawn "
                    "inline, no network needed to view it) and a JSON report with the same numbers. Reads the "
                    f"embedded store ({DEFAULT_DESTINATION} by default) or the given input files.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="event files (JSON, JSON array, NDJSON, gzip; - for stdin) instead of the store")
    p.add_argument("--db", default=None, metavar="URL",
                   help=f"store URL or path, read when no PATH is given (default {DEFAULT_DESTINATION})")
    p.add_argument("--since", metavar="TIME", help="window start: RFC 3339 time, or relative: 30m, 24h, 7d")
    p.add_argument("--until", metavar="TIME", help="window end (exclusive): RFC 3339 time, or relative")
    p.add_argument("-o", "--out", default="wia-report.html", metavar="FILE", help="HTML output (default wia-report.html)")
    p.add_argument("--json", dest="json_out", metavar="FILE",
                   help="JSON twin (default: the HTML path with .json); '-' writes it to stdout")
    p.add_argument("--title", default="WIA Security dashboard",
                   help="the page title and heading (default %(default)r)")
    p.add_argument("--lenient", action="store_true",
                   help="input files: treat optional fields that are null as absent instead of rejecting the event")
    p.add_argument("--no-compliance", action="store_true", help="leave out the compliance coverage section")
    p.add_argument("--framework", dest="frameworks", action="append", default=[], metavar="ID",
                   help="compliance framework to include (repeatable; default all): "
                        "nist-csf-2.0, nist-sp800-53r5, cis-v8, iso27001-2022")
    add_progress_option(p)
    p.set_defaults(run=run)


def _store_events(url: str, since_ms: int | None, until_ms: int | None,
                  problems: "RejectLog") -> Iterator[dict[str, Any]]:
    """The store's events in the window (epoch ms, the aggregator's own bounds), oldest first, read without
    writing anything: a store the user may only read (shared read-only, a snapshot on a read-only mount) is
    read as well. The store's ts_ms is a float product that may lie one off the exact millisecond, so the
    query reaches 1 ms past each bound; the aggregator counts what lies outside."""
    from wia_security.connectors.sqlite import path_from_url
    path = path_from_url(url)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no event store here (run `wia-security forward` first, or give input files)")
    clauses, args = [], []
    if since_ms is not None:
        clauses.append("ts_ms >= ?")
        args.append(since_ms - 1)
    if until_ms is not None:
        clauses.append("ts_ms < ?")
        args.append(until_ms + 1)
    sql = ("SELECT id, body FROM events" + (" WHERE " + " AND ".join(clauses) if clauses else "")
           + " ORDER BY ts_ms, id")
    db = _open_read_only(path)
    # Read as immutable, SQLite takes no lock and trusts the file not to change: a writer that started
    # meanwhile (its checkpoint writes into the file) would leave counts mixing two states, unsaid.
    state = _file_state(path) if isinstance(db, ImmutableConnection) else None
    try:
        for event_id, body in db.execute(sql, args):
            try:
                event = jsonio.loads(body)
            except ValueError as exc:
                problems.append(f"{path}: stored event {event_id}: its body is not JSON ({exc}) [store_body]")
                continue
            if not isinstance(event, dict):
                problems.append(f"{path}: stored event {event_id}: its body is not a JSON object [store_body]")
                continue
            yield event
    except sqlite3.Error as exc:
        _check_unchanged(path, state)
        raise ConfigError(f"cannot read the event store: {exc}", source=path) from None
    finally:
        db.close()
    _check_unchanged(path, state)


def _file_state(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _check_unchanged(path: str, state: tuple[int, int, int] | None) -> None:
    """ConfigError when a store read as immutable (`state` taken before) was written while it was read."""
    if state is not None and _file_state(path) != state:
        raise ConfigError("cannot read the event store: it changed while it was read without a lock (as immutable: "
                          "no -shm could be made or used here), so the counts could mix two states; run again once "
                          "its writer has stopped, or as a user who may write its folder", source=path)


def _open_read_only(path: str) -> sqlite3.Connection:
    """The store opened read-only. A store in WAL mode whose folder the user may not write (no -shm can be
    made) opens only as immutable, which is right only when no -wal file holds events yet to be merged.
    Errors read as the store's own ('cannot open the SQLite store: ...'), as `query` gives them."""
    if os.path.isdir(path):
        raise ConfigError("cannot open the SQLite store: is a directory (the path is a directory)", source=path)
    kind = _special_kind(path)
    if kind:                                # opening a FIFO to read blocks until someone writes to it
        raise ConfigError(f"cannot open the SQLite store: it is {kind}, not a regular file", source=path)
    uri = "file:" + quote(os.path.abspath(path)) + "?mode=ro"
    try:
        if _would_leave_files_for_its_owner(path):
            return _open_immutable(path, uri, "opening it would leave -wal/-shm files owned by you beside "
                                              "another user's store, which its writer could then not use")
        db = sqlite3.connect(uri, uri=True)
        try:
            db.execute("SELECT 1 FROM events LIMIT 1").fetchall()
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            if not _no_shm_here(path, exc):
                raise
            wal = path + "-wal"
            if os.path.exists(wal) and os.path.getsize(wal) > 0:
                raise ConfigError(f"cannot open the SQLite store: {exc} (its -wal file holds events not yet "
                                  "merged into it, which SQLite reads only with a -shm file it could not make "
                                  "here: read it as a user who may write its folder, or once its writer has "
                                  "closed it)", source=path) from None
        db = sqlite3.connect(uri + "&immutable=1", uri=True, factory=ImmutableConnection)
        db.execute("SELECT 1 FROM events LIMIT 1").fetchall()
        return db
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open the SQLite store: {_open_error(exc)}", source=path) from None


#: SQLite's answers to a read-only open of a WAL store whose -shm it may not make or use here (a folder the
#: user may not write). Nothing else lets the store be read as immutable: a store locked by a writer, or with
#: a hot -journal a crashed writer left, changes under an immutable reader (SQLite then "might return
#: incorrect query results and/or SQLITE_CORRUPT errors", its URI documentation says).
_NO_SHM_ERRORS = frozenset({"SQLITE_READONLY_DIRECTORY", "SQLITE_CANTOPEN", "SQLITE_READONLY_CANTINIT",
                            "SQLITE_READONLY_CANTLOCK"})


def _no_shm_here(path: str, exc: sqlite3.Error) -> bool:
    """Whether a failed read-only open failed only for want of a -shm file of a WAL store."""
    return getattr(exc, "sqlite_errorname", None) in _NO_SHM_ERRORS and _wal_mode(path)


def _wal_mode(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            header = fh.read(20)
    except OSError:
        return False
    return header[:16] == b"SQLite format 3\x00" and header[18:20] == b"\x02\x02"


def _open_error(exc: sqlite3.Error) -> str:
    """Why the store could not be opened, in words a user can act on."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if "no such table" in str(exc):
        return "it holds no event table: not a wia-security store"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f"{exc} (another process holds it locked, as a writer in exclusive mode does: try again once it is done)"
    if name == "SQLITE_READONLY_ROLLBACK":
        return (f"{exc} (a writer stopped in the middle of a transaction and left its -journal file, which only "
                "a process that may write the store can roll back: the next `wia-security forward` or gateway "
                "that opens it does; read-only readers never write)")
    return str(exc)


def _would_leave_files_for_its_owner(path: str) -> bool:
    """Whether a read-only open would make the store's -wal/-shm files owned by this user while the store is
    another user's. SQLite makes them for a WAL store when it may (root gives them the store's owner), and a
    read-only connection leaves them behind: the store's owner (a gateway, forward) could then no longer write
    its own store ('attempt to write a readonly database') until someone deletes them."""
    euid = os.geteuid()
    if euid == 0 or os.stat(path).st_uid == euid:
        return False
    if os.path.exists(path + "-wal") and os.path.exists(path + "-shm"):
        return False                        # its writer's: opened as they are, nothing made
    return _wal_mode(path)                  # unreadable: SQLite says why


class ImmutableConnection(sqlite3.Connection):
    """A store opened with immutable=1: no lock taken, the file trusted not to change while it is read."""


def _open_immutable(path: str, uri: str, why: str) -> sqlite3.Connection:
    """The store read as immutable (nothing made beside it, no lock taken), only when no -wal holds events."""
    wal = path + "-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        raise ConfigError(f"cannot open the SQLite store: its -wal file holds events not yet merged into it, and "
                          f"{why}: read it as its owner, or once its writer has it open", source=path)
    db = sqlite3.connect(uri + "&immutable=1", uri=True, factory=ImmutableConnection)
    db.execute("SELECT 1 FROM events LIMIT 1").fetchall()
    return db


def _special_kind(path: str) -> str | None:
    """What a path that is not a regular file is ("a FIFO (named pipe)", "a device", "a socket"), or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


class RejectLog:
    """Each input that is not a valid event, printed on stderr as soon as it is met (file:line: /json/path:
    message [code], control characters and bidi overrides escaped) and counted; nothing is kept per reject, so a million bad lines cost no memory."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.count = 0
        self.progress = progress

    def append(self, line: str) -> None:
        self.count += 1
        if self.progress is not None:
            self.progress.clear()           # on a line of its own, not into the bar
        # Event text (a meta.labels key in the JSON path, a stored id) reaches the terminal escaped: an ESC
        # sequence would recolour or retitle it, a line break forge a line of output.
        print(printable(f"wia-security: {line}"), file=sys.stderr)


class FilePosition:
    """How far through the input files a run is (bytes; compressed bytes for gzip), for the progress bar."""

    def __init__(self, paths: list[str]) -> None:
        sizes = [os.path.getsize(p) if p != "-" and os.path.isfile(p) else 0 for p in paths]
        self.total = sum(sizes) or None
        self.done = 0
        self.current: InputSource | None = None

    def position(self) -> int:
        return self.done + (self.current.position() if self.current is not None else 0)


def start_progress(args: argparse.Namespace) -> tuple[Progress, FilePosition | None]:
    """The progress bar of a run (--progress, or by default when stderr is a terminal) and, for input
    files, where it is in them; on the store it counts events only."""
    where = FilePosition(args.paths) if args.paths else None
    progress = Progress(where.total if where else None, where.position if where else (lambda: 0),
                        enabled=args.progress)
    return progress, where


def add_progress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress line on stderr (default: when stderr is a terminal)")


def _file_events(paths: list[str], problems: RejectLog, lenient: bool = False,
                 where: FilePosition | None = None) -> Iterator[dict[str, Any]]:
    """Valid events from files; each unreadable or invalid one is reported (file:line, JSON path) and skipped."""
    validator = Validator(lenient=lenient, warnings=False)
    where = where or FilePosition([])
    for path in paths:
        with InputSource(path) as src:
            where.current = src
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
            where.done += src.position()
            where.current = None


#: Events put into the temporary store per transaction while input files are read.
VERSIONS_BATCH = 1000


class Versions:
    """How many events the input files held (`read`) and how many of them were set aside as an older version
    or a repeat of another event with the same id (`duplicates`)."""

    def __init__(self) -> None:
        self.read = 0
        self.duplicates = 0


def newest_versions(events: Iterator[dict[str, Any]], problems: RejectLog, counts: Versions,
                    on_read: Callable[[int], None] = lambda n: None) -> Iterator[dict[str, Any]]:
    """Each event once, as its newest version, by the store's own rule (connectors/sqlite.py: a later
    timestamp, or the same instant with a later incident data.updated_at; a repeat changes nothing): the
    events go through a temporary store, so an export holding an incident as opened and as closed, or two
    exports that overlap, count as the store counts them. The store lies in a private temporary folder
    (TMPDIR), about as large as the events, and is removed at the end; memory stays bounded. Oldest first."""
    import sqlite3

    from wia_security.connectors.sqlite import EventStore
    with tempfile.TemporaryDirectory(prefix="wia-report-") as folder:
        store = EventStore(os.path.join(folder, "versions.db"))
        try:
            batch: list[dict[str, Any]] = []
            set_aside = 0
            try:
                for event in events:
                    batch.append(event)
                    counts.read += 1
                    if len(batch) >= VERSIONS_BATCH:
                        set_aside += _put(store, batch, problems)
                        batch = []
                    on_read(counts.read)
                set_aside += _put(store, batch, problems)
                counts.duplicates = counts.read - set_aside - store.count()
                for stored in store.query(limit=None, newest_first=False):
                    yield stored.event
            except sqlite3.Error as exc:        # a full disk under TMPDIR
                raise ConfigError(f"cannot keep the events' versions in a temporary store: {exc} (it needs about "
                                  "as much room as the events; set TMPDIR to a folder with more)", source=folder) from None
        finally:
            store.close()


@contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM (a `timeout`, a service stop) ends the run as an exception does, so the temporary store of
    event copies is removed; its default action killed the process and left it under TMPDIR. No report is
    written (exit 143, as a process killed by it). A SIGTERM ignored from the start (nohup) stays ignored."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _put(store: Any, batch: list[dict[str, Any]], problems: RejectLog) -> int:
    """Store a batch in the temporary store; each event it cannot hold is described -> how many."""
    if not batch:
        return 0
    _, _, rejected = store.insert(batch)
    for item in rejected:
        event_id = item.event.get("id") if isinstance(item.event, dict) else None
        problems.append(f"event {str(event_id)[:64]!r}: {item.reason} [store]")
    return len(rejected)


def sources_problem(args: argparse.Namespace) -> str | None:
    """Event files and --db together: the files would be read and the store left out without a word."""
    if args.paths and args.db is not None:
        return (f"give event files (PATH) or --db, not both: with {args.paths[0]} given, the store {args.db} "
                "would not be read")
    return None


def event_stream(args: argparse.Namespace, problems: RejectLog, in_window: Any, where: FilePosition | None = None,
                 versions: Versions | None = None, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
    """Events from the input files (validated, rejects described in `problems`; each id once, as its newest
    version, counted in `versions`) or from the store (which holds one version per id), read for the window of
    `in_window` (the DashboardAggregator of `window(args)`: relative bounds resolved once)."""
    if args.paths:
        events = _file_events(args.paths, problems, getattr(args, "lenient", False), where)
        on_read = (lambda n: progress.update(n, problems.count)) if progress is not None else (lambda n: None)
        return newest_versions(events, problems, versions or Versions(), on_read)
    return _store_events(args.db or DEFAULT_DESTINATION, in_window.since_ms, in_window.until_ms, problems)


_OFFSET = re.compile(r"(?:[zZ]|[+-]\d{2}:\d{2})$")


def window(args: argparse.Namespace) -> Any:
    """The DashboardAggregator for --since/--until (relative ones resolved against one reading of the
    clock; --since alone ends the window now); ValueError says which bound is bad."""
    from wia_security.dashboard import DashboardAggregator
    now = datetime.now(timezone.utc)
    bounds = []
    for flag, value in (("--since", args.since), ("--until", args.until)):
        try:
            bound = None if value is None else time_or_relative(value, now)
        except ValueError as exc:
            raise ValueError(f"{flag} {exc}") from None
        if bound is not None and bound == value and not _OFFSET.search(value.strip()):
            # Python reads a time without offset as naive and it was taken as UTC: hours off in most places.
            raise ValueError(f"{flag} {value[:60]!r} has no UTC offset: add Z for UTC or the offset (+09:00)")
        bounds.append(bound)
    if bounds[0] is not None and bounds[1] is None:
        # Else the window ended at the latest event: one from a host whose clock says 2036 stretched the
        # chart over ten years. Events after now are counted outside the window.
        bounds[1] = to_iso(now)
        if time_to_ms(bounds[0]) >= time_to_ms(bounds[1]):
            raise ValueError(f"--since {args.since[:60]!r} is not before now, where the window ends when no "
                             "--until is given")
    return DashboardAggregator(*bounds)


def run(args: argparse.Namespace) -> int:
    from wia_security.dashboard import write_report
    from wia_security.dashboard.report import dumps, output_problem
    if problem := sources_problem(args):
        return fail(problem)
    try:
        aggregator = window(args)
    except ValueError as exc:
        return fail(f"bad time window: {exc}")
    if args.no_compliance and args.frameworks:      # one of the two was not meant; which is a guess
        return fail("--framework chooses what the compliance section shows, and --no-compliance leaves it out: "
                    "give one of them")
    tracker = None
    if not args.no_compliance:
        from wia_security.compliance import ComplianceTracker
        try:
            tracker = ComplianceTracker(frameworks=args.frameworks or None)
        except KeyError as exc:                 # UnknownFrameworkError: names the id and the known ones
            return fail(exc)
    json_out = args.json_out or str(Path(args.out).with_suffix(".json"))
    if json_out != "-" and os.path.realpath(json_out) == os.path.realpath(args.out):
        return fail(f"{args.out}: the HTML report and its JSON twin would be the same file; give --json")
    for target in (args.out, None if json_out == "-" else json_out):
        problem = output_problem(target) if target else None
        if problem:                     # found out before reading what may be gigabytes of input
            return fail(OutputError(target, problem))
    for target, flag in ((args.out, "-o"), (None if json_out == "-" else json_out, "--json")):
        replaced = input_at(target, args) if target else None
        if replaced:
            return fail(OutputError(target, f"it is the input {replaced}, which the report would replace: give "
                                            f"{flag} another path"))
    if args.paths and (missing_inputs(args.paths) or repeated_inputs(args.paths, "read twice")):
        return 2
    progress, where = start_progress(args)
    problems = RejectLog(progress)
    versions = Versions()
    try:
        with stopped_by_sigterm():
            for event in event_stream(args, problems, aggregator, where, versions, progress):
                if aggregator.add(event) and tracker is not None:
                    tracker.add(event)
                progress.update(max(aggregator.seen, versions.read), problems.count)
        progress.update(max(aggregator.seen, versions.read), problems.count, force=True)
    except FileNotFoundError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"{exc.filename or 'input'}: {exc.strerror or exc}")
    finally:
        progress.close()
    report = aggregator.report()
    report["title"] = args.title
    report["tool_version"] = __version__       # as the page embeds it: the twin on stdout carries it too
    report["inputs"] = read_counts(report["inputs"], versions, problems)
    if tracker is not None:
        report["compliance"] = tracker.report()
    try:
        write_report(report, args.out, None if json_out == "-" else json_out)
    except OutputError as exc:
        return fail(exc)
    if json_out == "-":
        sys.stdout.write(dumps(report, indent=2) + "\n")
    print(summary_line(report["inputs"]) + f" -> {args.out}" + (f" and {json_out}" if json_out != "-" else ""),
          file=sys.stderr)
    return 1 if problems.count else 0


def input_at(target: str, args: argparse.Namespace) -> str | None:
    """The input file (or the store, or one of its side files) that `target` is, or None.

    `report events.json -o events.html` wrote its JSON twin to events.json, over the events it had just read,
    and `-o` naming the store replaced the store with the page: both without a word."""
    try:
        info = os.stat(target)
    except OSError:
        return None                         # not there yet: no input can be it
    if args.paths:
        candidates = [p for p in args.paths if p != "-"]
    else:
        from wia_security.connectors.sqlite import path_from_url
        try:
            store = path_from_url(args.db or DEFAULT_DESTINATION)
        except ConfigError:
            return None                     # reported when the store is opened
        candidates = [store] + [store + side for side in ("-wal", "-shm", "-journal")]
    for candidate in candidates:
        try:
            other = os.stat(candidate)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (info.st_dev, info.st_ino):
            return candidate
    return None


def read_counts(inputs: dict[str, int], versions: Versions, problems: RejectLog) -> dict[str, int]:
    """The aggregator's input counts with the events set aside as older versions or repeats (files only:
    the store holds one version per id) and the rejected ones."""
    return {**inputs, "events_read": inputs["events_read"] + versions.duplicates, "duplicates": versions.duplicates,
            "rejected": problems.count}


def summary_line(inputs: dict[str, int]) -> str:
    """"1,000 events read: 990 in window, 10 outside it; 2 rejected (listed above)" (zero counts left out)."""
    parts = [f"{inputs['in_window']:,} in window"]
    if inputs.get("outside_window"):
        parts.append(f"{inputs['outside_window']:,} outside it")
    if inputs.get("without_timestamp"):
        parts.append(f"{inputs['without_timestamp']:,} without a usable timestamp")
    if inputs.get("duplicates"):
        parts.append(f"{inputs['duplicates']:,} older versions or repeats of another event (same id)")
    line = f"{counted(inputs['events_read'], 'event')} read: " + ", ".join(parts)
    return line + (f"; {inputs['rejected']:,} rejected (listed above)" if inputs.get("rejected") else "")
