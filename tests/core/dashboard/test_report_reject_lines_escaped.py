"""A rejected event's line on stderr carries event text (the JSON path of an error names the keys of meta.labels,
an object of any keys) with its control characters escaped, as the other commands print theirs: `report` and
`compliance` printed it raw, so a label key holding ESC ]0;...BEL retitled the terminal of whoever ran the report,
and one holding a line break forged a line of output ('other.ndjson:1: ...')."""
from __future__ import annotations

import json

import pytest

from wia_security.builders import AlertBuilder
from wia_security.cli import main

ESC = "\x1b"
KEY = f"{ESC}]0;pwned\x07\u202eevil\nother.ndjson:1: forged"


@pytest.mark.parametrize("command", [["report", "-o", "r.html"], ["compliance"]])
def test_reject_lines_escape_event_text(tmp_path, monkeypatch, capsys, command):
    event = AlertBuilder().title("x").build().to_dict()
    event["meta"] = {"labels": {KEY: 5}}                 # a label must be a string: rejected at /meta/labels/<key>
    (tmp_path / "in.ndjson").write_text(json.dumps(event) + "\n")
    monkeypatch.chdir(tmp_path)
    assert main([command[0], "in.ndjson", *command[1:], "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert ESC not in err and "\x07" not in err and "\u202e" not in err
    assert not any(line.startswith("other.ndjson") for line in err.splitlines())
    assert "in.ndjson:1: /meta/labels/\\x1b]0;pwned\\x07\\u202eevil\\nother.ndjson:1: forged: 5 is not of type string" in err
