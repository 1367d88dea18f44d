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


def outcome(fmt: str, doc: Any) -> str:
    """"read" (every event strictly valid, without warnings) or "refused" (an error with a path)."""
    try:
        events = get_format(fmt).to_wia(doc)
    except ConversionError as exc:
        assert exc.path, f"{fmt}: no path in {exc}"
        return "refused"
    for event in events:
        result = validate_event(event)
        assert result.valid and not result.warnings, (fmt, [(i.path, i.message) for i in result.errors + result.warnings],
                                                     str(doc)[:300])
    return "read"


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
