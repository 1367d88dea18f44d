"""`wia-security forward INPUT... --to URL`: the main job. Read, validate, normalize, deliver; dead-letter every reject."""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .. import jsonio
from ..extras import missing_package
from ..errors import ConfigError, OutputError, WiaError
from ..pipeline import DEFAULT_BATCH_SIZE, Forwarder
from ..progress import Progress
from ..reader import InputSource
from .common import (EXIT_CODES_HELP, StopSignals, add_delivery_run_options, clash_with_inputs, counted,
                     dead_letter_in_destination, described, destination_clash, fail, missing_inputs, no_events_of,
                     noting_empty, output_paths, printable, repeated_inputs, same_file, spec_path, sqlite_hint_for)

if TYPE_CHECKING:
    from .enrich import Degraded

DEFAULT_DESTINATION = "sqlite:///wia-events.db"
DEFAULT_DEAD_LETTER = "wia-dead-letter.ndjson"
#: How many rejects are named on stderr (all of them go to the dead-letter output).
MAX_ECHOED = 20


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "forward", help="validate events and deliver them to a destination",
        description="Read WIA events (JSON, JSON array or NDJSON; gzip too; - for stdin), validate and "
                    "normalize them, and deliver them to a destination. Events that are invalid or that the "
                    "destination refuses go to the dead-letter file with the reason (the first "
                    f"{MAX_ECHOED} are also named on standard error); nothing is dropped. "
                    f"The default destination is the embedded SQLite store ({DEFAULT_DESTINATION}). The summary "
                    "goes to standard output (to standard error when the events do, with --to -). Ctrl-C or SIGTERM "
                    "stops reading, delivers or dead-letters what was read, prints the counts and exits 130 or 143; "
                    "a second signal stops at once.",
        epilog=EXIT_CODES_HELP)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="input files, or - for standard input")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--to", dest="destination", default=None, metavar="URL",
                        help=f"destination URL (default {DEFAULT_DESTINATION}); e.g. file:///tmp/out.ndjson, - (standard "
                             "output), 'splunk+https://hec.example.com:8088?index=security&token_env=SPLUNK_HEC_TOKEN' "
                             "(quote URLs with ? or & in a shell)")
    target.add_argument("--config", metavar="FILE",
                        help="TOML file listing several destinations (each event goes to all of them); "
                             "see docs/connectors/delivery.md")
    p.add_argument("--dead-letter", default=None, metavar="PATH|URL",
                   help=f"where rejected events go, with the reason: an NDJSON path (default {DEFAULT_DEAD_LETTER}), "
                        "sqlite:///dead.db, or sink+URL")
    add_delivery_run_options(p)
    p.add_argument("--enrich", choices=("virustotal",), default=None,
                   help="add VirusTotal reputation to indicators before delivery (API key in $VT_API_KEY; "
                        "cached, time-boxed, never blocks delivery)")
    p.add_argument("--enrich-cache", default=None, metavar="PATH", help="SQLite cache for --enrich across runs")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.batch_size is not None and args.batch_size < 1:
        return fail("--batch-size must be at least 1")
    if args.enrich_cache and not args.enrich:
        return fail("--enrich-cache is the cache of --enrich: give --enrich virustotal too")
    if missing_inputs(args.inputs) or repeated_inputs(args.inputs, "delivered twice"):
        return 2
    from wia_security.connectors import open_sink
    from wia_security.connectors.dead_letter import DeadLetterFile
    from wia_security.outputs import unwritable
    from wia_security.connectors.delivery import open_dead_letter
    from wia_security.connectors.delivery.sqlite_url import check_sqlite_url
    settings: dict[str, Any] = {}
    config: Any = None
    enricher: Any = None
    urls: list[str] = []
    dead_letter_spec = ""
    try:
        if args.config:
            from wia_security.connectors.config import load_config
            config = load_config(args.config)
            settings = config.forward
        urls = [d.url for d in config.destinations] if config else [args.destination or DEFAULT_DESTINATION]
        check_sqlite_url(urls[0])              # the store would ignore a query string (a config's are checked)
        dead_letter_spec = args.dead_letter or settings.get("dead_letter") or DEFAULT_DEAD_LETTER
        # Outputs that are an INPUT are refused before anything is opened: opening a SQLite store writes
        # to it, and a file destination is created empty.
        clash = destination_clash(args.inputs, urls)
        if clash:
            return fail(f"the destination {clash[1]} is also an INPUT ({clash[0]}): it would grow while it is read")
        dead_letter_path = spec_path(dead_letter_spec)
        mixed = dead_letter_in_destination(urls, dead_letter_spec)
        if mixed:
            return fail(f"the dead-letter file {dead_letter_spec} is the destination {mixed}: rejected records would "
                        "be mixed into the delivered events (give another with --dead-letter PATH)")
        early = clash_with_inputs(args.inputs, [dead_letter_path] if dead_letter_path else [])
        if early:
            raise OutputError(f"the dead-letter file {dead_letter_spec}",
                              f"it is also an INPUT ({early[0]}) and would grow while it is read")
        if args.enrich:
            # Before the destination is opened: opening creates it (a SQLite store, an output file), and a
            # refused --enrich-cache or a missing API key would leave it behind, new and empty.
            try:
                enricher = _enricher(args.enrich_cache)
            except ModuleNotFoundError as exc:
                return fail(f"--enrich: {missing_package(exc, 'intel') or exc}")
        sink = config.open() if config else open_sink(urls[0])
    except (WiaError, OSError) as exc:
        if enricher is not None:
            enricher.close()
        return fail(f"{described(exc)}{sqlite_hint_for(exc, [*urls, dead_letter_spec])}")
    clash = _overwrites_input(args.inputs, output_paths(sink))
    if clash:
        sink.close()
        if enricher is not None:
            enricher.close()
        return fail(f"the destination {sink.name} is also an INPUT ({clash}): it would grow while it is read")
    degraded: Degraded | None = None
    if enricher is not None:
        from wia_security.connectors.intel.virustotal import EnrichingSink

        from .enrich import Degraded          # here: enrich imports report, which imports this module
        degraded = Degraded(enricher)
        # closing the sink closes the enricher too; _Checked sees each event as enriched, before delivery
        sink = EnrichingSink(_Checked(sink, degraded), enricher)
    batch_size = args.batch_size or settings.get("batch_size") or DEFAULT_BATCH_SIZE
    lenient = args.lenient if args.lenient is not None else bool(settings.get("lenient", False))
    dead_letter_output: Any = None
    try:
        dead_letter_output = open_dead_letter(dead_letter_spec)
        problem = unwritable(dead_letter_output.path) if isinstance(dead_letter_output, DeadLetterFile) else None
        if problem:
            raise OutputError(f"the dead-letter file {dead_letter_output.path}", problem)
        clash = _overwrites_input(args.inputs, output_paths(dead_letter_output))
        if clash:
            raise OutputError(f"the dead-letter file {getattr(dead_letter_output, 'path', dead_letter_spec)}",
                              f"it is also an INPUT ({clash}) and would grow while it is read")
    except (WiaError, OSError) as exc:
        if dead_letter_output is not None:           # opened but refused: its sink or store is let go too
            dead_letter_output.close()
        sink.close()
        return fail(f"{described(exc)}{sqlite_hint_for(exc, [dead_letter_spec])}")
    # With the events themselves on standard output (--to -), the summary must not go there too.
    report_to = sys.stderr if _writes_stdout(sink) else sys.stdout
    sources: list[InputSource] = []
    try:
        sources = [InputSource(path) for path in args.inputs]
    except OSError as exc:
        for src in sources:
            src.close()
        sink.close()
        dead_letter_output.close()
        return fail(f"{exc.filename or 'input'}: {exc.strerror or exc}")
    total = sum(s.size or 0 for s in sources) or None
    progress = Progress(total, lambda: sum(s.position() for s in sources), enabled=progress_shown(args.progress, sink))
    forwarder = Forwarder(sink, _Echoing(dead_letter_output, progress), lenient=lenient, batch_size=batch_size,
                          progress=progress)
    forwarder.summary.empty_inputs = 0                # counted by _warn_no_events; in the summary even when 0
    stop = StopSignals()
    try:
        with stop, sink, dead_letter_output:
            try:
                summary = forwarder.run(stop.items(noting_empty(src.items(),
                                                                _warn_no_events(src, progress, forwarder.summary))
                                                   for src in sources))
            finally:
                progress.close()
                for s in sources:
                    s.close()
    except OutputError as exc:
        # Rejected events can no longer be recorded: stop rather than lose them, and say how far it got.
        _print_summary(args, forwarder.summary, sink, dead_letter_spec, report_to, stopped=str(exc))
        _say_degraded(degraded)
        return fail(f"stopped: {exc}. The counts above are up to that point; events read but not counted as "
                    f"delivered or dead-lettered were not recorded anywhere. Fix the output and run again "
                    f"(idempotent destinations count the delivered events as duplicates).")
    except KeyboardInterrupt:
        # A second signal while a batch was on its way: its fate is unknown, so say so.
        done = forwarder.summary
        in_flight = max(0, done.accepted - done.delivered - done.duplicates - done.undeliverable)
        _print_summary(args, done, sink, dead_letter_spec, report_to, aborted=True, in_flight=in_flight)
        _say_degraded(degraded)
        print(f"wia-security: aborted: up to {in_flight:,} accepted events "
              "were on their way to the destination and may or may not have arrived; run again to make sure "
              "(idempotent destinations count the delivered ones as duplicates)", file=sys.stderr)
        return stop.exit_code or 130
    _print_summary(args, summary, sink, dead_letter_spec, report_to,
                   **({"interrupted": True} if stop.received is not None else {}))
    _say_degraded(degraded)
    if stop.received is not None:
        report_to.flush()
        print(stop.note(), file=sys.stderr)
        return stop.exit_code or 130
    return 1 if summary.rejected else 0


