"""LEEF 2.0: header grammar checked by an independent parser, escaping round trips, lossless WIA round trips."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import event_dicts, events
from wia_security import convert, parse, validate_event
from wia_security.errors import ConversionError
from wia_security.formats import leef

from wia_corpus import all_events

# The IBM guide's grammar, written independently of the module: five pipe-terminated header fields
# after "LEEF:2.0|" where a field is any run of non-pipe characters or backslash pairs, then the
# delimiter field (one character or 0x/x + hex), then key=value pairs split on that delimiter.
HEADER = re.compile(r"^LEEF:2\.0\|((?:[^|\\]|\\.)*)\|((?:[^|\\]|\\.)*)\|((?:[^|\\]|\\.)*)\|"
                    r"((?:[^|\\]|\\.)*)\|([^|]|0?x[0-9A-Fa-f]{1,4})\|(.*)$", re.S)
KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.$]*$")


def independent_split(line: str) -> tuple[list[str], dict[str, str]]:
    match = HEADER.match(line)
    assert match, f"not a LEEF 2.0 line: {line[:120]!r}"
    spec = match.group(5)
    delimiter = spec if len(spec) == 1 else chr(int(spec.split("x")[-1], 16))
    pairs: dict[str, str] = {}
    for token in re.split(r"(?<!\\)" + re.escape(delimiter), match.group(6)):
        key, sep, value = token.partition("=")
        assert sep and KEY.match(key), f"bad attribute {token[:60]!r}"
        assert key not in pairs, f"duplicate key {key}"
        pairs[key] = value
    return [match.group(i) for i in range(1, 5)], pairs


def lenient(event: dict) -> dict:
    result = validate_event(event, lenient=True)
    assert result.valid, result.errors
    return result.event


CORPUS = all_events()


@pytest.mark.parametrize("name,event", CORPUS, ids=[n for n, _ in CORPUS])
def test_every_builder_event_and_sample_converts_and_parses_back_exactly(name: str, event: dict) -> None:
    event = lenient(event)
    line = convert(event, to="leef")
    assert "\n" not in line and "\r" not in line
    header, pairs = independent_split(line)
    assert header == ["WIA", "Security", event["version"], event["type"]]
    # QRadar's predefined keys carry what they can, in the spelling the guide asks for.
    assert datetime.strptime(pairs["devTime"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert pairs["devTimeFormat"] == "yyyy-MM-dd'T'HH:mm:ss.SSSZ"
    assert 1 <= int(pairs["sev"]) <= 10
    back = parse(line, from_="leef")[0].to_dict()
    assert back == event
    assert validate_event(back).valid


def test_network_event_fills_qradar_normalized_keys(samples: dict) -> None:
    line = convert(samples["network-event-sample"], to="leef")
    _, pairs = independent_split(line)
    assert {k: pairs[k] for k in ("src", "dst", "srcPort", "dstPort", "proto", "srcBytes", "dstBytes", "cat", "sev")} == {
        "src": "192.168.1.50", "dst": "104.21.89.52", "srcPort": "52341", "dstPort": "443", "proto": "TCP",
        "srcBytes": "2048", "dstBytes": "1572864", "cat": "http", "sev": "6"}
    assert pairs["devTime"] == "2025-12-14T10:15:30.000+0000"


def test_auth_login_marks_a_qradar_login_event() -> None:
    event = [e for _, e in CORPUS if e["type"] == "auth_event" and e["data"]["event_type"] == "login_success"][0]
    _, pairs = independent_split(convert(event, to="leef"))
    assert pairs["isLoginEvent"] == "true" and pairs["usrName"] == event["data"]["user"]["name"]


def test_inexact_values_travel_exactly_beside_the_predefined_key() -> None:
    event = event_dicts(1, seed=3, event_type="alert")[0]
    event.update(severity=7.25, timestamp="2025-12-14T09:30:00.123456+02:00")
    line = convert(event, to="leef")
    _, pairs = independent_split(line)
    assert pairs["sev"] == "7" and pairs["wia.severity"] == "7.25"
    assert pairs["devTime"] == "2025-12-14T07:30:00.123+0000"
    assert pairs["wia.timestamp"] == "2025-12-14T09:30:00.123456+02:00"
    assert parse(line, from_="leef")[0].to_dict() == event


@given(value=st.text(), delimiter=st.sampled_from(["^", "\t", ",", ";", "#", " ", "\u00a6", "|x"[1]]))
def test_attribute_escaping_round_trips_any_string(value: str, delimiter: str) -> None:
    line = f"k={leef.escape_value(value, delimiter)}{delimiter}z=1"
    assert leef.split_attributes(line, delimiter) == {"k": value, "z": "1"}
    assert "\n" not in leef.escape_value(value, delimiter)


@pytest.mark.parametrize(("text", "delimiter", "expected"), [
    # A delimiter or '=' is escaped by an odd run of backslashes, not by an even one.
    ("a=1^b=x\\^y^c=\\\\^d=2", "^", {"a": "1", "b": "x^y", "c": "\\", "d": "2"}),
    ("a=1^b=\\\\\\^c^d=\\", "^", {"a": "1", "b": "\\^c", "d": "\\"}),
    ("k\\=x=v\\n^z=1", "^", {"k=x": "v\n", "z": "1"}),
    ("a=1^^b=2^tail", "^", {"a": "1", "b": "2^tail"}),   # text without a key joins the value before
    ("a=b\\", "\\", {"a": "b"}),                        # a backslash delimiter: only a lone last one
])
def test_attribute_splitting_with_backslash_runs(text: str, delimiter: str, expected: dict) -> None:
    assert leef.split_attributes(text, delimiter) == expected


def test_header_fields_with_backslash_runs() -> None:
    record = leef.split_line("LEEF:2.0|V\\\\|P\\|x|1.0|e|^|a=1")
    assert (record.vendor, record.product, record.product_version, record.event_id) == ("V\\", "P|x", "1.0", "e")


@given(st.text().filter(lambda s: "\n" not in s and "\r" not in s))
def test_header_escaping_round_trips_strings_without_line_breaks(value: str) -> None:
    line = convert(event_dicts(1, seed=1)[0], to="leef", vendor=value, product=value + "|")
    record = leef.split_line(line)
    assert (record.vendor, record.product) == (value, value + "|")
    assert independent_split(line)[0][0].replace("\\|", "|").replace("\\\\", "\\") == value


@settings(max_examples=150, deadline=None)
@given(event=events(wild=True), delimiter=st.sampled_from(["^", "\t", "~"]))
def test_wild_unicode_events_round_trip(event: dict, delimiter: str) -> None:
    line = convert(event, to="leef", delimiter=delimiter)
    assert "\n" not in line and "\r" not in line
    independent_split(line)
    assert parse(line, from_="leef")[0].to_dict() == event


def test_delimiter_spellings_from_the_guide() -> None:
    assert leef.parse_delimiter("^") == "^"
    assert leef.parse_delimiter("0x5E") == "^" and leef.parse_delimiter("x5E") == "^"
    assert leef.parse_delimiter("x09") == "\t" and leef.parse_delimiter("") == "\t"
    assert leef.delimiter_spec("\t") == "x09"
    with pytest.raises(ConversionError):
        leef.parse_delimiter("^^")


@pytest.mark.parametrize("bad", ["|", "\\", "=", "\n", "ab", ""])
def test_unusable_delimiters_are_refused(bad: str, samples: dict) -> None:
    with pytest.raises(ConversionError) as info:
        convert(samples["alert-sample"], to="leef", delimiter=bad)
    assert info.value.path == "delimiter"


def test_another_products_line_becomes_a_valid_alert_with_every_attribute_kept() -> None:
    line = ("<13>Jan 18 11:07:53 192.168.1.1 LEEF:2.0|Lancope|StealthWatch|1.0|41|^|"
            "src=10.0.1.8^dst=10.0.0.5^sev=5^srcPort=81^dstPort=21^devTime=1547809673520^usrName=joe")
    event = parse(line, from_="leef")[0].to_dict()
    assert validate_event(event).valid
    assert event["source"] == {"type": "siem", "name": "StealthWatch", "vendor": "Lancope", "version": "1.0"}
    assert event["context"]["network"]["destination"] == {"ip": "10.0.0.5", "port": 21}
    assert event["timestamp"] == "2019-01-18T11:07:53.520Z"
    assert event["meta"]["custom"]["leef"]["usrName"] == "joe"
    assert parse(line, from_="leef")[0].id == event["id"]       # deterministic id


def test_leef_1_0_lines_use_tab() -> None:
    record = leef.split_line("LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=10.50.1.1\tdst=2.10.20.20\tspt=1200")
    assert record.attributes == {"src": "10.50.1.1", "dst": "2.10.20.20", "spt": "1200"}


@pytest.mark.parametrize("line,path", [("no header here", "header"), ("LEEF:2.0|a|b|c", "header"),
                                       ("LEEF:3.0|a|b|c|d|^|k=v", "header"),
                                       ("LEEF:2.0|a|b|c|d|^|text without key", "attributes")])
def test_broken_lines_say_where(line: str, path: str) -> None:
    with pytest.raises(ConversionError) as info:
        parse(line, from_="leef")
    assert info.value.path == path
