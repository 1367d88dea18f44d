"""forward, convert and enrich refuse an input given twice (the same path, ./path, a link, overlapping globs), as
report and compliance do: its events were delivered (converted, written) twice, into destinations that are not
idempotent on the event id (a file, Splunk HEC) as duplicates."""
from __future__ import annotations

import json
import os

import pytest

from strategies import event_dicts


@pytest.fixture
def events(tmp_path):
    path = tmp_path / "in.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in event_dicts(5, seed=81)))
    os.symlink(path, tmp_path / "link.ndjson")
    return path


@pytest.mark.parametrize("second", ["in.ndjson", "./in.ndjson", "link.ndjson"])
@pytest.mark.parametrize("command, effect", [
    (["forward", "--to", "file:///{tmp}/out.ndjson"], "delivered twice"),
    (["convert", "--to", "ocsf", "-o", "out.ndjson"], "converted twice"),
    (["enrich", "-o", "out.ndjson"], "written twice"),
])
def test_an_input_given_twice_is_refused_before_anything_is_written(cli, events, tmp_path, monkeypatch, second,
                                                                     command, effect):
    monkeypatch.setenv("VT_API_KEY", "k")                          # enrich checks its key first
    command = [part.replace("{tmp}", str(tmp_path)) for part in command]
    r = cli(*command, "in.ndjson", second)
    assert r.code == 2
    assert f"{second}: the same file as in.ndjson, given before: its events would be {effect}" in r.err
    assert not (tmp_path / "out.ndjson").exists()


def test_different_files_and_stdin_are_read(cli, events, tmp_path, monkeypatch):
    other = tmp_path / "other.ndjson"
    other.write_text(events.read_text())
    r = cli("forward", "--to", f"file:///{tmp_path}/out.ndjson", "in.ndjson", "other.ndjson")
    assert r.code == 0 and len((tmp_path / "out.ndjson").read_text().splitlines()) == 10
