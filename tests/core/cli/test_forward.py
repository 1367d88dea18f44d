"""`wia-security forward`: into the embedded store by default, nothing lost, rejects dead-lettered with reasons."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bad_inputs import BAD_INPUTS, VALID, valid_line
from strategies import event_dicts

SAMPLES = sorted(str(p) for p in Path(__file__).resolve().parents[3].joinpath("samples").glob("*.json"))


def dead_letters(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def stored(db: Path) -> int:
    return sqlite3.connect(db).execute("select count(*) from events").fetchone()[0]


def test_samples_into_the_default_store(cli, tmp_path):
    r = cli("forward", *SAMPLES)
    assert r.code == 1                       # two samples are invalid in strict mode
    assert "destination: sqlite:wia-events.db" in r.out
    assert stored(tmp_path / "wia-events.db") == 5
    dl = dead_letters(tmp_path / "wia-dead-letter.ndjson")
    assert {d["event"]["id"] for d in dl} == {"550e8400-e29b-41d4-a716-446655440007", "550e8400-e29b-41d4-a716-446655440004"}
    assert all(d["reason"].startswith("invalid: /data/") and d["errors"] and d["where"] for d in dl)
    assert "by severity band:" in r.out and "rejects by reason:" in r.out


def test_second_run_is_idempotent(cli, tmp_path):
    cli("forward", "--lenient", *SAMPLES)
    r = cli("forward", "--lenient", "--summary", "json", *SAMPLES)
    summary = json.loads(r.out)
    assert r.code == 0
    assert (summary["delivered"], summary["duplicates"]) == (0, 7)
    assert stored(tmp_path / "wia-events.db") == 7


def test_nothing_is_lost_across_good_bad_and_unparseable_input(cli, tmp_path):
    good = event_dicts(300, seed=11)
    lines = [json.dumps(e).encode() for e in good]
    bad_count = 0
    for i, (data, _) in enumerate(BAD_INPUTS.values()):
        lines.insert(i * 30, data.rstrip(b"\n"))
        bad_count += 1
    lines.insert(5, json.dumps(dict(VALID, severity="high")).encode())
    bad_count += 1
    (tmp_path / "in.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    r = cli("forward", "--summary", "json", "--to", "sqlite:///out.db", "--dead-letter", "dl.ndjson", "in.ndjson")
    s = json.loads(r.out)
    assert r.code == 1
    assert s["read"] == len(lines)
    assert s["delivered"] + s["duplicates"] + s["rejected"] == s["read"]
    assert s["rejected"] == bad_count and s["dead_lettered"] == bad_count
    assert stored(tmp_path / "out.db") == 300
    dl = dead_letters(tmp_path / "dl.ndjson")
    assert len(dl) == bad_count
    assert all(d["reason"] and d["where"].startswith("in.ndjson:") for d in dl)
    # unparseable input keeps its raw bytes (as text or base64) so nothing is lost
    unparseable = [d for d in dl if d["reason"].startswith("unparseable")]
    assert unparseable and all("raw" in d or "raw_base64" in d for d in unparseable)
    assert any("raw_base64" in d for d in unparseable)          # the non-UTF-8 line


def test_file_destination_and_batching(cli, tmp_path):
    events = event_dicts(25, seed=3)
    (tmp_path / "in.ndjson").write_text("\n".join(json.dumps(e) for e in events))
    r = cli("forward", "--batch-size", "7", "--to", "file:///" + str(tmp_path / "out.ndjson"), "in.ndjson")
    assert r.code == 0
    out = [json.loads(x) for x in (tmp_path / "out.ndjson").read_text().splitlines()]
    assert [e["id"] for e in out] == [e["id"] for e in events]


def test_normalization_adds_schema_and_attack_names(cli, tmp_path):
    event = dict(VALID)
    del event["$schema"]
    event["mitre"] = {"technique": "T1059", "sub_technique": "T1059.001"}
    (tmp_path / "in.json").write_text(json.dumps(event))
    cli("forward", "--to", "file:///" + str(tmp_path / "out.ndjson"), "in.json")
    out = json.loads((tmp_path / "out.ndjson").read_text())
    assert out["$schema"] == "https://wia.live/security/v1/schema.json"
    assert out["mitre"] == {"technique": "T1059", "sub_technique": "T1059.001", "technique_name": "Command and Scripting Interpreter",
                            "sub_technique_name": "PowerShell", "tactic": "TA0002", "tactic_name": "Execution"}


def test_progress_bar_when_asked(cli, tmp_path):
    (tmp_path / "in.ndjson").write_text("\n".join(json.dumps(e) for e in event_dicts(50, seed=4)))
    r = cli("forward", "--progress", "in.ndjson")
    assert "events" in r.err and "100.0%" in r.err


@pytest.mark.parametrize("url, message", [
    ("nosuch://x", "unknown destination scheme 'nosuch'"),
    ("just-a-path", "a destination is a URL"),
    ("sqlite://host/db", "expected sqlite:///relative.db"),
])
def test_bad_destination_is_a_usage_error(cli, tmp_path, url, message):
    (tmp_path / "in.json").write_bytes(valid_line())
    r = cli("forward", "--to", url, "in.json")
    assert r.code == 2 and message in r.err


@pytest.mark.parametrize("url", [
    "nosuch://user:s3cr3t@host/path?token=abc",
    "nosuch://host:8088?token=abc",                    # a query straight after the host: no path to cut at
    "nosuch://host#x?token=abc",
    "nosuch://user:s3cr3t/abc@host?x=1",               # a raw "/" inside the password
])
def test_credentials_in_a_bad_destination_url_are_not_echoed(cli, tmp_path, url):
    (tmp_path / "in.json").write_bytes(valid_line())
    r = cli("forward", "--to", url, "in.json")
    assert r.code == 2 and "unknown destination scheme 'nosuch'" in r.err
    assert "s3cr3t" not in r.err and "abc" not in r.err
    assert "nosuch://host" in r.err                    # still says which destination


def test_missing_input_is_a_usage_error(cli):
    assert cli("forward", "absent.json").code == 2


def test_a_forwarder_run_per_batch_accumulates_one_summary(tmp_path):
    """Sources (Kafka, TAXII) call run() once per batch on the same Forwarder: totals must add up."""
    from wia_security.connectors.dead_letter import DeadLetterFile
    from wia_security.connectors.sqlite import SqliteSink
    from wia_security.pipeline import Forwarder
    from wia_security.reader import Item
    events = event_dicts(30, seed=12)
    with SqliteSink(str(tmp_path / "s.db")) as sink, DeadLetterFile(str(tmp_path / "d.ndjson")) as dead:
        forwarder = Forwarder(sink, dead)
        for start in (0, 10, 20):
            forwarder.run([Item("b", i, e) for i, e in enumerate(events[start:start + 10])])
    s = forwarder.summary
    assert (s.read, s.accepted, s.delivered) == (30, 30, 30)


# --- outputs that cannot be written ------------------------------------------------------------------
FULL_DISK = "/dev/full"             # every write fails with ENOSPC, as on a full disk (Linux)


def _mixed_input(tmp_path: Path, good: int = 20) -> int:
    """`in.ndjson` with `good` valid events, one invalid and one unparseable line; returns the line count."""
    lines = [json.dumps(e) for e in event_dicts(good, seed=41)] + ['{"bad": 1}', "not json"]
    (tmp_path / "in.ndjson").write_text("\n".join(lines) + "\n")
    return len(lines)


@pytest.mark.parametrize("where, message", [
    ("missing/dl.ndjson", "directory"),
    (".", "is a directory"),
])
def test_a_dead_letter_path_that_cannot_be_written_is_refused_before_reading(cli, tmp_path, where, message):
    _mixed_input(tmp_path)
    r = cli("forward", "--to", "file:///" + str(tmp_path / "out.ndjson"), "--dead-letter", where, "in.ndjson")
    assert r.code == 2
    assert "cannot write the dead-letter file" in r.err and message in r.err and "Traceback" not in r.err
    assert (tmp_path / "out.ndjson").read_text() == ""          # nothing was forwarded


def test_a_full_disk_under_the_dead_letter_stops_the_run_and_says_how_far_it_got(cli, tmp_path):
    assert Path(FULL_DISK).exists()
    lines = _mixed_input(tmp_path)
    r = cli("forward", "--batch-size", "5", "--to", "file:///" + str(tmp_path / "out.ndjson"),
            "--dead-letter", FULL_DISK, "in.ndjson")
    assert r.code == 2 and "Traceback" not in r.err
    assert f"stopped: cannot write the dead-letter file {FULL_DISK}: No space left on device" in r.err
    # The invalid line came after 20 good ones: those were delivered and the summary says so.
    assert f"read {lines - 1} events" in r.out and "delivered           20" in r.out
    assert "0 written to the dead-letter file" in r.out
    assert len((tmp_path / "out.ndjson").read_text().splitlines()) == 20


def test_a_destination_file_that_cannot_be_written_dead_letters_the_batch(cli, tmp_path):
    lines = _mixed_input(tmp_path)
    r = cli("forward", "--summary", "json", "--to", f"file://{FULL_DISK}", "--dead-letter", "dl.ndjson", "in.ndjson")
    s = json.loads(r.out)
    assert r.code == 1
    assert (s["read"], s["delivered"], s["undeliverable"], s["rejected"]) == (lines, 0, 20, 22)
    dl = dead_letters(tmp_path / "dl.ndjson")
    assert len(dl) == 22
    refused = [d for d in dl if d.get("sink") == f"file:{FULL_DISK}"]
    assert len(refused) == 20
    assert all(d["reason"].startswith(f"cannot write to {FULL_DISK}: No space left on device") for d in refused)
    # The destination refused them after the reader let go of them: the records still name their line.
    assert sorted(int(d["where"].split(":")[1]) for d in refused) == list(range(1, 21))


def test_a_sqlite_destination_that_cannot_be_opened_is_a_usage_error(cli, tmp_path):
    _mixed_input(tmp_path)
    (tmp_path / "adir").mkdir()
    r = cli("forward", "--to", "sqlite:///adir", "in.ndjson")
    assert r.code == 2 and "Traceback" not in r.err
    assert "cannot open the SQLite store" in r.err and "the path is a directory" in r.err


def test_a_stopped_run_with_summary_json_prints_one_json_document_saying_why(cli, tmp_path):
    """Scripts parse stdout with --summary json: a run stopped by its output gets JSON too, not text."""
    lines = _mixed_input(tmp_path)
    r = cli("forward", "--batch-size", "5", "--to", "file:///" + str(tmp_path / "out.ndjson"),
            "--dead-letter", FULL_DISK, "--summary", "json", "in.ndjson")
    assert r.code == 2 and "Traceback" not in r.err
    summary = json.loads(r.out)
    assert (summary["read"], summary["delivered"], summary["dead_lettered"]) == (lines - 1, 20, 0)
    assert "No space left on device" in summary["stopped"] and "aborted" not in summary
