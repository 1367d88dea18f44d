"""STIX properties no WIA field takes are kept as they came in `meta.custom.stix.objects`, keyed by the STIX
id of the object they came from; the project's own bundles (WIA extension) still come back exactly, with
no `meta.custom.stix` added."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from test_stix_reader_edges import T, bundle, indicator, oid
from wia_corpus import all_events
from wia_security import convert, validate_event
from wia_security.formats import get_format
from wia_security.formats.stix import to_bundle

STIX = get_format("stix")
FOREIGN = Path(__file__).parent / "foreign" / "stix"
TLP_AMBER = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"


def _values(node: Any, out: list[Any]) -> list[Any]:
    """Every string and number of a WIA event outside meta.custom (what the event itself gives back)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "custom":
                _values(value, out)
    elif isinstance(node, list):
        for value in node:
            _values(value, out)
    elif not isinstance(node, bool):
        out.append(node)
    return out


def _held(key: str, value: Any, held: list[Any]) -> bool:
    """Whether the event holds the property's value (as docs/formats/stix.md lists the mapping)."""
    if key == "spec_version":
        return value == "2.1"
    if key == "pattern_type":
        return value == "stix" or value in held
    if key == "confidence":
        return value / 100 in held
    if key == "hashes":
        return all(v in held for v in value.values())
    if key == "pattern":
        return value in held or any(isinstance(h, str) and h and f"'{h}'" in value for h in held)
    if isinstance(value, list):
        return all(v in held for v in value)
    return value in held


def assert_every_property_given_back_or_kept(doc: Any) -> int:
    """For each event and each object it was read from: every property is either held by the event or
    kept, equal, under meta.custom.stix.objects[<that object's id>] (overlaying the kept properties on
    what the event holds rebuilds the object). Returns how many properties were kept."""
    kept_count = 0
    for outcome in STIX.to_wia_each(doc):
        assert outcome.ok, outcome.error
        (event,) = outcome.events
        assert validate_event(event).valid
        kept = event.get("meta", {}).get("custom", {}).get("stix", {}).get("objects", {})
        objects = [doc] if outcome.member is None else outcome.member["objects"]     # a lone object: the document
        assert set(kept) <= {o["id"] for o in objects}, "kept under an id the event was not read from"
        stix = event.get("meta", {}).get("custom", {}).get("stix", {})
        # what the event holds: its fields, and the rules of other pattern languages kept beside `objects`
        held = _values(event, _values({k: v for k, v in stix.items() if k not in ("objects", "kept")}, []))
        for obj in objects:
            own = kept.get(obj["id"], {})
            for key, value in obj.items():
                if key in ("id", "type"):
                    continue
                if key in own:
                    assert own[key] == value, (obj["id"], key)
                    kept_count += 1
                else:
                    assert _held(key, value, held), f"{obj['id']} {key}={value!r} is neither kept nor given back"
    return kept_count


@pytest.mark.parametrize("name", sorted(p.name for p in FOREIGN.glob("*.json") if "attack-pattern" not in p.name))
def test_every_property_of_a_foreign_bundle_is_given_back_or_kept(name: str) -> None:
    assert assert_every_property_given_back_or_kept(json.loads((FOREIGN / name).read_text())) > 0


