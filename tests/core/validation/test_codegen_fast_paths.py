"""Edge cases of the generated check's fast paths (codegen.py), each against the reference.

The generated check may refuse a valid value (the interpreter then decides) but must never accept
an invalid one; for date-times it is exact, since it falls back to the exact check inline. Each
test below fails if its fast path accepted something the schema refuses.
"""
from __future__ import annotations

import pytest
from jsonschema import Draft7Validator, FormatChecker

from reference import reference_is_valid
from test_parity import builder_events
from wia_security.validation import _compiled, _schema_key
from wia_security.validation.codegen import _Memo, compile_check
from wia_security.validation.formats import FAST_FORMAT_CHECKS
from wia_security.validation.nodes import Node

FORMATS = FormatChecker()


def check_for(**keywords) -> tuple:
    """The generated check and its source for one schema object."""
    return compile_check(Node("test#", **keywords))


def reference_for(schema: dict):
    return Draft7Validator(schema, format_checker=FORMATS).is_valid


# --- date-time: calendar in the pattern, exact check inline ----------------------------------
def calendar_sweep() -> list[str]:
    """Day 00-32 of every month of common, leap, century and year-0000 years, canonical spelling."""
    return [f"{year:04d}-{month:02d}-{day:02d}T12:00:00.000Z"
            for year in (2023, 2024, 1900, 2000, 1, 0) for month in range(0, 14) for day in range(0, 33)]


def test_fast_date_time_pattern_accepts_exactly_the_calendar_days_but_29_february():
    fast = FAST_FORMAT_CHECKS["date-time"]
    for value in calendar_sweep():
        valid = FORMATS.conforms(value, "date-time")
        assert not fast(value) or valid, ("fast pattern accepted an invalid date", value)
        leap_day = value[5:10] == "02-29"
        assert fast(value) == (valid and not leap_day), value     # the fast path covers days 29-31


def test_generated_date_time_check_equals_the_reference_on_the_calendar():
    check, source = check_for(types=("string",), format="date-time")
    reference = reference_for({"type": "string", "format": "date-time"})
    assert "_DS" in source                                       # the exact check is inlined
    for value in calendar_sweep():
        assert check(value) == reference(value), value
    assert check("2024-02-29T00:00:00Z") and not check("2023-02-29T00:00:00Z")


@pytest.mark.parametrize("value", [
    "2025-12-14T04:30:00Z", "2025-12-14T04:30:00.000Z", "2025-12-14T04:30:00.5Z", "2025-12-14T04:30:00+09:00",
    "2025-12-14T04:30:00.123456-05:30", "2025-12-14t04:30:00z", "2025-12-14T04:30:00Z\n",     # valid
    "2025-12-14T04:30:00.Z", "2025-12-14T04:30:00.+09:00", "2025-12-14T04:30:00", "2025-12-14T04:30:00.5",
    "2025-12-14T04:30:00Z+09:00", "2025-12-14T04:30:00.5Z0", "2025-12-14T24:00:00Z", "2025-12-14T23:59:60Z",
    "2025-12-14T04:30:00+24:00", "2025-12-14T04:30:00+09:60", "2025-12-14T04:30:00.5Z\n\n", "0000-12-14T04:30:00Z",
    "2025-12-14 04:30:00Z", "2025-06-31T00:00:00Z", "2025-02-30T00:00:00Z", "2100-02-29T00:00:00Z",  # invalid
])
def test_generated_date_time_check_equals_the_reference(value):
    check, _ = check_for(types=("string",), format="date-time")
    assert check(value) == reference_for({"type": "string", "format": "date-time"})(value)


@pytest.mark.parametrize("value, valid", [("2024-02-29T10:00:00.000Z", True), ("2023-02-29T10:00:00.000Z", False),
                                          ("2025-04-31T10:00:00.000Z", False), ("2025-12-14t04:30:00z", True)])
@pytest.mark.parametrize("where", ["required", "optional"])
def test_date_times_in_events_take_the_fast_path_exactly(value, valid, where):
    event = next(e for e in builder_events(40, seed=5) if e["type"] == "alert")
    if where == "required":
        event["timestamp"] = value
    else:
        event["data"]["first_seen"] = value           # an optional key: the `'k' in d and not (...)` form
    node, fast = _compiled(_schema_key(event))
    assert reference_is_valid(event) is valid
    assert fast(event) is valid                       # no interpreter needed either way


# --- numbers: a range test with both bounds already refuses NaN and infinity -----------------
@pytest.mark.parametrize("value, valid", [(0, True), (10, True), (10.0, True), (-0.0, True), (7.5, True),
                                          (10.000001, False), (-1e-9, False), (11, False), (True, False),
                                          (float("nan"), False), (float("inf"), False), (float("-inf"), False),
                                          ("5", False), (None, False)])
def test_bounded_number_check(value, valid):
    check, source = check_for(types=("number",), minimum=0, maximum=10)
    assert " - " not in source                        # no separate finiteness test
    assert check(value) is valid


@pytest.mark.parametrize("value, valid", [(0, True), (1e308, True), (2.5, True), (-0.5, False),
                                          (float("nan"), False), (float("inf"), False), (False, False)])
def test_half_bounded_number_check_still_refuses_infinity(value, valid):
    check, source = check_for(types=("number",), minimum=0)
    assert " - " in source                            # one bound cannot refuse +inf: the test stays
    assert check(value) is valid


def test_severity_in_events_refuses_nan_and_infinity_in_the_generated_check():
    event = next(e for e in builder_events(40, seed=5) if e["type"] == "alert")
    node, fast = _compiled(_schema_key(event))
    for bad in (float("nan"), float("inf"), float("-inf"), 10.5, True):
        assert not fast({**event, "severity": bad}), bad
    assert fast({**event, "severity": 9.5}) and fast({**event, "severity": 10})


# --- memoized patterns: a set probe, the regex run once, only accepted values stored ---------
def test_memo_runs_its_check_once_and_stores_only_what_it_accepts():
    calls: list[str] = []

    def search(value: str):
        calls.append(value)
        return value.startswith("T") or None

    memo = _Memo(search)
    assert memo.check("T1059") is True and calls == ["T1059"]
    assert memo.check("X1") is False and memo.check("X1") is False
    assert memo.accepted == {"T1059"}                 # a refused value is never a later hit


def test_memo_is_cleared_in_place_when_full():
    memo = _Memo(lambda value: True)
    accepted = memo.accepted                          # the generated code holds this very set
    for i in range(_Memo.LIMIT + 1):
        memo.check(f"v{i}")
    assert memo.accepted is accepted and accepted == {f"v{_Memo.LIMIT}"}


def test_pattern_check_uses_the_memo_set_and_refuses_near_misses():
    check, source = check_for(types=("string",), pattern=r"^T\d{4}(\.\d{3})?$")
    reference = reference_for({"type": "string", "pattern": r"^T\d{4}(\.\d{3})?$"})
    for _ in range(2):                                # the second round is served from the memo
        for value in ("T1059", "T1059.001", "T1059.01", "T105", "t1059", "T1059\n", "T1059.001\n", "T١٠٥٩", ""):
            assert check(value) == reference(value), value
    assert "_S or " in source
