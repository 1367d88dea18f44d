"""Path 5: `convert` round trips chained across every format whose doc claims that everything survives
(docs/formats/README.md: OCSF, STIX, ECS, LEEF, CEF, ASFF): WIA -> OCSF -> WIA -> STIX -> WIA -> ECS -> WIA ->
LEEF -> WIA -> CEF -> WIA -> ASFF -> WIA must give the event back exactly, in the library and through the
command line (files in between, as a SOC chains tools), for generated events with arbitrary unicode strings."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from e2e_helpers import expected, read_ndjson, write_ndjson
from hypothesis import given, settings
from strategies import event_dicts, events

from wia_security import convert, parse
from wia_security.cli import main

CHAIN = ("ocsf", "stix", "ecs", "leef", "cef", "asff")
OPTIONS = {"asff": {"account_id": "123456789012", "region": "us-east-1"}}


def through(event: dict, fmt: str) -> dict:
    doc = convert(event, to=fmt, **OPTIONS.get(fmt, {}))
    # what a file or the network carries: UTF-8 text (a lone surrogate cannot be written)
    wire = doc.encode("utf-8") if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False).encode("utf-8")
    [back] = parse(wire.decode("utf-8") if isinstance(doc, str) else json.loads(wire), from_=fmt)
    return back if isinstance(back, dict) else back.to_dict()


@settings(max_examples=40)
@given(events(wild=True, optional_rate=0.8))
def test_the_chain_gives_every_event_back_exactly(event):
    start = expected(event)
    current = copy.deepcopy(start)
    for fmt in CHAIN:
        current = through(current, fmt)
        assert current == start, f"changed by {fmt}"


def test_the_chain_through_the_command_line(tmp_path: Path, capsys):
    sent = [expected(e) for e in [*event_dicts(60, seed=1460, wild=True, optional_rate=0.8),
                                  *event_dicts(40, seed=1461, optional_rate=0.8)]]
    current = write_ndjson(tmp_path / "in.ndjson", sent)
    for fmt in CHAIN:
        options = [arg for key, value in OPTIONS.get(fmt, {}).items() for arg in ("--option", f"{key}={value}")]
        out, back = tmp_path / f"{fmt}.out", tmp_path / f"{fmt}.wia.ndjson"
        assert main(["convert", str(current), "--to", fmt, "-o", str(out), "--dead-letter", str(tmp_path / "dl-to"),
                     "--no-progress", *options]) == 0, fmt
        assert main(["convert", str(out), "--from", fmt, "-o", str(back), "--dead-letter", str(tmp_path / "dl-from"),
                     "--no-progress"]) == 0, fmt
        got = read_ndjson(back)
        assert len(got) == len(sent) and [i for i, (a, b) in enumerate(zip(sent, got)) if a != b] == [], fmt
        current = back
    capsys.readouterr()
    assert not (tmp_path / "dl-to").exists() and not (tmp_path / "dl-from").exists()
