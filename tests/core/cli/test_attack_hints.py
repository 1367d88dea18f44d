"""`wia-security attack`: a sub-technique shows its parent, and a miss says why in terms a user can act on.

"Cloud Accounts" printed three lines that differed only in ids (T1078.004, T1585.003, T1586.003): the
parent (Valid Accounts, Establish Accounts, Compromise Accounts) tells them apart. A miss said "'T0817' is
not in ATT&CK v18.1", which is false for an ICS id (only Enterprise is bundled), gave no hint for
ATT&CK's URL form T1059/001, and none for a sub-technique number its parent does not have.
"""
from __future__ import annotations

import json

import pytest


def test_sub_techniques_name_their_parent_in_both_outputs(cli):
    r = cli("attack", "--json", "Cloud Accounts")
    assert r.code == 0
    assert [(m["id"], m["parent"]) for m in json.loads(r.out)] == [
        ("T1078.004", "T1078 Valid Accounts"), ("T1585.003", "T1585 Establish Accounts"),
        ("T1586.003", "T1586 Compromise Accounts")]
    text = cli("attack", "T1059.001")
    assert text.code == 0
    assert text.out == ("id: T1059.001  name: PowerShell  status: active  parent: T1059 Command and Scripting "
                        "Interpreter  tactics: TA0002 Execution  url: https://attack.mitre.org/techniques/T1059/001\n")
    (technique,) = json.loads(cli("attack", "--json", "T1059").out)
    assert "parent" not in technique


def test_attacks_parent_colon_sub_name_finds_one_sub_technique(cli):
    r = cli("attack", "--json", "Establish Accounts: Cloud Accounts")
    assert r.code == 0 and [m["id"] for m in json.loads(r.out)] == ["T1585.003"]


@pytest.mark.parametrize("query, hint", [
    ("T1059/001", "(did you mean 'T1059.001', PowerShell?)"),
    ("t1078/004", "(did you mean 'T1078.004', Cloud Accounts?)"),
    ("T1110.005", "(T1110 Brute Force has sub-techniques T1110.001 to T1110.004)"),
    ("T1005.001", "(T1005 Data from Local System has no sub-techniques)"),
    ("T0817", "(only the Enterprise domain is bundled: Mobile and ICS ids are not in it)"),
    ("TA0104", "(only the Enterprise domain is bundled: Mobile and ICS ids are not in it)"),
    ("powershel", "(did you mean 'PowerShell'?)"),
])
def test_a_miss_says_enterprise_and_what_was_probably_meant(cli, query, hint):
    for args in (("attack", query), ("attack", "--json", query)):
        r = cli(*args)
        assert r.code == 1
        assert r.err.strip() == f"wia-security: {query!r} is not in ATT&CK v18.1 Enterprise {hint}"
        assert r.out == ("[]\n" if "--json" in args else "")


def test_the_help_says_which_attack_is_bundled(cli):
    r = cli("attack", "--help")
    assert r.code == 0
    text = " ".join(r.out.split())
    assert "MITRE ATT&CK® Enterprise table, whose version every answer names (Mobile and ICS are not bundled)" in text
    assert "Valid Accounts: Cloud Accounts" in text
