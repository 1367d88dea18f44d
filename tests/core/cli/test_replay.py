"""`wia-security replay`: the dead letter of a real failing run sent again once the destination works;
every replayable event delivered once, repeats skipped, raw input carried, invalid events rejected again."""
from __future__ import annotations

import gzip
import json
import signal
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pytest

from cli_process import run as run_process
from cli_process import start, wait_until
from servers.hec_contract import Fault, HecContractServer
from strategies import event_dicts

TOKEN = "11111111-2222-4333-8444-555555555555"
UNPARSEABLE = '{"type": "alert", "id": broken'
INVALID = {"type": "alert", "note": "no id, no version"}


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def stored_ids(db: Path) -> list[str]:
    return [row[0] for row in sqlite3.connect(db).execute("SELECT id FROM events ORDER BY id")]


def hec_url(server: HecContractServer) -> str:
    # one attempt, no timer: a refusal is dead-lettered at once
    return f"splunk+{server.url}?token_env=HEC_TOKEN&max_attempts=1&max_wait=0"


def failing_run(cli, tmp_path: Path, monkeypatch, n: int = 30, runs: int = 2) -> tuple[Path, list[str]]:
    """`forward` to a HEC that answers 503 (a busy indexer) to every request, `runs` times over the same
    input (a rerun after the outage seemed over): the dead letter holds each record `runs` times."""
    monkeypatch.setenv("HEC_TOKEN", TOKEN)
    events = event_dicts(n, seed=11)
    source = tmp_path / "in.ndjson"
    source.write_text("\n".join([json.dumps(e) for e in events] + [json.dumps(INVALID), UNPARSEABLE]) + "\n")
    with HecContractServer({TOKEN: {}}) as hec:
        hec.state.faults.extend(Fault("status", status=503, code=9) for _ in range(runs))
        for _ in range(runs):
            r = cli("forward", str(source), "--to", hec_url(hec), "--dead-letter", str(tmp_path / "dead.ndjson"))
            assert r.code == 1, r.err
        assert hec.events == []
    return tmp_path / "dead.ndjson", [e["id"] for e in events]


def summary(out: str) -> dict:
    return json.loads(out)


def test_replay_after_outage_stores_each_event_once_and_carries_the_rest(cli, tmp_path, monkeypatch):
    dead, ids = failing_run(cli, tmp_path, monkeypatch)
    records = lines(dead)
    assert len(records) == 2 * (len(ids) + 2)                     # every record twice: same dead_letter_id
    r = cli("replay", str(dead), "--to", "sqlite:///store.db", "--summary", "json")
    s = summary(r.out)
    assert r.code == 1                                             # the invalid event is rejected again
    assert stored_ids(tmp_path / "store.db") == sorted(ids)        # every refused event, exactly once
    assert (s["records"], s["replayed"], s["repeats"], s["not_replayable"]) == (len(records), len(ids) + 1,
                                                                              len(ids) + 2, 1)
    assert (s["delivered"], s["rejected_again"], s["invalid"], s["dead_lettered"]) == (len(ids), 1, 1, 2)
    new = lines(tmp_path / "wia-dead-letter.replay.ndjson")
    assert len(new) == 2
    invalid_before = next(rec for rec in records if rec.get("event") == INVALID)
    invalid_again = next(rec for rec in new if "event" in rec)
    assert invalid_again["event"] == INVALID and invalid_again["reason"].startswith("invalid: ")
    assert invalid_again["where"] == invalid_before["where"]                  # still names the original line
    assert invalid_again["dead_letter_id"] == invalid_before["dead_letter_id"]
    raw_before = next(rec for rec in records if "raw" in rec)
    raw_after = next(rec for rec in new if "raw" in rec)
    assert raw_after == raw_before and raw_after["raw"].rstrip("\r\n") == UNPARSEABLE   # carried unchanged
    assert "not replayable" in r.err and "invalid: " in r.err

    # Replayed twice (or the new dead letter fed back): nothing is stored twice.
    again = cli("replay", str(dead), "--to", "sqlite:///store.db", "--dead-letter", "second.ndjson",
                "--summary", "json")
    s2 = summary(again.out)
    assert (s2["delivered"], s2["duplicates"]) == (0, len(ids))
    assert stored_ids(tmp_path / "store.db") == sorted(ids)


