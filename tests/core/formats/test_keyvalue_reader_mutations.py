"""Seeded mutations of the foreign CEF and LEEF lines (tests/core/formats/foreign/{cef,leef}): every
mutated line gives strictly valid WIA events (no errors, no warnings) or a ConversionError that
names where (a JSON path or the line's part), never a bare exception or an event the validator refuses.

Lines in this project's own layout are left out here: test_own_layout_tampered.py mutates those (an
own line whose event is not valid WIA is refused at the key that carried the value)."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from reader_checks import outcome

FOREIGN = Path(__file__).parent / "foreign"
#: pieces a hostile line is made of: the formats' special characters, a BOM, a syslog priority,
#: time keys with odd values, a long digit run
PIECES = ["=", "|", "\\", " ", "\n", "\t", "^", "\ufeff", "\x00", "é", "<13>", " rt=", " devTime=",
          "Dec 05 2026 03:04:05 +0200", "Mar 08 2026 02:30:00 America/New_York", "1" * 25, "src=", "=src"]


@pytest.mark.parametrize("fmt", ["cef", "leef"])
def test_mutated_foreign_lines(fmt: str) -> None:
    rnd = random.Random(29)
    lines = [line for path in sorted((FOREIGN / fmt).iterdir()) for line in path.read_text().splitlines() if line.strip()]
    seen = {"read": 0, "refused": 0}
    for _ in range(1500):
        line = rnd.choice(lines)
        for _ in range(rnd.randint(1, 4)):
            at = rnd.randrange(len(line) + 1)
            line = (line[:at] + rnd.choice(PIECES) + line[at:]) if rnd.random() < 0.6 else line[:at] + line[at + rnd.randint(1, 5):]
        if "|WIA|Security|" in line:
            continue
        seen[outcome(fmt, line)] += 1
    assert seen["read"] > 500 and seen["refused"] > 50, seen          # both paths are exercised
