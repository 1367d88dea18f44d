"""ComplianceTracker: controls evidenced per event type, relevant per ATT&CK technique, coverage/score, evidence events."""
from __future__ import annotations

import dataset
from wia_security.attack import table as attack_table
from wia_security.builders import AlertBuilder, AuthEventBuilder, IncidentBuilder, ThreatIntelBuilder, VulnerabilityBuilder
from wia_security.compliance import ComplianceTracker, controls_for, event_rules, framework, in_scope, is_open_finding


def _fw(report, fid):
    return next(f for f in report["frameworks"] if f["id"] == fid)


def test_auth_failure_maps_per_event_type():
    e = (AuthEventBuilder().kind("login_failure").result("failure").account("alice").target("application", "VPN")
         .build().to_dict())
    sp = controls_for(e, "nist-sp800-53r5")
    assert {"AC-7", "IA-2", "AU-12"} <= set(sp)
    assert sp["AC-7"] == {"event:auth_event data.event_type=login_failure|account_locked"}
    assert "A.5.17" in controls_for(e, "iso27001-2022")
    assert "8.2" in controls_for(e, "cis-v8")
    assert {"PR.AA-03", "DE.CM-03"} <= set(controls_for(e, "nist-csf-2.0"))


def test_technique_maps_through_ctid_for_800_53_and_tactic_for_others():
    e = AlertBuilder().title("brute force").mitre("T1110.003").build().to_dict()
    sp = controls_for(e, "nist-sp800-53r5")
    assert "technique:T1110.003 (CTID)" in sp["AC-7"]
    assert not any(r.startswith("tactic:") for reasons in sp.values() for r in reasons)
    cis = controls_for(e, "cis-v8")
    assert cis["5.2"] == {"tactic:TA0006"}                                   # Credential Access
    # a technique CTID has no row for falls back to its tactic for 800-53 too
    e2 = AlertBuilder().title("x").mitre("T1659").build().to_dict()         # Content Injection (after v10.1)
    assert any(r.startswith("tactic:") for reasons in controls_for(e2, "nist-sp800-53r5").values() for r in reasons)


def test_open_findings_definition():
    assert is_open_finding(AlertBuilder().title("x").severity(8).status("new").build().to_dict())
    assert not is_open_finding(AlertBuilder().title("x").severity(8).status("false_positive").build().to_dict())
    assert not is_open_finding(AlertBuilder().title("x").severity(6.9).build().to_dict())
    assert is_open_finding(IncidentBuilder().title("x").severity(9).status("containing").build().to_dict())
    assert not is_open_finding(IncidentBuilder().title("x").severity(9).status("closed").build().to_dict())
    assert is_open_finding(VulnerabilityBuilder().cve("CVE-2025-10001").title("x").cvss(9.8).severity(9.8).build().to_dict())


def test_report_coverage_score_and_evidence():
    events = dataset.week()
    report = ComplianceTracker().add_all(events).report()
    assert report["events"] == len(events)
    for fw in report["frameworks"]:
        scope = in_scope(fw["id"])
        assert fw["controls_in_scope"] == len(scope)
        assert fw["controls_evidenced"] == len(fw["controls"])
        assert set(fw["gaps"]) == scope - {c["id"] for c in fw["controls"]}
        assert fw["coverage_percent"] == round(100 * fw["controls_evidenced"] / len(scope), 1)
        attention = sum(1 for c in fw["controls"] if c["open_findings"])
        assert fw["controls_attention"] == attention
        assert fw["score_percent"] == round(100 * (fw["controls_evidenced"] - attention) / len(scope), 1)
        for c in fw["controls"]:
            assert c["status"] == ("attention" if c["open_findings"] else "evidenced")
            assert len(c["evidence"]) == min(25, c["evidence_count"]) and c["via"]
    # recount one control independently: AC-7 evidence = auth failures/lockouts (its event-type rule) only;
    # alerts whose technique CTID maps to AC-7 make it relevant, and it is evidenced, so it is not listed there
    sp = _fw(report, "nist-sp800-53r5")
    ac7 = next(c for c in sp["controls"] if c["id"] == "AC-7")
    expected = [e for e in events if any(r.startswith("event:") for r in controls_for(e, "nist-sp800-53r5").get("AC-7", ()))]
    assert len(expected) < sum("AC-7" in controls_for(e, "nist-sp800-53r5") for e in events)
    assert "AC-7" not in {c["id"] for c in sp["relevant"]}
    assert ac7["evidence_count"] == len(expected) > 0
    assert set(ac7["evidence"]) <= {e["id"] for e in expected}
    assert ac7["open_findings"] == sum(is_open_finding(e) for e in expected)