def test_replay_into_the_recovered_non_idempotent_destination_sends_each_event_once(cli, tmp_path, monkeypatch):
    # HEC has no idempotent id: only the replay's own dedup keeps the repeats out.
    dead, ids = failing_run(cli, tmp_path, monkeypatch, runs=3)
    with HecContractServer({TOKEN: {}}) as hec:
        r = cli("replay", str(dead), "--to", hec_url(hec), "--summary", "json")
        indexed = [e["event"]["id"] for e in hec.events]
    assert sorted(indexed) == sorted(ids)                          # each once, though dead-lettered 3 times
    assert summary(r.out)["delivered"] == len(ids)


def test_replay_text_summary_and_text_counts(cli, tmp_path, monkeypatch):
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=5, runs=1)
    r = cli("replay", str(dead), "--to", "sqlite:///store.db")
    assert r.code == 1
    assert "dead-letter records read 7" in r.out and "not replayable            1" in r.out
    assert "new dead letter: wia-dead-letter.replay.ndjson (2 records" in r.out


def test_replay_all_delivered_exits_0(cli, tmp_path, monkeypatch):
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=5, runs=1)
    r = cli("replay", str(dead), "--reason-match", "^gave up", "--to", "sqlite:///store.db", "--summary", "json")
    s = summary(r.out)
    assert r.code == 0, r.err
    assert (s["replayed"], s["not_selected"], s["not_replayable"], s["dead_lettered"]) == (5, 2, 0, 0)
    assert stored_ids(tmp_path / "store.db") == sorted(ids)
    assert not (tmp_path / "wia-dead-letter.replay.ndjson").exists()     # not-selected records are not carried


def test_replay_selects_by_sink(cli, tmp_path, monkeypatch):
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=5, runs=1)
    sink = next(rec["sink"] for rec in lines(dead) if "sink" in rec)
    r = cli("replay", str(dead), "--sink", sink, "--to", "sqlite:///store.db", "--summary", "json")
    assert (summary(r.out)["replayed"], summary(r.out)["not_selected"]) == (5, 2)
    r = cli("replay", str(dead), "--sink", "elsewhere", "--to", "sqlite:///other.db", "--summary", "json")
    assert (summary(r.out)["replayed"], summary(r.out)["not_selected"]) == (0, 7)


def test_dry_run_counts_and_writes_nothing(cli, tmp_path, monkeypatch):
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=8, runs=2)
    before = dead.read_bytes()
    r = cli("replay", str(dead), "--to", "sqlite:///store.db", "--dry-run", "--summary", "json")
    s = summary(r.out)
    assert r.code == 1                       # the invalid event and the raw record would not get through
    assert (s["replayed"], s["repeats"], s["not_replayable"], s["would_be_invalid"]) == (9, 10, 1, 1)
    assert s["delivered"] == 0 and s["dead_lettered"] == 0 and s["dry_run"] is True
    assert not (tmp_path / "store.db").exists()
    assert not (tmp_path / "wia-dead-letter.replay.ndjson").exists()
    assert dead.read_bytes() == before


def test_gzip_input_and_stdin(cli, tmp_path, monkeypatch):
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=6, runs=2)
    packed = tmp_path / "dead.ndjson.gz"
    packed.write_bytes(gzip.compress(dead.read_bytes()))
    r = cli("replay", str(packed), "--to", "sqlite:///zipped.db", "--dead-letter", "z.ndjson", "--summary", "json")
    assert stored_ids(tmp_path / "zipped.db") == sorted(ids)
    assert summary(r.out)["repeats"] == 8
    p = run_process("replay", "-", "--to", "sqlite:///piped.db", "--dead-letter", "p.ndjson", "--summary", "json",
                    cwd=tmp_path, input=dead.read_bytes())
    assert p.returncode == 1, p.stderr
    assert stored_ids(tmp_path / "piped.db") == sorted(ids)
    assert json.loads(p.stdout)["not_replayable"] == 1
    assert len(lines(tmp_path / "p.ndjson")) == 2


