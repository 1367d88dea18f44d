"""`wia-security compliance`: same numbers as the tracker, text and JSON."""
from __future__ import annotations

import json

import dataset
from wia_security.cli import main
from wia_security.compliance import ComplianceTracker


def test_json_output_matches_the_tracker(tmp_path, capsys):
    events = dataset.week()
    src = tmp_path / "week.ndjson"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["compliance", str(src), "--format", "json", "--framework", "cis-v8"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = ComplianceTracker(["cis-v8"]).add_all(events).report()
    assert out["frameworks"] == expected["frameworks"]


def test_text_output_and_window(tmp_path, capsys):
    events = dataset.week()
    src = tmp_path / "week.ndjson"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["compliance", str(src), "--since", "2026-03-07T00:00:00Z", "--controls"]) == 0
    text = capsys.readouterr().out
    in_window = [e for e in events if e["timestamp"] >= "2026-03-07"]
    assert text.splitlines()[0] == f"{len(in_window):,} events"
    assert "ISO/IEC 27001:2022" in text and "A.8.15" in text
    assert main(["compliance", str(src), "--framework", "pci"]) == 2


def test_text_output_never_writes_control_characters_from_event_ids(tmp_path, capsys):
    """The store holds what library callers inserted unvalidated: an id carrying terminal escapes
    (retitle the window, recolour, clear the screen) reached the terminal raw through --controls."""
    from wia_security.connectors.sqlite import EventStore
    event = dict(dataset.week()[0], id="\x1b]0;owned\x07\x1b[2J\u009b31m\u202e" + "x" * 500)
    store = EventStore(str(tmp_path / "s.db"))
    store.insert([event])
    store.close()
    assert main(["compliance", "--db", str(tmp_path / "s.db"), "--controls"]) == 0
    text = capsys.readouterr().out
    assert not any(ch in text for ch in "\x1b\x07\u009b\u202e")
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202e" in text and "x" * 100 not in text
