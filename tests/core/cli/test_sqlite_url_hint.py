"""`sqlite:///var/lib/x.db` is the relative path var/lib/x.db (sqlite:////var/lib/x.db is the absolute one).
When `query --db` or a `replay` input so named does not exist but its absolute reading does, the error
says which URL was meant instead of only 'no event store here' / 'no such file'."""
from __future__ import annotations

import json
from pathlib import Path

from wia_security.builders import AlertBuilder


def _event_file(tmp_path: Path, **fields) -> Path:
    event = AlertBuilder().title("x").build().to_dict()
    event.update(fields)
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(event) + "\n")
    return src


def test_query_names_the_four_slash_url_of_a_store_that_exists_at_the_absolute_path(cli, tmp_path):
    store = tmp_path / "stores" / "events.db"
    store.parent.mkdir()
    assert cli("forward", str(_event_file(tmp_path)), "--to", f"sqlite:///{store}").code == 0
    relative_url = f"sqlite://{store}"                 # three slashes: the path without its leading '/'
    r = cli("query", "--db", relative_url)
    assert r.code == 2
    assert (f"wia-security: {str(store)[1:]}: no event store here (run `wia-security forward` first) "
            f"(sqlite:/// is followed by a path relative to the current directory; for {store} write "
            f"sqlite:///{store})") in r.err, r.err
    assert cli("query", "--db", f"sqlite:///{store}", "--count").out.strip() == "1"


def test_replay_names_the_four_slash_url_of_a_dead_letter_that_exists_at_the_absolute_path(cli, tmp_path):
    dead = tmp_path / "dl" / "dead.db"
    dead.parent.mkdir()
    src = _event_file(tmp_path, severity=11)
    assert cli("forward", str(src), "--dead-letter", f"sqlite:///{dead}").code == 1
    r = cli("replay", f"sqlite://{dead}", "--dry-run")
    assert r.code == 2
    assert (f"wia-security: sqlite://{dead}: no such file: {str(dead)[1:]} (sqlite:/// is followed by a path "
            f"relative to the current directory; for {dead} write sqlite:///{dead})") in r.err, r.err


def test_no_hint_for_a_relative_store_that_is_simply_missing(cli, tmp_path):
    r = cli("query", "--db", "sqlite:///missing.db")
    assert r.code == 2 and r.err.strip() == "wia-security: missing.db: no event store here (run `wia-security forward` first)"
    r = cli("replay", "sqlite:///missing/dead.db", "--dry-run")
    assert r.code == 2 and r.err.strip() == "wia-security: sqlite:///missing/dead.db: no such file: missing/dead.db"
