"""Every spelling of a time that WIA's date-time format accepts, in every format, both ways.

RFC 3339 (and so the schemas' `date-time`, as jsonschema checks it: docs/validation.md) takes "Z" or any offset
up to 23:59, any number of fraction digits, a lower-case `t`/`z`, `-00:00`, the years 0001-9999 and one trailing
newline. Each event of the corpus (one per type) gets every time written in one such spelling; each writer must
give what its product reads (checked with the product's own rules: STIX through the OASIS validator, OCSF
against the pinned schema, ECS against strict_date_optional_time, ASFF against Security Hub's syntax, CEF `rt` in
epoch milliseconds, LEEF `devTime` in the format its devTimeFormat names, CIM `_time` in epoch seconds), and
reading it back must name the same instant (exactly where the format is lossless).

A valid time whose instant in UTC leaves the years 1-9999 (9999-12-31T23:30:00-01:00 is in year 10000 in UTC)
is kept by the formats that can hold it at its own offset or as epoch milliseconds (ECS, ASFF, OCSF, CEF, LEEF),
and refused, naming the member, by those whose times are UTC only (STIX, CIM). docs/formats/README.md says so.
"""
from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ocsf_validator import validate as ocsf_problems
from stix_validator import findings as stix_findings
from test_ecs import ecs_problems
from wia_corpus import builder_events
from wia_security import ConversionError, convert, parse, validate_event
from wia_security.formats.asff import TIMESTAMP as ASFF_TIMESTAMP
from wia_security.timeutil import parse_iso

CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SPELLINGS = (
    "2025-12-14T09:30:00Z", "2025-12-14t09:30:00z", "2025-12-14T09:30:00.1Z", "2025-12-14T09:30:00.123456789123Z",
    "2025-12-14T09:30:00+00:00", "2025-12-14T09:30:00-00:00", "2025-12-14T15:17:00.25+05:47",
    "2025-12-31T23:30:00-05:45",            # 2026 in UTC
    "2026-01-01T00:15:00.999999+23:59",     # 2025 in UTC
    "0001-01-01T00:00:00Z", "0001-01-01T05:00:00.0005+05:00", "9999-12-31T23:59:59.999Z",
    "9999-12-31T19:00:00.9999999-04:59", "2025-12-14T09:30:00Z\n", "2025-12-14T09:30:00.123Z\n",
    "2025-12-14t09:30:00.5-23:59\n",
)
#: valid RFC 3339 whose instant in UTC is in year 10000 or year 0
OUT_OF_RANGE = ("9999-12-31T23:30:00-01:00", "9999-12-31t23:59:59.9999999999-23:59", "0001-01-01T00:30:00+01:00\n",
                "9999-12-31T20:00:00.5-19:00")
OPTIONS: dict[str, dict[str, Any]] = {"asff": {"account_id": "111111111111"}}
FORMATS = ("stix", "ocsf", "ecs", "asff", "cim", "leef", "cef")
#: the first corpus event of each type
EVENTS = list({name.split("/")[0]: (name, event) for name, event in reversed(builder_events())}.values())
LEEF_DEV_TIME = re.compile(r"devTime=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000)[\t^]")
CEF_RT = re.compile(r" rt=(-?\d+)(?: |$)")


def _retimed(value: Any, spelling: str) -> Any:
    """`value` with every date-time (the corpus writes them canonically) replaced by `spelling`."""
    if isinstance(value, dict):
        return {k: _retimed(v, spelling) for k, v in value.items()}
    if isinstance(value, list):
        return [_retimed(v, spelling) for v in value]
    return spelling if isinstance(value, str) and CANONICAL.fullmatch(value) else value


