"""The bundled ATT&CK v18.1 table: counts, lookups, tactics, sub-techniques, revocations, enrichment, license."""
from __future__ import annotations

from importlib import resources

from wia_security.attack import enrich, table


def test_counts_match_the_published_v18_1_totals():
    t = table()
    assert t.version == "18.1"
    assert len(t) == 835
    active = [x for x in t if x.status == "active"]
    assert len(active) == 691
    assert sum(not x.is_subtechnique for x in active) == 216
    assert [x.id for x in t.tactics][:3] == ["TA0043", "TA0042", "TA0001"] and len(t.tactics) == 14


def test_lookups_by_id_and_name():
    t = table()
    assert t.technique("T1059.001").name == "PowerShell"
    assert t.technique("t1059.001").id == "T1059.001"
    assert t.technique("T0000") is None
    named = t.techniques_named("powershell")
    assert [x.id for x in named] == ["T1059.001", "T1086"]           # active first, then the revoked one
    assert named[1].status == "revoked" and t.replacement("T1086").id == "T1059.001"
    assert t.tactic("execution").id == t.tactic("TA0002").id == t.tactic("Execution").id == "TA0002"


def test_tactic_membership_and_subtechniques():
    t = table()
    assert t.in_tactic("T1078", "TA0004") and not t.in_tactic("T1078", "TA0002")
    execution = {x.id for x in t.techniques_in("TA0002")}
    assert {"T1059", "T1059.001"} <= execution
    assert {x.id for x in t.subtechniques("T1110")} == {"T1110.001", "T1110.002", "T1110.003", "T1110.004"}
    assert t.technique("T1110.003").parent_id == "T1110"


def test_revoked_techniques_lead_to_their_replacement():
    t = table()
    assert t.technique("T1004").status == "revoked"
    assert t.replacement("T1004").id == "T1547.004"
    assert t.replacement("T1059") is None
    assert t.technique("T1026").status == "deprecated"


def test_enrich_fills_only_missing_names():
    event = {"mitre": {"technique": "T1110", "sub_technique": "T1110.003", "technique_name": "Mine"}}
    enrich(event)
    assert event["mitre"] == {"technique": "T1110", "sub_technique": "T1110.003", "technique_name": "Mine",
                              "sub_technique_name": "Password Spraying", "tactic": "TA0006",
                              "tactic_name": "Credential Access"}


def test_license_and_copyright_ship_with_the_data():
    files = resources.files("wia_security.attack")
    assert "The MITRE Corporation" in files.joinpath("LICENSE.txt").read_text()
    assert "© 2025 The MITRE Corporation" in files.joinpath("NOTICE.md").read_text()
    assert table().copyright.startswith("© 2025 The MITRE Corporation")


def test_lookups_ignore_blanks_around_keys_as_the_builders_and_cli_do():
    # a library caller with ids from a report or a CSV cell got None: " T1059.001" read as unknown
    t = table()
    assert t.technique(" T1059.001 ").id == t.technique("\tt1059.001\n").id == "T1059.001"
    assert t.tactic(" execution ").id == t.tactic(" TA0002").id == "TA0002"
    assert [x.id for x in t.techniques_named(" PowerShell ")] == ["T1059.001", "T1086"]
    assert {x.id for x in t.subtechniques(" t1110 ")} == {"T1110.001", "T1110.002", "T1110.003", "T1110.004"}
    assert t.replacement(" t1086 ").id == "T1059.001"
    assert t.replacement(" T1059 ") is None and t.replacement("T1026") is None   # active, deprecated
    assert t.technique(None) is None and t.techniques_named(None) == [] and t.subtechniques(None) == []


def test_in_tactic_takes_a_tactic_as_every_other_lookup_does():
    # in_tactic("T1078", "privilege-escalation") was False: only an exact TA id was compared
    t = table()
    for key in ("TA0004", "ta0004", "privilege-escalation", "Privilege Escalation", " TA0004 "):
        assert t.in_tactic("T1078", key), key
    assert not t.in_tactic("T1078", "execution") and not t.in_tactic("T1078", "no-such-tactic")
    assert not t.in_tactic("T9999", "TA0004")


def test_a_sub_technique_by_attacks_parent_colon_sub_name():
    t = table()
    assert [x.id for x in t.techniques_named("Cloud Accounts")] == ["T1078.004", "T1585.003", "T1586.003"]
    assert [x.id for x in t.techniques_named("Valid Accounts: Cloud Accounts")] == ["T1078.004"]
    assert [x.id for x in t.techniques_named("compromise accounts:cloud accounts")] == ["T1586.003"]
    assert t.techniques_named("Valid Accounts: PowerShell") == []


def test_enrich_writes_a_recognized_tactic_or_technique_as_its_id():
    # enrich named the tactic of {"tactic": "privilege-escalation"} yet left the shortname, so the
    # enriched event failed validation at /mitre/tactic (^TA\d{4}$); " t1078.004" likewise
    from wia_security import AlertBuilder, validate_event

    event = AlertBuilder().title("x").build().to_dict()
    event["mitre"] = {"tactic": "privilege-escalation", "technique": "t1078", "sub_technique": " T1078.004"}
    enrich(event)
    assert event["mitre"] == {"tactic": "TA0004", "technique": "T1078", "sub_technique": "T1078.004",
                              "technique_name": "Valid Accounts", "sub_technique_name": "Cloud Accounts",
                              "tactic_name": "Privilege Escalation"}
    result = validate_event(event)
    assert result.valid and result.warnings == [], (result.errors, result.warnings)
    for given in ("Execution", "execution", "ta0002", "TA0002"):
        assert enrich({"mitre": {"tactic": given}})["mitre"] == {"tactic": "TA0002", "tactic_name": "Execution"}
    # what it does not know stays as given, for the validator to name
    assert enrich({"mitre": {"tactic": "TA9999", "technique": "T0817"}})["mitre"] == {"tactic": "TA9999",
                                                                                     "technique": "T0817"}


def test_enrich_writes_ids_back_on_a_model_event():
    from wia_security import Event

    event = Event.from_dict({"type": "alert", "mitre": {"tactic": "defense-evasion", "technique": "t1027"}})
    enrich(event)
    assert (event.mitre.tactic, event.mitre.technique, event.mitre.technique_name, event.mitre.tactic_name) == \
        ("TA0005", "T1027", "Obfuscated Files or Information", "Defense Evasion")


def test_a_tactic_shortname_with_underscores_as_sigma_tags_write_it():
    # Sigma rules tag tactics attack.privilege_escalation, attack.command_and_control: tactic() gave None
    t = table()
    assert t.tactic("privilege_escalation").id == "TA0004" and t.tactic("Command_And_Control").id == "TA0011"
    assert t.in_tactic("T1078", "defense_evasion")
    assert enrich({"mitre": {"tactic": "initial_access"}})["mitre"] == {"tactic": "TA0001", "tactic_name": "Initial Access"}
    assert t.tactic("privilege escalation_") is None
