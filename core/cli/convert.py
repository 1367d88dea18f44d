"""`wia-security convert INPUT... --to NAME | --from NAME`: stream events between WIA and a public format.

One document per output line (NDJSON for JSON formats, one line per event for text formats such as
LEEF and CEF), in constant memory. Every input that cannot be converted is reported on stderr as
`file:line: reason` and written to the dead-letter file with the reason; nothing is dropped.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import IO, Any, Iterator

from .. import jsonio
from ..errors import OutputError, ParseError, UnknownFormatError, WiaError
from ..formats import FORMATS, get_format
from ..progress import Progress
from ..reader import InputSource, Item
from ..validation import Validator
from .common import (EXIT_BROKEN_PIPE, EXIT_CODES_HELP, StopSignals, closest, counted, fail, missing_inputs,
                     no_events_of, noting_empty, printable, repeated_inputs, same_file, silence_stdout)

DEFAULT_DEAD_LETTER = "wia-dead-letter.ndjson"
#: How many rejects are echoed on stderr (all of them go to the dead-letter file).
MAX_REPORTED = 20


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "convert", help="convert events to or from STIX, OCSF, ECS, ASFF, CIM, LEEF, CEF, ...",
        description="Convert WIA events (JSON, JSON array or NDJSON; gzip too; - for stdin) to a public format "
                    "with --to, or documents of a format back to WIA events with --from. Output: one document per "
                    "line. Inputs that cannot be converted go to the dead-letter file with the reason. "
                    "The summary goes to standard error. `--list-formats` (or `--to help`) lists the formats. "
                    "Ctrl-C stops after the input being converted: the output ends with whole lines and the counts "
                    "so far are printed.",
        epilog="Exit 0 when everything converted, 1 when some inputs were rejected. " + EXIT_CODES_HELP)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="input files, or - for standard input")
    direction = p.add_mutually_exclusive_group()
    direction.add_argument("--to", metavar="NAME", help="convert WIA events to this format")
    direction.add_argument("--from", dest="from_", metavar="NAME", help="convert documents of this format to WIA events")
    direction.add_argument("--list-formats", action="store_true", help="list the registered formats and exit")
    p.add_argument("-o", "--output", default="-", metavar="PATH", help="output file (default: standard output)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="converter option, e.g. --option account_id=123456789012 for asff (repeatable; "
                        "KEY:=JSON passes a JSON value)")
    p.add_argument("--dead-letter", default=DEFAULT_DEAD_LETTER, metavar="PATH",
                   help=f"where rejected inputs go, one JSON line each with the reason (default {DEFAULT_DEAD_LETTER})")
    p.add_argument("--lenient", action="store_true",
                   help="treat optional fields that are null as absent instead of rejecting the event")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar on stderr (default: when stderr is a terminal and the documents "
                        "do not go to that terminal too)")
    p.add_argument("--summary", choices=("text", "json"), default="text", help="summary on stderr (default text)")
    p.set_defaults(run=run)


def list_formats(out: IO[str]) -> int:
    out.write(f"{'name':<8} {'to':<3} {'from':<5} {'kind':<5} {'version':<11} format\n")
    for name in FORMATS:
        try:
            fmt = get_format(name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the others
            out.write(f"{name:<8} unavailable: {exc}\n")
            continue
        # titles may carry their version already ("STIX 2.1"): the version has its own column
        title = fmt.title.removesuffix(f" {fmt.spec_version}")
        out.write(f"{name:<8} {'yes':<3} {'yes' if fmt.can_parse else 'no':<5} {'text' if fmt.text else 'json':<5} "
                  f"{fmt.spec_version:<11} {title}\n")
    return 0


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` gives the text VALUE; `KEY:=JSON` gives a JSON value (number, boolean, list, ...)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.rstrip(":"):
            raise ValueError(f"--option {pair!r}: expected KEY=VALUE or KEY:=JSON")
        if key.endswith(":"):
            try:
                options[key[:-1]] = jsonio.loads(value)
            except ParseError as exc:
                raise ValueError(f"--option {pair!r}: {exc.reason}") from None
        else:
            options[key] = value
    return options


class Converter:
    """The streaming loop: items in, documents out, rejects to the dead-letter file."""

    def __init__(self, fmt: Any, direction: str, out: IO[bytes], dead_letter: Any, *, lenient: bool,
                 options: dict[str, Any], progress: Progress | None = None) -> None:
        from wia_security.connectors.base import Rejected
        self.Rejected = Rejected
        self.fmt, self.direction, self.out, self.dead_letter = fmt, direction, out, dead_letter
        self.validator = Validator(lenient=lenient, warnings=False)
        self.options = options
        # The readers check an event they restore from this project's own layout themselves: in lenient mode
        # they must take what this run's validator takes (null for an absent optional member).
        self.read_options = {**options, "lenient": True} if lenient else options
        self.progress = progress
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()

    def run(self, items: Iterator[Item]) -> None:
        write = self.out.write
        one = self._to if self.direction == "to" else self._from
        for item in items:
            self.counts["read"] += 1
            if item.error is not None:
                self._reject(item, f"unparseable input: {item.error.reason}", None, item.raw)
            else:
                for line in one(item):
                    write(line)
                    self.counts["written"] += 1
            if self.progress is not None:
                self.progress.update(self.counts["read"], self.counts["rejected"])

    def _to(self, item: Item) -> Iterator[bytes]:
        result = self.validator.validate(item.value)
        if not result.valid:
            first = result.errors[0]
            self._reject(item, f"invalid WIA event: {first.path or '/'}: {first.message}", item.value, None,
                         [e.to_dict() for e in result.errors])
            return
        try:
            doc = self.fmt.from_wia(result.event, **self.options)
        except TypeError as exc:
            _unknown_option(exc, self.fmt.name)
            self._reject(item, f"cannot convert to {self.fmt.name}: {exc}", item.value, None)
            return
        except (WiaError, ValueError, KeyError) as exc:
            self._reject(item, f"cannot convert to {self.fmt.name}: {exc}", item.value, None)
            return
        if isinstance(doc, str):
            yield doc.encode("utf-8") + b"\n"
        else:
            yield jsonio.dumpb(doc) + b"\n"
        self.counts["converted"] += 1

    def _from(self, item: Item) -> Iterator[bytes]:
        """The events of one document, member by member (a bundle's root objects, a `_search`
        response's hits, ...): a member the reader refuses is one reject naming its JSON path, and the
        document's other events are still written. `converted` counts documents that gave any event
        (or held none), `rejected` every refused member and every invalid event."""
        try:
            outcomes = self.fmt.to_wia_each(item.value, **self.read_options)
        except TypeError as exc:
            _unknown_option(exc, self.fmt.name)
            self._reject(item, f"cannot convert from {self.fmt.name}: {exc}", item.value, item.raw)
            return
        except (WiaError, ValueError, KeyError, AttributeError) as exc:
            self._reject(item, f"cannot convert from {self.fmt.name}: {exc}", item.value, item.raw)
            return
        if not outcomes or any(outcome.ok for outcome in outcomes):
            self.counts["converted"] += 1
        for outcome in outcomes:
            if outcome.error is not None:
                reason = f"cannot convert from {self.fmt.name}: {outcome.error}"
                errors = [{"path": outcome.error.path, "code": "conversion_refused", "message": outcome.error.reason}]
                if outcome.member is None:          # the document as a whole: dead-lettered as it came
                    self._reject(item, reason, item.value, item.raw, errors)
                else:                               # one member: its own JSON, so a fixed copy can be re-read
                    self._reject(item, reason, outcome.member, None, errors)
                continue
            for event in outcome.events:
                result = self.validator.validate(event)
                if not result.valid:
                    first = result.errors[0]
                    self._reject(item, f"converted event is not valid WIA: {first.path or '/'}: {first.message}",
                                 event, None, [e.to_dict() for e in result.errors])
                    continue
                yield jsonio.dumpb(result.event) + b"\n"

    def _reject(self, item: Item, reason: str, value: Any, raw: bytes | None,
                errors: list[dict[str, Any]] | None = None) -> None:
        self.counts["rejected"] += 1
        self.reasons[reason.split(": ")[0]] += 1
        if self.counts["rejected"] <= MAX_REPORTED:
            if self.progress is not None:
                self.progress.clear()
            where = item.where if item.line else item.source
            print(printable(f"{where}: {reason}"), file=sys.stderr)
        self.dead_letter.put(self.Rejected(reason, event=value, errors=errors or [], where=item.where,
                                           raw=raw if value is None else None))


def _unknown_option(exc: TypeError, fmt_name: str) -> None:
    """A TypeError naming an unexpected keyword is a --option the format does not take: a usage error
    for the whole run, not a reason to dead-letter every event."""
    text = str(exc)
    if "unexpected keyword argument" in text:
        option = text.rsplit("argument", 1)[-1].strip(" '\"")
        raise _UsageStop(f"convert: --option {option}: not an option of the {fmt_name} format")


def _json_list(src: InputSource) -> bool:
    """Whether a line format's input is a JSON list of lines (`["CEF:0|...", ...]`, as an API export gives
    them): it starts with `[` (after a BOM and blanks), which no CEF or LEEF line, syslog prefix or not,
    does. It is then read as JSON, each line an item of its own at its file:line."""
    head = src.stream.peek(4096)[:4096]  # type: ignore[attr-defined]
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"[")


def _text_items(src: InputSource) -> Iterator[Item]:
    """Line formats (LEEF, CEF): every non-blank line is one document (a UTF-8 BOM before the first is not
    part of it). A line a broken gzip stream cut short is dead-lettered whole, not parsed as a document."""
    lineno = 0
    gunzip = src.gunzip
    try:
        for lineno, raw in enumerate(src.stream, 1):
            line = raw.rstrip(b"\r\n")
            if gunzip is not None and gunzip.broken_at(lineno):
                yield Item(src.name, lineno, error=ParseError(gunzip.reason(src.name, lineno), source=src.name,
                                                              line=lineno), raw=line)
                return
            if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line.strip():
                continue
            try:
                yield Item(src.name, lineno, line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield Item(src.name, lineno, error=ParseError(f"not valid UTF-8 at byte {exc.start}", source=src.name,
                                                              line=lineno), raw=line)
    except OSError as exc:                      # the file itself could not be read on
        yield Item(src.name, lineno + 1, error=ParseError(f"unreadable input after line {lineno}: {exc}",
                                                          source=src.name, line=lineno + 1))
        return
    if gunzip is not None and gunzip.problem is not None:      # it broke between lines
        yield Item(src.name, gunzip.problem_line, error=ParseError(gunzip.reason(src.name), source=src.name,
                                                                   line=gunzip.problem_line))


def _warn_no_events(src: InputSource, progress: Progress, lines_only: bool, counts: Counter[str]) -> Any:
    """As forward does: an input with nothing to convert is no failure, but is named (a failed export?) and
    counted (the summary's empty_inputs)."""
    def warn() -> None:
        counts["empty_inputs"] += 1
        progress.clear()
        reason = no_events_of(src, lines_only=lines_only)
        print(f"wia-security: warning: {src.name}: {reason}", file=sys.stderr)
    return warn


class _UsageStop(Exception):
    """A converter option the format does not take: stop the run as a usage error."""


def run(args: argparse.Namespace) -> int:
    if args.list_formats or args.to == "help" or args.from_ == "help":
        if args.inputs:
            return fail("convert: --list-formats takes no INPUT")
        return list_formats(sys.stdout)
    if not args.to and not args.from_:
        return fail("convert: give --to NAME or --from NAME (--list-formats lists them)")
    if not args.inputs:
        return fail("convert: no INPUT given (use - for standard input)")
    name = args.to or args.from_
    try:
        fmt = get_format(name)
        options = parse_options(args.option)
    except UnknownFormatError as exc:
        return fail(f"convert: {exc}{closest(name, FORMATS)}")
    except ValueError as exc:
        return fail(exc)
    direction = "to" if args.to else "from"
    if direction == "from" and not fmt.can_parse:
        return fail(f"convert: {name} documents cannot be converted back to WIA events")
    known = fmt.options if direction == "to" else frozenset()      # no reader takes options
    for key in options:
        if key not in known:
            takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
            return fail(f"convert: --option {key}: not an option of the {fmt.name} format "
                        f"{'when writing' if direction == 'to' else 'when reading'} ({takes}){closest(key, known)}")
        # checked here, before any event is read: a bad value would refuse every event alike
        problem = fmt.option_problem(key, options[key])
        if problem:
            return fail(f"convert: --option {key}: {problem}")
    if direction == "to" and (problem := fmt.options_problem(options)):
        return fail(f"convert: --option: {problem}")
    if missing_inputs(args.inputs) or repeated_inputs(args.inputs, "converted twice"):
        return 2
    for path in args.inputs:
        for target, flag in ((args.output, "--output"), (args.dead_letter, "--dead-letter")):
            if target != "-" and path != "-" and same_file(path, target):
                return fail(f"convert: {flag} {target} is also an INPUT; it would be written while it is read")
    if args.output != "-" and same_file(args.output, args.dead_letter):
        return fail(f"convert: --output and --dead-letter are the same file ({args.output})")
    from wia_security.connectors.dead_letter import DeadLetterFile
    from wia_security.outputs import unwritable
    problem = unwritable(args.dead_letter)
    if problem:
        return fail(f"cannot write the dead-letter file {args.dead_letter}: {problem}")
    try:
        out: IO[bytes] = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115
    except OSError as exc:
        return fail(f"{args.output}: {exc.strerror or exc}")
    show_progress = args.progress
    if show_progress is None:      # documents on the same terminal as the bar would garble both
        show_progress = sys.stderr.isatty() and not (args.output == "-" and sys.stdout.isatty())
    sources: list[InputSource] = []
    io_error = False
    converter: Converter | None = None
    dead_letter: Any = None
    stop = StopSignals()
    try:
        with stop:
            sources = [InputSource(path) for path in args.inputs]
            total = sum(s.size or 0 for s in sources) or None
            progress = Progress(total, lambda: sum(s.position() for s in sources), enabled=show_progress)
            with DeadLetterFile(args.dead_letter) as dead_letter:
                converter = Converter(fmt, direction, out, dead_letter, lenient=args.lenient, options=options,
                                      progress=progress)
                text = direction == "from" and fmt.text
                try:
                    converter.run(stop.items(noting_empty(_text_items(src) if lines else src.items(),
                                                          _warn_no_events(src, progress, lines, converter.counts))
                                                 for src in sources
                                                 for lines in (text and not _json_list(src),)))
                    progress.update(converter.counts["read"], converter.counts["rejected"], force=True)
                except BrokenPipeError:
                    raise
                except _UsageStop as exc:
                    progress.close()
                    return fail(exc)
                except OSError as exc:
                    fail(f"{exc.filename or 'output'}: {exc.strerror or exc}")
                    io_error = True
                except OutputError as exc:         # rejects can no longer be recorded: stop, say so
                    fail(f"stopped: {exc}")
                    io_error = True
                finally:
                    progress.close()
    except OutputError as exc:
        fail(f"stopped: {exc}")
        io_error = True
    except BrokenPipeError:
        # The reader of our output went away (`| head`): stop quietly, as Unix tools do (main's convention).
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        return fail(f"{exc.filename or 'input'}: {exc.strerror or exc}")
    finally:
        for s in sources:
            s.close()
        if out is not sys.stdout.buffer:
            out.close()
        else:
            try:
                out.flush()
            except BrokenPipeError:
                silence_stdout()
                return EXIT_BROKEN_PIPE    # noqa: B012 - the pipe closed on the last write: same as above
    if converter is None:
        return 2
    counts = converter.counts
    recorded = dead_letter.count if dead_letter is not None else 0
    summary = {"format": name, "direction": direction, "read": counts["read"], "converted": counts["converted"],
               "written": counts["written"], "rejected": counts["rejected"],
               "dead_letter": args.dead_letter if counts["rejected"] else None, "dead_lettered": recorded,
               "reasons": dict(converter.reasons), "empty_inputs": counts["empty_inputs"]}
    if stop.received is not None:
        summary["interrupted"] = True
    if args.summary == "json":
        print(jsonio.dumps(summary), file=sys.stderr)
    else:
        extra = "" if not counts["rejected"] else (
            f"; {counts['rejected']:,} rejected, written to {args.dead_letter}" if recorded == counts["rejected"] else
            f"; {counts['rejected']:,} rejected, {recorded:,} of them written to {args.dead_letter}")
        if counts["empty_inputs"]:         # as validate says it
            extra += f"; {counted(counts['empty_inputs'], 'input')} with no event"
        # WIA -> format reads events and writes documents; format -> WIA the other way round (a STIX bundle or an
        # ASFF batch is one document holding several events).
        read, made = ("event", "document") if direction == "to" else ("document", "event")
        print(f"{counted(counts['read'], read)} read: {counted(counts['written'], made)} written "
              f"({name}, {'WIA -> ' + name if direction == 'to' else name + ' -> WIA'}){extra}", file=sys.stderr)
    if stop.received is not None:
        print(stop.note(), file=sys.stderr)
        return stop.exit_code or 130
    if io_error:
        return 2
    return 1 if counts["rejected"] else 0
