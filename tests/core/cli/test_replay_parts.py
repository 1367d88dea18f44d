"""`wia-security replay` of dead letters written in parts (a record too big for one SQS message or log
entry: the Lambda's queue and log dead letters, the GCP function's log) and of log entries: the parts are
joined into the record and its event replayed once; a record with a part missing is carried, not lost."""
from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

from strategies import event_dicts
from wia_security.connectors.aws.dead_letter import record_parts
from wia_security.connectors.base import Rejected
from wia_security.connectors.dead_letter import dead_letter_record


def big_refused_record(seed: int = 5) -> dict:
    """The dead letter of an event refused by a destination, grown past one SQS message (600 KB)."""
    event = event_dicts(1, seed=seed)[0]
    event.setdefault("meta", {}).setdefault("custom", {})["blob"] = "x" * 600_000
    return dead_letter_record(Rejected("HTTP 503 from the destination (gave up after 6 attempts)", event=event,
                                       where=f"s3://ingest/batch-{seed}.ndjson:7", sink="hec"))


def parts_of(record: dict, chars: int = 32 * 1024) -> list[dict]:
    return record_parts(record, json.dumps(record), chars)


def stored(db: Path) -> dict[str, dict]:
    return {row[0]: json.loads(row[1]) for row in sqlite3.connect(db).execute("SELECT id, body FROM events")}


def write(path: Path, values: list) -> Path:
    path.write_text("".join(json.dumps(v) + "\n" for v in values))
    return path


def test_sqs_bodies_in_any_order_with_a_repeated_part_replay_the_event_once(cli, tmp_path):
    big, small = big_refused_record(5), dead_letter_record(Rejected("HTTP 503", event=event_dicts(1, seed=6)[0],
                                                                    where="s3://ingest/b.ndjson:1", sink="hec"))
    parts = parts_of(big)
    assert len(parts) >= 19
    bodies = parts + [parts[3]] + [small]            # a record retried whole repeats its parts
    random.Random(1).shuffle(bodies)
    r = cli("replay", str(write(tmp_path / "bodies.ndjson", bodies)), "--to", "sqlite:///store.db",
            "--summary", "json")
    assert r.code == 0, r.err
    s = json.loads(r.out)
    assert (s["records"], s["replayed"], s["not_replayable"], s["parts"]) == (2, 2, 0, len(parts) + 1)
    events = stored(tmp_path / "store.db")
    assert events[big["event"]["id"]]["meta"]["custom"]["blob"] == "x" * 600_000       # the whole event, once
    assert set(events) == {big["event"]["id"], small["event"]["id"]}


