"""`convert --from cef|leef` on a JSON list of lines (as an API export gives them): read as JSON, each line
converted alone, a bad one dead-lettered at its own file:line; plain line files are read by lines as before."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from wia_security import convert, validate_event
from wia_security.cli import main

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted((ROOT / "samples").glob("*-sample.json"))


def _lines(fmt: str) -> list[str]:
    return [convert(validate_event(json.loads(p.read_text()), lenient=True).event, to=fmt) for p in SAMPLES]


@pytest.mark.parametrize("fmt", ["cef", "leef"])
@pytest.mark.parametrize("packed", ["pretty", "compact", "gzip", "bom"])
def test_a_json_list_of_lines_is_read_line_by_line_with_each_refusal_at_its_line(fmt, packed, tmp_path, capsys):
    lines = _lines(fmt)
    doc: list[object] = [*lines[:3], 42, *lines[3:]]          # the fourth item is no line
    if packed == "pretty":
        data = json.dumps(doc, indent=2).encode()
    else:
        data = json.dumps(doc).encode()
    if packed == "bom":
        data = b"\xef\xbb\xbf\n  " + data
    path = tmp_path / ("lines.json.gz" if packed == "gzip" else "lines.json")
    path.write_bytes(gzip.compress(data) if packed == "gzip" else data)
    dead = tmp_path / "dead.ndjson"
    code = main(["convert", "--from", fmt, str(path), "--dead-letter", str(dead)])
    out, err = capsys.readouterr()
    assert code == 1, err                                      # one item refused
    events = [json.loads(line) for line in out.splitlines()]
    expected = [validate_event(json.loads(p.read_text()), lenient=True).event for p in SAMPLES]
    assert [e["id"] for e in events] == [e["id"] for e in expected]
    [record] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert "a line must be text, got int" in record["reason"] and record["event"] == 42
    if packed == "pretty":                                     # one item per line: the 42 is on line 5
        assert record["where"] == f"{path}:5", record["where"]
    else:                                                      # one line holds the list
        assert record["where"] == f"{path}:{1 if packed != 'bom' else 2}", record["where"]


def test_a_plain_line_file_is_still_read_by_lines(tmp_path, capsys):
    lines = _lines("cef")
    path = tmp_path / "lines.cef"
    path.write_text("\n".join(lines) + "\n")
    assert main(["convert", "--from", "cef", str(path)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 7
