"""The model round-trips every key: declared, unknown, nested, explicitly null, wrongly typed."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings

from strategies import events
from wia_security import Event, InvalidEventError, ParseError
from wia_security.model import AlertData, AuthEventData, Indicator, NetworkEventData, Source


@settings(max_examples=200, deadline=None)
@given(events())
def test_from_dict_to_dict_is_identity(event):
    assert Event.from_dict(event).to_dict() == event


@settings(max_examples=100, deadline=None)
@given(events(wild=True))
def test_json_round_trip_of_wild_events(event):
    parsed = Event.parse(Event.from_dict(event).to_json())
    assert parsed.to_dict() == event


def test_unknown_keys_and_nulls_survive_at_every_level(samples):
    doc = copy.deepcopy(samples["network-event-sample"])
    doc["x_top"] = {"anything": [1, None]}
    doc["data"]["x_data"] = "kept"
    doc["data"]["source"]["x_host"] = 3
    doc["data"]["http"]["status_code"] = None
    doc["context"] = {"host": {"hostname": None, "x": 1}}
    event = Event.from_dict(doc)
    assert event.to_dict() == doc
    assert event.extra == {"x_top": {"anything": [1, None]}}
    assert isinstance(event.data, NetworkEventData)
    assert event.data.extra == {"x_data": "kept"}
    assert event.data.http.status_code is None and event.data.http.extra == {"status_code": None}


def test_typed_access(samples):
    alert = Event.from_dict(samples["alert-sample"])
    assert isinstance(alert.data, AlertData) and isinstance(alert.source, Source)
    assert all(isinstance(i, Indicator) for i in alert.data.indicators)
    assert alert.severity_band == "critical"
    assert alert.time.year == 2025
    auth = Event.from_dict(samples["auth-event-sample"])
    assert isinstance(auth.data, AuthEventData) and auth.data.user.groups == ["Domain Admins", "Enterprise Admins"]


def test_wrongly_typed_values_are_held_not_converted():
    doc = {"type": "alert", "severity": "high", "data": ["not", "an", "object"], "source": "x"}
    event = Event.from_dict(doc)
    assert event.to_dict() == doc
    assert event.severity_band == "unknown"


def test_unknown_type_keeps_data_raw():
    doc = {"type": "custom_thing", "data": {"a": 1}}
    assert Event.from_dict(doc).data == {"a": 1}


def test_parse_accepts_bytes_str_and_dict(samples):
    doc = samples["vulnerability-sample"]
    text = json.dumps(doc)
    for src in (text, text.encode(), doc):
        assert Event.parse(src).to_dict() == doc


def test_parse_errors_and_validation():
    with pytest.raises(ParseError) as exc:
        Event.parse(b'{"type": "alert"')
    assert "truncated" in str(exc.value)
    with pytest.raises(InvalidEventError) as exc:
        Event.parse("[1, 2]")
    assert exc.value.errors[0].code == "type"
    with pytest.raises(InvalidEventError) as exc:
        Event.parse({"type": "alert"}, validate=True)
    assert {e.path for e in exc.value.errors} >= {"/id", "/data", "/severity"}


def test_parse_validate_lenient_drops_nulls(samples):
    event = Event.parse(samples["incident-sample"], validate=True, lenient=True)
    assert event.data.root_cause is None and "root_cause" not in event.data.extra
    assert event.validate().valid
