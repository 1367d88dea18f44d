"""Builder ATT&CK mapping: ids in any case and with blanks, deprecated techniques refused, tactic+technique
pairs ATT&CK does not have refused, and each error naming the builder field it came from."""
from __future__ import annotations

import pytest

from wia_security import AlertBuilder, InvalidValueError, ThreatIntelBuilder, validate_event
from wia_security.attack import table


def test_every_deprecated_technique_is_refused_naming_it():
    deprecated = [t for t in table() if t.status == "deprecated"]
    assert len(deprecated) == 12
    for tech in deprecated:
        with pytest.raises(InvalidValueError, match=f"{tech.id} .* is deprecated in ATT&CK v18.1") as exc:
            AlertBuilder().mitre(tech.id)
        assert exc.value.prop_name == "mitre"
        with pytest.raises(InvalidValueError, match="deprecated") as exc:
            ThreatIntelBuilder().ttp(tech.id)
        assert exc.value.prop_name == "data.ttps"


def test_every_active_technique_builds_an_event_without_attack_warnings():
    for tech in table():
        if tech.status != "active":
            continue
        event = AlertBuilder().title("t").mitre(tech.id).build().to_dict()
        assert validate_event(event).warnings == [], tech.id
        assert event["mitre"]["tactic"] in tech.tactic_ids
        intel = ThreatIntelBuilder().threat("x", "apt").ttp(tech.id).build().to_dict()
        assert validate_event(intel).warnings == [], tech.id


def test_every_revoked_technique_is_refused_with_its_replacement():
    for tech in (t for t in table() if t.status == "revoked"):
        repl = table().replacement(tech.id)
        with pytest.raises(InvalidValueError, match=f"{tech.id} .* is revoked.*use {repl.id}" if repl else "revoked"):
            AlertBuilder().mitre(tech.id)


@pytest.mark.parametrize("spelling", ["T1059.001", "t1059.001", " T1059.001", "T1059.001 ", "\tt1059.001\n"])
def test_technique_ids_in_any_case_and_with_blanks_are_written_as_attack_spells_them(spelling):
    mitre = AlertBuilder().mitre(spelling).to_dict()["mitre"]
    assert mitre["technique"] == "T1059" and mitre["sub_technique"] == "T1059.001"


@pytest.mark.parametrize("tactic", ["TA0004", "ta0004", " TA0004 ", "privilege-escalation", "Privilege Escalation",
                                    "PRIVILEGE ESCALATION"])
def test_tactic_by_id_shortname_or_name(tactic):
    mitre = AlertBuilder().mitre("T1078", tactic=tactic).to_dict()["mitre"]
    assert (mitre["tactic"], mitre["tactic_name"]) == ("TA0004", "Privilege Escalation")


def test_a_pair_attack_does_not_have_is_refused_listing_the_techniques_tactics_in_matrix_order():
    with pytest.raises(InvalidValueError) as exc:
        AlertBuilder().mitre("T1078", tactic="execution")
    assert str(exc.value).endswith("T1078 (Valid Accounts) is not in tactic TA0002 (Execution); its tactics: "
                                   "TA0001 (Initial Access), TA0003 (Persistence), TA0004 (Privilege Escalation), "
                                   "TA0005 (Defense Evasion)")
    with pytest.raises(InvalidValueError) as exc:
        ThreatIntelBuilder().ttp("T1059.001", tactic="TA0003")
    assert exc.value.prop_name == "data.ttps"


@pytest.mark.parametrize("tactic", ["TA9999", "execute", "", 5])
def test_an_unknown_tactic_is_refused(tactic):
    with pytest.raises(InvalidValueError, match="not an ATT&CK v18.1 Enterprise tactic"):
        AlertBuilder().mitre("T1059", tactic=tactic)


@pytest.mark.parametrize("technique", ["T1059.999", "T1059.1", "T1059/001", "TA0002", "", None, 1059])
def test_an_unknown_technique_is_refused(technique):
    with pytest.raises(InvalidValueError, match="not an ATT&CK v18.1 Enterprise technique") as exc:
        AlertBuilder().mitre(technique)
    assert exc.value.prop_name == "mitre"


def test_a_sub_technique_takes_its_parent_from_attack():
    for tech in (t for t in table() if t.status == "active" and t.is_subtechnique):
        mitre = AlertBuilder().mitre(tech.id).to_dict()["mitre"]
        assert mitre["technique"] == tech.parent_id == tech.id.split(".")[0]
        assert mitre["technique_name"] == table().technique(tech.parent_id).name
