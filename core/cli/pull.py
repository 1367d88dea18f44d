"""`wia-security pull SOURCE --to URL`: pull events from Kafka, a TAXII 2.1 collection or a Splunk search and forward them.

Each source keeps its own position so a restart neither loses nor repeats events: Kafka commits
consumer-group offsets only after delivery, TAXII saves a checkpoint file after each delivered
page, and a Splunk search with --checkpoint reads by index time and saves its checkpoint after each
delivered window (without --checkpoint, one search over the time range you give it).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .. import jsonio
from ..errors import ConfigError, WiaError
from ..extras import missing_package
from ..pipeline import ForwardSummary
from .common import EXIT_CODES_HELP, StopSignals, dead_letter_in_destination, fail
from .forward import DEFAULT_DEAD_LETTER, DEFAULT_DESTINATION, _writes_stdout

SCHEMES = ("kafka", "taxii", "splunk")
TAXII_CHECKPOINT = "wia-taxii-checkpoint.json"
#: flag -> argparse attribute, for the flags that apply to one kind of source only
_SOURCE_FLAGS = {"--idle-timeout": "idle_timeout", "--group": "group", "--checkpoint": "checkpoint", "--query": "query",
                 "--earliest": "earliest", "--latest": "latest", "--index-start": "index_start", "--lag": "lag",
                 "--window": "window", "--max-events": "max_events"}
_FLAGS_OF_SOURCE = {"kafka": {"--idle-timeout", "--group"}, "taxii": {"--checkpoint"},
                    "splunk": {"--checkpoint", "--query", "--earliest", "--latest", "--index-start", "--lag",
                               "--window", "--max-events"}}


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "pull", help="pull events from Kafka, a TAXII collection or a Splunk search, and forward them",
        description="SOURCE is kafka://HOST:PORT/TOPIC?group=NAME, taxii+https://HOST/API-ROOT/collections/ID/ "
                    "(options token_env, user, password_env), or splunk+https://HOST:8089?token_env=VAR. Events are "
                    "validated and delivered like `forward`; rejects go to the dead-letter file.",
        epilog=EXIT_CODES_HELP)
    p.add_argument("source", metavar="SOURCE", help="where to pull from (see above; quote URLs with ? or &)")
    p.add_argument("--to", dest="destination", default=DEFAULT_DESTINATION, metavar="URL",
                   help=f"destination URL, as for forward (default {DEFAULT_DESTINATION})")
    p.add_argument("--dead-letter", default=DEFAULT_DEAD_LETTER, metavar="PATH|URL",
                   help=f"where rejected events go, with the reason: an NDJSON path (default {DEFAULT_DEAD_LETTER}), "
                        "sqlite:///dead.db, or sink+URL, as for forward")
    p.add_argument("--lenient", action="store_true",
                   help="treat optional fields that are null as absent instead of rejecting the event")
    p.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                   help="kafka: stop after this long without messages (default: run until interrupted)")
    p.add_argument("--group", help="kafka: consumer group (or ?group= in the URL)")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help=f"taxii: where the position in the collection is kept (default {TAXII_CHECKPOINT}). "
                        "splunk: read incrementally by index time, keeping the position in PATH (e.g. "
                        "wia-splunk-checkpoint.json; saved after each delivered window); without it, one search "
                        "over --earliest..--latest")
    p.add_argument("--query", default=None, help="splunk: search (default: the WIA sourcetypes)")
    p.add_argument("--earliest", default=None,
                   help="splunk: earliest event time (default -24h; write --earliest=-7d); with --checkpoint, an "
                        "optional event-time floor (default all time, so late-indexed old events are read)")
    p.add_argument("--latest", default=None, help="splunk: latest event time (default now; not with --checkpoint)")
    p.add_argument("--index-start", default=None, metavar="TIME",
                   help="splunk --checkpoint, first run only: read events indexed since TIME (epoch seconds, -N[smhd] "
                        "or ISO 8601; default -24h)")
    p.add_argument("--lag", type=int, default=None, metavar="SECONDS",
                   help="splunk --checkpoint: read only what was indexed at least this long ago, so events still "
                        "being indexed are not passed over (default 60)")
    p.add_argument("--window", type=int, default=None, metavar="SECONDS",
                   help="splunk --checkpoint: index time per export search (default 3600)")
    p.add_argument("--max-events", type=int, default=None, metavar="N",
                   help="splunk --checkpoint: stop after the window in which N events were read; the next run "
                        "continues (default 100000)")
    p.add_argument("--summary", choices=("text", "json"), default="text",
                   help="summary format, on standard output (default text; on standard error with --to -)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.idle_timeout is not None and not args.idle_timeout > 0:
        return fail("--idle-timeout must be a positive number of seconds")
    scheme = args.source.split("://", 1)[0].split("+", 1)[0].lower() if "://" in args.source else ""
    if scheme not in SCHEMES:
        return fail(f"unknown source {scheme or args.source!r}; known: kafka://, taxii+https://, splunk+https://")
    # A flag of another kind of source would be ignored: refused, so that a --checkpoint given to a Kafka pull
    # is not believed to keep a position.
    misplaced = [flag for flag, attr in _SOURCE_FLAGS.items()
                 if getattr(args, attr) is not None and flag not in _FLAGS_OF_SOURCE[scheme]]
    if misplaced:
        return fail(f"{', '.join(misplaced)}: not for a {scheme} source (see wia-security pull --help)")
    url_group = dict(parse_qsl(urlsplit(args.source).query)).get("group") if scheme == "kafka" else None
    if scheme == "kafka" and not args.group and not url_group:
        return fail("kafka sources need a consumer group, which keeps the position (offsets are committed per "
                    "group): add ?group=NAME to the URL or give --group NAME")
    if args.group and url_group and args.group != url_group:     # --group won without a word
        return fail(f"--group {args.group!r} and the URL's group={url_group!r} differ: the group keeps the position, "
                    "so give one of them")
    mixed = dead_letter_in_destination([args.destination], args.dead_letter)
    if mixed:
        return fail(f"the dead-letter file {args.dead_letter} is the destination {mixed}: rejected records would be "
                    "mixed into the delivered events (give another with --dead-letter PATH)")
    from wia_security.connectors import open_sink
    from wia_security.connectors.dead_letter import DeadLetterFile
    from wia_security.connectors.delivery import open_dead_letter
    from wia_security.outputs import unwritable
    try:               # the same specs as forward's --dead-letter: a path, file://, sqlite:///, sink+URL
        dead_letter = open_dead_letter(args.dead_letter)
    except (WiaError, OSError) as exc:
        return fail(exc)
    problem = unwritable(dead_letter.path) if isinstance(dead_letter, DeadLetterFile) else None
    if problem:
        dead_letter.close()
        return fail(f"cannot write the dead-letter file {dead_letter.path}: {problem}")
    try:
        sink = open_sink(args.destination)
    except (WiaError, OSError) as exc:
        dead_letter.close()
        return fail(exc)
    try:
        with sink, dead_letter:
            summary = _PULLERS[scheme](args, sink, dead_letter)
    except (WiaError, OSError) as exc:
        return fail(exc)
    except ModuleNotFoundError as exc:     # the source's client library (the extras are named as the schemes)
        reason = missing_package(exc, scheme)
        if reason is None:
            raise
        return fail(f"{scheme} sources: {reason}")
    pulled = getattr(args, "pull_result", None)       # the Splunk incremental run: which index times it read
    # With the events themselves on standard output (--to -), the summary must not go there too.
    report_to = sys.stderr if _writes_stdout(sink) else sys.stdout
    if args.summary == "json":
        print(jsonio.dumps({**summary.to_dict(), "source": _redacted(args.source), "destination": sink.name,
                            **(pulled.to_dict() if pulled is not None else {})}), file=report_to)
    else:
        print(f"source: {_redacted(args.source)}\ndestination: {sink.name}\n"
              + (pulled.render() + "\n" if pulled is not None else "") + summary.render(), file=report_to)
    stopped_by = getattr(args, "stopped_by", None)
    if stopped_by is not None:
        return 128 + stopped_by
    return 1 if summary.rejected else 0


def _kafka(args: argparse.Namespace, sink: Any, dead_letter: Any) -> ForwardSummary:
    from wia_security.connectors.kafka import KafkaSource
    source = KafkaSource.from_url(args.source, group_id=args.group)
    stop = threading.Event()

    def stop_after_batch(signum: int, frame: Any) -> None:
        # The first SIGINT/SIGTERM ends the run after the batch in hand is delivered and committed, so the
        # counts printed are true; a second one stops at once (that batch is re-read next time).
        if stop.is_set():
            raise KeyboardInterrupt
        args.stopped_by = signum
        stop.set()

    previous = {sig: signal.signal(sig, stop_after_batch) for sig in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        return source.run(sink, dead_letter, lenient=args.lenient, idle_timeout=args.idle_timeout, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        source.close()


def _taxii(args: argparse.Namespace, sink: Any, dead_letter: Any) -> ForwardSummary:
    from wia_security.connectors.taxii import HeldBack, TaxiiSource
    source = TaxiiSource.from_url(args.source)
    try:
        totals = source.run(sink, dead_letter, args.checkpoint or TAXII_CHECKPOINT, lenient=args.lenient)
        args.pull_result = HeldBack(totals["held"], source.settle)      # what is still settling: a later pull
        return totals["summary"]
    finally:
        source.close()


def _splunk(args: argparse.Namespace, sink: Any, dead_letter: Any) -> ForwardSummary:
    from wia_security.connectors.splunk.search import DEFAULT_QUERY, SplunkSearchSource
    from wia_security.pipeline import Forwarder
    incremental = {"--index-start": args.index_start, "--lag": args.lag, "--window": args.window,
                   "--max-events": args.max_events}
    if args.checkpoint is None:
        given = [flag for flag, value in incremental.items() if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to an incremental "
                              "pull: add --checkpoint PATH", key=given[0])
        source = SplunkSearchSource.from_url(args.source)
        items = source.items(args.query or DEFAULT_QUERY, earliest=args.earliest or "-24h", latest=args.latest or "now")
        with StopSignals() as stop:     # a signal ends the reading; what was read is delivered and counted
            summary = Forwarder(sink, dead_letter, lenient=args.lenient).run(stop.items([items]))
        args.stopped_by = stop.received
        return summary
    if args.latest is not None:
        raise ConfigError("--latest does not apply with --checkpoint: an incremental pull reads by index time up "
                          "to now - --lag", key="--latest")
    options = {key: value for key, value in (("start", args.index_start), ("lag", args.lag), ("window", args.window),
                                             ("max_events", args.max_events)) if value is not None}
    source = SplunkSearchSource.from_url(args.source)
    with StopSignals() as stop:         # a signal ends the window being read; its checkpoint is not saved
        args.pull_result = source.pull(sink, dead_letter, args.checkpoint, query=args.query or DEFAULT_QUERY,
                                       earliest=args.earliest, lenient=args.lenient, stop=stop,
                                       progress=lambda line: print(line, file=sys.stderr, flush=True), **options)
    args.stopped_by = stop.received
    return args.pull_result.summary


_PULLERS = {"kafka": _kafka, "taxii": _taxii, "splunk": _splunk}


def _split(url: str, prefix: str) -> tuple[str, dict[str, str]]:
    """prefix+https://host/path?opt=v -> (https://host/path, {opt: v})."""
    target = url.split("+", 1)[1] if url.startswith(prefix + "+") else url
    parts = urlsplit(target)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), dict(parse_qsl(parts.query))


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))