def test_only_selected_frameworks_and_unknown_ones_refused():
    report = ComplianceTracker(["iso27001-2022"]).add_all(dataset.week()[:20]).report()
    assert [f["id"] for f in report["frameworks"]] == ["iso27001-2022"]
    try:
        ComplianceTracker(["sox"])
    except KeyError as exc:
        assert exc.args[0] == "sox"
    else:
        raise AssertionError("unknown framework accepted")


def _intel(ttps, mitre=None):
    b = ThreatIntelBuilder().threat("APT29 phishing wave", "apt").severity(5)
    for technique in ttps:
        b.ttp(technique)
    e = b.build().to_dict()
    if mitre:
        e["mitre"] = mitre
    return e


def test_threat_intel_techniques_evidence_no_control_here():
    """A threat-intel report describes an adversary's techniques as seen elsewhere: it shows threat awareness
    (its event-type rule), not any control operating in this environment. One report listing 300 techniques
    used to give SP 800-53 89.5% coverage."""
    active = [t.id for t in attack_table() if t.status == "active"][:300]
    intel = _intel(active, mitre={"tactic": "TA0001", "technique": "T1566"})
    awareness = {"nist-csf-2.0": {"ID.RA-02", "ID.RA-03", "DE.AE-07"}, "nist-sp800-53r5": {"PM-16", "SI-5", "RA-3"},
                 "cis-v8": set(), "iso27001-2022": {"A.5.7"}}
    for fid, want in awareness.items():
        got = controls_for(intel, fid)
        assert set(got) == want, fid
        assert all(r == {"event:threat_intel"} for r in got.values())
    sp = _fw(ComplianceTracker().add_all([intel]).report(), "nist-sp800-53r5")
    assert sp["controls_evidenced"] == 3
    # the same technique observed in an alert still maps (CTID for 800-53, tactic for the others)
    alert = AlertBuilder().title("phishing").mitre("T1566.001").build().to_dict()
    assert any(r.startswith("technique:T1566.001") for rs in controls_for(alert, "nist-sp800-53r5").values() for r in rs)


def test_a_patch_being_available_evidences_no_remediation():
    """`patch_available: true` says a vendor fix exists, not that it was applied: the vulnerability is still
    open (the schema has no remediation state, so it is an open finding). It used to evidence CIS 7.7
    'Remediate Detected Vulnerabilities', 7.2, SP 800-53 SI-2 'Flaw Remediation' and CSF PR.PS-02."""
    vuln = (VulnerabilityBuilder().cve("CVE-2025-10001").title("RCE").cvss(9.8).severity(9.8)
            .patch(fixed_versions=["2.0.1"]).build().to_dict())
    assert is_open_finding(vuln)
    claimed = {"nist-csf-2.0": "PR.PS-02", "nist-sp800-53r5": "SI-2", "cis-v8": "7.7", "iso27001-2022": None}
    for fid, remediation in claimed.items():
        got = controls_for(vuln, fid)
        assert remediation not in got and (fid != "cis-v8" or "7.2" not in got), (fid, got)
        assert not any("patch_available" in r for rs in got.values() for r in rs)
    assert {"RA-5"} == set(controls_for(vuln, "nist-sp800-53r5"))      # identified and recorded: that is all


def test_a_status_of_any_json_type_is_read_not_a_crash():
    """Unvalidated events (the tracker's API takes them, as the dashboard's does): a list or object status
    raised TypeError (unhashable) in the open-finding test. Only a closing status string closes."""
    for status in (["closed"], {"closed": True}, 1, None, "closed "):
        alert = {"type": "alert", "id": "a", "severity": 9, "data": {"status": status}}
        assert is_open_finding(alert)
        report = ComplianceTracker(["nist-sp800-53r5"]).add_all([alert]).report()
        assert _fw(report, "nist-sp800-53r5")["controls_attention"] == 2     # SI-4, AU-6


