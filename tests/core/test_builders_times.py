"""Builder time fields: an aware datetime is written as UTC 'Z'; a naive one is refused naming the field.

A naive datetime (datetime.now(), datetime(2025, 1, 1, 9, 30)) was taken as UTC without a word, so an
event built on a machine at UTC+9 from datetime.now() said it happened nine hours later than it did.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from wia_security import (AlertBuilder, IncidentBuilder, InvalidValueError, ThreatIntelBuilder,
                          VulnerabilityBuilder)

NAIVE = datetime(2025, 1, 1, 9, 30)
SEOUL = timezone(timedelta(hours=9))

# (builder call with a time, the field the error must name)
CALLS = [
    (lambda t: AlertBuilder().timestamp(t), "timestamp"),
    (lambda t: AlertBuilder().seen(t), "data.first_seen"),
    (lambda t: AlertBuilder().seen("2025-01-01T00:00:00Z", t), "data.last_seen"),
    (lambda t: AlertBuilder().indicator("ip", "10.0.0.1", first_seen=t), "data.indicators.first_seen"),
    (lambda t: AlertBuilder().indicator("ip", "10.0.0.1", last_seen=t), "data.indicators.last_seen"),
    (lambda t: ThreatIntelBuilder().seen(t), "data.first_seen"),
    (lambda t: ThreatIntelBuilder().indicator("ip", "10.0.0.1", last_seen=t), "data.indicators.last_seen"),
    (lambda t: VulnerabilityBuilder().dates(published=t), "data.published"),
    (lambda t: VulnerabilityBuilder().dates(modified=t), "data.modified"),
    (lambda t: IncidentBuilder().timeline("opened", t), "data.timeline.timestamp"),
    (lambda t: IncidentBuilder().ioc("ip", "10.0.0.1", first_seen=t), "data.iocs.first_seen"),
    (lambda t: IncidentBuilder().response_action("block_ip", "10.0.0.1", timestamp=t), "data.response_actions.timestamp"),
    (lambda t: IncidentBuilder().dates(created_at=t), "data.created_at"),
    (lambda t: IncidentBuilder().dates(updated_at=t), "data.updated_at"),
    (lambda t: IncidentBuilder().dates(closed_at=t), "data.closed_at"),
]


@pytest.mark.parametrize("call, field", CALLS, ids=[f for _, f in CALLS])
def test_a_naive_datetime_is_refused_naming_the_field(call, field):
    with pytest.raises(InvalidValueError) as exc:
        call(NAIVE)
    assert exc.value.prop_name == field
    assert "naive" in str(exc.value) and "UTC offset" in str(exc.value)


@pytest.mark.parametrize("call, field", CALLS, ids=[f for _, f in CALLS])
def test_an_aware_datetime_is_written_in_utc(call, field):
    event = call(datetime(2025, 1, 1, 9, 30, 0, 123456, tzinfo=SEOUL)).to_dict()
    assert "2025-01-01T00:30:00.123Z" in repr(event)


def test_the_event_time_of_an_aware_datetime_is_the_same_instant():
    moment = datetime(2025, 6, 30, 23, 59, 59, 999000, tzinfo=SEOUL)
    event = AlertBuilder().title("t").timestamp(moment).build()
    assert event.timestamp == "2025-06-30T14:59:59.999Z" and event.time == moment


def test_an_rfc3339_string_without_an_offset_is_refused_by_build_at_its_path():
    from wia_security import InvalidEventError
    with pytest.raises(InvalidEventError) as exc:
        AlertBuilder().title("t").timestamp("2025-01-01T09:30:00").build()
    assert [e.path for e in exc.value.errors] == ["/timestamp"]


@pytest.mark.parametrize("given, written", [
    ("2025-01-01T09:30:00+09:00", "2025-01-01T00:30:00.000Z"),
    ("2025-01-01T00:30:00.123000+00:00", "2025-01-01T00:30:00.123Z"),
    ("2025-01-01T00:30:00.123456Z", "2025-01-01T00:30:00.123456Z"),    # finer than the UTC spelling: kept
    ("2025-01-01T02:30:00.000000001+02:00", "2025-01-01T02:30:00.000000001+02:00"),
    ("2025-01-01t00:30:00.5z", "2025-01-01T00:30:00.500Z"),
    ("2024-12-31T19:30:00-05:00", "2025-01-01T00:30:00.000Z"),
    ("2025-01-01T00:30:00Z", "2025-01-01T00:30:00Z"),               # already the SDK spelling: kept
    ("2025-01-01T00:30:00.000Z", "2025-01-01T00:30:00.000Z"),
])
def test_the_envelope_timestamp_is_written_in_the_spelling_the_upstream_sdks_accept(given, written):
    """An offset or another fraction length was kept as given, so built events drew the validator's
    timestamp_not_canonical warning and were refused by the upstream SDK validators."""
    event = AlertBuilder().title("t").timestamp(given).build()
    assert event.timestamp == written
    canonical = re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", written)
    assert [w.code for w in event.validate().warnings] == ([] if canonical else ["timestamp_not_canonical"])
