"""The compliance tracker against a recount built straight from the data files (JSON + TSV read here,
rules applied by this file's own code), over random wild corpora with hostile values; the tables against
the event schemas; hostile framework ids."""
from __future__ import annotations

import copy
import csv
import json
import random
import re
import sys
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))          # tests/ for strategies
from strategies import event_dicts  # noqa: E402

import dataset  # noqa: E402
from wia_security import schemas  # noqa: E402
from wia_security.attack import table  # noqa: E402
from wia_security.compliance import (ComplianceTracker, UnknownFrameworkError, controls_for, framework, in_scope,  # noqa: E402
                                     technique_controls)
from wia_security.compliance.tables import Rule  # noqa: E402
from wia_security.validation.nodes import load_node  # noqa: E402

DATA = resources.files("wia_security.compliance").joinpath("data")
FRAMEWORKS = ("nist-csf-2.0", "nist-sp800-53r5", "cis-v8", "iso27001-2022")


def _json(name: str) -> Any:
    return json.loads(DATA.joinpath(name).read_text("utf-8"))


RULES = _json("event-type-controls.json")["rules"]
TACTICS = _json("attack-tactic-controls.json")["tactics"]


def _sp800_53_ids() -> list[str]:
    raw = _json("nist-sp800-53r5.json")
    return [f"{fam}-{n}" for fam, info in raw["families"].items() for n in range(1, info["last"] + 1)
            if n not in info["withdrawn"]]


def _ctid() -> dict[str, set[str]]:
    techniques = [t.id for t in table() if t.status != "revoked"]
    controls = _sp800_53_ids()
    out: dict[str, set[str]] = defaultdict(set)
    lines = [x for x in DATA.joinpath("attack-to-nist-sp800-53r5.ctid.tsv").read_text("utf-8").splitlines()
             if x and not x.startswith("#")]
    for row in csv.DictReader(lines, delimiter="\t"):
        mapped = {c for c in controls if re.fullmatch(row["controls"], c)}
        for t in techniques:
            if re.fullmatch(row["technique"], t):
                out[t] |= mapped
    return out


CTID = _ctid()


