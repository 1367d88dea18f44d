"""`wia-security attack`: what it prints and its exit status for ids, names, tactics and misses.

The text output printed a technique's tactics as a Python list repr (`tactics: ['TA0002 Execution']`)
in the table's order; both outputs now list them in matrix order, the text one comma-separated. The
MITRE copyright line goes to standard error with --json too (it was printed for the text output only).
"""
from __future__ import annotations

import json

import pytest

NOTICE = "© 2025 The MITRE Corporation. This work is reproduced and distributed with the permission of The MITRE Corporation."


def test_text_output_lists_tactics_in_matrix_order_without_python_syntax(cli):
    r = cli("attack", "T1078")
    assert r.code == 0
    assert r.out == ("id: T1078  name: Valid Accounts  status: active  tactics: TA0001 Initial Access, TA0003 Persistence, "
                     "TA0004 Privilege Escalation, TA0005 Defense Evasion  url: https://attack.mitre.org/techniques/T1078\n")
    assert "[" not in r.out and "'" not in r.out
    assert NOTICE in r.err


def test_json_output_lists_tactics_in_matrix_order_and_the_notice_goes_to_stderr(cli):
    r = cli("attack", "--json", "T1078")
    assert r.code == 0
    (match,) = json.loads(r.out)
    assert match["tactics"] == ["TA0001 Initial Access", "TA0003 Persistence", "TA0004 Privilege Escalation",
                                "TA0005 Defense Evasion"]
    assert NOTICE in r.err


@pytest.mark.parametrize("query, ids", [
    ("T1059.001", ["T1059.001"]), (" t1059.001 ", ["T1059.001"]), ("powershell", ["T1059.001", "T1086"]),
    ("DNS", ["T1071.004", "T1590.002"]), ("T1004", ["T1004"]), ("T1026", ["T1026"]),
])
def test_techniques_by_id_or_name(cli, query, ids):
    r = cli("attack", "--json", query)
    assert r.code == 0 and [m["id"] for m in json.loads(r.out)] == ids


def test_revoked_and_deprecated_say_so(cli):
    (revoked,) = json.loads(cli("attack", "--json", "T1086").out)
    assert revoked["status"] == "revoked" and revoked["replaced_by"] == "T1059.001 PowerShell"
    (deprecated,) = json.loads(cli("attack", "--json", "T1026").out)
    assert deprecated["status"] == "deprecated" and "replaced_by" not in deprecated


@pytest.mark.parametrize("query", ["TA0004", "ta0004", "privilege-escalation", "Privilege Escalation", "PRIVILEGE-ESCALATION"])
def test_tactics_by_id_shortname_or_name(cli, query):
    r = cli("attack", "--json", query)
    assert r.code == 0
    (tactic,) = json.loads(r.out)
    assert (tactic["id"], tactic["shortname"], tactic["techniques"]) == ("TA0004", "privilege-escalation", 14)


@pytest.mark.parametrize("query", ["T1059.999", "T1059.1", "TA9999", "T1059/001", "T1059.001,T1078"])
def test_a_miss_exits_1_with_the_reason_on_stderr(cli, query):
    r = cli("attack", query)
    assert r.code == 1 and r.out == "" and f"{query!r} is not in ATT&CK v18.1" in r.err


@pytest.mark.parametrize("query", ["", "   "])
def test_an_empty_query_is_a_usage_error(cli, query):
    r = cli("attack", query)
    assert r.code == 2 and "give a technique or tactic id" in r.err
