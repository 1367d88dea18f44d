"""Whitespace a sender or relay leaves at the end of another product's CEF or LEEF line is not part of
the last value. Read as it was, `... dst=10.0.0.2\t` gave destination.ip '10.0.0.2\t' (no address to any
lookup), `proto=TCP ` the protocol 'TCP ', and LEEF `dstPort=21 ` lost the port ('21 ' is no number).
Elasticsearch's CEF processor trims the last value the same way. A line in this project's own layout is
read exactly as written (a value may end with a space there)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from wia_security.formats import get_format

from reader_checks import outcome

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


@pytest.mark.parametrize("tail", [" ", "\t", "  \t ", "\r"])
def test_a_foreign_cef_lines_last_value_loses_the_whitespace_after_it(tail: str) -> None:
    line = "CEF:0|Fortinet|FortiGate|7.0|13|traffic:forward close|3|src=10.0.0.1 spt=1234 proto=TCP dst=10.0.0.2" + tail
    assert outcome("cef", line) == "read"
    [event] = get_format("cef").to_wia(line)
    network = event["context"]["network"]
    assert network["destination"] == {"ip": "10.0.0.2"} and network["protocol"] == "TCP"
    assert event["meta"]["custom"]["cef"]["dst"] == "10.0.0.2"


@pytest.mark.parametrize("tail", [" ", "  ", " \t"])
def test_a_foreign_leef_lines_last_value_loses_the_whitespace_after_it(tail: str) -> None:
    line = "LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5^srcPort=81^dstPort=21" + tail
    [event] = get_format("leef").to_wia(line)
    assert event["context"]["network"]["destination"] == {"ip": "10.0.0.5", "port": 21}
    assert event["meta"]["custom"]["leef"]["dstPort"] == "21"


def test_inner_whitespace_and_own_lines_are_untouched() -> None:
    [event] = get_format("cef").to_wia("CEF:0|Acme|IDS|2.0|100|Port scan|7|msg=two  spaces  src=10.0.0.1")
    assert event["meta"]["custom"]["cef"]["msg"] == "two  spaces "          # a value's own spaces stay
    for fmt in ("cef", "leef"):
        sample = json.loads((SAMPLES / "alert-sample.json").read_text())
        own = {k: v for k, v in sample.items() if k != "data"}
        own["data"] = {**{k: v for k, v in sample["data"].items() if k != "assignee"}, "assignee": "ends with a space "}
        line = get_format(fmt).from_wia(own)                 # wia.data.assignee, a string, is the last pair
        assert line.endswith("assignee=ends with a space "), line[-60:]
        assert get_format(fmt).to_wia(line) == [copy.deepcopy(own)]
