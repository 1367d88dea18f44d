"""The model keeps the input's key order at every level, and owns its data: neither the dict given to
from_dict() nor the dict to_dict() returned shares a list or object with the model.

Before, to_dict() wrote declared fields first, in declaration order, then the unknown keys, so
`Event.parse(text).to_json()` reordered every event (a signature or diff over the JSON broke); and
`Event.from_dict(d)` kept d's lists and objects, so `event.meta.tags.append(...)` changed d, and
changing `event.to_dict()["meta"]["labels"]` changed the event.
"""
from __future__ import annotations

import copy
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import events
from wia_security import AlertBuilder, Event
from wia_security.model import Meta


def _shuffled(value, rnd):
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


def _key_orders(value, path="", out=None):
    out = {} if out is None else out
    if isinstance(value, dict):
        out[path] = list(value)
        for k, v in value.items():
            _key_orders(v, f"{path}/{k}", out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _key_orders(v, f"{path}/{i}", out)
    return out


@settings(max_examples=150, deadline=None)
@given(events(wild=True), st.randoms(use_true_random=False))
def test_key_order_survives_a_round_trip_at_every_level(event, rnd):
    doc = _shuffled(event, rnd)
    doc["x_unknown"] = {"b": 1, "a": None}
    again = Event.from_dict(doc).to_dict()
    assert _key_orders(again) == _key_orders(doc)
    assert json.dumps(Event.parse(json.dumps(doc)).to_dict()) == json.dumps(doc)


def test_explicit_nulls_and_unknown_keys_keep_their_place():
    doc = {"type": "alert", "x_first": 1, "meta": {"raw": None, "x": [1], "tags": ["a"]}, "severity": 3}
    assert list(Event.from_dict(doc).to_dict()) == ["type", "x_first", "meta", "severity"]
    assert list(Event.from_dict(doc).to_dict()["meta"]) == ["raw", "x", "tags"]


def test_keys_set_after_from_dict_follow_the_input_keys():
    event = Event.from_dict({"type": "alert", "x": 1, "severity": 3})
    event.id = "00000000-0000-4000-8000-000000000000"
    event.meta = Meta(tags=["t"])
    assert list(event.to_dict()) == ["type", "x", "severity", "id", "meta"]
    event.severity = None
    assert list(event.to_dict()) == ["type", "x", "id", "meta"]


def test_records_built_in_code_use_declaration_order():
    assert list(AlertBuilder().title("t").build().to_dict())[:4] == ["$schema", "version", "id", "type"]


def test_changing_the_model_does_not_change_the_dict_it_came_from(samples):
    doc = copy.deepcopy(samples["alert-sample"])
    doc["meta"] = {"tags": ["a"], "labels": {"k": "v"}, "custom": {"n": {"deep": [1]}}}
    doc["x_unknown"] = {"list": [1, 2]}
    before = copy.deepcopy(doc)
    event = Event.from_dict(doc)
    event.meta.tags.append("b")
    event.meta.labels["k2"] = "v2"
    event.meta.custom["n"]["deep"].append(2)
    event.extra["x_unknown"]["list"].append(3)
    event.data.indicators[0].value = "changed"
    event.context.host.ip.append("10.9.9.9")
    assert doc == before


def test_changing_to_dict_output_does_not_change_the_model(samples):
    doc = copy.deepcopy(samples["alert-sample"])
    doc["meta"] = {"tags": ["a"], "labels": {"k": "v"}, "custom": {"n": {"deep": [1]}}}
    doc["x_unknown"] = {"list": [1, 2]}
    event = Event.from_dict(doc)
    out = event.to_dict()
    out["meta"]["labels"]["k2"] = "v2"
    out["meta"]["custom"]["n"]["deep"].append(2)
    out["x_unknown"]["list"].append(3)
    out["data"]["indicators"][0]["value"] = "changed"
    out["context"]["host"]["ip"].append("10.9.9.9")
    assert event.to_dict() == doc


def test_equality_ignores_key_order_and_events_are_unhashable():
    a = Event.from_dict({"type": "alert", "severity": 3, "x": 1})
    b = Event.from_dict({"x": 1, "severity": 3, "type": "alert"})
    assert a == b and list(a.to_dict()) != list(b.to_dict())
    assert Event.from_dict({"type": "alert", "x": None}) != Event.from_dict({"type": "alert"})
    try:
        hash(a)
    except TypeError:
        pass
    else:
        raise AssertionError("a mutable Event must not be hashable")


def test_a_random_walk_of_edits_never_reaches_the_source():
    rnd = random.Random(7)
    doc = {"type": "alert", "meta": {"tags": ["a"], "labels": {"k": "v"}}, "x": [{"y": [1]}]}
    before = copy.deepcopy(doc)
    for _ in range(50):
        event = Event.from_dict(doc)
        out = event.to_dict()
        target = rnd.choice([out["meta"]["tags"], out["x"][0]["y"], event.meta.tags, event.extra["x"][0]["y"]])
        target.append(rnd.random())
    assert doc == before


def test_built_events_and_in_declared_order_use_the_schemas_order_at_every_level():
    built = AlertBuilder().indicator("ip", "10.0.0.1", context="c").title("t").severity(9).build().to_dict()
    assert list(built["data"]) == ["alert_id", "title", "category", "status", "priority", "indicators"]
    assert list(built["data"]["indicators"][0]) == ["type", "value", "context"]
    doc = {"data": {"title": "t", "x": 1, "alert_id": "a"}, "type": "alert", "meta": {"tags": [], "raw": "r"}}
    event = Event.from_dict(doc)
    assert event.in_declared_order() is event
    out = event.to_dict()
    assert list(out) == ["type", "data", "meta"] and list(out["data"]) == ["alert_id", "title", "x"]
    assert list(out["meta"]) == ["tags", "raw"] and out == doc
