"""The validator's ATT&CK advisories read as a detection engineer needs them: the path, the stable code,
and in the message what to write instead (the id a shortname means, a revoked id's replacement, the
technique's own tactics by name and in matrix order). ATT&CK's "Parent: Sub" sub-technique names agree."""
from __future__ import annotations

import copy

import pytest

from wia_security import validate_event


@pytest.fixture
def alert(samples):
    return copy.deepcopy(samples["alert-sample"])


@pytest.fixture
def intel(samples):
    return copy.deepcopy(samples["threat-intel-sample"])


def advisories(event) -> dict[str, tuple[str, str]]:
    result = validate_event(event)
    assert result.valid, result.errors
    return {w.path: (w.code, w.message) for w in result.warnings if w.code.startswith("attack_")}


@pytest.mark.parametrize("mitre", [
    {"technique": "T1059", "sub_technique": "T1059.001",
     "sub_technique_name": "Command and Scripting Interpreter: PowerShell"},
    {"technique": "T1059.001", "technique_name": "command and scripting interpreter: powershell"},
    {"technique": "T1078", "sub_technique": "T1078.004", "sub_technique_name": "Valid Accounts: Cloud Accounts"},
])
def test_attacks_parent_colon_sub_spelling_of_a_name_agrees(alert, mitre):
    # it was attack_name_mismatch: "'Command and Scripting Interpreter: PowerShell' disagrees with ... 'PowerShell'"
    alert["mitre"] = mitre
    assert advisories(alert) == {}


def test_a_parent_colon_sub_name_under_the_wrong_parent_still_disagrees(alert):
    alert["mitre"] = {"technique": "T1585", "sub_technique": "T1585.003",
                      "sub_technique_name": "Valid Accounts: Cloud Accounts"}
    assert advisories(alert) == {"/mitre/sub_technique_name": (
        "attack_name_mismatch", "'Valid Accounts: Cloud Accounts' disagrees with ATT&CK's name 'Cloud Accounts'")}


def test_a_tactic_mismatch_lists_the_techniques_tactics_by_name_in_matrix_order(alert):
    # was "its tactics: TA0005, TA0003, TA0004, TA0001": bare ids in the table's order
    alert["mitre"] = {"tactic": "TA0002", "technique": "T1078"}
    assert advisories(alert) == {"/mitre/technique": (
        "attack_tactic_mismatch",
        "T1078 (Valid Accounts) is not in tactic TA0002 (Execution); its tactics: TA0001 (Initial Access), "
        "TA0003 (Persistence), TA0004 (Privilege Escalation), TA0005 (Defense Evasion)")}


def test_a_ttp_naming_a_tactic_or_technique_in_another_spelling_is_told_the_id(intel):
    # data.ttps has no id pattern in the schema, so these are advisories only; they said just "not an id"
    intel["data"]["ttps"] = [{"tactic": "execution", "technique": "t1059", "sub_technique": "T1059.001"},
                             {"tactic": "Privilege Escalation", "technique": " T1078.004"}]
    assert advisories(intel) == {
        "/data/ttps/0/tactic": ("attack_unknown_tactic", "'execution' is not an ATT&CK v18.1 Enterprise tactic id; "
                                                         "write it as TA0002 (Execution)"),
        "/data/ttps/0/technique": ("attack_unknown_technique", "'t1059' is not an ATT&CK v18.1 Enterprise technique; "
                                                               "write it as T1059 (Command and Scripting Interpreter)"),
        "/data/ttps/1/tactic": ("attack_unknown_tactic", "'Privilege Escalation' is not an ATT&CK v18.1 Enterprise "
                                                         "tactic id; write it as TA0004 (Privilege Escalation)"),
        "/data/ttps/1/technique": ("attack_unknown_technique", "' T1078.004' is not an ATT&CK v18.1 Enterprise "
                                                               "technique; write it as T1078.004 (Cloud Accounts)"),
    }   # and no attack_parent_mismatch for t1059 / T1059.001


def test_revoked_deprecated_and_other_domain_ids(intel):
    intel["data"]["ttps"] = [{"technique": "T1073"}, {"technique": "T1026"}, {"tactic": "TA0104", "technique": "T0817"}]
    assert advisories(intel) == {
        # two revoked-by links: T1073 -> T1574.002 (itself revoked) -> T1574.001
        "/data/ttps/0/technique": ("attack_revoked", "T1073 (DLL Side-Loading) is revoked in ATT&CK v18.1; "
                                                     "use T1574.001 (DLL)"),
        "/data/ttps/1/technique": ("attack_deprecated", "T1026 (Multiband Communication) is deprecated in ATT&CK "
                                                        "v18.1, with no replacement"),
        "/data/ttps/2/tactic": ("attack_unknown_tactic", "'TA0104' is not an ATT&CK v18.1 Enterprise tactic id"),
        "/data/ttps/2/technique": ("attack_unknown_technique", "'T0817' is not an ATT&CK v18.1 Enterprise technique"),
    }


def test_a_ttp_giving_a_technique_by_name_is_told_its_id(intel):
    # threat feeds put names where the id goes; the advisory said only "not an ATT&CK technique"
    intel["data"]["ttps"] = [{"technique": "PowerShell"}, {"technique": "cloud accounts"},
                             {"technique": "Valid Accounts: Cloud Accounts"}, {"technique": "Not A Technique"}]
    assert {path: message for path, (_, message) in advisories(intel).items()} == {
        "/data/ttps/0/technique": "'PowerShell' is not an ATT&CK v18.1 Enterprise technique; "
                                  "that is the name of T1059.001: write the id",
        "/data/ttps/1/technique": "'cloud accounts' is not an ATT&CK v18.1 Enterprise technique; that is the name "
                                  "of T1078.004, T1585.003, T1586.003: write the id of the one meant",
        "/data/ttps/2/technique": "'Valid Accounts: Cloud Accounts' is not an ATT&CK v18.1 Enterprise technique; "
                                  "that is the name of T1078.004: write the id",
        "/data/ttps/3/technique": "'Not A Technique' is not an ATT&CK v18.1 Enterprise technique",
    }
