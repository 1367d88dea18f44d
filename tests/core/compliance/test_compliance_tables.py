"""The compliance data files: every control id exists in its framework's list, every ATT&CK id in v18.1,
and each file names its source."""
from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from wia_security.attack import table as attack_table
from wia_security.compliance import FRAMEWORK_IDS, ctid_table, event_rules, framework, in_scope, tactic_controls

DATA = resources.files("wia_security.compliance").joinpath("data")
ID_SHAPES = {"nist-csf-2.0": r"(GV|ID|PR|DE|RS|RC)\.[A-Z]{2}-\d{2}", "nist-sp800-53r5": r"[A-Z]{2}-\d{1,2}",
             "cis-v8": r"\d{1,2}\.\d{1,2}", "iso27001-2022": r"A\.[5-8]\.\d{1,2}"}


def test_framework_lists_have_the_official_sizes():
    # CSF 2.0 Core: 106 subcategories; CIS v8: 153 safeguards; ISO/IEC 27001:2022 Annex A: 93 controls;
    # SP 800-53 Rev. 5, catalog release 5.2.0 (August 2025, the current one; 5.1.1 had 323): 324 base controls of
    # which 24 are withdrawn. 5.2.0 added SA-24 Design for Cyber Resiliency; a list of 5.1.1 lacked it.
    sizes = {fid: len(framework(fid).controls) for fid in FRAMEWORK_IDS}
    assert sizes == {"nist-csf-2.0": 106, "nist-sp800-53r5": 300, "cis-v8": 153, "iso27001-2022": 93}
    assert framework("nist-sp800-53r5").controls["SA-24"] == "Design for Cyber Resiliency"
    assert framework("nist-sp800-53r5").version == "Rev. 5 (5.2.0)"
    for fid in FRAMEWORK_IDS:
        assert all(re.fullmatch(ID_SHAPES[fid], cid) for cid in framework(fid).controls), fid


@pytest.mark.parametrize("name", ["nist-csf-2.0.json", "nist-sp800-53r5.json", "cis-controls-v8.json", "iso27001-2022.json"])
def test_each_framework_file_cites_its_source(name):
    source = json.loads(DATA.joinpath(name).read_text())["source"]
    assert source["title"] and source["publisher"] and source["url"].startswith("https://") and source["license"]


def test_mapping_files_cite_their_source():
    for name in ("event-type-controls.json", "attack-tactic-controls.json"):
        assert "project judgement" in json.loads(DATA.joinpath(name).read_text())["source"]
    header = DATA.joinpath("attack-to-nist-sp800-53r5.ctid.tsv").read_text().splitlines()[:4]
    assert any("Mappings Explorer" in line for line in header) and any("Apache" in line for line in header)
    assert "Apache License" in DATA.joinpath("LICENSE-CTID.txt").read_text()


def test_every_mapped_control_exists_and_has_a_title():
    for rule in event_rules():
        for fid, ids in rule.controls.items():
            fw = framework(fid)
            for cid in ids:
                assert cid in fw, f"{rule.label()}: {fid} {cid} not in the framework list"
                assert fw.controls[cid], f"{fid} {cid} has no title"
    for tactic, row in tactic_controls().items():
        for fid, ids in row.items():
            for cid in ids:
                assert cid in framework(fid), f"{tactic}: {fid} {cid}"
                assert framework(fid).controls[cid], f"{fid} {cid} has no title"
    sp = framework("nist-sp800-53r5")
    for tech, controls in ctid_table().by_technique.items():
        for cid in controls:
            assert cid in sp and sp.controls[cid], f"{tech} -> {cid} missing or untitled"
    for fid in FRAMEWORK_IDS:
        assert in_scope(fid) <= set(framework(fid).controls)


def test_every_attack_id_exists_in_v18_1():
    attack = attack_table()
    assert attack.version == "18.1"
    assert set(tactic_controls()) == {t.id for t in attack.tactics}
    raw = json.loads(DATA.joinpath("attack-tactic-controls.json").read_text())["tactics"]
    for tid, row in raw.items():
        assert attack.tactic(tid).name == row["name"]
    table = ctid_table()
    for tech in table.by_technique:
        found = attack.technique(tech)
        assert found is not None and found.status != "revoked", tech
    assert len(table.by_technique) > 350
    # Exactly two CTID rows name only techniques that ATT&CK v18.1 has revoked; they are dropped.
    assert table.rows_without_technique == ["M1013 T1547(\\.011)", "M1013 T1574\\.002"]
    for tech in ("T1547.011", "T1574.002"):
        assert attack.technique(tech).status == "revoked"
    assert table.rows_without_control == []


def test_ctid_rows_expand_as_the_source_says():
    by_tech = ctid_table().by_technique
    # M1032 (MFA) and M1027 (password policies) rows for T1110 Brute Force include AC-7 and IA-5
    assert {"AC-7", "IA-5", "IA-2", "SI-4"} <= by_tech["T1110"] and {"AC-7", "IA-5"} <= by_tech["T1110.003"]
    # M1053 (data backup) for T1486 Data Encrypted for Impact
    assert {"CP-9", "CP-10", "SI-3"} <= by_tech["T1486"]
    # the corrected typo: T1537 maps to SC-28 (not the nonexistent AC-28)
    assert "SC-28" in by_tech["T1537"]


