"""One bad member of a multi-event document refuses only itself (`Format.to_wia_each`): a STIX bundle's
root objects (a broken object refuses exactly the events that need it), an Elasticsearch `_search`
response's hits, ASFF `{"Findings": [...]}` and EventBridge events, OCSF arrays. `to_wia` keeps its
all-or-nothing contract: the same events when nothing was refused, else the first refusal."""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from reader_checks import member_outcomes
from strategies import replace_values
from wia_corpus import builder_events
from test_stix_reader_edges import ADDR, HOSTILE, OBSERVED, T, TRAFFIC, bundle, indicator, oid
from wia_security import convert, parse, validate_event
from wia_security.errors import ConversionError
from wia_security.formats import get_format
from wia_security.formats.base import MemberOutcome

STIX = get_format("stix")
FOREIGN = Path(__file__).parent / "foreign"


def corpus(n: int, step: int = 7) -> list[dict[str, Any]]:
    """`n` builder events of different types (canonical times: strictly valid without warnings)."""
    return [e for _, e in builder_events()][::step][:n]


def read(fmt: str, doc: Any) -> tuple[list[dict[str, Any]], dict[str, ConversionError]]:
    """(events of the outcomes read, {member path: error} of those refused), checked by `member_outcomes`."""
    member_outcomes(fmt, doc)
    outcomes = get_format(fmt).to_wia_each(doc)
    events = [e for o in outcomes for e in o.events]
    return events, {o.path: o.error for o in outcomes if o.error is not None}


def malware(n: int, **extra: Any) -> dict[str, Any]:
    return {"type": "malware", "spec_version": "2.1", "id": oid("malware", n), "created": T, "modified": T,
            "name": f"family {n}", "is_family": True, **extra}


def indicates(n: int, source: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"type": "relationship", "spec_version": "2.1", "id": oid("relationship", n), "created": T, "modified": T,
            "relationship_type": "indicates", "source_ref": source, "target_ref": target, **extra}


def ip_indicator(n: int, **extra: Any) -> dict[str, Any]:
    return indicator(n, **{"pattern": f"[ipv4-addr:value = '10.0.{n >> 8 & 255}.{n & 255}']", **extra})


# --- STIX: the brief's example -------------------------------------------------------------------------
def test_99_good_indicators_and_1_broken_give_99_events_and_1_refusal_at_its_pointer() -> None:
    objects = [ip_indicator(n) for n in range(100)]
    objects[37]["pattern"] = "[process:pid = 4]"         # nothing WIA has a type for
    outcomes = STIX.to_wia_each(bundle(*objects))
    refused = [o for o in outcomes if not o.ok]
    assert len(outcomes) == 100 and len(refused) == 1
    assert refused[0].path == "/objects/37" and refused[0].error.path == "/objects/37/pattern"
    assert refused[0].member["type"] == "bundle" and refused[0].member["objects"] == [objects[37]]  # a dead letter's
    events = [e for o in outcomes for e in o.events]
    assert sorted(e["data"]["indicators"][0]["value"] for e in events) == \
        sorted(f"10.0.0.{n}" for n in range(100) if n != 37)
    with pytest.raises(ConversionError) as info:        # the library's all-or-nothing path is unchanged
        STIX.to_wia(bundle(*objects))
    assert info.value.path == "/objects/37/pattern"


# --- STIX: a broken object refuses exactly the events that need it ----------------------------------------
def test_a_broken_indicator_refuses_the_threat_it_indicates_and_nothing_else() -> None:
    doc = bundle(malware(1), ip_indicator(1), ip_indicator(2, valid_from="yesterday"),
                 indicates(1, oid("indicator", 1), oid("malware", 1)), indicates(2, oid("indicator", 2), oid("malware", 1)),
                 malware(2), ip_indicator(3), indicates(3, oid("indicator", 3), oid("malware", 2)))
    events, refused = read("stix", doc)
    assert refused == {"/objects/0": refused["/objects/0"]}
    assert refused["/objects/0"].path == "/objects/2/valid_from"      # the cause, not the malware
    # malware 2 is read whole; indicator 1 belonged to the refused malware 1: it is no event of its own
    assert [(e["data"]["threat_name"], [i["value"] for i in e["data"]["indicators"]]) for e in events] == \
        [("family 2", ["10.0.0.3"])]
    (outcome,) = [o for o in STIX.to_wia_each(doc) if not o.ok]
    assert {o["id"] for o in outcome.member["objects"]} == {oid("malware", 1), oid("indicator", 1), oid("indicator", 2),
                                                oid("relationship", 1), oid("relationship", 2)}
    # the dead-lettered objects, fixed, are read on their own
    fixed = dict(outcome.member, objects=[dict(o, valid_from=T) if o["id"] == oid("indicator", 2) else o
                                          for o in outcome.member["objects"]])
    (again,) = STIX.to_wia(fixed)
    assert [i["value"] for i in again["data"]["indicators"]] == ["10.0.0.1", "10.0.0.2"]


