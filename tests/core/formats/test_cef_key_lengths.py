"""CEF dictionary keys stay within the lengths the ArcSight extension dictionary gives them.

The writer put any length under any key: a 5,000-character command line in cs6 (deviceCustomString6,
4000), a 2,000-character description in msg (1023), a 40-character protocol in proto (31), a
150-character host name in dvchost (100). ArcSight cuts such a value where the dictionary says, and a
consumer that checks the dictionary refuses it. Now the key holds the value's first characters up to
its length and the whole value travels under its `wia.` key, as for any value a key holds only
approximately, so WIA -> CEF -> WIA stays exact."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wia_security import validate_event
from wia_security.formats import cef, get_format

from test_cef import independent_split

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
CEF = get_format("cef")
#: key -> the dictionary's length (ArcSight extension dictionary, CEF 0.1 rows)
LENGTHS = {"act": 63, "app": 31, "cat": 1023, "destinationServiceName": 1023, "dhost": 1023, "dvchost": 100,
           "fileHash": 255, "filePath": 1023, "fname": 1023, "msg": 1023, "outcome": 63, "proto": 31,
           "reason": 1023, "request": 1023, "requestClientApplication": 1023, "requestMethod": 1023,
           "shost": 1023, "sntdom": 255, "sproc": 1023, "suser": 1023,
           **{f"cs{i}": 4000 for i in range(1, 7)}}


def _sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def _unescaped(value: str) -> str:
    return cef.unescape_value(value)


CASES = [
    ("endpoint-event-sample", ("data", "process", "command_line"), "cs6", "powershell -enc " + "QUJD" * 1300),
    ("alert-sample", ("data", "description"), "msg", "d\\=e " * 500),
    ("alert-sample", ("context", "network", "protocol"), "proto", "P" * 40),
    ("alert-sample", ("context", "host", "hostname"), "dvchost", "h" * 99 + "😀" + "x" * 50),
    ("endpoint-event-sample", ("data", "process", "name"), "sproc", "p" * 1100),
    ("network-event-sample", ("data", "url"), "request", "https://example.com/" + "a" * 1100),
]


def java_prefix(value: str, length: int) -> str:
    """The longest start of `value` that is at most `length` UTF-16 code units (Java's String.length)."""
    units, out = 0, []
    for ch in value:
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > length:
            break
        out.append(ch)
    return "".join(out)


@pytest.mark.parametrize("sample,path,key,value", CASES, ids=[c[2] for c in CASES])
def test_a_value_longer_than_its_key_is_cut_there_and_carried_whole(sample, path, key, value) -> None:
    event = _sample(sample)
    node = event
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = value
    assert validate_event(event).valid
    line = CEF.from_wia(event)
    _, pairs = independent_split(line)
    assert _unescaped(pairs[key]) == java_prefix(value, LENGTHS[key])
    assert _unescaped(pairs["wia." + ".".join(path)]) == value
    assert CEF.to_wia(line) == [event]


def test_every_key_the_writer_fills_stays_within_its_length_over_the_samples_made_long() -> None:
    lengthened = 0
    for path in sorted(SAMPLES.glob("*-sample.json")):
        event = validate_event(json.loads(path.read_text()), lenient=True).event
        for field in cef.fields_for(event["type"]):
            if field.key not in LENGTHS:
                continue
            node = event
            for name in field.parts[:-1]:
                node = node.get(name) if isinstance(node, dict) else None
            if not isinstance(node, dict) or not isinstance(node.get(field.parts[-1]), str):
                continue
            before = node[field.parts[-1]]
            node[field.parts[-1]] = (before or "x") * (LENGTHS[field.key] // max(1, len(before)) + 2)
            if validate_event(event).valid:
                lengthened += 1
            else:                                  # an enumerated member: its values are short anyway
                node[field.parts[-1]] = before
        line = CEF.from_wia(event)
        _, pairs = independent_split(line)
        for key, value in pairs.items():
            if key in LENGTHS:
                assert len(_unescaped(value).encode("utf-16-le")) // 2 <= LENGTHS[key], (path.name, key, len(value))
        assert CEF.to_wia(line) == [event], path.name
    assert lengthened >= 15


@pytest.mark.parametrize("value", ["\U0001F600" + "a" * 28 + "\U0001F600",        # 32 units: the cut falls inside the last pair
                                   "a" * 30 + "\U0001F600", "\U0001F600" * 16])
def test_a_cut_never_leaves_half_a_surrogate_pair(value: str) -> None:
    event = _sample("alert-sample")
    event.setdefault("context", {}).setdefault("network", {})["protocol"] = value
    line = CEF.from_wia(event)
    line.encode("utf-8")                                   # UnicodeEncodeError on half a pair
    _, pairs = independent_split(line)
    assert pairs["proto"] == java_prefix(value, 31)
    assert CEF.to_wia(line) == [event]