def test_output_that_is_an_input_is_refused(cli, tmp_path, monkeypatch):
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=3, runs=1)
    before = dead.read_bytes()
    r = cli("replay", str(dead), "--dead-letter", str(dead), "--to", "sqlite:///store.db")
    assert r.code == 2 and "also an input" in r.err
    r = cli("replay", str(dead), "--dead-letter", f"file://{dead}", "--to", "sqlite:///store.db")
    assert r.code == 2 and "also an input" in r.err
    assert dead.read_bytes() == before and not (tmp_path / "store.db").exists()
    # The default output replayed in turn: refused, with the way out.
    cli("replay", str(dead), "--to", "sqlite:///store.db")
    default = tmp_path / "wia-dead-letter.replay.ndjson"
    kept = default.read_bytes()
    r = cli("replay", str(default), "--to", "sqlite:///store.db")
    assert r.code == 2 and "--dead-letter" in r.err and default.read_bytes() == kept
    r = cli("replay", str(default), "--to", "sqlite:///store.db", "--dead-letter", "third.ndjson")
    assert r.code == 1 and len(lines(tmp_path / "third.ndjson")) == 2


def test_sqlite_dead_letter_and_config_replay_only_to_the_refusing_destination(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HEC_TOKEN", TOKEN)
    events = event_dicts(20, seed=4)
    ids = [e["id"] for e in events]
    source = tmp_path / "in.ndjson"
    source.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with HecContractServer({TOKEN: {}}) as primary, HecContractServer({TOKEN: {}}) as backup:
        config = tmp_path / "wia.toml"
        config.write_text(textwrap.dedent(f"""
            [forward]
            dead_letter = "sqlite:///{tmp_path}/dead.db"
            [delivery]
            max_wait = 0
            max_attempts = 1
            [destinations.primary]
            url = "splunk+{primary.url}"
            token_env = "HEC_TOKEN"
            [destinations.backup]
            url = "splunk+{backup.url}"
            token_env = "HEC_TOKEN"
            [destinations.store]
            url = "file://{tmp_path}/archive.ndjson"
        """))
        backup.state.faults.append(Fault("status", status=503, code=9))
        assert cli("forward", str(source), "--config", str(config)).code == 1
        assert len(primary.events) == 20 and backup.events == []
        # The dead letter is the config's own: replay refuses to write into it, so the default file is used.
        r = cli("replay", f"sqlite:///{tmp_path}/dead.db", "--config", str(config), "--summary", "json")
        s = summary(r.out)
        assert r.code == 0, r.err
        assert sorted(e["event"]["id"] for e in backup.events) == sorted(ids)
        assert len(primary.events) == 20                            # not sent again
        assert s["destinations"]["primary"]["delivered"] == 0 and s["destinations"]["store"]["delivered"] == 0
        assert s["destinations"]["backup"]["delivered"] == 20
    assert len(lines(tmp_path / "archive.ndjson")) == 20            # a file output would have grown


def test_events_a_sink_dead_letter_stored_are_replayed_without_the_annotation(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HEC_TOKEN", TOKEN)
    events = event_dicts(4, seed=2)
    events[0].pop("meta", None)                                     # the dead letter adds meta ...
    events[1]["meta"] = {"tags": ["x"]}                             # ... or meta.custom to hold its record
    events[2].setdefault("meta", {})["custom"] = {}                 # an empty one of the event's own stays
    events[3].setdefault("meta", {})["custom"] = {"team": "blue"}
    source = tmp_path / "in.ndjson"
    source.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with HecContractServer({TOKEN: {}}) as hec:
        hec.state.faults.append(Fault("status", status=503, code=9))
        r = cli("forward", str(source), "--to", hec_url(hec), "--dead-letter", f"sink+file://{tmp_path}/dl.ndjson")
        assert r.code == 1
    annotated = lines(tmp_path / "dl.ndjson")
    assert len(annotated) == 4 and all("dead_letter" in e["meta"]["custom"] for e in annotated)
    r = cli("replay", str(tmp_path / "dl.ndjson"), "--to", "sqlite:///store.db", "--summary", "json")
    assert r.code == 0, r.err
    db = sqlite3.connect(tmp_path / "store.db")
    bodies = {row[0]: json.loads(row[1]) for row in db.execute("SELECT id, body FROM events")}
    for event in events:
        assert "dead_letter" not in json.dumps(bodies[event["id"]])
        assert bodies[event["id"]].get("meta") == event.get("meta")


def test_a_torn_line_is_carried_not_dropped(cli, tmp_path, monkeypatch):
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=3, runs=1)
    with dead.open("a") as fh:
        fh.write('{"reason": "gave up", "event": {"id": "cut sho')      # a kill mid-write
    r = cli("replay", str(dead), "--to", "sqlite:///store.db", "--summary", "json")
    s = summary(r.out)
    assert s["not_replayable"] == 2 and stored_ids(tmp_path / "store.db") == sorted(ids)
    carried = [rec for rec in lines(tmp_path / "wia-dead-letter.replay.ndjson") if "raw" in rec]
    assert any(rec["raw"].startswith('{"reason": "gave up", "event": {"id": "cut sho') for rec in carried)


def test_an_event_refused_by_two_destinations_is_replayed_once_to_one(cli, tmp_path, monkeypatch):
    # Two records per event (different sinks, so different dead_letter_ids), one destination for the replay.
    monkeypatch.setenv("HEC_TOKEN", TOKEN)
    events = event_dicts(10, seed=8)
    source = tmp_path / "in.ndjson"
    source.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with HecContractServer({TOKEN: {}}) as one, HecContractServer({TOKEN: {}}) as two:
        config = tmp_path / "wia.toml"
        config.write_text(textwrap.dedent(f"""
            [delivery]
            max_wait = 0
            max_attempts = 1
            [destinations.one]
            url = "splunk+{one.url}"
            token_env = "HEC_TOKEN"
            [destinations.two]
            url = "splunk+{two.url}"
            token_env = "HEC_TOKEN"
        """))
        one.state.faults.append(Fault("status", status=503, code=9))
        two.state.faults.append(Fault("status", status=503, code=9))
        assert cli("forward", str(source), "--config", str(config), "--dead-letter", "dead.ndjson").code == 1
        assert len(lines(tmp_path / "dead.ndjson")) == 20
        with HecContractServer({TOKEN: {}}) as recovered:
            r = cli("replay", "dead.ndjson", "--to", hec_url(recovered), "--summary", "json")
            assert sorted(e["event"]["id"] for e in recovered.events) == sorted(e["id"] for e in events)
        assert summary(r.out)["repeats"] == 10
        # With the config, each destination gets what it refused, once.
        r = cli("replay", "dead.ndjson", "--config", str(config), "--dead-letter", "again.ndjson", "--summary", "json")
        assert r.code == 0, r.err
        assert sorted(e["event"]["id"] for e in one.events) == sorted(e["id"] for e in events)
        assert sorted(e["event"]["id"] for e in two.events) == sorted(e["id"] for e in events)


def test_sigint_while_replay_waits_on_a_quiet_pipe_finishes_what_was_read(cli, tmp_path, monkeypatch):
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=4, runs=1)
    out_path = tmp_path / "out.ndjson"
    proc = start("replay", "-", "--to", f"file://{out_path}", "--batch-size", "1", "--summary", "json",
                 cwd=tmp_path, stdin=subprocess.PIPE)
    proc.stdin.write(dead.read_bytes())
    proc.stdin.flush()                                   # and keep it open: the producer is just quiet
    wait_until(lambda: out_path.exists() and out_path.read_bytes().count(b"\n") == 4, what="the events replayed")
    wait_until(lambda: (tmp_path / "wia-dead-letter.replay.ndjson").exists()
               and (tmp_path / "wia-dead-letter.replay.ndjson").read_bytes().count(b"\n") == 2,
               what="the rest carried")
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = (data.decode() for data in proc.communicate(timeout=60))
    assert proc.returncode == 130, err
    s = json.loads(out)
    assert (s["records"], s["replayed"], s["delivered"], s["not_replayable"], s["interrupted"]) == (6, 5, 4, 1, True)
    assert sorted(json.loads(line)["id"] for line in out_path.read_text().splitlines()) == sorted(ids)
    assert "interrupted" in err and "Traceback" not in err


