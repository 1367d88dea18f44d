"""`is_valid` (and Validator.is_valid) gives validate_event's verdict for every input validate_event takes."""
from __future__ import annotations

import copy
from collections import OrderedDict

import pytest

from reference import reference_is_valid
from test_parity import builder_events
from wia_security import Event, is_valid, validate_event
from wia_security.validation import Validator


def _broken(event: dict) -> dict:
    """The event with its type-specific `data` made invalid (the envelope schema alone still accepts it)."""
    bad = copy.deepcopy(event)
    bad["data"] = {"not": "the type's data"}
    return bad


@pytest.mark.parametrize("event", builder_events(14, seed=11), ids=lambda e: e["type"])
def test_a_dict_subclass_is_checked_against_its_types_schema(event):
    """is_valid told the schema by `type(obj) is dict`, validate_event by isinstance: an OrderedDict (what
    json.loads(object_pairs_hook=OrderedDict) and ruamel.yaml give) was checked against the envelope only,
    so an alert with invalid `data` was valid to is_valid and invalid to validate_event and jsonschema."""
    for doc in (event, _broken(event)):
        ordered = OrderedDict(doc)
        expected = reference_is_valid(ordered)
        assert validate_event(ordered).valid == expected
        assert is_valid(ordered) == expected and Validator().is_valid(ordered) == expected
    assert not is_valid(OrderedDict(_broken(event)))


@pytest.mark.parametrize("event", builder_events(14, seed=12), ids=lambda e: e["type"])
def test_an_event_object_is_valid_when_its_dict_is(event):
    """validate_event takes an Event (it validates event.to_dict()); is_valid checked the Event object itself
    as JSON, which no schema accepts, so is_valid(Event.from_dict(valid)) was False."""
    assert is_valid(Event.from_dict(event)) and validate_event(Event.from_dict(event)).valid
    assert not is_valid(Event.from_dict(_broken(event)))


def test_a_dict_subclass_gets_the_same_warnings_as_a_dict():
    """validate() added the advisories only when type(obj) is dict: an OrderedDict event got none
    (no schema_missing, no ATT&CK or timestamp warnings)."""
    event = copy.deepcopy(builder_events(1, seed=13)[0])
    del event["$schema"]
    event["timestamp"] = "2025-12-14T04:30:00+09:00"
    event["mitre"] = {"technique": "T9999"}
    codes = [w.code for w in validate_event(event).warnings]
    assert {"schema_missing", "timestamp_not_canonical", "attack_unknown_technique"} <= set(codes)
    assert [w.code for w in validate_event(OrderedDict(event)).warnings] == codes
