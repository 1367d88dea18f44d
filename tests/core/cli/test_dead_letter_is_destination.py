"""A dead-letter file that is the destination's file is refused before anything is opened: forward, replay and pull
appended the rejected records among the delivered events (`--to file:///x.ndjson --dead-letter x.ndjson`, or a
--config destination and forward.dead_letter naming one file), so whoever read the output read dead-letter records
as events. A store and a SQLite dead letter in one file keep apart (their own tables) and stay allowed."""
from __future__ import annotations

import json

import pytest

from strategies import event_dicts

REFUSED = "rejected records would be mixed into the delivered events"


@pytest.fixture
def inputs(tmp_path):
    events = tmp_path / "in.ndjson"
    events.write_text("".join(json.dumps(e) + "\n" for e in event_dicts(3, seed=98)) + "{broken\n")
    dead = tmp_path / "dl.ndjson"
    dead.write_text("".join(json.dumps({"reason": "gave up", "event": e, "where": "in:1"}) + "\n"
                            for e in event_dicts(2, seed=99)) + json.dumps({"reason": "x", "raw": "zz"}) + "\n")
    return str(events), str(dead)


@pytest.mark.parametrize("dead_letter", ["out.ndjson", "./out.ndjson", "file://{tmp}/out.ndjson",
                                         "sink+file://{tmp}/out.ndjson"])
def test_forward_refuses_its_destination_as_dead_letter(cli, inputs, tmp_path, dead_letter):
    r = cli("forward", inputs[0], "--to", f"file://{tmp_path}/out.ndjson",
            "--dead-letter", dead_letter.replace("{tmp}", str(tmp_path)))
    assert r.code == 2 and REFUSED in r.err
    assert not (tmp_path / "out.ndjson").exists()


def test_forward_refuses_a_config_destination_as_its_dead_letter(cli, inputs, tmp_path):
    (tmp_path / "c.toml").write_text(f'[forward]\ndead_letter = "{tmp_path}/out.ndjson"\n'
                                     f'[destinations.a]\nurl = "file://{tmp_path}/out.ndjson"\n')
    r = cli("forward", inputs[0], "--config", "c.toml")
    assert r.code == 2 and REFUSED in r.err and not (tmp_path / "out.ndjson").exists()


def test_replay_refuses_its_destination_as_dead_letter(cli, inputs, tmp_path):
    r = cli("replay", inputs[1], "--to", f"file://{tmp_path}/out.ndjson", "--dead-letter", "out.ndjson")
    assert r.code == 2 and "records rejected again would be mixed into the replayed events" in r.err
    assert not (tmp_path / "out.ndjson").exists()


def test_pull_refuses_its_destination_as_dead_letter(cli, tmp_path):
    r = cli("pull", "kafka://127.0.0.1:1/t?group=g", "--to", f"file://{tmp_path}/out.ndjson",
            "--dead-letter", "out.ndjson")
    assert r.code == 2 and REFUSED in r.err and not (tmp_path / "out.ndjson").exists()


def test_a_store_and_a_sqlite_dead_letter_may_share_a_file(cli, inputs, tmp_path):
    r = cli("forward", inputs[0], "--to", "sqlite:///both.db", "--dead-letter", "sqlite:///both.db")
    assert r.code == 1 and "1 new record" in r.out
    assert cli("query", "--db", "both.db", "--count").out.strip() == "3"
