"""`wia-security intel pull misp|otx --to URL`: threat intelligence into any destination.

MISP: events (or attributes) matching the filters, as threat_intel events. OTX: subscribed pulses
modified since the cursor kept in `--state`, advanced only after the batch was delivered or
dead-lettered. Keys come from environment variables, never from the command line.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

from ..extras import missing_package
from ..errors import WiaError
from .common import EXIT_CODES_HELP, fail
from .forward import DEFAULT_DEAD_LETTER, DEFAULT_DESTINATION

BATCH = 500
OTX_STATE = "wia-otx-state.json"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("intel", help="pull threat intelligence from MISP or AlienVault OTX",
                              description="Threat-intel feeds into WIA events. See docs/connectors/intel.md.")
    sub = p.add_subparsers(dest="intel_command", metavar="ACTION", required=True)
    pull = sub.add_parser("pull", help="pull MISP events or OTX subscribed pulses and deliver them",
                          description="Pull MISP events (or attributes) or OTX subscribed pulses as threat_intel events "
                                      "and deliver them. A one-line count goes to standard error.",
                          epilog=EXIT_CODES_HELP)
    pull.add_argument("feed", choices=("misp", "otx"), help="misp or otx")
    pull.add_argument("--url", metavar="URL", help="MISP base URL (required for misp); OTX API base URL "
                                                    "(default https://otx.alienvault.com)")
    pull.add_argument("--key-env", metavar="NAME", help="environment variable with the API key "
                                                        "(default MISP_KEY or OTX_API_KEY)")
    pull.add_argument("--to", dest="destination", default=DEFAULT_DESTINATION, metavar="URL",
                      help=f"destination URL (default {DEFAULT_DESTINATION})")
    pull.add_argument("--dead-letter", default=DEFAULT_DEAD_LETTER, metavar="PATH|URL",
                      help=f"where records that cannot become events go, with the reason (default {DEFAULT_DEAD_LETTER})")
    pull.add_argument("--since", metavar="TIME", help="MISP: events changed since (epoch, or 1d/12h...); "
                                                      "OTX: modified_since (ISO 8601), overriding --state")
    pull.add_argument("--tag", dest="tags", action="append", default=[], help="MISP: only events with this tag")
    pull.add_argument("--attributes", action="store_true", help="MISP: search attributes (to_ids only) instead of events")
    pull.add_argument("--state", metavar="PATH", help=f"OTX cursor file (default {OTX_STATE}); MISP: checkpoint file "
                                                      "for incremental pulls (the newest timestamp delivered; none "
                                                      "by default)")
    tls = pull.add_mutually_exclusive_group()
    tls.add_argument("--ca-file", metavar="PATH", help="trust the CA certificates in this PEM file (a MISP or proxy "
                                                       "with a private CA) instead of the system's")
    tls.add_argument("--no-verify-tls", action="store_true", help="accept any TLS certificate (testing only)")
    pull.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # A flag of the other feed would be ignored (an OTX pull given --tag took every pulse): refused.
    misplaced = ([flag for flag, given in (("--tag", args.tags), ("--attributes", args.attributes)) if given]
                 if args.feed == "otx" else [])
    if misplaced:
        return fail(f"{', '.join(misplaced)}: not for {args.feed} (see wia-security intel pull --help)")
    if args.feed == "misp" and not args.url:
        return fail("--url is required for misp (the MISP base URL, e.g. https://misp.example)")
    env = args.key_env or ("MISP_KEY" if args.feed == "misp" else "OTX_API_KEY")
    key = os.environ.get(env, "")
    if not key:
        return fail(f"set the {args.feed.upper()} API key in ${env}")
    from wia_security.connectors import open_sink
    from wia_security.connectors.delivery import open_dead_letter
    delivered = duplicates = rejected = 0

    def reject(record: Any) -> None:
        """A feed record that cannot become an event: on record with where and why, and counted."""
        nonlocal rejected
        dead_letter.put(record)
        rejected += 1

    checkpoint: Any = None
    held = contextlib.ExitStack()
    try:
        dead_letter = open_dead_letter(args.dead_letter)
        if args.feed == "misp":
            from wia_security.connectors.intel.misp import MispCheckpoint, MispSource, account_fingerprint
            filters: dict[str, Any] = {}
            if args.state:
                from wia_security.outputs import held_exclusively
                held.enter_context(held_exclusively(args.state, "MISP pull"))     # one pull per checkpoint
                checkpoint = MispCheckpoint.load(args.state, "attributes" if args.attributes else "events", args.tags,
                                                 server=args.url, account=account_fingerprint(key))
                if checkpoint.timestamp is not None:
                    filters["timestamp"] = checkpoint.timestamp
            source: Any = MispSource(args.url, key, tls_verify=not args.no_verify_tls, ca_file=args.ca_file,
                                    on_reject=reject)
            if args.since:
                filters["timestamp"] = args.since
            if args.tags:
                filters["tags"] = args.tags
            events = source.attributes(to_ids=1, **filters) if args.attributes else source.events(**filters)
        else:
            from wia_security.connectors.intel.otx import DEFAULT_BASE_URL, OtxSource
            source = OtxSource(key, base_url=args.url or DEFAULT_BASE_URL, state_path=args.state or OTX_STATE,
                               tls_verify=not args.no_verify_tls, ca_file=args.ca_file, on_reject=reject)
            events = source.poll(args.since)
        sink = open_sink(args.destination)
    except (WiaError, OSError) as exc:
        held.close()
        return fail(exc)
    except ModuleNotFoundError as exc:       # pymisp for MISP; OTX and most destinations need requests
        held.close()
        return fail(missing_package(exc, "misp" if args.feed == "misp" else "intel") or exc)
    try:
        with held, sink, dead_letter:
            batch: list[dict[str, Any]] = []

            def ship() -> None:
                nonlocal delivered, duplicates, rejected
                report = sink.send(batch)
                delivered, duplicates = delivered + report.delivered, duplicates + report.duplicates
                for item in report.failed:
                    dead_letter.put(item)
                rejected += len(report.failed)
                batch.clear()

            for event in events:
                batch.append(event)
                if len(batch) >= BATCH:
                    ship()
            ship()
            final = sink.flush()
            delivered += final.delivered
            duplicates += final.duplicates
            for item in final.failed:
                dead_letter.put(item)
            rejected += len(final.failed)
            if checkpoint is not None and source.complete:
                # every page read and everything delivered or dead-lettered: safe to move the checkpoint
                checkpoint.advance(source.newest_timestamp)
                try:
                    checkpoint.save(args.state)
                except OSError as exc:       # not saved: the next pull reads this window again
                    return fail(f"cannot save the MISP checkpoint {args.state}: {exc.strerror or exc}")
    except WiaError as exc:
        return fail(exc)
    if args.feed == "otx":
        source.commit()        # everything is delivered or dead-lettered: safe to move the cursor
    print(f"{args.feed}: {delivered:,} delivered, {duplicates:,} duplicates, {rejected:,} dead-lettered",
          file=sys.stderr)
    return 1 if rejected else 0