def test_sqlite_dead_letter_output_keeps_the_records_and_cannot_be_the_input(cli, tmp_path, monkeypatch):
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=3, runs=1)
    raw_before = next(rec for rec in lines(dead) if "raw" in rec)
    r = cli("replay", str(dead), "--to", "sqlite:///store.db", "--dead-letter", "sqlite:///new.db")
    assert r.code == 1
    rows = [json.loads(row[0]) for row in sqlite3.connect(tmp_path / "new.db").execute(
        "SELECT record FROM dead_letters ORDER BY seq")]
    assert raw_before in rows and any(rec.get("event") == INVALID for rec in rows) and len(rows) == 2
    # The SQLite dead letter replayed in turn (by path, sniffed as SQLite): not into itself.
    r = cli("replay", "new.db", "--to", "sqlite:///store.db", "--dead-letter", "sqlite:///new.db")
    assert r.code == 2 and "also an input" in r.err
    r = cli("replay", "new.db", "--to", "sqlite:///new.db", "--dead-letter", "x.ndjson")
    assert r.code == 2 and "also an input" in r.err
    r = cli("replay", "new.db", "--to", "sqlite:///store.db", "--dead-letter", "x.ndjson", "--summary", "json")
    s = json.loads(r.out)
    assert (s["records"], s["replayed"], s["not_replayable"], s["duplicates"]) == (2, 1, 1, 0)
    assert len(sqlite3.connect(tmp_path / "new.db").execute("SELECT * FROM dead_letters").fetchall()) == 2


