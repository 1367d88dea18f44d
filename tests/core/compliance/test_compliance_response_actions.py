"""An incident's response actions evidence what they are, once done. The rule `has data.response_actions`
("response actions were taken") evidenced CSF RS.MA-04 "Incidents are escalated or elevated as needed"
and CIS 17.1 "Designate Personnel to Manage Incident Handling": none of the schema's actions
(isolate_host, block_ip, disable_user, quarantine_file, collect_forensics) is an escalation or a staffing
decision, and a pending or failed action was counted as taken. Now a completed containment action
evidences RS.MI-01 "Incidents are contained", a completed forensic collection RS.AN-07 "Incident data and
metadata are collected" and ISO A.5.28 "Collection of evidence"."""
from __future__ import annotations

import pytest

from wia_security.builders import IncidentBuilder
from wia_security.compliance import ComplianceTracker, controls_for

CONTAINMENT = "event:incident some data.response_actions[] action=isolate_host|block_ip|disable_user|quarantine_file status=completed"
FORENSICS = "event:incident some data.response_actions[] action=collect_forensics status=completed"


def _incident(*actions: tuple[str, str]) -> dict:
    b = IncidentBuilder().title("x").category("malware").status("new").priority("high")
    for action, status in actions:
        b.response_action(action, "WS-1", status=status, timestamp="2026-03-01T00:00:00Z")
    return b.build().to_dict()


def _evidenced(event: dict, fid: str) -> set[str]:
    return {cid for cid, reasons in controls_for(event, fid).items() if any(r.startswith("event:") for r in reasons)}


@pytest.mark.parametrize("status", ["pending", "in_progress", "failed", "completed"])
@pytest.mark.parametrize("action", ["isolate_host", "block_ip", "disable_user", "quarantine_file", "collect_forensics"])
def test_no_response_action_evidences_escalation_or_staffing(action, status):
    event = _incident((action, status))
    assert "RS.MA-04" not in _evidenced(event, "nist-csf-2.0")
    assert "17.1" not in _evidenced(event, "cis-v8")


@pytest.mark.parametrize("action", ["isolate_host", "block_ip", "disable_user", "quarantine_file"])
def test_a_completed_containment_action_evidences_containment(action):
    done = controls_for(_incident(("collect_forensics", "failed"), (action, "completed")), "nist-csf-2.0")
    assert done["RS.MI-01"] == {CONTAINMENT}
    for status in ("pending", "in_progress", "failed"):
        assert "RS.MI-01" not in _evidenced(_incident((action, status)), "nist-csf-2.0")


def test_a_completed_forensic_collection_evidences_collection_of_evidence():
    event = _incident(("isolate_host", "pending"), ("collect_forensics", "completed"))
    assert controls_for(event, "nist-csf-2.0")["RS.AN-07"] == {FORENSICS}
    assert controls_for(event, "iso27001-2022")["A.5.28"] == {FORENSICS}
    assert "RS.MI-01" not in _evidenced(event, "nist-csf-2.0")
    tracker = ComplianceTracker(["iso27001-2022"])
    tracker.add(event)
    row = next(c for c in tracker.report()["frameworks"][0]["controls"] if c["id"] == "A.5.28")
    assert row["evidence"] == [event["id"]] and row["via"] == [FORENSICS]


@pytest.mark.parametrize("actions", [None, "isolate_host", {"action": "isolate_host", "status": "completed"},
                                     ["isolate_host", None, 7, []], [{"action": ["isolate_host"], "status": "completed"}],
                                     [{"action": "isolate_host", "status": True}]])
def test_odd_response_action_shapes_match_nothing(actions):
    event = _incident()
    event["data"]["response_actions"] = actions
    evidenced = _evidenced(event, "nist-csf-2.0")
    assert "RS.MI-01" not in evidenced and "RS.AN-07" not in evidenced