def _print_summary(args: argparse.Namespace, summary: Any, sink: Any, dead_letter_spec: str, report_to: Any,
                   **state: Any) -> None:
    """The run's summary as text or (--summary json) one JSON document; `state` says how the run ended
    early (interrupted, stopped: reason, aborted with in_flight events) and is added to the JSON as is."""
    stats = getattr(sink, "stats", None)           # a --config fan-out reports per destination
    if args.summary == "json":
        doc = {**summary.to_dict(), "destination": sink.name,
               "dead_letter": dead_letter_spec if summary.dead_lettered else None}
        if stats is not None:
            doc["destinations"] = {name: st.to_dict() for name, st in stats.items()}
        print(jsonio.dumps({**doc, **state}), file=report_to)
        return
    print(f"destination: {sink.name}", file=report_to)
    print(summary.render(), file=report_to)
    if stats is not None:
        print("per destination:", file=report_to)
        width = max(len(name) for name in stats)
        for name, st in stats.items():
            reasons = ", ".join(f"{r}: {n:,}" for r, n in sorted(st.reasons.items(), key=lambda x: -x[1])[:3])
            print(f"  {name:<{width}}  delivered {st.delivered:>10,}  duplicates {st.duplicates:>8,}  "
                  f"failed {st.failed:>8,}" + (f"   ({reasons})" if reasons else ""), file=report_to)
    if summary.dead_lettered:
        print(f"dead-letter file: {dead_letter_spec} ({counted(summary.dead_lettered, 'new record')})", file=report_to)