def test_lambda_log_lines_and_exported_cloud_logging_entries_are_read(cli, tmp_path):
    big = big_refused_record(7)
    lines = [{"time": "2026-12-05T20:00:00.000Z", "level": "ERROR", "logger": "wia",
              "message": f"dead letter (part {p['part']} of {p['parts']})", "wia_dead_letter": p}
             for p in parts_of(big, 8 * 1024)]
    whole = dead_letter_record(Rejected("HTTP 400", event=event_dicts(1, seed=8)[0], where="pubsub:1", sink="scc"))
    entries = [{"severity": "ERROR", "jsonPayload": {"message": "dead letter", "wia_dead_letter": whole}}]
    r = cli("replay", str(write(tmp_path / "log.ndjson", lines)), str(write(tmp_path / "export.ndjson", entries)),
            "--to", "sqlite:///store.db", "--summary", "json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["replayed"] == 2
    assert set(stored(tmp_path / "store.db")) == {big["event"]["id"], whole["event"]["id"]}


def test_a_record_with_a_part_missing_is_carried_part_by_part_and_named(cli, tmp_path):
    big = big_refused_record(9)
    parts = parts_of(big)
    kept = [p for p in parts if p["part"] != 4]
    r = cli("replay", str(write(tmp_path / "bodies.ndjson", kept)), "--to", "sqlite:///store.db",
            "--summary", "json")
    assert r.code == 1
    s = json.loads(r.out)
    assert (s["records"], s["replayed"], s["not_replayable"], s["parts"]) == (1, 0, 1, len(kept))
    assert f"written in {len(parts)} parts, {len(kept)} read; part(s) 4 missing" in r.err
    carried = [json.loads(line) for line in (tmp_path / "wia-dead-letter.replay.ndjson").read_text().splitlines()]
    assert carried == kept                           # as read: joinable once part 4 is found
    # ... and once it is, the carried parts and the missing one replay the event
    write(tmp_path / "found.ndjson", [parts[3]])
    r = cli("replay", str(tmp_path / "wia-dead-letter.replay.ndjson"), str(tmp_path / "found.ndjson"),
            "--to", "sqlite:///store.db", "--dead-letter", str(tmp_path / "again.ndjson"), "--summary", "json")
    assert r.code == 0, r.err
    assert big["event"]["id"] in stored(tmp_path / "store.db")


def test_parts_that_do_not_join_into_json_are_carried_with_their_text(cli, tmp_path):
    parts = parts_of(big_refused_record(10))
    parts[-1] = {**parts[-1], "record_part": parts[-1]["record_part"][:-3]}    # the record's end cut off by hand
    r = cli("replay", str(write(tmp_path / "bodies.ndjson", parts)), "--to", "sqlite:///store.db",
            "--summary", "json")
    assert r.code == 1
    assert json.loads(r.out)["not_replayable"] == 1
    (carried,) = [json.loads(line) for line in (tmp_path / "wia-dead-letter.replay.ndjson").read_text().splitlines()]
    assert "do not join into a record" in carried["reason"] and len(carried["raw"]) > 600_000


def test_two_writes_of_one_record_are_joined_each_from_its_own_parts(cli, tmp_path):
    """The same rejected value written twice (its source redelivered it and the destination refused it
    again, in other words): one dead_letter_id, but the reason and time differ, so the JSON texts differ in
    length and their parts are cut at other places. The first write lost a part (its record was retried
    whole, as SQS does when one part fails); the second is complete. Joining part 1 of one write with part 2
    of the other gave text that is not JSON and the event was not replayed."""
    from wia_security.connectors.aws.dead_letter import _message_bodies
    event = event_dicts(1, seed=11)[0]
    blob = "".join(random.Random(11).choices("abcdefghij", k=300_000))      # a shifted cut shows
    event.setdefault("meta", {}).setdefault("custom", {})["blob"] = blob
    writes = [[json.loads(body) for body in _message_bodies(Rejected(reason, event=event, where="sqs:m-1:1", sink="hec"))]
              for reason in ("HTTP 503", "HTTP 500: the indexer queue is full, try again later")]
    assert writes[0][0]["dead_letter_id"] == writes[1][0]["dead_letter_id"]
    assert len(writes[0]) == len(writes[1]) > 2
    bodies = [p for p in writes[0] if p["part"] != 2] + writes[1]     # the first write's part 2 never stored
    r = cli("replay", str(write(tmp_path / "bodies.ndjson", bodies)), "--to", "sqlite:///store.db",
            "--summary", "json")
    assert r.code == 0, r.err
    s = json.loads(r.out)
    assert (s["records"], s["replayed"], s["not_replayable"], s["parts"]) == (1, 1, 0, len(bodies))
    assert stored(tmp_path / "store.db")[event["id"]]["meta"]["custom"]["blob"] == blob
    assert not (tmp_path / "wia-dead-letter.replay.ndjson").exists()


def test_a_part_claiming_a_million_parts_costs_no_list_of_a_million(cli, tmp_path):
    """A forged or damaged part (parts: 1,000,000, the most taken) is one incomplete record. Naming its
    missing parts built the list of all 999,999 numbers (~36 MB and ~50 ms per such part: a file of 20,000
    of them kept replay busy a quarter of an hour); the first ten and the count are enough."""
    import tracemalloc
    forged = [{"dead_letter_id": f"forged-{i}", "part": 1, "parts": 1_000_000, "record_part": "{", "reason": "r"}
              for i in range(2)]
    source = write(tmp_path / "forged.ndjson", forged)
    tracemalloc.start()
    try:
        r = cli("replay", str(source), "--to", "sqlite:///store.db", "--summary", "json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.code == 1
    assert json.loads(r.out)["not_replayable"] == 2
    assert "written in 1000000 parts, 1 read; part(s) 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 ... missing" in r.err
    assert peak < 8 * 1024 * 1024, peak


def test_parts_claiming_another_record_s_id_do_not_hide_that_record(cli, tmp_path):
    """Parts of a record are taken as copies once a record with their dead_letter_id is joined. That id is
    the hash of where, sink and value: a record joined under an id that is not its own (forged, or a
    copy edited by hand) must not make the real record's parts copies, or it is silently never replayed."""
    real = big_refused_record(12)
    impostor = big_refused_record(13)
    impostor["dead_letter_id"] = real["dead_letter_id"]
    impostor["failed_at"] = "2026-01-01T00:00:00.000Z"
    bodies = parts_of(impostor) + parts_of(real)
    r = cli("replay", str(write(tmp_path / "bodies.ndjson", bodies)), "--to", "sqlite:///store.db",
            "--summary", "json")
    assert r.code == 0, r.err
    s = json.loads(r.out)
    assert (s["records"], s["replayed"], s["parts"]) == (2, 2, len(bodies))
    assert set(stored(tmp_path / "store.db")) == {real["event"]["id"], impostor["event"]["id"]}