def test_an_indicator_two_threats_need_refuses_both() -> None:
    doc = bundle(malware(1), malware(2), malware(3), ip_indicator(1, pattern="[process:pid = 4]"),
                 indicates(1, oid("indicator", 1), oid("malware", 1)), indicates(2, oid("indicator", 1), oid("malware", 2)))
    events, refused = read("stix", doc)
    assert sorted(refused) == ["/objects/0", "/objects/1"]
    assert {e.path for e in refused.values()} == {"/objects/3/pattern"}
    assert [e["data"]["threat_name"] for e in events] == ["family 3"]


def test_a_malformed_object_no_event_needs_is_refused_alone() -> None:
    stray = {"type": "ipv4-addr", "spec_version": "2.1", "id": oid("ipv4-addr", 9), "value": 42}
    rel = indicates(7, oid("indicator", 1), oid("malware", 1), relationship_type=["indicates"])
    doc = bundle(ip_indicator(1), "not an object", stray, {"id": oid("x-thing", 1)}, rel, ip_indicator(2))
    events, refused = read("stix", doc)
    assert [e["data"]["indicators"][0]["value"] for e in events] == ["10.0.0.1", "10.0.0.2"]
    assert {path: error.path for path, error in refused.items()} == {
        "/objects/1": "/objects/1", "/objects/2": "/objects/2/value", "/objects/3": "/objects/3/type",
        "/objects/4": "/objects/4/relationship_type"}
    assert [o.member for o in STIX.to_wia_each(doc) if not o.ok][:2] == ["not an object", stray]


def test_an_observable_that_is_not_what_stix_says_refuses_its_observed_data_only() -> None:
    bad_addr = {**ADDR, "id": oid("ipv4-addr", 15), "value": ["192.0.2.9"]}
    second = {**OBSERVED, "id": oid("observed-data", 14), "object_refs": [oid("ipv4-addr", 15), oid("x-thing", 16)]}
    typeless = {"id": oid("x-thing", 16), "spec_version": "2.1"}     # referable, but no `type`
    events, refused = read("stix", bundle(OBSERVED, ADDR, TRAFFIC, second, bad_addr, typeless))
    assert [e["type"] for e in events] == ["network_event"]
    assert {p: e.path for p, e in refused.items()} == {"/objects/3": "/objects/4/value"}
    # the type-less object is needed by that observed-data too: it is not reported a second time
    events, refused = read("stix", bundle(OBSERVED, ADDR, TRAFFIC, {**second, "object_refs": [oid("x-thing", 16)]},
                                          typeless))
    assert len(events) == 1 and {p: e.path for p, e in refused.items()} == {"/objects/3": "/objects/4/type"}


def test_a_broken_relationship_refuses_the_threat_it_links() -> None:
    doc = bundle(malware(1), ip_indicator(1), indicates(1, oid("indicator", 1), oid("malware", 1), created=20240115),
                 ip_indicator(2))
    events, refused = read("stix", doc)
    assert {p: e.path for p, e in refused.items()} == {"/objects/0": "/objects/2/created"}
    assert [e["data"]["threat_name"] for e in events] == ["ind 2"]     # the lone indicator; ind 1 was the malware's


def test_a_root_refused_for_itself_does_not_stop_the_rest() -> None:
    vuln = {"type": "vulnerability", "spec_version": "2.1", "id": oid("vulnerability", 3), "created": T, "name": "x"}
    events, refused = read("stix", bundle(vuln, ip_indicator(1), {**malware(2), "aliases": "not a list"}))
    assert {p: e.path for p, e in refused.items()} == {"/objects/0": "/objects/0/external_references",
                                                       "/objects/2": "/objects/2/aliases"}
    assert len(events) == 1


def test_a_lone_object_refused_is_the_document_itself() -> None:
    (outcome,) = STIX.to_wia_each(indicator(1, pattern="[process:pid = 4]"))
    assert outcome.path == "" and outcome.error.path == "/pattern" and outcome.member is None


def test_whole_document_problems_are_one_refused_outcome() -> None:
    for doc, path in (({"type": "bundle", "objects": {}}, "/objects"), (42, ""), ({"no": "type"}, "/type"),
                      (bundle({**malware(1), "type": "attack-pattern"}), "/objects")):
        (outcome,) = STIX.to_wia_each(doc)
        assert outcome.error is not None and outcome.error.path == path and outcome.member is None


def test_an_empty_bundle_has_no_members() -> None:
    assert STIX.to_wia_each(bundle()) == [] and STIX.to_wia(bundle()) == []


