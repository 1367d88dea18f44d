"""Would shape-specialized WIA -> ECS code pay on the bulk benchmark's events? (an upper bound, not a converter)

Idea measured: cache, per event shape, straight-line code for the whole conversion (no presence
checks, no type branches), with the generic converter for shapes not seen often enough. Its best
case needs two things: shapes that repeat, and a shape key that costs little. This prints, for
bench_bulk.py's events (`event_dicts(n, seed=1, times="legacy")`) and two single-producer-like streams:

  * distinct shapes under three keys, and the hit rate of a cache that specializes a shape after
    `--threshold` sightings (counted in stream order: the first sightings run the generic path):
      shape    key sets and value types all the way down (what code without any check needs);
      keys     key sets only (lists by length);
      ruled    only the WIA paths the rule tables read, with their types (coarsest: the leftover
               `wia.*` and the derived fields would still need generic code);
  * the cost of computing each key;
  * the ceiling of specialized code: a function per event returning its ECS document as one
    literal built from the event's values (no logic at all, so faster than any real specialization),
    once cold (each function called once, as in a stream of distinct shapes) and once hot;
  * the projected conversion time per event = key + hit * ceiling + (1 - hit) * generic.

    .venv/bin/python benchmarks/bench_ecs_shapes.py [--events 20000] [--threshold 8]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from strategies import event_dicts  # noqa: E402
from wia_security.formats import ecs  # noqa: E402


def shape_key(value: Any) -> Any:
    cls = value.__class__
    if cls is dict:
        return tuple([(k, shape_key(v)) for k, v in value.items()])
    if cls is list:
        return ("[]", *[shape_key(v) for v in value])
    return cls


def keys_key(value: Any) -> Any:
    cls = value.__class__
    if cls is dict:
        return tuple([(k, keys_key(v)) for k, v in value.items()])
    if cls is list:
        return len(value)
    return 0


def ruled_key(event: dict[str, Any]) -> Any:
    data = event.get("data") or {}
    inbound = (data.get("network_connection") or {}).get("direction") == "inbound"
    present: list[Any] = []

    def walk(node: Any, tree: dict[str, Any]) -> None:
        for key, sub in tree.items():
            value = node.get(key)
            if value is None:
                present.append(None)
            elif sub.__class__ is dict:
                present.append(dict)
                if value.__class__ is dict:
                    walk(value, sub)
            else:
                walked_list = sub.__class__ is not int and value.__class__ is list      # a `[]` rule's list
                present.append(len(value) if walked_list else value.__class__)

    walk(event, ecs.plan_for(event["type"], inbound).taken)
    return (event["type"], inbound, tuple(present))


def hit_rate(keys: list[Any], threshold: int) -> float:
    """Share of events converted by specialized code: their shape was seen `threshold` times before."""
    seen: Counter[Any] = Counter()
    hits = 0
    for key in keys:
        hits += seen[key] >= threshold
        seen[key] += 1
    return hits / len(keys)


def per_event(fn: Callable[[Any], Any], items: list[Any]) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / len(items) * 1e6


def literal_function(event: dict[str, Any], doc: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
    """A function building `doc` as one literal: each value taken from the event where the event holds
    that very object, a constant otherwise. The ceiling of any code specialized to the event's shape."""
    paths: dict[int, str] = {}

    def index(value: Any, expr: str) -> None:
        if value.__class__ is dict:
            for k, v in value.items():
                index(v, f"{expr}[{k!r}]")
        elif value.__class__ is list:
            for i, v in enumerate(value):
                index(v, f"{expr}[{i}]")
        else:
            paths.setdefault(id(value), expr)

    constants: dict[str, Any] = {}

    def build(value: Any) -> str:
        if value.__class__ is dict:
            return "{" + ", ".join(f"{k!r}: {build(v)}" for k, v in value.items()) + "}"
        if value.__class__ is list:
            return "[" + ", ".join(build(v) for v in value) + "]"
        # small ints are shared objects: a constant, not a path that merely holds the same object
        if id(value) in paths and (value.__class__ in (str, float) or value.__class__ is int and not -5 <= value <= 256):
            return paths[id(value)]
        name = f"c{len(constants)}"
        constants[name] = value
        return name

    index(event, "e")
    source = f"def f(e):\n    return {build(doc)}\n"
    env = dict(constants)
    exec(compile(source, "<literal>", "exec"), env)
    assert env["f"](event) == doc
    return env["f"]


