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
    # Events are counted oldest first, as from the store (each id once, as its newest version): the evidence
    # lists (the first 25 ids) follow that order.
    assert all(e["timestamp"].endswith("Z") and len(e["timestamp"]) == 24 for e in events)
    expected = ComplianceTracker(["cis-v8"]).add_all(sorted(events, key=lambda e: (e["timestamp"], e["id"]))).report()
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
    # an in-scope control no event evidenced is listed as such, not left out
    assert "    RS.AN-07   no evidence      0 events  Incident data and metadata are collected, and their integrit" in text
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


def test_text_output_lists_technique_controls_as_relevant_not_evidenced(tmp_path, capsys):
    """A resolved ransomware alert: CP-9 (backups) addresses T1486 but the alert does not show backups taken.
    The table counts it in a 'relevant' column, --controls lists it as relevant with its technique and event."""
    from wia_security.builders import AlertBuilder
    alert = AlertBuilder().title("ransomware").mitre("T1486").status("resolved").severity(9).build().to_dict()
    src = tmp_path / "one.ndjson"
    src.write_text(json.dumps(alert) + "\n")
    assert main(["compliance", str(src), "--framework", "nist-sp800-53r5", "--controls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    sp = ComplianceTracker(["nist-sp800-53r5"]).add_all([alert]).report()["frameworks"][0]
    assert lines[1].split()[-1] == "relevant"
    assert lines[2].split()[-1] == str(sp["controls_relevant"]) and sp["controls_relevant"] > 0
    cp9 = next(line for line in lines if line.split()[:1] == ["CP-9"])
    assert cp9.split()[1:3] == ["relevant", "1"] and "techniques T1486" in cp9 and alert["id"] in cp9
    assert not any(line.split()[:2] == ["CP-9", "evidenced"] for line in lines)
    assert lines[-1].startswith("coverage and score count only controls an event-type rule evidenced")
