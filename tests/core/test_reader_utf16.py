"""UTF-16 and UTF-32 inputs with a byte order mark (Windows PowerShell 5 writes `>` and Out-File so) are read as
their text. Before, the first line was 'not valid UTF-8 (byte 0xff at offset 0)' and the lines after it broke
on the NUL bytes: one pretty-printed event in UTF-16 came out as 3 unparseable inputs, and nothing was read."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from strategies import event_dicts
from wia_security.reader import InputSource

EVENTS = event_dicts(5, seed=31)
for _event in EVENTS:
    _event.setdefault("meta", {})["note"] = "Ünïcödé 東京 \U0001F512"      # outside the BMP: a surrogate pair in UTF-16
NDJSON = "".join(json.dumps(e, ensure_ascii=False) + "\r\n" for e in EVENTS)
PRETTY = json.dumps(EVENTS[0], indent=2, ensure_ascii=False) + "\n"


def _read(path: Path) -> list:
    with InputSource(str(path)) as src:
        return [(i.line, i.value if i.ok else f"ERR {i.error.reason}") for i in src.items()]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_ndjson_in_another_unicode_encoding(tmp_path, encoding):
    path = tmp_path / "events.ndjson"
    bom = {"utf-16-le": "\ufeff", "utf-16-be": "\ufeff", "utf-32-le": "\ufeff", "utf-32-be": "\ufeff"}.get(encoding, "")
    path.write_bytes((bom + NDJSON).encode(encoding))
    assert _read(path) == list(enumerate(EVENTS, 1))


def test_a_pretty_printed_event_in_utf16(tmp_path):
    path = tmp_path / "event.json"
    path.write_bytes(PRETTY.encode("utf-16"))
    assert _read(path) == [(1, EVENTS[0])]


def test_gzip_of_utf16(tmp_path):
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(gzip.compress(NDJSON.encode("utf-16")))
    assert _read(path) == list(enumerate(EVENTS, 1))


def test_a_broken_code_unit_ends_the_input_at_its_line_the_lines_before_are_read(tmp_path):
    path = tmp_path / "events.ndjson"
    data = NDJSON.encode("utf-16") + "\ud800".encode("utf-16-le", "surrogatepass") + "A".encode("utf-16-le")
    path.write_bytes(data)
    got = _read(path)
    assert got[:5] == list(enumerate(EVENTS, 1))
    [(line, error)] = got[5:]
    assert line == 6 and "not valid UTF-16LE text" in error and f"byte {len(NDJSON.encode('utf-16')):,}" in error


def test_cli_validate_and_convert_read_utf16(tmp_path, capsys, monkeypatch):
    from wia_security.cli import main
    monkeypatch.chdir(tmp_path)
    events = tmp_path / "ps.json"
    events.write_bytes(PRETTY.encode("utf-16"))
    assert main(["validate", str(events)]) == 0
    assert "1 valid" in capsys.readouterr().err
    cef = tmp_path / "cef.txt"
    assert main(["convert", "--to", "cef", "-o", str(cef), str(events)]) == 0
    cef16 = tmp_path / "cef16.txt"
    cef16.write_bytes(cef.read_text(encoding="utf-8").replace("\n", "\r\n").encode("utf-16"))
    capsys.readouterr()
    assert main(["convert", "--from", "cef", str(cef16)]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == EVENTS[0]["id"]
