"""report and compliance read event files or the store: --db given with files was left out without a word (the
files read, the store not), so `report --db prod.db today.ndjson` made a dashboard of the file alone, exit 0."""
from __future__ import annotations

import json

import pytest

from strategies import event_dicts


@pytest.fixture
def inputs(cli, tmp_path):
    events = tmp_path / "events.ndjson"
    events.write_text("".join(json.dumps(e) + "\n" for e in event_dicts(10, seed=51)))
    assert cli("forward", "--to", "sqlite:///other.db", str(events)).code == 0
    return str(events)


@pytest.mark.parametrize("command", [["report", "-o", "r.html"], ["compliance"]])
def test_files_and_db_together_are_a_usage_error(cli, inputs, tmp_path, command):
    r = cli(*command, inputs, "--db", "sqlite:///other.db")
    assert r.code == 2 and "give event files (PATH) or --db, not both" in r.err and "other.db" in r.err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("command", [["report", "-o", "r.html"], ["compliance"]])
def test_files_alone_and_db_alone_still_work(cli, inputs, command):
    assert cli(*command, inputs).code == 0
    r = cli(*command, "--db", "sqlite:///other.db")
    assert r.code == 0 and "10 events read" in r.err


def test_the_default_store_is_read_when_nothing_is_given(cli, inputs):
    assert cli("forward", inputs).code == 0               # into sqlite:///wia-events.db
    r = cli("report", "-o", "r.html")
    assert r.code == 0 and "10 events read" in r.err
