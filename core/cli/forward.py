"""`wia-security forward INPUT... --to URL`: the main job. Read, validate, normalize, deliver; dead-letter every reject."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Iterator

from .. import jsonio
from ..errors import WiaError
from ..pipeline import DEFAULT_BATCH_SIZE, Forwarder
from ..progress import Progress
from ..reader import InputSource, Item
from .common import fail, missing_inputs

DEFAULT_DESTINATION = "sqlite:///wia-events.db"
DEFAULT_DEAD_LETTER = "wia-dead-letter.ndjson"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "forward", help="validate events and deliver them to a destination",
        description="Read WIA events (JSON, JSON array or NDJSON; gzip too; - for stdin), validate and "
                    "normalize them, and deliver them to a destination. Events that are invalid or that the "
                    "destination refuses go to the dead-letter file with the reason; nothing is dropped. "
                    f"The default destination is the embedded SQLite store ({DEFAULT_DESTINATION}).")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="input files, or - for standard input")
    p.add_argument("--to", dest="destination", default=DEFAULT_DESTINATION, metavar="URL",
                   help=f"destination URL (default {DEFAULT_DESTINATION}); e.g. file:///tmp/out.ndjson")
    p.add_argument("--dead-letter", default=DEFAULT_DEAD_LETTER, metavar="PATH",
                   help=f"where rejected events go, one JSON line each with the reason (default {DEFAULT_DEAD_LETTER})")
    p.add_argument("--lenient", action="store_true",
                   help="treat optional fields that are null as absent instead of rejecting the event")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                   help=f"events per delivery batch (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar on stderr (default: when stderr is a terminal)")
    p.add_argument("--summary", choices=("text", "json"), default="text", help="summary format (default text)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        return fail("--batch-size must be at least 1")
    if missing_inputs(args.inputs):
        return 2
    from wia_security.connectors import open_sink
    from wia_security.connectors.dead_letter import DeadLetterFile
    try:
        sink = open_sink(args.destination)
    except (WiaError, OSError) as exc:
        return fail(exc)
    sources = [InputSource(path) for path in args.inputs]
    total = sum(s.size or 0 for s in sources) or None
    progress = Progress(total, lambda: sum(s.position() for s in sources), enabled=args.progress)
    with sink, DeadLetterFile(args.dead_letter) as dead_letter:
        forwarder = Forwarder(sink, dead_letter, lenient=args.lenient, batch_size=args.batch_size, progress=progress)
        try:
            summary = forwarder.run(_items(sources))
        finally:
            progress.close()
            for s in sources:
                s.close()
    if args.summary == "json":
        print(jsonio.dumps({**summary.to_dict(), "destination": sink.name,
                            "dead_letter": args.dead_letter if summary.dead_lettered else None}))
    else:
        print(f"destination: {sink.name}")
        print(summary.render())
        if summary.dead_lettered:
            print(f"dead-letter file: {args.dead_letter} ({summary.dead_lettered:,} new records)")
    return 1 if summary.rejected else 0


def _items(sources: list[InputSource]) -> Iterator[Item]:
    for src in sources:
        yield from src.items()
