"""Epoch conversions are exact and every year 0001-9999 is spelled with four digits."""
from __future__ import annotations

import random
from datetime import datetime, timezone
from fractions import Fraction

import pytest

from wia_security.timeutil import from_epoch_ms, parse_iso, to_epoch_ms, to_iso

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def reference_ms(value: str) -> int:
    delta = parse_iso(value) - EPOCH
    return int(Fraction(delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds, 1000)
               // 1)


def test_to_epoch_ms_floors_exactly_where_the_float_product_did_not():
    rnd = random.Random(7)
    stamps = [f"{rnd.randint(1, 9999):04d}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:"
              f"{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}.{rnd.randint(0, 999999):06d}Z" for _ in range(5000)]
    stamps += ["1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.9995Z", "1970-01-01T00:00:00.0001Z"]
    assert [to_epoch_ms(s) for s in stamps] == [reference_ms(s) for s in stamps]
    assert to_epoch_ms("1969-12-31T23:59:59.9995Z") == -1          # floored; int(timestamp() * 1000) said 0
    assert sum(int(parse_iso(s).timestamp() * 1000) != reference_ms(s) for s in stamps) > 100   # the old way


@pytest.mark.parametrize("ms, text", [
    (-54823090723172, "0232-09-22T11:41:16.828Z"),
    (-62135596800000, "0001-01-01T00:00:00.000Z"),
    (0, "1970-01-01T00:00:00.000Z"),
    (253402300799999, "9999-12-31T23:59:59.999Z"),
])
def test_from_epoch_ms_spells_every_year_with_four_digits_and_round_trips(ms, text):
    assert from_epoch_ms(ms) == text
    assert to_epoch_ms(text) == ms


def test_to_iso_pads_early_years():
    assert to_iso(datetime(5, 3, 1, 2, 3, 4, 56789, tzinfo=timezone.utc)) == "0005-03-01T02:03:04.056Z"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 253402300800000])
def test_from_epoch_ms_out_of_range_is_an_error_callers_catch(bad):
    with pytest.raises((ValueError, OverflowError)):
        from_epoch_ms(bad)


@pytest.mark.parametrize("value, spelled", [("2025-12-14T09:30:00+0100", "+01:00"), ("2025-12-14T09:30-0530", "-05:30")])
def test_a_bound_with_a_basic_offset_is_told_how_to_write_it_not_that_it_has_none(value, spelled):
    # it said "has no UTC offset" of a value that has one, in ISO 8601's basic spelling
    from wia_security.timeutil import time_or_relative
    with pytest.raises(ValueError) as caught:
        time_or_relative(value)
    assert f"as {spelled} (RFC 3339)" in str(caught.value) and "no UTC offset" not in str(caught.value)


def test_a_bound_without_an_offset_is_still_refused_as_having_none():
    from wia_security.timeutil import time_or_relative
    with pytest.raises(ValueError, match="has no UTC offset"):
        time_or_relative("2025-12-14T09:30:00")
    assert time_or_relative("2025-12-14T09:30:00+01:00") == "2025-12-14T09:30:00+01:00"