def test_hostile_records_are_each_settled_without_a_traceback(cli, tmp_path):
    """Records a person or a broken tool wrote: a raw_base64 that is not base64, two different events
    under one (copied or forged) dead_letter_id, records with neither event nor raw. Each event is
    delivered and every other record carried: none is dropped as a "repeat" of a different one."""
    one, two = event_dicts(2, seed=21)
    records = [
        {"reason": "unparseable input: not valid UTF-8", "where": "a.ndjson:1", "raw_base64": "!!!notbase64"},
        {"reason": "gave up", "dead_letter_id": "0" * 32, "where": "a.ndjson:2", "event": one},
        {"reason": "gave up", "dead_letter_id": "0" * 32, "where": "a.ndjson:2", "event": two},   # id copied
        {"reason": "first", "event": None},
        {"reason": "second, another record", "event": None},
    ]
    dead = tmp_path / "hostile.ndjson"
    dead.write_text("".join(json.dumps(rec) + "\n" for rec in records))
    r = cli("replay", str(dead), "--to", "sqlite:///store.db", "--summary", "json")
    assert "Traceback" not in r.err and r.code == 1, r.err
    s = summary(r.out)
    assert (s["records"], s["replayed"], s["not_replayable"], s["repeats"], s["delivered"]) == (5, 2, 3, 0, 2)
    assert stored_ids(tmp_path / "store.db") == sorted([one["id"], two["id"]])
    carried = lines(tmp_path / "wia-dead-letter.replay.ndjson")
    assert carried == [records[0], records[3], records[4]]                      # unchanged, each one


def test_replay_leaves_no_files_behind(cli, tmp_path, monkeypatch):
    """Reading a SQLite dead letter leaves no -wal/-shm beside it, a corrupt input opens no destination
    (no empty store left), and a SQLite input unreadable midway carries no made-up `raw`."""
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=3, runs=1)
    assert cli("replay", str(dead), "--to", "sqlite:///store.db", "--dead-letter", "sqlite:///new.db").code == 1
    (tmp_path / "nested").mkdir()
    (tmp_path / "new.db").rename(tmp_path / "nested" / "new.db")
    assert sorted(p.name for p in (tmp_path / "nested").iterdir()) == ["new.db"]
    r = cli("replay", "nested/new.db", "--to", f"file://{tmp_path}/out.ndjson", "--dead-letter", "x.ndjson")
    assert r.code == 1, r.err
    assert sorted(p.name for p in (tmp_path / "nested").iterdir()) == ["new.db"]

    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)
    r = cli("replay", str(corrupt), "--to", "sqlite:///never.db", "--dead-letter", "never.ndjson")
    assert r.code == 2 and "cannot read the SQLite dead letter" in r.err
    assert not (tmp_path / "never.db").exists() and not (tmp_path / "never.ndjson").exists()

    # pages after the first zeroed: the schema reads, the rows do not
    data = (tmp_path / "nested" / "new.db").read_bytes()
    torn = tmp_path / "torn.db"
    torn.write_bytes(data[:4096] + b"\x00" * (len(data) - 4096))
    r = cli("replay", str(torn), "--to", "sqlite:///torn-store.db", "--dead-letter", "torn.ndjson")
    assert r.code == 1 and "unreadable SQLite dead letter" in r.err
    (carried,) = lines(tmp_path / "torn.ndjson")
    assert carried["reason"].startswith("not a dead-letter record: unreadable SQLite dead letter")
    assert "raw" not in carried and "event" not in carried


