"""An empty `query` answer says what the store holds, on standard error: the README's
`query --since 24h` on the demo's year-old samples printed a bare table header and nothing else."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wia_security.builders import AlertBuilder

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


@pytest.mark.parametrize("fmt", ["table", "ndjson", "json"])
def test_no_match_names_the_extent_of_the_store(cli, fmt):
    assert cli("forward", *map(str, sorted(SAMPLES.glob("*.json"))), "--lenient").code == 0
    r = cli("query", "--type", "alert", "--since", "24h", "--format", fmt)
    assert r.code == 0
    assert r.err == ("wia-security: no events match; the store holds 7 events, "
                     "timestamps from 2025-12-14T03:00:00.000Z to 2025-12-14T11:22:45.000Z\n"), r.err
    assert r.out in {"json": "[]\n", "ndjson": ""}.get(fmt, r.out)


def test_no_match_in_an_empty_store_says_it_is_empty(cli, tmp_path):
    bad = tmp_path / "bad.ndjson"
    bad.write_text("{\"type\": 1}\n")
    assert cli("forward", str(bad), "--to", "sqlite:///empty.db").code == 1     # creates the store, stores nothing
    r = cli("query", "--db", "empty.db")
    assert r.code == 0 and r.err == "wia-security: no events match; the store empty.db holds no events\n", r.err


def test_a_match_adds_no_note(cli, tmp_path):
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(AlertBuilder().title("x").build().to_dict()) + "\n")
    assert cli("forward", str(src)).code == 0
    r = cli("query", "--since", "24h")
    assert r.code == 0 and r.err == "" and len(r.out.splitlines()) == 2