def test_good_documents_give_the_same_events_member_by_member() -> None:
    docs = [json.loads(p.read_text()) for p in sorted((FOREIGN / "stix").glob("*.json"))]
    events = corpus(40, 1)
    docs += [convert(e, to="stix") for e in events]
    docs.append({"type": "bundle", "id": oid("bundle", 1), "objects": [o for e in events for o in
                                                                       convert(e, to="stix")["objects"]]})
    for doc in docs:
        seen = member_outcomes("stix", doc)
        assert seen["refused"] == 0 or "attack-pattern" in json.dumps(doc)[:200]
        if not seen["refused"]:
            assert STIX.to_wia(doc) == [e for o in STIX.to_wia_each(doc) for e in o.events]


def test_mutated_bundles_read_member_by_member_give_valid_events_or_errors_with_paths() -> None:
    """The foreign bundles and plain bundles of generated events, 600 seeded mutations: each outcome is
    strictly valid events or an error with a path, and `to_wia` agrees (reader_checks.member_outcomes);
    mutations refuse single members while the rest of the bundle is read."""
    docs = [json.loads(p.read_text()) for p in sorted((FOREIGN / "stix").glob("*.json"))]
    many = []
    for event in corpus(30, 2):
        try:
            many += convert(event, to="stix", wia_extension=False)["objects"]
        except ConversionError:
            pass
    docs.append(bundle(*many))
    rnd = random.Random(33)
    partly = 0
    for _ in range(600):
        seen = member_outcomes("stix", replace_values(rnd.choice(docs), rnd, HOSTILE))
        partly += seen["read"] > 0 and seen["refused"] > 0
    assert partly > 30, partly


# --- Elasticsearch _search responses, ASFF findings, OCSF arrays ---------------------------------------
def _search_response(sources: list[Any]) -> dict[str, Any]:
    return {"took": 3, "timed_out": False, "hits": {"total": {"value": len(sources), "relation": "eq"},
            "hits": [{"_index": "wia", "_id": str(i), "_source": s} for i, s in enumerate(sources)]}}


def test_one_bad_hit_of_a_search_response_refuses_only_itself() -> None:
    events = corpus(4)
    response = _search_response([convert(e, to="ecs") for e in events])
    response["hits"]["hits"][1]["_source"] = {"@timestamp": "2024-01-01T00:00:00Z", "event": {"category": ["web"]}}
    response["hits"]["hits"][2] = {"_index": "wia", "_id": "2"}          # no _source
    got, refused = read("ecs", response)
    assert {p: e.path for p, e in refused.items()} == {"/hits/hits/1": "/hits/hits/1/_source/event/category",
                                                       "/hits/hits/2": "/hits/hits/2"}
    assert [e["id"] for e in got] == [events[0]["id"], events[3]["id"]]
    assert [o.member for o in get_format("ecs").to_wia_each(response) if not o.ok][1] == {"_index": "wia", "_id": "2"}


def test_one_bad_finding_refuses_only_itself_in_every_container() -> None:
    events = corpus(3)
    findings = [convert(e, to="asff", account_id="123456789012") for e in events]
    broken = {k: v for k, v in findings[1].items() if k != "CreatedAt"}
    for doc, where in (({"Findings": [findings[0], broken, findings[2]]}, "/Findings/1"),
                       ([findings[0], broken, findings[2]], "/1"),
                       ({"detail-type": "Security Hub Findings - Imported", "source": "aws.securityhub",
                         "detail": {"findings": [findings[0], broken, findings[2]]}}, "/detail/findings/1")):
        got, refused = read("asff", doc)
        assert [e["id"] for e in got] == [events[0]["id"], events[2]["id"]]
        assert {p: e.path for p, e in refused.items()} == {where: f"{where}/CreatedAt"}    # pointers into doc


def test_one_bad_element_of_an_ocsf_array_refuses_only_itself() -> None:
    events = corpus(3)
    docs: list[Any] = [convert(e, to="ocsf") for e in events]
    docs[1] = {"class_uid": 99999, "time": 0}
    got, refused = read("ocsf", docs)
    assert [e["id"] for e in got] == [events[0]["id"], events[2]["id"]]
    assert {p: e.path for p, e in refused.items()} == {"/1": "/1/class_uid"}


def test_single_member_formats_give_one_outcome() -> None:
    event = corpus(1)[0]
    (outcome,) = get_format("cim").to_wia_each(convert(event, to="cim"))
    assert outcome.ok and outcome.path == "" and len(outcome.events) == 1
    (outcome,) = get_format("cim").to_wia_each({"fields": {"_time": 1e308}})
    assert outcome.error is not None and outcome.error.path
    assert MemberOutcome("/x").ok


def test_parse_keeps_the_all_or_nothing_contract() -> None:
    objects = [ip_indicator(n) for n in range(3)] + [ip_indicator(3, pattern="[process:pid = 4]")]
    with pytest.raises(ConversionError):
        parse(bundle(*objects), from_="stix")
    assert len(parse(bundle(*objects[:3]), from_="stix")) == 3
    assert all(validate_event(e.to_dict()).valid for e in parse(copy.deepcopy(bundle(*objects[:3])), from_="stix"))