def _get(event: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        event = event.get(part) if isinstance(event, dict) else None
    return event


def _rule_hits(event: dict) -> list[dict]:
    hits = []
    for rule in RULES:
        ok = True
        for key, want in rule["when"].items():
            value = event.get("type") if key == "type" else _get(event, want if key == "has" else key.removesuffix("[]"))
            if key == "type":
                ok = value == want
            elif key == "has":
                ok = value not in (None, "", [], {})
            elif key.endswith("[]"):          # some object of the array has every field at one of its values
                ok = isinstance(value, list) and any(
                    isinstance(item, dict) and all(any(type(item.get(f)) is type(w) and item.get(f) == w for w in ws)
                                                   for f, ws in want.items()) for item in value)
            else:
                ok = any(type(value) is type(w) and value == w for w in want)
            if not ok:
                break
        if ok:
            hits.append(rule)
    return hits


def _techniques(event: dict) -> set[str]:
    out = set()
    m = event.get("mitre")
    if isinstance(m, dict):                 # ids as ATT&CK spells them: blanks around dropped (a trailing "\n" is valid)
        usable = [t.strip() for t in (m.get("sub_technique"), m.get("technique")) if isinstance(t, str) and t.strip()]
        if usable:
            out.add(usable[0].upper())
    ttps = _get(event, "data.ttps") if event.get("type") == "threat_intel" else None
    for ttp in ttps if isinstance(ttps, list) else []:
        if isinstance(ttp, dict) and isinstance(ttp.get("technique"), str) and ttp["technique"].strip():
            out.add(ttp["technique"].strip().upper())
    return out


def _tactics(event: dict) -> set[str]:
    out = set()
    m = event.get("mitre")
    if isinstance(m, dict) and isinstance(m.get("tactic"), str) and m["tactic"].strip():
        out.add(m["tactic"].strip().upper())
    ttps = _get(event, "data.ttps") if event.get("type") == "threat_intel" else None
    for ttp in ttps if isinstance(ttps, list) else []:
        if isinstance(ttp, dict) and isinstance(ttp.get("tactic"), str) and ttp["tactic"].strip():
            out.add(ttp["tactic"].strip().upper())
    if not out:
        for t in _techniques(event):
            if table().technique(t) is not None:
                out |= set(table().technique(t).tactic_ids)
    return out


def expected_evidence(event: dict, fid: str) -> set[str]:
    """docs/compliance.md: only an event-type rule evidences a control."""
    return {c for rule in _rule_hits(event) for c in rule["controls"].get(fid, [])}


def expected_technique_controls(event: dict, fid: str) -> set[str]:
    """docs/compliance.md, "How an event maps to controls" 2., applied literally: the controls an event's
    ATT&CK techniques/tactics make relevant (whether or not a rule also evidences them)."""
    ids: set[str] = set()
    if event.get("type") == "threat_intel":        # intel's ATT&CK ids describe the threat: type rules only
        return ids
    if event.get("type") == "alert" and _get(event, "data.status") == "false_positive":    # it did not happen
        return ids
    techniques, tactics = _techniques(event), _tactics(event)
    missing_ctid = not techniques
    if fid == "nist-sp800-53r5":
        for t in techniques:
            rows = CTID.get(t) or CTID.get(t.split(".")[0])
            ids |= rows or set()
            missing_ctid |= not rows
    if fid != "nist-sp800-53r5" or missing_ctid:
        for tactic in tactics:
            ids |= set(TACTICS.get(tactic, {}).get(fid, []))
    return ids


def expected_controls(event: dict, fid: str) -> set[str]:
    """Every control the event maps to either way (what `controls_for` returns)."""
    return expected_evidence(event, fid) | expected_technique_controls(event, fid)


def open_finding(event: dict) -> bool:
    sev = event.get("severity")
    if isinstance(sev, bool) or not isinstance(sev, (int, float)) or not sev >= 7:
        return False
    status = _get(event, "data.status")
    return {"alert": status not in ("resolved", "false_positive", "closed"), "incident": status != "closed",
            "vulnerability": True}.get(event.get("type"), False)


def scope(fid: str) -> set[str]:
    """The coverage denominator: the controls event-type rules can evidence."""
    return {c for rule in RULES for c in rule["controls"].get(fid, [])}


def technique_scope(fid: str) -> set[str]:
    ids = {c for row in TACTICS.values() for c in row.get(fid, [])}
    if fid == "nist-sp800-53r5":
        ids |= {c for cs in CTID.values() for c in cs}
    return ids


def _count(into: dict[str, dict[str, Any]], cid: str, e: dict, sev: float, count: str, listed: str) -> dict[str, Any]:
    c = into.setdefault(cid, {count: 0, listed: [], "open_findings": 0, "max_severity": 0.0})
    c[count] += 1
    if len(c[listed]) < 25:
        c[listed].append(str(e.get("id")))
    c["open_findings"] += open_finding(e)
    c["max_severity"] = max(c["max_severity"], sev)
    return c


def recount(events: list[dict], fid: str) -> dict[str, Any]:
    evidence: dict[str, dict[str, Any]] = {}
    relevant: dict[str, dict[str, Any]] = {}
    for e in events:
        sev = e.get("severity")
        sev = float(sev) if isinstance(sev, (int, float)) and not isinstance(sev, bool) and sev == sev \
            and abs(sev) != float("inf") else 0.0
        ruled = expected_evidence(e, fid)
        for cid in ruled:
            _count(evidence, cid, e, sev, "evidence_count", "evidence")
        for cid in expected_technique_controls(e, fid) - ruled:
            c = _count(relevant, cid, e, sev, "event_count", "events")
            c.setdefault("techniques", set()).update(t for t in _techniques(e) if table().technique(t) is not None)
    relevant = {k: {**v, "techniques": sorted(v["techniques"])} for k, v in relevant.items() if k not in evidence}
    in_scope_ids = scope(fid)
    evidenced = {k: v for k, v in evidence.items() if k in in_scope_ids}
    attention = sum(1 for v in evidenced.values() if v["open_findings"])
    return {"controls_in_scope": len(in_scope_ids), "controls_evidenced": len(evidenced), "controls_attention": attention,
            "coverage_percent": round(100 * len(evidenced) / len(in_scope_ids), 1),
            "score_percent": round(100 * (len(evidenced) - attention) / len(in_scope_ids), 1),
            "controls": {k: {**v, "status": "attention" if v["open_findings"] else "evidenced"}
                         for k, v in evidenced.items()},
            "gaps": [c for c in framework(fid).controls if c in in_scope_ids - set(evidenced)],   # catalogue order
            "controls_relevant": len(relevant), "relevant": relevant}


def hostile(events: list[dict], rnd: random.Random) -> list[dict]:
    attack_ids = ["T1059.001", "T1659", "t1110.003", "T1547.011", "T9999", "T1078.004", "", "TA0006", "__proto__"]
    out = []
    for e in events:
        e = copy.deepcopy(e)
        if rnd.random() < 0.2:
            e["mitre"] = {"tactic": rnd.choice(["TA0006", "ta0002", "TA9999", "", None, "constructor"]),
                          "technique": rnd.choice(attack_ids)}
        if rnd.random() < 0.1:
            e["severity"] = rnd.choice([None, True, 7, 7.0, 6.999, 10, float("nan"), float("inf"), "9"])
        if rnd.random() < 0.1 and isinstance(e.get("data"), dict):
            e["data"]["status"] = rnd.choice(["closed", "resolved", 1, True, None, "CLOSED", "new"])
        if rnd.random() < 0.05 and isinstance(e.get("data"), dict):
            e["data"]["patch_available"] = rnd.choice([True, 1, "true", None])
        if rnd.random() < 0.05 and isinstance(e.get("data"), dict) and e.get("type") == "threat_intel":
            e["data"]["ttps"] = [{"technique": rnd.choice(attack_ids)}, {"tactic": "TA0040"}, None, "T1486"]
        out.append(e)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tracker_matches_a_recount_from_the_data_files(seed):
    events = hostile(event_dicts(700, seed=seed, wild=True), random.Random(seed)) + dataset.week()[:150]
    report = ComplianceTracker().add_all(events).report()
    assert report["events"] == len(events)
    for fw in report["frameworks"]:
        want = recount(events, fw["id"])
        got_controls = {c["id"]: {k: c[k] for k in ("evidence_count", "evidence", "open_findings", "max_severity", "status")}
                        for c in fw["controls"]}
        assert got_controls == want.pop("controls")
        got_relevant = {c["id"]: {k: c[k] for k in ("event_count", "events", "open_findings", "max_severity", "techniques")}
                        for c in fw["relevant"]}
        assert got_relevant == want.pop("relevant")
        assert not set(got_relevant) & set(got_controls)              # relevant means: not evidenced
        assert all(c["via"] and not any(v.startswith("event:") for v in c["via"]) for c in fw["relevant"])
        assert all(v.startswith("event:") for c in fw["controls"] for v in c["via"])
        for key, value in want.items():
            assert fw[key] == value, (fw["id"], key)
        catalogue = list(framework(fw["id"]).controls)                 # ties in the framework's own order
        assert [c["id"] for c in fw["controls"]] == sorted(got_controls, key=lambda k: (-got_controls[k]["evidence_count"],
                                                                                       catalogue.index(k)))
        assert [c["id"] for c in fw["relevant"]] == sorted(got_relevant, key=lambda k: (-got_relevant[k]["event_count"],
                                                                                       catalogue.index(k)))


def test_a_technique_without_a_ctid_row_still_maps_through_its_tactic():
    """T1659 (Content Injection) is newer than CTID's ATT&CK v10.1: SP 800-53 takes the tactic's controls."""
    newer = {"type": "alert", "id": "x", "mitre": {"tactic": "TA0001", "technique": "T1659"}, "data": {}}
    reasons = {r for rs in controls_for(newer, "nist-sp800-53r5").values() for r in rs}
    assert "tactic:TA0001" in reasons and not any(r.startswith("technique:") for r in reasons)
    assert set(controls_for(newer, "nist-sp800-53r5")) == expected_controls(newer, "nist-sp800-53r5")


def test_threat_intel_maps_by_its_type_rule_only():
    intel = {"type": "threat_intel", "id": "x", "mitre": {"tactic": "TA0006", "technique": "T1110.003"},
             "data": {"ttps": [{"tactic": "TA0002", "technique": "T1059.001"}, {"tactic": "TA0001", "technique": "T1659"}]}}
    for fid in FRAMEWORKS:
        got = controls_for(intel, fid)
        assert set(got) == expected_controls(intel, fid) == {c for r in RULES if r["when"] == {"type": "threat_intel"}
                                                             for c in r["controls"].get(fid, [])}


def test_an_integer_is_not_the_boolean_a_rule_asks_for():
    rule = Rule({"type": "vulnerability", "data.exploit_available": [True]}, {"cis-v8": ("7.1",)}, "test rule")
    assert rule.matches({"type": "vulnerability", "data": {"exploit_available": True}})
    assert not rule.matches({"type": "vulnerability", "data": {"exploit_available": 1}})
    assert not rule.matches({"type": "vulnerability", "data": {"exploit_available": 1.0}})


@pytest.mark.parametrize("bad", ["sox", "", "NIST-CSF-2.0", "../../etc/passwd", "\x1b[2J", "__proto__", None, 7,
                                 ["cis-v8"]])
def test_hostile_framework_ids_get_a_clear_error_everywhere(bad):
    for call in (lambda: ComplianceTracker([bad]), lambda: framework(bad), lambda: in_scope(bad),
                 lambda: technique_controls(bad), lambda: controls_for({"type": "alert"}, bad)):
        with pytest.raises(UnknownFrameworkError) as info:
            call()
        assert isinstance(info.value, KeyError) and info.value.args[0] == bad
        assert str(info.value) == f"unknown framework {bad!r}; known: nist-csf-2.0, nist-sp800-53r5, cis-v8, iso27001-2022"


def test_a_repeated_framework_is_reported_once():
    report = ComplianceTracker(["cis-v8", "cis-v8"]).add_all(dataset.week()[:10]).report()
    assert [f["id"] for f in report["frameworks"]] == ["cis-v8"]


def _schema_node(event_type: str, dotted: str) -> list:
    """The schema nodes at a dotted path of an event type (allOf parts merged), [] when the path is unknown."""
    def parts(node):
        out = [node]
        for sub in node.all_of:
            out += parts(sub)
        return out
    nodes = parts(load_node(schemas.schema_uri(event_type)))
    for name in dotted.split("."):
        nodes = [p for n in nodes if name in n.properties for p in parts(n.properties[name])]
    return nodes


def test_every_rule_names_fields_and_values_the_schemas_define():
    """A misspelt field or enum value in event-type-controls.json would silently never match."""
    for rule in RULES:
        when = rule["when"]
        assert when["type"] in schemas.EVENT_TYPES
        for key, want in when.items():
            if key == "type":
                continue
            path = want if key == "has" else key.removesuffix("[]")
            nodes = _schema_node(when["type"], path)
            assert nodes, f"{when['type']}: {path} is not in the schema"
            if key == "has":
                continue
            if key.endswith("[]"):            # {field: values} of the array's items
                items = [n.items for n in nodes if n.items is not None]
                assert items, f"{when['type']}: {path} is not an array"
                for name, values in want.items():
                    fields = [p for item in items if name in item.properties for p in [item.properties[name]]]
                    assert fields, f"{when['type']}: {path}[].{name} is not in the schema"
                    _check_values(when["type"], f"{key}.{name}", fields, values)
                continue
            _check_values(when["type"], key, nodes, want)


def _check_values(event_type: str, key: str, nodes: list, want: list) -> None:
    enum = next((n.enum for n in nodes if n.enum is not None), None)
    types = next((n.types for n in nodes if n.types), None)
    for value in want:
        if enum is not None:
            assert value in enum, f"{event_type}: {key}={value!r} is not one of {enum}"
        else:
            assert types == ("boolean",) and isinstance(value, bool), (key, value, types)


def test_every_control_in_every_rule_and_tactic_row_exists_and_every_tactic_is_real():
    for fid in FRAMEWORKS:
        known = framework(fid).controls
        assert scope(fid) | technique_scope(fid) <= set(known), (fid, (scope(fid) | technique_scope(fid)) - set(known))
        assert in_scope(fid) == scope(fid)
        assert technique_controls(fid) == technique_scope(fid)
    for tactic_id, row in TACTICS.items():
        assert table().tactic(tactic_id) is not None and table().tactic(tactic_id).name == row["name"]
    assert set(TACTICS) == {t.id for t in table().tactics}
