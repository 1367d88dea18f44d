"""`report` refuses an output that is one of its inputs, before reading anything. `report events.json -o
events.html` wrote its JSON twin (the HTML path with .json) over events.json, the events it had just read,
and `-o` naming the store replaced the store with the page, both with exit 0."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import dataset
from wia_security.cli import main
from wia_security.connectors.sqlite import EventStore


def _events_file(folder: Path) -> Path:
    path = folder / "events.json"
    path.write_text("".join(json.dumps(e) + "\n" for e in dataset.week()[:20]), "utf-8")
    return path


def test_the_default_json_twin_is_not_written_over_the_input(tmp_path, capsys):
    events = _events_file(tmp_path)
    before = events.read_bytes()
    assert main(["report", str(events), "-o", str(tmp_path / "events.html")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {events}: it is the input {events}, which the report would replace: give --json another path" in err
    assert events.read_bytes() == before and not (tmp_path / "events.html").exists()
    assert main(["report", str(events), "-o", str(tmp_path / "events.html"), "--json", str(tmp_path / "r.json")]) == 0


@pytest.mark.parametrize("how", ["same", "hard link", "symlink", "dot path"])
def test_an_output_that_is_an_input_file_by_any_name_is_refused(how, tmp_path, capsys):
    events = _events_file(tmp_path)
    before = events.read_bytes()
    given = tmp_path / "given.json"
    if how == "same":
        given = events
    elif how == "hard link":
        os.link(events, given)
    elif how == "symlink":
        given.symlink_to(events)
    else:
        given = Path(str(tmp_path) + "/./events.json")
    assert main(["report", str(given), "-o", str(events), "--json", str(tmp_path / "r.json")]) == 2
    assert "which the report would replace: give -o another path" in capsys.readouterr().err
    assert events.read_bytes() == before


@pytest.mark.parametrize("flag,side", [("-o", ""), ("--json", ""), ("--json", "-wal"), ("-o", "-shm")])
def test_the_store_and_its_side_files_are_not_written_over(flag, side, tmp_path, capsys):
    db = tmp_path / "events.db"
    store = EventStore(str(db))
    try:
        store.insert(dataset.week()[:20])
        target = Path(str(db) + side)
        assert target.exists()
        before = target.read_bytes()
        outputs = {"-o": str(tmp_path / "r.html"), "--json": str(tmp_path / "r.json"), flag: str(target)}
        argv = ["report", "--db", f"sqlite:///{db}", "-o", outputs["-o"], "--json", outputs["--json"]]
        assert main(argv) == 2
        assert f"cannot write {target}: it is the input {target}, which the report would replace: give {flag}" \
            in capsys.readouterr().err
        assert target.read_bytes() == before
    finally:
        store.close()
