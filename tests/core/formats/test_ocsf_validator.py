"""The project's OCSF 1.8.0 validator: accepts a well-formed Detection Finding, names each rule it breaks."""
from __future__ import annotations

import copy

import pytest

from ocsf_validator import SCHEMA_PATH, validate


def test_the_pinned_schema_is_vendored():
    assert SCHEMA_PATH.exists(), SCHEMA_PATH

FINDING = {
    "class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2, "category_name": "Findings",
    "activity_id": 1, "activity_name": "Create", "type_uid": 200401, "type_name": "Detection Finding: Create",
    "severity_id": 4, "severity": "High", "time": 1765704600000, "status_id": 1,
    "metadata": {"version": "1.8.0", "product": {"name": "Splunk ES", "vendor_name": "Splunk"},
                 "uid": "550e8400-e29b-41d4-a716-446655440001", "profiles": ["host"]},
    "finding_info": {"uid": "ALERT-1", "title": "PowerShell",
                     "attacks": [{"technique": {"uid": "T1059", "name": "Command and Scripting Interpreter"},
                                  "tactic": {"uid": "TA0002", "name": "Execution"}, "version": "18.1"}]},
    "device": {"type_id": 2, "hostname": "WS-1", "name": "WS-1", "ip": "10.0.0.1"},
    "observables": [{"type_id": 2, "value": "10.0.0.1", "name": "device.ip"}],
    "unmapped": {"wia": {"priority": "high"}},
}


def test_a_well_formed_detection_finding_is_valid() -> None:
    assert validate(FINDING) == []


@pytest.mark.parametrize("change,expected", [
    (lambda e: e.pop("finding_info"), "/finding_info: required attribute missing"),
    (lambda e: e.update(type_uid=200402), "/type_uid: 200402 != class_uid * 100 + activity_id (200401)"),
    (lambda e: e.update(category_uid=1), "/category_uid: 1 != 2 (Findings)"),
    (lambda e: e.update(severity_id=7), "/severity_id: 7 is not one of the enum values"),
    (lambda e: e.update(time="2025-12-14"), "/time: '2025-12-14' is not a timestamp_t"),
    (lambda e: e.update(bogus=1), "/bogus: not an attribute of this class/object"),
    (lambda e: e["metadata"].update(profiles=[]), "/device: belongs to profile 'host'"),
    (lambda e: e["metadata"].update(profiles=["host", "nope"]), "/metadata/profiles: 'nope' is not a profile"),
    (lambda e: e["metadata"].update(version="1.1.0"), "/metadata/version: '1.1.0' is not 1.8.0"),
    (lambda e: e["device"].update(ip="999.1.1.1"), "/device/ip: '999.1.1.1' does not match the ip_t pattern"),
    (lambda e: e["finding_info"]["attacks"][0].clear(), "/finding_info/attacks/0: needs at least one of"),
    (lambda e: e.update(class_name="Security Finding"), "/class_name: 'Security Finding' != 'Detection Finding'"),
    (lambda e: e.update(class_uid=2001, type_uid=200101), "/class_uid: Security Finding is deprecated"),
    (lambda e: e["observables"][0].update(type_id=1000), "/observables/0/type_id: 1000 is not one of"),
])
def test_each_rule_is_enforced(change, expected: str) -> None:
    event = copy.deepcopy(FINDING)
    change(event)
    assert any(f.startswith(expected) for f in validate(event)), validate(event)