def hot_ratio(fmt: ecs.EcsFormat, events: list[dict[str, Any]], sample: int = 30) -> float:
    """literal / generic time per event, each event's own literal function repeated (a hot shape)."""
    literal = generic = 0.0
    for event in events[:sample]:
        f = literal_function(event, fmt.from_wia(event))
        literal += min(per_event(f, [event] * 200) for _ in range(3))
        generic += min(per_event(fmt.from_wia, [event] * 200) for _ in range(3))
    return literal / generic


def report(fmt: ecs.EcsFormat, label: str, events: list[dict[str, Any]], threshold: int) -> None:
    key_functions = {"shape": shape_key, "keys": keys_key, "ruled": ruled_key}
    # each timing the best of 3 rounds, the variants in turn in each round (this machine is noisy)
    rounds = [{name: per_event(fn, events) for name, fn in [("generic", fmt.from_wia), *key_functions.items()]}
              for _ in range(3)]
    best = {name: min(r[name] for r in rounds) for name in rounds[0]}
    generic = best["generic"]
    ceiling = generic * hot_ratio(fmt, events)
    print(f"== {label}: {len(events):,} events, generic from_wia {generic:.2f} us/event,"
          f" ceiling (literal, hot) {ceiling:.2f} us/event")
    for name, fn in key_functions.items():
        keys = [fn(e) for e in events]
        cost = best[name]
        hits = hit_rate(keys, threshold)
        projected = cost + hits * ceiling + (1 - hits) * generic
        print(f"   {name:5s} key: {len(set(keys)):6,} distinct, largest {Counter(keys).most_common(1)[0][1]:5,},"
              f" hit rate (threshold {threshold}) {hits:6.1%}, key {cost:5.2f} us/event;"
              f" projected {projected:5.2f} us/event ({generic / projected:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--threshold", type=int, default=8)
    parser.add_argument("--literal-events", type=int, default=3000, help="events given a literal function each")
    args = parser.parse_args()
    fmt = ecs.EcsFormat()
    corpus = event_dicts(args.events, seed=1, times="legacy")
    streams = [("bench_bulk corpus event_dicts(seed=1)", corpus),
               ("one producer: network_event, every optional field",
                event_dicts(args.events // 4, seed=2, event_type="network_event", optional_rate=1.0, times="legacy")),
               ("one producer: network_event, required fields only",
                event_dicts(args.events // 4, seed=3, event_type="network_event", optional_rate=0.0, times="legacy"))]
    for label, events in streams:
        report(fmt, label, events, args.threshold)

    events = corpus[:args.literal_events]
    pairs = [(literal_function(e, fmt.from_wia(e)), e) for e in events]
    generic = cold = 0.0
    for i in range(0, len(pairs), 100):     # in turn, 100 events at a time: the same load for both
        generic += per_event(fmt.from_wia, events[i:i + 100]) * len(events[i:i + 100])
        cold += per_event(lambda p: p[0](p[1]), pairs[i:i + 100]) * len(events[i:i + 100])   # each function once
    generic, cold = generic / len(events), cold / len(events)
    print(f"== ceiling when every shape is new ({len(events):,} events of the bench_bulk corpus, each its own"
          f" literal function called once): generic {generic:.2f} us, literal {cold:.2f} us ({generic / cold:.1f}x),"
          f" before any key")


if __name__ == "__main__":
    main()