#: The CSF 2.0 Core's own statements (NIST CSWP 29, Appendix A, final of February 26, 2024), transcribed apart
#: from the data file for every subcategory the file states. The initial public draft (August 2023) worded some
#: differently; the page shows these statements beside the evidence, so a draft wording reads to an auditor as
#: a subcategory CSF 2.0 does not have.
CSF_2_0_STATEMENTS = {
    "ID.AM-01": "Inventories of hardware managed by the organization are maintained",
    "ID.AM-02": "Inventories of software, services, and systems managed by the organization are maintained",
    "ID.RA-01": "Vulnerabilities in assets are identified, validated, and recorded",
    "ID.RA-02": "Cyber threat intelligence is received from information sharing forums and sources",
    "ID.RA-03": "Internal and external threats to the organization are identified and recorded",
    "ID.RA-05": "Threats, vulnerabilities, likelihoods, and impacts are used to understand inherent risk and inform "
                "risk response prioritization",
    "ID.RA-08": "Processes for receiving, analyzing, and responding to vulnerability disclosures are established",
    "ID.IM-03": "Improvements are identified from execution of operational processes, procedures, and activities",
    "PR.AA-01": "Identities and credentials for authorized users, services, and hardware are managed by the organization",
    "PR.AA-03": "Users, services, and hardware are authenticated",
    "PR.AA-05": "Access permissions, entitlements, and authorizations are defined in a policy, managed, enforced, and "
                "reviewed, and incorporate the principles of least privilege and separation of duties",
    "PR.DS-01": "The confidentiality, integrity, and availability of data-at-rest are protected",
    "PR.DS-02": "The confidentiality, integrity, and availability of data-in-transit are protected",
    "PR.PS-01": "Configuration management practices are established and applied",
    "PR.PS-02": "Software is maintained, replaced, and removed commensurate with risk",
    "PR.PS-04": "Log records are generated and made available for continuous monitoring",
    "PR.PS-05": "Installation and execution of unauthorized software are prevented",
    "PR.IR-01": "Networks and environments are protected from unauthorized logical access and usage",
    "PR.IR-04": "Adequate resource capacity to ensure availability is maintained",
    "DE.CM-01": "Networks and network services are monitored to find potentially adverse events",
    "DE.CM-03": "Personnel activity and technology usage are monitored to find potentially adverse events",
    "DE.CM-06": "External service provider activities and services are monitored to find potentially adverse events",
    "DE.CM-09": "Computing hardware and software, runtime environments, and their data are monitored to find "
                "potentially adverse events",
    "DE.AE-02": "Potentially adverse events are analyzed to better understand associated activities",
    "DE.AE-03": "Information is correlated from multiple sources",
    "DE.AE-04": "The estimated impact and scope of adverse events are understood",
    "DE.AE-06": "Information on adverse events is provided to authorized staff and tools",
    "DE.AE-07": "Cyber threat intelligence and other contextual information are integrated into the analysis",
    "DE.AE-08": "Incidents are declared when adverse events meet the defined incident criteria",
    "RS.MA-01": "The incident response plan is executed in coordination with relevant third parties once an incident "
                "is declared",
    "RS.MA-02": "Incident reports are triaged and validated",
    "RS.MA-03": "Incidents are categorized and prioritized",
    "RS.MA-04": "Incidents are escalated or elevated as needed",
    "RS.AN-03": "Analysis is performed to establish what has taken place during an incident and the root cause of the "
                "incident",
    "RS.AN-06": "Actions performed during an investigation are recorded, and the records' integrity and provenance "
                "are preserved",
    "RS.AN-07": "Incident data and metadata are collected, and their integrity and provenance are preserved",
    "RS.AN-08": "An incident's magnitude is estimated and validated",
    "RS.CO-02": "Internal and external stakeholders are notified of incidents",
    "RS.MI-01": "Incidents are contained",
    "RS.MI-02": "Incidents are eradicated",
    "RC.RP-01": "The recovery portion of the incident response plan is executed once initiated from the incident "
                "response process",
}


def test_csf_statements_are_the_final_csf_2_0_wording():
    """ID.IM-03 held the draft's 'Improvements to organizational cybersecurity risk management processes, procedures
    and activities are identified across all CSF Functions', shown as the control evidenced by lessons learned."""
    stated = json.loads(DATA.joinpath("nist-csf-2.0.json").read_text())["statements"]
    assert stated == CSF_2_0_STATEMENTS
    csf = framework("nist-csf-2.0")
    for rule in event_rules():
        for cid in rule.controls.get("nist-csf-2.0", ()):
            assert csf.controls[cid] == CSF_2_0_STATEMENTS[cid], cid     # every evidenced control shows its statement
