"""Numbers in CEF, LEEF and CIM fields are ASCII digits. str.isdigit also says yes to '²' (which int()
refuses: the readers failed with no path, "not a valid ... document (ValueError ...)") and to other
scripts' digits ('٨٠', which int() reads as 80); a severity of 'nan' or 'inf' (float() reads both) made
a foreign line the most severe there is."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wia_security.errors import ConversionError
from wia_security.formats import get_format

from reader_checks import outcome

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _own_cef_line() -> str:
    return get_format("cef").from_wia(json.loads((SAMPLES / "alert-sample.json").read_text()))


@pytest.mark.parametrize("severity", ["²", "٣", "High", "", "7.5"])
def test_an_own_cef_line_whose_severity_is_no_whole_number_is_refused_at_the_header(severity: str) -> None:
    parts = _own_cef_line().split("|", 7)         # the sample's title holds no pipe
    assert parts[6].isdigit() and get_format("cef").to_wia("|".join(parts))
    parts[6] = severity
    line = "|".join(parts)
    with pytest.raises(ConversionError) as info:
        get_format("cef").to_wia(line)
    assert info.value.path == "header" and "Severity" in info.value.reason
    [refused] = get_format("cef").to_wia_each(line)
    assert refused.error is not None and refused.error.path == "header"


@pytest.mark.parametrize("fmt,doc", [
    ("cef", "CEF:0|Acme|IDS|2.0|100|Port scan|7|spt=² src=10.0.0.1"),
    ("cef", "CEF:0|Acme|IDS|2.0|100|Port scan|²|src=10.0.0.1"),
    ("leef", "LEEF:2.0|Acme|IDS|2.0|100|^|srcPort=²^src=10.0.0.1"),
    ("leef", "LEEF:1.0|Acme|IDS|2.0|100|dstPort=²\tsrc=10.0.0.1"),
    ("cim", {"result": {"_time": "1700000000", "tag": ["network", "communicate"], "src_ip": "10.0.0.1",
                        "dest_ip": "10.0.0.2", "src_port": "²", "transport": "tcp"}}),
])
def test_a_superscript_digit_is_no_number_and_no_crash(fmt: str, doc) -> None:
    assert outcome(fmt, doc) in ("read", "refused")           # refused only with a path (reader_checks)
    if fmt != "cim":
        [event] = get_format(fmt).to_wia(doc)
        network = event.get("context", {}).get("network", {})
        assert "port" not in network.get("source", {}) and "port" not in network.get("destination", {})
        assert event["severity"] in (5, 7)


def test_other_scripts_digits_are_not_read_as_a_port() -> None:
    [event] = get_format("cef").to_wia("CEF:0|Acme|IDS|2.0|100|Port scan|7|spt=٨٠ src=10.0.0.1")
    assert event["context"]["network"]["source"] == {"ip": "10.0.0.1"}
    assert event["meta"]["custom"]["cef"]["spt"] == "٨٠"               # kept as it came


@pytest.mark.parametrize("sev,expected", [("nan", 5), ("NaN", 5), ("inf", 5), ("-inf", 5), ("1e5", 5), ("٩", 5),
                                          ("9", 9), ("7.5", 7.5), (" 8 ", 8), ("-1", 0), ("15", 10)])
def test_a_foreign_severity_is_a_plain_decimal_number_or_none(sev: str, expected: float) -> None:
    [leef_event] = get_format("leef").to_wia(f"LEEF:2.0|Acme|IDS|2.0|100|^|sev={sev}^src=10.0.0.1")
    assert leef_event["severity"] == expected
