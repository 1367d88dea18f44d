"""OCSF events from other producers, hostile and edge cases: date-times come out as WIA writes them (UTC,
milliseconds, "Z"; epoch seconds, milliseconds, microseconds and nanoseconds told apart), every part of
the event the WIA event does not give back is kept as it came in `meta.custom.ocsf` (nothing vanishes),
values WIA refuses are left out of their WIA field, and any mutated event gives a strictly valid WIA
event or a ConversionError with a JSON path. The project's own events (`unmapped.wia`) stay exact."""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from strategies import event_dicts, replace_values
from wia_security import convert, validate_event
from wia_security.errors import ConversionError
from wia_security.formats import get_format
from wia_security.formats.ocsf import to_ocsf

OCSF = get_format("ocsf")
FOREIGN = Path(__file__).parent / "foreign" / "ocsf"
T = 1765704600000                       # 2025-12-14T09:30:00.000Z


def finding(**extra: Any) -> dict[str, Any]:
    return {"class_uid": 2004, "category_uid": 2, "activity_id": 1, "type_uid": 200401, "severity_id": 3, "time": T,
            "metadata": {"version": "1.1.0", "product": {"name": "Security Hub", "vendor_name": "AWS"}},
            "finding_info": {"uid": "f-1", "title": "S3 bucket is public"}, **extra}


def read(doc: Any) -> dict[str, Any]:
    [event] = OCSF.to_wia(doc)
    result = validate_event(event)
    assert result.valid and not result.warnings, (result.errors, result.warnings)
    return event


def kept(event: dict[str, Any]) -> dict[str, Any]:
    return event.get("meta", {}).get("custom", {}).get("ocsf", {})


# --- times --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("time,expected", [
    (1700000000123, "2023-11-14T22:13:20.123Z"),               # epoch milliseconds (timestamp_t)
    (1700000000, "2023-11-14T22:13:20.000Z"),                  # epoch seconds, as some producers write
    (1700000000.5, "2023-11-14T22:13:20.500Z"),
    (1700000000123456, "2023-11-14T22:13:20.123Z"),            # microseconds
    (1700000000123456789, "2023-11-14T22:13:20.123Z"),         # nanoseconds
    (0, "1970-01-01T00:00:00.000Z"),
])
def test_epoch_units_are_told_apart_by_size(time: float, expected: str) -> None:
    assert read(finding(time=time))["timestamp"] == expected


@pytest.mark.parametrize("text,expected", [
    ("2025-12-14T15:00:00+05:30", "2025-12-14T09:30:00.000Z"),
    ("2025-12-14T09:30:00-00:00", "2025-12-14T09:30:00.000Z"),
    ("2025-12-14T09:30:00.123456789Z", "2025-12-14T09:30:00.123Z"),
    ("2025-12-14T09:30:00Z", "2025-12-14T09:30:00.000Z"),
    ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999Z"),        # a leap second (RFC 3339 allows it)
    ("2025-12-14t09:30:00.5z", "2025-12-14T09:30:00.500Z"),
])
def test_time_dt_is_rewritten_and_the_original_kept(text: str, expected: str) -> None:
    event = read(finding(time_dt=text))
    assert event["timestamp"] == expected
    assert kept(event)["time_dt"] == text                       # as it came: nothing the producer sent is lost


def test_unusable_time_dt_falls_back_to_time_and_is_kept() -> None:
    event = read(finding(time_dt="yesterday"))
    assert event["timestamp"] == "2025-12-14T09:30:00.000Z" and kept(event)["time_dt"] == "yesterday"


