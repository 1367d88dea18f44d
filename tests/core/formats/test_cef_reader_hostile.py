"""Hostile CEF lines: each gives strictly valid WIA events with the values the spec says, or a
ConversionError naming where (header, extension/<key>, line, /<index>); never a bare exception, a
silently dropped value, or minutes of work."""
from __future__ import annotations

import pytest

from wia_security import validate_event
from wia_security.errors import ConversionError
from wia_security.formats import get_format

CEF = get_format("cef")
HEADER = "CEF:0|Acme|IDS|2.0|100|Port scan|7|"


def one(line: str | bytes) -> dict:
    [event] = CEF.to_wia(line)
    result = validate_event(event)
    assert result.valid and not result.warnings, [(i.path, i.message) for i in result.errors + result.warnings]
    return event


def test_escapes_in_header_and_extension_are_undone() -> None:
    event = one("CEF:0|Ac\\|me|I\\\\DS|2.0|100|Na\\|me|7|" + r"src=10.0.0.1 msg=a\=b|c\\d request=/q?x\=1 rt=1700000000000")
    assert event["source"] == {"type": "siem", "name": "I\\DS", "vendor": "Ac|me", "version": "2.0"}
    assert event["data"]["title"] == "Na|me"
    assert event["meta"]["custom"]["cef"]["msg"] == "a=b|c\\d"
    assert event["meta"]["custom"]["cef"]["request"] == "/q?x=1"


def test_line_breaks_escaped_or_raw_stay_in_the_value() -> None:
    assert one(HEADER + r"msg=line1\nline2\r src=10.0.0.1")["meta"]["custom"]["cef"]["msg"] == "line1\nline2\r"
    event = one(HEADER + "msg=line1\nline2 src=10.0.0.1")
    assert event["meta"]["custom"]["cef"]["msg"] == "line1\nline2"
    assert event["context"]["network"]["source"]["ip"] == "10.0.0.1"


@pytest.mark.parametrize("line", ["\ufeff" + HEADER + "src=10.0.0.1", b"\xef\xbb\xbf" + (HEADER + "src=10.0.0.1").encode()])
def test_a_utf8_bom_is_not_in_the_way(line: str | bytes) -> None:
    assert one(line)["context"]["network"]["source"]["ip"] == "10.0.0.1"


def test_empty_extension_gives_an_alert() -> None:
    for line in (HEADER, HEADER + "   "):
        event = one(line)
        assert event["data"]["title"] == "Port scan" and event["meta"]["custom"]["cef"] == {}


def test_a_key_twice_with_different_values_is_refused_the_same_value_is_kept() -> None:
    with pytest.raises(ConversionError) as info:
        CEF.to_wia(HEADER + "src=10.0.0.1 src=10.0.0.2")
    assert info.value.path == "extension/src"
    assert one(HEADER + "src=10.0.0.1 src=10.0.0.1")["context"]["network"]["source"]["ip"] == "10.0.0.1"


def test_ten_megabyte_values_are_read_in_linear_time() -> None:
    big = "x" * 10_000_000
    assert len(one(HEADER + "msg=" + big + " src=10.0.0.1")["meta"]["custom"]["cef"]["msg"]) == 10_000_000
    # two million unescaped '=' without a space: the key search was quadratic (minutes), and it
    # cached every megabyte-long candidate word
    value = "a=" * 2_000_000
    assert one(HEADER + "msg=" + value)["meta"]["custom"]["cef"]["msg"] == value
    assert one(HEADER + "msg=" + "\\" * 4_000_000 + "=x")["meta"]["custom"]["cef"]["msg"] == "\\" * 2_000_000 + "=x"


@pytest.mark.parametrize("doc,path", [
    ({"not": "a line"}, "line"),
    (42, "line"),
    ([HEADER + "src=10.0.0.1", 42], "/1"),
    (b"CEF:0|a|b|c|d|e|5|msg=\xff\xfe", "line"),
    ("CEF:0|a|b|c|d|e", "header"),
    ("no header at all", "header"),
    ("CEF:0|a|b|c|d|e|f|junk without key", "extension"),
    # WIA's own layout (type, x.y.z version, cs1Label=wiaEventId) but not written by from_wia
    ("CEF:0|WIA|Security|1.0.0|alert|T|5|cs1Label=wiaEventId cs1=6f1d7c52-5a39-4d5e-9a43-8f0c2f6b1e21", "/timestamp"),
])
def test_unusable_documents_are_refused_with_where(doc, path: str) -> None:
    with pytest.raises(ConversionError) as info:
        CEF.to_wia(doc)
    assert info.value.path == path, str(info.value)


@pytest.mark.parametrize("extension", [
    "spt=99999 dpt=-1 src=not-an-ip", "src=10.0.0.1 proto=6 deviceDirection=2", "msg=\x00\x01 suser=\u202e\u202e",
    "fileHash=" + "A" * 64, "rt=Dec 05 03:04:05 +0100",
])
def test_odd_values_still_give_a_valid_alert(extension: str) -> None:
    event = one(HEADER + extension)
    assert event["meta"]["custom"]["cef"]                 # every key kept as it came
    if "fileHash" in extension:
        assert event["data"]["indicators"] == [{"type": "file_hash_sha256", "value": "a" * 64}]
