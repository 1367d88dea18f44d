"""Documents other products write (GuardDuty, Elastic Security, Splunk ES, PAN-OS, QRadar DSMs...) read
into WIA: every one gives strictly valid events of the right type, with the vendor's severity scale
mapped as the vendor documents it, the time from the right field, and hosts, addresses, users,
hashes and ATT&CK ids carried over; or a ConversionError naming the JSON path that stops it.

The corpus is `foreign/<format>/` (sources in `foreign/README.md`); what each document must give is
`foreign/expected.json`: per file either {"error": JSON path} or {"events": [...]}, one entry per
event (for a `.log` file, one per line), each with `type`, `severity`, `timestamp` (null: the line
carries no time, so the time of parsing), `fields` (dotted path -> value) and `contains` (values
that must appear somewhere in the event).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from wia_security import parse, validate_event
from wia_security.errors import ConversionError
from wia_security.formats import get_format
from wia_security.timeutil import parse_iso

FOREIGN = Path(__file__).parent / "foreign"
EXPECTED: dict[str, dict[str, Any]] = json.loads((FOREIGN / "expected.json").read_text(encoding="utf-8"))
FORMATS = ("ecs", "ocsf", "asff", "stix", "cim", "leef", "cef")


def documents(path: Path) -> list[Any]:
    """A JSON file is one document; a .log file holds one line-format document per line."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [json.loads(text)]
    return [line for line in text.splitlines() if line.strip()]


def fixture_files(fmt: str) -> list[Path]:
    return sorted(p for p in (FOREIGN / fmt).iterdir() if p.suffix in (".json", ".log"))


CASES = [(fmt, p.name) for fmt in FORMATS for p in fixture_files(fmt)]


def resolve(node: Any, parts: list[str]) -> Any:
    """The value at a dotted path; a key may itself hold dots ("meta.custom.cim.S3Object.Path")."""
    if not parts:
        return node
    if isinstance(node, list):
        return resolve(node[int(parts[0])], parts[1:]) if parts[0].isdigit() and int(parts[0]) < len(node) else KeyError
    if not isinstance(node, dict):
        return KeyError
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in node:
            found = resolve(node[key], parts[n:])
            if found is not KeyError:
                return found
    return KeyError