def test_custom_markings_language_and_references_are_kept_by_object() -> None:
    granular = [{"marking_ref": TLP_AMBER, "selectors": ["description"]}]
    refs = [{"source_name": "vendor-x", "url": "https://vendor.example/r/1", "external_id": "VX-1"},
            {"source_name": "capec", "external_id": "CAPEC-98"}]
    threat = {"type": "malware", "spec_version": "2.1", "id": oid("malware", 1), "created": T, "modified": T,
              "name": "Family", "is_family": True, "lang": "en", "confidence": 80, "labels": ["tlp:amber", "crimeware"],
              "object_marking_refs": [TLP_AMBER], "granular_markings": granular, "external_references": refs,
              "x_acme_risk": {"score": 7, "tags": ["a", None]}, "x_acme_seen": 3}
    ind = indicator(1, confidence=60, lang="de", x_acme_source="sensor-9", valid_until="2025-01-01T00:00:00Z")
    ind2 = indicator(2, pattern="[ipv4-addr:value = '198.51.100.8' AND network-traffic:dst_port = 443]")
    rels = [{"type": "relationship", "spec_version": "2.1", "id": oid("relationship", n), "created": T, "modified": T,
             "relationship_type": "indicates", "source_ref": oid("indicator", n), "target_ref": oid("malware", 1),
             "x_acme_weight": n} for n in (1, 2)]
    doc = bundle(threat, ind, ind2, *rels)
    original = copy.deepcopy(doc)
    (event,) = STIX.to_wia(doc)
    assert event["meta"]["confidence"] == 0.8 and event["meta"]["tags"] == ["tlp:amber", "crimeware"]
    assert [i.get("confidence") for i in event["data"]["indicators"]] == [0.6, None]     # ind2 has none
    kept = event["meta"]["custom"]["stix"]["objects"]
    assert kept[oid("malware", 1)] == {"is_family": True, "lang": "en", "object_marking_refs": [TLP_AMBER],
                                       "granular_markings": granular, "external_references": refs,
                                       "x_acme_risk": {"score": 7, "tags": ["a", None]}, "x_acme_seen": 3}
    # the indicator's own times (not the event's), its custom property, its language, its end of validity;
    # the canonical `valid_from` spelling differs from what came ("...00Z"), so it is kept as it came
    assert kept[oid("indicator", 1)] == {"created": T, "modified": T, "name": "ind 1", "lang": "de",
                                         "x_acme_source": "sensor-9", "valid_until": "2025-01-01T00:00:00Z",
                                         "valid_from": "2024-01-15T12:00:00Z"}
    # a pattern only partly read (the port) is kept whole
    assert kept[oid("indicator", 2)]["pattern"] == ind2["pattern"]
    assert kept[oid("relationship", 1)] == {"created": T, "modified": T, "relationship_type": "indicates",
                                            "source_ref": oid("indicator", 1), "target_ref": oid("malware", 1),
                                            "x_acme_weight": 1}
    assert validate_event(event).valid
    # copies: changing the event does not change the document
    kept[oid("malware", 1)]["x_acme_risk"]["tags"].append("b")
    assert doc == original


def test_what_the_event_gives_back_is_not_kept_again() -> None:
    ind = indicator(1, valid_from=T, confidence=90, labels=["x"], description="C2")
    (event,) = STIX.to_wia(bundle(ind))
    # type, id, spec_version 2.1, created/modified (= created), the pattern, stix pattern_type, valid_from
    # (canonical), confidence, labels, description: all held by the event; only the indicator's name,
    # which a lone indicator's threat_name holds, too
    assert "custom" not in event.get("meta", {}), event["meta"]


def test_values_outside_wias_enums_stay_under_their_pointer_too() -> None:
    key = {"type": "windows-registry-key", "spec_version": "2.1", "id": oid("windows-registry-key", 1),
           "key": "HKEY_LOCAL_MACHINE\\Software\\x", "values": [{"name": "v", "data": "d", "data_type": "REG_NONE"}]}
    od = {"type": "observed-data", "spec_version": "2.1", "id": oid("observed-data", 2), "created": T, "modified": T,
          "first_observed": T, "last_observed": T, "number_observed": 1, "object_refs": [key["id"]]}
    (event,) = STIX.to_wia(bundle(od, key))
    stix = event["meta"]["custom"]["stix"]
    assert stix["kept"] == {"/objects/1/values/0/data_type": "REG_NONE"}
    assert stix["objects"][key["id"]] == {"values": key["values"]}
    assert stix["objects"][od["id"]] == {"last_observed": T, "number_observed": 1, "object_refs": [key["id"]]}


def test_own_bundles_come_back_exactly_without_a_meta_custom_stix() -> None:
    events = [e for _, e in all_events()]
    for event in events:
        (back,) = STIX.to_wia(json.loads(json.dumps(convert(event, to="stix"))))
        assert back == event and "stix" not in back.get("meta", {}).get("custom", {})
    assert STIX.to_wia(to_bundle(events)) == events
