"""`wia-security replay DEAD_LETTER... --to URL`: send dead-lettered events again, once the destination works.

Every record read ends as exactly one of: replayed (its event goes through the forward path: validated
again, normalized, delivered or dead-lettered again with the new reason), not replayable (no event: input
that never parsed, or a line that is not a record; carried unchanged to the new dead letter), a repeat
(same dead_letter_id, or the same event for the same destination: replayed once), or not selected
(--reason-match / --sink). The inputs are never changed.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import sqlite3
import sys
from collections import Counter, deque
from dataclasses import dataclass
from itertools import islice
from typing import Any, Iterable, Iterator
from urllib.parse import quote

from .. import jsonio
from ..errors import OutputError, ParseError, WiaError
from ..pipeline import DEFAULT_BATCH_SIZE, ForwardSummary, Forwarder
from ..progress import Progress
from ..reader import InputSource, Item
from ..validation import Validator
from .common import (EXIT_CODES_HELP, StopSignals, add_delivery_run_options, clash_with_inputs, counted,
                     dead_letter_in_destination, destination_clash, fail, input_path, missing_inputs, output_paths,
                     printable, spec_path, sqlite_slashes_hint)
from .forward import DEFAULT_DESTINATION, _Echoing, _writes_stdout, progress_shown

DEFAULT_DEAD_LETTER = "wia-dead-letter.replay.ndjson"
SQLITE_MAGIC = b"SQLite format 3\x00"
_ONE_DESTINATION = frozenset(("*",))


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay", help="send dead-lettered events again (after an outage)",
        description="Read dead-letter records (the NDJSON file forward/convert/pull write, gzip or not, - for "
                    "standard input; a SQLite dead letter, sqlite:///dead.db or its path; events a sink+URL dead "
                    "letter wrote to a file or SQLite store) and send each record's event through the forward path "
                    "again: validated and normalized, delivered, or dead-lettered again with the new reason. "
                    "Records with the same dead_letter_id are replayed once. Log lines holding a record under "
                    "wia_dead_letter (Lambda, GCP) are read as it, and a record written in parts (too big for one "
                    "SQS message or log entry) is joined first. With --config, an event refused by one "
                    "destination goes to that destination only. Records without an event (input that never parsed) "
                    f"are counted and carried unchanged to the new dead letter (default {DEFAULT_DEAD_LETTER}), "
                    "which must not be an input. The inputs are never changed. Ctrl-C or SIGTERM stops reading, "
                    "finishes what was read, prints the counts and exits 130 or 143.",
        epilog=EXIT_CODES_HELP + " Exit code 1 here: some records were rejected again or could not be replayed.")
    p.add_argument("inputs", nargs="+", metavar="DEAD_LETTER",
                   help="dead-letter files (NDJSON, gzip or not; SQLite), sqlite:///dead.db, or - for standard input")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--to", dest="destination", default=None, metavar="URL",
                        help=f"destination URL (default {DEFAULT_DESTINATION}), as for forward")
    target.add_argument("--config", metavar="FILE",
                        help="TOML file of destinations (as for forward); an event refused by one destination "
                             "(the record's sink) is sent to that one only, others to all")
    p.add_argument("--dead-letter", default=None, metavar="PATH|URL",
                   help=f"where records that fail again go (default {DEFAULT_DEAD_LETTER}; with --config, the "
                        "file's forward.dead_letter is not used, since it is usually the input)")
    p.add_argument("--reason-match", default=None, metavar="REGEX",
                   help="replay only records whose reason matches (Python re.search), e.g. 'gave up|HTTP 5'")
    p.add_argument("--sink", action="append", default=None, metavar="NAME",
                   help="replay only records refused by this destination (the record's sink; repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="count what would be replayed (validating the events), send and write nothing")
    add_delivery_run_options(p)
    p.set_defaults(run=run)


@dataclass
class ReplayCounts:
    records: int = 0                 # values read from the inputs
    replayed: int = 0                # events handed to the forward path
    not_replayable: int = 0          # no event (raw input, or not a record): carried to the new dead letter
    repeats: int = 0                 # same dead_letter_id, or same event for the same destination
    not_selected: int = 0            # --reason-match / --sink
    not_dead_letters: int = 0        # events of a SQLite store without a dead-letter record (left alone)
    would_be_invalid: int = 0        # --dry-run only
    parts: int = 0                   # values that were parts of a record too big for one message or log entry

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "replayed": self.replayed, "not_replayable": self.not_replayable,
                "repeats": self.repeats, "not_selected": self.not_selected,
                "not_dead_letters": self.not_dead_letters, "parts": self.parts}


class _ReplayItem(Item):
    """An event from a record, keeping the record's `where` (the original input line), so a record
    refused again gets the same dead_letter_id when the same destination refuses it."""

    __slots__ = ("origin",)

    @property  # type: ignore[override]
    def where(self) -> str | None:  # type: ignore[override]
        return self.origin


class _SqliteSource:
    """Records of a SQLite dead letter (table dead_letters), or the annotated events a sink+sqlite://
    dead letter stored (table events; the store's other events are not dead letters)."""

    def __init__(self, path: str) -> None:
        self.name = self.path = path
        self.size = None
        self.skipped = 0
        self._done = 0
        try:
            self._db = _connect_for_reading(path)
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error as exc:
            raise OSError(0, f"cannot read the SQLite dead letter: {exc}", path) from None
        if "dead_letters" in tables:
            self._query, self._annotated = "SELECT seq, record FROM dead_letters ORDER BY seq", False
        elif "events" in tables:
            self._query, self._annotated = "SELECT rowid, body FROM events ORDER BY ts_ms, id", True
        else:
            self._db.close()
            raise OSError(0, "a SQLite file without a dead_letters or events table", path)

    def position(self) -> int:
        return 0

    def items(self) -> Iterator[Item]:
        from wia_security.connectors.dead_letter import as_dead_letter_record
        try:
            for row_id, text in self._db.execute(self._query):
                raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
                try:
                    value = jsonio.loads(raw)
                except ValueError as exc:
                    yield Item(self.name, row_id, error=ParseError(str(exc), source=self.name, line=row_id), raw=raw)
                    continue
                if self._annotated and as_dead_letter_record(value) is None:
                    self.skipped += 1            # an ordinary stored event
                    continue
                yield Item(self.name, row_id, value=value, raw=raw)
        except sqlite3.Error as exc:
            yield Item(self.name, 0, error=ParseError(f"unreadable SQLite dead letter: {exc}", source=self.name))

    def close(self) -> None:
        self._db.close()


def _connect_for_reading(path: str) -> sqlite3.Connection:
    """A connection that cannot write. Opened read-write (query_only) where the file allows: a read-only
    connection to a WAL database leaves its -wal and -shm files behind, the last read-write one removes
    them on close; read-only where the file is not writable."""
    uri = f"file:{quote(os.path.abspath(path))}"
    try:
        db = sqlite3.connect(f"{uri}?mode=rw", uri=True)
    except sqlite3.OperationalError:
        return sqlite3.connect(f"{uri}?mode=ro", uri=True)
    db.execute("PRAGMA query_only = ON")
    return db


def _open_source(spec: str) -> Any:
    if spec.lower().startswith("sqlite://"):
        from wia_security.connectors.sqlite import path_from_url
        return _SqliteSource(path_from_url(spec))
    if spec != "-" and os.path.isfile(spec):          # not a FIFO: sniffing would eat its first bytes
        with open(spec, "rb") as fh:
            if fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
                return _SqliteSource(spec)
    return InputSource(spec)


def _dry_run_name(url: str) -> str:
    """The destination as a dry run names it, opening nothing: a local store or file as its sink would
    (`sqlite:wia-events.db`), so the operator sees which one; any other URL without user info, path or
    query, which may hold credentials."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("file", "sqlite"):
        try:
            path = spec_path(url)
        except WiaError:
            path = None
        if path:
            return f"{scheme}:{path}"
    from wia_security.connectors import _redact
    return _redact(url)


class _RoutedFanOut:
    """A --config fan-out sending each event only to the destinations its record asks for (the one that
    refused it), in the order the events were planned; events without a route go to every destination.
    `routes`: event id -> (digest of the event as read, destinations), one entry per replayed event."""

    def __init__(self, fanout: Any, routes: dict[str, deque]) -> None:
        self.fanout, self.routes = fanout, routes
        self.name, self.stats, self.sinks = fanout.name, fanout.stats, fanout.sinks

    def take_route(self, event_id: Any) -> frozenset[str] | None:
        queue = self.routes.get(event_id) if isinstance(event_id, str) else None
        if not queue:
            return None
        _, route = queue.popleft()
        if not queue:
            del self.routes[event_id]
        return route

    def drop_route(self, event_id: Any, digest: bytes) -> None:
        """An event rejected before sending gives up its own route: by content, since an event sharing its
        id may be waiting in the batch for the route planned before it."""
        queue = self.routes.get(event_id) if isinstance(event_id, str) else None
        for entry in queue or ():
            if entry[0] == digest:
                queue.remove(entry)
                break
        if queue is not None and not queue:
            del self.routes[event_id]

    def send(self, events: list[dict[str, Any]]) -> Any:
        per: dict[str, list[dict[str, Any]]] = {name: [] for name in self.sinks}
        for event in events:
            for name in self.take_route(event.get("id")) or per:
                per[name].append(event)
        return self.fanout.send_each(per)

    def flush(self) -> Any:
        return self.fanout.flush()

    def close(self) -> Any:
        return self.fanout.close()

    def __enter__(self) -> "_RoutedFanOut":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Replayer:
    """Turns the items read into events to replay, settling every other record on the way."""

    def __init__(self, args: argparse.Namespace, output: Any, destinations: list[str] | None,
                 routes: dict[str, deque] | None) -> None:
        self.counts = ReplayCounts()
        self.output = output                           # None with --dry-run
        self.reason_match = re.compile(args.reason_match) if args.reason_match else None
        self.sinks = set(args.sink) if args.sink else None
        self.sink_matched: set[str] = set()             # the --sink names some record had
        self.sinks_left: Counter[str] = Counter()       # destinations of the records --sink left out (the first 20)
        self.destinations = frozenset(destinations) if destinations else None
        self.routes = routes
        self.seen_ids: set[str] = set()
        self.sent: dict[bytes, frozenset[str]] = {}     # event digest -> destinations it was replayed to
        self.echoed = 0

    def events(self, items: Iterable[Item]) -> Iterator[Item]:
        from wia_security.connectors.dead_letter import as_dead_letter_record, dead_letter_id, rejected_from_record
        counts = self.counts
        for item in self._joined(items):
            counts.records += 1
            record = None if item.error is not None else as_dead_letter_record(item.value)
            if record is None:
                why = item.error.reason if item.error is not None else "a JSON value without reason and event"
                self._carry_unreadable(item, f"not a dead-letter record: {why}")
                continue
            if not self._selected(record):
                counts.not_selected += 1
                continue
            if record.get("event") is None:
                # the id is computed, not taken from the record (a copied or forged one would drop a
                # different record); a record without raw either has nothing to tell repeats by
                rejected = rejected_from_record(record)
                key = dead_letter_id(rejected) if rejected.raw is not None else None
                if key is not None and key in self.seen_ids:
                    counts.repeats += 1
                    continue
                if key is not None:
                    self.seen_ids.add(key)
                self._carry(record, item)
                continue
            # repeats of an event are told by its content per destination (an honest dead_letter_id adds
            # nothing to that; a copied one would hide a different event)
            event = record["event"]
            wanted = self._route(record)
            digest = _digest(event)
            before = self.sent.get(digest, frozenset())
            new = wanted - before
            if not new:
                counts.repeats += 1                    # the same event, already replayed to these destinations
                continue
            self.sent[digest] = before | new
            if self.routes is not None and isinstance(event, dict) and isinstance(event.get("id"), str):
                self.routes.setdefault(event["id"], deque()).append((digest, new))
            counts.replayed += 1
            replay = _ReplayItem(item.source, item.line, value=event)
            replay.origin = record["where"] if isinstance(record.get("where"), str) else None
            yield replay

    def _joined(self, items: Iterable[Item]) -> Iterator[Item]:
        """The items, each log entry's `wia_dead_letter` taken out of it, and the parts of a record too big for
        one SQS message or log entry (Lambda, GCP: `part` of `parts`, `record_part`) joined into the record,
        an item at its first part's place. Parts join only with parts of the same write (`_write_of`): a
        record written again (its value redelivered and refused again) has the same dead_letter_id but may
        be cut at other places. A part repeated, and the parts of another write of a record already joined,
        are taken once; the parts of a record never completed are one record, not replayable, carried part
        by part."""
        partial: dict[tuple[Any, ...], _Parts] = {}
        writes_of: dict[str, list[tuple[Any, ...]]] = {}   # dead_letter_id -> its writes still missing parts
        joined: set[str] = set()                           # ids of records joined that are theirs
        done: set[tuple[Any, ...]] = set()                 # writes joined (their parts again are copies)
        buffered = 0
        for item in items:
            if item.error is None:
                item.value = _unwrap_log_entry(item.value)
            part = _part_of(item.value) if item.error is None else None
            if part is None:
                yield item
                continue
            self.counts.parts += 1
            record_id = part["dead_letter_id"]
            if record_id in joined:
                continue                                   # a copy of a part of a record already joined
            key = _write_of(part)
            if key in done:
                continue
            group = partial.get(key)
            if group is None:
                group = partial[key] = _Parts(record_id, part["parts"])
                writes_of.setdefault(record_id, []).append(key)
            if part["parts"] != group.total:
                self._carry_part_conflict(item, part, group.total)
                continue
            if part["part"] not in group.chunks:
                group.chunks[part["part"]] = part["record_part"]
                group.items.append(item)
                buffered += len(part["record_part"])
            if len(group.chunks) == group.total:
                whole = group.whole()
                done.add(key)
                if _id_holds(whole.value, record_id):
                    # the record its id was made from: the other writes of it are copies
                    joined.add(record_id)
                    settled = writes_of.pop(record_id)
                else:
                    # an id that is not this record's (forged, edited) does not make the real one's parts copies
                    writes_of[record_id].remove(key)
                    settled = [key]
                for other in settled:
                    buffered -= sum(map(len, partial.pop(other).chunks.values()))
                yield whole
            while buffered > MAX_PART_CHARS_BUFFERED and partial:
                # bounded memory: the oldest record still missing parts is given up first
                oldest = next(iter(partial))
                given_up = partial.pop(oldest)
                writes_of[given_up.record_id].remove(oldest)
                buffered -= sum(map(len, given_up.chunks.values()))
                self._carry_incomplete(given_up.record_id, given_up, "its other parts were not read before "
                                       f"{MAX_PART_CHARS_BUFFERED:,} characters of parts were waiting")
        for group in partial.values():
            self._carry_incomplete(group.record_id, group, "its other parts are not in the inputs")

    def _carry_incomplete(self, key: str, group: "_Parts", why: str) -> None:
        self.counts.records += 1
        self.counts.not_replayable += 1
        # the first ten missing numbers, found without listing them all (a forged part may claim MAX_PARTS)
        missing = list(islice((n for n in range(1, group.total + 1) if n not in group.chunks), 11))
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        self._echo(f"{group.items[0].where}: not replayable: dead letter {key} was written in {group.total} parts, "
                   f"{len(group.chunks)} read; part(s) {shown} missing ({why}); its parts are carried to the new dead letter")
        for item in group.items:
            self._write_part(item.value)

    def _carry_part_conflict(self, item: Item, part: dict[str, Any], total: int) -> None:
        self.counts.records += 1
        self.counts.not_replayable += 1
        self._echo(f"{item.where}: not replayable: a part of dead letter {part['dead_letter_id']} says it is one of "
                   f"{part['parts']} parts, an earlier one of {total}; carried to the new dead letter")
        self._write_part(part)

    def _write_part(self, part: dict[str, Any]) -> None:
        if self.output is None:
            return
        put_record = getattr(self.output, "put_record", None)
        if put_record is not None:
            put_record(part)                               # as read: joinable once the other parts are found
        else:
            from wia_security.connectors.base import Rejected
            self.output.put(Rejected(str(part.get("reason", "")), where=part.get("where"), raw=_dumpb(part)))

    def _selected(self, record: dict[str, Any]) -> bool:
        if self.sinks is not None:
            sink = _sink_of(record)
            if sink not in self.sinks:
                name = sink or "(none: not refused by a destination)"
                if name in self.sinks_left or len(self.sinks_left) < 20:
                    self.sinks_left[name] += 1
                return False
            self.sink_matched.add(sink)
        return self.reason_match is None or bool(self.reason_match.search(str(record.get("reason", ""))))

    def unmatched_sinks(self) -> str | None:
        """A warning for --sink names no record had (a misspelt destination replays nothing), naming those the
        records read had; None when every name matched."""
        missing = sorted((self.sinks or set()) - self.sink_matched)
        if not missing:
            return None
        seen = ", ".join(f"{name} ({n:,})" for name, n in self.sinks_left.most_common())
        return (f"wia-security: warning: --sink {', '.join(missing)}: no record read was refused by a destination "
                f"of that name" + (f"; the records name: {seen}" if seen else ""))

    def _route(self, record: dict[str, Any]) -> frozenset[str]:
        """The destinations a record's event goes to: with --config, the one that refused it when the
        config has it, else all of them; with --to, the one destination ("*")."""
        if self.destinations is None:
            return _ONE_DESTINATION
        sink = _sink_of(record)
        return frozenset((sink,)) if sink in self.destinations else self.destinations

    def _carry(self, record: dict[str, Any], item: Item) -> None:
        self.counts.not_replayable += 1
        self._echo(f"{item.where}: not replayable (no event): {record.get('reason', '')}")
        if self.output is None:
            return
        put_record = getattr(self.output, "put_record", None)
        if put_record is not None:
            put_record(record)
        else:                                              # a dead letter of another kind: same fields, new time
            from wia_security.connectors.dead_letter import rejected_from_record
            self.output.put(rejected_from_record(record))

    def _carry_unreadable(self, item: Item, reason: str) -> None:
        from wia_security.connectors.base import Rejected
        self.counts.not_replayable += 1
        self._echo(f"{item.where}: {reason}")
        if self.output is None:
            return
        # a value that is not a record is carried as its text; an input that could not be read (a line
        # past the reader's limit, a SQLite page that would not read) has no text to carry
        raw = item.raw if item.raw is not None else (None if item.error is not None else _dumpb(item.value))
        self.output.put(Rejected(reason, where=item.where, raw=raw))

    def _echo(self, line: str) -> None:
        self.echoed += 1
        if self.echoed <= 20:
            print(printable(line), file=sys.stderr)     # a record's reason may quote a server's answer


class _ReplayDeadLetter(_Echoing):
    """The new dead letter, named on stderr as forward does; an event rejected as invalid gives up the
    route it was planned with, so the next event with its id takes its own."""

    def __init__(self, inner: Any, progress: Progress, sink: Any) -> None:
        super().__init__(inner, progress)
        self.sink = sink

    def put(self, rejected: Any) -> None:
        if rejected.sink is None and isinstance(rejected.event, dict) and isinstance(self.sink, _RoutedFanOut):
            self.sink.drop_route(rejected.event.get("id"), _digest(rejected.event))
        super().put(rejected)


#: characters of record parts held while their other parts are awaited (Python str: up to 4 bytes each)
MAX_PART_CHARS_BUFFERED = 64 * 1024 * 1024
#: a dead letter is cut into parts of 8K characters or more: more parts than this is not one of ours
MAX_PARTS = 1_000_000


class _Parts:
    """The parts of one dead-letter record read so far."""

    __slots__ = ("record_id", "total", "chunks", "items")

    def __init__(self, record_id: str, total: int) -> None:
        self.record_id = record_id
        self.total = total
        self.chunks: dict[int, str] = {}
        self.items: list[Item] = []

    def whole(self) -> Item:
        """The record the parts join into, as an item at the first part read (an unreadable join: an error item)."""
        first = self.items[0]
        text = "".join(self.chunks[n] for n in range(1, self.total + 1))
        item = Item(first.source, first.line)
        try:
            item.value = jsonio.loads(text)
        except ValueError as exc:
            item.value = {"reason": f"the {self.total} parts of a dead letter do not join into a record ({exc})",
                          "raw": text}
        return item


def _part_of(value: Any) -> dict[str, Any] | None:
    """`value` when it is one part of a dead-letter record written in parts (connectors.aws.dead_letter.record_parts)."""
    if not isinstance(value, dict) or not isinstance(value.get("record_part"), str):
        return None
    number, total = value.get("part"), value.get("parts")
    if (type(number) is not int or type(total) is not int or not 1 <= number <= total <= MAX_PARTS
            or not isinstance(value.get("dead_letter_id"), str)):
        return None
    return value


def _id_holds(value: Any, record_id: str) -> bool:
    """Whether `record_id` is the dead_letter_id of the record `value` (computed, as for whole records)."""
    from wia_security.connectors.dead_letter import as_dead_letter_record, dead_letter_id, rejected_from_record
    record = as_dead_letter_record(value)
    return record is not None and dead_letter_id(rejected_from_record(record)) == record_id


def _write_of(part: dict[str, Any]) -> tuple[Any, ...]:
    """What the parts of one write of a record share: its dead_letter_id, and the failed_at and reason of
    that write (a part written before parts carried failed_at has none: such parts join by id and reason)."""
    failed_at, reason = part.get("failed_at"), part.get("reason")
    return (part["dead_letter_id"], failed_at if isinstance(failed_at, str) else None,
            reason if isinstance(reason, str) else None)


def _unwrap_log_entry(value: Any) -> Any:
    """A dead letter as a log store keeps it: the Lambda's / GCP function's JSON log line holds the record
    under `wia_dead_letter`, an exported Cloud Logging entry under `jsonPayload.wia_dead_letter`."""
    if isinstance(value, dict) and "event" not in value and "reason" not in value:
        payload = value.get("jsonPayload")
        inner = (payload if isinstance(payload, dict) else value).get("wia_dead_letter")
        if isinstance(inner, dict):
            return inner
    return value


def _sink_of(record: dict[str, Any]) -> str | None:
    """The destination name a record gives (a hand-made one may hold a list or an object there)."""
    sink = record.get("sink")
    return sink if isinstance(sink, str) else None


def _digest(event: Any) -> bytes:
    return hashlib.sha256(_dumpb(event)).digest()[:16]


def _dumpb(value: Any) -> bytes:
    try:
        return jsonio.dumpb(value)
    except (TypeError, ValueError):
        import json
        return json.dumps(value, default=repr, ensure_ascii=True).encode("ascii")


def run(args: argparse.Namespace) -> int:
    if args.batch_size is not None and args.batch_size < 1:
        return fail("--batch-size must be at least 1")
    if args.reason_match is not None:
        try:
            re.compile(args.reason_match)
        except re.error as exc:
            return fail(f"--reason-match: not a regular expression: {exc}")
    files = [spec for spec in args.inputs if not spec.lower().startswith("sqlite://")]
    if missing_inputs(files):
        return 2
    for spec in args.inputs:
        if spec.lower().startswith("sqlite://"):
            try:
                path = input_path(spec)
            except WiaError as exc:
                return fail(exc)
            if not os.path.isfile(path or ""):
                return fail(f"{spec}: no such file: {path}{sqlite_slashes_hint(spec, path or '')}")

    from wia_security.connectors import open_sink
    from wia_security.connectors.dead_letter import DeadLetterFile
    from wia_security.connectors.delivery import open_dead_letter
    from wia_security.outputs import unwritable

    dead_letter_spec = args.dead_letter or DEFAULT_DEAD_LETTER
    try:
        dead_letter_path = spec_path(dead_letter_spec)
    except WiaError as exc:
        return fail(exc)
    clash = clash_with_inputs(args.inputs, [dead_letter_path] if dead_letter_path else [])
    if clash:
        hint = "" if args.dead_letter else " (give another with --dead-letter PATH)"
        return fail(f"the dead-letter output {dead_letter_spec} is also an input ({clash[0]}): records would be "
                    f"appended to the file being replayed{hint}")

    # the inputs first: one that cannot be read leaves no destination store or dead letter created
    sources: list[Any] = []

    def close_sources() -> None:
        for src in sources:
            src.close()

    try:
        for spec in args.inputs:
            sources.append(_open_source(spec))
    except OSError as exc:
        close_sources()
        return fail(f"{exc.filename or 'input'}: {exc.strerror or exc}")

    settings: dict[str, Any] = {}
    sink: Any = None
    destinations: list[str] | None = None
    routes: dict[str, deque] | None = None
    destination_name = args.destination or DEFAULT_DESTINATION
    try:
        if args.config:
            from wia_security.connectors.config import load_config
            config = load_config(args.config)
            settings = config.forward
            destinations = [d.name for d in config.destinations]
            destination_name = "fanout(" + ", ".join(destinations) + ")"
            if not args.dry_run:
                clash = destination_clash(args.inputs, [d.url for d in config.destinations])
                if clash:
                    close_sources()
                    return fail(f"the destination {clash[1]} is also an input ({clash[0]})")
                if mixed := dead_letter_in_destination([d.url for d in config.destinations], dead_letter_spec):
                    close_sources()
                    return fail(_mixed(dead_letter_spec, mixed))
                routes = {}
                sink = _RoutedFanOut(config.open(), routes)
        elif args.dry_run:
            destination_name = _dry_run_name(destination_name)   # no sink to name it: never its credentials
        else:
            clash = destination_clash(args.inputs, [destination_name])
            if clash:
                close_sources()
                return fail(f"the destination {clash[1]} is also an input ({clash[0]})")
            if mixed := dead_letter_in_destination([destination_name], dead_letter_spec):
                close_sources()
                return fail(_mixed(dead_letter_spec, mixed))
            sink = open_sink(destination_name)
    except (WiaError, OSError) as exc:
        close_sources()
        return fail(exc)
    if sink is not None:
        destination_name = sink.name
        clash = clash_with_inputs(args.inputs, output_paths(sink))
        if clash:
            sink.close()
            close_sources()
            return fail(f"the destination {sink.name} is also an input ({clash[0]})")

    output: Any = None
    if not args.dry_run:
        try:
            output = open_dead_letter(dead_letter_spec, fallback_path=DEFAULT_DEAD_LETTER)
            problem = unwritable(output.path) if isinstance(output, DeadLetterFile) else None
            if problem:
                raise OutputError(f"the dead-letter file {output.path}", problem)
            clash = clash_with_inputs(args.inputs, output_paths(output))
            if clash:
                raise OutputError(f"the dead-letter output {dead_letter_spec}",
                                  f"it is also an input ({clash[0]}) and would grow while it is read")
        except (WiaError, OSError) as exc:
            if output is not None:
                output.close()
            sink.close()
            close_sources()
            return fail(exc)

    batch_size = args.batch_size or settings.get("batch_size") or DEFAULT_BATCH_SIZE
    lenient = args.lenient if args.lenient is not None else bool(settings.get("lenient", False))
    report_to = sys.stderr if sink is not None and _writes_stdout(sink) else sys.stdout
    total = sum(getattr(s, "size", None) or 0 for s in sources) or None
    progress = Progress(total, lambda: sum(s.position() for s in sources),
                        enabled=args.progress if sink is None else progress_shown(args.progress, sink))
    replayer = _Replayer(args, output, destinations, routes)
    stop = StopSignals()
    read = stop.items(src.items() for src in sources)

    if args.dry_run:
        forward = ForwardSummary()
        try:
            with stop:
                validator = Validator(lenient=lenient)
                for item in replayer.events(read):
                    if not validator.validate(item.value).valid:
                        replayer.counts.would_be_invalid += 1
                    progress.update(replayer.counts.records, replayer.counts.not_replayable)
        finally:
            progress.close()
            for s in sources:
                s.close()
        return _report(args, replayer, forward, None, destination_name, None, stop, sys.stdout, sources)

    forwarder = Forwarder(sink, _ReplayDeadLetter(output, progress, sink), lenient=lenient, batch_size=batch_size,
                          progress=progress)
    try:
        with stop, sink, output:
            try:
                forwarder.run(replayer.events(read))
            finally:
                progress.close()
                for s in sources:
                    s.close()
    except OutputError as exc:
        _print_ended(args, replayer, forwarder.summary, sink, destination_name, dead_letter_spec, report_to, sources,
                     output, stopped=str(exc))
        return fail(f"stopped: {exc}. The counts above are up to that point; fix the output and replay again "
                    "(idempotent destinations count what was delivered as duplicates).")
    except KeyboardInterrupt:
        _print_ended(args, replayer, forwarder.summary, sink, destination_name, dead_letter_spec, report_to, sources,
                     output, aborted=True)
        print("wia-security: aborted: the batch on its way may or may not have arrived; replay again to make sure "
              "(idempotent destinations count the delivered ones as duplicates)", file=sys.stderr)
        return stop.exit_code or 130
    return _report(args, replayer, forwarder.summary, sink, destination_name, dead_letter_spec, stop, report_to,
                   sources, output)


def _mixed(dead_letter_spec: str, destination: str) -> str:
    return (f"the dead-letter output {dead_letter_spec} is the destination {destination}: records rejected again "
            "would be mixed into the replayed events (give another with --dead-letter PATH)")


def _summary_doc(args: argparse.Namespace, replayer: _Replayer, forward: ForwardSummary, sink: Any, destination: str,
                 dead_letter_spec: str | None, output: Any) -> dict[str, Any]:
    """What --summary json prints: the replay's counts and the forwarding summary of what was replayed."""
    counts = replayer.counts
    written = getattr(output, "count", 0) if output is not None else 0
    doc: dict[str, Any] = {**counts.to_dict(), "delivered": forward.delivered, "duplicates": forward.duplicates,
                           "rejected_again": forward.rejected, "invalid": forward.invalid,
                           "undeliverable": forward.undeliverable, "dead_lettered": written,
                           "destination": destination, "dry_run": bool(args.dry_run),
                           "dead_letter": dead_letter_spec if written else None,
                           "forward": forward.to_dict()}
    if args.dry_run:
        doc["would_be_invalid"] = counts.would_be_invalid
    stats = getattr(sink, "stats", None)
    if stats is not None:
        doc["destinations"] = {name: st.to_dict() for name, st in stats.items()}
    return doc


def _print_ended(args: argparse.Namespace, replayer: _Replayer, forward: ForwardSummary, sink: Any, destination: str,
                 dead_letter_spec: str | None, report_to: Any, sources: list[Any], output: Any, **state: Any) -> None:
    """The summary of a run that ended early (`state`: stopped: reason, or aborted), as text or JSON."""
    replayer.counts.not_dead_letters += sum(getattr(s, "skipped", 0) for s in sources)
    if args.summary == "json":
        doc = _summary_doc(args, replayer, forward, sink, destination, dead_letter_spec, output)
        print(jsonio.dumps({**doc, **state}), file=report_to)
    else:
        _print_text(replayer, forward, sink, dead_letter_spec, output, report_to, sources)


def _report(args: argparse.Namespace, replayer: _Replayer, forward: ForwardSummary, sink: Any, destination: str,
            dead_letter_spec: str | None, stop: StopSignals, report_to: Any, sources: list[Any],
            output: Any = None) -> int:
    counts = replayer.counts
    counts.not_dead_letters += sum(getattr(s, "skipped", 0) for s in sources)
    rejected_again = forward.rejected
    unmatched = replayer.unmatched_sinks()
    if args.summary == "json":
        doc = _summary_doc(args, replayer, forward, sink, destination, dead_letter_spec, output)
        if stop.received is not None:
            doc["interrupted"] = True
        print(jsonio.dumps(doc), file=report_to)
    elif args.dry_run:
        print(f"dry run: nothing sent to {destination}, nothing written", file=report_to)
        print(_counts_text(counts), file=report_to)
        print(f"  would be invalid {counts.would_be_invalid:>10,}   (of those replayed: rejected again on validation)",
              file=report_to)
    else:
        _print_text(replayer, forward, sink, dead_letter_spec, output, report_to, sources)
    if unmatched and stop.received is None:
        report_to.flush()
        print(printable(unmatched), file=sys.stderr)
    if counts.not_dead_letters and not counts.records and stop.received is None:
        report_to.flush()
        print(f"wia-security: warning: {counted(counts.not_dead_letters, 'stored event')} read and no dead-letter "
              "record: an event store holds dead letters only where a sink+ dead letter wrote them (is it the event "
              "store rather than the dead letter?)", file=sys.stderr)
    if stop.received is not None:
        report_to.flush()
        print(stop.note(), file=sys.stderr)
        return stop.exit_code or 130
    if args.dry_run:
        return 1 if counts.would_be_invalid or counts.not_replayable else 0
    return 1 if rejected_again or counts.not_replayable else 0


def _counts_text(counts: ReplayCounts) -> str:
    return "\n".join([
        f"dead-letter records read {counts.records:,}",
        f"  replayed         {counts.replayed:>10,}   (events sent through validation to the destination)",
        f"  not replayable   {counts.not_replayable:>10,}   (no event: input that never parsed; carried to the new "
        "dead letter)",
        f"  repeats skipped  {counts.repeats:>10,}   (same dead_letter_id, or the same event for the same destination)",
        f"  not selected     {counts.not_selected:>10,}   (--reason-match / --sink)",
        *([f"  not dead letters {counts.not_dead_letters:>10,}   (stored events without a dead-letter record: "
           "left alone)"] if counts.not_dead_letters else []),
        *([f"  ({counts.parts:,} values read were parts of records too big for one message or log entry, joined)"]
          if counts.parts else [])])


def _print_text(replayer: _Replayer, forward: ForwardSummary, sink: Any, dead_letter_spec: str | None, output: Any,
                report_to: Any, sources: list[Any]) -> None:
    print(f"destination: {sink.name}", file=report_to)
    print(_counts_text(replayer.counts), file=report_to)
    print("replayed events:", file=report_to)
    print("  " + forward.render().replace("\n", "\n  "), file=report_to)
    stats = getattr(sink, "stats", None)
    if stats is not None:
        print("per destination:", file=report_to)
        width = max(len(name) for name in stats)
        for name, st in stats.items():
            print(f"  {name:<{width}}  delivered {st.delivered:>10,}  duplicates {st.duplicates:>8,}  "
                  f"failed {st.failed:>8,}", file=report_to)
    written = getattr(output, "count", 0) if output is not None else 0
    if written:
        print(f"new dead letter: {dead_letter_spec} ({written:,} records: rejected again or not replayable)",
              file=report_to)
