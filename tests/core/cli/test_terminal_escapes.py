"""Text a producer, a dead letter or a server wrote reaches the terminal with its control characters escaped: an
event's data.title holding ESC sequences recoloured, cleared or retitled the terminal of whoever ran `query`, and an
invalid event's type holding a line break forged a verdict line in `validate`'s output."""
from __future__ import annotations

import json
from pathlib import Path

from strategies import event_dicts
from wia_security.cli.common import printable

ESC = "\x1b"


def test_printable_escapes_controls_and_bidi_overrides_only():
    assert printable("a\x1b[2Jb\r\n\x07\x9b\u202eé 東京 \U0001F512") == "a\\x1b[2Jb\\r\\n\\x07\\x9b\\u202eé 東京 \U0001F512"


def test_validate_does_not_print_a_forged_verdict(cli, tmp_path):
    path = tmp_path / "in.ndjson"
    path.write_text(json.dumps({"type": "alert\nother.ndjson:1: valid alert", "id": f"{ESC}]0;pwned{ESC}\\"}) + "\n")
    r = cli("validate", str(path))
    assert r.code == 1
    assert ESC not in r.out and not any(line.startswith("other.ndjson") for line in r.out.splitlines())
    assert "INVALID alert\\nother.ndjson:1: valid alert \\x1b]0;pwned" in r.out


def test_query_table_escapes_stored_text(cli, tmp_path):
    event = next(e for e in event_dicts(50, seed=21) if e["type"] == "alert")
    event["source"]["name"] = f"siem{ESC}]0;owned\x07"
    event.setdefault("data", {})["title"] = f"Evil {ESC}[31mred{ESC}[0m\rOVER\nline"
    path = tmp_path / "in.ndjson"
    path.write_text(json.dumps(event) + "\n")
    cli("forward", "--to", "sqlite:///s.db", str(path))
    r = cli("query", "--db", "s.db")
    assert r.code == 0
    assert ESC not in r.out and "\r" not in r.out and len(r.out.splitlines()) == 2      # the header and one row
    assert "siem\\x1b]0;owned\\x07" in r.out
    assert "Evil \\x1b[31mred\\x1b[0m\\rOVER\\nline" in r.out
    # the event itself is given back as stored
    assert json.loads(cli("query", "--db", "s.db", "--format", "ndjson").out)["source"]["name"] == event["source"]["name"]


def test_replay_names_a_record_without_its_controls(cli, tmp_path):
    path = Path(tmp_path / "dl.ndjson")
    path.write_text(json.dumps({"reason": f"HTTP 400: {ESC}[2J\nforged: line", "where": "in:1", "raw": "x"}) + "\n")
    r = cli("replay", "--dry-run", str(path))
    assert ESC not in r.err and "\nforged" not in r.err and "HTTP 400: \\x1b[2J\\nforged: line" in r.err
