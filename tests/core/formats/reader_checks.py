"""What a reader may do with a hostile document: give strictly valid events, or refuse it with a
ConversionError naming where (a JSON path or the line's key). Nothing else."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from wia_security import validate_event
from wia_security.errors import ConversionError
from wia_security.formats import get_format


def _strictly_valid(fmt: str, event: dict[str, Any], doc: Any) -> None:
    result = validate_event(event)
    assert result.valid and not result.warnings, (fmt, [(i.path, i.message) for i in result.errors + result.warnings],
                                                 str(doc)[:300])


def outcome(fmt: str, doc: Any) -> str:
    """"read" (every event strictly valid, without warnings) or "refused" (an error with a path); and
    the same document read member by member agrees (`member_outcomes`)."""
    member_outcomes(fmt, doc)
    try:
        events = get_format(fmt).to_wia(doc)
    except ConversionError as exc:
        assert exc.path, f"{fmt}: no path in {exc}"
        return "refused"
    for event in events:
        _strictly_valid(fmt, event, doc)
    return "read"


def member_outcomes(fmt: str, doc: Any) -> dict[str, int]:
    """`to_wia_each(doc)` never raises; each outcome is strictly valid events or a ConversionError with a
    path; and `to_wia(doc)` is exactly their events when none was refused,
    else raises the first refusal. Returns the outcomes counted by kind ("read", "refused")."""
    reader = get_format(fmt)
    outcomes = reader.to_wia_each(doc)
    seen = {"read": 0, "refused": 0}
    for one in outcomes:
        if one.error is None:
            for event in one.events:
                _strictly_valid(fmt, event, doc)
            seen["read"] += 1
        else:
            assert isinstance(one.error, ConversionError) and one.error.path, (fmt, str(one.error))
            seen["refused"] += 1
    first = next((one.error for one in outcomes if one.error is not None), None)
    try:
        events = reader.to_wia(doc)
    except ConversionError as exc:
        assert first is not None and str(exc) == str(first), (fmt, str(exc), str(first))
    else:
        assert first is None, fmt
        each = [e for one in outcomes for e in one.events]
        if fmt in ("cef", "leef"):      # a line without a time is read at the time of reading: equal but for it
            events, each = ([{**e, "timestamp": None} for e in side] for side in (events, each))
        assert events == each, fmt
    return seen


def mutated_corpus_outcomes(fmt: str, folder: Path, *, seed: int = 29, rounds: int = 1500) -> dict[str, int]:
    """`outcome` of `rounds` seeded one-field mutations (`strategies.mutations`) of the JSON documents
    in `folder`, counted by kind."""
    from strategies import mutations
    rnd = random.Random(seed)
    docs = [json.loads(path.read_text()) for path in sorted(folder.iterdir())]
    seen = {"read": 0, "refused": 0}
    for _ in range(rounds):
        for doc in mutations(rnd.choice(docs), rnd, 1):
            seen[outcome(fmt, doc)] += 1
    return seen