def test_a_false_positive_alerts_technique_evidences_nothing():
    """A false positive says the technique did not happen: it shows the alert was triaged (its status rules),
    not the controls that mitigate the technique. One false-positive T1486 alert evidenced SP 800-53 CP-9
    (backups), CP-6, CP-7 (alternate sites) and CIS 11.1/11.3 (data recovery)."""
    fp = AlertBuilder().title("x").mitre("T1486").status("false_positive").severity(3).build().to_dict()
    for fid in ("nist-csf-2.0", "nist-sp800-53r5", "cis-v8", "iso27001-2022"):
        reasons = {r for rs in controls_for(fp, fid).values() for r in rs}
        assert reasons and all(r.startswith("event:alert") for r in reasons), (fid, reasons)
    assert {"CP-9", "CP-6", "CP-7"}.isdisjoint(controls_for(fp, "nist-sp800-53r5"))
    assert {"IR-4", "SI-4", "AU-6"} <= set(controls_for(fp, "nist-sp800-53r5"))        # triaged, monitored
    true_positive = AlertBuilder().title("x").mitre("T1486").status("resolved").severity(3).build().to_dict()
    assert "CP-9" in controls_for(true_positive, "nist-sp800-53r5")


def test_a_technique_seen_makes_controls_relevant_not_evidenced():
    """A resolved ransomware alert (T1486) shows the alert was raised and handled (its event-type rules); it
    does not show backups taken or an alternate site ready. CTID's T1486 row (CP-2/6/7/9/10, ...) made those
    controls 'evidenced' and raised coverage; they are now listed apart as relevant, with the event."""
    alert = (AlertBuilder().title("ransomware").mitre("T1486").status("resolved").severity(9)
             .build().to_dict())
    report = ComplianceTracker().add_all([alert]).report()
    sp = _fw(report, "nist-sp800-53r5")
    evidenced = {c["id"] for c in sp["controls"]}
    assert {"CP-9", "CP-6", "CP-7"}.isdisjoint(evidenced)
    assert all(v.startswith("event:alert") for c in sp["controls"] for v in c["via"])
    relevant = {c["id"]: c for c in sp["relevant"]}
    for cid in ("CP-9", "CP-6", "CP-7", "CP-2", "CP-10"):
        assert relevant[cid]["events"] == [alert["id"]] and relevant[cid]["event_count"] == 1, cid
        assert relevant[cid]["techniques"] == ["T1486"] and relevant[cid]["via"] == ["technique:T1486 (CTID)"]
    assert sp["controls_relevant"] == len(sp["relevant"]) and not set(relevant) & evidenced
    assert sp["controls_evidenced"] == len(evidenced)
    assert sp["coverage_percent"] == round(100 * len(evidenced) / len(in_scope("nist-sp800-53r5")), 1)
    cis = _fw(report, "cis-v8")                                      # data recovery: by the Impact tactic
    assert {"11.1", "11.3"} <= {c["id"] for c in cis["relevant"]} and not {"11.1", "11.3"} & {c["id"] for c in cis["controls"]}


def test_coverage_on_a_fixed_corpus_is_the_event_type_rule_number():
    """On the demo week SP 800-53 read 66.7% (76 of 114 controls), 54 of the 76 reached only through ATT&CK
    techniques. Coverage now counts the controls an event-type rule evidenced, out of those rules can evidence."""
    events = dataset.week()[:150]
    report = ComplianceTracker().add_all(events).report()
    for fw in report["frameworks"]:
        fid = fw["id"]
        rule_scope = {c for rule in event_rules() for c in rule.controls.get(fid, ())}
        ruled = {c for e in events for rule in event_rules() if rule.matches(e) for c in rule.controls.get(fid, ())}
        assert fw["controls_in_scope"] == len(rule_scope)
        assert {c["id"] for c in fw["controls"]} == ruled
        assert fw["coverage_percent"] == round(100 * len(ruled) / len(rule_scope), 1), fid
        assert fw["gaps"] == [c for c in framework(fid).controls if c in rule_scope - ruled]     # catalogue order
    sp = _fw(report, "nist-sp800-53r5")
    assert sp["controls_relevant"] > 0                        # the technique-only controls are still reported


