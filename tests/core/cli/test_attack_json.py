"""`attack --json` prints one JSON array, also when nothing matches (it printed nothing, so a script's
`| jq` got empty input): `[]`, the hint on standard error, exit status 1."""
from __future__ import annotations

import json


def test_no_match_is_an_empty_array(cli):
    r = cli("attack", "--json", "powershel")
    assert r.code == 1
    assert json.loads(r.out) == []
    assert "did you mean 'PowerShell'?" in r.err


def test_a_match_is_an_array_of_matches(cli):
    r = cli("attack", "--json", "T1059.001")
    assert r.code == 0 and [m["id"] for m in json.loads(r.out)] == ["T1059.001"]


def test_text_output_of_no_match_stays_empty(cli):
    r = cli("attack", "powershel")
    assert r.code == 1 and r.out == ""