def convert_all(fmt: str, path: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for doc in documents(path):
        events.extend(get_format(fmt).to_wia(doc))
    return events


@pytest.mark.parametrize("fmt,name", CASES, ids=[f"{f}/{n}" for f, n in CASES])
def test_foreign_document_gives_the_expected_valid_events(fmt: str, name: str) -> None:
    spec = EXPECTED[fmt][name]
    path = FOREIGN / fmt / name
    if "error" in spec:
        with pytest.raises(ConversionError) as info:
            convert_all(fmt, path)
        assert info.value.path == spec["error"], str(info.value)
        return
    events = convert_all(fmt, path)
    assert len(events) == len(spec["events"]), [e.get("type") for e in events]
    for event, want in zip(events, spec["events"]):
        result = validate_event(event)           # strict, warnings included (timestamp spelling, ...)
        assert result.valid, [(i.path, i.message) for i in result.errors]
        assert not result.warnings, [(w.path, w.code, w.message) for w in result.warnings]
        assert event["type"] == want["type"]
        assert event["severity"] == pytest.approx(want["severity"]), event["severity"]
        if want["timestamp"] is None:            # no time in the line: the time of parsing
            assert abs(datetime.now(timezone.utc) - parse_iso(event["timestamp"])) < timedelta(minutes=10)
        else:
            assert event["timestamp"] == want["timestamp"]
        for dotted, value in want.get("fields", {}).items():
            assert resolve(event, dotted.split(".")) == value, (dotted, resolve(event, dotted.split(".")))
        text = json.dumps(event, ensure_ascii=False)
        for value in want.get("contains", []):
            assert value in text, value


@pytest.mark.parametrize("fmt,name", CASES, ids=[f"{f}/{n}" for f, n in CASES])
def test_foreign_document_reads_the_same_twice_and_through_parse(fmt: str, name: str) -> None:
    """Ids are derived from the document (a re-read is the same event, so sinks de-duplicate), and the
    public `parse` gives the same events as Event objects."""
    if "error" in EXPECTED[fmt][name]:
        return
    path = FOREIGN / fmt / name
    first, second = convert_all(fmt, path), convert_all(fmt, path)
    assert [e["id"] for e in first] == [e["id"] for e in second]
    if all(want["timestamp"] is not None for want in EXPECTED[fmt][name]["events"]):
        assert first == second
    parsed = [e.to_dict() for doc in documents(path) for e in parse(doc, from_=fmt)]
    assert [e["id"] for e in parsed] == [e["id"] for e in first]


def test_the_corpus_is_broad_and_every_file_is_expected_and_sourced() -> None:
    readme = (FOREIGN / "README.md").read_text(encoding="utf-8")
    total = 0
    for fmt in FORMATS:
        files = fixture_files(fmt)
        count = sum(len(documents(p)) for p in files)
        assert count >= 8, (fmt, count)
        total += count
        assert {p.name for p in files} == set(EXPECTED[fmt]), fmt
        for p in files:
            assert f"{fmt}/{p.name}" in readme, f"{fmt}/{p.name} has no source in foreign/README.md"
    assert total >= 60


def test_a_wia_type_and_version_in_another_products_header_is_not_read_as_ours() -> None:
    """PAN-OS writes `CEF:0|Palo Alto Networks|PAN-OS|11.0.0|vulnerability|THREAT|...` and a LEEF
    EventID may be "alert": lines from_wia did not write must not be decoded with WIA's table (that
    gave events without id or source, with csN values in the WIA fields)."""
    cef = get_format("cef")
    [event] = cef.to_wia("CEF:0|Acme|IDS|2.0.0|alert|Port scan|7|src=10.0.0.1 cs1=not-an-id cs2=any rt=1700000000000")
    assert validate_event(event).valid and event["data"]["title"] == "Port scan"
    assert event["meta"]["custom"]["cef"]["cs2"] == "any"
    from wia_security import convert
    sample = json.loads((Path(__file__).parents[3] / "samples" / "alert-sample.json").read_text())
    for fmt in ("cef", "leef"):
        assert get_format(fmt).to_wia(convert(sample, to=fmt)) == [sample]


@pytest.mark.parametrize("text,formats,expected", [
    ("1700000000", (), "2023-11-14T22:13:20.000Z"),                 # epoch seconds
    ("1700000000123", (), "2023-11-14T22:13:20.123Z"),              # CEF rt / LEEF devTime: milliseconds
    ("1707644641123456789", (), "2024-02-11T09:44:01.123Z"),        # FortiGate eventtime: nanoseconds
    ("Jan 02 2026 14:23:45 GMT", None, "2026-01-02T14:23:45.000Z"),
    ("Jan 02 2026 09:23:45.250 EST", None, "2026-01-02T14:23:45.250Z"),
    ("Jan 02 2026 14:23:45 XYZT", None, None),                      # a zone nobody can place: not guessed
    ("2024-04-04 12:24:05.123", ("%Y-%m-%d %H:%M:%S.%f",), "2024-04-04T12:24:05.123Z"),
    ("2024-01-29T13:45:10.000-05:00", (), "2024-01-29T18:45:10.000Z"),
    ("yesterday", None, None),
])
def test_foreign_time_spellings(text: str, formats: tuple[str, ...] | None, expected: str | None) -> None:
    from wia_security.formats.keyvalue import CEF_TIME_FORMATS, foreign_time
    assert foreign_time(text, CEF_TIME_FORMATS if formats is None else formats) == expected


def test_a_time_without_a_year_is_the_latest_one_not_in_the_future() -> None:
    from wia_security.formats.keyvalue import foreign_time
    now = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
    assert foreign_time("Jan 05 11:00:00", now=now) == "2026-01-05T11:00:00.000Z"
    assert foreign_time("Dec 31 23:00:00", now=now) == "2025-12-31T23:00:00.000Z"


@pytest.mark.parametrize("java,strptime", [
    ("MMM dd yyyy HH:mm:ss", "%b %d %Y %H:%M:%S"),
    ("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "%Y-%m-%dT%H:%M:%S.%f%z"),
    ("dd/MM/yy hh:mm a", "%d/%m/%y %I:%M %p"),
    ("yyyy-MM-dd QQ", None),                                        # a letter strptime has no directive for
])
def test_leef_dev_time_format_is_translated(java: str, strptime: str | None) -> None:
    from wia_security.formats.keyvalue import java_time_format
    assert java_time_format(java) == strptime
