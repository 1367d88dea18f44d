"""timeutil and start_time take every spelling the date-time format accepts (tests/strategies.py draws them all):
the same instant, in UTC milliseconds as builders write it, in epoch milliseconds, as a query bound and as a
start time."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st

from strategies import HypothesisChooser, timestamp
from wia_security.start_time import start_cutoff
from wia_security.timeutil import from_epoch_ms, parse_iso, time_or_relative, to_epoch_ms, to_iso

_FAR = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_every_spelling_is_one_instant_everywhere(data) -> None:
    value = timestamp(HypothesisChooser(data.draw))
    moment = parse_iso(value)
    ms = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    canonical = to_iso(moment)
    assert len(canonical) == 24 and parse_iso(canonical) == ms
    assert from_epoch_ms(to_epoch_ms(value)) == canonical
    assert time_or_relative(value) == value
    assert start_cutoff(value, now=_FAR) == moment


@pytest.mark.parametrize("value", ["9999-12-31T23:30:00-01:00", "0001-01-01T00:30:00+01:00\n"])
def test_an_instant_outside_the_years_1_to_9999_in_utc_has_epoch_milliseconds_but_no_utc_spelling(value) -> None:
    assert to_epoch_ms(value) == (parse_iso(value) - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds() * 1000
    with pytest.raises(OverflowError):
        to_iso(parse_iso(value))
    assert time_or_relative(value) == value