@pytest.mark.parametrize("doc,path", [
    ({k: v for k, v in finding().items() if k != "time"}, "/time"),
    ({**{k: v for k, v in finding().items() if k != "time"}, "time_dt": "2025-13-01T00:00:00Z"}, "/time_dt"),
    (finding(time="1700000000"), "/time"),
    (finding(time=10**30), "/time"),
    (finding(time=True), "/time"),
    (finding(class_uid=[2004]), "/class_uid"),
    ([finding(), finding(class_uid=6003)], "/1/class_uid"),      # an array: the element's index comes first
    ([finding(), 5], "/1"),
])
def test_errors_name_the_json_pointer(doc: Any, path: str) -> None:
    with pytest.raises(ConversionError) as info:
        OCSF.to_wia(doc)
    assert info.value.path == path


def test_nested_times_are_rewritten() -> None:
    doc = finding(finding_info={"uid": "f-1", "title": "t", "first_seen_time": 1700000000,
                                "last_seen_time_dt": "2023-11-14T23:13:20.999999+01:00"})
    event = read(doc)
    assert event["data"]["first_seen"] == "2023-11-14T22:13:20.000Z"
    assert event["data"]["last_seen"] == "2023-11-14T22:13:20.999Z"
    assert kept(event)["finding_info"] == {"first_seen_time": 1700000000,
                                           "last_seen_time_dt": "2023-11-14T23:13:20.999999+01:00"}


def test_own_events_keep_every_spelling_exactly() -> None:
    sample = json.loads((Path(__file__).parents[3] / "samples" / "alert-sample.json").read_text())
    sample["timestamp"] = "2024-01-15T17:30:00.123456+05:30"
    sample["data"]["first_seen"] = "2024-01-15T12:00:00Z"
    assert OCSF.to_wia(json.loads(json.dumps(convert(sample, to="ocsf")))) == [sample]
    for event in event_dicts(300, seed=28) + event_dicts(100, seed=28, wild=True):
        assert OCSF.to_wia(convert(event, to="ocsf")) == [event]


# --- nothing vanishes ---------------------------------------------------------------------------------
def _overlay(base: Any, extra: Any) -> Any:
    """`extra` (meta.custom.ocsf) laid over `base` (the WIA event written back as OCSF): objects key by
    key, lists of objects element by element ({} = that element came back whole)."""
    if isinstance(base, dict) and isinstance(extra, dict):
        return {**base, **{k: _overlay(base.get(k), v) if k in base else v for k, v in extra.items()}}
    if isinstance(base, list) and isinstance(extra, list) and len(base) == len(extra) and \
            all(isinstance(v, dict) for v in extra):
        return [_overlay(b, e) for b, e in zip(base, extra)]
    return extra


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    if isinstance(node, dict) and node:
        return {p: v for k, c in node.items() for p, v in _leaves(c, path + (k,)).items()}
    if isinstance(node, list) and node:
        return {p: v for i, c in enumerate(node) for p, v in _leaves(c, path + (i,)).items()}
    return {path: node}


def assert_nothing_vanished(doc: dict[str, Any], event: dict[str, Any]) -> None:
    """Every leaf of the OCSF event is either given back by the WIA event (written as OCSF again) or
    kept as it came in meta.custom.ocsf."""
    bare = copy.deepcopy(event)
    extra = bare.get("meta", {}).get("custom", {}).pop("ocsf", {})
    if bare.get("meta", {}).get("custom") == {}:
        del bare["meta"]["custom"]
    if bare.get("meta") == {}:
        del bare["meta"]
    rebuilt = _overlay(to_ocsf(bare, unmapped=False), extra)
    got = _leaves(rebuilt)
    # An empty object the WIA event writes back filled (observables: [{}] -> [{name, type, ...}]) carries nothing
    # that could be lost; `_unread`'s `{}` for an element means "came back whole", so it cannot be kept apart.
    missing = {p: v for p, v in _leaves(doc).items() if (p not in got or got[p] != v)
               and not (v == {} and any(q[:len(p)] == p and len(q) > len(p) for q in got))}
    assert missing == {}, missing


def foreign_documents() -> list[dict[str, Any]]:
    docs = [json.loads(p.read_text()) for p in sorted(FOREIGN.glob("*.json"))]
    from test_ocsf_roundtrip import FOREIGN as SHAPES
    return [d for d in docs if d.get("class_uid") != 6003] + [copy.deepcopy(d) for d in SHAPES.values()]


