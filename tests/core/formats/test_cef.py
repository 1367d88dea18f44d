"""CEF: header grammar checked by an independent parser, the spec's escapes, lossless WIA round trips."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import event_dicts, events
from wia_corpus import all_events
from wia_security import convert, parse, validate_event
from wia_security.errors import ConversionError
from wia_security.formats import cef

# The CEF implementation standard's grammar, written independently of the module: seven
# pipe-terminated header fields after "CEF:" (a field is non-pipe characters or backslash pairs),
# Severity 0-10, then space-separated key=value pairs where a value's '=' is always escaped.
HEADER = re.compile(r"^CEF:(\d+)\|" + r"((?:[^|\\]|\\.)*)\|" * 5 + r"(\d|10)\|(.*)$", re.S)
PAIR_START = re.compile(r"(?:^| )([A-Za-z][A-Za-z0-9_.$]*)=")
# Sentinel's CommonSecurityLog columns for the dictionary keys this converter writes (cef-name-mapping).
SENTINEL_COLUMNS = {
    "act": "DeviceAction", "app": "ApplicationProtocol", "cat": "DeviceEventCategory", "cnt": "EventCount",
    "deviceDirection": "CommunicationDirection", "destinationServiceName": "DestinationServiceName",
    "dhost": "DestinationHostName", "dmac": "DestinationMACAddress", "dpt": "DestinationPort",
    "dst": "DestinationIP", "dvchost": "DeviceName", "end": "EndTime", "fileHash": "FileHash",
    "filePath": "FilePath", "fname": "FileName", "fsize": "FileSize", "in": "ReceivedBytes", "msg": "Message",
    "out": "SentBytes", "outcome": "EventOutcome", "proto": "Protocol", "reason": "Reason", "request": "RequestURL",
    "requestClientApplication": "RequestClientApplication", "requestMethod": "RequestMethod", "rt": "ReceiptTime",
    "shost": "SourceHostName", "smac": "SourceMACAddress", "sntdom": "SourceNTDomain", "spid": "SourceProcessId",
    "sproc": "SourceProcessName", "spt": "SourcePort", "src": "SourceIP", "start": "StartTime",
    "suser": "SourceUserName", **{f"cs{i}": f"DeviceCustomString{i}" for i in range(1, 7)},
    **{f"cs{i}Label": f"DeviceCustomString{i}Label" for i in range(1, 7)},
    "cfp1": "DeviceCustomFloatingPoint1", "cfp1Label": "DeviceCustomFloatingPoint1Label",
    "cfp2": "DeviceCustomFloatingPoint2", "cfp2Label": "DeviceCustomFloatingPoint2Label",
}


def independent_split(line: str) -> tuple[list[str], dict[str, str]]:
    match = HEADER.match(line)
    assert match, f"not a CEF line: {line[:120]!r}"
    ext = match.group(8)
    starts = list(PAIR_START.finditer(ext))
    pairs: dict[str, str] = {}
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(ext)
        value = ext[m.end():end]
        assert not re.search(r"(?<!\\)=", value.replace("\\\\", "")), f"unescaped '=' in {value[:60]!r}"
        assert m.group(1) not in pairs
        pairs[m.group(1)] = value
    return [match.group(i) for i in range(1, 8)], pairs


def lenient(event: dict) -> dict:
    result = validate_event(event, lenient=True)
    assert result.valid, result.errors
    return result.event


CORPUS = all_events()


@pytest.mark.parametrize("name,event", CORPUS, ids=[n for n, _ in CORPUS])
def test_every_builder_event_and_sample_converts_and_parses_back_exactly(name: str, event: dict) -> None:
    event = lenient(event)
    line = convert(event, to="cef")
    assert "\n" not in line and "\r" not in line
    header, pairs = independent_split(line)
    assert header[:5] == ["0", "WIA", "Security", event["version"], event["type"]]
    assert int(header[6]) == min(10, int(event["severity"] + 0.5))
    assert len(header[5]) <= cef.NAME_MAX
    assert pairs["rt"].isdigit() and pairs["cs1"] == event["id"] and pairs["cs1Label"] == "wiaEventId"
    for key in pairs:          # dictionary keys are the ones Sentinel gives a column; the rest are ours
        assert key in SENTINEL_COLUMNS or key.startswith("wia."), key
    back = parse(line, from_="cef")[0].to_dict()
    assert back == event
    assert validate_event(back).valid


def test_sentinel_columns_get_the_network_fields(samples: dict) -> None:
    header, pairs = independent_split(convert(samples["network-event-sample"], to="cef"))
    assert header[5] == "ET MALWARE Suspicious Download from Known Bad Host"
    got = {SENTINEL_COLUMNS[k]: pairs[k] for k in ("src", "dst", "spt", "dpt", "proto", "act", "out", "in",
                                                    "request", "requestMethod", "deviceDirection")}
    assert got == {"SourceIP": "192.168.1.50", "DestinationIP": "104.21.89.52", "SourcePort": "52341",
                   "DestinationPort": "443", "Protocol": "TCP", "DeviceAction": "allowed", "SentBytes": "2048",
                   "ReceivedBytes": "1572864", "RequestURL": "https://suspicious-download.xyz/update/patch.exe",
                   "RequestMethod": "GET", "CommunicationDirection": "1"}
    assert pairs["rt"] == "1765707330000"


def test_header_escapes_and_long_names(samples: dict) -> None:
    event = lenient(samples["alert-sample"])
    event["data"]["title"] = "a|b\\c\nd" + "x" * 600
    line = convert(event, to="cef")
    header, pairs = independent_split(line)
    assert header[5].startswith("a\\|b\\\\c d") and len(header[5]) == cef.NAME_MAX
    assert pairs["wia.data.title"] == "a|b\\\\c\\nd" + "x" * 600
    assert parse(line, from_="cef")[0].to_dict() == event


@given(st.text())
def test_extension_escaping_round_trips_any_string(value: str) -> None:
    text = f"a={cef.escape_value(value)} b={cef.escape_value(value + ' x=1')} c=end"
    assert cef.split_extension(text) == {"a": value, "b": value + " x=1", "c": "end"}


@pytest.mark.parametrize(("text", "expected"), [
    # An '=' after an odd run of backslashes is escaped; after an even run it ends a key (if one is there).
    ("a=1 b=x\\\\=y c=\\=z", {"a": "1", "b": "x\\=y", "c": "=z"}),
    ("a=\\\\\\= b=2", {"a": "\\=", "b": "2"}),
    ("a=1\tb=2 c=x=y", {"a": "1", "b": "2", "c": "x=y"}),
])
def test_extension_splitting_with_backslash_runs(text: str, expected: dict) -> None:
    assert cef.split_extension(text) == expected


def test_header_fields_with_backslash_runs() -> None:
    record = cef.split_line("CEF:0|V\\\\|P\\|x\\q|1.0|alert|n|5|a=1")
    assert (record.vendor, record.product, record.product_version) == ("V\\", "P|x\\q", "1.0")


@given(st.text().filter(lambda s: "\n" not in s and "\r" not in s))
def test_header_escaping_round_trips_strings_without_line_breaks(value: str) -> None:
    line = convert(event_dicts(1, seed=2)[0], to="cef", vendor=value, product="|" + value)
    record = cef.split_line(line)
    assert (record.vendor, record.product) == (value, "|" + value)


@settings(max_examples=150, deadline=None)
@given(event=events(wild=True))
def test_wild_unicode_events_round_trip(event: dict) -> None:
    line = convert(event, to="cef")
    assert "\n" not in line and "\r" not in line
    independent_split(line)
    assert parse(line, from_="cef")[0].to_dict() == event


def test_fractional_severity_and_sub_millisecond_time_are_carried_exactly() -> None:
    event = event_dicts(1, seed=5, event_type="vulnerability")[0]
    event.update(severity=9.5, timestamp="2025-12-14T09:30:00.1234567Z")
    header, pairs = independent_split(convert(event, to="cef"))
    assert header[6] == "10" and pairs["wia.severity"] == "9.5"
    assert pairs["rt"] == "1765704600123" and pairs["wia.timestamp"] == "2025-12-14T09:30:00.1234567Z"
    assert parse(convert(event, to="cef"), from_="cef")[0].to_dict() == event


def test_another_products_line_becomes_a_valid_alert() -> None:
    line = ("Sep 19 08:26:10 host CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|Very-High|"
            "src=10.0.0.1 dst=2.1.2.2 spt=1232 suser=joe cs1=blocked by policy cs1Label=verdict rt=1695111970000 "
            "msg=path C:\\\\temp has a\\=b")
    event = parse(line, from_="cef")[0].to_dict()
    assert validate_event(event).valid
    assert event["severity"] == 10 and event["data"]["title"] == "worm successfully stopped"
    assert event["context"]["network"]["source"] == {"ip": "10.0.0.1", "port": 1232}
    assert event["meta"]["custom"]["cef"]["verdict"] == "blocked by policy"
    assert event["meta"]["custom"]["cef"]["msg"] == "path C:\\temp has a=b"
    assert event["timestamp"] == "2023-09-19T08:26:10.000Z"


@pytest.mark.parametrize("line,path", [("plain text", "header"), ("CEF:0|a|b|c|d", "header"),
                                       ("CEF:0|a|b|c|d|e|5|just words", "extension")])
def test_broken_lines_say_where(line: str, path: str) -> None:
    with pytest.raises(ConversionError) as info:
        parse(line, from_="cef")
    assert info.value.path == path
