"""Validation throughput: wia_security vs fastjsonschema (compiled from the same schemas) vs jsonschema.

    python benchmarks/bench_validation.py [N_EVENTS] [INVALID_SHARE]
    python benchmarks/bench_validation.py --instructions [N_EVENTS]   # callgrind counts, load-independent

All three validate the same events, each with the schema chosen by the event's type; the script
first checks that their verdicts agree on every event, then prints events/s and ratios, for three
corpora, because the ratio depends on the events' shape:
  builder   events the fluent builders produce (the issue's "valid ones from the builders")
  samples   the upstream sample events that satisfy the schema, repeated
  generated the schema-driven generator: every optional field present with probability 1/2
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import fastjsonschema
from _common import corpus, race, table

from wia_security import schemas
from wia_security.validation import Validator


def fastjsonschema_validators() -> dict[str | None, Callable[[Any], Any]]:
    docs = schemas.registry()
    handlers = {"https": lambda uri: docs[uri]}
    return {t: fastjsonschema.compile(docs[schemas.schema_uri(t)], handlers=handlers, use_formats=True)
            for t in (None, *schemas.EVENT_TYPES)}


def reference_validators() -> dict[str | None, Any]:
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests/core/validation"))
    from reference import reference_validator
    return {t: reference_validator(t) for t in (None, *schemas.EVENT_TYPES)}


def key(e: dict[str, Any]) -> str | None:
    t = e.get("type")
    return t if isinstance(t, str) and t in schemas.EVENT_SCHEMA_FILES else None


def corpora(n: int, invalid_share: float) -> dict[str, list[dict[str, Any]]]:
    import json
    import random
    from pathlib import Path

    from strategies import mutations
    from test_parity import builder_events
    root = Path(__file__).resolve().parents[1]
    samples = [json.loads(p.read_text()) for p in sorted((root / "samples").glob("*-sample.json"))]
    samples = [s for s in samples if Validator().is_valid(s)]
    built = builder_events(n, seed=1)
    if invalid_share:
        rnd = random.Random(1)
        for i in range(0, n, max(1, int(1 / invalid_share))):
            built[i] = mutations(built[i], rnd, 1)[0]
    return {"builder": built, "samples": (samples * (n // len(samples) + 1))[:n],
            "generated": corpus(n, invalid_share=invalid_share)}


def main(n: int = 20_000, invalid_share: float = 0.0) -> None:
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests/core/validation"))
    for name, events in corpora(n, invalid_share).items():
        print(f"== corpus: {name}")
        compare(events)


def compare(events: list[dict[str, Any]]) -> None:
    n = len(events)
    ours = Validator(warnings=False)
    ours_full = Validator()
    fjs = fastjsonschema_validators()
    ref = reference_validators()

    def fjs_ok(e: dict[str, Any]) -> bool:
        try:
            fjs[key(e)](e)
            return True
        except fastjsonschema.JsonSchemaException:
            return False

    verdicts = [(ours.validate(e).valid, fjs_ok(e), ref[key(e)].is_valid(e)) for e in events]
    disagree_fjs = sum(a != b for a, b, _ in verdicts)
    disagree_ref = sum(a != c for a, _, c in verdicts)
    invalid = sum(not c for _, _, c in verdicts)
    print(f"{n:,} events ({invalid:,} invalid per jsonschema); verdict disagreements: "
          f"wia_security vs jsonschema {disagree_ref}, wia_security vs fastjsonschema {disagree_fjs}")

    def run_ours() -> None:
        validate = ours.validate
        for e in events:
            validate(e)

    def run_ours_full() -> None:
        validate = ours_full.validate
        for e in events:
            validate(e)

    def run_is_valid() -> None:
        is_valid = ours.is_valid
        for e in events:
            is_valid(e)

    def run_fjs() -> None:
        for e in events:
            try:
                fjs[key(e)](e)
            except fastjsonschema.JsonSchemaException:
                pass

    ref_sample = events[: max(1, n // 10)]

    def run_ref() -> None:
        for e in ref_sample:
            ref[key(e)].is_valid(e)

    rows = race({
        "fastjsonschema": (run_fjs, n),
        "jsonschema": (run_ref, len(ref_sample)),
        "wia_security is_valid": (run_is_valid, n),
        "wia_security validate": (run_ours, n),
        "wia_security validate+warnings": (run_ours_full, n),
    })
    print(table(rows, "fastjsonschema"))
    print("wia_security validate: errors list + result object, no advisory warnings (fastjsonschema's job);"
          " validate+warnings adds the ATT&CK/$schema/timestamp advisories.")


INSTRUCTION_SETUP = """
import sys, json
sys.path[:0] = ["../tests", "../tests/core/validation"]
import fastjsonschema
from bench_validation import corpora, fastjsonschema_validators, key
from wia_security.validation import Validator
events = corpora({n}, 0.0)[{corpus!r}]
ours = Validator(warnings=False)
fjs = fastjsonschema_validators()
ours.validate(events[0])
import gc
gc.collect()
gc.freeze()   # a full collection the corpus build left pending would otherwise land in the work (+-20k per event)
"""
INSTRUCTION_WORK = {
    "fastjsonschema": "for e in events:\n    fjs[key(e)](e)",
    "wia_security validate": "v = ours.validate\nfor e in events:\n    v(e)",
}


def instruction_counts(n: int = 2000) -> None:
    """The same comparison in instructions (callgrind): independent of machine load."""
    from _callgrind import instructions
    for corpus_name in ("builder", "samples", "generated"):
        setup = INSTRUCTION_SETUP.format(n=n, corpus=corpus_name)
        counts = {name: instructions(setup, work) for name, work in INSTRUCTION_WORK.items()}
        base = counts["fastjsonschema"]
        print(f"== corpus: {corpus_name} ({n} events), instructions per event (callgrind)")
        for name, count in counts.items():
            print(f"{name:24} {count / n:>12,.0f}   speed ratio vs fastjsonschema {base / count:5.2f}x")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--instructions" in sys.argv:
        instruction_counts(int(args[0]) if args else 2000)
    else:
        main(int(args[0]) if args else 20_000, float(args[1]) if len(args) > 1 else 0.0)