class _Checked:
    """The destination behind --enrich: counts the events whose VirusTotal lookups were not all made, with why
    (enrich's Degraded), then hands them on."""

    def __init__(self, inner: Any, degraded: Degraded) -> None:
        self.inner, self.degraded = inner, degraded
        self.name = inner.name

    def send(self, events: Any) -> Any:
        for event in events:
            self.degraded.add(event)
        return self.inner.send(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _say_degraded(degraded: Degraded | None) -> None:
    """As `enrich` does: enrichment never fails a run, so a wrong $VT_API_KEY or $VT_API_URL would otherwise
    look like a quiet success (every event delivered unchecked, stderr saying only 'circuit open')."""
    for line in degraded.lines() if degraded is not None else []:
        print(f"wia-security: {line}", file=sys.stderr)


class _Echoing:
    """The dead-letter output, also naming the first MAX_ECHOED rejects on stderr as `file:line: reason`
    (as convert does), so a bad input is seen at once, not only in the dead-letter file."""

    def __init__(self, inner: Any, progress: Progress) -> None:
        self.inner, self.progress, self.seen = inner, progress, 0

    def put(self, rejected: Any) -> None:
        self.seen += 1
        if self.seen <= MAX_ECHOED:
            where = rejected.where or rejected.sink or "input"
            self.progress.clear()
            print(printable(f"{where.removesuffix(':0')}: {rejected.reason}"), file=sys.stderr)
        elif self.seen == MAX_ECHOED + 1:
            self.progress.clear()
            print("(more rejects: see the dead-letter output)", file=sys.stderr)
        self.inner.put(rejected)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _warn_no_events(src: InputSource, progress: Progress, summary: Any) -> Any:
    """What to say of an input that held no event: nothing to deliver is no failure (exit 0, as a scheduled run
    with no new events should be), but an empty file is more often a failed export than a quiet hour. Counted in
    the summary's empty_inputs, for a job that reads --summary json rather than stderr."""
    def warn() -> None:
        summary.empty_inputs += 1
        progress.clear()
        print(f"wia-security: warning: {src.name}: {no_events_of(src)}", file=sys.stderr)
    return warn


def _overwrites_input(inputs: list[str], outputs: list[str]) -> str | None:
    """The INPUT that one of `outputs` (the files a sink or dead letter writes: a SQLite store's too) is."""
    return next((path for path in inputs if path != "-" for output in outputs if same_file(path, output)), None)


def _writes_stdout(sink: Any) -> bool:
    """Whether the sink, or one it wraps (--enrich's) or fans out to (--config's), writes standard output."""
    path = getattr(sink, "path", None)
    if path == "-" or (isinstance(path, str) and path in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")):
        return True
    inner = getattr(sink, "inner", None)
    return any(_writes_stdout(s) for s in (getattr(sink, "sinks", None) or {}).values()) or (
        inner is not None and _writes_stdout(inner))


def progress_shown(option: bool | None, sink: Any) -> bool:
    """--progress/--no-progress, else: stderr is a terminal and the events do not go to that terminal too."""
    if option is not None:
        return option
    return sys.stderr.isatty() and not (_writes_stdout(sink) and sys.stdout.isatty())


def _enricher(cache_path: str | None) -> Any:
    """The VirusTotal enricher of --enrich (see connectors/intel/virustotal.py), its cache opened: a ConfigError
    names a missing API key or a cache path that cannot hold a file."""
    import os

    from wia_security.connectors.intel.cache import EnrichmentCache
    from wia_security.connectors.intel.virustotal import VirusTotalEnricher
    key = os.environ.get("VT_API_KEY", "")
    if not key:
        raise ConfigError("set the VirusTotal API key in $VT_API_KEY", key="--enrich")
    cache = EnrichmentCache(cache_path)
    try:
        return VirusTotalEnricher(key, host=os.environ.get("VT_API_URL") or None, cache=cache)
    except BaseException:
        cache.close()
        raise

