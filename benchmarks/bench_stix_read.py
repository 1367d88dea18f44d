"""Reading STIX bundles: plain STIX (kept properties and all) against the WIA-extension read of the same events.

    python benchmarks/bench_stix_read.py [--events N] [--rounds R]
    python benchmarks/bench_stix_read.py --instructions [--events N]   # callgrind counts, load-independent

N generated events (default 1,984: the first that plain STIX can hold of a 2,200-event corpus) go into
one bundle three ways, and each is read whole (`read_members`, what `parse` and `to_wia_each` run):
  extension        this project's bundle with the WIA extension: every event comes back from it
  other producer   the plain bundle with its identities stamped as another product's (another
                   creation time): read natively, every property no WIA field gives back kept in
                   meta.custom.stix.objects, as for MISP, OpenCTI or AIS bundles
  ... no keeping   the same, with the keeping switched off: what the keeping costs
  own plain        this project's plain bundle (wia_extension=False): the events are written again
                   to find what they give back, so that only what the reading does not give back is kept
The contenders run in interleaved rounds (best round each): a burst of load hits them alike.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any, Callable

from _common import corpus, race

from wia_security.errors import ConversionError
from wia_security.formats.stix import reader, to_bundle
from wia_security.formats.stix.writer import SHARED_TIME

OTHER_TIME = "2024-06-01T00:00:00.000Z"


def documents(n: int) -> dict[str, dict[str, Any]]:
    events = []
    for event in corpus(max(n + n // 8, n + 10)):
        try:
            to_bundle([event], wia_extension=False)
        except ConversionError:         # a value plain STIX cannot hold (the extension would keep it)
            continue
        events.append(event)
        if len(events) == n:
            break
    plain = json.loads(json.dumps(to_bundle(events, wia_extension=False)))
    other = json.loads(json.dumps(plain))
    for obj in other["objects"]:
        if obj["type"] == "identity" and obj["created"] == SHARED_TIME:
            obj["created"] = obj["modified"] = OTHER_TIME
    return {"extension": json.loads(json.dumps(to_bundle(events))), "other": other, "own": plain}


def without_keeping(read: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        keep, reader._keep_unread = reader._keep_unread, lambda *args: None
        try:
            return read()
        finally:
            reader._keep_unread = keep
    return run


def wall_clock(docs: dict[str, dict[str, Any]], n: int, rounds: int) -> None:
    def reads(name: str) -> Callable[[], Any]:
        return lambda: reader.read_members(docs[name]["objects"])

    contenders = {"extension": (reads("extension"), 1), "other producer": (reads("other"), 1),
                  "other producer, no keeping": (without_keeping(reads("other")), 1), "own plain": (reads("own"), 1)}
    seconds = {name: 1 / rate for name, rate in race(contenders, rounds=rounds)}
    print(f"== STIX bundle of {n:,} events, {len(docs['other']['objects']):,} objects plain "
          f"({len(docs['extension']['objects']):,} with the extension); best of {rounds} interleaved rounds")
    base = seconds["extension"]
    for name, s in seconds.items():
        print(f"{name:28} {s * 1000:8.1f} ms  {s / base:5.2f}x extension  {n / s:10,.0f} events/s")
    keep = seconds["other producer"] / seconds["other producer, no keeping"]
    print(f"keeping adds {100 * (keep - 1):.0f}% to another producer's plain STIX "
          f"({seconds['other producer'] * 1000:.1f} ms vs {seconds['other producer, no keeping'] * 1000:.1f} ms)")


_SETUP = """
import gc, json
from wia_security.formats.stix import reader
objects = json.load(open({path!r}))["objects"]
reader.read_members(objects[:200])          # imports and first-call caches outside the count
if {no_keeping}:
    reader._keep_unread = lambda *args: None
gc.freeze()
"""


def instruction_counts(docs: dict[str, dict[str, Any]], n: int) -> None:
    from _callgrind import available, instructions
    if not available():
        raise SystemExit("valgrind is not installed")
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, doc, no_keeping in (("extension", "extension", False), ("other producer", "other", False),
                                      ("other producer, no keeping", "other", True), ("own plain", "own", False)):
            path = os.path.join(tmp, f"{doc}.json")
            if not os.path.exists(path):
                with open(path, "w") as fh:
                    json.dump(docs[doc], fh)
            counts[name] = instructions(_SETUP.format(path=path, no_keeping=no_keeping),
                                        "reader.read_members(objects)")
    print(f"== the same, in instructions (callgrind, one read each, {n:,} events)")
    base = counts["extension"]
    for name, count in counts.items():
        print(f"{name:28} {count / 1e6:8.1f} M  {count / base:5.2f}x extension  {count / n:10,.0f} per event")
    keep = counts["other producer"] / counts["other producer, no keeping"]
    print(f"keeping adds {100 * (keep - 1):.0f}% to another producer's plain STIX")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1984, help="events in the bundle (default 1984)")
    parser.add_argument("--rounds", type=int, default=11, help="interleaved rounds, best of each (default 11)")
    parser.add_argument("--instructions", action="store_true", help="callgrind instruction counts instead")
    args = parser.parse_args(argv)
    docs = documents(args.events)
    if args.instructions:
        instruction_counts(docs, args.events)
    else:
        wall_clock(docs, args.events, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