@pytest.mark.parametrize("index", range(len(foreign_documents())))
def test_every_attribute_of_a_foreign_event_is_given_back_or_kept(index: int) -> None:
    doc = foreign_documents()[index]
    assert_nothing_vanished(doc, read(doc))


def test_values_wia_refuses_are_left_out_of_the_field_and_kept() -> None:
    doc = finding(count=0, status_id=[1], finding_info={"uid": "f-1", "title": 42, "types": ["malware"]},
                  evidences=[{"src_endpoint": {"ip": "10.0.0.1", "port": 70000}}], confidence_score=250,
                  metadata={"version": "1.1.0", "product": {"name": 7}, "labels": ["ok", 7]}, message={"a": 1},
                  unmapped=[["rule", "ALERT"]])
    event = read(doc)
    assert event["data"]["title"] == "Detection Finding" and event["data"]["category"] == "malware"
    assert "count" not in event["data"] and "confidence" not in event.get("meta", {})
    assert event["source"]["name"] == "ocsf" and event["meta"]["tags"] == ["ok"]
    assert event["context"]["network"]["source"] == {"ip": "10.0.0.1"}
    extra = kept(event)
    assert extra["finding_info"]["title"] == 42 and extra["count"] == 0 and extra["status_id"] == [1]
    assert extra["evidences"] == [{"src_endpoint": {"port": 70000}}] and extra["confidence_score"] == 250
    assert extra["metadata"]["product"]["name"] == 7 and extra["message"] == {"a": 1}
    assert extra["unmapped"] == [["rule", "ALERT"]]              # a list, not an object: kept too
    assert_nothing_vanished(doc, event)


def test_plain_ocsf_of_generated_events_loses_nothing_either() -> None:
    """Plain OCSF this project wrote is read as another producer's: what its classes hold beyond the WIA
    fields (an indicator's confidence band, ...) is kept too, and a canonical event keeps no time_dt."""
    for event in event_dicts(200, seed=5):
        doc = json.loads(json.dumps(convert(event, to="ocsf", unmapped=False)))
        back = read(doc)
        assert_nothing_vanished(doc, back)
        if len(event["timestamp"]) == 24 and event["timestamp"].endswith("Z"):
            assert "time_dt" not in kept(back)


# --- hostility ----------------------------------------------------------------------------------------
HOSTILE = [42, -1, 1e300, 10**20, "x", "", None, True, [], {}, [1], {"a": 1}, "2016-12-31T23:59:60Z",
           "2024-01-01T10:00:00.123456789+05:30", "9999-12-31T23:59:59-23:59", "1700000000", "\u202e\x00"]


def test_mutated_events_give_a_valid_event_or_an_error_with_a_path() -> None:
    """Foreign events and plain OCSF of generated events, 1,500 random mutations: a strictly valid WIA
    event (whose meta.custom.ocsf keeps what it could not take) or a ConversionError with a path."""
    docs = foreign_documents() + [to_ocsf(e, unmapped=False) for e in event_dicts(60, seed=28)]
    rnd = random.Random(28)
    outcomes = {"valid": 0, "error": 0}
    for _ in range(1500):
        doc = replace_values(rnd.choice(docs), rnd, HOSTILE)
        try:
            [event] = OCSF.to_wia(doc)
        except ConversionError as exc:
            assert exc.path and exc.__cause__ is None, (str(exc), json.dumps(doc, default=str)[:400])
            outcomes["error"] += 1
            continue
        assert validate_event(event, warnings=False).valid, json.dumps(doc, default=str)[:400]
        if outcomes["valid"] % 10 == 0:
            assert_nothing_vanished(doc, event)
        outcomes["valid"] += 1
    assert outcomes["valid"] > 1000 and outcomes["error"] > 50, outcomes
