"""An ATT&CK id an event spells with a trailing newline is the same technique or tactic. The schemas' patterns
(`^T\\d{4}(\\.\\d{3})?$`, `^TA\\d{4}$`) end in `$`, which takes one trailing newline as the reference validator
reads them, so "T1110\\n" is a valid event's technique. The dashboard counted it as a technique of its own (top
techniques listed T1110 twice, each with half its events, and distinct techniques said 2), and the compliance
tracker found no CTID row for it: SP 800-53 AC-7, IA-5 and the other controls that mitigate brute force were
not listed as relevant, only its tactic's controls."""
from __future__ import annotations

import json

from wia_security.builders import AlertBuilder
from wia_security.cli import main
from wia_security.compliance import ComplianceTracker, controls_for
from wia_security.dashboard import DashboardAggregator
from wia_security.validation import Validator


def _alerts() -> list[dict]:
    plain = AlertBuilder().title("brute force").mitre("T1110").build().to_dict()
    spelled = AlertBuilder().title("brute force").mitre("T1110").build().to_dict()
    spelled["mitre"] = {"technique": "T1110\n", "tactic": "TA0006\n"}
    intel_like = AlertBuilder().title("sub").mitre("T1110.003").build().to_dict()
    intel_like["mitre"] = {"technique": "T1110", "sub_technique": "T1110.003\n"}
    return [plain, spelled, intel_like]


def test_the_spellings_are_valid_events():
    for event in _alerts():
        assert Validator(warnings=False).validate(event).valid


def test_the_dashboard_counts_one_technique_and_one_tactic():
    report = DashboardAggregator().add_all(_alerts()).report()
    assert report["attack"]["top_techniques"] == [
        {"id": "T1110", "name": "Brute Force", "tactics": ["TA0006"], "count": 2},
        {"id": "T1110.003", "name": "Password Spraying", "tactics": ["TA0006"], "count": 1}]
    assert report["attack"]["top_tactics"] == [{"id": "TA0006", "name": "Credential Access", "count": 3}]
    assert report["attack"]["distinct_techniques"] == 2


def test_compliance_maps_the_technique_through_ctid():
    plain, spelled, sub = _alerts()
    assert controls_for(spelled, "nist-sp800-53r5") == controls_for(plain, "nist-sp800-53r5")
    assert "technique:T1110 (CTID)" in controls_for(spelled, "nist-sp800-53r5")["AC-7"]
    assert "technique:T1110.003 (CTID)" in controls_for(sub, "nist-sp800-53r5")["AC-7"]
    tracker = ComplianceTracker(["nist-sp800-53r5"])
    tracker.add(spelled)
    relevant = {c["id"]: c for c in tracker.report()["frameworks"][0]["relevant"]}
    assert relevant["AC-7"]["techniques"] == ["T1110"]


def test_the_report_command_reads_them_from_a_file(tmp_path):
    src = tmp_path / "a.ndjson"
    src.write_text("".join(json.dumps(e) + "\n" for e in _alerts()))
    out = tmp_path / "r.html"
    assert main(["report", str(src), "-o", str(out), "--no-progress"]) == 0
    twin = json.loads(out.with_suffix(".json").read_text())
    assert [(t["id"], t["count"]) for t in twin["attack"]["top_techniques"]] == [("T1110", 2), ("T1110.003", 1)]