def test_a_destination_that_is_the_input_is_refused_before_it_is_opened(cli, tmp_path, monkeypatch):
    """Opening a SQLite destination creates its tables: refused only after, the input dead letter had
    gained the store's schema (an input changed)."""
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=3, runs=1)
    assert cli("replay", str(dead), "--to", "sqlite:///store.db", "--dead-letter", "sqlite:///new.db").code == 1

    def schema() -> list[tuple]:
        return sqlite3.connect(tmp_path / "new.db").execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()

    before = schema()
    r = cli("replay", "new.db", "--to", "sqlite:///new.db", "--dead-letter", "x.ndjson")
    assert r.code == 2 and "also an input" in r.err
    config = tmp_path / "wia.toml"
    config.write_text(f'[destinations.store]\nurl = "sqlite:///{tmp_path}/new.db"\n')
    r = cli("replay", "new.db", "--config", str(config), "--dead-letter", "x.ndjson")
    assert r.code == 2 and "also an input" in r.err
    assert schema() == before


def test_config_an_invalid_event_sharing_an_id_does_not_take_the_route_of_a_valid_one(cli, tmp_path):
    """A dead letter holding an event refused by one destination and, after it, an invalid event with the
    same id (a corrupted copy): the invalid one gave up the valid one's route, which then went to every
    destination, again to the one that had taken it."""
    (event,) = event_dicts(1, seed=3)
    broken = {k: v for k, v in event.items() if k != "version"}
    dead = tmp_path / "dead.ndjson"
    dead.write_text(json.dumps({"reason": "gave up", "sink": "backup", "where": "in:1", "event": event}) + "\n"
                    + json.dumps({"reason": "invalid: /", "where": "in:2", "event": broken}) + "\n")
    config = tmp_path / "wia.toml"
    config.write_text(f'[destinations.primary]\nurl = "file://{tmp_path}/primary.ndjson"\n'
                      f'[destinations.backup]\nurl = "file://{tmp_path}/backup.ndjson"\n')
    r = cli("replay", str(dead), "--config", str(config), "--summary", "json")
    assert r.code == 1 and summary(r.out)["invalid"] == 1
    assert [e["id"] for e in lines(tmp_path / "backup.ndjson")] == [event["id"]]
    assert lines(tmp_path / "primary.ndjson") == []                       # it took the event the first time


def test_a_corrupt_gzip_dead_letter_is_reported_not_a_traceback(cli, tmp_path, monkeypatch):
    """A gzip whose deflate data is damaged midway (zlib.error, which is not an OSError): what was read
    is replayed, the rest named as unreadable and the run exits 1."""
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=3, runs=1)
    packed = gzip.compress(dead.read_bytes() * 40)
    damaged = tmp_path / "damaged.ndjson.gz"
    damaged.write_bytes(packed[:40] + b"\x00" * 200 + packed[240:])
    r = cli("replay", str(damaged), "--to", "sqlite:///store.db", "--summary", "json")
    assert r.code == 1 and "Traceback" not in r.err
    assert "unreadable input" in r.err
    carried = lines(tmp_path / "wia-dead-letter.replay.ndjson")
    assert any(rec["reason"].startswith("not a dead-letter record: unreadable input") for rec in carried)


