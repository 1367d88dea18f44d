"""Advisories never change the verdict; each has a stable code and a path."""
from __future__ import annotations

import copy

import pytest

from wia_security import validate_event


def codes(event) -> dict[str, str]:
    result = validate_event(event)
    assert result.valid, result.errors
    return {w.path: w.code for w in result.warnings}


@pytest.fixture
def alert(samples):
    return copy.deepcopy(samples["alert-sample"])


def test_the_clean_sample_has_no_warnings(alert):
    assert codes(alert) == {}


def test_missing_schema(alert):
    del alert["$schema"]
    assert codes(alert) == {"/$schema": "schema_missing"}


def test_non_canonical_timestamp(alert):
    alert["timestamp"] = "2025-12-14T09:30:00+09:00"
    assert codes(alert) == {"/timestamp": "timestamp_not_canonical"}


@pytest.mark.parametrize("mitre, expected", [
    ({"tactic": "TA0099"}, {"/mitre/tactic": "attack_unknown_tactic"}),
    ({"technique": "T9999"}, {"/mitre/technique": "attack_unknown_technique"}),
    ({"technique": "T1004"}, {"/mitre/technique": "attack_revoked"}),
    ({"technique": "T1026"}, {"/mitre/technique": "attack_deprecated"}),
    ({"tactic": "TA0002", "technique": "T1110"}, {"/mitre/technique": "attack_tactic_mismatch"}),
    ({"technique": "T1059", "technique_name": "Shells"}, {"/mitre/technique_name": "attack_name_mismatch"}),
    ({"tactic": "TA0002", "tactic_name": "Exec"}, {"/mitre/tactic_name": "attack_name_mismatch"}),
    ({"technique": "T1059", "sub_technique": "T1110.003"}, {"/mitre/sub_technique": "attack_parent_mismatch"}),
    ({"tactic": "TA0002", "tactic_name": "execution", "technique": "T1059", "sub_technique": "T1059.001"}, {}),
])
def test_attack_advisories(alert, mitre, expected):
    alert["mitre"] = mitre
    assert codes(alert) == expected


def test_threat_intel_ttps_are_checked_too(samples):
    intel = copy.deepcopy(samples["threat-intel-sample"])
    assert codes(intel) == {"/data/ttps/2/technique_name": "attack_name_mismatch"}
    intel["data"]["ttps"][0]["technique"] = "T1004"
    assert codes(intel)["/data/ttps/0/technique"] == "attack_revoked"


def test_revoked_message_names_the_replacement(alert):
    alert["mitre"] = {"technique": "T1004"}
    [w] = validate_event(alert).warnings
    assert "use T1547.004" in w.message
