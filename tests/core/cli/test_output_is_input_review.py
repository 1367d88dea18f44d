"""Findings of a review of the pre-open "output is an input" check (helper 54): a dead letter given as
sink+URL writes into a local store or file too, and must be refused before it is opened, as sqlite:/// is."""
from __future__ import annotations

import sqlite3

from bad_inputs import valid_line


def schema(db) -> list[tuple]:
    return sqlite3.connect(db).execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()


def test_replay_refuses_a_sink_dead_letter_into_its_input_before_opening_it(cli, tmp_path):
    """`--dead-letter sink+sqlite:///dead.db` with sqlite:///dead.db as the input: the SQLite sink was opened
    (creating its `events` table in the input) and only then refused."""
    (tmp_path / "bad.json").write_text('{"not": "an event"}\n')
    assert cli("forward", "bad.json", "--to", "sqlite:///ev.db", "--dead-letter", "sqlite:///dead.db").code == 1
    before = schema(tmp_path / "dead.db")
    r = cli("replay", "sqlite:///dead.db", "--to", "file:///dev/null", "--dead-letter", "sink+sqlite:///dead.db")
    assert r.code == 2 and "also an input" in r.err
    assert schema(tmp_path / "dead.db") == before


def test_forward_refuses_a_sink_dead_letter_into_its_input_before_opening_it(cli, tmp_path):
    """`--dead-letter sink+file:///in.ndjson`: the file sink was opened on the input and only then refused."""
    (tmp_path / "in.ndjson").write_bytes(valid_line() + b"\n")
    r = cli("forward", "in.ndjson", "--to", "file:///dev/null", "--dead-letter", f"sink+file://{tmp_path}/in.ndjson")
    assert r.code == 2 and "also an INPUT" in r.err
    assert (tmp_path / "in.ndjson").read_bytes() == valid_line() + b"\n"
    assert not (tmp_path / "wia-dead-letter.ndjson").exists()


def test_the_dead_letter_line_counts_one_record_in_the_singular(cli, tmp_path):
    """0902771 made the summaries say '1 event'; forward's dead-letter line still said '(1 new records)'."""
    (tmp_path / "bad.json").write_text('{"not": "an event"}\n')
    r = cli("forward", "bad.json", "--to", "sqlite:///ev.db")
    assert r.code == 1 and "dead-letter file: wia-dead-letter.ndjson (1 new record)\n" in r.out, r.out