def test_records_whose_sink_or_time_is_not_text_are_settled(cli, tmp_path):
    """A `sink` that is a list or an object (a hand-made record) made --sink and --config raise
    (unhashable), and carrying such a record into a SQLite dead letter stopped the run (binding error)."""
    (event,) = event_dicts(1, seed=5)
    dead = tmp_path / "dead.ndjson"
    odd = {"reason": "x", "sink": {"name": "backup"}, "failed_at": {"when": 1}, "raw": "zz"}
    dead.write_text(json.dumps({"reason": "gave up", "sink": ["backup"], "where": "in:1", "event": event}) + "\n"
                    + json.dumps(odd) + "\n")
    config = tmp_path / "wia.toml"
    config.write_text(f'[destinations.backup]\nurl = "file://{tmp_path}/backup.ndjson"\n')
    r = cli("replay", str(dead), "--sink", "backup", "--to", "sqlite:///a.db", "--summary", "json")
    assert "Traceback" not in r.err and r.code == 0, r.err
    assert summary(r.out)["not_selected"] == 2                      # neither names the destination backup
    r = cli("replay", str(dead), "--config", str(config), "--dead-letter", "sqlite:///dl.db", "--summary", "json")
    assert r.code == 1, r.err
    assert [e["id"] for e in lines(tmp_path / "backup.ndjson")] == [event["id"]]
    (row,) = sqlite3.connect(tmp_path / "dl.db").execute("SELECT sink, record FROM dead_letters").fetchall()
    assert row[0] is None and json.loads(row[1]) == odd             # carried unchanged


def test_dry_run_never_shows_the_destination_url_credentials(cli, tmp_path, monkeypatch):
    """A dry run opens no destination, so it has no sink name to show: it showed the URL as given,
    user:password and token query included."""
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=2, runs=1)
    url = "splunk+https://user:PASSWORD1@hec.example:8088/services/collector?token=SECRETTOKEN1"
    for form in ("text", "json"):
        r = cli("replay", str(dead), "--to", url, "--dry-run", "--summary", form)
        assert r.code == 1
        assert "hec.example" in r.out
        assert "PASSWORD1" not in r.out + r.err and "SECRETTOKEN1" not in r.out + r.err


@pytest.mark.parametrize("url", [
    "splunk+https://hec.example:8088?token=SECRETTOKEN2",           # a query straight after the host
    "splunk+https://user:PASS/WORD2@hec.example:8088/x?token=SECRETTOKEN2",   # a raw "/" in the password
])
def test_dry_run_hides_a_query_that_follows_the_host(cli, tmp_path, monkeypatch, url):
    dead, _ = failing_run(cli, tmp_path, monkeypatch, n=2, runs=1)
    r = cli("replay", str(dead), "--to", url, "--dry-run")
    assert "nothing sent to splunk+https://hec.example:8088/..." in r.out
    assert "SECRETTOKEN2" not in r.out + r.err and "WORD2" not in r.out + r.err


def test_dry_run_names_the_local_store_or_file_it_would_write(cli, tmp_path, monkeypatch):
    """Which store a dry run means is no secret: it said `sqlite:///...` for every SQLite destination,
    the default included, so the operator could not tell which store the count was for."""
    dead, _ = failing_run(cli, tmp_path, monkeypatch, n=2, runs=1)
    for args, name in (((), "sqlite:wia-events.db"), (("--to", "sqlite:///stores/b.db"), "sqlite:stores/b.db"),
                       (("--to", f"file://{tmp_path}/out.ndjson?format=ocsf"), f"file:{tmp_path}/out.ndjson")):
        r = cli("replay", str(dead), *args, "--dry-run")
        assert f"dry run: nothing sent to {name}, nothing written" in r.out, r.out
        r = cli("replay", str(dead), *args, "--dry-run", "--summary", "json")
        assert summary(r.out)["destination"] == name
    assert not (tmp_path / "wia-events.db").exists() and not (tmp_path / "out.ndjson").exists()


def test_a_stopped_replay_with_summary_json_prints_one_json_document_saying_why(cli, tmp_path, monkeypatch):
    """A new dead letter that cannot be written stops the replay; --summary json still gives JSON."""
    dead, ids = failing_run(cli, tmp_path, monkeypatch, n=3, runs=1)
    r = cli("replay", str(dead), "--to", "sqlite:///store.db", "--dead-letter", "/dev/full", "--summary", "json")
    assert r.code == 2 and "Traceback" not in r.err and "stopped:" in r.err
    s = summary(r.out)
    assert "No space left on device" in s["stopped"] and s["records"] >= 1 and s["dead_lettered"] == 0
