"""Several versions of one event in the store count once, as the newest version: the store keeps one row
per id (a later timestamp, or the same with a later data.updated_at, replaces it). An incident first stored
open and at severity 8, then closed, is one closed incident with no open finding; a version that moved
the event out of the window takes it out. The HTML page embeds exactly the numbers of its JSON twin."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wia_security.builders import AlertBuilder, IncidentBuilder
from wia_security.cli import main
from wia_security.connectors.sqlite import EventStore

INCIDENT_ID = "11111111-1111-4111-8111-111111111111"
ALERT_ID = "22222222-2222-4222-8222-222222222222"
MOVED_ID = "33333333-3333-4333-8333-333333333333"


def _incident(ts: str, status: str) -> dict:
    return (IncidentBuilder().id(INCIDENT_ID).timestamp(ts).severity(8).title("ransomware").category("ransomware")
            .status(status).priority("critical").build().to_dict())


def _alert(event_id: str, ts: str, status: str, severity: float) -> dict:
    return AlertBuilder().id(event_id).timestamp(ts).severity(severity).title("x").status(status).build().to_dict()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "events.db"
    s = EventStore(str(path))
    try:
        batches = [
            [_incident("2026-03-01T01:00:00Z", "new"), _alert(ALERT_ID, "2026-03-01T02:00:00Z", "new", 9),
             _alert(MOVED_ID, "2026-03-01T03:00:00Z", "new", 9)],
            [_incident("2026-03-01T04:00:00Z", "containing"), _alert(ALERT_ID, "2026-03-01T02:00:00Z", "new", 9)],
            [_incident("2026-03-01T05:00:00Z", "closed"), _alert(ALERT_ID, "2026-03-01T06:00:00Z", "resolved", 9),
             _alert(MOVED_ID, "2026-03-03T00:00:00Z", "resolved", 9),
             _incident("2026-03-01T01:00:00Z", "new")],              # an old version arriving late: ignored
        ]
        for batch in batches:
            s.insert(batch)
    finally:
        s.close()
    return path


def _embedded(page: str) -> dict:
    raw = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S)[1]
    return json.loads(raw)


def test_the_dashboard_counts_each_event_once_as_its_newest_version(store, tmp_path):
    out = tmp_path / "r.html"
    argv = ["report", "--db", str(store), "--since", "2026-03-01T00:00:00Z", "--until", "2026-03-02T00:00:00Z",
            "-o", str(out), "--no-progress"]
    assert main(argv) == 0
    twin = json.loads(out.with_suffix(".json").read_text("utf-8"))
    assert _embedded(out.read_text("utf-8")) == twin
    assert twin["inputs"] == {"events_read": 2, "in_window": 2, "outside_window": 0, "without_timestamp": 0,
                              "duplicates": 0, "rejected": 0}
    assert twin["totals"]["by_type"] == {"alert": 1, "incident": 1}
    assert twin["totals"]["by_status"] == {"alert": {"resolved": 1}, "incident": {"closed": 1}}
    assert twin["totals"]["by_band"]["emergency"] == 1 and twin["totals"]["by_band"]["critical"] == 1
    assert sum(b["total"] for b in twin["time_series"]["buckets"]) == 2
    frameworks = {f["id"]: f for f in twin["compliance"]["frameworks"]}
    csf = {c["id"]: c for c in frameworks["nist-csf-2.0"]["controls"]}
    assert csf["RC.RP-01"]["evidence"] == [INCIDENT_ID]                     # recovery: the closed version
    assert all(c["open_findings"] == 0 for f in frameworks.values() for c in f["controls"])
    assert all(f["controls_attention"] == 0 for f in frameworks.values())


def test_compliance_counts_each_event_once_as_its_newest_version(store, capsys):
    assert main(["compliance", "--db", str(store), "--since", "2026-03-01T00:00:00Z",
                 "--until", "2026-03-02T00:00:00Z", "--format", "json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["events"] == 2 and report["inputs"]["in_window"] == 2
    sp = {c["id"]: c for c in next(f for f in report["frameworks"] if f["id"] == "nist-sp800-53r5")["controls"]}
    assert sp["IR-4"]["evidence_count"] == 2 and sorted(sp["IR-4"]["evidence"]) == [INCIDENT_ID, ALERT_ID]
    assert sp["SI-4"]["evidence"] == [ALERT_ID] and sp["SI-4"]["open_findings"] == 0


def test_the_twin_on_stdout_is_the_json_the_page_embeds(store, tmp_path, capsys):
    """`--json -` printed the report without the `tool_version` the page embeds and a twin file holds."""
    out = tmp_path / "r.html"
    assert main(["report", "--db", str(store), "-o", str(out), "--json", "-", "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == _embedded(out.read_text("utf-8"))
    assert printed["tool_version"]
