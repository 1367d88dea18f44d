"""Times in other products' CEF and LEEF lines: the spec layouts with a numeric offset or a zone name,
the syslog header's time when the line has none, refusal (ConversionError naming the key) of a time
that cannot be placed, and a visible `meta.labels.timestamp_source` saying where the time came from."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wia_security import validate_event
from wia_security.errors import ConversionError
from wia_security.formats import get_format
from wia_security.formats.keyvalue import read_time, syslog_time
from wia_security.timeutil import parse_iso

CEF = get_format("cef")
LEEF = get_format("leef")
HEADER = "CEF:0|Acme|IDS|2.0|100|Port scan|7|"


def one(fmt, line: str) -> dict:
    [event] = fmt.to_wia(line)
    result = validate_event(event)
    assert result.valid and not result.warnings, [(i.path, i.message) for i in result.errors + result.warnings]
    return event


@pytest.mark.parametrize("text,expected", [
    ("Dec 05 2026 03:04:05.123 +0200", "2026-12-05T01:04:05.123Z"),
    ("Dec 05 2026 03:04:05 -05:00", "2026-12-05T08:04:05.000Z"),
    ("Dec 05 2026 03:04:05 +02", "2026-12-05T01:04:05.000Z"),
    ("Dec 05 2026 03:04:05 GMT+2", "2026-12-05T01:04:05.000Z"),
    ("Dec 05 2026 03:04:05 UTC-05:30", "2026-12-05T08:34:05.000Z"),
    ("Dec 05 2026 03:04:05 Europe/Berlin", "2026-12-05T02:04:05.000Z"),   # IANA name, winter: +1
    ("Jul 05 2026 03:04:05 Europe/Berlin", "2026-07-05T01:04:05.000Z"),   # summer: +2
    ("Dec 05 2026 03:04:05 PST", "2026-12-05T11:04:05.000Z"),
])
def test_spec_layout_with_an_offset_or_zone_is_read(text: str, expected: str) -> None:
    assert read_time(text) == expected
    event = one(CEF, HEADER + f"src=10.0.0.1 rt={text}")
    assert event["timestamp"] == expected
    assert event["meta"]["labels"]["timestamp_source"] == "rt"


@pytest.mark.parametrize("text,why", [
    ("Dec 05 2026 03:04:05 +2400", "no UTC offset"),
    ("Dec 05 2026 03:04:05 -5", "no UTC offset"),                     # one digit, no GMT: not an offset
    ("Dec 05 2026 03:04:05 XYZ", "unknown time zone"),
    ("Dec 05 2026 03:04:05 Mars/Olympus", "unknown time zone"),
    ("Mar 08 2026 02:30:00 America/New_York", "ambiguous"),           # skipped by the DST change
    ("Nov 01 2026 01:30:00 America/New_York", "ambiguous"),           # repeated by the DST change
    ("yesterday", "not a time"),
    ("1" * 40, "out of range"),
])
def test_a_time_that_cannot_be_placed_is_refused_naming_the_key(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        read_time(text)
    with pytest.raises(ConversionError) as info:
        CEF.to_wia(HEADER + f"src=10.0.0.1 rt={text} end=1700000000000")   # end is not used instead
    assert info.value.path == "extension/rt" and why in str(info.value)
    with pytest.raises(ConversionError) as info:
        LEEF.to_wia(f"LEEF:2.0|Acme|IDS|2.0|scan|^|devTime={text}")
    assert info.value.path == "attributes/devTime"


def test_a_ten_megabyte_time_is_refused_quickly() -> None:
    with pytest.raises(ConversionError) as info:
        CEF.to_wia(HEADER + "rt=" + "1" * 10_000_000)
    assert info.value.path == "extension/rt" and len(str(info.value)) < 300


def test_fortigate_line_takes_its_eventtime_not_the_time_of_reading() -> None:
    line = ('<185>date=2024-02-11 time=09:44:01 devname="FGT-HQ" ' + "CEF:0|Fortinet|Fortigate|v7.2.5|16384|utm:ips|5|"
            "FTNTFGTeventtime=1707644641123456789 src=45.33.32.156")
    event = one(CEF, line)
    assert event["timestamp"] == "2024-02-11T09:44:01.123Z"
    assert event["meta"]["labels"] == {"timestamp_source": "FTNTFGTeventtime"}


@pytest.mark.parametrize("prefix,expected,where", [
    ('<185>date=2024-02-11 time=09:44:01 devname="FGT-HQ" tz="-0500" ', "2024-02-11T14:44:01.000Z", "syslog:date+time"),
    ("<189>date=2024-02-11 time=09:44:01 eventtime=1707644641000000000 ", "2024-02-11T09:44:01.000Z", "syslog:eventtime"),
    ("<165>1 2024-06-01T10:00:00.003+02:00 dsm01 ds - - - ", "2024-06-01T08:00:00.003Z", "syslog:rfc5424"),
    ("<13>2024-06-01T10:00:00Z dsm01 ", "2024-06-01T10:00:00.000Z", "syslog:rfc5424"),       # rsyslog RFC 3339
])
def test_a_line_without_a_time_key_takes_the_syslog_header_time(prefix: str, expected: str, where: str) -> None:
    body = "CEF:0|Trend Micro|Deep Security Agent|20.0.0|4000000|Eicar_test_file|6|act=Delete"
    event = one(CEF, prefix + body)
    assert (event["timestamp"], event["meta"]["labels"]["timestamp_source"]) == (expected, where)
    leef = one(LEEF, prefix + "LEEF:2.0|Trend Micro|Deep Security Agent|20.0.0|4000000|^|act=Delete")
    assert (leef["timestamp"], leef["meta"]["labels"]["timestamp_source"]) == (expected, where)


def test_rfc3164_header_without_a_year_is_the_latest_year_not_in_the_future() -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
    assert syslog_time("<134>Feb  5 10:00:00 dsm01", now=now) == ("2025-02-05T10:00:00.000Z", "syslog:rfc3164")
    assert syslog_time("Jan  5 10:00:00 dsm01", now=now) == ("2026-01-05T10:00:00.000Z", "syslog:rfc3164")


def test_29_february_without_a_year_is_the_latest_leap_day() -> None:
    # strptime's default year 1900 has no 29 Feb: such a header or rt= was not read at all
    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert syslog_time("<134>Feb 29 10:00:00 fw01", now=now) == ("2024-02-29T10:00:00.000Z", "syslog:rfc3164")
    assert read_time("Feb 29 10:00:00.250", now=now) == "2024-02-29T10:00:00.250Z"
    assert read_time("Feb 29 10:00:00 +0200", now=datetime(2028, 2, 29, 12, 0, tzinfo=timezone.utc)) == \
        "2028-02-29T08:00:00.000Z"
    assert read_time("Feb 28 10:00:00", now=now) == "2026-02-28T10:00:00.000Z"


def test_a_line_with_no_time_at_all_says_its_timestamp_is_the_time_of_reading() -> None:
    before = datetime.now(timezone.utc)
    for fmt, line in ((CEF, "CEF:0|Trend Micro|Deep Security Agent|20.0.0|4000000|Eicar|6|act=Delete"),
                      (LEEF, "LEEF:1.0|Microsoft|MSExchange|2016|15345|src=10.50.1.1"),
                      (CEF, "\ufeff" + "CEF:0|Trend Micro|DSA|20.0.0|4000000|Eicar|6|act=Delete rt=")):   # empty rt: no time
        event = one(fmt, line)
        assert event["meta"]["labels"] == {"timestamp_source": "time_of_reading"}
        assert before - timedelta(seconds=1) <= parse_iso(event["timestamp"]) <= datetime.now(timezone.utc)


def test_own_lines_carry_no_label_and_keep_their_time() -> None:
    from strategies import event_dicts
    for event in event_dicts(50, seed=3):
        for fmt in (CEF, LEEF):
            [back] = fmt.to_wia(fmt.from_wia(event))
            assert back == event