def _ms(text: str):
    moment = parse_iso(text)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _medallion_reads(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")       # medallion.common.string_to_datetime
    except ValueError:
        return False
    return True


def product_problems(name: str, doc: Any) -> list[str]:
    """What the product (or its own validator) would refuse in `doc`'s time fields."""
    if name == "stix":      # and what medallion (OASIS's TAXII server) reads: a Get Objects failed (500) on more digits
        return stix_findings(doc) + [f"{o['id']} {k}: {o[k]!r}" for o in doc["objects"] for k in ("created", "modified")
                                     if k in o and not _medallion_reads(o[k])]
    if name == "ocsf":
        return ocsf_problems(doc)
    if name == "ecs":
        return ecs_problems(doc)
    if name == "asff":
        return [f"{k}: {doc[k]!r}" for k in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt")
                if k in doc and not ASFF_TIMESTAMP.fullmatch(doc[k])]
    if name == "cim":
        return [] if type(doc["fields"]["_time"]) in (int, float) else [f"_time {doc['fields']['_time']!r}"]
    if name == "cef":
        return [] if CEF_RT.search(doc) else ["no rt in epoch milliseconds"]
    return [] if LEEF_DEV_TIME.search(doc) else ["no devTime in yyyy-MM-dd'T'HH:mm:ss.SSSZ"]


@pytest.mark.parametrize("spelling", SPELLINGS, ids=repr)
@pytest.mark.parametrize("name", FORMATS)
def test_every_spelling_is_written_as_the_product_reads_it_and_comes_back(name: str, spelling: str) -> None:
    for kind, original in EVENTS:
        event = _retimed(copy.deepcopy(original), spelling)
        assert validate_event(event).valid, kind
        doc = convert(event, to=name, **OPTIONS.get(name, {}))
        assert product_problems(name, doc) == [], (kind, doc if isinstance(doc, str) else None)
        [back] = [e.to_dict() for e in parse(doc, from_=name)]
        assert validate_event(back).valid, (kind, back)
        if name == "cim":       # _time: epoch seconds, microseconds kept where a float holds them (1697-2242)
            assert _ms(back["timestamp"]) == _ms(event["timestamp"]), kind
        else:
            assert back == event, kind
        if name == "stix":      # plain STIX too: every `created` in STIX's syntax, read to the millisecond
            try:
                plain = convert(event, to="stix", wia_extension=False)
            except ConversionError:
                continue        # an event plain STIX cannot show (test_stix_roundtrip.py)
            assert stix_findings(plain) == [], kind
            assert _ms(parse(plain, from_="stix")[-1].to_dict()["timestamp"]) == _ms(event["timestamp"]), kind


@pytest.mark.parametrize("spelling", OUT_OF_RANGE, ids=repr)
@pytest.mark.parametrize("name", ("ocsf", "ecs", "asff", "leef", "cef"))
def test_an_instant_past_9999_in_utc_is_kept_where_the_format_can_hold_it(name: str, spelling: str) -> None:
    if name == "ecs" and spelling.endswith("-23:59"):
        return      # nothing Elasticsearch reads spells it: test_ecs_refuses_what_no_elasticsearch_date_spells
    for kind, original in EVENTS:
        event = _retimed(copy.deepcopy(original), spelling)
        assert validate_event(event).valid, kind
        doc = convert(event, to=name, **OPTIONS.get(name, {}))
        assert product_problems(name, doc) == [] or name == "leef", kind
        assert [e.to_dict() for e in parse(doc, from_=name)] == [event], kind
    if name == "leef":          # no devTime (QRadar takes the time it received the line); wia.timestamp keeps it
        assert "devTime=" not in doc and "wia.timestamp=" in doc


@pytest.mark.parametrize("spelling", OUT_OF_RANGE, ids=repr)
@pytest.mark.parametrize("name", ("stix", "cim"))
def test_an_instant_past_9999_in_utc_is_refused_by_utc_only_formats_naming_the_member(name: str, spelling: str) -> None:
    for kind, original in EVENTS:
        event = copy.deepcopy(original)
        event["timestamp"] = spelling
        with pytest.raises(ConversionError) as refused:
            convert(event, to=name)
        assert refused.value.path == "/timestamp" and repr(spelling) in str(refused.value), kind
        assert "outside the years 0001-9999" in str(refused.value)


def test_ecs_refuses_what_no_elasticsearch_date_spells() -> None:
    """Year 10000 in UTC, and an offset beyond 18:00 (no Java ZoneOffset) that 18:00 cannot replace (the year
    would be 10000 there too): ECS requires @timestamp, and Elasticsearch would refuse every spelling."""
    event = dict(EVENTS[0][1], timestamp="9999-12-31t23:59:59.9999999999-23:59")
    with pytest.raises(ConversionError) as refused:
        convert(event, to="ecs")
    assert refused.value.path == "/timestamp" and "beyond 18:00" in str(refused.value)


def test_ecs_writes_an_offset_beyond_18_hours_at_18_hours_when_utc_has_no_spelling() -> None:
    doc = convert(dict(EVENTS[0][1], timestamp="9999-12-31T20:00:00.5-19:00"), to="ecs")
    assert doc["@timestamp"] == "9999-12-31T21:00:00.500000-18:00" and ecs_problems(doc) == []


def test_stix_names_the_member_that_is_out_of_range() -> None:
    event = copy.deepcopy(next(e for n, e in EVENTS if n.startswith("threat_intel")))
    event["data"]["last_seen"] = "9999-12-31T23:30:00-01:00"
    with pytest.raises(ConversionError) as refused:
        convert(event, to="stix")
    assert refused.value.path == "/data/last_seen"


@pytest.mark.parametrize("seconds,expected", [
    (253402300799.999, "9999-12-31T23:59:59.999Z"),         # round(x, 6) of the float gave .998993
    (-62135596799.876544, "0001-01-01T00:00:00.123460Z"),   # strftime wrote the year as "1": invalid
    (1735689600.123456, "2025-01-01T00:00:00.123456Z"),
])
def test_cim_time_reads_the_seconds_that_were_written(seconds: float, expected: str) -> None:
    doc = convert(EVENTS[0][1], to="cim")
    doc["fields"]["_time"] = seconds
    assert parse(doc, from_="cim")[0].to_dict()["timestamp"] == expected


def test_cim_time_keeps_the_millisecond_where_a_float_cannot_hold_the_microsecond() -> None:
    for spelling in ("9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00.999999Z", "2500-06-30T12:00:00.000999Z"):
        event = dict(EVENTS[0][1], timestamp=spelling)
        back = parse(convert(event, to="cim"), from_="cim")[0].to_dict()["timestamp"]
        assert _ms(back) == _ms(spelling), (spelling, back)


@pytest.mark.parametrize("leap", ["2016-12-31T23:59:60Z", "2016-12-31T23:59:60.5+00:00"])
def test_a_leap_second_from_security_hub_is_read_as_the_last_millisecond_before_the_next(leap: str) -> None:
    """Security Hub's syntax takes second 60 and WIA's schema does not (like jsonschema): the event gets
    :59.999, which keeps the order of events, as the STIX and OCSF readers do (it was kept as it came, and
    the event was invalid)."""
    finding = json.loads((Path(__file__).parent / "foreign/asff/guardduty-ssh-bruteforce.json").read_text())
    for key in ("CreatedAt", "UpdatedAt", "FirstObservedAt"):
        finding[key] = leap
    [event] = [e.to_dict() for e in parse(finding, from_="asff")]
    assert event["timestamp"] == "2016-12-31T23:59:59.999Z" and validate_event(event).valid
