"""NaN and infinity are Python floats, not JSON numbers: a `number` field holding one is a type error.

They cannot come from JSON text (jsonio refuses NaN, Infinity and 1e400), only from Python callers;
accepted, orjson would write them as null and the standard library not at all.
"""
from __future__ import annotations

import copy
import math
from decimal import Decimal

import pytest

from wia_security import validate_event
from wia_security.validation import Validator


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("sample, path", [
    ("alert-sample", ("severity",)),                                              # bounded: 0..10
    ("network-event-sample", ("data", "source", "geo", "latitude")),             # unbounded
])
@pytest.mark.parametrize("lenient", [False, True])
def test_non_finite_floats_are_type_errors_with_their_path(samples, sample, path, value, lenient):
    event = copy.deepcopy(samples[sample])
    node = event
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    result = validate_event(event, lenient=lenient)
    assert not result.valid
    assert [(e.path, e.code) for e in result.errors] == [("/" + "/".join(path), "type")]
    assert result.errors[0].message == f"{value} is not of type number"


def test_finite_extremes_stay_valid(samples):
    event = copy.deepcopy(samples["network-event-sample"])
    event["data"].setdefault("source", {})["geo"] = {"latitude": 1.7976931348623157e308, "longitude": -5e-324}
    assert Validator().validate(event).valid


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity")])
@pytest.mark.parametrize("sample, path", [
    ("alert-sample", ("severity",)),                                              # bounded: 0..10
    ("network-event-sample", ("data", "source", "geo", "latitude")),             # unbounded
])
def test_non_finite_decimals_are_type_errors_too_and_never_raise(samples, sample, path, value):
    """Decimal is what boto3's DynamoDB deserializer and json.loads(parse_float=Decimal) give. Its NaN made
    validate_event raise decimal.InvalidOperation from the `minimum` comparison (as jsonschema does), where
    validation must return a result; its infinity passed an unbounded field, unlike float infinity."""
    event = copy.deepcopy(samples[sample])
    node = event
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    result = validate_event(event)
    assert [(e.path, e.code) for e in result.errors] == [("/" + "/".join(path), "type")]


def test_finite_decimals_are_numbers_as_jsonschema_says(samples):
    from reference import reference_is_valid
    for value in (Decimal("0"), Decimal("9.5"), Decimal("-0"), Decimal("10.000")):
        event = copy.deepcopy(samples["alert-sample"])
        event["severity"] = value
        assert validate_event(event).valid and reference_is_valid(event)
    event["severity"] = Decimal("10.5")
    assert [e.code for e in validate_event(event).errors] == ["maximum"] and not reference_is_valid(event)
