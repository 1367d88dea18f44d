"""A destination file that cannot be opened is named as `PATH: reason`, with the missing folder named: forward,
replay and pull printed Python's own text, `[Errno 2] No such file or directory: '/nonexist/x.ndjson'`."""
from __future__ import annotations

import json

import pytest

from strategies import event_dicts


@pytest.fixture
def inputs(tmp_path):
    events = tmp_path / "in.ndjson"
    events.write_text("".join(json.dumps(e) + "\n" for e in event_dicts(3, seed=95)))
    dead = tmp_path / "dl.ndjson"
    dead.write_text("".join(json.dumps({"reason": "gave up", "event": e, "where": "in:1"}) + "\n"
                            for e in event_dicts(2, seed=96)))
    return str(events), str(dead)


@pytest.mark.parametrize("command", ["forward", "replay"])
def test_a_missing_folder_is_named(cli, inputs, tmp_path, command):
    target = tmp_path / "nowhere" / "x.ndjson"
    r = cli(command, inputs[0] if command == "forward" else inputs[1], "--to", f"file://{target}")
    assert r.code == 2
    assert r.err.strip() == (f"wia-security: {target}: No such file or directory "
                             f"(directory {tmp_path / 'nowhere'} does not exist)")


def test_a_directory_as_the_destination_is_named(cli, inputs, tmp_path):
    r = cli("forward", inputs[0], "--to", f"file://{tmp_path}")
    assert r.code == 2 and r.err.strip() == f"wia-security: {tmp_path}: Is a directory"