def test_gaps_are_listed_in_the_catalogue_order():
    """In each framework's own order (AU-6 before AU-12); sorted as text, AU-12 came before AU-6."""
    report = ComplianceTracker().report()
    sp = next(fw for fw in report["frameworks"] if fw["id"] == "nist-sp800-53r5")
    assert sp["gaps"].index("AU-6") < sp["gaps"].index("AU-12")
    for fw in report["frameworks"]:
        order = list(framework(fw["id"]).controls)
        assert fw["gaps"] == sorted(fw["gaps"], key=order.index), fw["id"]


def test_controls_with_no_evidence_are_listed_as_such_with_their_titles():
    """`gaps` gave the ids only, and neither the page nor `--controls` listed them: an auditor read '28 of 29'
    without seeing which control had no evidence. `no_evidence` names each with its title, in catalogue order."""
    report = ComplianceTracker().add_all(dataset.week()).report()
    for fw in report["frameworks"]:
        titles = framework(fw["id"]).controls
        assert fw["no_evidence"] == [{"id": cid, "title": titles[cid], "status": "no evidence"} for cid in fw["gaps"]]
        assert all(titles[cid] for cid in fw["gaps"])
    assert [c["id"] for c in _fw(report, "nist-csf-2.0")["no_evidence"]] == ["RS.AN-07"]
    empty = ComplianceTracker(["cis-v8"]).report()
    assert [c["id"] for c in _fw(empty, "cis-v8")["no_evidence"]] == _fw(empty, "cis-v8")["gaps"] != []


def test_each_evidenced_control_says_why_in_its_rules_words():
    """`via` named the matching rules by their conditions ('event:alert data.status=...'); the page showed
    neither, so a reader of the HTML alone could not tell why a control counted. `why` gives each rule's own
    reason from the data file, in the order of `via`."""
    whys = {rule.label(): rule.why for rule in event_rules()}
    report = ComplianceTracker().add_all(dataset.week()).report()
    for fw in report["frameworks"]:
        for control in fw["controls"]:
            assert control["why"] == [whys[label] for label in control["via"]] and control["why"]
    sp = {c["id"]: c for c in _fw(report, "nist-sp800-53r5")["controls"]}
    assert "an alert is a monitored, analysed adverse event" in sp["SI-4"]["why"]


def test_controls_with_equal_counts_list_in_the_catalogue_order():
    """Ties were broken by the id as text: AU-12 before AU-6, CSF's DE.* before ID.*; gaps already follow the
    catalogue, and now so do the evidenced and relevant lists within one count."""
    alert = AlertBuilder().title("x").build().to_dict()                  # SI-4, AU-6 (and more)
    network = dataset.week()
    network = next(e for e in network if e["type"] == "network_event" and e["data"].get("action") not in
                   ("blocked", "dropped", "reset") and e["data"].get("event_type") not in ("dns", "http", "tls"))
    report = ComplianceTracker(["nist-sp800-53r5", "nist-csf-2.0"]).add_all([alert, network]).report()
    sp = [c["id"] for c in _fw(report, "nist-sp800-53r5")["controls"]]
    assert sp[0] == "SI-4" and sp.index("AU-6") < sp.index("AU-12")       # SI-4: 2 events; AU-6, AU-12: 1 each
    order = list(framework("nist-sp800-53r5").controls)
    counts = {c["id"]: c["evidence_count"] for c in _fw(report, "nist-sp800-53r5")["controls"]}
    assert sp == sorted(counts, key=lambda c: (-counts[c], order.index(c)))
    csf = _fw(report, "nist-csf-2.0")["controls"]
    order = list(framework("nist-csf-2.0").controls)
    assert [c["id"] for c in csf] == sorted((c["id"] for c in csf), key=lambda c: (-[x["evidence_count"] for x in csf
                                                                                     if x["id"] == c][0], order.index(c)))
    incident = IncidentBuilder().title("i").mitre("T1486").build().to_dict()
    relevant = _fw(ComplianceTracker(["nist-sp800-53r5"]).add_all([incident]).report(), "nist-sp800-53r5")["relevant"]
    ids = [c["id"] for c in relevant]                                     # one event each: the catalogue order
    assert len(ids) > 3
    assert ids == sorted(ids, key=lambda c: list(framework("nist-sp800-53r5").controls).index(c))
