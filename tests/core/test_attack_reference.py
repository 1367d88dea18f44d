"""The bundled ATT&CK table against MITRE's data, record by record (tests/reference/attack/, a copy of
../shared/reference/attack/): all 835 techniques and sub-techniques, the 14 tactics, revocations and the
raw STIX objects of the samples. Not a sample of ids: every record of the reference is walked."""
from __future__ import annotations

import importlib.util
import json
import shutil
from collections import Counter
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from refdata import ATTACK

from wia_security.attack import table

ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def reference() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    techniques = json.loads((ATTACK / "enterprise-techniques.json").read_text("utf-8"))
    tactics = json.loads((ATTACK / "enterprise-tactics.json").read_text("utf-8"))
    return techniques, tactics


def expected_status(ref: dict[str, Any]) -> str:
    return "revoked" if ref["revoked"] else "deprecated" if ref["deprecated"] else "active"


def build_script() -> Any:
    spec = importlib.util.spec_from_file_location("build_attack_table", ROOT / "scripts" / "build_attack_table.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_the_shipped_table_is_what_the_build_script_makes_from_the_reference():
    built = json.dumps(build_script().build_table(ATTACK), separators=(",", ":")) + "\n"
    shipped = resources.files("wia_security.attack").joinpath("enterprise-attack.json").read_text("utf-8")
    assert built == shipped


def test_the_version_source_and_copyright_come_from_the_reference(tmp_path):
    # they were literals in the script: a table rebuilt from a newer ATT&CK still said 18.1 and (c) 2025
    newer = tmp_path / "attack"
    shutil.copytree(ATTACK, newer)
    source = (newer / "SOURCE.md").read_text("utf-8")
    (newer / "SOURCE.md").write_text(source.replace("**v18.1**", "**v19.0**")
                                     .replace("421deacb77191b38bdd1bf63268954e93da91365", "0" * 40), "utf-8")
    licence = (newer / "LICENSE.txt").read_text("utf-8")
    (newer / "LICENSE.txt").write_text(licence.replace("\u00a9 2025", "\u00a9 2026"), "utf-8")
    built = build_script().build_table(newer)
    assert (built["attack_version"], built["source"]) == ("19.0", "mitre/cti " + "0" * 40)
    assert built["copyright"] == ("\u00a9 2026 The MITRE Corporation. This work is reproduced and distributed "
                                  "with the permission of The MITRE Corporation.")
    (newer / "SOURCE.md").write_text(source.replace("ATT&CK version", "version"), "utf-8")
    with pytest.raises(SystemExit, match="SOURCE.md: no match"):
        build_script().build_table(newer)


def test_the_notice_names_the_shipped_version_and_source():
    notice = " ".join(resources.files("wia_security.attack").joinpath("NOTICE.md").read_text("utf-8").split())
    t = table()
    commit = json.loads(resources.files("wia_security.attack").joinpath("enterprise-attack.json")
                        .read_text("utf-8"))["source"].split()[-1]
    assert f"v{t.version}" in notice and commit in notice and t.copyright in notice


def test_mitres_licence_ships_unchanged_with_the_table():
    shipped = resources.files("wia_security.attack").joinpath("LICENSE.txt").read_bytes()
    assert shipped == (ATTACK / "LICENSE.txt").read_bytes()


def test_every_technique_of_the_reference_is_in_the_table_as_mitre_has_it():
    techniques, tactics = reference()
    t = table()
    tactic_id = {x["shortname"]: x["id"] for x in tactics}
    assert {x.id for x in t} == {r["id"] for r in techniques} and len(t) == len(techniques) == 835
    wrong = []
    for ref in techniques:
        tech = t.technique(ref["id"])
        got = (tech.id, tech.name, set(tech.tactic_ids), tech.status, tech.revoked_by, tech.is_subtechnique,
               tech.parent_id, tech.url)
        want = (ref["id"], ref["name"], {tactic_id[s] for s in ref["tactics"]}, expected_status(ref),
                ref["revoked_by"], ref["is_subtechnique"], ref["parent"], ref["url"])
        if got != want:
            wrong.append((ref["id"], got, want))
    assert wrong == []
    counts = Counter(expected_status(r) for r in techniques)
    assert counts == {"active": 691, "revoked": 132, "deprecated": 12}


def test_every_tactic_in_matrix_order_and_its_members():
    techniques, tactics = reference()
    t = table()
    in_order = sorted(tactics, key=lambda x: x["matrix_order"])
    assert [(x.id, x.shortname, x.name, x.url) for x in t.tactics] == \
        [(x["id"], x["shortname"], x["name"], x["url"]) for x in in_order]
    for ref in tactics:
        for key in (ref["id"], ref["id"].lower(), ref["shortname"], ref["name"], ref["name"].upper()):
            assert t.tactic(key).id == ref["id"], key
        members = {r["id"] for r in techniques if ref["shortname"] in r["tactics"]}
        active = {r["id"] for r in techniques if ref["shortname"] in r["tactics"] and expected_status(r) == "active"}
        assert {x.id for x in t.techniques_in(ref["id"], include_inactive=True)} == members
        assert {x.id for x in t.techniques_in(ref["shortname"])} == active
        assert all(t.in_tactic(x, ref["id"]) for x in members)


def test_every_revoked_technique_leads_to_an_active_replacement():
    techniques, _ = reference()
    t = table()
    for ref in techniques:
        replacement = t.replacement(ref["id"])
        if not ref["revoked"]:
            assert replacement is None, ref["id"]
            continue
        # follow MITRE's revoked-by chain by hand (T1073 -> T1574.002 -> T1574.001 is two links)
        current, hops = ref, 0
        by_id = {r["id"]: r for r in techniques}
        while current["revoked"]:
            current, hops = by_id[current["revoked_by"]], hops + 1
            assert hops < 10, ref["id"]
        assert replacement is not None and replacement.id == current["id"] and replacement.status == "active"
    chained = [r["id"] for r in techniques if r["revoked"] and by_id[r["revoked_by"]]["revoked"]]
    assert chained == ["T1073", "T1150", "T1162"]


def test_every_name_finds_its_technique_in_any_case():
    techniques, _ = reference()
    t = table()
    for ref in techniques:
        for spelling in (ref["name"], ref["name"].upper(), ref["name"].lower()):
            found = t.techniques_named(spelling)
            assert ref["id"] in [x.id for x in found], spelling
            statuses = [x.status == "active" for x in found]
            assert statuses == sorted(statuses, reverse=True), spelling      # active ones first


def test_every_sub_technique_has_an_active_parent_in_the_table():
    techniques, _ = reference()
    t = table()
    for ref in techniques:
        if ref["parent"] and expected_status(ref) == "active":
            parent = t.technique(ref["parent"])
            assert parent is not None and parent.status == "active", ref["id"]
            assert ref["id"] in {x.id for x in t.subtechniques(ref["parent"])}


@pytest.mark.parametrize("path", sorted((ATTACK / "stix-samples").glob("attack-pattern_*.json")), ids=lambda p: p.name)
def test_the_raw_stix_objects_agree_with_the_table(path):
    (obj,) = json.loads(path.read_text("utf-8"))["objects"]
    (attack_id,) = [r["external_id"] for r in obj["external_references"] if r["source_name"] == "mitre-attack"]
    tech = table().technique(attack_id)
    phases = {p["phase_name"] for p in obj["kill_chain_phases"] if p["kill_chain_name"] == "mitre-attack"}
    assert tech.name == obj["name"]
    assert {table().tactic(x).shortname for x in tech.tactic_ids} == phases
    assert tech.status == ("revoked" if obj.get("revoked") else
                           "deprecated" if obj.get("x_mitre_deprecated") else "active")
    assert tech.is_subtechnique == obj.get("x_mitre_is_subtechnique", False)


def test_the_raw_stix_tactic_agrees_with_the_table():
    (obj,) = json.loads((ATTACK / "stix-samples" / "x-mitre-tactic_TA0002.json").read_text("utf-8"))["objects"]
    tactic = table().tactic(obj["x_mitre_shortname"])
    assert (tactic.id, tactic.name) == ("TA0002", obj["name"])
