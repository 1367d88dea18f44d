"""An ECS document is its own: no list or dict in it is one of the event's, one of another document's
or one of the module's tables, so a caller may change it freely (found by the differential run
against the previous writer: event.category lists were the tables' own, meta.labels values and an
apt's threat_name object were the event's, threat.indicator's dicts were those of enrichments[0])."""
from __future__ import annotations

import copy
from typing import Any, Iterator

from wia_security import convert

from strategies import event_dicts
from wia_corpus import all_events


def containers(value: Any) -> Iterator[Any]:
    if isinstance(value, (dict, list)):
        yield value
        for v in (value.values() if isinstance(value, dict) else value):
            yield from containers(v)


def shared(a: Any, b: Any) -> list[Any]:
    ids = {id(c) for c in containers(b)}
    return [c for c in containers(a) if id(c) in ids]


def odd_events() -> list[dict[str, Any]]:
    """Valid-looking events whose free values hold containers (the converter does not validate)."""
    base = {e["type"]: e for _, e in all_events()}
    alert = copy.deepcopy(base["alert"])
    alert["meta"]["labels"] = {"env": "prod", "nested": {"deep": ["x", {"y": 1}]}}
    apt = copy.deepcopy(base["threat_intel"])
    apt["data"].update(threat_type="apt", threat_name={"nested": ["a", "b"]})
    return [alert, apt]


EVENTS = [e for _, e in all_events()] + event_dicts(400, seed=21) + event_dicts(100, seed=22, wild=True) + odd_events()


def test_no_container_is_shared_with_the_event_or_another_document() -> None:
    for event in EVENTS:
        doc, again = convert(event, to="ecs"), convert(event, to="ecs")
        assert shared(doc, event) == [], event["id"]
        assert shared(doc, again) == [], event["id"]
        assert doc == again


def test_changing_a_document_changes_neither_the_event_nor_later_documents() -> None:
    for event in EVENTS:
        before = copy.deepcopy(event)
        doc = convert(event, to="ecs")
        expected = convert(event, to="ecs")
        for c in containers(doc):          # every list grows, every dict gets a key
            if isinstance(c, list):
                c.append("changed")
            else:
                c["changed"] = True
        assert event == before
        assert convert(event, to="ecs") == expected


def test_the_first_threat_indicator_is_a_copy_not_the_enrichments_own() -> None:
    intel = [e for e in EVENTS if e["type"] == "threat_intel" and convert(e, to="ecs").get("threat", {}).get("indicator")]
    assert len(intel) > 10
    for event in intel:
        threat = convert(event, to="ecs")["threat"]
        assert threat["indicator"] == threat["enrichments"][0]["indicator"]
        assert shared(threat["indicator"], threat["enrichments"]) == []


def test_labels_and_an_apt_name_are_copied_whole() -> None:
    alert, apt = odd_events()
    doc = convert(alert, to="ecs")
    assert doc["labels"] == alert["meta"]["labels"] and "labels" not in doc.get("wia", {}).get("meta", {})
    doc = convert(apt, to="ecs")
    assert doc["threat"]["group"]["name"] == {"nested": ["a", "b"]}
    assert shared(doc, apt) == []
