"""Compliance tracker: which framework controls the events in a window evidence, with the events listed.

An event **evidences** a control only when an event-type rule matches it (`data/event-type-controls.json`):
the rule says what the event shows operating. An ATT&CK technique the event carries makes the controls
that mitigate it (CTID table for SP 800-53; the tactic table for the other frameworks, and for 800-53
techniques the CTID table lacks) **relevant**, not evidenced: seeing T1486 shows backups matter here, not
that they are taken. Relevant controls are reported apart, with their techniques and events, and never
count towards coverage or score. Threat intel and false-positive alerts map by their type rules only.
Definitions of coverage, score and "open finding" are in `docs/compliance.md`; standard library only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..attack import table as attack_table
from ..dashboard.aggregator import event_techniques, finite_number, named_tactics
from . import tables

#: At most this many evidence event ids are listed per control (the count is always exact).
EVIDENCE_LIST_LIMIT = 25
#: Severity at or above which an unresolved event is an open finding (the critical band starts at 7).
FINDING_SEVERITY = 7.0
#: data.status values that mean an alert or incident no longer needs action.
CLOSED_STATUSES = {"alert": {"resolved", "false_positive", "closed"}, "incident": {"closed"}}
#: Event types whose ATT&CK ids describe a threat, not activity observed here: mapped by type rule only.
INTEL_TYPES = frozenset({"threat_intel"})
#: Reasons starting with this come from an event-type rule (`Rule.label`): the only ones that evidence.
RULE_REASON = "event:"


def is_open_finding(event: dict[str, Any]) -> bool:
    """Severity >= 7 and not resolved: alerts/incidents by data.status; vulnerabilities always (no fix state)."""
    severity = event.get("severity")
    if isinstance(severity, bool) or not isinstance(severity, (int, float)) or not severity >= FINDING_SEVERITY:
        return False
    etype = event.get("type")
    status = (event.get("data") or {}).get("status") if isinstance(event.get("data"), dict) else None
    if etype in CLOSED_STATUSES:             # only a closing status string closes (a list is not even hashable)
        return not (isinstance(status, str) and status in CLOSED_STATUSES[etype])
    return etype == "vulnerability"


@dataclass
class ControlEvidence:
    evidence_count: int = 0
    evidence: list[str] = field(default_factory=list)
    open_findings: int = 0
    max_severity: float = 0.0
    via: set[str] = field(default_factory=set)
    techniques: set[str] = field(default_factory=set)     # the events' ATT&CK ids (kept for relevant controls)

    def add(self, event_id: str, severity: float, reasons: Iterable[str], open_finding: bool,
            techniques: Iterable[str] = ()) -> None:
        self.evidence_count += 1
        if len(self.evidence) < EVIDENCE_LIST_LIMIT:
            self.evidence.append(event_id)
        self.open_findings += open_finding
        if severity > self.max_severity:
            self.max_severity = severity
        self.via.update(reasons)
        self.techniques.update(techniques)


def _false_positive(event: dict[str, Any]) -> bool:
    data = event.get("data")
    return event.get("type") == "alert" and isinstance(data, dict) and data.get("status") == "false_positive"


def controls_for(event: dict[str, Any], framework_id: str) -> dict[str, set[str]]:
    """Control id -> reasons for one event: rule labels ("event:...", which evidence the control) and
    "technique:T1110 (CTID)" / "tactic:TA0006" (which make it relevant only)."""
    return event_controls(event, (tables.check_framework(framework_id),))[framework_id]


def event_controls(event: dict[str, Any], framework_ids: Sequence[str]) -> dict[str, dict[str, set[str]]]:
    """`controls_for` for several frameworks at once (the event's techniques and tactics are resolved once)."""
    found: dict[str, dict[str, set[str]]] = {fid: {} for fid in framework_ids}

    def put(fid: str, ids: Iterable[str], reason: str) -> None:
        for cid in ids:
            found[fid].setdefault(cid, set()).add(reason)

    for rule in tables.rules_for_type(event.get("type")):
        if rule.matches(event):
            for fid in framework_ids:
                put(fid, rule.controls.get(fid, ()), rule.label())
    if event.get("type") in INTEL_TYPES or _false_positive(event):
        # Intel names an adversary's techniques as seen elsewhere, and a false positive says the technique
        # did not happen: neither shows the controls that mitigate it operating here (one intel report
        # listing 300 techniques gave SP 800-53 89.5% coverage). Their type rules stand.
        return found
    techniques = event_techniques(event)
    tactics = named_tactics(event)
    if not tactics:                          # the event names none: every tactic of its techniques
        attack = attack_table()
        for tech in techniques:
            found_tech = attack.technique(tech)
            if found_tech is not None:
                tactics.update(found_tech.tactic_ids)
    tactic_map = tables.tactic_controls()
    ctid = tables.ctid_table().by_technique
    for fid in framework_ids:
        uncovered = True
        if fid == "nist-sp800-53r5":
            # CTID rows per technique; the event's tactics add theirs when some technique has no row.
            uncovered = not techniques
            for tech in sorted(techniques):
                controls = ctid.get(tech) or ctid.get(tech.split(".")[0])
                if controls:
                    put(fid, controls, f"technique:{tech} (CTID)")
                else:
                    uncovered = True
        if uncovered:
            for tactic in sorted(tactics):
                put(fid, tactic_map.get(tactic, {}).get(fid, ()), f"tactic:{tactic}")
    return found


class ComplianceTracker:
    """Feed events with `add`/`add_all`, then `report()` -> per-framework coverage, score and evidence."""

    def __init__(self, frameworks: Sequence[str] | None = None) -> None:
        ids = list(frameworks) if frameworks else list(tables.FRAMEWORK_IDS)
        for fid in ids:
            tables.check_framework(fid)          # UnknownFrameworkError (a KeyError) naming it
        self.framework_ids = list(dict.fromkeys(ids))   # --framework x --framework x: once
        self.events = 0
        self._evidence: dict[str, dict[str, ControlEvidence]] = {fid: {} for fid in ids}   # by event-type rules
        self._relevant: dict[str, dict[str, ControlEvidence]] = {fid: {} for fid in ids}   # by technique/tactic

    def add(self, event: dict[str, Any]) -> None:
        self.events += 1
        open_finding = is_open_finding(event)
        event_id = str(event.get("id"))
        severity = finite_number(event.get("severity")) or 0.0
        techniques: set[str] | None = None
        for fid, controls in event_controls(event, self.framework_ids).items():
            for cid, reasons in controls.items():
                rules = {r for r in reasons if r.startswith(RULE_REASON)}
                if rules:
                    target, kept = self._evidence[fid], rules
                    found: Iterable[str] = ()
                else:
                    if techniques is None:          # known ids only: bounded, and no hostile text kept
                        attack = attack_table()
                        techniques = {t for t in event_techniques(event) if attack.technique(t) is not None}
                    target, kept, found = self._relevant[fid], reasons, techniques
                entry = target.get(cid)
                if entry is None:
                    entry = target[cid] = ControlEvidence()
                entry.add(event_id, severity, kept, open_finding, found)

    def add_all(self, events: Iterable[dict[str, Any]]) -> "ComplianceTracker":
        for event in events:
            self.add(event)
        return self

    def framework_report(self, fid: str) -> dict[str, Any]:
        fw = tables.framework(fid)
        scope = tables.in_scope(fid)
        evidence = self._evidence[fid]
        evidenced = [cid for cid in evidence if cid in scope]
        attention = [cid for cid in evidenced if evidence[cid].open_findings]
        denominator = len(scope) or 1
        gaps = _in_framework_order(scope - set(evidenced), fw.controls)
        reasons = tables.rule_reasons()         # each rule's own words: why its events evidence the control
        controls = []
        order = _catalogue_order(fw.controls)
        for cid in sorted(evidenced, key=lambda c: (-evidence[c].evidence_count, order(c))):
            e = evidence[cid]
            controls.append({"id": cid, "title": fw.controls.get(cid),
                             "status": "attention" if e.open_findings else "evidenced",
                             "evidence_count": e.evidence_count, "open_findings": e.open_findings,
                             "max_severity": e.max_severity, "evidence": e.evidence, "via": sorted(e.via),
                             "why": [reasons[label] for label in sorted(e.via)]})
        return {
            "id": fid, "name": fw.name, "version": fw.version, "source": fw.source.get("url"),
            "controls_total": len(fw.controls), "controls_in_scope": len(scope),
            "controls_evidenced": len(evidenced), "controls_attention": len(attention),
            "coverage_percent": round(100 * len(evidenced) / denominator, 1),
            "score_percent": round(100 * (len(evidenced) - len(attention)) / denominator, 1),
            "controls": controls,
            "gaps": gaps,
            # The gaps again with their titles, for the page and --controls: a control event data could evidence
            # and nothing did is shown as such, not left out of the list (the percentages alone do not name it).
            "no_evidence": [{"id": cid, "title": fw.controls.get(cid), "status": "no evidence"} for cid in gaps],
            **self._relevant_report(fid, set(evidenced)),
        }

    def _relevant_report(self, fid: str, evidenced: set[str]) -> dict[str, Any]:
        """Controls that address an ATT&CK technique seen in the window and that no event-type rule evidenced."""
        fw = tables.framework(fid)
        relevant = {cid: e for cid, e in self._relevant[fid].items() if cid not in evidenced}
        rows = [{"id": cid, "title": fw.controls.get(cid), "event_count": e.evidence_count, "events": e.evidence,
                 "open_findings": e.open_findings, "max_severity": e.max_severity,
                 "techniques": sorted(e.techniques), "via": sorted(e.via)}
                for cid, e in sorted(relevant.items(),
                                     key=lambda item: (-item[1].evidence_count, _catalogue_order(fw.controls)(item[0])))]
        return {"controls_relevant": len(rows), "relevant": rows}

    def report(self) -> dict[str, Any]:
        ctid = tables.ctid_table()
        return {
            "events": self.events,
            "method": "a control is evidenced only by an event-type rule; in scope = the controls those rules can "
                      "evidence; coverage = evidenced in-scope controls / in-scope controls; "
                      "score = evidenced controls without open findings / in-scope controls; "
                      f"open finding = severity >= {FINDING_SEVERITY:g} and not resolved; relevant = a control that "
                      "addresses an ATT&CK technique seen (CTID or tactic table) and no rule evidenced: listed with its "
                      "techniques and events, never counted in coverage or score (see docs/compliance.md)",
            "mapping_sources": {
                "event_types": "wia-security project judgement (core/compliance/data/event-type-controls.json)",
                "attack_tactics": "wia-security project judgement (core/compliance/data/attack-tactic-controls.json)",
                "attack_to_sp800_53": f"CTID Mappings Explorer, ATT&CK v10.1 -> SP 800-53 Rev. 5 ({ctid.rows} rows, "
                                      f"{len(ctid.by_technique)} ATT&CK v{attack_table().version} techniques)",
            },
            "frameworks": [self.framework_report(fid) for fid in self.framework_ids],
        }


def _catalogue_order(controls: dict[str, Any]) -> Any:
    """A sort key putting control ids in the framework's own order (AU-6 before AU-12, ID before DE in CSF),
    ids the catalogue does not list after them by text: ties in a count list as the catalogue does."""
    index = {cid: i for i, cid in enumerate(controls)}
    return lambda cid: (index.get(cid, len(index)), cid)


def _in_framework_order(ids: set[str], controls: dict[str, Any]) -> list[str]:
    """The ids in the framework's own order (AC-2 before AC-10, as the catalogue lists them; sorting the text
    put AC-10 first); any the catalogue does not list last, sorted."""
    return [cid for cid in controls if cid in ids] + sorted(ids - controls.keys())
