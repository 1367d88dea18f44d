"""wia_security.start_time: the start-time setting both products share (the XSOAR pack's First fetch time, the Splunk
app's start_time); their tests against the gateway, medallion and tansu exercise it end to end."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wia_security.start_time import FORMS, epoch_millis, event_before, start_cutoff

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("value, back", [("3 days", timedelta(days=3)), ("12 hours", timedelta(hours=12)),
                                         ("1 week", timedelta(weeks=1)), ("90 Minutes", timedelta(minutes=90)),
                                         ("2 days ago", timedelta(days=2)), ("0 minutes", timedelta(0)),
                                         ("5days", timedelta(days=5)), (" 1 hour ", timedelta(hours=1))])
def test_relative_start_times(value, back):
    assert start_cutoff(value, NOW) == NOW - back


def test_instants_and_empty():
    assert start_cutoff("2026-01-31T12:00:00Z", NOW) == datetime(2026, 1, 31, 12, tzinfo=timezone.utc)
    assert start_cutoff("2026-01-31T13:00:00.5+01:00", NOW) == datetime(2026, 1, 31, 12, 0, 0, 500000, tzinfo=timezone.utc)
    assert start_cutoff("2026-01-31t12:00:00z", NOW) == datetime(2026, 1, 31, 12, tzinfo=timezone.utc)
    for empty in ("", "  ", None):
        assert start_cutoff(empty, NOW) is None


def test_the_clock_is_read_when_no_now_is_given():
    before = datetime.now(timezone.utc)
    cutoff = start_cutoff("1 hour")
    assert before - timedelta(hours=1) <= cutoff <= datetime.now(timezone.utc) - timedelta(hours=1)


@pytest.mark.parametrize("value, why", [
    ("3 dayz", "must be"), ("3 months", "must be"), ("-3 days", "must be"), ("2026-01-31", "must be"),
    ("2026-01-31T12:00:00", "must be"),             # no offset: RFC 3339 requires it (local time is not known)
    ("2026-02-30T12:00:00Z", "must be"), ("yesterday", "must be"), ("12345678 days", "must be"),
    ("9999999 weeks", "reaches back before the year 1"), ("2026-06-01T12:00:01Z", "is in the future")])
def test_bad_values_say_why_and_the_forms(value, why):
    with pytest.raises(ValueError) as refused:
        start_cutoff(value, NOW)
    assert why in str(refused.value) and FORMS in str(refused.value)
    assert str(refused.value).startswith("must be") or str(refused.value).startswith(repr(value))


def test_a_long_value_is_quoted_short():
    with pytest.raises(ValueError) as refused:
        start_cutoff("x" * 500, NOW)
    assert "x" * 41 not in str(refused.value)


def test_event_before():
    cutoff = datetime(2026, 1, 31, 12, tzinfo=timezone.utc)
    assert event_before({"timestamp": "2026-01-31T11:59:59.999Z"}, cutoff)
    assert not event_before({"timestamp": "2026-01-31T12:00:00Z"}, cutoff)          # at the cutoff: read
    assert event_before({"timestamp": "2026-01-31T13:00:00+02:00"}, cutoff)           # 11:00 UTC
    for unreadable in ({"timestamp": "yesterday"}, {"timestamp": 5}, {}, ["not", "an", "event"], None):
        assert not event_before(unreadable, cutoff)      # validation says what is wrong with it


def test_epoch_millis():
    assert epoch_millis(datetime(1970, 1, 1, 0, 0, 1, 999, tzinfo=timezone.utc)) == 1000
    assert epoch_millis(datetime(2026, 1, 31, 12, tzinfo=timezone.utc)) == 1_769_860_800_000
    assert epoch_millis(datetime(1969, 12, 31, 23, 59, tzinfo=timezone.utc)) == 0      # not ListOffsets' -1 / -2
