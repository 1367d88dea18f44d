"""Cloud Function dead letters fit Cloud Logging: a LogEntry holds at most 256 KB (Cloud Logging quotas), and a
bigger stdout line is split into text chunks or dropped by the runtime's log agent, so a dead letter past it
never reaches a `jsonPayload.wia_dead_letter:*` log sink: the one record of a refused event was lost. Big
dead letters are written in parts, each line under the limit, that join back to the whole record."""
from __future__ import annotations

import base64
import json

import pytest

pytest.importorskip("functions_framework", reason="the gcp extra is not installed")

from servers.scc_grpc import scc, scc_server  # noqa: E402,F401  (fixtures)
from test_gcp_hostile import cloudevent  # noqa: E402
from test_gcp_main import client, configured, dead_letters, finding_ids, fresh  # noqa: E402,F401

LOG_ENTRY_MAX_BYTES = 256 * 1024        # Cloud Logging: size of a LogEntry


def post(payload: bytes, message_id: str):
    data = {"message": {"messageId": message_id, "data": base64.b64encode(payload).decode()}}
    return client("pubsub_to_scc", "cloudevent").post(
        "/", json=cloudevent(data, message_id), headers={"Content-Type": "application/cloudevents+json"})


def joined(parts: list[dict]) -> dict:
    """A parted dead letter as a whole record: its parts' text in part order."""
    assert len({p["dead_letter_id"] for p in parts}) == 1
    assert sorted(p["part"] for p in parts) == list(range(1, parts[0]["parts"] + 1))
    return json.loads("".join(p["record_part"] for p in sorted(parts, key=lambda p: p["part"])))


@pytest.mark.parametrize("line", [b"x" * 600_000, b"\x01" * 300_000, "\u00e9\u6f22".encode() * 120_000],
                         ids=["ascii-600k", "control-chars-escaped-6x", "multibyte-720k"])
def test_a_dead_letter_past_a_log_entry_is_written_in_parts_that_join_back(configured, samples, capsys, line):
    server, _ = configured
    good = fresh(samples["alert-sample"])
    response = post(json.dumps(good).encode() + b"\n" + line + b"\n", "big-1")
    assert response.status_code == 200, response.data
    out = capsys.readouterr().out
    assert max(len(entry.encode()) for entry in out.splitlines()) < LOG_ENTRY_MAX_BYTES
    parts = dead_letters(out)
    assert len(parts) >= 2 and all(p["where"] == "pubsub:big-1:2" and p["reason"] for p in parts)
    record = joined(parts)
    assert record["raw"] == line.decode() and record["where"] == "pubsub:big-1:2"
    assert record["dead_letter_id"] == parts[0]["dead_letter_id"]
    # each part names its write, so replay never joins parts of two writes of the record cut differently
    assert {p["failed_at"] for p in parts} == {record["failed_at"]}
    assert finding_ids(server) == {good["id"]}


def test_a_small_dead_letter_stays_one_entry(configured, capsys):
    assert post(b"{bad json\n", "small-1").status_code == 200
    (dead,) = dead_letters(capsys.readouterr().out)
    assert dead["raw"] == "{bad json" and "part" not in dead
